package hsm

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// TestMessageSignEveryMechanism: for every sign/verify mechanism, a
// message-sign process answers size queries without work, keeps going after
// CKR_BUFFER_TOO_SMALL, signs several messages whole and in parts, and its
// signatures verify with the ordinary C_Verify and with C_VerifyMessage; a
// changed signature is CKR_SIGNATURE_INVALID and does not end the process.
func TestMessageSignEveryMechanism(t *testing.T) {
	for _, c := range signCases() {
		t.Run(c.name, func(t *testing.T) {
			m, s := userSession(t)
			sk, vk := c.key(t, m, s)
			must(t, m.MessageSignInit(s, c.mech, sk))
			must(t, m.MessageVerifyInit(s, c.mech, vk))

			_, need, err := m.SignMessage(s, nil, c.data, -1)
			must(t, err)
			_, need2, err := m.SignMessage(s, nil, c.data, need-1)
			wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
			if need2 != need || need == 0 {
				t.Fatalf("size %d then %d", need, need2)
			}
			var sigs [][]byte
			for i := 0; i < 2; i++ {
				sig, n, err := m.SignMessage(s, nil, c.data, need)
				must(t, err)
				if n != len(sig) || n > need {
					t.Fatalf("signature of %d bytes reported as %d, bound %d", len(sig), n, need)
				}
				sigs = append(sigs, sig)
			}
			// One part through Begin/Next: every mechanism, single-part or not.
			must(t, m.SignMessageBegin(s, nil))
			sig1, _, err := m.SignMessageNext(s, nil, c.data, true, need)
			must(t, err)
			sigs = append(sigs, sig1)
			if c.multi {
				must(t, m.SignMessageBegin(s, nil))
				for _, part := range [][]byte{c.data[:7], c.data[7:100]} {
					out, n, err := m.SignMessageNext(s, nil, part, false, 0)
					must(t, err)
					if out != nil || n != 0 {
						t.Fatalf("intermediate part gave %d bytes", n)
					}
				}
				sig, _, err := m.SignMessageNext(s, nil, c.data[100:], true, need)
				must(t, err)
				sigs = append(sigs, sig)
			}
			for i, sig := range sigs {
				must(t, m.VerifyInit(s, c.mech, vk))
				if err := m.Verify(s, c.data, sig); err != nil {
					t.Fatalf("signature %d by message signing, C_Verify: %v", i, err)
				}
				must(t, m.VerifyMessage(s, nil, c.data, sig))
			}
			bad := bytes.Clone(sigs[0])
			bad[len(bad)/2] ^= 0x40
			wantRV(t, m.VerifyMessage(s, nil, c.data, bad), ck.CKR_SIGNATURE_INVALID)
			must(t, m.VerifyMessage(s, nil, c.data, sigs[0]))
			// A classic signature verifies by message, whole and in parts.
			must(t, m.SignInit(s, c.mech, sk))
			classic, _, err := m.Sign(s, c.data, need)
			must(t, err)
			must(t, m.VerifyMessageBegin(s, nil))
			must(t, m.VerifyMessageNext(s, nil, c.data, classic, true))
			if c.multi {
				must(t, m.VerifyMessageBegin(s, nil))
				must(t, m.VerifyMessageNext(s, nil, c.data[:50], nil, false))
				wantRV(t, m.VerifyMessageNext(s, nil, c.data[50:], bad, true), ck.CKR_SIGNATURE_INVALID)
				must(t, m.VerifyMessageBegin(s, nil))
				must(t, m.VerifyMessageNext(s, nil, c.data[:50], nil, false))
				must(t, m.VerifyMessageNext(s, nil, c.data[50:], classic, true))
			}
			must(t, m.MessageSignFinal(s))
			must(t, m.MessageVerifyFinal(s))
		})
	}
}

func ecPair(t testing.TB, m *Module, s ck.SessionHandle) (sign, verify ck.ObjectHandle) {
	p, k := genPair(t, m, s, ck.CKM_EC_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}})
	return k, p
}

// TestMessageSignStates: the operation-state rules of §5.15/§5.17, as for
// the message AEAD functions.
func TestMessageSignStates(t *testing.T) {
	m, s := userSession(t)
	sk, vk := ecPair(t, m, s)
	mech := ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}
	data := []byte("state machine")

	_, _, err := m.SignMessage(s, nil, data, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, m.SignMessageBegin(s, nil), ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, m.MessageSignFinal(s), ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, m.VerifyMessage(s, nil, data, make([]byte, 64)), ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, m.MessageVerifyFinal(s), ck.CKR_OPERATION_NOT_INITIALIZED)

	// Key checks are C_SignInit's.
	wantRV(t, m.MessageSignInit(s, mech, vk), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	wantRV(t, m.MessageVerifyInit(s, mech, sk), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	wantRV(t, m.MessageSignInit(s, mech, 999999), ck.CKR_KEY_HANDLE_INVALID)
	wantRV(t, m.MessageSignInit(s, ck.Mechanism{Type: ck.CKM_AES_GCM}, sk), ck.CKR_MECHANISM_INVALID)
	wantRV(t, m.MessageSignInit(s, ck.Mechanism{Type: ck.CKM_SHA256_HMAC}, sk), ck.CKR_KEY_TYPE_INCONSISTENT)

	must(t, m.MessageSignInit(s, mech, sk))
	wantRV(t, m.MessageSignInit(s, mech, sk), ck.CKR_OPERATION_ACTIVE)
	// The classic sign operation is a kind of its own.
	must(t, m.SignInit(s, mech, sk))
	classic, _, err := m.Sign(s, data, 64)
	must(t, err)

	_, _, err = m.SignMessageNext(s, nil, data, true, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, m.SignMessageBegin(s, nil))
	wantRV(t, m.SignMessageBegin(s, nil), ck.CKR_OPERATION_ACTIVE)
	_, _, err = m.SignMessage(s, nil, data, 64)
	wantRV(t, err, ck.CKR_OPERATION_ACTIVE)
	_, _, err = m.SignMessageNext(s, nil, data[:5], false, 0)
	must(t, err)
	// A size query and a short buffer keep the message and do not take
	// the part they came with.
	_, need, err := m.SignMessageNext(s, nil, data[5:], true, -1)
	must(t, err)
	if need != 64 {
		t.Fatalf("P-256 signature length %d", need)
	}
	_, _, err = m.SignMessageNext(s, nil, data[5:], true, 10)
	wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
	sig, _, err := m.SignMessageNext(s, nil, data[5:], true, 64)
	must(t, err)
	_, _, err = m.SignMessageNext(s, nil, data, true, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	must(t, m.MessageVerifyInit(s, mech, vk))
	wantRV(t, m.MessageVerifyInit(s, mech, vk), ck.CKR_OPERATION_ACTIVE)
	must(t, m.VerifyMessage(s, nil, data, sig))
	must(t, m.VerifyMessage(s, nil, data, classic))
	wantRV(t, m.VerifyMessage(s, nil, []byte("other data"), sig), ck.CKR_SIGNATURE_INVALID)
	wantRV(t, m.VerifyMessage(s, nil, data, sig[:10]), ck.CKR_SIGNATURE_LEN_RANGE)
	wantRV(t, m.VerifyMessageNext(s, nil, data, sig, true), ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, m.VerifyMessageBegin(s, nil))
	wantRV(t, m.VerifyMessage(s, nil, data, sig), ck.CKR_OPERATION_ACTIVE)
	wantRV(t, m.VerifyMessageBegin(s, nil), ck.CKR_OPERATION_ACTIVE)
	wantRV(t, m.VerifyMessageNext(s, nil, data, []byte("short"), true), ck.CKR_SIGNATURE_LEN_RANGE)
	// The failed message ended; the process goes on.
	must(t, m.VerifyMessage(s, nil, data, sig))

	// C_MessageSignFinal ends the process and any message in it.
	must(t, m.SignMessageBegin(s, nil))
	must(t, m.MessageSignFinal(s))
	_, _, err = m.SignMessageNext(s, nil, data, true, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, m.MessageSignInit(s, mech, sk))
	must(t, m.MessageVerifyFinal(s))
	wantRV(t, m.MessageVerifyFinal(s), ck.CKR_OPERATION_NOT_INITIALIZED)
	// C_SessionCancel ends each process by its own flag only (3.0 §5.6).
	must(t, m.MessageVerifyInit(s, mech, vk))
	must(t, m.SessionCancel(s, ck.CKF_MESSAGE_SIGN))
	_, _, err = m.SignMessage(s, nil, data, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, m.VerifyMessage(s, nil, data, sig))
	must(t, m.SessionCancel(s, ck.CKF_MESSAGE_VERIFY))
	wantRV(t, m.VerifyMessage(s, nil, data, sig), ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, m.MessageSignInit(s, mech, sk))

	// Logout ends a process begun with a private key; the session's
	// processes go with it when it closes.
	must(t, m.Logout(s))
	_, _, err = m.SignMessage(s, nil, data, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, m.CloseSession(s))
	wantRV(t, m.MessageSignFinal(s), ck.CKR_SESSION_HANDLE_INVALID)
}

// TestMessageSignPerMessageParameter: with CKM_ML_DSA and CKM_EDDSA the
// per-message parameter is the mechanism's own parameter type, applied to
// that message only; NULL keeps the init parameter.
func TestMessageSignPerMessageParameter(t *testing.T) {
	m, s := userSession(t)
	pub, priv := genPair(t, m, s, ck.CKM_ML_DSA_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_DSA_44))}})
	ctxA := &ck.SignAdditionalContext{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("context A")}
	ctxB := &ck.SignAdditionalContext{Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("context B")}
	data := bytes.Repeat([]byte("ml-dsa message "), 10)
	must(t, m.MessageSignInit(s, ck.Mechanism{Type: ck.CKM_ML_DSA, Param: ctxA}, priv))
	sigA, _, err := m.SignMessage(s, nil, data, 4096)
	must(t, err)
	sigB, _, err := m.SignMessage(s, ctxB, data, 4096)
	must(t, err)
	// Multi-part ML-DSA signing buffers; deterministic, so equal.
	must(t, m.SignMessageBegin(s, ctxB))
	_, _, err = m.SignMessageNext(s, nil, data[:20], false, 0)
	must(t, err)
	sigB2, _, err := m.SignMessageNext(s, nil, data[20:], true, 4096)
	must(t, err)
	if !bytes.Equal(sigB, sigB2) {
		t.Fatal("deterministic ML-DSA: whole and multi-part message signatures differ")
	}
	_, _, err = m.SignMessage(s, &ck.EDDSAParams{}, data, 4096)
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	must(t, m.MessageSignFinal(s))

	verify := func(ctx *ck.SignAdditionalContext, sig []byte) error {
		must(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_ML_DSA, Param: ctx}, pub))
		return m.Verify(s, data, sig)
	}
	must(t, verify(ctxA, sigA))
	must(t, verify(ctxB, sigB))
	wantRV(t, verify(ctxA, sigB), ck.CKR_SIGNATURE_INVALID)

	must(t, m.MessageVerifyInit(s, ck.Mechanism{Type: ck.CKM_ML_DSA}, pub))
	wantRV(t, m.VerifyMessage(s, nil, data, sigA), ck.CKR_SIGNATURE_INVALID)
	must(t, m.VerifyMessage(s, ctxA, data, sigA))
	must(t, m.VerifyMessage(s, ctxB, data, sigB))
	// ML-DSA verifies single-part only outside C_VerifySignature*.
	must(t, m.VerifyMessageBegin(s, ctxB))
	wantRV(t, m.VerifyMessageNext(s, nil, data[:20], nil, false), ck.CKR_FUNCTION_NOT_SUPPORTED)
	must(t, m.VerifyMessageBegin(s, ctxB))
	must(t, m.VerifyMessageNext(s, nil, data, sigB, true))
	must(t, m.MessageVerifyFinal(s))

	// Ed25519 with a per-message context (Ed25519ctx).
	ed25519 := []byte{0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9'}
	epub, epriv := genPair(t, m, s, ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: ed25519}})
	ectx := &ck.EDDSAParams{ContextData: []byte("per message")}
	must(t, m.MessageSignInit(s, ck.Mechanism{Type: ck.CKM_EDDSA}, epriv))
	esig, _, err := m.SignMessage(s, ectx, data, 64)
	must(t, err)
	plain, _, err := m.SignMessage(s, nil, data, 64)
	must(t, err)
	must(t, m.MessageSignFinal(s))
	must(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_EDDSA, Param: ectx}, epub))
	must(t, m.Verify(s, data, esig))
	must(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_EDDSA}, epub))
	must(t, m.Verify(s, data, plain))
	must(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_EDDSA}, epub))
	wantRV(t, m.Verify(s, data, esig), ck.CKR_SIGNATURE_INVALID)
}

// TestMessageSignAlwaysAuthenticate: a key that needs a context-specific
// login per operation cannot start a process of many signatures.
func TestMessageSignAlwaysAuthenticate(t *testing.T) {
	m, s := userSession(t)
	_, k := genPair(t, m, s, ck.CKM_EC_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}},
		ck.Attribute{Type: ck.CKA_ALWAYS_AUTHENTICATE, Value: tb(true)})
	wantRV(t, m.MessageSignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, k), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
}
