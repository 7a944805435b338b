package hsm

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// aeadCase is one mechanism's per-message parameter factory.
type aeadCase struct {
	name  string
	mech  ck.MechanismType
	key   func(t testing.TB, m *Module, s ck.SessionHandle) ck.ObjectHandle
	param func(iv, tag []byte) any // iv nil: let the token generate it
	iv    func(p any) []byte
	tag   func(p any) []byte
}

var aeadCases = []aeadCase{{
	name: "AES-GCM", mech: ck.CKM_AES_GCM,
	key: func(t testing.TB, m *Module, s ck.SessionHandle) ck.ObjectHandle {
		return genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32)
	},
	param: func(iv, tag []byte) any {
		if iv == nil {
			return &ck.GCMMessageParams{IV: make([]byte, 12), IVGenerator: ck.CKG_GENERATE, TagBits: 128}
		}
		return &ck.GCMMessageParams{IV: iv, Tag: tag, TagBits: 128}
	},
	iv:  func(p any) []byte { return p.(*ck.GCMMessageParams).IV },
	tag: func(p any) []byte { return p.(*ck.GCMMessageParams).Tag },
}, {
	name: "ChaCha20-Poly1305", mech: ck.CKM_CHACHA20_POLY1305,
	key: func(t testing.TB, m *Module, s ck.SessionHandle) ck.ObjectHandle {
		return genSecret(t, m, s, ck.CKM_CHACHA20_KEY_GEN, 0)
	},
	param: func(iv, tag []byte) any {
		if iv == nil {
			// The ChaCha20 message parameter has no generator.
			iv = bytes.Repeat([]byte{byte(len(tag))}, 12)
		}
		return &ck.ChaCha20Poly1305MsgParams{Nonce: iv, Tag: tag}
	},
	iv:  func(p any) []byte { return p.(*ck.ChaCha20Poly1305MsgParams).Nonce },
	tag: func(p any) []byte { return p.(*ck.ChaCha20Poly1305MsgParams).Tag },
}}

// TestMessageAEAD: N messages with token-generated IVs (GCM) never repeat
// an IV, each decrypts, a changed ciphertext, tag or AAD is
// CKR_ENCRYPTED_DATA_INVALID, and a multi-part message equals the one-shot
// one.
func TestMessageAEAD(t *testing.T) {
	for _, c := range aeadCases {
		t.Run(c.name, func(t *testing.T) {
			m, s := userSession(t)
			k := c.key(t, m, s)
			must(t, m.MessageEncryptInit(s, ck.Mechanism{Type: c.mech}, k))
			must(t, m.MessageDecryptInit(s, ck.Mechanism{Type: c.mech}, k))
			const n = 200
			seen := map[string]bool{}
			for i := range n {
				aad := []byte(fmt.Sprintf("header %d", i))
				pt := bytes.Repeat([]byte{byte(i)}, i)
				var p any
				if c.mech == ck.CKM_AES_GCM {
					p = c.param(nil, nil)
				} else {
					p = c.param(append(make([]byte, 8), byte(i>>24), byte(i>>16), byte(i>>8), byte(i)), nil)
				}
				ct, need, err := m.EncryptMessage(s, p, aad, pt, 1<<16)
				must(t, err)
				if need != len(pt) || len(ct) != len(pt) {
					t.Fatalf("message %d: %d bytes in, %d out (need %d)", i, len(pt), len(ct), need)
				}
				iv, tag := c.iv(p), c.tag(p)
				if seen[string(iv)] {
					t.Fatalf("IV %x repeated at message %d", iv, i)
				}
				seen[string(iv)] = true
				if len(tag) != 16 {
					t.Fatalf("tag of %d bytes", len(tag))
				}
				got, _, err := m.DecryptMessage(s, c.param(iv, tag), aad, ct, 1<<16)
				must(t, err)
				if !bytes.Equal(got, pt) {
					t.Fatalf("message %d decrypted to %x", i, got)
				}
				if i == 0 {
					continue
				}
				bad := bytes.Clone(ct)
				bad[0] ^= 1
				_, _, err = m.DecryptMessage(s, c.param(iv, tag), aad, bad, 1<<16)
				wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
				badTag := bytes.Clone(tag)
				badTag[15] ^= 1
				_, _, err = m.DecryptMessage(s, c.param(iv, badTag), aad, ct, 1<<16)
				wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
				_, _, err = m.DecryptMessage(s, c.param(iv, tag), append(aad, 'x'), ct, 1<<16)
				wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
			}

			// Multi-part equals one-shot, with the IV chosen by the caller.
			iv := bytes.Repeat([]byte{0x42}, 12)
			msg := bytes.Repeat([]byte("0123456789"), 50)
			one := c.param(bytes.Clone(iv), nil)
			want, _, err := m.EncryptMessage(s, one, []byte("aad"), msg, len(msg))
			must(t, err)
			multi := c.param(bytes.Clone(iv), nil)
			must(t, m.EncryptMessageBegin(s, multi, []byte("aad")))
			var got []byte
			for off := 0; off < len(msg); off += 64 {
				end := min(off+64, len(msg))
				var flags ck.Flags
				if end == len(msg) {
					flags = ck.CKF_END_OF_MESSAGE
					// Size query, then a buffer too small: neither ends
					// the message nor takes the part.
					_, need, err := m.EncryptMessageNext(s, multi, msg[off:end], -1, flags)
					must(t, err)
					if need != len(msg) {
						t.Fatalf("last part size query: %d, want %d", need, len(msg))
					}
					_, _, err = m.EncryptMessageNext(s, multi, msg[off:end], need-1, flags)
					wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
				}
				out, _, err := m.EncryptMessageNext(s, multi, msg[off:end], len(msg), flags)
				must(t, err)
				got = append(got, out...)
			}
			if !bytes.Equal(got, want) || !bytes.Equal(c.tag(multi), c.tag(one)) {
				t.Fatalf("multi-part differs from one-shot")
			}
			// And decrypts in parts, the tag given with the last part.
			must(t, m.DecryptMessageBegin(s, c.param(bytes.Clone(iv), nil), []byte("aad")))
			_, _, err = m.DecryptMessageNext(s, c.param(iv, nil), want[:100], len(msg), 0)
			must(t, err)
			pt, _, err := m.DecryptMessageNext(s, c.param(iv, c.tag(one)), want[100:], len(msg), ck.CKF_END_OF_MESSAGE)
			must(t, err)
			if !bytes.Equal(pt, msg) {
				t.Fatal("multi-part decryption differs")
			}
			must(t, m.MessageEncryptFinal(s))
			must(t, m.MessageDecryptFinal(s))
			_, _, err = m.EncryptMessage(s, c.param(iv, nil), nil, msg, len(msg))
			wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
		})
	}
}

// TestMessageStates: the process/message state machine, size queries that
// do no work, and C_SessionCancel.
func TestMessageStates(t *testing.T) {
	m, s := userSession(t)
	k := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16)
	gcm := ck.Mechanism{Type: ck.CKM_AES_GCM}
	gen := func() *ck.GCMMessageParams {
		return &ck.GCMMessageParams{IV: make([]byte, 12), IVGenerator: ck.CKG_GENERATE_COUNTER, TagBits: 128}
	}
	_, _, err := m.EncryptMessage(s, gen(), nil, nil, 0)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, m.MessageEncryptInit(s, gcm, k))
	wantRV(t, m.MessageEncryptInit(s, gcm, k), ck.CKR_OPERATION_ACTIVE)
	// The classic operation is independent.
	must(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: make([]byte, 12), TagBits: 128}}, k))

	// A size query and a short buffer generate no IV: the first real
	// message still gets counter 0.
	p := gen()
	_, need, err := m.EncryptMessage(s, p, nil, []byte("hello"), -1)
	must(t, err)
	_, _, err2 := m.EncryptMessage(s, p, nil, []byte("hello"), 4)
	wantRV(t, err2, ck.CKR_BUFFER_TOO_SMALL)
	if need != 5 || p.Tag != nil || !bytes.Equal(p.IV, make([]byte, 12)) {
		t.Fatalf("size query did work: need %d, tag %x, iv %x", need, p.Tag, p.IV)
	}
	_, _, err = m.EncryptMessage(s, p, nil, []byte("hello"), 5)
	must(t, err)
	if !bytes.Equal(p.IV, make([]byte, 12)) {
		t.Fatalf("first counter IV %x", p.IV)
	}
	p2 := gen()
	must(t, m.EncryptMessageBegin(s, p2, nil))
	if p2.IV[11] != 1 {
		t.Fatalf("Begin did not return the generated IV: %x", p2.IV)
	}
	wantRV(t, m.EncryptMessageBegin(s, gen(), nil), ck.CKR_OPERATION_ACTIVE)
	_, _, err = m.EncryptMessage(s, gen(), nil, nil, 0)
	wantRV(t, err, ck.CKR_OPERATION_ACTIVE)
	_, _, err = m.EncryptMessageNext(s, p2, []byte("x"), 1, 0x80)
	wantRV(t, err, ck.CKR_ARGUMENTS_BAD)
	_, _, err = m.EncryptMessageNext(s, nil, []byte("x"), 1, ck.CKF_END_OF_MESSAGE)
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID) // nowhere to return the tag; ends the message
	_, _, err = m.EncryptMessageNext(s, p2, []byte("x"), 1, ck.CKF_END_OF_MESSAGE)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	// A bad parameter fails that message only.
	_, _, err = m.EncryptMessage(s, &ck.GCMMessageParams{IV: make([]byte, 12), TagBits: 7}, nil, nil, 0)
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	_, _, err = m.EncryptMessage(s, gen(), nil, nil, 0)
	must(t, err)

	// C_SessionCancel ends the message process and leaves the rest.
	must(t, m.SessionCancel(s, ck.CKF_MESSAGE_ENCRYPT))
	_, _, err = m.EncryptMessage(s, gen(), nil, nil, 0)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	_, _, err = m.Encrypt(s, []byte("classic"), 100)
	must(t, err)

	// Key and mechanism checks at init.
	must(t, m.MessageDecryptInit(s, gcm, k))
	wantRV(t, m.MessageEncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_CBC}, k), ck.CKR_MECHANISM_INVALID)
	wantRV(t, m.MessageEncryptInit(s, ck.Mechanism{Type: ck.CKM_CHACHA20_POLY1305}, k), ck.CKR_KEY_TYPE_INCONSISTENT)
	noEnc := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16)
	must(t, m.SetAttributeValue(s, noEnc, []ck.Attribute{{Type: ck.CKA_ENCRYPT, Value: tb(false)}}))
	wantRV(t, m.MessageEncryptInit(s, gcm, noEnc), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	// Logout ends an operation on a private key.
	must(t, m.Logout(s))
	_, _, err = m.DecryptMessage(s, gen(), nil, nil, 0)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
}

func TestMessageMechanismInfo(t *testing.T) {
	m, _ := userSession(t)
	for _, mt := range []ck.MechanismType{ck.CKM_AES_GCM, ck.CKM_CHACHA20_POLY1305} {
		info, err := m.GetMechanismInfo(0, mt)
		must(t, err)
		if info.Flags&(ck.CKF_MESSAGE_ENCRYPT|ck.CKF_MESSAGE_DECRYPT) != ck.CKF_MESSAGE_ENCRYPT|ck.CKF_MESSAGE_DECRYPT {
			t.Errorf("%v: flags %#x lack the message bits", mt, uint64(info.Flags))
		}
	}
	info, err := m.GetMechanismInfo(0, ck.CKM_ML_KEM)
	must(t, err)
	if info.Flags != ck.CKF_ENCAPSULATE|ck.CKF_DECAPSULATE || info.MinKeySize != 800 || info.MaxKeySize != 1568 {
		t.Errorf("CKM_ML_KEM info %+v", info)
	}
}
