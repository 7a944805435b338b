package hsm

import (
	"sync"
	"sync/atomic"

	"github.com/gohsm/gohsm/hsm/ck"
)

// objTable maps handles to a token's objects. Lookups take no lock, so an
// operation finding its key never waits for another session committing
// or destroying an object: with a reader-writer lock, a C host's thread
// that blocked behind a writer parked its OS thread, and two threads
// making and destroying session keys (one per KEM call) ran slower than
// one. Writes happen only under Token.mu, which keeps the search index and
// the per-session sets consistent with the table.
type objTable struct {
	m sync.Map // ck.ObjectHandle → *Object
}

func (t *objTable) get(h ck.ObjectHandle) (*Object, bool) {
	v, ok := t.m.Load(h)
	if !ok {
		return nil, false
	}
	return v.(*Object), true
}

// put and del are called with Token.mu held: for writing, or for reading
// by calls that make or destroy session objects (addObject).
func (t *objTable) put(o *Object) { t.m.Store(o.handle, o) }

// del reports whether h was there: of two sessions destroying one object
// at once, one wins.
func (t *objTable) del(h ck.ObjectHandle) bool {
	_, loaded := t.m.LoadAndDelete(h)
	return loaded
}

// each calls fn for every object; the caller holds Token.mu (read or
// write) when it needs a consistent view.
func (t *objTable) each(fn func(*Object)) {
	t.m.Range(func(_, v any) bool {
		fn(v.(*Object))
		return true
	})
}

// userState is who is logged in to a token. It changes only under
// Token.mu held for writing, but is read without the lock on the
// operation path (visible, access), hence atomic.
type userState struct{ v atomic.Uint64 }

func (u *userState) get() ck.UserType  { return ck.UserType(u.v.Load()) }
func (u *userState) set(x ck.UserType) { u.v.Store(uint64(x)) }
