package hsm

import (
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// Message-based encryption and decryption (PKCS#11 3.0 §5.9-§5.12). A
// process (C_MessageEncryptInit .. C_MessageEncryptFinal) is one operation
// of its own kind in the session, beside the classic C_EncryptInit one, so
// both can run at once; C_SessionCancel ends it with CKF_MESSAGE_ENCRYPT /
// CKF_MESSAGE_DECRYPT. Within it, messages go one at a time: whole
// (C_EncryptMessage) or in parts (Begin, then Next until
// CKF_END_OF_MESSAGE).
//
// Parts are buffered and the message is processed at its last part, so a
// decryption releases no plaintext before the tag is checked and an
// encryption returns all its ciphertext with the last part (§5.2 lets an
// intermediate call output nothing). Lengths are exact (the tag travels in
// the parameter, not the output), so size queries and
// CKR_BUFFER_TOO_SMALL are answered before any work: no IV is generated
// and no input consumed by a call that returns no output.
//
// Errors: a failed message ends that message, never the process, except
// CKR_BUFFER_TOO_SMALL and a size query, which leave the message as it was
// (§5.9 C_EncryptMessageNext).

// messageOp is the state of one message-based process.
type messageOp struct {
	cipher mech.MessageCipher
	// inMessage is set by Begin and cleared by the last Next.
	inMessage bool
	buf       []byte
	// nonceByToken, when set, must accept every message's parameter:
	// the key may wrap sensitive keys, so the token makes every nonce
	// (gate.go, mech.Mechanism.MessageNonceByToken).
	nonceByToken func(param any) bool
}

// checkNonce refuses a message whose parameter would take the caller's
// nonce under a key that allows only the token's.
func (mo *messageOp) checkNonce(param any) error {
	if mo.nonceByToken != nil && !mo.nonceByToken(param) {
		return fmt.Errorf("the key may wrap sensitive keys: only a nonce the token makes at random (CKG_GENERATE_RANDOM, 96 free bits): %w",
			ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return nil
}

func (mo *messageOp) endMessage() {
	zero(mo.buf)
	mo.buf = nil
	mo.inMessage = false
	mo.cipher.Abort()
}

// MessageEncryptInit is C_MessageEncryptInit. (A NULL mechanism, which
// ends the process, is C_SessionCancel(CKF_MESSAGE_ENCRYPT) at the shim.)
func (m *Module) MessageEncryptInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opMessageEncrypt, mt, kh, useMessageEncrypt, func(g grant) (*operation, error) {
		c, err := g.mm.MessageEncrypt(g.key, g.param)
		mo := &messageOp{cipher: c}
		if g.messageNonceByToken {
			mo.nonceByToken = g.mm.MessageNonceByToken
		}
		return &operation{msg: mo}, err
	})
}

// MessageDecryptInit is C_MessageDecryptInit.
func (m *Module) MessageDecryptInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opMessageDecrypt, mt, kh, useMessageDecrypt, func(g grant) (*operation, error) {
		c, err := g.mm.MessageDecrypt(g.key, g.param)
		return &operation{msg: &messageOp{cipher: c}}, err
	})
}

// oneMessage is C_EncryptMessage / C_DecryptMessage: a whole message.
func (m *Module) oneMessage(h ck.SessionHandle, k opKind, param any, aad, in []byte, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, k)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	mo := op.msg
	if mo.inMessage {
		return nil, 0, fmt.Errorf("a multi-part message is in progress: %w", ck.CKR_OPERATION_ACTIVE)
	}
	need := mo.cipher.OutLen(len(in))
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	if err := mo.checkNonce(param); err != nil {
		return nil, 0, err
	}
	if err := mo.cipher.Begin(param, aad); err != nil {
		return nil, 0, err
	}
	out, err := mo.cipher.Finish(param, in)
	if err != nil {
		return nil, 0, err
	}
	return out, len(out), nil
}

func (m *Module) beginMessage(h ck.SessionHandle, k opKind, param any, aad []byte) error {
	s, op, err := m.active(h, k)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	mo := op.msg
	if mo.inMessage {
		return fmt.Errorf("a multi-part message is in progress: %w", ck.CKR_OPERATION_ACTIVE)
	}
	if err := mo.checkNonce(param); err != nil {
		return err
	}
	if err := mo.cipher.Begin(param, aad); err != nil {
		return err
	}
	mo.inMessage = true
	return nil
}

func (m *Module) nextMessage(h ck.SessionHandle, k opKind, param any, in []byte, outCap int, flags ck.Flags) ([]byte, int, error) {
	if flags&^ck.CKF_END_OF_MESSAGE != 0 {
		return nil, 0, fmt.Errorf("message flags %#x: %w", uint64(flags), ck.CKR_ARGUMENTS_BAD)
	}
	s, op, err := m.active(h, k)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	mo := op.msg
	if !mo.inMessage {
		return nil, 0, fmt.Errorf("no message begun: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	if flags&ck.CKF_END_OF_MESSAGE == 0 {
		// An intermediate part outputs nothing; a size query says so
		// without taking the part.
		if outCap >= 0 {
			mo.buf = append(mo.buf, in...)
		}
		return nil, 0, nil
	}
	need := mo.cipher.OutLen(len(mo.buf) + len(in))
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	whole := append(mo.buf, in...)
	mo.buf = whole
	out, err := mo.cipher.Finish(param, whole)
	mo.endMessage()
	if err != nil {
		return nil, 0, err
	}
	return out, len(out), nil
}

func (m *Module) finalMessages(h ck.SessionHandle, k opKind) error {
	s, op, err := m.active(h, k)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	op.msg.endMessage()
	s.ops[k] = nil
	return nil
}

// EncryptMessage is C_EncryptMessage. param is the per-message parameter
// (*ck.GCMMessageParams, *ck.ChaCha20Poly1305MsgParams); the generated IV
// and the tag are written into it.
func (m *Module) EncryptMessage(h ck.SessionHandle, param any, aad, plaintext []byte, outCap int) ([]byte, int, error) {
	return m.oneMessage(h, opMessageEncrypt, param, aad, plaintext, outCap)
}

// EncryptMessageBegin is C_EncryptMessageBegin; a generated IV is written
// into param.
func (m *Module) EncryptMessageBegin(h ck.SessionHandle, param any, aad []byte) error {
	return m.beginMessage(h, opMessageEncrypt, param, aad)
}

// EncryptMessageNext is C_EncryptMessageNext; with CKF_END_OF_MESSAGE the
// tag is written into param.
func (m *Module) EncryptMessageNext(h ck.SessionHandle, param any, in []byte, outCap int, flags ck.Flags) ([]byte, int, error) {
	return m.nextMessage(h, opMessageEncrypt, param, in, outCap, flags)
}

// MessageEncryptFinal is C_MessageEncryptFinal.
func (m *Module) MessageEncryptFinal(h ck.SessionHandle) error {
	return m.finalMessages(h, opMessageEncrypt)
}

// DecryptMessage is C_DecryptMessage; param carries the IV and the tag.
// A wrong tag is CKR_ENCRYPTED_DATA_INVALID.
func (m *Module) DecryptMessage(h ck.SessionHandle, param any, aad, ciphertext []byte, outCap int) ([]byte, int, error) {
	return m.oneMessage(h, opMessageDecrypt, param, aad, ciphertext, outCap)
}

// DecryptMessageBegin is C_DecryptMessageBegin.
func (m *Module) DecryptMessageBegin(h ck.SessionHandle, param any, aad []byte) error {
	return m.beginMessage(h, opMessageDecrypt, param, aad)
}

// DecryptMessageNext is C_DecryptMessageNext: the tag is read from the
// parameter of the last part (or, if it has none, of Begin).
func (m *Module) DecryptMessageNext(h ck.SessionHandle, param any, in []byte, outCap int, flags ck.Flags) ([]byte, int, error) {
	return m.nextMessage(h, opMessageDecrypt, param, in, outCap, flags)
}

// MessageDecryptFinal is C_MessageDecryptFinal.
func (m *Module) MessageDecryptFinal(h ck.SessionHandle) error {
	return m.finalMessages(h, opMessageDecrypt)
}
