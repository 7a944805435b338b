package hsm

import (
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// Message-based signing and verification (PKCS#11 3.0 §5.15 "Message-based
// signing and MACing functions", §5.17 "Message-based functions for
// verifying signatures and MACs"). A process (C_MessageSignInit ..
// C_MessageSignFinal) fixes a mechanism and a key; within it each message
// is an independent signature, whole (C_SignMessage) or in parts
// (C_SignMessageBegin, then C_SignMessageNext until the call that asks for
// the signature). Every mechanism with single-part sign/verify takes part.
//
// The per-message parameter: the spec leaves its meaning to the mechanism,
// and no mechanism section defines one for signatures, so gohsm reads it as
// the mechanism's own parameter type (CK_SIGN_ADDITIONAL_CONTEXT for
// CKM_ML_DSA, CK_EDDSA_PARAMS for CKM_EDDSA, CK_RSA_PKCS_PSS_PARAMS ...)
// applied to that one message; NULL keeps the parameter given at init. The
// parameter of C_SignMessageNext / C_VerifyMessageNext is ignored: a
// message's parameters are those of its Begin.
//
// Errors: a failed message ends that message, never the process; a size
// query and CKR_BUFFER_TOO_SMALL leave the message as it was and do not
// take the part they came with (§5.15 C_SignMessageNext).

// msgSignOp is one message-based signing or verification process.
type msgSignOp struct {
	mm    *mech.Mechanism
	key   *mech.Key
	param any // the parameter given at init
	// private and gen: as operation's; a logout ends the process.
	private bool
	gen     uint64

	// The message in progress (Begin .. last Next).
	inMessage bool
	parts     bool // an intermediate part was taken
	signer    mech.Signer
	verifier  mech.Verifier
}

func (mo *msgSignOp) endMessage() {
	mo.inMessage, mo.parts = false, false
	mo.signer, mo.verifier = nil, nil
}

func (mo *msgSignOp) paramFor(p any) any {
	if p == nil {
		return mo.param
	}
	return p
}

// slot is where s keeps its message sign (or verify) process: an
// operation of kind opMessageSign / opMessageVerify, so closing the session
// and C_SessionCancel(CKF_MESSAGE_SIGN / _VERIFY) end it like any other.
// The caller holds s.mu.
func slot(s *Session, verify bool) **operation {
	if verify {
		return &s.ops[opMessageVerify]
	}
	return &s.ops[opMessageSign]
}

func current(s *Session, verify bool) *msgSignOp {
	if op := *slot(s, verify); op != nil {
		return op.msgSign
	}
	return nil
}

// msgActive returns the locked session and its process. A call that fails
// with it leaves the session unlocked.
func (m *Module) msgActive(h ck.SessionHandle, verify bool) (*Session, *msgSignOp, error) {
	s, err := m.lock(h)
	if err != nil {
		return nil, nil, err
	}
	mo := current(s, verify)
	if mo == nil {
		s.mu.Unlock()
		return nil, nil, ck.CKR_OPERATION_NOT_INITIALIZED
	}
	if mo.private && s.tok.loginGen.Load() != mo.gen {
		*slot(s, verify) = nil
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("message process ended by logout: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	return s, mo, nil
}

func (m *Module) messageSignInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle, verify bool) error {
	s, err := m.lock(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if mo := current(s, verify); mo != nil {
		// A process ended by a logout is no longer active.
		if !mo.private || s.tok.loginGen.Load() == mo.gen {
			return ck.CKR_OPERATION_ACTIVE
		}
		*slot(s, verify) = nil
	}
	gen := s.tok.loginGen.Load()
	u := useMessageSign
	if verify {
		u = useMessageVerify
	}
	g, err := m.authorize(s, u, kh, mt)
	if err != nil {
		return err
	}
	mm, key, o := g.mm, g.key, g.obj
	// The context-specific login of §4.9 authorises one operation; a
	// process signs any number of messages, so such keys are refused.
	if !verify && o.boolAttr(ck.CKA_ALWAYS_AUTHENTICATE) {
		return fmt.Errorf("message signing with a CKA_ALWAYS_AUTHENTICATE key: %w", ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	// Build one operation now so a bad parameter or key fails the init.
	if verify {
		_, err = mm.Verify(key, mt.Param)
	} else {
		_, err = mm.Sign(key, mt.Param)
	}
	if err != nil {
		return fmt.Errorf("%v message init: %w", mt.Type, err)
	}
	mo := &msgSignOp{mm: mm, key: key, param: mt.Param}
	if o.private {
		mo.private, mo.gen = true, gen
	}
	*slot(s, verify) = &operation{msgSign: mo}
	return nil
}

func (m *Module) finalMessageSign(h ck.SessionHandle, verify bool) error {
	s, mo, err := m.msgActive(h, verify)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	mo.endMessage()
	*slot(s, verify) = nil
	return nil
}

// MessageSignInit is C_MessageSignInit. (A NULL mechanism, which ends the
// process, is C_MessageSignFinal at the shim.)
func (m *Module) MessageSignInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.messageSignInit(h, mt, kh, false)
}

// SignMessage is C_SignMessage: one whole message. Signature lengths are
// exact, so a size query and a short buffer are answered before any work.
func (m *Module) SignMessage(h ck.SessionHandle, param any, data []byte, outCap int) ([]byte, int, error) {
	s, mo, err := m.msgActive(h, false)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if mo.inMessage {
		return nil, 0, fmt.Errorf("a multi-part message is in progress: %w", ck.CKR_OPERATION_ACTIVE)
	}
	sg, err := mo.mm.Sign(mo.key, mo.paramFor(param))
	if err != nil {
		return nil, 0, fmt.Errorf("%v message: %w", mo.mm.Type, err)
	}
	need := sg.Len()
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	sig, err := sg.Sign(data)
	if err != nil {
		return nil, 0, err
	}
	return sig, len(sig), nil
}

// SignMessageBegin is C_SignMessageBegin.
func (m *Module) SignMessageBegin(h ck.SessionHandle, param any) error {
	s, mo, err := m.msgActive(h, false)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if mo.inMessage {
		return fmt.Errorf("a multi-part message is in progress: %w", ck.CKR_OPERATION_ACTIVE)
	}
	sg, err := mo.mm.Sign(mo.key, mo.paramFor(param))
	if err != nil {
		return fmt.Errorf("%v message: %w", mo.mm.Type, err)
	}
	mo.signer, mo.inMessage = sg, true
	return nil
}

// SignMessageNext is C_SignMessageNext. last is the C caller's non-NULL
// pulSignatureLen: without it the part is taken and nothing is output
// (outCap is ignored); with it the part is the last one and the signature
// follows the output convention.
func (m *Module) SignMessageNext(h ck.SessionHandle, param any, in []byte, last bool, outCap int) ([]byte, int, error) {
	s, mo, err := m.msgActive(h, false)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if !mo.inMessage {
		return nil, 0, fmt.Errorf("no message begun: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	if !last {
		if err := mo.signer.Update(in); err != nil {
			mo.endMessage()
			return nil, 0, err
		}
		mo.parts = true
		return nil, 0, nil
	}
	need := mo.signer.Len()
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	var sig []byte
	if mo.parts {
		if err = mo.signer.Update(in); err == nil {
			sig, err = mo.signer.Final()
		}
	} else {
		// One part: the single-part form, which also serves mechanisms
		// that have no multi-part form (CKM_ECDSA, CKM_RSA_PKCS).
		sig, err = mo.signer.Sign(in)
	}
	mo.endMessage()
	if err != nil {
		return nil, 0, err
	}
	return sig, len(sig), nil
}

// MessageSignFinal is C_MessageSignFinal: it ends the process, and with it
// any message in progress.
func (m *Module) MessageSignFinal(h ck.SessionHandle) error {
	return m.finalMessageSign(h, false)
}

// MessageVerifyInit is C_MessageVerifyInit.
func (m *Module) MessageVerifyInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.messageSignInit(h, mt, kh, true)
}

// VerifyMessage is C_VerifyMessage: a mismatch is CKR_SIGNATURE_INVALID
// and the process goes on.
func (m *Module) VerifyMessage(h ck.SessionHandle, param any, data, sig []byte) error {
	s, mo, err := m.msgActive(h, true)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if mo.inMessage {
		return fmt.Errorf("a multi-part message is in progress: %w", ck.CKR_OPERATION_ACTIVE)
	}
	v, err := mo.mm.Verify(mo.key, mo.paramFor(param))
	if err != nil {
		return fmt.Errorf("%v message: %w", mo.mm.Type, err)
	}
	return v.Verify(data, sig)
}

// VerifyMessageBegin is C_VerifyMessageBegin.
func (m *Module) VerifyMessageBegin(h ck.SessionHandle, param any) error {
	s, mo, err := m.msgActive(h, true)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if mo.inMessage {
		return fmt.Errorf("a multi-part message is in progress: %w", ck.CKR_OPERATION_ACTIVE)
	}
	v, err := mo.mm.Verify(mo.key, mo.paramFor(param))
	if err != nil {
		return fmt.Errorf("%v message: %w", mo.mm.Type, err)
	}
	mo.verifier, mo.inMessage = v, true
	return nil
}

// VerifyMessageNext is C_VerifyMessageNext. last is the C caller's
// non-NULL pSignature; that call always ends the message.
func (m *Module) VerifyMessageNext(h ck.SessionHandle, param any, in, sig []byte, last bool) error {
	s, mo, err := m.msgActive(h, true)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !mo.inMessage {
		return fmt.Errorf("no message begun: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	if !last {
		if err := mo.verifier.Update(in); err != nil {
			mo.endMessage()
			return err
		}
		mo.parts = true
		return nil
	}
	v, parts := mo.verifier, mo.parts
	mo.endMessage()
	if !parts {
		return v.Verify(in, sig)
	}
	if err := v.Update(in); err != nil {
		return err
	}
	return v.Final(sig)
}

// MessageVerifyFinal is C_MessageVerifyFinal.
func (m *Module) MessageVerifyFinal(h ck.SessionHandle) error {
	return m.finalMessageSign(h, true)
}

// MessageSignMechanism reports the mechanism of the session's message sign
// or verify process (Backend).
func (m *Module) MessageSignMechanism(h ck.SessionHandle, verify bool) (ck.MechanismType, error) {
	s, mo, err := m.msgActive(h, verify)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return mo.mm.Type, nil
}
