package hsm

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// TestSLHDSAModule drives SLH-DSA through the Module with a fast parameter
// set: generation with CKA_PARAMETER_SET, the 3.2 attributes of both keys
// (no CKA_SEED), sign (single- and multi-part, hedged and deterministic,
// with context), single-part verify, tampering, and imported objects.
func TestSLHDSAModule(t *testing.T) {
	m, s := userSession(t)
	info, err := m.GetMechanismInfo(0, ck.CKM_SLH_DSA)
	must(t, err)
	if info.MinKeySize != 32 || info.MaxKeySize != 64 || info.Flags&(ck.CKF_SIGN|ck.CKF_VERIFY) != ck.CKF_SIGN|ck.CKF_VERIFY {
		t.Fatalf("CKM_SLH_DSA info %+v", info)
	}
	set := ul(ck.ULong(ck.CKP_SLH_DSA_SHAKE_128F))
	pub, priv := genPair(t, m, s, ck.CKM_SLH_DSA_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: set}},
		ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	if ps := getAttr(t, m, s, priv, ck.CKA_PARAMETER_SET); !bytes.Equal(ps, set) {
		t.Fatalf("private CKA_PARAMETER_SET %x", ps)
	}
	if kt := getAttr(t, m, s, priv, ck.CKA_KEY_TYPE); !bytes.Equal(kt, ul(ck.ULong(ck.CKK_SLH_DSA))) {
		t.Fatalf("private CKA_KEY_TYPE %x", kt)
	}
	pk := getAttr(t, m, s, pub, ck.CKA_VALUE)
	sk := getAttr(t, m, s, priv, ck.CKA_VALUE)
	if len(pk) != 32 || len(sk) != 64 || !bytes.Equal(sk[32:], pk) {
		t.Fatalf("pk %d sk %d bytes, or sk does not end with pk", len(pk), len(sk))
	}
	// SLH-DSA keys have no CKA_SEED (3.2 "SLH-DSA private key objects").
	_, err = m.GetAttributeValue(s, priv, []ck.AttributeRequest{{Type: ck.CKA_SEED, Cap: 64}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_TYPE_INVALID)

	data := bytes.Repeat([]byte("stateless "), 25)
	const sigLen = 17088 // FIPS 205 Table 2, SLH-DSA-SHAKE-128f
	// Hedged by default: two signatures differ, both verify.
	must(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_SLH_DSA}, priv))
	_, need, err := m.Sign(s, data, -1)
	must(t, err)
	if need != sigLen {
		t.Fatalf("signature size %d", need)
	}
	h1, _, err := m.Sign(s, data, need)
	must(t, err)
	must(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_SLH_DSA}, priv))
	h2, _, err := m.Sign(s, data, need)
	must(t, err)
	if bytes.Equal(h1, h2) {
		t.Fatal("hedged signatures are equal")
	}
	for _, sig := range [][]byte{h1, h2} {
		must(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_SLH_DSA}, pub))
		must(t, m.Verify(s, data, sig))
	}

	// Deterministic with a context: single- and multi-part agree.
	mech := ck.Mechanism{Type: ck.CKM_SLH_DSA, Param: &ck.SignAdditionalContext{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("ctx")}}
	must(t, m.SignInit(s, mech, priv))
	sig, _, err := m.Sign(s, data, need)
	must(t, err)
	must(t, m.SignInit(s, mech, priv))
	must(t, m.SignUpdate(s, data[:33]))
	must(t, m.SignUpdate(s, data[33:]))
	sig2, _, err := m.SignFinal(s, need)
	must(t, err)
	if !bytes.Equal(sig, sig2) {
		t.Fatal("deterministic single- and multi-part signatures differ")
	}
	must(t, m.VerifyInit(s, mech, pub))
	must(t, m.Verify(s, data, sig))

	// Verification is single-part, binds the context, and catches
	// tampering with the signature or the message.
	must(t, m.VerifyInit(s, mech, pub))
	wantRV(t, m.VerifyUpdate(s, data), ck.CKR_FUNCTION_NOT_SUPPORTED)
	must(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_SLH_DSA}, pub))
	wantRV(t, m.Verify(s, data, sig), ck.CKR_SIGNATURE_INVALID) // no context
	other := ck.Mechanism{Type: ck.CKM_SLH_DSA, Param: &ck.SignAdditionalContext{Context: []byte("cty")}}
	must(t, m.VerifyInit(s, other, pub))
	wantRV(t, m.Verify(s, data, sig), ck.CKR_SIGNATURE_INVALID)
	bad := append([]byte(nil), sig...)
	bad[100] ^= 1
	must(t, m.VerifyInit(s, mech, pub))
	wantRV(t, m.Verify(s, data, bad), ck.CKR_SIGNATURE_INVALID)
	must(t, m.VerifyInit(s, mech, pub))
	wantRV(t, m.Verify(s, append([]byte("x"), data...), sig), ck.CKR_SIGNATURE_INVALID)
	must(t, m.VerifyInit(s, mech, pub))
	wantRV(t, m.Verify(s, data, sig[:sigLen-1]), ck.CKR_SIGNATURE_LEN_RANGE)

	// Imported keys: the private key from its CKA_VALUE signs identically,
	// the public key from its CKA_VALUE verifies.
	class := func(c ck.ObjectClass) []ck.Attribute {
		return []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: ul(ck.ULong(c))}, {Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_SLH_DSA))},
			{Type: ck.CKA_PARAMETER_SET, Value: set},
		}
	}
	impPriv, err := m.CreateObject(s, append(class(ck.CKO_PRIVATE_KEY), ck.Attribute{Type: ck.CKA_VALUE, Value: sk}))
	must(t, err)
	must(t, m.SignInit(s, mech, impPriv))
	sig3, _, err := m.Sign(s, data, need)
	must(t, err)
	if !bytes.Equal(sig, sig3) {
		t.Fatal("imported key signs differently")
	}
	impPub, err := m.CreateObject(s, append(class(ck.CKO_PUBLIC_KEY), ck.Attribute{Type: ck.CKA_VALUE, Value: pk}))
	must(t, err)
	must(t, m.VerifyInit(s, mech, impPub))
	must(t, m.Verify(s, data, sig))

	// Import errors: no value, a seed attribute, a root that does not
	// follow from the seeds, a value of the wrong size.
	_, err = m.CreateObject(s, class(ck.CKO_PRIVATE_KEY))
	wantRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	_, err = m.CreateObject(s, append(class(ck.CKO_PRIVATE_KEY),
		ck.Attribute{Type: ck.CKA_VALUE, Value: sk}, ck.Attribute{Type: ck.CKA_SEED, Value: sk[:48]}))
	wantRV(t, err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
	wrongRoot := append([]byte(nil), sk...)
	wrongRoot[63] ^= 1
	_, err = m.CreateObject(s, append(class(ck.CKO_PRIVATE_KEY), ck.Attribute{Type: ck.CKA_VALUE, Value: wrongRoot}))
	wantRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = m.CreateObject(s, append(class(ck.CKO_PUBLIC_KEY), ck.Attribute{Type: ck.CKA_VALUE, Value: sk}))
	wantRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)

	// A sensitive generated key hides its value.
	_, hidden := genPair(t, m, s, ck.CKM_SLH_DSA_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_SLH_DSA_SHA2_128F))}})
	_, err = m.GetAttributeValue(s, hidden, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 128}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_SENSITIVE)

	// Generation needs the parameter set in the public template; the
	// private template must not name it (3.2, footnote 4).
	_, _, err = m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_SLH_DSA_KEY_PAIR_GEN}, nil, nil)
	wantRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	_, _, err = m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_SLH_DSA_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: set}},
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: set}})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, _, err = m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_SLH_DSA_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(13)}}, nil)
	wantRV(t, err, ck.CKR_PARAMETER_SET_NOT_SUPPORTED)
	// An ML-DSA key on the SLH-DSA mechanism is the wrong key type.
	_, mlPriv := genPair(t, m, s, ck.CKM_ML_DSA_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_DSA_44))}})
	wantRV(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_SLH_DSA}, mlPriv), ck.CKR_KEY_TYPE_INCONSISTENT)
}
