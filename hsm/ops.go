package hsm

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

type opKind int

const (
	opEncrypt opKind = iota
	opDecrypt
	opDigest
	opSign
	opVerify
	opMessageEncrypt // 3.0 message-based processes (message.go)
	opMessageDecrypt
	opMessageSign // (msgsign.go)
	opMessageVerify
	opKinds
)

// opFlags maps kinds to the CKF_ bits C_SessionCancel names them by.
var opFlags = [opKinds]ck.Flags{ck.CKF_ENCRYPT, ck.CKF_DECRYPT, ck.CKF_DIGEST, ck.CKF_SIGN, ck.CKF_VERIFY,
	ck.CKF_MESSAGE_ENCRYPT, ck.CKF_MESSAGE_DECRYPT, ck.CKF_MESSAGE_SIGN, ck.CKF_MESSAGE_VERIFY}

// operation is one active cryptographic operation of a session.
type operation struct {
	cipher   mech.Cipher
	signer   mech.Signer
	verifier mech.Verifier
	digest   hash.Hash
	// mech is the operation's mechanism (C_DigestKey passes the key it
	// digests through the gate with it).
	mech ck.Mechanism
	// msg is a message-based encryption process; message.go keeps its
	// state. msgSign is a message-based signing process (msgsign.go).
	msg     *messageOp
	msgSign *msgSignOp
	// parts is how the operation is being used: once single-part (even
	// by a size query) or multi-part, it stays so (§5.2; crossing over is
	// CKR_OPERATION_ACTIVE and ends the operation, as strict HSMs do).
	parts partMode
	// gen is the token's login generation when a private key began the
	// operation; a logout in between ends it.
	private bool
	gen     uint64
	// needAuth marks a CKA_ALWAYS_AUTHENTICATE key: the operation waits
	// for C_Login(CKU_CONTEXT_SPECIFIC) (§4.9).
	needAuth   bool
	authorised bool
}

// partMode is whether an operation is single-part or multi-part.
type partMode uint8

const (
	partsOpen partMode = iota // neither yet
	partsSingle
	partsMulti
)

// single claims op for a single-part call. If it was used multi-part the
// operation ends and the caller returns the error (§5.2: C_Encrypt cannot
// finish what C_EncryptUpdate began; any error but a size query or
// CKR_BUFFER_TOO_SMALL ends the operation, §5.8-§5.12).
func (s *Session) single(k opKind, op *operation) error { return s.claim(k, op, partsSingle) }

// multi claims op for a multi-part call (an Update, a Final, C_DigestKey).
func (s *Session) multi(k opKind, op *operation) error { return s.claim(k, op, partsMulti) }

func (s *Session) claim(k opKind, op *operation, mode partMode) error {
	if op.parts != partsOpen && op.parts != mode {
		s.ops[k] = nil
		return fmt.Errorf("operation is %s: %w", [...]string{"", "single-part", "multi-part"}[op.parts], ck.CKR_OPERATION_ACTIVE)
	}
	op.parts = mode
	return nil
}

func (s *Session) endAll() {
	s.ops = [opKinds]*operation{}
	s.find = nil
}

func (s *Session) pendingAuth() *operation {
	for _, op := range []*operation{s.ops[opSign], s.ops[opDecrypt]} {
		if op != nil && op.needAuth && !op.authorised {
			return op
		}
	}
	return nil
}

// active returns the locked session and its operation of kind k. A call
// that fails with it leaves the session unlocked.
func (m *Module) active(h ck.SessionHandle, k opKind) (*Session, *operation, error) {
	s, err := m.lock(h)
	if err != nil {
		return nil, nil, err
	}
	op := s.ops[k]
	if op == nil {
		s.mu.Unlock()
		return nil, nil, ck.CKR_OPERATION_NOT_INITIALIZED
	}
	if op.private && s.tok.loginGen.Load() != op.gen {
		s.ops[k] = nil
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("operation ended by logout: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	if op.needAuth && !op.authorised {
		s.mu.Unlock()
		return nil, nil, ck.CKR_USER_NOT_LOGGED_IN
	}
	return s, op, nil
}

// finish ends the operation unless err is CKR_BUFFER_TOO_SMALL, which §5.2
// says leaves it active so the caller can retry with a larger buffer.
func (s *Session) finish(k opKind, err error) {
	if err == nil || !errors.Is(err, ck.CKR_BUFFER_TOO_SMALL) {
		s.ops[k] = nil
	}
}

// initKeyOp is the common body of the C_*Init calls that take a key: the
// gate decides (gate.go), then start builds the operation.
func (m *Module) initKeyOp(h ck.SessionHandle, k opKind, mt ck.Mechanism, kh ck.ObjectHandle, u use,
	start func(grant) (*operation, error)) error {
	s, err := m.lock(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.ops[k] != nil {
		return ck.CKR_OPERATION_ACTIVE
	}
	// Read before the key is looked up: a logout after this point changes
	// it and ends the operation; one before it hides a private key.
	gen := s.tok.loginGen.Load()
	g, err := m.authorize(s, u, kh, mt)
	if err != nil {
		return err
	}
	if g.tokenNonce {
		if err := fillNonce(g.mm.Nonce(mt.Param)); err != nil {
			return err
		}
	}
	op, err := start(g)
	if err != nil {
		return fmt.Errorf("%v init: %w", mt.Type, err)
	}
	op.mech = mt
	if g.obj.private {
		op.private, op.gen = true, gen
	}
	op.needAuth = (k == opSign || k == opDecrypt) && g.obj.boolAttr(ck.CKA_ALWAYS_AUTHENTICATE)
	s.ops[k] = op
	return nil
}

// fillNonce makes a nonce in the caller's (zeroed) buffer, which the
// boundary returns to its caller.
func fillNonce(iv []byte) error {
	if _, err := rand.Read(iv); err != nil {
		return fmt.Errorf("nonce: %v: %w", err, ck.CKR_DEVICE_ERROR)
	}
	return nil
}

// EncryptInit is C_EncryptInit.
func (m *Module) EncryptInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opEncrypt, mt, kh, useEncrypt, func(g grant) (*operation, error) {
		c, err := g.mm.Encrypt(g.key, g.param)
		return &operation{cipher: c}, err
	})
}

// DecryptInit is C_DecryptInit.
func (m *Module) DecryptInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opDecrypt, mt, kh, useDecrypt, func(g grant) (*operation, error) {
		c, err := g.mm.Decrypt(g.key, g.param)
		return &operation{cipher: c}, err
	})
}

// SignInit is C_SignInit.
func (m *Module) SignInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opSign, mt, kh, useSign, func(g grant) (*operation, error) {
		sg, err := g.mm.Sign(g.key, g.param)
		return &operation{signer: sg}, err
	})
}

// VerifyInit is C_VerifyInit.
func (m *Module) VerifyInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opVerify, mt, kh, useVerify, func(g grant) (*operation, error) {
		v, err := g.mm.Verify(g.key, g.param)
		return &operation{verifier: v}, err
	})
}

// oneShotCipher is C_Encrypt / C_Decrypt. A NULL buffer gets the bound
// without any work; a buffer that may be too small gets the real length
// after the work (the result is discarded and the operation kept, §5.2).
func (m *Module) oneShotCipher(h ck.SessionHandle, k opKind, in []byte, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, k)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if err := s.single(k, op); err != nil {
		return nil, 0, err
	}
	need := op.cipher.OneShotLen(len(in))
	if outCap < 0 {
		return nil, need, nil
	}
	out, err := op.cipher.OneShot(nil, in)
	if err != nil {
		s.finish(k, err)
		return nil, 0, err
	}
	if len(out) > outCap {
		zero(out)
		return nil, len(out), ck.CKR_BUFFER_TOO_SMALL
	}
	s.finish(k, nil)
	return out, len(out), nil
}

func (m *Module) updateCipher(h ck.SessionHandle, k opKind, in []byte, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, k)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if err := s.multi(k, op); err != nil {
		return nil, 0, err
	}
	need := op.cipher.UpdateLen(len(in))
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	out, err := op.cipher.Update(nil, in)
	if err != nil {
		s.finish(k, err)
		return nil, 0, err
	}
	return out, len(out), nil
}

func (m *Module) finalCipher(h ck.SessionHandle, k opKind, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, k)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if err := s.multi(k, op); err != nil {
		return nil, 0, err
	}
	need := op.cipher.FinalLen()
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	out, err := op.cipher.Final(nil)
	s.finish(k, err)
	if err != nil {
		return nil, 0, err
	}
	return out, len(out), nil
}

func (m *Module) Encrypt(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	return m.oneShotCipher(h, opEncrypt, in, outCap)
}
func (m *Module) EncryptUpdate(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	return m.updateCipher(h, opEncrypt, in, outCap)
}
func (m *Module) EncryptFinal(h ck.SessionHandle, outCap int) ([]byte, int, error) {
	return m.finalCipher(h, opEncrypt, outCap)
}
func (m *Module) Decrypt(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	return m.oneShotCipher(h, opDecrypt, in, outCap)
}
func (m *Module) DecryptUpdate(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	return m.updateCipher(h, opDecrypt, in, outCap)
}
func (m *Module) DecryptFinal(h ck.SessionHandle, outCap int) ([]byte, int, error) {
	return m.finalCipher(h, opDecrypt, outCap)
}

// Sign is C_Sign. Signature lengths are exact, so a short buffer is
// answered before any work.
func (m *Module) Sign(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, opSign)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if err := s.single(opSign, op); err != nil {
		return nil, 0, err
	}
	need := op.signer.Len()
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	sig, err := op.signer.Sign(in)
	s.finish(opSign, err)
	if err != nil {
		return nil, 0, err
	}
	return sig, len(sig), nil
}

// SignUpdate is C_SignUpdate.
func (m *Module) SignUpdate(h ck.SessionHandle, in []byte) error {
	s, op, err := m.active(h, opSign)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.multi(opSign, op); err != nil {
		return err
	}
	if err := op.signer.Update(in); err != nil {
		s.finish(opSign, err)
		return err
	}
	return nil
}

// SignFinal is C_SignFinal.
func (m *Module) SignFinal(h ck.SessionHandle, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, opSign)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if err := s.multi(opSign, op); err != nil {
		return nil, 0, err
	}
	need := op.signer.Len()
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	sig, err := op.signer.Final()
	s.finish(opSign, err)
	if err != nil {
		return nil, 0, err
	}
	return sig, len(sig), nil
}

// Verify is C_Verify; it always ends the operation.
func (m *Module) Verify(h ck.SessionHandle, in, sig []byte) error {
	s, op, err := m.active(h, opVerify)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.single(opVerify, op); err != nil {
		return err
	}
	s.ops[opVerify] = nil
	return op.verifier.Verify(in, sig)
}

// VerifyUpdate is C_VerifyUpdate.
func (m *Module) VerifyUpdate(h ck.SessionHandle, in []byte) error {
	s, op, err := m.active(h, opVerify)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.multi(opVerify, op); err != nil {
		return err
	}
	if err := op.verifier.Update(in); err != nil {
		s.ops[opVerify] = nil
		return err
	}
	return nil
}

// VerifyFinal is C_VerifyFinal.
func (m *Module) VerifyFinal(h ck.SessionHandle, sig []byte) error {
	s, op, err := m.active(h, opVerify)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.multi(opVerify, op); err != nil {
		return err
	}
	s.ops[opVerify] = nil
	return op.verifier.Final(sig)
}

// SignRecoverInit and VerifyRecoverInit: no registered mechanism offers
// recovery, so after the session check they report the mechanism invalid.
func (m *Module) SignRecoverInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	return ck.CKR_MECHANISM_INVALID
}

func (m *Module) SignRecover(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	if _, err := m.session(h); err != nil {
		return nil, 0, err
	}
	return nil, 0, ck.CKR_OPERATION_NOT_INITIALIZED
}

func (m *Module) VerifyRecoverInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	return ck.CKR_MECHANISM_INVALID
}

func (m *Module) VerifyRecover(h ck.SessionHandle, sig []byte, outCap int) ([]byte, int, error) {
	if _, err := m.session(h); err != nil {
		return nil, 0, err
	}
	return nil, 0, ck.CKR_OPERATION_NOT_INITIALIZED
}

// DigestInit is C_DigestInit.
func (m *Module) DigestInit(h ck.SessionHandle, mt ck.Mechanism) error {
	s, err := m.lock(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.ops[opDigest] != nil {
		return ck.CKR_OPERATION_ACTIVE
	}
	mm, ok := m.reg.Mechanism(mt.Type)
	if !ok || mm.Digest == nil {
		return fmt.Errorf("%v: %w", mt.Type, ck.CKR_MECHANISM_INVALID)
	}
	d, err := mm.Digest(mt.Param)
	if err != nil {
		return fmt.Errorf("%v init: %w", mt.Type, err)
	}
	s.ops[opDigest] = &operation{digest: d, mech: mt}
	return nil
}

// Digest is C_Digest.
func (m *Module) Digest(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, opDigest)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if err := s.single(opDigest, op); err != nil {
		return nil, 0, err
	}
	need := op.digest.Size()
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	op.digest.Write(in)
	s.ops[opDigest] = nil
	return op.digest.Sum(nil), need, nil
}

// DigestUpdate is C_DigestUpdate.
func (m *Module) DigestUpdate(h ck.SessionHandle, in []byte) error {
	s, op, err := m.active(h, opDigest)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.multi(opDigest, op); err != nil {
		return err
	}
	op.digest.Write(in)
	return nil
}

// DigestKey is C_DigestKey. The key passes the gate as useDigestKey: a
// secret key only, never a sensitive one with a weak digest (nor, under
// the strict profile, with any), and within its CKA_ALLOWED_MECHANISMS;
// every refusal is CKR_KEY_INDIGESTIBLE and ends the operation.
func (m *Module) DigestKey(h ck.SessionHandle, kh ck.ObjectHandle) error {
	s, op, err := m.active(h, opDigest)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.multi(opDigest, op); err != nil {
		return err
	}
	g, err := m.authorize(s, useDigestKey, kh, op.mech)
	if err != nil {
		s.ops[opDigest] = nil
		return err
	}
	o := g.obj
	o.mu.RLock()
	v, _ := o.secret.Get(ck.CKA_VALUE)
	op.digest.Write(v)
	o.mu.RUnlock()
	if o.destroyed.Load() {
		// Destroyed by another session meanwhile (Object.destroyed): what
		// was hashed may be nothing.
		s.ops[opDigest] = nil
		return fmt.Errorf("key %d destroyed: %w", kh, ck.CKR_KEY_HANDLE_INVALID)
	}
	return nil
}

// DigestFinal is C_DigestFinal.
func (m *Module) DigestFinal(h ck.SessionHandle, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, opDigest)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if err := s.multi(opDigest, op); err != nil {
		return nil, 0, err
	}
	need := op.digest.Size()
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	s.ops[opDigest] = nil
	return op.digest.Sum(nil), need, nil
}
