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
	n atomic.Int64
}

func (t *objTable) get(h ck.ObjectHandle) (*Object, bool) {
	v, ok := t.m.Load(h)
	if !ok {
		return nil, false
	}
	return v.(*Object), true
}

// put and del are called with Token.mu held for writing.
func (t *objTable) put(o *Object) {
	if _, loaded := t.m.Swap(o.handle, o); !loaded {
		t.n.Add(1)
	}
}

func (t *objTable) del(h ck.ObjectHandle) {
	if _, loaded := t.m.LoadAndDelete(h); loaded {
		t.n.Add(-1)
	}
}

// each calls fn for every object; the caller holds Token.mu (read or
// write) when it needs a consistent view.
func (t *objTable) each(fn func(*Object)) {
	t.m.Range(func(_, v any) bool {
		fn(v.(*Object))
		return true
	})
}

func (t *objTable) len() int { return int(t.n.Load()) }

// userState is who is logged in to a token. It changes only under
// Token.mu held for writing, but is read without the lock on the
// operation path (visible, access), hence atomic.
type userState struct{ v atomic.Uint64 }

func (u *userState) get() ck.UserType  { return ck.UserType(u.v.Load()) }
func (u *userState) set(x ck.UserType) { u.v.Store(uint64(x)) }
