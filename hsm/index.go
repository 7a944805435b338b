package hsm

import (
	"unsafe"

	"github.com/gohsm/gohsm/hsm/ck"
)

// index finds objects by the attributes searches use most (class, label,
// id, key type) without scanning, so C_FindObjects costs the size of the
// smallest matching set, not the size of the token. Labels and ids are
// mostly unique, so a set holds its first object inline and only grows a
// map when a second object shares the value: opening a token of 100,000
// objects then allocates no per-label maps.
type index struct {
	sets map[indexKey]objSet
}

type indexKey struct {
	t ck.AttributeType
	v string
}

// objSet is a set of objects with the one-element case inline.
type objSet struct {
	one  *Object
	many map[*Object]struct{}
}

func (s objSet) len() int {
	if s.many != nil {
		return len(s.many)
	}
	if s.one != nil {
		return 1
	}
	return 0
}

func (s objSet) each(fn func(*Object)) {
	if s.many != nil {
		for o := range s.many {
			fn(o)
		}
		return
	}
	if s.one != nil {
		fn(s.one)
	}
}

var indexed = [...]ck.AttributeType{ck.CKA_CLASS, ck.CKA_LABEL, ck.CKA_ID, ck.CKA_KEY_TYPE}

func newIndex() index { return index{sets: map[indexKey]objSet{}} }

func isIndexed(t ck.AttributeType) bool {
	for _, x := range indexed {
		if x == t {
			return true
		}
	}
	return false
}

// lookupKey is v as a map key without copying it, for lookups only: the
// key of a new entry must own its bytes (indexKey with string(v)).
func lookupKey(t ck.AttributeType, v []byte) indexKey {
	if len(v) == 0 {
		return indexKey{t: t}
	}
	return indexKey{t, unsafe.String(&v[0], len(v))}
}

func (ix index) add(o *Object) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, t := range indexed {
		v, ok := o.attrs.Get(t)
		if !ok {
			continue
		}
		s := ix.sets[lookupKey(t, v)]
		switch {
		case s.many != nil:
			s.many[o] = struct{}{} // the set is shared by reference
			continue
		case s.one == nil:
			s.one = o
		default:
			s.many = map[*Object]struct{}{s.one: {}, o: {}}
			s.one = nil
		}
		ix.sets[indexKey{t, string(v)}] = s
	}
}

func (ix index) remove(o *Object) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for _, t := range indexed {
		v, ok := o.attrs.Get(t)
		if !ok {
			continue
		}
		k := lookupKey(t, v)
		s, ok := ix.sets[k]
		if !ok {
			continue
		}
		if s.one == o {
			s.one = nil
		}
		if s.many != nil {
			delete(s.many, o)
			if len(s.many) > 0 {
				continue // shared by reference; the entry stays
			}
		}
		if s.len() == 0 {
			delete(ix.sets, k)
		} else {
			// An update may store the key given (string keys are
			// updated), so give one that owns its bytes.
			ix.sets[indexKey{t, string(v)}] = s
		}
	}
}

// candidates returns the smallest indexed set the template selects, or
// (_, false) when the template names no indexed attribute.
func (ix index) candidates(tmpl []ck.Attribute) (objSet, bool) {
	var best objSet
	found := false
	for _, a := range tmpl {
		if !isIndexed(a.Type) {
			continue
		}
		s := ix.sets[lookupKey(a.Type, a.Value)]
		if !found || s.len() < best.len() {
			best, found = s, true
		}
	}
	return best, found
}
