package mech

import (
	"encoding/asn1"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Parsers of caller-supplied key material must refuse garbage with an
// error, never panic: every key kind's Parse (C_CreateObject), the PKCS#8
// decoders (C_UnwrapKey), and the EC parameter and point decoders.

func FuzzKeyParse(f *testing.F) {
	p256, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
	x25519, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 101, 110})
	name, _ := asn1.Marshal("prime256v1")
	for _, s := range [][]byte{p256, x25519, name, {}, {0x04}, make([]byte, 65)} {
		f.Add(s, []byte{0x04, 0x41, 0x04, 1, 2, 3}, []byte{1, 2, 3})
	}
	reg := New(ck.DefaultProfile)
	f.Fuzz(func(t *testing.T, params, point, value []byte) {
		for _, kk := range reg.keys {
			for _, class := range []ck.ObjectClass{ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY} {
				a := attr.Template{
					{Type: ck.CKA_EC_PARAMS, Value: params}, {Type: ck.CKA_EC_POINT, Value: point},
					{Type: ck.CKA_VALUE, Value: value}, {Type: ck.CKA_MODULUS, Value: value},
					{Type: ck.CKA_PUBLIC_EXPONENT, Value: point}, {Type: ck.CKA_PRIVATE_EXPONENT, Value: value},
					{Type: ck.CKA_PARAMETER_SET, Value: params},
				}
				_, _ = kk.Parse(class, a)
			}
		}
	})
}

func FuzzPKCS8(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		for kt, c := range pkcs8Codecs() {
			a, err := c.decode(der)
			if err != nil {
				continue
			}
			// What decodes must describe a key the kind accepts or refuses
			// cleanly.
			kk, ok := New(ck.DefaultProfile).KeyKind(kt)
			if ok {
				_, _ = kk.Parse(ck.CKO_PRIVATE_KEY, a)
			}
		}
	})
}
