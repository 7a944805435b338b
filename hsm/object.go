package hsm

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// noKeyType marks objects that are not keys.
const noKeyType = ck.KeyType(^uint64(0))

// Object is one PKCS#11 object. Its class, key type, token and private
// flags never change after creation (CKA_TOKEN/CKA_PRIVATE change only by
// copying), so they are read without locking.
type Object struct {
	handle ck.ObjectHandle
	id     uint64 // store id; 0 for session objects
	// ver is the store version of a token object as this process last
	// read or wrote it (ObjectRecord.Gen): its writes compare-and-set
	// against it. Guarded by the token's lock.
	ver     uint64
	owner   *Session // creating session, for session objects (sessionObjects)
	token   bool
	private bool
	class   ck.ObjectClass
	keyType ck.KeyType

	mu sync.RWMutex
	// attrs are the attributes kept in the clear, the object's own over
	// its class's shared defaults. They are never edited, only replaced
	// whole (under mu, with secret), so operations read them with one
	// atomic load and no lock: a key used by several threads at once
	// would otherwise have every check of a usage flag write its lock.
	// secret holds the sensitive ones once unsealed (nil while only sealed
	// is known), under mu.
	attrs  atomic.Pointer[attr.Layered]
	secret attr.Template
	sealed []byte

	// material caches the parsed key so that operations neither parse
	// nor copy attributes.
	material atomic.Pointer[mech.Key]
	// made holds the key parsed when a session object was made, in the
	// same allocation (one per KEM call): material points at it. It is
	// written once, before the object is published, and goes with the
	// object; token objects never use it (newObject).
	made mech.Key
	// first holds the clear attributes the object was made with, in the
	// same allocation; attrs points at it until they are first changed.
	first attr.Layered
	// destroyed is set when the object is removed, before its secrets are
	// zeroed. A session object is destroyed with no token lock, so a call
	// that found it a moment before may then read no secret: it checks
	// this and reports the handle gone rather than the secret missing.
	destroyed atomic.Bool
}

func (o *Object) isKey() bool { return o.keyType != noKeyType }

// clearAttrs returns the attributes kept in the clear; the caller must not
// modify them.
func (o *Object) clearAttrs() *attr.Layered {
	if l := o.attrs.Load(); l != nil {
		return l
	}
	return &attr.Layered{}
}

// setFirst gives an object not yet published its clear attributes.
func (o *Object) setFirst(l attr.Layered) {
	o.first = l
	o.attrs.Store(&o.first)
}

// setClear replaces the clear attributes; the caller holds o.mu for
// writing.
func (o *Object) setClear(l attr.Layered) { o.attrs.Store(&l) }

// clearGet returns a non-secret attribute.
func (o *Object) clearGet(t ck.AttributeType) ([]byte, bool) {
	return o.clearAttrs().Get(t)
}

func (o *Object) boolAttr(t ck.AttributeType) bool {
	v, ok := o.clearGet(t)
	return ok && len(v) == 1 && v[0] != 0
}

// flag reads a CK_BBOOL policy attribute that every object of its class
// carries, answering missing when the object lacks it or holds a malformed
// value: the restrictive answer, so a damaged record fails closed
// (CKA_COPYABLE, CKA_MODIFIABLE, CKA_DESTROYABLE missing are false,
// CKA_WRAP_WITH_TRUSTED missing is true).
func (o *Object) flag(t ck.AttributeType, missing bool) bool {
	v, ok := o.clearGet(t)
	if !ok || len(v) != 1 {
		return missing
	}
	return v[0] != 0
}

// sensitive reports whether secret attributes may not be revealed
// (footnote 7: CKA_SENSITIVE true or CKA_EXTRACTABLE false). A key missing
// either attribute, which only a damaged record can be, counts as
// sensitive: the policy attributes fail closed.
func (o *Object) sensitive() bool {
	if o.class != ck.CKO_PRIVATE_KEY && o.class != ck.CKO_SECRET_KEY {
		return false
	}
	return sensitiveIn(o.clearAttrs())
}

// sensitiveIn is sensitive over an attribute set.
func sensitiveIn(a interface {
	Get(ck.AttributeType) ([]byte, bool)
}) bool {
	s, sok := a.Get(ck.CKA_SENSITIVE)
	e, eok := a.Get(ck.CKA_EXTRACTABLE)
	return !sok || len(s) != 1 || s[0] != 0 || !eok || len(e) != 1 || e[0] == 0
}

// all returns every attribute (clear and secret); the caller must have
// unsealed the object first. The secret values are copies, made under the
// lock: destroying a session object takes no token lock, so its secrets
// may be zeroed (forget) as soon as the lock is released.
func (o *Object) all() attr.Template {
	o.mu.RLock()
	defer o.mu.RUnlock()
	clear := o.clearAttrs().Flat()
	out := make(attr.Template, 0, len(clear)+len(o.secret))
	out = append(out, clear...)
	for _, a := range o.secret {
		out = append(out, ck.Attribute{Type: a.Type, Value: bytes.Clone(a.Value)})
	}
	return out
}

// matches reports whether every attribute of t equals the object's. Secret
// attributes never match a sensitive object, so C_FindObjects cannot serve
// as an oracle for key values.
func (o *Object) matches(t attr.Template, unsealed bool) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	clear := o.clearAttrs()
	for _, a := range t {
		v, ok := clear.Get(a.Type)
		if !ok {
			if !unsealed {
				return false
			}
			v, ok = o.secret.Get(a.Type)
			if !ok {
				return false
			}
		}
		if !bytes.Equal(v, a.Value) {
			return false
		}
	}
	return true
}

// key returns what a mechanism needs, parsing the material once. It parses
// under the object's read lock: operations find keys without the token
// lock, so a logout's forget may run at the same time and must not zero
// the values while they are read.
func (o *Object) key(reg *mech.Registry) (*mech.Key, error) {
	if k := o.material.Load(); k != nil {
		return k, nil
	}
	kk, ok := reg.KeyKind(o.keyType)
	if !ok {
		return nil, fmt.Errorf("key type %v: %w", o.keyType, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.destroyed.Load() {
		return nil, fmt.Errorf("object %d destroyed: %w", o.handle, ck.CKR_KEY_HANDLE_INVALID)
	}
	if o.secret == nil && o.sealed != nil {
		// Unsealed by the caller, then forgotten by a logout since.
		return nil, fmt.Errorf("object %d: %w", o.handle, ck.CKR_USER_NOT_LOGGED_IN)
	}
	// The key kinds read material attributes only, which have no
	// defaults (TestNoMaterialDefaults): the object's own are enough.
	own := o.clearAttrs().Own
	all := make(attr.Template, 0, len(own)+len(o.secret))
	all = append(append(all, own...), o.secret...)
	m, err := kk.Parse(o.class, all)
	if err != nil {
		return nil, fmt.Errorf("object %d: %w", o.handle, err)
	}
	k := &mech.Key{Class: o.class, Type: o.keyType, Material: m, Attrs: all}
	o.material.Store(k)
	return k, nil
}

// forget drops the secrets held in memory: the unsealed attribute values
// are zeroed and the parsed key let go (at logout for private token
// objects, at destroy, at C_Finalize for all). A token object's are
// unsealed again on next use. The parsed forms inside Go's crypto types
// (big.Int limbs, AES key schedules) cannot be zeroed in place while an
// operation that began before may still be using them; no reference to
// them is kept, so nothing can use them again.
func (o *Object) forget() {
	o.mu.Lock()
	for _, a := range o.secret {
		zero(a.Value)
	}
	o.secret = nil
	o.mu.Unlock()
	o.material.Store(nil)
}
