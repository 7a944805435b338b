package hsm

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Engine-level cases for the PKCS#11 3.x families (EdDSA, secp256k1, SHA-3,
// CMAC, ML-DSA): key generation and objects through the Module API, and the
// sign/verify semantics of TestSignSemantics via signCases3.

func derOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signCases3() []signCase {
	pair := func(mt ck.MechanismType, params []byte) func(testing.TB, *Module, ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
		return func(t testing.TB, m *Module, s ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
			p, k := genPair(t, m, s, mt, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: params}})
			return k, p
		}
	}
	secret := func(mt ck.MechanismType, n int) func(testing.TB, *Module, ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
		return func(t testing.TB, m *Module, s ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
			k := genSecret(t, m, s, mt, n)
			return k, k
		}
	}
	rsa := func(t testing.TB, m *Module, s ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
		p, k := genPair(t, m, s, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_MODULUS_BITS, Value: ul(2048)}})
		return k, p
	}
	ed25519 := []byte{0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9'} // PrintableString
	ed448 := []byte{0x06, 0x03, 0x2b, 0x65, 0x71}                                             // OID 1.3.101.113
	k1 := []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}                                    // OID 1.3.132.0.10
	msg := bytes.Repeat([]byte("message-"), 40)
	return []signCase{
		{"Ed25519", ck.Mechanism{Type: ck.CKM_EDDSA}, pair(ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, ed25519), msg, true},
		{"Ed25519ctx", ck.Mechanism{Type: ck.CKM_EDDSA, Param: &ck.EDDSAParams{ContextData: []byte("gohsm")}}, pair(ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, ed25519), msg, true},
		{"Ed448ph", ck.Mechanism{Type: ck.CKM_EDDSA, Param: &ck.EDDSAParams{PHFlag: true}}, pair(ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, ed448), msg, true},
		{"secp256k1-ECDSA-SHA256", ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, pair(ck.CKM_EC_KEY_PAIR_GEN, k1), msg, true},
		{"ECDSA-SHA3-256", ck.Mechanism{Type: ck.CKM_ECDSA_SHA3_256}, pair(ck.CKM_EC_KEY_PAIR_GEN, p256Params), msg, true},
		{"SHA3-256-RSA-PKCS", ck.Mechanism{Type: ck.CKM_SHA3_256_RSA_PKCS}, rsa, msg, true},
		{"SHA3-384-RSA-PSS", ck.Mechanism{Type: ck.CKM_SHA3_384_RSA_PKCS_PSS,
			Param: &ck.RSAPSSParams{HashAlg: ck.CKM_SHA3_384, MGF: ck.CKG_MGF1_SHA3_384, SaltLen: 48}}, rsa, msg, true},
		{"HMAC-SHA3-256", ck.Mechanism{Type: ck.CKM_SHA3_256_HMAC}, secret(ck.CKM_SHA3_256_KEY_GEN, 32), msg, true},
		{"HMAC-SHA3-512-GENERAL", ck.Mechanism{Type: ck.CKM_SHA3_512_HMAC_GENERAL, Param: ck.MACGeneralParams(20)}, secret(ck.CKM_GENERIC_SECRET_KEY_GEN, 64), msg, true},
		{"AES-CMAC", ck.Mechanism{Type: ck.CKM_AES_CMAC}, secret(ck.CKM_AES_KEY_GEN, 32), msg, true},
		{"AES-CMAC-GENERAL", ck.Mechanism{Type: ck.CKM_AES_CMAC_GENERAL, Param: ck.MACGeneralParams(8)}, secret(ck.CKM_AES_KEY_GEN, 16), msg, true},
	}
}

func TestSHA3DigestModule(t *testing.T) {
	m, s := userSession(t)
	must(t, m.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA3_256}))
	must(t, m.DigestUpdate(s, []byte("a")))
	must(t, m.DigestUpdate(s, []byte("bc")))
	out, _, err := m.DigestFinal(s, 64)
	must(t, err)
	want, _ := hex.DecodeString("3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532") // FIPS 202 SHA3-256("abc")
	if !bytes.Equal(out, want) {
		t.Fatalf("SHA3-256(abc) = %x", out)
	}
}

// TestEdwardsObjects: generated Edwards keys carry the 3.0 attributes, the
// seed is sensitive, and a public key created from bare bytes (OpenSC's
// form) verifies what the generated private key signs.
func TestEdwardsObjects(t *testing.T) {
	m, s := userSession(t)
	params := derOf(t, asn1.ObjectIdentifier{1, 3, 101, 112})
	pub, priv := genPair(t, m, s, ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: params}})
	if kt := getAttr(t, m, s, pub, ck.CKA_KEY_TYPE); !bytes.Equal(kt, ul(ck.ULong(ck.CKK_EC_EDWARDS))) {
		t.Fatalf("CKA_KEY_TYPE %x", kt)
	}
	point := getAttr(t, m, s, pub, ck.CKA_EC_POINT)
	var raw []byte
	if _, err := asn1.Unmarshal(point, &raw); err != nil || len(raw) != 32 {
		t.Fatalf("CKA_EC_POINT %x", point)
	}
	res, err := m.GetAttributeValue(s, priv, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_SENSITIVE)
	if res[0].Len != ^ck.ULong(0) {
		t.Fatalf("sensitive seed length %d", res[0].Len)
	}
	imported, err := m.CreateObject(s, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_PUBLIC_KEY))}, {Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_EC_EDWARDS))},
		{Type: ck.CKA_EC_PARAMS, Value: params}, {Type: ck.CKA_EC_POINT, Value: raw},
	})
	must(t, err)
	must(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_EDDSA}, priv))
	sig, _, err := m.Sign(s, []byte("hello"), 64)
	must(t, err)
	must(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_EDDSA}, imported))
	must(t, m.Verify(s, []byte("hello"), sig))
	// An ECDSA mechanism on an Edwards key is the wrong key type.
	wantRV(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv), ck.CKR_KEY_TYPE_INCONSISTENT)
	// An EC key pair on the Edwards mechanism: wrong curve.
	_, _, err = m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_EDWARDS_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}}, nil)
	wantRV(t, err, ck.CKR_CURVE_NOT_SUPPORTED)
}

// TestMLDSAModule drives ML-DSA through the Module: generation with
// CKA_PARAMETER_SET, the 3.2 attributes on both keys, sensitivity of the
// seed and expanded key, sign (single- and multi-part, with context) and
// single-part verify, and an object created from the seed alone.
func TestMLDSAModule(t *testing.T) {
	m, s := userSession(t)
	pub, priv := genPair(t, m, s, ck.CKM_ML_DSA_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_DSA_65))}},
		ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	if ps := getAttr(t, m, s, priv, ck.CKA_PARAMETER_SET); !bytes.Equal(ps, ul(ck.ULong(ck.CKP_ML_DSA_65))) {
		t.Fatalf("private CKA_PARAMETER_SET %x", ps)
	}
	pk := getAttr(t, m, s, pub, ck.CKA_VALUE)
	seed := getAttr(t, m, s, priv, ck.CKA_SEED)
	sk := getAttr(t, m, s, priv, ck.CKA_VALUE)
	if len(pk) != 1952 || len(seed) != 32 || len(sk) != 4032 {
		t.Fatalf("pk %d seed %d sk %d bytes", len(pk), len(seed), len(sk))
	}
	mech := ck.Mechanism{Type: ck.CKM_ML_DSA, Param: &ck.SignAdditionalContext{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("ctx")}}
	data := bytes.Repeat([]byte("post-quantum "), 20)
	must(t, m.SignInit(s, mech, priv))
	_, need, err := m.Sign(s, data, -1)
	must(t, err)
	if need != 3309 {
		t.Fatalf("signature size %d", need)
	}
	sig, _, err := m.Sign(s, data, need)
	must(t, err)
	must(t, m.SignInit(s, mech, priv))
	must(t, m.SignUpdate(s, data[:50]))
	must(t, m.SignUpdate(s, data[50:]))
	sig2, _, err := m.SignFinal(s, need)
	must(t, err)
	if !bytes.Equal(sig, sig2) {
		t.Fatal("deterministic single- and multi-part signatures differ")
	}
	must(t, m.VerifyInit(s, mech, pub))
	must(t, m.Verify(s, data, sig))
	must(t, m.VerifyInit(s, mech, pub))
	wantRV(t, m.VerifyUpdate(s, data), ck.CKR_FUNCTION_NOT_SUPPORTED)
	must(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_ML_DSA}, pub))
	wantRV(t, m.Verify(s, data, sig), ck.CKR_SIGNATURE_INVALID) // no context

	// A private key imported from its seed alone gets CKA_VALUE and signs
	// identically.
	imp, err := m.CreateObject(s, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_PRIVATE_KEY))}, {Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_ML_DSA))},
		{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_DSA_65))}, {Type: ck.CKA_SEED, Value: seed},
		{Type: ck.CKA_SENSITIVE, Value: tb(false)},
	})
	must(t, err)
	if got := getAttr(t, m, s, imp, ck.CKA_VALUE); !bytes.Equal(got, sk) {
		t.Fatal("CKA_VALUE derived from the seed differs")
	}
	must(t, m.SignInit(s, mech, imp))
	sig3, _, err := m.Sign(s, data, need)
	must(t, err)
	if !bytes.Equal(sig, sig3) {
		t.Fatal("imported key signs differently")
	}
	// A sensitive generated key hides both secrets.
	_, hidden := genPair(t, m, s, ck.CKM_ML_DSA_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_DSA_44))}})
	for _, at := range []ck.AttributeType{ck.CKA_SEED, ck.CKA_VALUE} {
		_, err := m.GetAttributeValue(s, hidden, []ck.AttributeRequest{{Type: at, Cap: 8192}})
		wantRV(t, err, ck.CKR_ATTRIBUTE_SENSITIVE)
	}
	// Generation needs the parameter set in the public template; the
	// private template must not name it (3.2, footnote 4).
	_, _, err = m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_ML_DSA_KEY_PAIR_GEN}, nil, nil)
	wantRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	_, _, err = m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_ML_DSA_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_DSA_44))}},
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_DSA_44))}})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
}
