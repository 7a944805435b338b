package hsm

import (
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Key encapsulation (PKCS#11 3.2 §5.18, C_EncapsulateKey and
// C_DecapsulateKey). The shared secret never leaves the token: it becomes
// the CKA_VALUE of a new secret key built from the caller's template, as
// C_DeriveKey does. 3.2 fixes the new key's provenance: CKA_LOCAL,
// CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are false (the secret came
// from outside on one side and went outside, encapsulated, on the other),
// and CKA_EXTRACTABLE defaults to true like any key's.
//
// Length: the key gets the whole secret unless the template's CKA_VALUE_LEN
// asks for fewer bytes, in which case it gets the leading ones (an AES-128
// key from a 32-byte ML-KEM secret), as the ECDH derivations do with
// CKD_NULL. More bytes than the KEM yields is CKR_TEMPLATE_INCONSISTENT.

// kemKey is what both halves check before any work: the template, then
// the key through the gate (its class, usage flag, mechanism, type,
// CKA_ALLOWED_MECHANISMS and size). The caller holds s.mu; like every
// operation it takes no token lock unless the key must be unsealed.
func (m *Module) kemKey(s *Session, mt ck.Mechanism, kh ck.ObjectHandle, t attr.Template, u use) (grant, error) {
	g, err := m.authorize(s, u, kh, mt)
	if err != nil {
		return grant{}, err
	}
	if err := checkDuplicates(t); err != nil {
		return grant{}, err
	}
	return g, nil
}

// kemSession locks the session for a KEM call and checks the template's
// class and the session's right to create the new key. It reports whether
// the SO is logged in (for build). On success the caller must unlock s.mu.
func (m *Module) kemSession(h ck.SessionHandle, t attr.Template) (*Session, bool, error) {
	s, err := m.lock(h)
	if err != nil {
		return nil, false, err
	}
	if err := keyTemplateClass(t, ck.CKO_SECRET_KEY); err != nil {
		s.mu.Unlock()
		return nil, false, err
	}
	token, private, err := flagsOf(t, ck.CKO_SECRET_KEY)
	if err != nil {
		s.mu.Unlock()
		return nil, false, err
	}
	so, err := s.mayCreate(token, private)
	if err != nil {
		s.mu.Unlock()
		return nil, false, err
	}
	return s, so, nil
}

// secretKeyFrom makes the new secret key object from a KEM's shared secret.
// The caller holds s.mu; the token's write lock is taken only to commit.
func (m *Module) secretKeyFrom(s *Session, so bool, t attr.Template, secret []byte) (ck.ObjectHandle, error) {
	kt := ck.CKK_GENERIC_SECRET
	if v, ok, err := t.ULong(ck.CKA_KEY_TYPE); err != nil {
		return 0, err
	} else if ok {
		kt = ck.KeyType(v)
	}
	value := secret
	if n, ok, err := t.ULong(ck.CKA_VALUE_LEN); err != nil {
		return 0, err
	} else if ok {
		if n == 0 || n > ck.ULong(len(secret)) {
			return 0, fmt.Errorf("CKA_VALUE_LEN %d from a %d-byte shared secret: %w", n, len(secret), ck.CKR_TEMPLATE_INCONSISTENT)
		}
		value = secret[:n]
	}
	// build copies what it keeps, so the template without CKA_VALUE_LEN
	// and the token's values can live on this stack.
	var own [8]ck.Attribute
	given := appendWithout(own[:0], t, ck.CKA_VALUE_LEN)
	extra := [...]ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(kt))},
		{Type: ck.CKA_VALUE, Value: value},
		{Type: ck.CKA_LOCAL, Value: attr.Bool(false)},
	}
	// 3.2 §5.18 C_EncapsulateKey: CKA_ALWAYS_SENSITIVE and
	// CKA_NEVER_EXTRACTABLE false, which build gives every key that is not
	// CKA_LOCAL (TestMLKEMRoundTrip checks).
	all, err := m.build(given, ck.CKO_SECRET_KEY, kt, fromGenerate, so, extra[:])
	if err != nil {
		return 0, err
	}
	o, err := m.newObject(all, ck.CKO_SECRET_KEY, kt)
	if err != nil {
		return 0, err
	}
	if err := m.commitLocked(s, so, o); err != nil {
		return 0, err
	}
	return o.handle, nil
}

// EncapsulateKey is C_EncapsulateKey (3.2). ct is the caller's buffer,
// which receives the ciphertext directly; nil asks for the ciphertext
// length, answered without encapsulating or creating anything, and a short
// buffer gets CKR_BUFFER_TOO_SMALL with the length, also before any work.
// It returns the ciphertext length and the new key. If the key cannot be
// made after all, the ciphertext written is zeroed: it would carry a secret
// no one holds.
func (m *Module) EncapsulateKey(h ck.SessionHandle, mt ck.Mechanism, pub ck.ObjectHandle, tmpl []ck.Attribute, ct []byte) (int, ck.ObjectHandle, error) {
	t := attr.Template(tmpl)
	s, so, err := m.kemSession(h, t)
	if err != nil {
		return 0, 0, err
	}
	defer s.mu.Unlock()
	g, err := m.kemKey(s, mt, pub, t, useEncapsulate)
	if err != nil {
		return 0, 0, err
	}
	mm, k := g.mm, g.key
	need, err := mm.CiphertextLen(k)
	if err != nil {
		return 0, 0, err
	}
	if ct == nil {
		return need, 0, nil
	}
	if len(ct) < need {
		return need, 0, ck.CKR_BUFFER_TOO_SMALL
	}
	ct = ct[:need]
	secret, err := mm.Encapsulate(k, mt.Param, ct)
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %w", mt.Type, err)
	}
	defer zero(secret)
	kh, err := m.secretKeyFrom(s, so, t, secret)
	if err != nil {
		zero(ct)
		return 0, 0, err
	}
	return need, kh, nil
}

// DecapsulateKey is C_DecapsulateKey (3.2).
func (m *Module) DecapsulateKey(h ck.SessionHandle, mt ck.Mechanism, priv ck.ObjectHandle, tmpl []ck.Attribute, ciphertext []byte) (ck.ObjectHandle, error) {
	t := attr.Template(tmpl)
	s, so, err := m.kemSession(h, t)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	g, err := m.kemKey(s, mt, priv, t, useDecapsulate)
	if err != nil {
		return 0, err
	}
	mm, k := g.mm, g.key
	secret, err := mm.Decapsulate(k, mt.Param, ciphertext)
	if err != nil {
		return 0, fmt.Errorf("%v: %w", mt.Type, err)
	}
	defer zero(secret)
	return m.secretKeyFrom(s, so, t, secret)
}
