package hsm

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// TestVerifySignatureEveryMechanism: the signature given at init, data
// whole or in parts; a good signature is CKR_OK, a changed one
// CKR_SIGNATURE_INVALID, and both end the operation.
func TestVerifySignatureEveryMechanism(t *testing.T) {
	for _, c := range signCases() {
		t.Run(c.name, func(t *testing.T) {
			m, s := userSession(t)
			sk, vk := c.key(t, m, s)
			must(t, m.SignInit(s, c.mech, sk))
			sig, _, err := m.Sign(s, c.data, 8192)
			must(t, err)
			bad := bytes.Clone(sig)
			bad[len(bad)/2] ^= 0x40

			must(t, m.VerifySignatureInit(s, c.mech, vk, sig))
			must(t, m.VerifySignature(s, c.data))
			wantRV(t, m.VerifySignature(s, c.data), ck.CKR_OPERATION_NOT_INITIALIZED)
			must(t, m.VerifySignatureInit(s, c.mech, vk, bad))
			wantRV(t, m.VerifySignature(s, c.data), ck.CKR_SIGNATURE_INVALID)
			wantRV(t, m.VerifySignatureFinal(s), ck.CKR_OPERATION_NOT_INITIALIZED)
			if !c.multi {
				must(t, m.VerifySignatureInit(s, c.mech, vk, sig))
				wantRV(t, m.VerifySignatureUpdate(s, c.data), ck.CKR_FUNCTION_NOT_SUPPORTED)
				wantRV(t, m.VerifySignatureFinal(s), ck.CKR_OPERATION_NOT_INITIALIZED)
				return
			}
			for _, s2 := range []struct {
				sig  []byte
				want ck.RV
			}{{sig, ck.CKR_OK}, {bad, ck.CKR_SIGNATURE_INVALID}} {
				must(t, m.VerifySignatureInit(s, c.mech, vk, s2.sig))
				must(t, m.VerifySignatureUpdate(s, c.data[:33]))
				wantRV(t, m.VerifySignature(s, c.data), ck.CKR_OPERATION_ACTIVE)
				wantRV(t, m.VerifySignatureUpdate(s, c.data[33:]), ck.CKR_OPERATION_NOT_INITIALIZED)
				must(t, m.VerifySignatureInit(s, c.mech, vk, s2.sig))
				must(t, m.VerifySignatureUpdate(s, c.data[:33]))
				must(t, m.VerifySignatureUpdate(s, c.data[33:]))
				wantRV(t, m.VerifySignatureFinal(s), s2.want)
				wantRV(t, m.VerifySignatureFinal(s), ck.CKR_OPERATION_NOT_INITIALIZED)
			}
		})
	}
}

// TestVerifySignatureStates: the operation is the session's verify
// operation; C_Verify* and C_VerifySignature* do not continue each other's.
func TestVerifySignatureStates(t *testing.T) {
	m, s := userSession(t)
	sk, vk := ecPair(t, m, s)
	mech := ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}
	data := []byte("signature first")
	must(t, m.SignInit(s, mech, sk))
	sig, _, err := m.Sign(s, data, 64)
	must(t, err)

	wantRV(t, m.VerifySignature(s, data), ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, m.VerifySignatureUpdate(s, data), ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, m.VerifySignatureFinal(s), ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, m.VerifySignatureInit(s, mech, sk, sig), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	wantRV(t, m.VerifySignatureInit(s, mech, 424242, sig), ck.CKR_KEY_HANDLE_INVALID)
	wantRV(t, m.VerifySignatureInit(s, ck.Mechanism{Type: ck.CKM_AES_CBC}, vk, sig), ck.CKR_MECHANISM_INVALID)

	// Begun by C_VerifyInit: C_VerifySignature* does not touch it.
	must(t, m.VerifyInit(s, mech, vk))
	wantRV(t, m.VerifySignatureInit(s, mech, vk, sig), ck.CKR_OPERATION_ACTIVE)
	wantRV(t, m.VerifySignature(s, data), ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, m.Verify(s, data, sig))

	// Begun by C_VerifySignatureInit: C_VerifyInit is refused, C_Verify*
	// cannot continue it.
	must(t, m.VerifySignatureInit(s, mech, vk, sig))
	wantRV(t, m.VerifyInit(s, mech, vk), ck.CKR_OPERATION_ACTIVE)
	wantRV(t, m.VerifySignatureInit(s, mech, vk, sig), ck.CKR_OPERATION_ACTIVE)
	wantRV(t, m.Verify(s, data, sig), ck.CKR_OPERATION_NOT_INITIALIZED)

	// C_SessionCancel(CKF_VERIFY) ends it.
	must(t, m.VerifySignatureInit(s, mech, vk, sig))
	must(t, m.SessionCancel(s, ck.CKF_VERIFY))
	wantRV(t, m.VerifySignature(s, data), ck.CKR_OPERATION_NOT_INITIALIZED)

	// The signature is the caller's: changing the buffer after init
	// changes nothing.
	mine := bytes.Clone(sig)
	must(t, m.VerifySignatureInit(s, mech, vk, mine))
	mine[3] ^= 1
	must(t, m.VerifySignature(s, data))

	// A wrong length is found at the end.
	must(t, m.VerifySignatureInit(s, mech, vk, sig[:20]))
	wantRV(t, m.VerifySignature(s, data), ck.CKR_SIGNATURE_LEN_RANGE)
}

// TestVerifySignatureMLDSAMultiPart: 3.2 allows multi-part ML-DSA
// verification only with the signature first; it must agree with the
// single-part result.
func TestVerifySignatureMLDSAMultiPart(t *testing.T) {
	m, s := userSession(t)
	pub, priv := genPair(t, m, s, ck.CKM_ML_DSA_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_DSA_44))}})
	mech := ck.Mechanism{Type: ck.CKM_ML_DSA, Param: &ck.SignAdditionalContext{Context: []byte("ctx")}}
	data := bytes.Repeat([]byte("lattice "), 30)
	must(t, m.SignInit(s, mech, priv))
	sig, _, err := m.Sign(s, data, 4096)
	must(t, err)
	must(t, m.VerifyInit(s, mech, pub))
	wantRV(t, m.VerifyUpdate(s, data), ck.CKR_FUNCTION_NOT_SUPPORTED)

	must(t, m.VerifySignatureInit(s, mech, pub, sig))
	for i := 0; i < len(data); i += 50 {
		must(t, m.VerifySignatureUpdate(s, data[i:min(i+50, len(data))]))
	}
	must(t, m.VerifySignatureFinal(s))
	must(t, m.VerifySignatureInit(s, mech, pub, sig))
	must(t, m.VerifySignatureUpdate(s, data[:100]))
	must(t, m.VerifySignatureUpdate(s, []byte("tampered")))
	wantRV(t, m.VerifySignatureFinal(s), ck.CKR_SIGNATURE_INVALID)
}

// TestGetSessionValidationFlags: no validation is claimed, so no flag.
func TestGetSessionValidationFlags(t *testing.T) {
	m, s := userSession(t)
	f, err := m.GetSessionValidationFlags(s, 1)
	must(t, err)
	if f != 0 {
		t.Fatalf("CKS_LAST_VALIDATION_OK flags %#x on an unvalidated token", uint64(f))
	}
	_, err = m.GetSessionValidationFlags(s+1000, 1)
	wantRV(t, err, ck.CKR_SESSION_HANDLE_INVALID)
}
