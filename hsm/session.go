package hsm

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Session is one PKCS#11 session. mu serialises calls on the session: the
// spec lets an application share a session between threads only if it
// serialises them itself, but a token must not corrupt state when it does
// not.
type Session struct {
	h   ck.SessionHandle
	tok *Token
	rw  bool

	mu     sync.Mutex
	closed bool
	ops    [opKinds]*operation
	find   *findState

	// own are this session's session objects (sessionObjects); closing
	// the session destroys them without scanning the token.
	own sessionObjects
}

// session looks up h: the first check of every session call after the
// initialisation check.
func (m *Module) session(h ck.SessionHandle) (*Session, error) {
	if err := m.checkInit(); err != nil {
		return nil, err
	}
	v, ok := m.sessions.Load(h)
	if !ok {
		return nil, ck.CKR_SESSION_HANDLE_INVALID
	}
	return v.(*Session), nil
}

// lock returns the session locked, or CKR_SESSION_HANDLE_INVALID if it was
// closed while the caller waited.
func (m *Module) lock(h ck.SessionHandle) (*Session, error) {
	s, err := m.session(h)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ck.CKR_SESSION_HANDLE_INVALID
	}
	return s, nil
}

// state derives the session state (§5.6 table "Session states") from the
// token's login and the session's R/W flag. The caller holds tok.mu.
func (s *Session) state() ck.State {
	switch s.tok.user.get() {
	case ck.CKU_SO:
		return ck.CKS_RW_SO_FUNCTIONS
	case ck.CKU_USER:
		if s.rw {
			return ck.CKS_RW_USER_FUNCTIONS
		}
		return ck.CKS_RO_USER_FUNCTIONS
	}
	if s.rw {
		return ck.CKS_RW_PUBLIC_SESSION
	}
	return ck.CKS_RO_PUBLIC_SESSION
}

// OpenSession is C_OpenSession (§5.6).
func (m *Module) OpenSession(slot ck.SlotID, flags ck.Flags) (ck.SessionHandle, error) {
	t, err := m.token(slot)
	if err != nil {
		return 0, err
	}
	// Legacy flag that must always be set (§5.6 C_OpenSession).
	if flags&ck.CKF_SERIAL_SESSION == 0 {
		return 0, ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.initialized() {
		return 0, ck.CKR_TOKEN_NOT_RECOGNIZED
	}
	if err := t.deviceLock(); err != nil {
		return 0, err
	}
	rw := flags&ck.CKF_RW_SESSION != 0
	if !rw && t.user.get() == ck.CKU_SO {
		return 0, ck.CKR_SESSION_READ_WRITE_SO_EXISTS
	}
	s := &Session{h: ck.SessionHandle(m.nextSess.Add(1)), tok: t, rw: rw}
	t.sessions[s.h] = s
	m.sessions.Store(s.h, s)
	return s.h, nil
}

// CloseSession is C_CloseSession: its session objects go, and closing the
// last session of a token logs it out (§5.6).
func (m *Module) CloseSession(h ck.SessionHandle) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	if !m.closeSession(s) {
		return ck.CKR_SESSION_HANDLE_INVALID
	}
	return nil
}

// closeSession follows the lock order (Session.mu, then Token.mu) and
// reports false if s was already closed.
func (m *Module) closeSession(s *Session) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.closed = true
	s.endAll()
	s.mu.Unlock()
	m.sessions.Delete(s.h)
	t := s.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sessions, s.h)
	for _, o := range s.own.drain() {
		if t.objects.del(o.handle) {
			o.forget()
		}
	}
	if len(t.sessions) == 0 && t.user.get() != noUser {
		t.logout()
	}
	return true
}

// CloseAllSessions is C_CloseAllSessions.
func (m *Module) CloseAllSessions(slot ck.SlotID) error {
	t, err := m.token(slot)
	if err != nil {
		return err
	}
	t.mu.RLock()
	all := make([]*Session, 0, len(t.sessions))
	for _, s := range t.sessions {
		all = append(all, s)
	}
	t.mu.RUnlock()
	for _, s := range all {
		m.closeSession(s)
	}
	return nil
}

// GetSessionInfo is C_GetSessionInfo.
func (m *Module) GetSessionInfo(h ck.SessionHandle) (ck.SessionInfo, error) {
	s, err := m.session(h)
	if err != nil {
		return ck.SessionInfo{}, err
	}
	s.tok.mu.RLock()
	defer s.tok.mu.RUnlock()
	f := ck.CKF_SERIAL_SESSION
	if s.rw {
		f |= ck.CKF_RW_SESSION
	}
	return ck.SessionInfo{SlotID: s.tok.slot, State: s.state(), Flags: f}, nil
}

// Login is C_Login (§5.6).
func (m *Module) Login(h ck.SessionHandle, user ck.UserType, pin []byte) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	if user != ck.CKU_SO && user != ck.CKU_USER && user != ck.CKU_CONTEXT_SPECIFIC {
		return ck.CKR_USER_TYPE_INVALID
	}
	t := s.tok
	if user == ck.CKU_CONTEXT_SPECIFIC {
		return m.contextLogin(s, pin)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.syncLocked(); err != nil {
		return err
	}
	// Checked before the KDF and again after it (checkPIN runs it with
	// the lock released): another session may log in meanwhile, or close.
	may := func() error {
		if s.isClosed() {
			return ck.CKR_SESSION_HANDLE_INVALID
		}
		if t.user.get() == user {
			return ck.CKR_USER_ALREADY_LOGGED_IN
		}
		if t.user.get() != noUser {
			return ck.CKR_USER_ANOTHER_ALREADY_LOGGED_IN
		}
		if user == ck.CKU_SO {
			for _, o := range t.sessions {
				if !o.rw {
					return ck.CKR_SESSION_READ_ONLY_EXISTS
				}
			}
		} else if !t.rec.UserPINSet {
			return ck.CKR_USER_PIN_NOT_INITIALIZED
		}
		return nil
	}
	if err := may(); err != nil {
		return err
	}
	key, err := t.checkPIN(user, pin, may)
	if err != nil {
		return err
	}
	t.user.set(user)
	t.key = key
	return nil
}

// isClosed reports whether the session was closed (a login that waited on
// its KDF must not log in a token through a session that is gone).
func (s *Session) isClosed() bool {
	_, ok := s.tok.sessions[s.h]
	return !ok
}

// contextLogin re-authenticates for a CKA_ALWAYS_AUTHENTICATE key (§5.6,
// CKU_CONTEXT_SPECIFIC): it needs a logged-in user and an operation waiting
// for it.
func (m *Module) contextLogin(s *Session, pin []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ck.CKR_SESSION_HANDLE_INVALID
	}
	t := s.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	may := func() error {
		if t.user.get() != ck.CKU_USER {
			return ck.CKR_USER_NOT_LOGGED_IN
		}
		return nil
	}
	if err := may(); err != nil {
		return err
	}
	op := s.pendingAuth()
	if op == nil {
		return ck.CKR_OPERATION_NOT_INITIALIZED
	}
	key, err := t.checkPIN(ck.CKU_USER, pin, may)
	if err != nil {
		return err
	}
	zero(key)
	op.authorised = true
	return nil
}

// LoginUser is C_LoginUser (3.0); gohsm has one user per token, so a
// username adds nothing but is accepted.
func (m *Module) LoginUser(h ck.SessionHandle, user ck.UserType, pin, username []byte) error {
	return m.Login(h, user, pin)
}

// Logout is C_Logout.
func (m *Module) Logout(h ck.SessionHandle) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	t := s.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.user.get() == noUser {
		return ck.CKR_USER_NOT_LOGGED_IN
	}
	t.logout()
	return nil
}

// InitToken is C_InitToken (§5.5): it needs no open session on the token;
// on an initialised token the SO PIN must match, and all objects go.
func (m *Module) InitToken(slot ck.SlotID, soPIN []byte, label string) error {
	t, err := m.token(slot)
	if err != nil {
		return err
	}
	fresh, err := t.initToken(soPIN, label)
	if err != nil || !fresh {
		return err
	}
	m.mu.Lock()
	m.addFreeSlot()
	m.mu.Unlock()
	return nil
}

// initToken does C_InitToken's work under t.mu and reports whether it
// initialised the free slot.
func (t *Token) initToken(soPIN []byte, label string) (bool, error) {
	m := t.m
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.sessions) > 0 {
		return false, ck.CKR_SESSION_EXISTS
	}
	if err := t.checkPINLen(soPIN); err != nil {
		return false, err
	}
	if err := t.deviceLock(); err != nil {
		return false, err
	}
	if t.initialized() {
		key, err := t.checkPIN(ck.CKU_SO, soPIN, func() error {
			if len(t.sessions) > 0 {
				return ck.CKR_SESSION_EXISTS
			}
			return nil
		})
		if err != nil {
			return false, err
		}
		zero(key)
	}
	key := newKey()
	defer zero(key)
	wrapped, err := wrapKey(key, soPIN, m.cfg.KDFIterations)
	if err != nil {
		return false, err
	}
	rec := &TokenRecord{Label: label, Serial: newSerial(), SOKey: wrapped, PublicKey: newKey()}
	fresh := t.store == nil
	if fresh {
		st, err := m.cfg.Storage.Create()
		if err != nil {
			return false, fmt.Errorf("create token store: %w", deviceError(err))
		}
		t.store = st
	}
	if err := t.store.Reinit(rec); err != nil {
		return false, fmt.Errorf("init token: %w", deviceError(err))
	}
	t.rec = rec
	t.objects.each(func(o *Object) {
		t.removeObject(o)
		o.forget()
	})
	t.logout()
	return fresh, nil
}

// InitPIN is C_InitPIN: only in the R/W SO Functions state. It sets the
// user PIN and clears the user's lockout.
func (m *Module) InitPIN(h ck.SessionHandle, pin []byte) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	t := s.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.user.get() != ck.CKU_SO {
		return ck.CKR_USER_NOT_LOGGED_IN
	}
	if !s.rw {
		return ck.CKR_SESSION_READ_ONLY
	}
	if err := t.checkPINLen(pin); err != nil {
		return err
	}
	// The KDF runs without the lock (checkPIN says why); the SO must
	// still be logged in when the result is stored.
	key := bytes.Clone(t.key)
	defer zero(key)
	gen := t.loginGen.Load()
	t.mu.Unlock()
	wrapped, err := wrapKey(key, pin, m.cfg.KDFIterations)
	t.mu.Lock()
	if err != nil {
		return err
	}
	if t.loginGen.Load() != gen || t.user.get() != ck.CKU_SO {
		return ck.CKR_USER_NOT_LOGGED_IN
	}
	rec, err := t.store.UpdateToken(func(r *TokenRecord) error {
		r.UserKey, r.UserPINSet, r.UserFailures = wrapped, true, 0
		return nil
	})
	if err != nil {
		return fmt.Errorf("init pin: %w", deviceError(err))
	}
	t.rec = rec
	return nil
}

// SetPIN is C_SetPIN: the SO's PIN in the R/W SO state, else the user's
// (R/W Public or R/W User). Only the token key is rewrapped.
func (m *Module) SetPIN(h ck.SessionHandle, oldPIN, newPIN []byte) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	t := s.tok
	t.mu.Lock()
	defer t.mu.Unlock()
	if !s.rw {
		return ck.CKR_SESSION_READ_ONLY
	}
	user := ck.CKU_USER
	if t.user.get() == ck.CKU_SO {
		user = ck.CKU_SO
	} else if !t.rec.UserPINSet {
		return ck.CKR_USER_PIN_NOT_INITIALIZED
	}
	if err := t.checkPINLen(newPIN); err != nil {
		return err
	}
	key, err := t.checkPIN(user, oldPIN, func() error {
		if s.isClosed() {
			return ck.CKR_SESSION_HANDLE_INVALID
		}
		if (t.user.get() == ck.CKU_SO) != (user == ck.CKU_SO) {
			return ck.CKR_USER_NOT_LOGGED_IN
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer zero(key)
	// The new wrap's KDF runs without the lock too; the record is then
	// written only if the PIN it replaces is still the one checked.
	old := t.rec.UserKey
	if user == ck.CKU_SO {
		old = t.rec.SOKey
	}
	t.mu.Unlock()
	wrapped, err := wrapKey(key, newPIN, m.cfg.KDFIterations)
	t.mu.Lock()
	if err != nil {
		return err
	}
	rec, err := t.store.UpdateToken(func(r *TokenRecord) error {
		cur := &r.UserKey
		if user == ck.CKU_SO {
			cur = &r.SOKey
		}
		if !sameWrapped(*cur, old) {
			return fmt.Errorf("the PIN was changed meanwhile: %w", ck.CKR_PIN_INCORRECT)
		}
		*cur = wrapped
		return nil
	})
	if err != nil {
		var rv ck.RV
		if errors.As(err, &rv) {
			return err
		}
		return fmt.Errorf("set pin: %w", deviceError(err))
	}
	t.rec = rec
	return nil
}

// SessionCancel is C_SessionCancel (3.0): it ends the operations named by
// flags.
func (m *Module) SessionCancel(h ck.SessionHandle, flags ck.Flags) error {
	s, err := m.lock(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	for k, f := range opFlags {
		if flags&f != 0 {
			s.ops[k] = nil
		}
	}
	return nil
}

// GetFunctionStatus and CancelFunction are legacy (§5.19): always
// CKR_FUNCTION_NOT_PARALLEL.
func (m *Module) GetFunctionStatus(h ck.SessionHandle) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	return ck.CKR_FUNCTION_NOT_PARALLEL
}

func (m *Module) CancelFunction(h ck.SessionHandle) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	return ck.CKR_FUNCTION_NOT_PARALLEL
}

// GetOperationState and SetOperationState are not supported: exporting an
// operation's state would expose key-dependent internals. With no
// operation there is nothing to save (§5.6.7: CKR_OPERATION_NOT_INITIALIZED).
func (m *Module) GetOperationState(h ck.SessionHandle, outCap int) ([]byte, int, error) {
	s, err := m.lock(h)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	for _, op := range s.ops {
		if op != nil {
			return nil, 0, ck.CKR_STATE_UNSAVEABLE
		}
	}
	return nil, 0, ck.CKR_OPERATION_NOT_INITIALIZED
}

func (m *Module) SetOperationState(h ck.SessionHandle, state []byte, enc, auth ck.ObjectHandle) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	return ck.CKR_SAVED_STATE_INVALID
}
