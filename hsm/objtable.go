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
// one. A token object is written under Token.mu, which keeps the token's
// index consistent with the table; a session object with no token lock
// (sessionObjects).
//
// The table is sharded by handle: handles are handed out in sequence, so
// two sessions making a key each write neighbouring handles, which land in
// different shards. One sync.Map for all of them had both writers take the
// lock of its root node (pprof, two goroutines making and destroying keys).
type objTable struct {
	shards [objShards]sync.Map // ck.ObjectHandle → *Object
}

const objShards = 16

func (t *objTable) shard(h ck.ObjectHandle) *sync.Map { return &t.shards[uint64(h)%objShards] }

func (t *objTable) get(h ck.ObjectHandle) (*Object, bool) {
	v, ok := t.shard(h).Load(h)
	if !ok {
		return nil, false
	}
	return v.(*Object), true
}

func (t *objTable) put(o *Object) { t.shard(o.handle).Store(o.handle, o) }

// del reports whether h was there: of two sessions destroying one object
// at once, one wins.
func (t *objTable) del(h ck.ObjectHandle) bool {
	_, loaded := t.shard(h).LoadAndDelete(h)
	return loaded
}

// each calls fn for every object; the caller holds Token.mu (read or
// write) when it needs a consistent view of the token objects.
func (t *objTable) each(fn func(*Object)) {
	for i := range t.shards {
		t.shards[i].Range(func(_, v any) bool {
			fn(v.(*Object))
			return true
		})
	}
}

// userState is who is logged in to a token. It changes only under
// Token.mu held for writing, but is read without the lock on the
// operation path (visible, access), hence atomic.
type userState struct{ v atomic.Uint64 }

func (u *userState) get() ck.UserType  { return ck.UserType(u.v.Load()) }
func (u *userState) set(x ck.UserType) { u.v.Store(uint64(x)) }
