package mech

import (
	"bytes"
	"crypto"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestWycheproofECDSASecp256k1(t *testing.T) {
	t.Parallel()
	n := wpECDSAFiles(t, []string{
		"ecdsa_secp256k1_sha256_p1363_test.json", "ecdsa_secp256k1_sha512_p1363_test.json",
		"ecdsa_secp256k1_sha256_test.json", "ecdsa_secp256k1_sha512_test.json",
		"ecdsa_secp256k1_sha3_256_test.json", "ecdsa_secp256k1_sha3_512_test.json",
	})
	wantCount(t, "Wycheproof ECDSA secp256k1", n, 2570)
}

func TestSecp256k1KeyGenSignVerify(t *testing.T) {
	params := mustMarshal(t, "secp256k1")
	pub, priv, _ := genEC(t, params)
	msg := bytes.Repeat([]byte("k1"), 100)
	for _, m := range []struct {
		m ck.MechanismType
		h crypto.Hash
	}{{ck.CKM_ECDSA_SHA256, crypto.SHA256}, {ck.CKM_ECDSA_SHA3_256, crypto.SHA3_256}} {
		s, err := regMech(t, m.m).Sign(priv, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != 64 {
			t.Fatalf("Len %d", s.Len())
		}
		sig, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := ecVerify(t, pub, m.m, m.h, msg, sig); err != nil {
			t.Fatalf("%v: %v", m.m, err)
		}
		sig[5] ^= 1
		expectRV(t, ecVerify(t, pub, m.m, m.h, msg, sig), ck.CKR_SIGNATURE_INVALID, "tampered")
	}
	kk, _ := classicReg().KeyKind(ck.CKK_EC)
	if kk.Size(pub.Attrs, pub.Material) != 256 {
		t.Fatal("size")
	}
	// A public key object verifies but cannot sign; out-of-range scalars
	// and off-curve points are refused.
	_, err := regMech(t, ck.CKM_ECDSA).Sign(pub, nil)
	expectRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT, "sign with public key")
	order := mustHex(t, "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	for _, v := range [][]byte{order, {0}, make([]byte, 33)} {
		if v[0] == 0 && len(v) == 33 {
			v[1] = 1
			v[0] = 1
		}
		_, err := kk.Parse(ck.CKO_PRIVATE_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: params}, {Type: ck.CKA_VALUE, Value: v}})
		expectRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "bad scalar")
	}
	point := append([]byte{4}, make([]byte, 64)...)
	point[64] = 7
	_, err = kk.Parse(ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: params}, {Type: ck.CKA_EC_POINT, Value: point}})
	expectRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "off-curve point")
}
