package audit

import (
	"errors"
	"fmt"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// backend is Wrap's decorator: the embedded Backend answers every call;
// the methods below are the audited ones (the table in calls.go).
type backend struct {
	hsm.Backend
	log *Log
	who string
}

// Wrap returns be with every audited call (calls.go) written to log under
// the identity who (the client certificate's identity string; "" is
// "local"), by the two-phase rule of the package documentation: an intent
// record before the call runs, a result record after. If the intent cannot
// be written the call is refused with CKR_DEVICE_ERROR and never reaches
// be; if the result cannot be written the call's result is replaced by
// CKR_DEVICE_ERROR (and its outputs withheld). Records hold handles, slot
// ids, mechanism, user and attribute types, the token label and the result
// code; never a PIN, a mechanism parameter, an attribute value or any data.
func Wrap(be hsm.Backend, log *Log, who string) hsm.Backend {
	if be == nil || log == nil {
		panic("audit: Wrap needs a backend and a log")
	}
	if who == "" {
		who = "local"
	}
	return &backend{Backend: be, log: log, who: who}
}

// audit runs one audited call: in is its intent record (the arguments that
// name what it touches); run makes the call and may add outputs (created
// handles, a new session) to the result record it is given.
func (b *backend) audit(method string, in Record, run func(out *Record) error) error {
	if !auditedSet[method] {
		panic("audit: " + method + " is not in the audited table")
	}
	in.Who, in.Call, in.Phase = b.who, "C_"+method, PhaseIntent
	seq, err := b.log.Append(in)
	if err != nil {
		code := ck.CKR_DEVICE_ERROR
		if errors.Is(err, ErrTooLarge) {
			code = ck.CKR_ARGUMENTS_BAD // the caller's template is too big to record
		}
		return &logFailure{fmt.Sprintf("audit: %s refused, its intent record was not written: %v", in.Call, err), code}
	}
	out := in
	out.Phase, out.Ref = PhaseResult, seq
	out.Template, out.PubTemplate, out.PrivTemplate = nil, nil, nil // in the intent already
	err = run(&out)
	out.RV = hsm.ToRV(err).String()
	if _, lerr := b.log.Append(out); lerr != nil {
		return &logFailure{fmt.Sprintf("audit: %s ran (%s) but its result record was not written: %v", in.Call, out.RV, lerr), ck.CKR_DEVICE_ERROR}
	}
	return err
}

// logFailure is audit's error when the log, not the call, failed: the
// call's outputs are withheld. It carries its CKR for hsm.ToRV.
type logFailure struct {
	msg  string
	code ck.RV
}

func (e *logFailure) Error() string { return e.msg + ": " + e.code.String() }
func (e *logFailure) Unwrap() error { return e.code }

func isLogFailure(err error) bool {
	var lf *logFailure
	return errors.As(err, &lf)
}

// num makes an optional record number.
func num[T ~uint64](v T) *uint64 { x := uint64(v); return &x }

// created returns the handles a call made, or nil for none.
func created(hs ...ck.ObjectHandle) []uint64 {
	var out []uint64
	for _, h := range hs {
		if h != 0 {
			out = append(out, uint64(h))
		}
	}
	return out
}

// types lists a template's attribute types, never their values: a template
// may carry CKA_VALUE, a label or an ID that only a logged-in user may read.
func types(t []ck.Attribute) []string {
	out := make([]string, len(t))
	for i, a := range t {
		out[i] = a.Type.String()
	}
	return out
}

// mechName is the mechanism type's name, or its code for a vendor-defined
// one: those names depend on the SM profile the engine runs with, the code
// does not.
func mechName(m ck.MechanismType) string {
	if m >= ck.CKM_VENDOR_DEFINED {
		return fmt.Sprintf("0x%08X", uint64(m))
	}
	return m.String()
}

func userName(u ck.UserType) string {
	switch u {
	case ck.CKU_SO:
		return "CKU_SO"
	case ck.CKU_USER:
		return "CKU_USER"
	case ck.CKU_CONTEXT_SPECIFIC:
		return "CKU_CONTEXT_SPECIFIC"
	}
	return fmt.Sprintf("0x%08X", uint64(u))
}

// clip bounds a caller's free text (a label, a user name) in a record.
func clip(s string) string {
	const max = 256
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:max], len(s))
}

func (b *backend) Initialize() error {
	return b.audit("Initialize", Record{}, func(*Record) error { return b.Backend.Initialize() })
}

func (b *backend) Finalize() error {
	return b.audit("Finalize", Record{}, func(*Record) error { return b.Backend.Finalize() })
}

func (b *backend) InitToken(slot ck.SlotID, soPIN []byte, label string) error {
	return b.audit("InitToken", Record{Slot: num(slot), Label: clip(label)}, func(*Record) error {
		return b.Backend.InitToken(slot, soPIN, label)
	})
}

func (b *backend) InitPIN(s ck.SessionHandle, pin []byte) error {
	return b.audit("InitPIN", Record{Session: num(s)}, func(*Record) error { return b.Backend.InitPIN(s, pin) })
}

func (b *backend) SetPIN(s ck.SessionHandle, oldPIN, newPIN []byte) error {
	return b.audit("SetPIN", Record{Session: num(s)}, func(*Record) error { return b.Backend.SetPIN(s, oldPIN, newPIN) })
}

func (b *backend) OpenSession(slot ck.SlotID, flags ck.Flags) (ck.SessionHandle, error) {
	var h ck.SessionHandle
	err := b.audit("OpenSession", Record{Slot: num(slot), Flags: num(flags)}, func(out *Record) (err error) {
		h, err = b.Backend.OpenSession(slot, flags)
		if err == nil {
			out.Session = num(h)
		}
		return err
	})
	if isLogFailure(err) {
		return 0, err
	}
	return h, err
}

func (b *backend) CloseSession(s ck.SessionHandle) error {
	return b.audit("CloseSession", Record{Session: num(s)}, func(*Record) error { return b.Backend.CloseSession(s) })
}

func (b *backend) CloseAllSessions(slot ck.SlotID) error {
	return b.audit("CloseAllSessions", Record{Slot: num(slot)}, func(*Record) error { return b.Backend.CloseAllSessions(slot) })
}

func (b *backend) Login(s ck.SessionHandle, user ck.UserType, pin []byte) error {
	return b.audit("Login", Record{Session: num(s), User: userName(user)}, func(*Record) error {
		return b.Backend.Login(s, user, pin)
	})
}

// LoginUser records the user name: it says who, and it is not a secret.
func (b *backend) LoginUser(s ck.SessionHandle, user ck.UserType, pin, username []byte) error {
	return b.audit("LoginUser", Record{Session: num(s), User: userName(user), Username: clip(string(username))}, func(*Record) error {
		return b.Backend.LoginUser(s, user, pin, username)
	})
}

func (b *backend) Logout(s ck.SessionHandle) error {
	return b.audit("Logout", Record{Session: num(s)}, func(*Record) error { return b.Backend.Logout(s) })
}

func (b *backend) CreateObject(s ck.SessionHandle, t []ck.Attribute) (ck.ObjectHandle, error) {
	var h ck.ObjectHandle
	err := b.audit("CreateObject", Record{Session: num(s), Template: types(t)}, func(out *Record) (err error) {
		h, err = b.Backend.CreateObject(s, t)
		out.Created = created(h)
		return err
	})
	if isLogFailure(err) {
		return 0, err
	}
	return h, err
}

func (b *backend) CopyObject(s ck.SessionHandle, o ck.ObjectHandle, t []ck.Attribute) (ck.ObjectHandle, error) {
	var h ck.ObjectHandle
	err := b.audit("CopyObject", Record{Session: num(s), Object: num(o), Template: types(t)}, func(out *Record) (err error) {
		h, err = b.Backend.CopyObject(s, o, t)
		out.Created = created(h)
		return err
	})
	if isLogFailure(err) {
		return 0, err
	}
	return h, err
}

func (b *backend) DestroyObject(s ck.SessionHandle, o ck.ObjectHandle) error {
	return b.audit("DestroyObject", Record{Session: num(s), Object: num(o)}, func(*Record) error {
		return b.Backend.DestroyObject(s, o)
	})
}

func (b *backend) SetAttributeValue(s ck.SessionHandle, o ck.ObjectHandle, t []ck.Attribute) error {
	return b.audit("SetAttributeValue", Record{Session: num(s), Object: num(o), Template: types(t)}, func(*Record) error {
		return b.Backend.SetAttributeValue(s, o, t)
	})
}

func (b *backend) GenerateKey(s ck.SessionHandle, m ck.Mechanism, t []ck.Attribute) (ck.ObjectHandle, error) {
	var h ck.ObjectHandle
	err := b.audit("GenerateKey", Record{Session: num(s), Mech: mechName(m.Type), Template: types(t)}, func(out *Record) (err error) {
		h, err = b.Backend.GenerateKey(s, m, t)
		out.Created = created(h)
		return err
	})
	if isLogFailure(err) {
		return 0, err
	}
	return h, err
}

func (b *backend) GenerateKeyPair(s ck.SessionHandle, m ck.Mechanism, pub, priv []ck.Attribute) (ck.ObjectHandle, ck.ObjectHandle, error) {
	var hpub, hpriv ck.ObjectHandle
	in := Record{Session: num(s), Mech: mechName(m.Type), PubTemplate: types(pub), PrivTemplate: types(priv)}
	err := b.audit("GenerateKeyPair", in, func(out *Record) (err error) {
		hpub, hpriv, err = b.Backend.GenerateKeyPair(s, m, pub, priv)
		out.Created = created(hpub, hpriv)
		return err
	})
	if isLogFailure(err) {
		return 0, 0, err
	}
	return hpub, hpriv, err
}

// WrapKey is audited even for a length query (outCap < 0, "query":true):
// the check is the same and it is cheap to say so; the wrapped bytes are
// returned only once the result record is durable.
func (b *backend) WrapKey(s ck.SessionHandle, m ck.Mechanism, wrapping, key ck.ObjectHandle, outCap int) ([]byte, int, error) {
	var data []byte
	var need int
	in := Record{Session: num(s), Mech: mechName(m.Type), Key: num(wrapping), Object: num(key), Query: outCap < 0}
	err := b.audit("WrapKey", in, func(*Record) (err error) {
		data, need, err = b.Backend.WrapKey(s, m, wrapping, key, outCap)
		return err
	})
	if isLogFailure(err) {
		clear(data)
		return nil, 0, err
	}
	return data, need, err
}

func (b *backend) UnwrapKey(s ck.SessionHandle, m ck.Mechanism, unwrapping ck.ObjectHandle, wrapped []byte, t []ck.Attribute) (ck.ObjectHandle, error) {
	var h ck.ObjectHandle
	in := Record{Session: num(s), Mech: mechName(m.Type), Key: num(unwrapping), Template: types(t)}
	err := b.audit("UnwrapKey", in, func(out *Record) (err error) {
		h, err = b.Backend.UnwrapKey(s, m, unwrapping, wrapped, t)
		out.Created = created(h)
		return err
	})
	if isLogFailure(err) {
		return 0, err
	}
	return h, err
}

func (b *backend) DeriveKey(s ck.SessionHandle, m ck.Mechanism, base ck.ObjectHandle, t []ck.Attribute) (ck.ObjectHandle, error) {
	var h ck.ObjectHandle
	in := Record{Session: num(s), Mech: mechName(m.Type), Key: num(base), Template: types(t)}
	err := b.audit("DeriveKey", in, func(out *Record) (err error) {
		h, err = b.Backend.DeriveKey(s, m, base, t)
		out.Created = created(h)
		return err
	})
	if isLogFailure(err) {
		return 0, err
	}
	return h, err
}

// EncapsulateKey: a nil ct is a length query ("query":true; nothing is
// created). When the result record fails, the ciphertext written into ct is
// cleared with the error.
func (b *backend) EncapsulateKey(s ck.SessionHandle, m ck.Mechanism, pub ck.ObjectHandle, t []ck.Attribute, ct []byte) (int, ck.ObjectHandle, error) {
	var n int
	var h ck.ObjectHandle
	in := Record{Session: num(s), Mech: mechName(m.Type), Key: num(pub), Template: types(t), Query: ct == nil}
	err := b.audit("EncapsulateKey", in, func(out *Record) (err error) {
		n, h, err = b.Backend.EncapsulateKey(s, m, pub, t, ct)
		out.Created = created(h)
		return err
	})
	if isLogFailure(err) {
		if n > 0 && n <= len(ct) {
			clear(ct[:n])
		}
		return 0, 0, err
	}
	return n, h, err
}

func (b *backend) DecapsulateKey(s ck.SessionHandle, m ck.Mechanism, priv ck.ObjectHandle, t []ck.Attribute, ciphertext []byte) (ck.ObjectHandle, error) {
	var h ck.ObjectHandle
	in := Record{Session: num(s), Mech: mechName(m.Type), Key: num(priv), Template: types(t)}
	err := b.audit("DecapsulateKey", in, func(out *Record) (err error) {
		h, err = b.Backend.DecapsulateKey(s, m, priv, t, ciphertext)
		out.Created = created(h)
		return err
	})
	if isLogFailure(err) {
		return 0, err
	}
	return h, err
}
