package hsm

import "github.com/gohsm/gohsm/hsm/ck"

// The dual-function calls (§5.13) run two active operations of one
// session on the same data. Each checks the cipher's output size first,
// so a short buffer changes neither operation.

// DigestEncryptUpdate digests and encrypts a part.
func (m *Module) DigestEncryptUpdate(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	return m.dual(h, opEncrypt, opDigest, in, outCap, true)
}

// DecryptDigestUpdate decrypts a part and digests the plaintext.
func (m *Module) DecryptDigestUpdate(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	return m.dual(h, opDecrypt, opDigest, in, outCap, false)
}

// SignEncryptUpdate signs and encrypts a part.
func (m *Module) SignEncryptUpdate(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	return m.dual(h, opEncrypt, opSign, in, outCap, true)
}

// DecryptVerifyUpdate decrypts a part and feeds the plaintext to verify.
func (m *Module) DecryptVerifyUpdate(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	return m.dual(h, opDecrypt, opVerify, in, outCap, false)
}

// dual feeds the cipher operation c and the other operation o; with
// beforeCipher the input goes to o, else the cipher's output does.
func (m *Module) dual(h ck.SessionHandle, c, o opKind, in []byte, outCap int, beforeCipher bool) ([]byte, int, error) {
	s, err := m.lock(h)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	cop, oop := s.ops[c], s.ops[o]
	if cop == nil || oop == nil {
		return nil, 0, ck.CKR_OPERATION_NOT_INITIALIZED
	}
	if err := s.multi(c, cop); err != nil {
		return nil, 0, err
	}
	if err := s.multi(o, oop); err != nil {
		return nil, 0, err
	}
	need := cop.cipher.UpdateLen(len(in))
	if outCap < 0 {
		return nil, need, nil
	}
	if outCap < need {
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	feed := func(p []byte) error {
		switch {
		case oop.digest != nil:
			oop.digest.Write(p)
			return nil
		case oop.signer != nil:
			return oop.signer.Update(p)
		default:
			return oop.verifier.Update(p)
		}
	}
	if beforeCipher {
		if err := feed(in); err != nil {
			s.ops[o] = nil
			return nil, 0, err
		}
	}
	out, err := cop.cipher.Update(nil, in)
	if err != nil {
		s.ops[c] = nil
		return nil, 0, err
	}
	if !beforeCipher {
		if err := feed(out); err != nil {
			s.ops[o] = nil
			return nil, 0, err
		}
	}
	return out, len(out), nil
}
