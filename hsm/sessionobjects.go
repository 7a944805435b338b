package hsm

import (
	"sync"

	"github.com/gohsm/gohsm/hsm/ck"
)

// sessionObjects are the session objects one session made, with their own
// index, whichever session later destroys them. They live with their
// session, not the token, so that sessions making and destroying session
// keys in parallel (a KEM or a derivation makes one per call) share no
// lock: such calls take no token lock at all, only this set's own lock,
// which only a search from another session, a logout or a close contends.
// What that leaves to get right is a logout racing a commit; see
// commitSession and Token.logout. Measured with two goroutines making and
// destroying session keys, the token's write lock had them spinning a
// third of the time; with its read lock, they still shared its counter.
//
// The index is built by the first search that reaches the set and kept
// from then on: a session that makes and destroys keys nobody searches
// for (a KEM loop) never pays for it.
type sessionObjects struct {
	mu      sync.Mutex
	set     map[ck.ObjectHandle]*Object
	ix      index
	indexed bool
}

func (so *sessionObjects) add(o *Object) {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.set == nil {
		so.set = map[ck.ObjectHandle]*Object{}
	}
	so.set[o.handle] = o
	if so.indexed {
		so.ix.add(o)
	}
}

func (so *sessionObjects) remove(o *Object) {
	so.mu.Lock()
	defer so.mu.Unlock()
	if _, ok := so.set[o.handle]; !ok {
		return
	}
	delete(so.set, o.handle)
	if so.indexed {
		so.ix.remove(o)
	}
}

// reindex runs change, which alters o's attributes, with o out of the
// index.
func (so *sessionObjects) reindex(o *Object, change func() error) error {
	so.mu.Lock()
	defer so.mu.Unlock()
	if _, ok := so.set[o.handle]; !ok || !so.indexed {
		return change()
	}
	so.ix.remove(o)
	defer so.ix.add(o)
	return change()
}

// search calls fn for every object that may match tmpl: the index's
// candidates, or every object when tmpl names no indexed attribute.
func (so *sessionObjects) search(tmpl []ck.Attribute, fn func(*Object)) {
	so.mu.Lock()
	defer so.mu.Unlock()
	if !so.indexed {
		so.ix = newIndex()
		for _, o := range so.set {
			so.ix.add(o)
		}
		so.indexed = true
	}
	if set, ok := so.ix.candidates(tmpl); ok {
		set.each(fn)
		return
	}
	for _, o := range so.set {
		fn(o)
	}
}

// private lists the private objects (a logout destroys them).
func (so *sessionObjects) private() []*Object {
	so.mu.Lock()
	defer so.mu.Unlock()
	var out []*Object
	for _, o := range so.set {
		if o.private {
			out = append(out, o)
		}
	}
	return out
}

// drain empties the set and returns what it held (closing the session).
func (so *sessionObjects) drain() []*Object {
	so.mu.Lock()
	defer so.mu.Unlock()
	out := make([]*Object, 0, len(so.set))
	for _, o := range so.set {
		out = append(out, o)
	}
	so.set, so.ix, so.indexed = nil, index{}, false
	return out
}
