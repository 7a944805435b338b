package hsm

import (
	"github.com/gohsm/gohsm/hsm/ck"
)

// index finds objects by the attributes searches use most (class, label,
// id, key type) without scanning, so C_FindObjects costs the size of the
// smallest matching set, not the size of the token.
type index struct {
	sets map[indexKey]map[*Object]struct{}
}

type indexKey struct {
	t ck.AttributeType
	v string
}

var indexed = [...]ck.AttributeType{ck.CKA_CLASS, ck.CKA_LABEL, ck.CKA_ID, ck.CKA_KEY_TYPE}

func newIndex() index { return index{sets: map[indexKey]map[*Object]struct{}{}} }

func isIndexed(t ck.AttributeType) bool {
	for _, x := range indexed {
		if x == t {
			return true
		}
	}
	return false
}

func (ix index) add(o *Object) {
	for _, t := range indexed {
		if v, ok := o.clearGet(t); ok {
			k := indexKey{t, string(v)}
			s := ix.sets[k]
			if s == nil {
				s = map[*Object]struct{}{}
				ix.sets[k] = s
			}
			s[o] = struct{}{}
		}
	}
}

func (ix index) remove(o *Object) {
	for _, t := range indexed {
		if v, ok := o.clearGet(t); ok {
			k := indexKey{t, string(v)}
			if s := ix.sets[k]; s != nil {
				delete(s, o)
				if len(s) == 0 {
					delete(ix.sets, k)
				}
			}
		}
	}
}

// candidates returns the smallest indexed set the template selects, or
// (nil, false) when the template names no indexed attribute.
func (ix index) candidates(tmpl []ck.Attribute) (map[*Object]struct{}, bool) {
	var best map[*Object]struct{}
	found := false
	for _, a := range tmpl {
		if !isIndexed(a.Type) {
			continue
		}
		s := ix.sets[indexKey{a.Type, string(a.Value)}]
		if !found || len(s) < len(best) {
			best, found = s, true
		}
	}
	return best, found
}
