package hsm

import (
	"errors"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

const (
	soPIN   = "so-secret"
	userPIN = "user-1234"
)

// newModule returns an initialised module on memory storage with a cheap
// KDF, and the storage so tests can restart the module on it.
func newModule(t testing.TB) (*Module, *MemoryStorage) {
	t.Helper()
	st := NewMemoryStorage()
	return startModule(t, st), st
}

func startModule(t testing.TB, st Storage) *Module {
	t.Helper()
	cfg := DefaultConfig(st)
	cfg.KDFIterations = 10
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Finalize() })
	return m
}

// initToken initialises slot 0 with both PINs and returns the slot.
func initToken(t testing.TB, m *Module) ck.SlotID {
	t.Helper()
	must(t, m.InitToken(0, []byte(soPIN), "test token"))
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_SO, []byte(soPIN)))
	must(t, m.InitPIN(s, []byte(userPIN)))
	must(t, m.CloseSession(s))
	return 0
}

func openRW(t testing.TB, m *Module, slot ck.SlotID) ck.SessionHandle {
	t.Helper()
	s, err := m.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	return s
}

// userSession opens an R/W session on a fresh token, logged in as user.
func userSession(t testing.TB) (*Module, ck.SessionHandle) {
	t.Helper()
	m, _ := newModule(t)
	initToken(t, m)
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	return m, s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantRV fails unless err carries code.
func wantRV(t testing.TB, err error, code ck.RV) {
	t.Helper()
	if code == ck.CKR_OK {
		if err != nil {
			t.Fatalf("got %v, want CKR_OK", err)
		}
		return
	}
	if !errors.Is(err, code) {
		t.Fatalf("got %v, want %v", err, code)
	}
}

func ul(v ck.ULong) []byte { return attr.ULong(v) }

func tb(v bool) []byte { return attr.Bool(v) }

func dataTemplate(label string, token, private bool) []ck.Attribute {
	return []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_DATA))},
		{Type: ck.CKA_TOKEN, Value: tb(token)},
		{Type: ck.CKA_PRIVATE, Value: tb(private)},
		{Type: ck.CKA_LABEL, Value: []byte(label)},
		{Type: ck.CKA_VALUE, Value: []byte("value of " + label)},
	}
}

func getAttr(t testing.TB, m *Module, s ck.SessionHandle, o ck.ObjectHandle, at ck.AttributeType) []byte {
	t.Helper()
	res, err := m.GetAttributeValue(s, o, []ck.AttributeRequest{{Type: at, Cap: 1 << 16}})
	must(t, err)
	return res[0].Value
}
