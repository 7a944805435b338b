package client

import (
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm/ck"
)

func held(c *Client, slot ck.SlotID) *login {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logins[slot]
}

// The PIN is held only while the application is logged in, in memory of
// its own, and follows C_SetPIN; it is gone after C_Logout, after the last
// session closes, after a failed login, and after C_Finalize.
func TestHeldPIN(t *testing.T) {
	a := newAppliance(t, newStore(t, "alpha"), identities{"app": {"alpha"}}, nil)
	c := a.pipeClient("app")
	s, err := c.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	wantRV(t, c.Login(s, ck.CKU_USER, []byte("wrong")), ck.CKR_PIN_INCORRECT)
	if held(c, 0) != nil {
		t.Fatal("a failed login left a PIN")
	}
	must(t, c.Login(s, ck.CKU_USER, []byte(userPIN)))
	l := held(c, 0)
	if l == nil || string(l.pin.bytes()) != userPIN || !l.pin.mapped {
		t.Fatal("PIN not held in a mapping of its own")
	}
	t.Logf("PIN pages locked: %v", l.pin.locked)
	mem := l.pin.mem
	must(t, c.Logout(s))
	if held(c, 0) != nil || l.pin.mem != nil {
		t.Fatal("PIN kept after C_Logout")
	}
	_ = mem // unmapped: reading it now would fault, which is the point

	// C_SetPIN: the new PIN is the one used after a restart.
	must(t, c.Login(s, ck.CKU_USER, []byte(userPIN)))
	must(t, c.SetPIN(s, []byte(userPIN), []byte("new-pin-5678")))
	if string(held(c, 0).pin.bytes()) != "new-pin-5678" {
		t.Fatal("held PIN did not follow C_SetPIN")
	}
	a.restart()
	info, err := c.GetSessionInfo(s)
	must(t, err)
	if info.State != ck.CKS_RW_USER_FUNCTIONS {
		t.Fatalf("state %v after a restart with the changed PIN", info.State)
	}
	must(t, c.SetPIN(s, []byte("new-pin-5678"), []byte(userPIN)))

	// The last session closing logs the token out: the PIN goes.
	must(t, c.CloseSession(s))
	if held(c, 0) != nil {
		t.Fatal("PIN kept after the last session closed")
	}
	s = userSession(t, c, 0)
	c.Finalize()
	if held(c, 0) != nil {
		t.Fatal("PIN kept after C_Finalize")
	}
}

// A re-login that fails (the PIN was changed by someone else while the
// appliance was down) drops the PIN and leaves the sessions public.
func TestReloginFails(t *testing.T) {
	dir := newStore(t, "alpha")
	a := newAppliance(t, dir, identities{"app": {"alpha"}, "other": {"alpha"}}, nil)
	c := a.pipeClient("app")
	s := userSession(t, c, 0)
	a.stop()
	// Another application changes the user PIN while c is cut off.
	m := localEngineB(t, dir)
	ls, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	must(t, m.Login(ls, ck.CKU_USER, []byte(userPIN)))
	must(t, m.SetPIN(ls, []byte(userPIN), []byte("changed-9999")))
	must(t, m.Finalize())
	a.start()
	info, err := c.GetSessionInfo(s)
	must(t, err)
	if info.State != ck.CKS_RW_PUBLIC_SESSION {
		t.Fatalf("state %v", info.State)
	}
	if held(c, 0) != nil {
		t.Fatal("a PIN that failed to log in is still held")
	}
}

// Logins, logouts, PIN changes and session churn race with reconnections
// without corrupting the client (run under -race; the held PIN is read by
// the reconnection while the application may release it).
func TestLoginChurnAcrossRestarts(t *testing.T) {
	a := newAppliance(t, newStore(t, "alpha"), identities{"app": {"alpha"}}, nil)
	c := a.pipeClient("app", func(cfg *Config) { cfg.Timeout = time.Second })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := c.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
				if err != nil {
					continue
				}
				c.Login(s, ck.CKU_USER, []byte(userPIN))
				c.GetSessionInfo(s)
				c.Logout(s)
				c.CloseSession(s)
			}
		}()
	}
	for range 4 {
		time.Sleep(100 * time.Millisecond)
		a.restart()
	}
	close(stop)
	wg.Wait()
	// Still usable.
	s := userSession(t, c, 0)
	_, err := c.GetSessionInfo(s)
	must(t, err)
}
