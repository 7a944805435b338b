package hsm

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// noUser means nobody is logged in.
const noUser = ck.UserType(^uint64(0))

// Token is one slot's token: its persistent record, login state, objects
// and search index, all guarded by mu. The free slot's token has no store
// and no record until C_InitToken.
type Token struct {
	m     *Module
	slot  ck.SlotID
	store Store

	mu       sync.RWMutex
	rec      *TokenRecord
	user     userState // who is logged in (login is per token, §5.6)
	key      []byte    // token key while logged in
	objects  objTable
	byID     map[uint64]*Object // token objects by store id
	index    index
	gen      uint64 // store generation this view reflects (SharedStore)
	sessions map[ck.SessionHandle]*Session

	// loginGen changes at every logout; an operation begun with a private
	// key remembers it and ends when it changes (§5.6 C_Logout), without
	// logout having to lock every session.
	loginGen atomic.Uint64
}

func newToken(m *Module, slot ck.SlotID, st Store) *Token {
	t := &Token{
		m: m, slot: slot, store: st,
		byID: map[uint64]*Object{}, index: newIndex(),
		sessions: map[ck.SessionHandle]*Session{},
	}
	t.user.set(noUser)
	return t
}

// load reads the record and every object's clear attributes. Secrets stay
// sealed until first use, so opening a large token decrypts nothing.
func (t *Token) load() error {
	if t.store == nil {
		return nil
	}
	rec, err := t.store.LoadToken()
	if err != nil {
		return fmt.Errorf("slot %d: %w", t.slot, err)
	}
	t.rec = rec
	if rec == nil {
		return nil
	}
	if ss, ok := t.store.(SharedStore); ok {
		return t.catchUp(ss, 0)
	}
	return t.store.Objects(func(r *ObjectRecord) error {
		o, err := t.objectFromRecord(r)
		if err != nil {
			return err
		}
		t.addObject(o)
		return nil
	})
}

func (t *Token) objectFromRecord(r *ObjectRecord) (*Object, error) {
	a := attr.Template(r.Attrs)
	cls, ok, err := a.ULong(ck.CKA_CLASS)
	if err != nil || !ok {
		return nil, fmt.Errorf("stored object %d has no class: %w", r.ID, ck.CKR_DEVICE_ERROR)
	}
	kt := noKeyType
	if v, ok, _ := a.ULong(ck.CKA_KEY_TYPE); ok {
		kt = ck.KeyType(v)
	}
	if r.ID == 0 || r.ID > maxStoreID {
		return nil, fmt.Errorf("stored object id %d out of the handle range: %w", r.ID, ck.CKR_DEVICE_ERROR)
	}
	o := &Object{
		handle: tokenObjectHandle(r.ID), id: r.ID, ver: r.Gen, token: true, private: r.Private,
		class: ck.ObjectClass(cls), keyType: kt, sealed: r.Sealed,
	}
	o.setFirst(attr.Layered{Own: a})
	return o, nil
}

func (t *Token) initialized() bool { return t.rec != nil }

// readLocked runs f under the token's read lock: the lookups and checks a
// call makes before work it does unlocked.
func (t *Token) readLocked(f func() error) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return f()
}

// addObject and removeObject keep the handle table and the index that
// holds the object together. For a token object the caller holds t.mu for
// writing; a session object goes to its owner's set under that set's own
// lock, with no token lock needed (sessionObjects).
func (t *Token) addObject(o *Object) {
	t.objects.put(o)
	if o.token {
		t.byID[o.id] = o
		t.index.add(o)
	} else if o.owner != nil {
		o.owner.own.add(o)
	}
}

// removeObject reports whether it removed o: false if another caller
// (a session, a logout) removed the same session object first.
func (t *Token) removeObject(o *Object) bool {
	if !t.objects.del(o.handle) {
		return false
	}
	o.destroyed.Store(true)
	if o.token {
		delete(t.byID, o.id)
		t.index.remove(o)
	} else if o.owner != nil {
		o.owner.own.remove(o)
	}
	return true
}

// reindex runs change, which alters o's attributes, with o out of its
// index. The caller holds t.mu for writing.
func (t *Token) reindex(o *Object, change func() error) error {
	if !o.token {
		if o.owner != nil {
			return o.owner.own.reindex(o, change)
		}
		return change()
	}
	t.index.remove(o)
	defer t.index.add(o)
	return change()
}

// unsealKey returns the key that seals o's secrets, or an error if the
// caller may not have them now.
func (t *Token) unsealKey(o *Object) ([]byte, error) {
	if !o.private {
		return t.rec.PublicKey, nil
	}
	if t.key == nil || t.user.get() != ck.CKU_USER {
		return nil, fmt.Errorf("private object %d: %w", o.handle, ck.CKR_USER_NOT_LOGGED_IN)
	}
	return t.key, nil
}

// unseal makes o's secret attributes available in memory. The caller holds
// t.mu (read or write).
func (t *Token) unseal(o *Object) error {
	if !o.token || o.sealed == nil {
		return nil
	}
	o.mu.RLock()
	done := o.secret != nil
	o.mu.RUnlock()
	if done {
		return nil
	}
	key, err := t.unsealKey(o)
	if err != nil {
		return err
	}
	sec, err := openAttrs(key, o.id, o.private, o.clearAttrs().Flat(), o.sealed)
	if err != nil {
		return err
	}
	o.mu.Lock()
	if o.secret == nil {
		o.secret = sec
		if o.secret == nil {
			o.secret = attr.Template{}
		}
	}
	o.mu.Unlock()
	return nil
}

// ensureUnsealed is unseal for a caller holding no token lock: the read
// lock is taken only when o's secrets are still sealed.
func (t *Token) ensureUnsealed(o *Object) error {
	if !o.token {
		return nil
	}
	o.mu.RLock()
	done := o.sealed == nil || o.secret != nil
	o.mu.RUnlock()
	if done {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.unseal(o)
}

// record seals o's secrets and returns its store record, at the version
// o was read at (0 for a new object). The caller holds t.mu for writing
// and has unsealed o.
func (t *Token) record(o *Object) (*ObjectRecord, error) {
	key, err := t.unsealKey(o)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	clear := o.clearAttrs().Flat().Clone()
	var sealed []byte
	if len(o.secret) > 0 {
		sealed = sealAttrs(key, o.id, o.private, clear, o.secret)
	}
	return &ObjectRecord{ID: o.id, Gen: o.ver, Private: o.private, Attrs: clear, Sealed: sealed}, nil
}

// persist writes a token object (clear attributes plus sealed secrets)
// with a compare-and-set on the version o was read at, and records the
// new version. require names other objects the change was decided on (a
// copy's source). The caller holds t.mu for writing and has unsealed o. A
// conflict (another process changed or removed what this one decided on)
// wraps ErrConflict: the caller catches up and decides again
// (writeFresh).
func (t *Token) persist(o *Object, require ...ObjectVersion) error {
	rec, err := t.record(o)
	if err != nil {
		return err
	}
	if err := t.store.Commit(&Change{Put: []*ObjectRecord{rec}, Require: require}); err != nil {
		return fmt.Errorf("store object: %w", storeError(err))
	}
	o.mu.Lock()
	o.sealed, o.ver = rec.Sealed, rec.Gen
	o.mu.Unlock()
	return nil
}

// storeError keeps ErrConflict for writeFresh and makes anything else a
// device error.
func storeError(err error) error {
	if errors.Is(err, ErrConflict) {
		return err
	}
	return deviceError(err)
}

// maxWriteAttempts bounds writeFresh's retries: each conflict means
// another process committed in between, so this many in a row is a token
// being rewritten faster than this one can read it.
const maxWriteAttempts = 8

// writeFresh runs decide, a write to token objects, on the newest
// committed state: it catches up with other processes first, and when
// the store's compare-and-set reports that one committed in between, it
// catches up and decides again. So a process never writes back a view it
// did not see (a stale CKA_SENSITIVE, an object another destroyed). The
// caller holds t.mu for writing.
func (t *Token) writeFresh(decide func() error) error {
	for attempt := 1; ; attempt++ {
		if err := t.syncLocked(); err != nil {
			return err
		}
		err := decide()
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if attempt == maxWriteAttempts {
			return fmt.Errorf("token %d changed by other processes %d times in a row: %w", t.slot, attempt, ck.CKR_FUNCTION_FAILED)
		}
	}
}

// deviceError keeps an RV and turns anything else (an I/O failure) into
// CKR_DEVICE_ERROR for the caller, with the cause still wrapped.
func deviceError(err error) error {
	var rv ck.RV
	if errors.As(err, &rv) {
		return err
	}
	return fmt.Errorf("%w: %v", ck.CKR_DEVICE_ERROR, err)
}

// pinFlags computes the CKF_*_PIN_* flags from the failure counters
// (§5.5 C_GetTokenInfo, table of token information flags).
func (t *Token) pinFlags() ck.Flags {
	var f ck.Flags
	max := t.m.cfg.MaxPINTries
	switch n := t.rec.UserFailures; {
	case n >= max:
		f |= ck.CKF_USER_PIN_LOCKED
	case n == max-1:
		f |= ck.CKF_USER_PIN_FINAL_TRY | ck.CKF_USER_PIN_COUNT_LOW
	case n > 0:
		f |= ck.CKF_USER_PIN_COUNT_LOW
	}
	switch n := t.rec.SOFailures; {
	case n >= max:
		f |= ck.CKF_SO_PIN_LOCKED
	case n == max-1:
		f |= ck.CKF_SO_PIN_FINAL_TRY | ck.CKF_SO_PIN_COUNT_LOW
	case n > 0:
		f |= ck.CKF_SO_PIN_COUNT_LOW
	}
	return f
}

// checkPIN verifies pin for user (CKU_SO or CKU_USER) and returns the
// token key. The caller holds t.mu for writing. The KDF (PBKDF2, tens of
// milliseconds by design) runs with the lock released, so a login does not
// stall other sessions' searches, attribute reads and key commits on the
// token; when checkPIN returns the lock is held again, the store caught up
// with, and recheck (the caller's preconditions: nobody logged in
// meanwhile, the session still read/write...) passed again on that state.
// If the wrapped key changed while the KDF ran (C_SetPIN, C_InitPIN,
// another process), the PIN is tried again against the new one.
//
// Failures are counted in the store in one read-modify-write transaction,
// so the count is exact however many processes try at once, and a PIN
// that another process locked meanwhile is refused even when right.
func (t *Token) checkPIN(user ck.UserType, pin []byte, recheck func() error) ([]byte, error) {
	count := func(r *TokenRecord) *int {
		if user == ck.CKU_SO {
			return &r.SOFailures
		}
		return &r.UserFailures
	}
	wrappedOf := func(r *TokenRecord) WrappedKey {
		if user == ck.CKU_SO {
			return r.SOKey
		}
		return r.UserKey
	}
	max := t.m.cfg.MaxPINTries
	for attempt := 1; ; attempt++ {
		if err := t.syncLocked(); err != nil {
			return nil, err
		}
		if *count(t.rec) >= max {
			return nil, ck.CKR_PIN_LOCKED
		}
		wrapped := wrappedOf(t.rec)
		t.mu.Unlock()
		key, ok := unwrapKey(wrapped, pin)
		t.mu.Lock()
		if err := t.syncLocked(); err != nil {
			zero(key)
			return nil, err
		}
		if t.rec == nil {
			zero(key)
			return nil, ck.CKR_TOKEN_NOT_RECOGNIZED
		}
		if err := recheck(); err != nil {
			zero(key)
			return nil, err
		}
		if now := wrappedOf(t.rec); !sameWrapped(now, wrapped) {
			zero(key)
			if attempt == maxWriteAttempts {
				return nil, fmt.Errorf("PIN changed %d times during login: %w", attempt, ck.CKR_FUNCTION_FAILED)
			}
			continue
		}
		if ok && *count(t.rec) == 0 {
			return key, nil
		}
		rec, err := t.store.UpdateToken(func(r *TokenRecord) error {
			n := count(r)
			if *n >= max {
				return ck.CKR_PIN_LOCKED
			}
			if ok {
				*n = 0
			} else {
				*n++
			}
			return nil
		})
		if err != nil {
			zero(key)
			if _, isRV := err.(ck.RV); isRV {
				return nil, err
			}
			return nil, fmt.Errorf("pin counter: %w", deviceError(err))
		}
		t.rec = rec
		switch {
		case ok:
			return key, nil
		case *count(rec) >= max:
			return nil, ck.CKR_PIN_LOCKED
		default:
			return nil, ck.CKR_PIN_INCORRECT
		}
	}
}

// sameWrapped reports whether two wrapped keys are the same record.
func sameWrapped(a, b WrappedKey) bool {
	return a.KDF == b.KDF && a.Iterations == b.Iterations && bytes.Equal(a.Salt, b.Salt) &&
		bytes.Equal(a.Nonce, b.Nonce) && bytes.Equal(a.Sealed, b.Sealed)
}

func (t *Token) checkPINLen(pin []byte) error {
	if len(pin) < t.m.cfg.MinPINLen || len(pin) > t.m.cfg.MaxPINLen {
		return ck.CKR_PIN_LEN_RANGE
	}
	return nil
}

// logout forgets the token key and every secret unsealed under it. The
// caller holds t.mu for writing.
//
// §5.6 C_Logout: "all private session objects from sessions belonging to
// the application are destroyed". The generation is bumped before they are
// swept, which is what lets sessions make session objects without the
// token's lock (commitSession).
func (t *Token) logout() {
	zero(t.key)
	t.key = nil
	t.user.set(noUser)
	t.loginGen.Add(1)
	t.objects.each(func(o *Object) {
		if o.private && o.token {
			o.forget()
		}
	})
	for _, s := range t.sessions {
		for _, o := range s.own.private() {
			if t.removeObject(o) {
				o.forget()
			}
		}
	}
}

func newSerial() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
