package mech

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// The hand-written PKCS#8 must agree with crypto/x509 both ways (x509 is
// allowed in tests; only the engine must not import it).
func TestPKCS8AgreesWithX509(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	xk, _ := ecdh.X25519().GenerateKey(rand.Reader)
	codecs := pkcs8Codecs()
	for _, c := range []struct {
		kt  ck.KeyType
		mat any
		std any
	}{
		{ck.CKK_RSA, rk, rk},
		{ck.CKK_EC, &ecKey{curve: &ecCurves[1], priv: ek, pub: &ek.PublicKey}, ek},
		{ck.CKK_EC_MONTGOMERY, &montKey{curve: &montCurves[0], priv: xk.Bytes()}, xk},
	} {
		der, err := codecs[c.kt].encode(&Key{Class: ck.CKO_PRIVATE_KEY, Type: c.kt, Material: c.mat})
		if err != nil {
			t.Fatalf("%v encode: %v", c.kt, err)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatalf("%v: x509 cannot parse ours: %v", c.kt, err)
		}
		if !parsed.(interface{ Equal(crypto.PrivateKey) bool }).Equal(c.std) {
			t.Fatalf("%v: x509 parsed a different key", c.kt)
		}
		std, _ := x509.MarshalPKCS8PrivateKey(c.std)
		attrs, err := codecs[c.kt].decode(std)
		if err != nil {
			t.Fatalf("%v: we cannot decode x509's: %v", c.kt, err)
		}
		if _, err := keyKinds()[c.kt].Parse(ck.CKO_PRIVATE_KEY, attrs); err != nil {
			t.Fatalf("%v: decoded attributes do not parse: %v", c.kt, err)
		}
	}
	if _, err := codecs[ck.CKK_RSA].decode([]byte{0x30, 0x00}); err == nil {
		t.Fatal("garbage decoded")
	}
}

func keyKinds() map[ck.KeyType]*KeyKind {
	r := New(ck.DefaultProfile)
	return r.keys
}
