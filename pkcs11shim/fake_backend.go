//go:build shimfake

package main

import (
	"fmt"
	"github.com/gohsm/gohsm/internal/conf"
	"strings"
	"sync"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// This file replaces engine.go in the build the ABI tests load
// (go build -tags shimfake): a Backend that echoes what it received, so the
// C tests can check the shim's conversions independently of the engine.
// Every call that takes input records a description of it, and
// C_GetOperationState returns the last one. Methods it does not define fall
// through to the nil embedded interface and panic, which exercises the
// shim's panic recovery.

func openConfigured(cfg *conf.Config) (hsm.Backend, func(), error) {
	if cfg.Mode == conf.ModeRemote {
		return nil, nil, fmt.Errorf("mode remote: not available: %w", ck.CKR_DEVICE_ERROR)
	}
	return &fakeBackend{}, func() {}, nil
}

type fakeBackend struct {
	hsm.Backend // nil: undefined methods panic
	mu          sync.Mutex
	last        string
	msgMech     map[bool]ck.MechanismType // message sign/verify process, by verify
	cancels     int                       // SessionCancel calls, reported by GetSessionInfo
}

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	f.last = fmt.Sprintf(format, args...)
	f.mu.Unlock()
}

// sized answers the outCap convention for a fixed result.
func sized(out []byte, outCap int) ([]byte, int, error) {
	switch {
	case outCap < 0:
		return nil, len(out), nil
	case outCap < len(out):
		return nil, len(out), ck.CKR_BUFFER_TOO_SMALL
	}
	return out, len(out), nil
}

func (f *fakeBackend) Initialize() error { return nil }
func (f *fakeBackend) Finalize() error   { return nil }

func (f *fakeBackend) GetInfo() (ck.Info, error) {
	return ck.Info{
		CryptokiVersion:    ck.Version{Major: 3, Minor: 0},
		ManufacturerID:     "fake manufacturer with a name longer than 32",
		LibraryDescription: "fake",
		LibraryVersion:     ck.Version{Major: 1, Minor: 2},
	}, nil
}

func (f *fakeBackend) GetSlotList(bool) ([]ck.SlotID, error) { return []ck.SlotID{1, 7, 9}, nil }

func (f *fakeBackend) GetTokenInfo(ck.SlotID) (ck.TokenInfo, error) {
	// 31 ASCII bytes then a two-byte character: it must not be split.
	return ck.TokenInfo{Label: strings.Repeat("a", 31) + "é", SerialNumber: "42", MaxPinLen: 255, MinPinLen: 4}, nil
}

func (f *fakeBackend) Login(s ck.SessionHandle, u ck.UserType, pin []byte) error {
	f.record("Login s=%d u=%d pin=%q", s, u, pin)
	if string(pin) != "1234" {
		return fmt.Errorf("fake login: %w", ck.CKR_PIN_INCORRECT)
	}
	return nil
}

func (f *fakeBackend) InitToken(slot ck.SlotID, so []byte, label string) error {
	f.record("InitToken slot=%d so=%q label=%q", slot, so, label)
	return nil
}

func (f *fakeBackend) GetOperationState(_ ck.SessionHandle, outCap int) ([]byte, int, error) {
	f.mu.Lock()
	last := f.last
	f.mu.Unlock()
	return sized([]byte(last), outCap)
}

func describe(m ck.Mechanism) string {
	switch p := m.Param.(type) {
	case nil:
		return fmt.Sprintf("%#x nil", uint64(m.Type))
	case []byte:
		return fmt.Sprintf("%#x bytes %x", uint64(m.Type), p)
	case ck.MACGeneralParams:
		return fmt.Sprintf("%#x mac %d", uint64(m.Type), p)
	default:
		return fmt.Sprintf("%#x %T %+v", uint64(m.Type), p, p)
	}
}

func (f *fakeBackend) EncryptInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error {
	f.record("EncryptInit key=%d %s", key, describe(m))
	return nil
}

// Encrypt returns the input reversed, following the outCap convention.
func (f *fakeBackend) Encrypt(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	out := make([]byte, len(in))
	for i, b := range in {
		out[len(in)-1-i] = b
	}
	return sized(out, outCap)
}

func (f *fakeBackend) CreateObject(s ck.SessionHandle, t []ck.Attribute) (ck.ObjectHandle, error) {
	var b strings.Builder
	for _, a := range t {
		fmt.Fprintf(&b, "%#x=%x;", uint64(a.Type), a.Value)
	}
	f.record("CreateObject %s", b.String())
	return ck.ObjectHandle(len(t)), nil
}

// GetAttributeValue knows CKA_CLASS (8 bytes), CKA_LABEL ("fake label"),
// CKA_VALUE (sensitive) and CKA_WRAP_TEMPLATE (two attributes); any other
// type is invalid. Precedence: sensitive, then type invalid, then too small.
func (f *fakeBackend) GetAttributeValue(s ck.SessionHandle, o ck.ObjectHandle, req []ck.AttributeRequest) ([]ck.AttributeResult, error) {
	vals := map[ck.AttributeType][]byte{
		ck.CKA_CLASS:         {3, 0, 0, 0, 0, 0, 0, 0},
		ck.CKA_LABEL:         []byte("fake label"),
		ck.CKA_WRAP_TEMPLATE: encodeTemplate([]ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("in")}, {Type: ck.CKA_TOKEN, Value: []byte{1}}}),
	}
	var sensitive, invalid, small bool
	res := make([]ck.AttributeResult, len(req))
	for i, r := range req {
		res[i] = ck.AttributeResult{Type: r.Type, Len: ck.CK_UNAVAILABLE_INFORMATION}
		v, ok := vals[r.Type]
		switch {
		case r.Type == ck.CKA_VALUE:
			sensitive = true
		case !ok:
			invalid = true
		case r.Cap < 0:
			res[i].Len = ck.ULong(len(v))
		case r.Cap < len(v):
			small = true
		default:
			res[i].Len, res[i].Value = ck.ULong(len(v)), v
		}
	}
	switch {
	case sensitive:
		return res, ck.CKR_ATTRIBUTE_SENSITIVE
	case invalid:
		return res, ck.CKR_ATTRIBUTE_TYPE_INVALID
	case small:
		return res, ck.CKR_BUFFER_TOO_SMALL
	}
	return res, nil
}

func (f *fakeBackend) MessageEncryptInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error {
	f.record("MessageEncryptInit key=%d %s", key, describe(m))
	return nil
}

// EncryptMessage echoes the parameter it got, then acts as a token that
// generates IVs: every byte of a generated IV becomes 0xA0+i, the tag
// 0xC0+i, and the ciphertext is the input reversed.
func (f *fakeBackend) EncryptMessage(s ck.SessionHandle, param any, aad, in []byte, outCap int) ([]byte, int, error) {
	f.record("EncryptMessage %T %+v aad=%x in=%x", param, param, aad, in)
	out := make([]byte, len(in))
	for i, b := range in {
		out[len(in)-1-i] = b
	}
	if outCap < 0 || outCap < len(out) {
		return sized(out, outCap)
	}
	switch p := param.(type) {
	case *ck.GCMMessageParams:
		if p.IVGenerator != ck.CKG_NO_GENERATE {
			for i := range p.IV {
				p.IV[i] = byte(0xA0 + i)
			}
		}
		p.Tag = make([]byte, p.TagBits/8)
		for i := range p.Tag {
			p.Tag[i] = byte(0xC0 + i)
		}
	case *ck.ChaCha20Poly1305MsgParams:
		for i := range p.Tag {
			p.Tag[i] = byte(0xC0 + i)
		}
	}
	return out, len(out), nil
}

func (f *fakeBackend) DecryptMessage(s ck.SessionHandle, param any, aad, in []byte, outCap int) ([]byte, int, error) {
	f.record("DecryptMessage %T %+v aad=%x in=%x", param, param, aad, in)
	return sized(in, outCap)
}

// EncapsulateKey writes "ciphertext" and returns handle 77 once the buffer
// is big enough.
func (f *fakeBackend) EncapsulateKey(s ck.SessionHandle, m ck.Mechanism, pub ck.ObjectHandle, t []ck.Attribute, ct []byte) (int, ck.ObjectHandle, error) {
	f.record("EncapsulateKey pub=%d %s attrs=%d", pub, describe(m), len(t))
	const out = "ciphertext"
	switch {
	case ct == nil:
		return len(out), 0, nil
	case len(ct) < len(out):
		return len(out), 0, ck.CKR_BUFFER_TOO_SMALL
	}
	return copy(ct, out), 77, nil
}

func (f *fakeBackend) DecapsulateKey(s ck.SessionHandle, m ck.Mechanism, priv ck.ObjectHandle, t []ck.Attribute, ct []byte) (ck.ObjectHandle, error) {
	f.record("DecapsulateKey priv=%d %s attrs=%d ct=%q", priv, describe(m), len(t), ct)
	return 78, nil
}

// GetSessionInfo knows every session, so sessionFirst leaves
// CKR_ARGUMENTS_BAD as it is. Its ulDeviceError is the number of
// SessionCancel calls so far, so a test can see whether a call cancelled.
func (f *fakeBackend) GetSessionInfo(s ck.SessionHandle) (ck.SessionInfo, error) {
	f.mu.Lock()
	n := f.cancels
	f.mu.Unlock()
	return ck.SessionInfo{SlotID: 1, State: ck.CKS_RW_USER_FUNCTIONS, Flags: ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION,
		DeviceError: ck.ULong(n)}, nil
}

// SessionCancel accepts everything (endOnBadArgs calls it) and only counts,
// so the echo stays the call under test.
func (f *fakeBackend) SessionCancel(ck.SessionHandle, ck.Flags) error {
	f.mu.Lock()
	f.cancels++
	f.mu.Unlock()
	return nil
}

// fakeMechFlags is what the fake reports for every mechanism: flags of
// 2.40, 3.0 and 3.2, and 0x80, which no version defines.
const fakeMechFlags = ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_EC_NAMEDCURVE | ck.CKF_EXTENSION |
	ck.CKF_MESSAGE_ENCRYPT | ck.CKF_MESSAGE_DECRYPT | ck.CKF_MESSAGE_SIGN | ck.CKF_MESSAGE_VERIFY |
	ck.CKF_MULTI_MESSAGE | ck.CKF_FIND_OBJECTS | ck.CKF_EC_CURVENAME |
	ck.CKF_ENCAPSULATE | ck.CKF_DECAPSULATE | 0x80

func (f *fakeBackend) GetMechanismInfo(slot ck.SlotID, m ck.MechanismType) (ck.MechanismInfo, error) {
	return ck.MechanismInfo{MinKeySize: 16, MaxKeySize: 32, Flags: fakeMechFlags}, nil
}

// Key handles WrapKey treats specially.
const (
	fakeKeyNotWrappable = 13 // CKR_KEY_NOT_WRAPPABLE, after writing the IV
	fakeKeyIVResized    = 14 // the IV comes back one byte longer
)

// WrapKey acts as a careless token that generates the IV or nonce of the
// mechanism on every call: size queries and failures included, so the
// test sees that the shim copies it back only after a wrap that returned
// the wrapped key. It writes 0xB0+i into a GCM IV, a CCM or ChaCha20
// nonce, and also into a plain byte-string parameter (a CBC IV), which
// the shim must not copy back: it is no output. The wrapped key is
// "wrapped!".
func (f *fakeBackend) WrapKey(s ck.SessionHandle, m ck.Mechanism, wrapping, key ck.ObjectHandle, outCap int) ([]byte, int, error) {
	f.record("WrapKey wrapping=%d key=%d %s", wrapping, key, describe(m))
	gen := func(b []byte) {
		for i := range b {
			b[i] = byte(0xB0 + i)
		}
	}
	switch p := m.Param.(type) {
	case *ck.GCMParams:
		gen(p.IV)
		if key == fakeKeyIVResized {
			p.IV = append(p.IV, 0xFF)
		}
	case *ck.CCMParams:
		gen(p.Nonce)
	case *ck.ChaCha20Poly1305Params:
		gen(p.Nonce)
	case []byte:
		gen(p)
	}
	if key == fakeKeyNotWrappable {
		return nil, 0, fmt.Errorf("fake wrap: %w", ck.CKR_KEY_NOT_WRAPPABLE)
	}
	return sized([]byte("wrapped!"), outCap)
}

// Message-based signing: the fake echoes the per-message parameter and
// whether a part was the last; the "signature" is "sig:" and the data.
func (f *fakeBackend) MessageSignInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error {
	f.record("MessageSignInit key=%d %s", key, describe(m))
	f.setMsgMech(false, m.Type)
	return nil
}

func (f *fakeBackend) setMsgMech(verify bool, mt ck.MechanismType) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.msgMech == nil {
		f.msgMech = map[bool]ck.MechanismType{}
	}
	f.msgMech[verify] = mt
}

func (f *fakeBackend) MessageSignMechanism(s ck.SessionHandle, verify bool) (ck.MechanismType, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mt, ok := f.msgMech[verify]
	if !ok {
		return 0, ck.CKR_OPERATION_NOT_INITIALIZED
	}
	return mt, nil
}

func (f *fakeBackend) SignMessage(s ck.SessionHandle, param any, data []byte, outCap int) ([]byte, int, error) {
	f.record("SignMessage %T %+v data=%x", param, param, data)
	return sized(append([]byte("sig:"), data...), outCap)
}

func (f *fakeBackend) SignMessageNext(s ck.SessionHandle, param any, in []byte, last bool, outCap int) ([]byte, int, error) {
	f.record("SignMessageNext %T last=%v in=%x", param, last, in)
	if !last {
		return nil, 0, nil
	}
	return sized(append([]byte("sig:"), in...), outCap)
}

func (f *fakeBackend) MessageSignFinal(s ck.SessionHandle) error {
	f.record("MessageSignFinal")
	return nil
}

func (f *fakeBackend) VerifyMessageNext(s ck.SessionHandle, param any, in, sig []byte, last bool) error {
	f.record("VerifyMessageNext %T last=%v in=%x sig=%x", param, last, in, sig)
	return nil
}

func (f *fakeBackend) VerifySignatureInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle, sig []byte) error {
	f.record("VerifySignatureInit key=%d %s sig=%x", key, describe(m), sig)
	return nil
}

// GetSessionValidationFlags answers the type it was asked, so the test
// sees both directions of the conversion.
func (f *fakeBackend) GetSessionValidationFlags(s ck.SessionHandle, typ ck.ULong) (ck.Flags, error) {
	return ck.Flags(typ) | 0x100, nil
}
