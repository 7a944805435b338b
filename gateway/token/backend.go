package token

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// FromBackend is the token labelled label on be (the in-process engine or
// the appliance's client, both hsm.Backend), logged in as its user with
// pin. be must be initialised; closing the token logs out and closes its
// sessions, and then calls release (if not nil), which may finalise be.
func FromBackend(be hsm.Backend, label string, pin []byte, release func() error) (Token, error) {
	slots, err := be.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("slot list: %w", err)
	}
	var labels []string
	for _, s := range slots {
		info, err := be.GetTokenInfo(s)
		if err != nil {
			return nil, fmt.Errorf("slot %d: %w", s, err)
		}
		if info.Flags&ck.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		l := strings.TrimRight(info.Label, " ")
		labels = append(labels, fmt.Sprintf("%q", l))
		if l != label {
			continue
		}
		t := &backendToken{be: be, slot: s, label: l, release: release}
		if err := t.login(pin); err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("no token labelled %q (tokens: %s)", label, strings.Join(labels, ", "))
}

type backendToken struct {
	be      hsm.Backend
	slot    ck.SlotID
	label   string
	release func() error

	mu sync.Mutex
	// keep is a session that stays open so the login lasts (PKCS#11 logs
	// out when a token's last session closes).
	keep   ck.SessionHandle
	pin    []byte
	closed bool
}

func (t *backendToken) Label() string { return t.label }

func (t *backendToken) login(pin []byte) error {
	s, err := t.be.OpenSession(t.slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("token %q: open session: %w", t.label, err)
	}
	if err := t.be.Login(s, ck.CKU_USER, pin); err != nil && RV(err) != ck.CKR_USER_ALREADY_LOGGED_IN {
		t.be.CloseSession(s)
		return fmt.Errorf("token %q: login: %w", t.label, err)
	}
	t.keep = s
	t.pin = append([]byte(nil), pin...)
	return nil
}

// relogin is the health check's repair: a token that lost its login (an
// appliance restart the client could not hide) gets it back.
func (t *backendToken) relogin() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("token closed")
	}
	t.be.CloseSession(t.keep)
	return t.login(t.pin)
}

func (t *backendToken) OpenSession() (Session, error) {
	s, err := t.be.OpenSession(t.slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("token %q: open session: %w", t.label, err)
	}
	return &backendSession{be: t.be, h: s}, nil
}

func (t *backendToken) Ping() error {
	t.mu.Lock()
	keep := t.keep
	t.mu.Unlock()
	info, err := t.be.GetSessionInfo(keep)
	if err == nil && info.State != ck.CKS_RW_USER_FUNCTIONS && info.State != ck.CKS_RO_USER_FUNCTIONS {
		err = fmt.Errorf("session state %d: %w", info.State, ck.CKR_USER_NOT_LOGGED_IN)
	}
	if err != nil && DeviceFailure(err) {
		// Try to get the login back; the next ping tells.
		if rerr := t.relogin(); rerr == nil {
			return nil
		}
	}
	return err
}

func (t *backendToken) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	clear(t.pin)
	t.mu.Unlock()
	err := t.be.CloseAllSessions(t.slot)
	if t.release != nil {
		err = errors.Join(err, t.release())
	}
	return err
}

// backendSession is one hsm.Backend session. It keeps a message-based
// AEAD operation initialised for the key it last sealed or opened with, so
// a run of messages under one key pays for one C_Message*Init; and, on an
// appliance's session, a message-based signing process for the key it last
// signed a batch with (remoteSession.batch).
type backendSession struct {
	be hsm.Backend
	h  ck.SessionHandle

	encKey, decKey   ck.ObjectHandle
	encMech, decMech ck.MechanismType
	signKey          ck.ObjectHandle
	signMech         ck.MechanismType
}

func (s *backendSession) CreateObject(t []ck.Attribute) (ck.ObjectHandle, error) {
	return s.be.CreateObject(s.h, t)
}

func (s *backendSession) DestroyObject(h ck.ObjectHandle) error { return s.be.DestroyObject(s.h, h) }

func (s *backendSession) FindObjects(t []ck.Attribute) ([]ck.ObjectHandle, error) {
	if err := s.be.FindObjectsInit(s.h, t); err != nil {
		return nil, err
	}
	var all []ck.ObjectHandle
	for {
		hs, err := s.be.FindObjects(s.h, 256)
		if err != nil {
			s.be.FindObjectsFinal(s.h)
			return nil, err
		}
		all = append(all, hs...)
		if len(hs) < 256 {
			break
		}
	}
	return all, s.be.FindObjectsFinal(s.h)
}

// maxAttr bounds one attribute read: an ML-DSA-87 public key is 2,592
// bytes, a data object of the gateway's at most its limit.
const maxAttr = 1 << 20

func (s *backendSession) GetAttributes(h ck.ObjectHandle, types ...ck.AttributeType) ([][]byte, error) {
	req := make([]ck.AttributeRequest, len(types))
	for i, t := range types {
		req[i] = ck.AttributeRequest{Type: t, Cap: maxAttr}
	}
	res, err := s.be.GetAttributeValue(s.h, h, req)
	switch RV(err) {
	case ck.CKR_OK, ck.CKR_ATTRIBUTE_SENSITIVE, ck.CKR_ATTRIBUTE_TYPE_INVALID:
	default:
		return nil, err
	}
	out := make([][]byte, len(types))
	for i, r := range res {
		if i < len(out) && r.Len != ck.CK_UNAVAILABLE_INFORMATION {
			out[i] = r.Value
			if out[i] == nil {
				out[i] = []byte{}
			}
		}
	}
	return out, nil
}

func (s *backendSession) SetAttributes(h ck.ObjectHandle, t []ck.Attribute) error {
	return s.be.SetAttributeValue(s.h, h, t)
}

func (s *backendSession) GenerateKey(m ck.Mechanism, t []ck.Attribute) (ck.ObjectHandle, error) {
	return s.be.GenerateKey(s.h, m, t)
}

func (s *backendSession) GenerateKeyPair(m ck.Mechanism, pub, priv []ck.Attribute) (ck.ObjectHandle, ck.ObjectHandle, error) {
	return s.be.GenerateKeyPair(s.h, m, pub, priv)
}

func (s *backendSession) WrapKey(m ck.Mechanism, wrapping, key ck.ObjectHandle) ([]byte, error) {
	_, n, err := s.be.WrapKey(s.h, m, wrapping, key, -1)
	if err != nil {
		return nil, err
	}
	out, _, err := s.be.WrapKey(s.h, m, wrapping, key, n)
	return out, err
}

func (s *backendSession) UnwrapKey(m ck.Mechanism, unwrapping ck.ObjectHandle, wrapped []byte, t []ck.Attribute) (ck.ObjectHandle, error) {
	return s.be.UnwrapKey(s.h, m, unwrapping, wrapped, t)
}

func (s *backendSession) DeriveKey(m ck.Mechanism, base ck.ObjectHandle, t []ck.Attribute) (ck.ObjectHandle, error) {
	return s.be.DeriveKey(s.h, m, base, t)
}

// single runs a single-part call after its init; the size query gives the
// buffer, so the output is exact.
func single(init func() error, call func(outCap int) ([]byte, int, error)) ([]byte, error) {
	if err := init(); err != nil {
		return nil, err
	}
	_, n, err := call(-1)
	if err != nil {
		return nil, err
	}
	out, _, err := call(n)
	return out, err
}

func (s *backendSession) Encrypt(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	return single(func() error { return s.be.EncryptInit(s.h, m, key) },
		func(c int) ([]byte, int, error) { return s.be.Encrypt(s.h, in, c) })
}

func (s *backendSession) Decrypt(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	return single(func() error { return s.be.DecryptInit(s.h, m, key) },
		func(c int) ([]byte, int, error) { return s.be.Decrypt(s.h, in, c) })
}

func (s *backendSession) Sign(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	return single(func() error { return s.be.SignInit(s.h, m, key) },
		func(c int) ([]byte, int, error) { return s.be.Sign(s.h, in, c) })
}

func (s *backendSession) Verify(m ck.Mechanism, key ck.ObjectHandle, in, sig []byte) error {
	if err := s.be.VerifyInit(s.h, m, key); err != nil {
		return err
	}
	return s.be.Verify(s.h, in, sig)
}

// Seal uses the message-based interface where the mechanism can have its
// IV made by the token (CKM_AES_GCM with CKG_GENERATE_RANDOM over all 96
// bits): one C_MessageEncryptInit per key, then one C_EncryptMessage per
// message, whose IV the token writes into the parameter. Other AEADs take
// a nonce from the token's generator (C_GenerateRandom) and the classic
// single-part call.
func (s *backendSession) Seal(dst []byte, mech ck.MechanismType, key ck.ObjectHandle, aad, plaintext []byte) ([]byte, error) {
	if mech == ck.CKM_AES_GCM {
		if s.encKey != key || s.encMech != mech {
			if err := s.initMessage(true, mech, key); err != nil {
				return nil, err
			}
		}
		// One buffer for nonce || ciphertext || tag; the token is given
		// its nonce and tag parts for the IV and tag it returns.
		n := len(dst)
		dst = slices.Grow(dst, NonceSize+len(plaintext)+TagSize)[:n+NonceSize+len(plaintext)+TagSize]
		out := dst[n:]
		p := &ck.GCMMessageParams{IV: out[:NonceSize:NonceSize], IVGenerator: ck.CKG_GENERATE_RANDOM,
			Tag: out[len(out)-TagSize : len(out) : len(out)], TagBits: TagSize * 8}
		ct, _, err := s.be.EncryptMessage(s.h, p, aad, plaintext, len(plaintext))
		if err != nil {
			if RV(err) == ck.CKR_KEY_EXHAUSTED {
				// 2^32 messages under one init: start a new one.
				s.encKey = 0
			}
			return nil, err
		}
		if len(p.IV) != NonceSize || len(p.Tag) != TagSize || len(ct) != len(plaintext) {
			return nil, fmt.Errorf("token returned IV %d bytes, tag %d, ciphertext %d for %d: %w", len(p.IV), len(p.Tag), len(ct), len(plaintext), ck.CKR_DEVICE_ERROR)
		}
		copy(out[:NonceSize], p.IV) // no-op when written in place
		copy(out[NonceSize:], ct)
		copy(out[NonceSize+len(plaintext):], p.Tag)
		return dst, nil
	}
	nonce, err := s.be.GenerateRandom(s.h, NonceSize)
	if err != nil {
		return nil, err
	}
	ct, err := s.Encrypt(aeadMechanism(mech, nonce, aad), key, plaintext)
	if err != nil {
		return nil, err
	}
	dst = append(dst, nonce...)
	return append(dst, ct...), nil
}

func (s *backendSession) Open(dst []byte, mech ck.MechanismType, key ck.ObjectHandle, aad, sealed []byte) ([]byte, error) {
	if len(sealed) < NonceSize+TagSize {
		return nil, fmt.Errorf("sealed message of %d bytes: %w", len(sealed), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	nonce, body := sealed[:NonceSize], sealed[NonceSize:]
	if mech == ck.CKM_AES_GCM {
		if s.decKey != key || s.decMech != mech {
			if err := s.initMessage(false, mech, key); err != nil {
				return nil, err
			}
		}
		ct, tag := body[:len(body)-TagSize], body[len(body)-TagSize:]
		p := &ck.GCMMessageParams{IV: nonce, Tag: tag, TagBits: TagSize * 8}
		pt, _, err := s.be.DecryptMessage(s.h, p, aad, ct, len(ct))
		if err != nil {
			return nil, err
		}
		return append(dst, pt...), nil
	}
	pt, err := s.Decrypt(aeadMechanism(mech, nonce, aad), key, body)
	if err != nil {
		return nil, err
	}
	return append(dst, pt...), nil
}

func (s *backendSession) initMessage(enc bool, mech ck.MechanismType, key ck.ObjectHandle) error {
	m := ck.Mechanism{Type: mech}
	if enc {
		if s.encKey != 0 {
			s.be.MessageEncryptFinal(s.h)
			s.encKey = 0
		}
		if err := s.be.MessageEncryptInit(s.h, m, key); err != nil {
			return err
		}
		s.encKey, s.encMech = key, mech
		return nil
	}
	if s.decKey != 0 {
		s.be.MessageDecryptFinal(s.h)
		s.decKey = 0
	}
	if err := s.be.MessageDecryptInit(s.h, m, key); err != nil {
		return err
	}
	s.decKey, s.decMech = key, mech
	return nil
}

// initMessageSign begins a message-based signing process (PKCS#11 3.0
// §5.15) with m and key, ending the one the session had.
func (s *backendSession) initMessageSign(m ck.Mechanism, key ck.ObjectHandle) error {
	if s.signKey != 0 {
		s.be.MessageSignFinal(s.h)
		s.signKey = 0
	}
	if err := s.be.MessageSignInit(s.h, m, key); err != nil {
		return err
	}
	s.signKey, s.signMech = key, m.Type
	return nil
}

// Forget drops the message operations' keys: after a key is destroyed, a
// new key may get its handle.
func (s *backendSession) Forget() {
	if s.signKey != 0 {
		s.be.MessageSignFinal(s.h)
		s.signKey = 0
	}
	if s.encKey != 0 {
		s.be.MessageEncryptFinal(s.h)
		s.encKey = 0
	}
	if s.decKey != 0 {
		s.be.MessageDecryptFinal(s.h)
		s.decKey = 0
	}
}

// aeadMechanism is the single-part mechanism of an AEAD with its nonce
// and AAD: GCM's parameter for the GCM family, ChaCha20-Poly1305's own.
func aeadMechanism(mech ck.MechanismType, nonce, aad []byte) ck.Mechanism {
	if mech == ck.CKM_CHACHA20_POLY1305 {
		return ck.Mechanism{Type: mech, Param: &ck.ChaCha20Poly1305Params{Nonce: nonce, AAD: aad}}
	}
	return ck.Mechanism{Type: mech, Param: &ck.GCMParams{IV: nonce, IVBits: NonceSize * 8, AAD: aad, TagBits: TagSize * 8}}
}

func (s *backendSession) Random(n int) ([]byte, error) { return s.be.GenerateRandom(s.h, n) }

func (s *backendSession) Close() error { return s.be.CloseSession(s.h) }
