package hsm

import (
	"errors"
	"fmt"
	"hash"
	"slices"

	"github.com/gohsm/gohsm/hsm/attr"
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
	// msg is a message-based encryption process; message.go keeps its
	// state. msgSign is a message-based signing process (msgsign.go).
	msg     *messageOp
	msgSign *msgSignOp
	// multi is set by the first Update: from then on only Update/Final
	// may continue it (§5.2: a single-part call cannot finish it).
	multi bool
	// gen is the token's login generation when a private key began the
	// operation; a logout in between ends it.
	private bool
	gen     uint64
	// needAuth marks a CKA_ALWAYS_AUTHENTICATE key: the operation waits
	// for C_Login(CKU_CONTEXT_SPECIFIC) (§4.9).
	needAuth   bool
	authorised bool
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

// keyFor runs the checks every key operation's Init makes, in the order
// the house rules fix (the session is already locked and checked, and no
// operation of this kind is active): access to the key, key usage, then
// the mechanism. It returns the mechanism and the parsed key. It takes no
// token lock unless the key's secrets must be unsealed (first use after
// login), so operations never wait for another session's commits.
func (m *Module) keyFor(s *Session, kh ck.ObjectHandle, usage ck.AttributeType, mt ck.MechanismType, has func(*mech.Mechanism) bool) (*mech.Mechanism, *mech.Key, *Object, error) {
	tok := s.tok
	o, err := tok.visible(kh)
	if err != nil || !o.isKey() {
		return nil, nil, nil, fmt.Errorf("key %d: %w", kh, ck.CKR_KEY_HANDLE_INVALID)
	}
	if usage != 0 && !o.boolAttr(usage) {
		return nil, nil, nil, fmt.Errorf("key %d has %v false: %w", kh, usage, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	mm, ok := m.reg.Mechanism(mt)
	if !ok || !has(mm) {
		return nil, nil, nil, fmt.Errorf("%v: %w", mt, ck.CKR_MECHANISM_INVALID)
	}
	if !slices.Contains(mm.KeyTypes, o.keyType) {
		return nil, nil, nil, fmt.Errorf("%v with a %v key: %w", mt, o.keyType, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	if allowed, ok := o.clearGet(ck.CKA_ALLOWED_MECHANISMS); ok && len(allowed) > 0 && !allowsMechanism(allowed, mt) {
		return nil, nil, nil, fmt.Errorf("%v not in CKA_ALLOWED_MECHANISMS: %w", mt, ck.CKR_MECHANISM_INVALID)
	}
	if err := tok.ensureUnsealed(o); err != nil {
		return nil, nil, nil, err
	}
	k, err := o.key(m.reg)
	if err != nil {
		return nil, nil, nil, err
	}
	if kk, ok := m.reg.KeyKind(o.keyType); ok && kk.Size != nil {
		size := kk.Size(k.Attrs, k.Material)
		if (mm.Info.MinKeySize != 0 && size < mm.Info.MinKeySize) || (mm.Info.MaxKeySize != 0 && size > mm.Info.MaxKeySize) {
			return nil, nil, nil, fmt.Errorf("%v with a key of size %d: %w", mt, size, ck.CKR_KEY_SIZE_RANGE)
		}
	}
	return mm, k, o, nil
}

func allowsMechanism(list []byte, mt ck.MechanismType) bool {
	for i := 0; i+8 <= len(list); i += 8 {
		v, _ := attr.DecodeULong(ck.CKA_ALLOWED_MECHANISMS, list[i:i+8])
		if ck.MechanismType(v) == mt {
			return true
		}
	}
	return false
}

// initKeyOp is the common body of EncryptInit, DecryptInit, SignInit and
// VerifyInit.
func (m *Module) initKeyOp(h ck.SessionHandle, k opKind, mt ck.Mechanism, kh ck.ObjectHandle, usage ck.AttributeType,
	has func(*mech.Mechanism) bool, start func(*mech.Mechanism, *mech.Key) (*operation, error)) error {
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
	mm, key, o, err := m.keyFor(s, kh, usage, mt.Type, has)
	if err != nil {
		return err
	}
	op, err := start(mm, key)
	if err != nil {
		return fmt.Errorf("%v init: %w", mt.Type, err)
	}
	if o.private {
		op.private, op.gen = true, gen
	}
	op.needAuth = (k == opSign || k == opDecrypt) && o.boolAttr(ck.CKA_ALWAYS_AUTHENTICATE)
	s.ops[k] = op
	return nil
}

// EncryptInit is C_EncryptInit.
func (m *Module) EncryptInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opEncrypt, mt, kh, ck.CKA_ENCRYPT,
		func(mm *mech.Mechanism) bool { return mm.Encrypt != nil },
		func(mm *mech.Mechanism, k *mech.Key) (*operation, error) {
			c, err := mm.Encrypt(k, mt.Param)
			return &operation{cipher: c}, err
		})
}

// DecryptInit is C_DecryptInit.
func (m *Module) DecryptInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opDecrypt, mt, kh, ck.CKA_DECRYPT,
		func(mm *mech.Mechanism) bool { return mm.Decrypt != nil },
		func(mm *mech.Mechanism, k *mech.Key) (*operation, error) {
			c, err := mm.Decrypt(k, mt.Param)
			return &operation{cipher: c}, err
		})
}

// SignInit is C_SignInit.
func (m *Module) SignInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opSign, mt, kh, ck.CKA_SIGN,
		func(mm *mech.Mechanism) bool { return mm.Sign != nil },
		func(mm *mech.Mechanism, k *mech.Key) (*operation, error) {
			sg, err := mm.Sign(k, mt.Param)
			return &operation{signer: sg}, err
		})
}

// VerifyInit is C_VerifyInit.
func (m *Module) VerifyInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle) error {
	return m.initKeyOp(h, opVerify, mt, kh, ck.CKA_VERIFY,
		func(mm *mech.Mechanism) bool { return mm.Verify != nil },
		func(mm *mech.Mechanism, k *mech.Key) (*operation, error) {
			v, err := mm.Verify(k, mt.Param)
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
	if op.multi {
		return nil, 0, ck.CKR_OPERATION_ACTIVE
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
	op.multi = true
	return out, len(out), nil
}

func (m *Module) finalCipher(h ck.SessionHandle, k opKind, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, k)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
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
	if op.multi {
		return nil, 0, ck.CKR_OPERATION_ACTIVE
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
	if err := op.signer.Update(in); err != nil {
		s.finish(opSign, err)
		return err
	}
	op.multi = true
	return nil
}

// SignFinal is C_SignFinal.
func (m *Module) SignFinal(h ck.SessionHandle, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, opSign)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
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
	if op.multi {
		return ck.CKR_OPERATION_ACTIVE
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
	if err := op.verifier.Update(in); err != nil {
		s.ops[opVerify] = nil
		return err
	}
	op.multi = true
	return nil
}

// VerifyFinal is C_VerifyFinal.
func (m *Module) VerifyFinal(h ck.SessionHandle, sig []byte) error {
	s, op, err := m.active(h, opVerify)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
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
	s.ops[opDigest] = &operation{digest: d}
	return nil
}

// Digest is C_Digest.
func (m *Module) Digest(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, opDigest)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	if op.multi {
		return nil, 0, ck.CKR_OPERATION_ACTIVE
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
	op.digest.Write(in)
	op.multi = true
	return nil
}

// DigestKey is C_DigestKey: only secret keys' values can be digested
// (CKR_KEY_INDIGESTIBLE otherwise).
func (m *Module) DigestKey(h ck.SessionHandle, kh ck.ObjectHandle) error {
	s, op, err := m.active(h, opDigest)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	tok := s.tok
	tok.mu.RLock()
	defer tok.mu.RUnlock()
	o, err := tok.visible(kh)
	if err != nil || !o.isKey() {
		s.ops[opDigest] = nil
		return fmt.Errorf("key %d: %w", kh, ck.CKR_KEY_HANDLE_INVALID)
	}
	if o.class != ck.CKO_SECRET_KEY {
		s.ops[opDigest] = nil
		return ck.CKR_KEY_INDIGESTIBLE
	}
	if err := tok.unseal(o); err != nil {
		s.ops[opDigest] = nil
		return err
	}
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
	op.multi = true
	return nil
}

// DigestFinal is C_DigestFinal.
func (m *Module) DigestFinal(h ck.SessionHandle, outCap int) ([]byte, int, error) {
	s, op, err := m.active(h, opDigest)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
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
