package hsm

import (
	"errors"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

func TestInitializeFinalize(t *testing.T) {
	st := NewMemoryStorage()
	cfg := DefaultConfig(st)
	m, err := New(cfg)
	must(t, err)
	_, err = m.GetInfo()
	wantRV(t, err, ck.CKR_CRYPTOKI_NOT_INITIALIZED)
	_, err = m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_CRYPTOKI_NOT_INITIALIZED)
	wantRV(t, m.Finalize(), ck.CKR_CRYPTOKI_NOT_INITIALIZED)
	must(t, m.Initialize())
	wantRV(t, m.Initialize(), ck.CKR_CRYPTOKI_ALREADY_INITIALIZED)
	must(t, m.Finalize())
	must(t, m.Initialize())
	must(t, m.Finalize())
}

func TestFreeSlotAndInitToken(t *testing.T) {
	m, st := newModule(t)
	slots, err := m.GetSlotList(true)
	must(t, err)
	if len(slots) != 1 {
		t.Fatalf("fresh store has %d slots, want 1 free slot", len(slots))
	}
	info, err := m.GetTokenInfo(0)
	must(t, err)
	if info.Flags&ck.CKF_TOKEN_INITIALIZED != 0 {
		t.Fatal("free slot claims an initialised token")
	}
	_, err = m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_TOKEN_NOT_RECOGNIZED)
	wantRV(t, m.InitToken(0, []byte("x"), "short"), ck.CKR_PIN_LEN_RANGE)
	must(t, m.InitToken(0, []byte(soPIN), "first"))
	slots, _ = m.GetSlotList(true)
	if len(slots) != 2 {
		t.Fatalf("after InitToken: %d slots, want 2 (a new free one)", len(slots))
	}
	info, _ = m.GetTokenInfo(0)
	if info.Label != "first" || info.Flags&ck.CKF_TOKEN_INITIALIZED == 0 || info.Flags&ck.CKF_USER_PIN_INITIALIZED != 0 {
		t.Fatalf("token info after init: %+v", info)
	}
	_, err = m.GetTokenInfo(7)
	wantRV(t, err, ck.CKR_SLOT_ID_INVALID)

	// Re-initialising needs the SO PIN and no open session.
	s := openRW(t, m, 0)
	wantRV(t, m.InitToken(0, []byte(soPIN), "again"), ck.CKR_SESSION_EXISTS)
	must(t, m.CloseSession(s))
	wantRV(t, m.InitToken(0, []byte("wrong-pin"), "again"), ck.CKR_PIN_INCORRECT)
	must(t, m.InitToken(0, []byte(soPIN), "again"))

	// The token survives a restart of the module.
	must(t, m.Finalize())
	m2 := startModule(t, st)
	info, _ = m2.GetTokenInfo(0)
	if info.Label != "again" {
		t.Fatalf("label after restart %q", info.Label)
	}
}

func TestSessionStatesAndLogin(t *testing.T) {
	m, _ := newModule(t)
	initToken(t, m)
	_, err := m.OpenSession(0, ck.CKF_RW_SESSION)
	wantRV(t, err, ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED)
	ro, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	must(t, err)
	rw := openRW(t, m, 0)
	state := func(s ck.SessionHandle) ck.State {
		i, err := m.GetSessionInfo(s)
		must(t, err)
		return i.State
	}
	if state(ro) != ck.CKS_RO_PUBLIC_SESSION || state(rw) != ck.CKS_RW_PUBLIC_SESSION {
		t.Fatal("public states wrong")
	}
	wantRV(t, m.Logout(rw), ck.CKR_USER_NOT_LOGGED_IN)
	wantRV(t, m.Login(rw, ck.CKU_SO, []byte(soPIN)), ck.CKR_SESSION_READ_ONLY_EXISTS)
	wantRV(t, m.Login(rw, 99, []byte(userPIN)), ck.CKR_USER_TYPE_INVALID)
	must(t, m.Login(ro, ck.CKU_USER, []byte(userPIN)))
	if state(ro) != ck.CKS_RO_USER_FUNCTIONS || state(rw) != ck.CKS_RW_USER_FUNCTIONS {
		t.Fatal("user states wrong: login is per token, not per session")
	}
	wantRV(t, m.Login(rw, ck.CKU_USER, []byte(userPIN)), ck.CKR_USER_ALREADY_LOGGED_IN)
	wantRV(t, m.Login(rw, ck.CKU_SO, []byte(soPIN)), ck.CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
	must(t, m.Logout(rw))
	wantRV(t, m.Logout(rw), ck.CKR_USER_NOT_LOGGED_IN)
	must(t, m.CloseSession(ro))
	must(t, m.Login(rw, ck.CKU_SO, []byte(soPIN)))
	if state(rw) != ck.CKS_RW_SO_FUNCTIONS {
		t.Fatal("SO state wrong")
	}
	_, err = m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_SESSION_READ_WRITE_SO_EXISTS)
	// Closing the last session logs the token out.
	must(t, m.CloseSession(rw))
	wantRV(t, m.CloseSession(rw), ck.CKR_SESSION_HANDLE_INVALID)
	s := openRW(t, m, 0)
	if state(s) != ck.CKS_RW_PUBLIC_SESSION {
		t.Fatal("login survived the last session")
	}
}

func TestPINLockout(t *testing.T) {
	m, _ := newModule(t)
	initToken(t, m)
	s := openRW(t, m, 0)
	flags := func() ck.Flags {
		i, err := m.GetTokenInfo(0)
		must(t, err)
		return i.Flags
	}
	for i := 1; i <= 10; i++ {
		err := m.Login(s, ck.CKU_USER, []byte("bad-pin"))
		f := flags()
		switch {
		case i < 9:
			wantRV(t, err, ck.CKR_PIN_INCORRECT)
			if f&ck.CKF_USER_PIN_COUNT_LOW == 0 || f&ck.CKF_USER_PIN_FINAL_TRY != 0 {
				t.Fatalf("after %d failures flags %#x", i, f)
			}
		case i == 9:
			wantRV(t, err, ck.CKR_PIN_INCORRECT)
			if f&ck.CKF_USER_PIN_FINAL_TRY == 0 {
				t.Fatalf("after 9 failures no FINAL_TRY: %#x", f)
			}
		default:
			wantRV(t, err, ck.CKR_PIN_LOCKED)
			if f&ck.CKF_USER_PIN_LOCKED == 0 {
				t.Fatalf("after 10 failures not locked: %#x", f)
			}
		}
	}
	// Locked means locked, even with the right PIN.
	wantRV(t, m.Login(s, ck.CKU_USER, []byte(userPIN)), ck.CKR_PIN_LOCKED)
	// The SO's C_InitPIN unlocks.
	must(t, m.Login(s, ck.CKU_SO, []byte(soPIN)))
	must(t, m.InitPIN(s, []byte("new-user-pin")))
	must(t, m.Logout(s))
	if f := flags(); f&(ck.CKF_USER_PIN_LOCKED|ck.CKF_USER_PIN_COUNT_LOW) != 0 {
		t.Fatalf("InitPIN left flags %#x", f)
	}
	must(t, m.Login(s, ck.CKU_USER, []byte("new-user-pin")))
}

func TestPINCounterResetsOnSuccess(t *testing.T) {
	m, _ := newModule(t)
	initToken(t, m)
	s := openRW(t, m, 0)
	wantRV(t, m.Login(s, ck.CKU_USER, []byte("bad-pin")), ck.CKR_PIN_INCORRECT)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	i, _ := m.GetTokenInfo(0)
	if i.Flags&ck.CKF_USER_PIN_COUNT_LOW != 0 {
		t.Fatal("successful login did not reset the counter")
	}
}

func TestSetPIN(t *testing.T) {
	m, st := newModule(t)
	initToken(t, m)
	ro, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	must(t, err)
	wantRV(t, m.SetPIN(ro, []byte(userPIN), []byte("another")), ck.CKR_SESSION_READ_ONLY)
	rw := openRW(t, m, 0)
	wantRV(t, m.SetPIN(rw, []byte("wrong-old"), []byte("another")), ck.CKR_PIN_INCORRECT)
	wantRV(t, m.SetPIN(rw, []byte(userPIN), []byte("x")), ck.CKR_PIN_LEN_RANGE)
	must(t, m.SetPIN(rw, []byte(userPIN), []byte("another")))
	// A private object made under the old PIN is still readable: only the
	// token key was rewrapped.
	must(t, m.Login(rw, ck.CKU_USER, []byte("another")))
	o, err := m.CreateObject(rw, dataTemplate("p", true, true))
	must(t, err)
	_ = o
	must(t, m.Logout(rw))
	wantRV(t, m.Login(rw, ck.CKU_USER, []byte(userPIN)), ck.CKR_PIN_INCORRECT)
	// SO changes the SO PIN in the R/W SO state.
	must(t, m.CloseSession(ro))
	must(t, m.Login(rw, ck.CKU_SO, []byte(soPIN)))
	must(t, m.SetPIN(rw, []byte(soPIN), []byte("so-another")))
	must(t, m.Logout(rw))
	must(t, m.Finalize())
	m2 := startModule(t, st)
	s := openRW(t, m2, 0)
	must(t, m2.Login(s, ck.CKU_USER, []byte("another")))
	must(t, m2.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("p")}}))
	hs, err := m2.FindObjects(s, 10)
	must(t, err)
	if len(hs) != 1 {
		t.Fatalf("private object after SetPIN and restart: found %d", len(hs))
	}
	if got := string(getAttr(t, m2, s, hs[0], ck.CKA_VALUE)); got != "value of p" {
		t.Fatalf("value %q", got)
	}
	must(t, m2.Logout(s))
	must(t, m2.Login(s, ck.CKU_SO, []byte("so-another")))
}

func TestInitPINNeedsSO(t *testing.T) {
	m, _ := newModule(t)
	initToken(t, m)
	s := openRW(t, m, 0)
	wantRV(t, m.InitPIN(s, []byte("whatever")), ck.CKR_USER_NOT_LOGGED_IN)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	wantRV(t, m.InitPIN(s, []byte("whatever")), ck.CKR_USER_NOT_LOGGED_IN)
}

func TestBadHandles(t *testing.T) {
	m, s := userSession(t)
	_, err := m.GetSessionInfo(s + 1000)
	wantRV(t, err, ck.CKR_SESSION_HANDLE_INVALID)
	_, err = m.GetAttributeValue(s, 4242, []ck.AttributeRequest{{Type: ck.CKA_LABEL, Cap: -1}})
	wantRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
	wantRV(t, m.DestroyObject(s, 4242), ck.CKR_OBJECT_HANDLE_INVALID)
	wantRV(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_SHA256_RSA_PKCS}, 4242), ck.CKR_KEY_HANDLE_INVALID)
	_, _, err = m.Sign(s, []byte("x"), 100)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	_, err = m.FindObjects(s, 1)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, m.FindObjectsFinal(s), ck.CKR_OPERATION_NOT_INITIALIZED)
	wantRV(t, m.DigestInit(s, ck.Mechanism{Type: 0x7fff_ffff}), ck.CKR_MECHANISM_INVALID)
}

// TestLogoutDestroysPrivateSessionObjects: §5.6 C_Logout, "all private
// session objects from sessions belonging to the application are
// destroyed"; public session objects and token objects stay, and the
// handles of the destroyed ones stay invalid after a new login.
func TestLogoutDestroysPrivateSessionObjects(t *testing.T) {
	m, s := userSession(t)
	other := openRW(t, m, 0)
	privSess, err := m.CreateObject(other, dataTemplate("private session", false, true))
	must(t, err)
	pubSess, err := m.CreateObject(other, dataTemplate("public session", false, false))
	must(t, err)
	privTok, err := m.CreateObject(s, dataTemplate("private token", true, true))
	must(t, err)
	must(t, m.Logout(s))
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	if _, err := m.GetAttributeValue(s, privSess, []ck.AttributeRequest{{Type: ck.CKA_LABEL, Cap: 64}}); !errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID) {
		t.Fatalf("private session object after logout and login: %v", err)
	}
	for _, h := range []ck.ObjectHandle{pubSess, privTok} {
		if _, err := m.GetAttributeValue(s, h, []ck.AttributeRequest{{Type: ck.CKA_LABEL, Cap: 64}}); err != nil {
			t.Fatalf("object %d after logout and login: %v", h, err)
		}
	}
	must(t, m.FindObjectsInit(other, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("private session")}}))
	if hs, err := m.FindObjects(other, 10); err != nil || len(hs) != 0 {
		t.Fatalf("search finds %v (%v)", hs, err)
	}
	must(t, m.FindObjectsFinal(other))
}

// TestSessionObjectMadeAcrossLogout: a session object is published with
// no token lock, so a logout can fall between its checks and its
// publication. Then it must not stay: the logout's sweep has passed, and
// publishing sees the login generation changed and takes it back.
func TestSessionObjectMadeAcrossLogout(t *testing.T) {
	m, h := userSession(t)
	s, err := m.lock(h)
	must(t, err)
	all, err := m.build(dataTemplate("late", false, true), ck.CKO_DATA, noKeyType, fromCreate, false, nil)
	must(t, err)
	o, err := m.newObject(all, ck.CKO_DATA, noKeyType)
	must(t, err)
	gen := s.tok.loginGen.Load() // the checks pass here
	s.mu.Unlock()
	must(t, m.Logout(h))
	must(t, m.Login(h, ck.CKU_USER, []byte(userPIN)))
	s.mu.Lock()
	err = m.publishSession(s, o, false, gen)
	s.mu.Unlock()
	wantRV(t, err, ck.CKR_USER_NOT_LOGGED_IN)
	if _, ok := s.tok.objects.get(o.handle); ok {
		t.Fatal("private session object made across a logout outlived it")
	}
	s.own.mu.Lock()
	n := len(s.own.set)
	s.own.mu.Unlock()
	if n != 0 {
		t.Fatalf("session still lists %d objects", n)
	}
}
