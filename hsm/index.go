package hsm

import (
	"encoding/binary"
	"unsafe"

	"github.com/gohsm/gohsm/hsm/ck"
)

// index finds objects by the attributes searches use most (class, label,
// id, key type) without scanning, so C_FindObjects costs the size of the
// smallest matching set, not the size of the token. Labels and ids are
// mostly unique, so a set holds its first object inline and only grows a
// map when a second object shares the value: opening a token of 100,000
// objects then allocates no per-label maps.
//
// Sets are held by pointer, so adding to or removing from an existing set
// is one lookup with no map write; a set whose value can recur (a class, a
// key type: few values, each made again and again, as by a KEM that makes
// and destroys a key per call) stays in the map when it empties, and only
// label and id sets are dropped. Empty labels and ids, every unnamed
// object's, are not indexed: such a set would hold most of the token and
// narrow no search.
//
// Class and key type are CK_ULONGs and are keyed as numbers: hashing two
// words is cheaper than hashing a string, and both are on every key's
// path in and out.
type index struct {
	sets  map[indexKey]*objSet // CKA_LABEL, CKA_ID
	ulong map[ulongKey]*objSet // CKA_CLASS, CKA_KEY_TYPE
}

type indexKey struct {
	t ck.AttributeType
	v string
}

type ulongKey struct {
	t ck.AttributeType
	v uint64
}

// objSet is a set of objects with the one-element case inline.
type objSet struct {
	one  *Object
	many map[*Object]struct{}
}

func (s *objSet) len() int {
	switch {
	case s == nil:
		return 0
	case s.many != nil:
		return len(s.many)
	case s.one != nil:
		return 1
	}
	return 0
}

func (s *objSet) each(fn func(*Object)) {
	switch {
	case s == nil:
	case s.many != nil:
		for o := range s.many {
			fn(o)
		}
	case s.one != nil:
		fn(s.one)
	}
}

func (s *objSet) add(o *Object) {
	switch {
	case s.many != nil:
		s.many[o] = struct{}{}
	case s.one == nil:
		s.one = o
	default:
		s.many = map[*Object]struct{}{s.one: {}, o: {}}
		s.one = nil
	}
}

func (s *objSet) remove(o *Object) {
	if s.one == o {
		s.one = nil
	}
	if s.many != nil {
		delete(s.many, o)
	}
}

var indexed = [...]ck.AttributeType{ck.CKA_CLASS, ck.CKA_LABEL, ck.CKA_ID, ck.CKA_KEY_TYPE}

func newIndex() index {
	return index{sets: map[indexKey]*objSet{}, ulong: map[ulongKey]*objSet{}}
}

// indexes reports whether searches on a of this value go through the index.
func indexes(t ck.AttributeType, v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, x := range indexed {
		if x == t {
			return true
		}
	}
	return false
}

// numeric are the indexed CK_ULONG attributes, whose sets stay when they
// empty (recurring values).
func numeric(t ck.AttributeType) bool { return t == ck.CKA_CLASS || t == ck.CKA_KEY_TYPE }

// set returns the set of t = v, making it if make is set; nil if absent.
// A numeric value of the wrong length (a search template's garbage) has no
// set.
func (ix index) set(t ck.AttributeType, v []byte, create bool) *objSet {
	if numeric(t) {
		if len(v) != 8 {
			return nil
		}
		k := ulongKey{t, binary.LittleEndian.Uint64(v)}
		s := ix.ulong[k]
		if s == nil && create {
			s = &objSet{}
			ix.ulong[k] = s
		}
		return s
	}
	s := ix.sets[lookupKey(t, v)]
	if s == nil && create {
		s = &objSet{}
		ix.sets[indexKey{t, string(v)}] = s
	}
	return s
}

// lookupKey is v as a map key without copying it, for lookups only: the
// key of a new entry must own its bytes (indexKey with string(v)).
func lookupKey(t ck.AttributeType, v []byte) indexKey {
	return indexKey{t, unsafe.String(unsafe.SliceData(v), len(v))}
}

// add and remove are called with Token.mu held for writing.
func (ix index) add(o *Object) {
	own := o.clearAttrs().Own
	for _, t := range indexed {
		v, ok := own.Get(t) // defaults are empty (TestIndexedDefaultsEmpty)
		if !ok || !indexes(t, v) {
			continue
		}
		if s := ix.set(t, v, true); s != nil {
			s.add(o)
		}
	}
}

func (ix index) remove(o *Object) {
	own := o.clearAttrs().Own
	for _, t := range indexed {
		v, ok := own.Get(t) // defaults are empty (TestIndexedDefaultsEmpty)
		if !ok || !indexes(t, v) {
			continue
		}
		s := ix.set(t, v, false)
		if s == nil {
			continue
		}
		s.remove(o)
		if s.len() == 0 && !numeric(t) {
			delete(ix.sets, lookupKey(t, v))
		}
	}
}

// candidates returns the smallest indexed set the template selects, or
// (_, false) when the template names no indexed attribute.
func (ix index) candidates(tmpl []ck.Attribute) (*objSet, bool) {
	var best *objSet
	found := false
	for _, a := range tmpl {
		if !indexes(a.Type, a.Value) {
			continue
		}
		s := ix.set(a.Type, a.Value, false)
		if !found || s.len() < best.len() {
			best, found = s, true
		}
	}
	return best, found
}
