package pool

import (
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// tracked is the session f gets: every call passes through, and the first
// error that says the token failed (token.DeviceFailure) is kept, so the
// pool judges the token by what the token said, never by f's own errors.
type tracked struct {
	token.Session
	failed error
}

func (t *tracked) note(err error) error {
	if err != nil && t.failed == nil && token.DeviceFailure(err) {
		t.failed = err
	}
	return err
}

func (t *tracked) CreateObject(a []ck.Attribute) (ck.ObjectHandle, error) {
	h, err := t.Session.CreateObject(a)
	return h, t.note(err)
}

func (t *tracked) DestroyObject(h ck.ObjectHandle) error { return t.note(t.Session.DestroyObject(h)) }

func (t *tracked) FindObjects(a []ck.Attribute) ([]ck.ObjectHandle, error) {
	hs, err := t.Session.FindObjects(a)
	return hs, t.note(err)
}

func (t *tracked) GetAttributes(h ck.ObjectHandle, types ...ck.AttributeType) ([][]byte, error) {
	v, err := t.Session.GetAttributes(h, types...)
	return v, t.note(err)
}

func (t *tracked) SetAttributes(h ck.ObjectHandle, a []ck.Attribute) error {
	return t.note(t.Session.SetAttributes(h, a))
}

func (t *tracked) GenerateKey(m ck.Mechanism, a []ck.Attribute) (ck.ObjectHandle, error) {
	h, err := t.Session.GenerateKey(m, a)
	return h, t.note(err)
}

func (t *tracked) GenerateKeyPair(m ck.Mechanism, pub, priv []ck.Attribute) (ck.ObjectHandle, ck.ObjectHandle, error) {
	a, b, err := t.Session.GenerateKeyPair(m, pub, priv)
	return a, b, t.note(err)
}

func (t *tracked) WrapKey(m ck.Mechanism, w, k ck.ObjectHandle) ([]byte, error) {
	b, err := t.Session.WrapKey(m, w, k)
	return b, t.note(err)
}

func (t *tracked) UnwrapKey(m ck.Mechanism, u ck.ObjectHandle, wrapped []byte, a []ck.Attribute) (ck.ObjectHandle, error) {
	h, err := t.Session.UnwrapKey(m, u, wrapped, a)
	return h, t.note(err)
}

func (t *tracked) DeriveKey(m ck.Mechanism, base ck.ObjectHandle, a []ck.Attribute) (ck.ObjectHandle, error) {
	h, err := t.Session.DeriveKey(m, base, a)
	return h, t.note(err)
}

func (t *tracked) Encrypt(m ck.Mechanism, k ck.ObjectHandle, in []byte) ([]byte, error) {
	b, err := t.Session.Encrypt(m, k, in)
	return b, t.note(err)
}

func (t *tracked) Decrypt(m ck.Mechanism, k ck.ObjectHandle, in []byte) ([]byte, error) {
	b, err := t.Session.Decrypt(m, k, in)
	return b, t.note(err)
}

func (t *tracked) Sign(m ck.Mechanism, k ck.ObjectHandle, in []byte) ([]byte, error) {
	b, err := t.Session.Sign(m, k, in)
	return b, t.note(err)
}

func (t *tracked) Verify(m ck.Mechanism, k ck.ObjectHandle, in, sig []byte) error {
	return t.note(t.Session.Verify(m, k, in, sig))
}

func (t *tracked) Seal(dst []byte, mech ck.MechanismType, k ck.ObjectHandle, aad, pt []byte) ([]byte, error) {
	b, err := t.Session.Seal(dst, mech, k, aad, pt)
	return b, t.note(err)
}

func (t *tracked) Open(dst []byte, mech ck.MechanismType, k ck.ObjectHandle, aad, sealed []byte) ([]byte, error) {
	b, err := t.Session.Open(dst, mech, k, aad, sealed)
	return b, t.note(err)
}

func (t *tracked) Random(n int) ([]byte, error) {
	b, err := t.Session.Random(n)
	return b, t.note(err)
}

// Many passes a run of calls to the session (in one exchange where it can
// make them so) and notes each call's error.
func (t *tracked) Many(calls []token.Call) {
	token.Many(t.Session, calls)
	for i := range calls {
		t.note(calls[i].Err)
	}
}

// Close is the pool's: f must not close the session it was lent.
func (t *tracked) Close() error { return nil }
