package hsm

import (
	"bytes"
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// visible returns object h if the session may see it (§4.1.3: private
// objects only to the logged-in user). An invisible object is reported as
// an invalid handle, so its existence does not leak. It takes no lock
// (objTable, userState): operations look their key up without waiting.
func (t *Token) visible(h ck.ObjectHandle) (*Object, error) {
	o, ok := t.objects.get(h)
	if !ok || (o.private && t.user.get() != ck.CKU_USER) {
		return nil, fmt.Errorf("object %d: %w", h, ck.CKR_OBJECT_HANDLE_INVALID)
	}
	return o, nil
}

// access checks the session-state rules for writing an object with these
// flags (§5.6 table "access to objects"). It reads the login state
// atomically; callers that then change the token hold t.mu for writing.
func (s *Session) access(token, private bool) error {
	if token && !s.rw {
		return ck.CKR_SESSION_READ_ONLY
	}
	if private && s.tok.user.get() != ck.CKU_USER {
		return ck.CKR_USER_NOT_LOGGED_IN
	}
	return nil
}

// insert makes an object from its full attribute set for a caller that
// already holds s.mu and t.mu for writing (C_CreateObject, C_CopyObject,
// where there is no slow work to keep out of the lock). require names the
// stored versions the object was made from (a copy's source).
func (m *Module) insert(s *Session, all draft, cls ck.ObjectClass, kt ck.KeyType, require ...ObjectVersion) (*Object, error) {
	token, _, _ := all.Bool(ck.CKA_TOKEN)
	private, _, _ := all.Bool(ck.CKA_PRIVATE)
	if err := s.access(token, private); err != nil {
		return nil, err
	}
	o, err := m.newObject(all, cls, kt)
	if err != nil {
		return nil, err
	}
	so := s.tok.user.get() == ck.CKU_SO
	if !o.token {
		if len(require) > 0 {
			// A session copy of a token object: the source must still be
			// what was copied. Nothing is written, so ask the store by
			// committing no change on the source's version.
			if err := s.tok.store.Commit(&Change{Require: require}); err != nil {
				return nil, storeError(err)
			}
		}
		return o, m.commitSession(s, o, so)
	}
	return o, m.commitTokenObjects(s, so, require, o)
}

// newObject is the first half of making an object and needs no token
// lock: the key kind validates and parses the material (milliseconds for
// an RSA key), derived values are added and the secrets split off. Key
// generation, unwrapping, derivation and the KEMs do their cryptography
// and this with only the session locked, so one session making a
// 4096-bit RSA key does not stall every other session's C_SignInit.
func (m *Module) newObject(all draft, cls ck.ObjectClass, kt ck.KeyType) (*Object, error) {
	token, _, _ := all.Bool(ck.CKA_TOKEN)
	private, _, _ := all.Bool(ck.CKA_PRIVATE)
	o := all.o
	if o == nil {
		o = new(Object)
	}
	o.handle, o.token, o.private, o.class, o.keyType = m.newObjectHandle(), token, private, cls, kt
	var mat any
	if kt != noKeyType {
		kk, ok := m.reg.KeyKind(kt)
		if !ok {
			return nil, fmt.Errorf("key type %v: %w", kt, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		var err error
		// Material attributes have no defaults (TestNoMaterialDefaults).
		mat, err = kk.Parse(cls, all.Own)
		if err != nil {
			return nil, err
		}
		if kk.Derived != nil {
			d, err := kk.Derived(cls, all.Own, mat)
			if err != nil {
				return nil, err
			}
			for _, a := range d {
				all.Set(a.Type, a.Value)
			}
		}
	}
	var clear attr.Template
	clear, o.secret = m.split(all.Own, cls, kt, private)
	layered := attr.Layered{Own: clear, Defaults: all.Defaults}
	for _, a := range o.secret {
		if all.HasDefault(a.Type) {
			// A sealed value must not show through as its class default
			// (a private data object's CKA_VALUE): keep no defaults.
			layered = attr.Layered{Own: dropTypes(layered.Flat(), a.Type)}
		}
	}
	o.setFirst(layered)
	if o.secret == nil {
		o.secret = attr.Template{}
	}
	if mat != nil {
		// The key was parsed to validate it; keep the result so its first
		// use does not parse it again. all.Own is the clear attributes'
		// Own followed by o.secret (split partitions in place), and
		// attribute changes replace them rather than edit, so the view
		// stays valid. A session object keeps it in its own allocation
		// (made): it is dropped with the object, at the latest when its
		// session closes or, if private, at logout. A token object
		// outlives logouts, so its parsed key has an allocation of its own
		// that forget lets go.
		if token {
			o.material.Store(&mech.Key{Class: cls, Type: kt, Material: mat, Attrs: all.Own})
		} else {
			o.made = mech.Key{Class: cls, Type: kt, Material: mat, Attrs: all.Own}
			o.material.Store(&o.made)
		}
	}
	return o, nil
}

// commitTokenObjects is the second half for token objects: the session's
// right to make them is checked again, because a logout may have come
// between the caller's first check and now, and so is the SO's if they
// were built with it (CKA_TRUSTED). They are persisted in one commit (a
// key pair is both keys or neither) before they become visible. The caller
// holds s.mu and t.mu for writing.
func (m *Module) commitTokenObjects(s *Session, builtAsSO bool, require []ObjectVersion, objs ...*Object) error {
	t := s.tok
	for _, o := range objs {
		if err := s.access(o.token, o.private); err != nil {
			return err
		}
		if builtAsSO && t.user.get() != ck.CKU_SO && m.usesSO(o) {
			return fmt.Errorf("the SO logged out while the key was made: %w", ck.CKR_USER_NOT_LOGGED_IN)
		}
	}
	// Catch up first, as before every write: a copy's source is checked
	// against what other processes committed (require).
	if err := t.syncLocked(); err != nil {
		return err
	}
	recs := make([]*ObjectRecord, len(objs))
	for i, o := range objs {
		id, err := t.store.NewObjectID()
		if err != nil {
			return fmt.Errorf("new object id: %w", deviceError(err))
		}
		if id == 0 || id > maxStoreID {
			return fmt.Errorf("store id %d out of the handle range: %w", id, ck.CKR_DEVICE_ERROR)
		}
		o.id, o.ver, o.handle = id, 0, tokenObjectHandle(id)
		if recs[i], err = t.record(o); err != nil {
			return err
		}
	}
	if err := t.store.Commit(&Change{Put: recs, Require: require}); err != nil {
		return fmt.Errorf("store objects: %w", storeError(err))
	}
	for i, o := range objs {
		o.mu.Lock()
		o.sealed, o.ver = recs[i].Sealed, recs[i].Gen
		o.mu.Unlock()
		t.addObject(o)
	}
	return nil
}

// commitSession publishes a session object without the token's lock, so
// that sessions making keys in parallel (one per KEM call) do not wait for
// each other (sessionObjects). A logout may run at the same time: the
// object is added first and the login generation read again after, and
// Token.logout bumps the generation before it sweeps the sessions' private
// objects, so either the sweep finds this one or this call sees the new
// generation and takes it back.
func (m *Module) commitSession(s *Session, o *Object, builtAsSO bool) error {
	t := s.tok
	gen := t.loginGen.Load()
	if err := s.access(o.token, o.private); err != nil {
		return err
	}
	if builtAsSO && t.user.get() != ck.CKU_SO && m.usesSO(o) {
		return fmt.Errorf("the SO logged out while the key was made: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	return m.publishSession(s, o, builtAsSO, gen)
}

// publishSession adds a session object whose checks passed at login
// generation gen, and takes it back if a logout has come since.
func (m *Module) publishSession(s *Session, o *Object, builtAsSO bool, gen uint64) error {
	t := s.tok
	o.owner = s
	t.addObject(o)
	if (o.private || builtAsSO) && t.loginGen.Load() != gen {
		t.removeObject(o)
		return fmt.Errorf("logged out while the object was made: %w", ck.CKR_USER_NOT_LOGGED_IN)
	}
	return nil
}

// mayCreate is the early access check for a call that makes an object
// after slow work: it checks the session may create an object with these
// flags, and reports whether the SO is logged in (what build needs to
// know). It reads the login state without locking; commit checks again
// under the write lock.
func (s *Session) mayCreate(token, private bool) (so bool, err error) {
	return s.tok.user.get() == ck.CKU_SO, s.access(token, private)
}

// commitLocked commits objects made by newObject, all or none. Token
// objects are committed together under the token's write lock; session
// objects need no lock (commitSession) and if one fails, those before it
// are taken back.
func (m *Module) commitLocked(s *Session, builtAsSO bool, objs ...*Object) error {
	var toks, sess []*Object
	for _, o := range objs {
		if o.token {
			toks = append(toks, o)
		} else {
			sess = append(sess, o)
		}
	}
	if len(toks) > 0 {
		s.tok.mu.Lock()
		defer s.tok.mu.Unlock()
		if err := m.commitTokenObjects(s, builtAsSO, nil, toks...); err != nil {
			return err
		}
	}
	for i, o := range sess {
		if err := m.commitSession(s, o, builtAsSO); err != nil {
			for _, done := range sess[:i] {
				s.tok.removeObject(done)
			}
			for _, done := range toks {
				m.discard(s, done)
			}
			return err
		}
	}
	return nil
}

// discard undoes the commit of a token object whose partner failed. The
// caller holds s.mu and tok.mu for writing.
func (m *Module) discard(s *Session, o *Object) {
	_ = s.tok.store.Commit(&Change{Delete: []ObjectVersion{{ID: o.id, Gen: o.ver}}})
	s.tok.removeObject(o)
}

// usesSO reports whether o carries an attribute only the SO may set true.
func (m *Module) usesSO(o *Object) bool {
	ecLike := m.ecLikeKeyTypes()
	for _, a := range o.clearAttrs().Flat() {
		p := attr.Lookup(a.Type, o.class, o.keyType, ecLike)
		if p != nil && p.Rules&attr.SOOnly != 0 && len(a.Value) == 1 && a.Value[0] != 0 {
			return true
		}
	}
	return false
}

// CreateObject is C_CreateObject (§5.7.1).
func (m *Module) CreateObject(h ck.SessionHandle, tmpl []ck.Attribute) (ck.ObjectHandle, error) {
	s, err := m.lock(h)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	t := attr.Template(tmpl)
	cls, kt, err := classOf(t)
	if err != nil {
		return 0, err
	}
	token, private, err := flagsOf(t, cls)
	if err != nil {
		return 0, err
	}
	tok := s.tok
	tok.mu.Lock()
	defer tok.mu.Unlock()
	if err := s.access(token, private); err != nil {
		return 0, err
	}
	all, err := m.build(t, cls, kt, fromCreate, tok.user.get() == ck.CKU_SO, nil)
	if err != nil {
		return 0, err
	}
	o, err := m.insert(s, all, cls, kt)
	if err != nil {
		return 0, err
	}
	return o.handle, nil
}

// CopyObject is C_CopyObject (§5.7.3): the template may change only what
// C_SetAttributeValue could, plus CKA_TOKEN/CKA_PRIVATE/CKA_MODIFIABLE and
// friends, under the same one-way rules. The source is read as other
// processes last committed it, and the copy is stored only if it still is
// (writeFresh), so a stale view never copies a key out from under a
// CKA_SENSITIVE another process set.
func (m *Module) CopyObject(h ck.SessionHandle, oh ck.ObjectHandle, tmpl []ck.Attribute) (ck.ObjectHandle, error) {
	s, err := m.lock(h)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	tok := s.tok
	tok.mu.Lock()
	defer tok.mu.Unlock()
	t := attr.Template(tmpl)
	if err := checkDuplicates(t); err != nil {
		return 0, err
	}
	var made ck.ObjectHandle
	err = tok.writeFresh(func() error {
		src, err := tok.visible(oh)
		if err != nil {
			return err
		}
		if !src.flag(ck.CKA_COPYABLE, false) {
			return fmt.Errorf("object %d is not copyable: %w", oh, ck.CKR_ACTION_PROHIBITED)
		}
		if err := tok.unseal(src); err != nil {
			return err
		}
		all := src.all().Clone()
		if src.destroyed.Load() {
			return fmt.Errorf("object %d: %w", oh, ck.CKR_OBJECT_HANDLE_INVALID)
		}
		if err := m.applyChanges(&all, t, src, fromCopy, tok.user.get() == ck.CKU_SO); err != nil {
			return err
		}
		var require []ObjectVersion
		if src.token {
			require = []ObjectVersion{{ID: src.id, Gen: src.ver}}
		}
		// A copy is not the key the token generated: CKA_LOCAL stays as it
		// was, since it describes the key material's origin, not the object.
		o, err := m.insert(s, draft{Layered: attr.Layered{Own: all}}, src.class, src.keyType, require...)
		if err != nil {
			return err
		}
		made = o.handle
		return nil
	})
	return made, err
}

// applyChanges validates t against the table for how (copy or set) and
// applies it to all.
func (m *Module) applyChanges(all *attr.Template, t attr.Template, o *Object, how origin, so bool) error {
	ecLike := m.ecLikeKeyTypes()
	for _, a := range t {
		p := attr.Lookup(a.Type, o.class, o.keyType, ecLike)
		if p == nil {
			return fmt.Errorf("%v on %v: %w", a.Type, o.class, ck.CKR_ATTRIBUTE_TYPE_INVALID)
		}
		if err := checkKind(p, a.Value); err != nil {
			return err
		}
		allowed := p.Rules&attr.Modifiable != 0 || (how == fromCopy && p.Rules&attr.CopyOnly != 0)
		if !allowed {
			return fmt.Errorf("%v cannot be changed: %w", a.Type, ck.CKR_ATTRIBUTE_READ_ONLY)
		}
		cur, _ := all.Get(a.Type)
		curTrue := len(cur) == 1 && cur[0] != 0
		newTrue := len(a.Value) == 1 && a.Value[0] != 0
		if p.Rules&attr.StickyTrue != 0 && curTrue && !newTrue {
			return fmt.Errorf("%v cannot go back to false: %w", a.Type, ck.CKR_ATTRIBUTE_READ_ONLY)
		}
		if p.Rules&attr.StickyFalse != 0 && len(cur) == 1 && !curTrue && newTrue {
			return fmt.Errorf("%v cannot go back to true: %w", a.Type, ck.CKR_ATTRIBUTE_READ_ONLY)
		}
		if p.Rules&attr.SOOnly != 0 && newTrue && !so {
			return fmt.Errorf("%v true needs the SO: %w", a.Type, ck.CKR_ATTRIBUTE_READ_ONLY)
		}
		all.Set(a.Type, append([]byte{}, a.Value...))
	}
	// A sensitive or non-extractable key stays private: a public copy
	// would be sealed under the store's public-object key and usable
	// before login (§4.4 leaves CKA_PRIVATE to the token; this token
	// makes lowering it on such a key read-only).
	if (o.class == ck.CKO_PRIVATE_KEY || o.class == ck.CKO_SECRET_KEY) && o.private && sensitiveIn(all) {
		if p, ok, _ := all.Bool(ck.CKA_PRIVATE); ok && !p {
			return fmt.Errorf("a sensitive or non-extractable key cannot become public: %w", ck.CKR_ATTRIBUTE_READ_ONLY)
		}
	}
	return nil
}

// DestroyObject is C_DestroyObject (§5.7.4).
func (m *Module) DestroyObject(h ck.SessionHandle, oh ck.ObjectHandle) error {
	s, err := m.lock(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	tok := s.tok
	o, err := tok.visible(oh)
	if err != nil {
		return err
	}
	if !o.token {
		// A session object is destroyed without the token's lock, as it
		// was made (commitSession): of two sessions destroying it at
		// once, or a session and a logout, one removes it.
		if err := m.mayDestroy(s, o); err != nil {
			return err
		}
		if !tok.removeObject(o) {
			// Another session destroyed it since the lookup.
			return fmt.Errorf("object %d: %w", oh, ck.CKR_OBJECT_HANDLE_INVALID)
		}
		o.forget()
		return nil
	}
	// A token object is looked up again under the lock, on the newest
	// committed state, and deleted only at the version checked: another
	// process may have made it indestructible or destroyed it meanwhile.
	tok.mu.Lock()
	defer tok.mu.Unlock()
	return tok.writeFresh(func() error {
		o, err := tok.visible(oh)
		if err != nil {
			return err
		}
		if err := m.mayDestroy(s, o); err != nil {
			return err
		}
		if err := tok.store.Commit(&Change{Delete: []ObjectVersion{{ID: o.id, Gen: o.ver}}}); err != nil {
			return fmt.Errorf("delete object: %w", storeError(err))
		}
		tok.removeObject(o)
		o.forget()
		return nil
	})
}

// mayDestroy is C_DestroyObject's access check.
func (m *Module) mayDestroy(s *Session, o *Object) error {
	if err := s.access(o.token, o.private); err != nil {
		return err
	}
	if !o.flag(ck.CKA_DESTROYABLE, false) {
		return fmt.Errorf("object %d is not destroyable: %w", o.handle, ck.CKR_ACTION_PROHIBITED)
	}
	return nil
}

// GetObjectSize is C_GetObjectSize: the size of the stored record.
func (m *Module) GetObjectSize(h ck.SessionHandle, oh ck.ObjectHandle) (ck.ULong, error) {
	s, err := m.lock(h)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	tok := s.tok
	tok.mu.RLock()
	defer tok.mu.RUnlock()
	o, err := tok.visible(oh)
	if err != nil {
		return 0, err
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.destroyed.Load() {
		return 0, fmt.Errorf("object %d: %w", oh, ck.CKR_OBJECT_HANDLE_INVALID)
	}
	n := len(attr.EncodeTemplate(o.clearAttrs().Flat())) + len(o.sealed)
	if !o.token {
		n += len(attr.EncodeTemplate(o.secret))
	}
	return ck.ULong(n), nil
}

// GetAttributeValue is C_GetAttributeValue (§5.7.5). Every request is
// answered; the error reports the first kind of failure in the order
// sensitive, invalid type, buffer too small.
func (m *Module) GetAttributeValue(h ck.SessionHandle, oh ck.ObjectHandle, req []ck.AttributeRequest) ([]ck.AttributeResult, error) {
	s, err := m.lock(h)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	tok := s.tok
	tok.mu.RLock()
	defer tok.mu.RUnlock()
	o, err := tok.visible(oh)
	if err != nil {
		return nil, err
	}
	sensitive := o.sensitive()
	ecLike := m.ecLikeKeyTypes()
	var sawSensitive, sawInvalid, sawSmall bool
	out := make([]ck.AttributeResult, len(req))
	for i, r := range req {
		out[i] = ck.AttributeResult{Type: r.Type, Len: ck.CK_UNAVAILABLE_INFORMATION}
		p := attr.Lookup(r.Type, o.class, o.keyType, ecLike)
		var v []byte
		copied := false // v is already the caller's copy
		var ok bool
		if (p != nil && p.Rules&attr.Sensitive != 0) || privateValue(o.class, o.private, r.Type) {
			if sensitive {
				sawSensitive = true
				continue
			}
			if err := tok.unseal(o); err != nil {
				return nil, err
			}
			// Copied under the lock: a session object's destroy takes
			// no token lock and zeroes its secrets (all).
			o.mu.RLock()
			if v, ok = o.secret.Get(r.Type); ok && r.Cap >= len(v) {
				v = bytes.Clone(v)
				copied = true
			}
			o.mu.RUnlock()
			if !ok {
				// Stores written before private data values were
				// sealed hold them in the clear.
				v, ok = o.clearGet(r.Type)
			}
		} else {
			v, ok = o.clearGet(r.Type)
		}
		if !ok {
			sawInvalid = true
			continue
		}
		switch {
		case r.Cap < 0:
			out[i].Len = ck.ULong(len(v))
		case r.Cap < len(v):
			sawSmall = true
		default:
			out[i].Len = ck.ULong(len(v))
			if !copied {
				v = append([]byte{}, v...)
			}
			out[i].Value = v
		}
	}
	if o.destroyed.Load() {
		// Destroyed by another session while being read (Object.destroyed).
		return nil, fmt.Errorf("object %d: %w", oh, ck.CKR_OBJECT_HANDLE_INVALID)
	}
	switch {
	case sawSensitive:
		return out, ck.CKR_ATTRIBUTE_SENSITIVE
	case sawInvalid:
		return out, ck.CKR_ATTRIBUTE_TYPE_INVALID
	case sawSmall:
		return out, ck.CKR_BUFFER_TOO_SMALL
	}
	return out, nil
}

// SetAttributeValue is C_SetAttributeValue (§5.7.6): all or nothing. A
// token object is changed on the newest committed state and stored with
// a compare-and-set (writeFresh), so a process with a stale view cannot
// write an old CKA_SENSITIVE back, nor bring back an object another
// destroyed.
func (m *Module) SetAttributeValue(h ck.SessionHandle, oh ck.ObjectHandle, tmpl []ck.Attribute) error {
	s, err := m.lock(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	tok := s.tok
	tok.mu.Lock()
	defer tok.mu.Unlock()
	t := attr.Template(tmpl)
	return tok.writeFresh(func() error { return m.setAttributes(s, oh, t) })
}

// setAttributes is one attempt of SetAttributeValue; the caller holds s.mu
// and the token's write lock.
func (m *Module) setAttributes(s *Session, oh ck.ObjectHandle, t attr.Template) error {
	tok := s.tok
	o, err := tok.visible(oh)
	if err != nil {
		return err
	}
	if err := s.access(o.token, o.private); err != nil {
		return err
	}
	if !o.flag(ck.CKA_MODIFIABLE, false) {
		return fmt.Errorf("object %d is not modifiable: %w", oh, ck.CKR_ACTION_PROHIBITED)
	}
	if err := checkDuplicates(t); err != nil {
		return err
	}
	// The changes are checked against every current value, defaults
	// included (a defaulted CKA_SENSITIVE true is as sticky as a given one).
	o.mu.RLock()
	clear := o.clearAttrs().Flat().Clone()
	o.mu.RUnlock()
	if err := m.applyChanges(&clear, t, o, fromSet, tok.user.get() == ck.CKU_SO); err != nil {
		return err
	}
	if err := tok.unseal(o); err != nil {
		return err
	}
	o.mu.RLock()
	secret := o.secret
	o.mu.RUnlock()
	// A private data object's new value is sealed like the old one
	// (privateValue); it is the only sealed attribute such an object has.
	if v, ok := clear.Get(ck.CKA_VALUE); ok && privateValue(o.class, o.private, ck.CKA_VALUE) {
		clear = dropTypes(clear, ck.CKA_VALUE)
		secret = attr.Template{{Type: ck.CKA_VALUE, Value: v}}
	}
	return tok.reindex(o, func() error {
		o.mu.Lock()
		oldAttrs, oldSecret := o.clearAttrs(), o.secret
		o.setClear(attr.Layered{Own: clear})
		o.secret = secret
		o.mu.Unlock()
		if !o.token {
			return nil
		}
		if err := tok.persist(o); err != nil {
			o.mu.Lock()
			o.attrs.Store(oldAttrs)
			o.secret = oldSecret
			o.mu.Unlock()
			return err
		}
		return nil
	})
}
