package client

import (
	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The Backend methods that keep the client's own state: the session table
// and the held logins. Every other method is generated (zcalls.go).

var (
	callOpenSession      = wire.MustCall("OpenSession")
	callCloseSession     = wire.MustCall("CloseSession")
	callCloseAllSessions = wire.MustCall("CloseAllSessions")
	callLogin            = wire.MustCall("Login")
	callLoginUser        = wire.MustCall("LoginUser")
	callLogout           = wire.MustCall("Logout")
	callSetPIN           = wire.MustCall("SetPIN")
	callGenerateRandom   = wire.MustCall("GenerateRandom")
	callEncapsulateKey   = wire.MustCall("EncapsulateKey")
)

// callEpoch is call, also returning the epoch of the connection that
// answered.
func (c *Client) callEpoch(call *wire.Call, args ...any) ([]any, uint64, error) {
	r, err := c.prepare(call, args)
	if err != nil {
		return nil, 0, err
	}
	c.enqueue(r)
	c.wait(r)
	v, err := c.result(r)
	return v, r.epoch, err
}

// OpenSession opens a session on the appliance and hands the application
// a handle of the client's, which stays valid across reconnections.
func (c *Client) OpenSession(slot ck.SlotID, flags ck.Flags) (ck.SessionHandle, error) {
	for attempt := 0; ; attempt++ {
		v, epoch, err := c.callEpoch(callOpenSession, slot, flags)
		if err != nil {
			return 0, err
		}
		c.mu.Lock()
		if !c.running {
			c.mu.Unlock()
			return 0, ck.CKR_CRYPTOKI_NOT_INITIALIZED
		}
		// Opened on a connection whose restore already ran (it dropped
		// right after answering): that session is gone; open another.
		if epoch == c.epoch || attempt == 3 {
			c.nextApp++
			s := &session{app: c.nextApp, slot: slot, flags: flags, server: value[ck.SessionHandle](v, 0), epoch: epoch}
			s.broken = epoch != c.epoch
			c.sessions[s.app] = s
			c.mu.Unlock()
			return s.app, nil
		}
		c.mu.Unlock()
	}
}

// CloseSession closes a session. Without a connection the appliance has
// closed it already (it closes a dropped connection's sessions), so the
// client only forgets it.
func (c *Client) CloseSession(h ck.SessionHandle) error {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	s := c.sessions[h]
	if s == nil || s.closed {
		c.mu.Unlock()
		return ck.CKR_SESSION_HANDLE_INVALID
	}
	local := c.cur == nil || s.broken
	c.mu.Unlock()
	var err error
	if !local {
		_, err = c.call(callCloseSession, h)
		if rv, ok := err.(ck.RV); ok && rv == ck.CKR_DEVICE_ERROR {
			err = nil // the connection went: so did the session
		}
	}
	if err != nil {
		return err
	}
	c.forget(func(x *session) bool { return x == s })
	return nil
}

// CloseAllSessions closes the application's sessions on slot.
func (c *Client) CloseAllSessions(slot ck.SlotID) error {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	local := c.cur == nil
	c.mu.Unlock()
	if !local {
		if _, err := c.call(callCloseAllSessions, slot); err != nil {
			if rv, ok := err.(ck.RV); !ok || rv != ck.CKR_DEVICE_ERROR {
				return err
			}
		}
	}
	c.forget(func(x *session) bool { return x.slot == slot })
	return nil
}

// forget drops sessions; a token left without sessions is logged out (as
// the engine does when its last session closes), so its PIN goes.
func (c *Client) forget(match func(*session) bool) {
	c.mu.Lock()
	slots := map[ck.SlotID]bool{}
	for h, s := range c.sessions {
		if match(s) {
			s.closed = true
			delete(c.sessions, h)
			slots[s.slot] = true
		}
	}
	for _, s := range c.sessions {
		delete(slots, s.slot)
	}
	var drop []*login
	for slot := range slots {
		if l := c.logins[slot]; l != nil {
			drop = append(drop, l)
			delete(c.logins, slot)
		}
	}
	c.mu.Unlock()
	for _, l := range drop {
		l.destroy()
	}
}

// Login logs the token in and, for the SO and the user, keeps the PIN in
// locked memory to log re-opened sessions back in after a reconnect.
func (c *Client) Login(h ck.SessionHandle, user ck.UserType, pin []byte) error {
	_, epoch, err := c.callEpoch(callLogin, h, user, pin)
	if err == nil {
		c.hold(h, user, pin, nil, epoch)
	}
	return err
}

// LoginUser is Login with a user name (C_LoginUser).
func (c *Client) LoginUser(h ck.SessionHandle, user ck.UserType, pin, username []byte) error {
	_, epoch, err := c.callEpoch(callLoginUser, h, user, pin, username)
	if err == nil {
		c.hold(h, user, pin, username, epoch)
	}
	return err
}

// hold keeps a successful login. A context-specific login (for one
// operation) is not kept: the operation does not survive a reconnect.
func (c *Client) hold(h ck.SessionHandle, user ck.UserType, pin, username []byte, epoch uint64) {
	if user != ck.CKU_USER && user != ck.CKU_SO {
		return
	}
	l := &login{user: user, pin: newSecret(pin, c.cfg.Logf)}
	if username != nil {
		l.username = newSecret(username, c.cfg.Logf)
	}
	c.mu.Lock()
	s := c.sessions[h]
	if s == nil || !c.running {
		c.mu.Unlock()
		l.destroy()
		return
	}
	prev := c.logins[s.slot]
	c.logins[s.slot] = l
	stale := epoch != c.epoch
	c.mu.Unlock()
	prev.destroy()
	if stale {
		// The connection dropped after the login and its restore did not
		// know the PIN yet: log the re-opened sessions in now.
		c.mu.Lock()
		cur := c.cur
		c.mu.Unlock()
		if cur != nil {
			if err := c.relogin(cur, s.slot); err != nil {
				c.logf("log slot %d back in: %v", s.slot, err)
			}
		}
	}
}

// Logout logs the token out and zeroises the held PIN first, so that no
// reconnect logs it back in.
func (c *Client) Logout(h ck.SessionHandle) error {
	c.mu.Lock()
	var held *login
	if s := c.sessions[h]; s != nil {
		held = c.logins[s.slot]
		delete(c.logins, s.slot)
	}
	c.mu.Unlock()
	held.destroy()
	_, err := c.call(callLogout, h)
	if rv, ok := err.(ck.RV); ok && rv == ck.CKR_USER_NOT_LOGGED_IN && held != nil {
		// The application was logged in; a reconnect that could not log
		// it back in (or a retried C_Logout) already logged it out.
		return nil
	}
	return err
}

// SetPIN changes the PIN of the logged-in user (or of the user, in a
// public session); the held PIN follows.
func (c *Client) SetPIN(h ck.SessionHandle, oldPIN, newPIN []byte) error {
	_, err := c.call(callSetPIN, h, oldPIN, newPIN)
	if err != nil {
		return err
	}
	c.mu.Lock()
	var l *login
	if s := c.sessions[h]; s != nil {
		l = c.logins[s.slot]
	}
	if l != nil {
		old := l.pin
		l.pin = newSecret(newPIN, c.cfg.Logf)
		c.mu.Unlock()
		old.destroy()
		return nil
	}
	c.mu.Unlock()
	return nil
}

// GenerateRandom asks in pieces a frame can carry.
func (c *Client) GenerateRandom(h ck.SessionHandle, n int) ([]byte, error) {
	c.mu.Lock()
	piece := c.limit - 1024
	c.mu.Unlock()
	if n <= piece {
		v, err := c.call(callGenerateRandom, h, n)
		return value[[]byte](v, 0), err
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		v, err := c.call(callGenerateRandom, h, min(piece, n-len(out)))
		if err != nil {
			clear(out)
			return nil, err
		}
		out = append(out, value[[]byte](v, 0)...)
	}
	return out, nil
}

// EncapsulateKey sends the ciphertext buffer's capacity and writes the
// ciphertext that comes back into it, as the engine writes in place.
func (c *Client) EncapsulateKey(h ck.SessionHandle, m ck.Mechanism, pub ck.ObjectHandle, t []ck.Attribute, ct []byte) (int, ck.ObjectHandle, error) {
	ctCap := -1
	if ct != nil {
		ctCap = len(ct)
	}
	v, err := c.call(callEncapsulateKey, h, m, pub, t, ctCap)
	n, obj, out := value[int](v, 0), value[ck.ObjectHandle](v, 1), value[[]byte](v, 2)
	if err == nil && ct != nil {
		copy(ct, out)
	}
	return n, obj, err
}
