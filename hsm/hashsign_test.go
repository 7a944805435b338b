package hsm

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// TestHashSignModule drives HashML-DSA and HashSLH-DSA (3.2 CKM_HASH_ML_DSA*,
// CKM_HASH_SLH_DSA*) through the Module: the mechanism list and info, the
// combined mechanism single- and multi-part (sign and verify), the
// digest-taking mechanism with CK_HASH_SIGN_ADDITIONAL_CONTEXT giving the
// same deterministic signature, context binding, pure/pre-hash separation,
// CKR_DATA_LEN_RANGE for a digest of the wrong length, and single-part only
// for the digest-taking mechanism.
func TestHashSignModule(t *testing.T) {
	m, s := userSession(t)
	list, err := m.GetMechanismList(0)
	must(t, err)
	have := map[ck.MechanismType]bool{}
	for _, mt := range list {
		have[mt] = true
	}
	for _, mt := range []ck.MechanismType{ck.CKM_HASH_ML_DSA, ck.CKM_HASH_ML_DSA_SHA256, ck.CKM_HASH_ML_DSA_SHAKE256,
		ck.CKM_HASH_SLH_DSA, ck.CKM_HASH_SLH_DSA_SHA256, ck.CKM_HASH_SLH_DSA_SHAKE128} {
		if !have[mt] {
			t.Errorf("%v not in the mechanism list", mt)
		}
	}

	data := bytes.Repeat([]byte("pre-hashed "), 20)
	digest := sha256.Sum256(data)
	ctx := []byte("gohsm hash-sign")

	for _, fam := range []struct {
		name             string
		gen, pure        ck.MechanismType
		generic, sha256m ck.MechanismType
		set              ck.ParameterSet
		sigLen           int
		minKey, maxKey   ck.ULong
	}{
		{"ML-DSA", ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKM_ML_DSA, ck.CKM_HASH_ML_DSA, ck.CKM_HASH_ML_DSA_SHA256, ck.CKP_ML_DSA_44, 2420, 1312, 2592},
		{"SLH-DSA", ck.CKM_SLH_DSA_KEY_PAIR_GEN, ck.CKM_SLH_DSA, ck.CKM_HASH_SLH_DSA, ck.CKM_HASH_SLH_DSA_SHA256, ck.CKP_SLH_DSA_SHA2_128F, 17088, 32, 64},
	} {
		t.Run(fam.name, func(t *testing.T) {
			for _, mt := range []ck.MechanismType{fam.generic, fam.sha256m} {
				info, err := m.GetMechanismInfo(0, mt)
				must(t, err)
				if info.MinKeySize != fam.minKey || info.MaxKeySize != fam.maxKey || info.Flags != ck.CKF_SIGN|ck.CKF_VERIFY|ck.CKF_MESSAGE_SIGN|ck.CKF_MESSAGE_VERIFY {
					t.Errorf("%v info %+v", mt, info)
				}
			}
			pub, priv := genPair(t, m, s, fam.gen, []ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(fam.set))}})

			det := ck.Mechanism{Type: fam.sha256m, Param: &ck.SignAdditionalContext{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: ctx}}
			must(t, m.SignInit(s, det, priv))
			_, need, err := m.Sign(s, data, -1)
			must(t, err)
			if need != fam.sigLen {
				t.Fatalf("signature size %d, want %d", need, fam.sigLen)
			}
			sig, _, err := m.Sign(s, data, need)
			must(t, err)

			// Multi-part signing gives the same deterministic signature.
			must(t, m.SignInit(s, det, priv))
			must(t, m.SignUpdate(s, data[:17]))
			must(t, m.SignUpdate(s, data[17:]))
			sig2, _, err := m.SignFinal(s, need)
			must(t, err)
			if !bytes.Equal(sig, sig2) {
				t.Fatal("single- and multi-part signatures differ")
			}

			// The digest-taking mechanism, deterministic, signs the same.
			gen := ck.Mechanism{Type: fam.generic, Param: &ck.HashSignAdditionalContext{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: ctx, Hash: ck.CKM_SHA256}}
			must(t, m.SignInit(s, gen, priv))
			sig3, _, err := m.Sign(s, digest[:], need)
			must(t, err)
			if !bytes.Equal(sig, sig3) {
				t.Fatalf("%v and %v signatures differ", fam.generic, fam.sha256m)
			}

			// Verify: single-part, multi-part, and through the generic one.
			must(t, m.VerifyInit(s, det, pub))
			must(t, m.Verify(s, data, sig))
			must(t, m.VerifyInit(s, det, pub))
			must(t, m.VerifyUpdate(s, data[:5]))
			must(t, m.VerifyUpdate(s, data[5:]))
			must(t, m.VerifyFinal(s, sig))
			must(t, m.VerifyInit(s, gen, pub))
			must(t, m.Verify(s, digest[:], sig))

			// Hedged (no parameter: CKH_HEDGE_PREFERRED, empty context).
			must(t, m.SignInit(s, ck.Mechanism{Type: fam.sha256m}, priv))
			h1, _, err := m.Sign(s, data, need)
			must(t, err)
			must(t, m.SignInit(s, ck.Mechanism{Type: fam.sha256m}, priv))
			h2, _, err := m.Sign(s, data, need)
			must(t, err)
			if bytes.Equal(h1, h2) {
				t.Fatal("hedged signatures are equal")
			}
			must(t, m.VerifyInit(s, ck.Mechanism{Type: fam.generic, Param: &ck.HashSignAdditionalContext{Hash: ck.CKM_SHA256}}, pub))
			must(t, m.Verify(s, digest[:], h1))

			// Context, pure vs pre-hash, tampering.
			must(t, m.VerifyInit(s, ck.Mechanism{Type: fam.sha256m}, pub))
			wantRV(t, m.Verify(s, data, sig), ck.CKR_SIGNATURE_INVALID)
			pureMech := ck.Mechanism{Type: fam.pure, Param: &ck.SignAdditionalContext{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: ctx}}
			must(t, m.VerifyInit(s, pureMech, pub))
			wantRV(t, m.Verify(s, data, sig), ck.CKR_SIGNATURE_INVALID)
			must(t, m.SignInit(s, pureMech, priv))
			pure, _, err := m.Sign(s, data, need)
			must(t, err)
			must(t, m.VerifyInit(s, det, pub))
			wantRV(t, m.Verify(s, data, pure), ck.CKR_SIGNATURE_INVALID)
			bad := append([]byte(nil), sig...)
			bad[len(bad)/2] ^= 1
			must(t, m.VerifyInit(s, det, pub))
			wantRV(t, m.Verify(s, data, bad), ck.CKR_SIGNATURE_INVALID)

			// The digest must have the named hash's length.
			must(t, m.SignInit(s, gen, priv))
			_, _, err = m.Sign(s, digest[:31], need)
			wantRV(t, err, ck.CKR_DATA_LEN_RANGE)
			must(t, m.VerifyInit(s, gen, pub))
			wantRV(t, m.Verify(s, data, sig), ck.CKR_DATA_LEN_RANGE)

			// CKM_HASH_*: single-part only; the parameter is required.
			must(t, m.SignInit(s, gen, priv))
			wantRV(t, m.SignUpdate(s, digest[:]), ck.CKR_FUNCTION_NOT_SUPPORTED)
			wantRV(t, m.SignInit(s, ck.Mechanism{Type: fam.generic}, priv), ck.CKR_MECHANISM_PARAM_INVALID)
			wantRV(t, m.SignInit(s, ck.Mechanism{Type: fam.generic, Param: &ck.HashSignAdditionalContext{Hash: ck.CKM_MD5}}, priv), ck.CKR_MECHANISM_PARAM_INVALID)
		})
	}
}
