package mech

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"encoding/json"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

var ecdsaByHash = map[string]struct {
	m ck.MechanismType
	h crypto.Hash
}{
	"SHA-1": {ck.CKM_ECDSA_SHA1, crypto.SHA1}, "SHA-224": {ck.CKM_ECDSA_SHA224, crypto.SHA224},
	"SHA-256": {ck.CKM_ECDSA_SHA256, crypto.SHA256}, "SHA-384": {ck.CKM_ECDSA_SHA384, crypto.SHA384},
	"SHA-512": {ck.CKM_ECDSA_SHA512, crypto.SHA512},
}

func curveParams(t testing.TB, oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ecPubKey(t testing.TB, params, point []byte) *Key {
	return keyOf(t, ck.CKK_EC, ck.CKO_PUBLIC_KEY, attr.Template{
		{Type: ck.CKA_EC_PARAMS, Value: params}, {Type: ck.CKA_EC_POINT, Value: point}})
}

// ecVerify checks sig over msg with the hashing mechanism (one-shot and
// multi-part) and with CKM_ECDSA over the digest; all three must agree.
func ecVerify(t *testing.T, k *Key, m ck.MechanismType, h crypto.Hash, msg, sig []byte) error {
	t.Helper()
	v, err := regMech(t, m).Verify(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = v.Verify(msg, sig)
	v2, _ := regMech(t, m).Verify(k, nil)
	v2.Update(msg[:len(msg)/2])
	v2.Update(msg[len(msg)/2:])
	err2 := v2.Final(sig)
	d := h.New()
	d.Write(msg)
	raw, _ := regMech(t, ck.CKM_ECDSA).Verify(k, nil)
	err3 := raw.Verify(d.Sum(nil), sig)
	if (err == nil) != (err2 == nil) || (err == nil) != (err3 == nil) {
		t.Fatalf("%v: one-shot %v, multi-part %v, raw %v", m, err, err2, err3)
	}
	return err
}

func TestWycheproofECDSA(t *testing.T) {
	t.Parallel()
	n := 0
	for _, file := range []string{
		"ecdsa_secp256r1_sha256_p1363_test.json", "ecdsa_secp256r1_sha512_p1363_test.json",
		"ecdsa_secp384r1_sha384_p1363_test.json", "ecdsa_secp384r1_sha512_p1363_test.json",
		"ecdsa_secp521r1_sha512_p1363_test.json",
	} {
		f := wpLoad(t, file)
		for gi, raw := range f.TestGroups {
			g := wpGroup[struct {
				PublicKey struct{ Curve, Uncompressed string }
				Sha       string
				Tests     []wpTest
			}](t, raw)
			params, err := asn1.Marshal(g.PublicKey.Curve) // PrintableString form
			if err != nil {
				t.Fatal(err)
			}
			point := mustHex(t, g.PublicKey.Uncompressed)
			if gi%2 == 0 { // alternate raw and DER-wrapped CKA_EC_POINT
				point = ecPointDER(point)
			}
			k := ecPubKey(t, params, point)
			e := ecdsaByHash[g.Sha]
			for _, tc := range g.Tests {
				n++
				err := ecVerify(t, k, e.m, e.h, mustHex(t, tc.Msg), mustHex(t, tc.Sig))
				wpCheck(t, file, tc, err)
			}
		}
	}
	wantCount(t, "Wycheproof ECDSA (P1363)", n, 1460)
}

func TestACVPECDSASigVer(t *testing.T) {
	t.Parallel()
	curves := map[string]asn1.ObjectIdentifier{"P-256": ecCurves[0].oid, "P-384": ecCurves[1].oid, "P-521": ecCurves[2].oid}
	hashes := map[string]string{"SHA2-224": "SHA-224", "SHA2-256": "SHA-256", "SHA2-384": "SHA-384", "SHA2-512": "SHA-512"}
	sets, exp := acvpLoad(t, "ECDSA")
	n := 0
	for si, s := range sets {
		if s.Mode != "sigVer" {
			continue
		}
		for _, raw := range s.TestGroups {
			var g struct {
				Curve, HashAlg string
				Tests          []struct {
					TcID                  int
					Message, Qx, Qy, R, S string
				}
			}
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatal(err)
			}
			oid, ok1 := curves[g.Curve]
			hn, ok2 := hashes[g.HashAlg]
			if !ok1 || !ok2 {
				continue
			}
			c, _ := curveOf(curveParams(t, oid))
			e := ecdsaByHash[hn]
			for _, tc := range g.Tests {
				n++
				pad := func(s string) []byte { return leftPad(mustHex(t, s), c.size) }
				point := append(append([]byte{4}, pad(tc.Qx)...), pad(tc.Qy)...)
				k := ecPubKey(t, curveParams(t, oid), ecPointDER(point))
				err := ecVerify(t, k, e.m, e.h, mustHex(t, tc.Message), append(pad(tc.R), pad(tc.S)...))
				if want := acvpPassed(t, exp[si][tc.TcID]); want != (err == nil) {
					t.Errorf("ECDSA sigVer #%d (%s %s): got %v, want pass=%v", tc.TcID, g.Curve, g.HashAlg, err, want)
				}
			}
		}
	}
	wantCount(t, "ACVP ECDSA sigVer", n, 12)
}

func genEC(t testing.TB, params []byte) (pub, priv *Key, pubA attr.Template) {
	t.Helper()
	pa, pr, err := regMech(t, ck.CKM_EC_KEY_PAIR_GEN).GenerateKeyPair(
		attr.Template{{Type: ck.CKA_EC_PARAMS, Value: params}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return keyOf(t, ck.CKK_EC, ck.CKO_PUBLIC_KEY, pa), keyOf(t, ck.CKK_EC, ck.CKO_PRIVATE_KEY, pr), pa
}

func TestECKeyGenSignVerify(t *testing.T) {
	for _, c := range ecCurves {
		if c.curve == nil {
			continue // secp256k1: secp256k1_test.go
		}
		for _, params := range [][]byte{curveParams(t, c.oid), mustMarshal(t, c.names[0])} {
			pub, priv, pa := genEC(t, params)
			if p, _ := pa.Get(ck.CKA_EC_PARAMS); !bytes.Equal(p, params) {
				t.Fatalf("CKA_EC_PARAMS not stored as given")
			}
			pt, _ := pa.Get(ck.CKA_EC_POINT)
			var inner []byte
			if rest, err := asn1.Unmarshal(pt, &inner); err != nil || len(rest) != 0 || len(inner) != 1+2*c.size || inner[0] != 4 {
				t.Fatalf("CKA_EC_POINT %x is not a DER-wrapped uncompressed point", pt)
			}
			kk, _ := classicReg().KeyKind(ck.CKK_EC)
			if got := kk.Size(priv.Attrs, priv.Material); got != ck.ULong(c.bits) {
				t.Fatalf("size %d, want %d", got, c.bits)
			}
			// A raw point is accepted on input too.
			rawPub := ecPubKey(t, params, inner)
			msg := []byte("message to be signed, in two parts")
			for _, m := range []ck.MechanismType{ck.CKM_ECDSA_SHA1, ck.CKM_ECDSA_SHA256, ck.CKM_ECDSA_SHA512} {
				s, err := regMech(t, m).Sign(priv, nil)
				if err != nil {
					t.Fatal(err)
				}
				one, err := s.Sign(msg)
				if err != nil || len(one) != s.Len() || s.Len() != 2*c.size {
					t.Fatalf("%v: sig %d bytes (Len %d), %v", m, len(one), s.Len(), err)
				}
				s.Update(msg[:10])
				s.Update(msg[10:])
				multi, err := s.Final()
				if err != nil {
					t.Fatal(err)
				}
				for _, sig := range [][]byte{one, multi} {
					for _, k := range []*Key{pub, rawPub} {
						v, _ := regMech(t, m).Verify(k, nil)
						if err := v.Verify(msg, sig); err != nil {
							t.Fatalf("%v: %v", m, err)
						}
					}
				}
				v, _ := regMech(t, m).Verify(pub, nil)
				bad := bytes.Clone(one)
				bad[len(bad)-1] ^= 1
				expectRV(t, v.Verify(msg, bad), ck.CKR_SIGNATURE_INVALID, "tampered")
				expectRV(t, v.Verify(msg, one[1:]), ck.CKR_SIGNATURE_LEN_RANGE, "short signature")
			}
			// CKM_ECDSA is single-part and truncates a long hash itself.
			s, _ := regMech(t, ck.CKM_ECDSA).Sign(priv, nil)
			expectRV(t, s.Update(msg), ck.CKR_FUNCTION_NOT_SUPPORTED, "CKM_ECDSA update")
			long := bytes.Repeat([]byte{0xA5}, 64)
			sig, err := s.Sign(long)
			if err != nil {
				t.Fatal(err)
			}
			pk := pub.Material.(*ecKey).pub
			if !ecdsaVerifyStd(pk, long, sig, c.size) {
				t.Fatalf("%d-bit: CKM_ECDSA signature does not verify with crypto/ecdsa", c.bits)
			}
			v, _ := regMech(t, ck.CKM_ECDSA).Verify(pub, nil)
			expectRV(t, v.Update(msg), ck.CKR_FUNCTION_NOT_SUPPORTED, "CKM_ECDSA verify update")
		}
	}
}

func ecdsaVerifyStd(pub *ecdsa.PublicKey, digest, sig []byte, size int) bool {
	der, _ := asn1.Marshal(struct{ R, S asn1.RawValue }{
		asn1.RawValue{Tag: asn1.TagInteger, Bytes: intBytes(sig[:size])},
		asn1.RawValue{Tag: asn1.TagInteger, Bytes: intBytes(sig[size:])},
	})
	return ecdsa.VerifyASN1(pub, digest, der)
}

// intBytes is the minimal two's-complement content of a positive integer.
func intBytes(b []byte) []byte {
	b = bytes.TrimLeft(b, "\x00")
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

func mustMarshal(t testing.TB, v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestECParseErrors(t *testing.T) {
	kk, _ := classicReg().KeyKind(ck.CKK_EC)
	p256 := curveParams(t, ecCurves[0].oid)
	_, pr, _ := genEC(t, p256)
	d, _ := pr.Attrs.Get(ck.CKA_VALUE)
	for _, e := range []struct {
		name  string
		class ck.ObjectClass
		a     attr.Template
		rv    ck.RV
	}{
		{"no params", ck.CKO_PUBLIC_KEY, nil, ck.CKR_TEMPLATE_INCOMPLETE},
		{"bad DER", ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: []byte{6, 9, 1}}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"brainpoolP256r1", ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: curveParams(t, asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 7})}}, ck.CKR_CURVE_NOT_SUPPORTED},
		{"unknown name", ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: mustMarshal(t, "brainpoolP256r1")}}, ck.CKR_CURVE_NOT_SUPPORTED},
		{"no point", ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p256}}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"point off curve", ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p256},
			{Type: ck.CKA_EC_POINT, Value: ecPointDER(append([]byte{4}, make([]byte, 64)...))}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"compressed point", ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p256},
			{Type: ck.CKA_EC_POINT, Value: ecPointDER(append([]byte{2}, make([]byte, 32)...))}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"zero scalar", ck.CKO_PRIVATE_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_VALUE, Value: make([]byte, 32)}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"long scalar", ck.CKO_PRIVATE_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_VALUE, Value: append([]byte{1}, d...)}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
	} {
		_, err := kk.Parse(e.class, e.a)
		expectRV(t, err, e.rv, e.name)
	}
	// A scalar given without its leading zero byte still parses.
	short := append([]byte{0, 0}, d...)
	if _, err := kk.Parse(ck.CKO_PRIVATE_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_VALUE, Value: short}}); err != nil {
		t.Fatalf("scalar with extra leading zeros: %v", err)
	}
	_, _, err := regMech(t, ck.CKM_EC_KEY_PAIR_GEN).GenerateKeyPair(nil, nil)
	expectRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "keygen without params")
	_, _, err = regMech(t, ck.CKM_EC_KEY_PAIR_GEN).GenerateKeyPair(attr.Template{{Type: ck.CKA_EC_PARAMS, Value: []byte{0x30}}}, nil)
	expectRV(t, err, ck.CKR_DOMAIN_PARAMS_INVALID, "keygen with bad params")
}

func BenchmarkECDSAP256Sign(b *testing.B) {
	_, priv, _ := genEC(b, curveParams(b, ecCurves[0].oid))
	m := regMech(b, ck.CKM_ECDSA)
	digest := bytes.Repeat([]byte{7}, 32)
	b.ReportAllocs()
	for b.Loop() {
		s, err := m.Sign(priv, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Sign(digest); err != nil {
			b.Fatal(err)
		}
	}
}
