package hsm

import (
	"slices"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// findState is a search snapshot: the matching handles are fixed at
// C_FindObjectsInit, which §5.7.7 permits and which keeps C_FindObjects
// cheap and consistent while objects come and go.
type findState struct {
	handles []ck.ObjectHandle
}

// FindObjectsInit is C_FindObjectsInit.
func (m *Module) FindObjectsInit(h ck.SessionHandle, tmpl []ck.Attribute) error {
	s, err := m.lock(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.find != nil {
		return ck.CKR_OPERATION_ACTIVE
	}
	t := attr.Template(tmpl).Clone()
	tok := s.tok
	if err := tok.sync(); err != nil {
		return err
	}
	tok.mu.RLock()
	defer tok.mu.RUnlock()
	var hs []ck.ObjectHandle
	consider := func(o *Object) {
		if o.private && tok.user.get() != ck.CKU_USER {
			return
		}
		if m.objectMatches(tok, o, t) {
			hs = append(hs, o.handle)
		}
	}
	// Token objects are indexed by the token, session objects by the
	// session that made them (sessionObjects).
	if set, ok := tok.index.candidates(t); ok {
		set.each(consider)
		for _, other := range tok.sessions {
			other.own.search(t, consider)
		}
	} else {
		tok.objects.each(consider)
	}
	slices.Sort(hs)
	s.find = &findState{handles: hs}
	return nil
}

// objectMatches compares the template with the object. Secret attributes
// only ever match an object whose secrets may be revealed, so a search is
// never an oracle for a sensitive key's value.
func (m *Module) objectMatches(tok *Token, o *Object, t attr.Template) bool {
	if o.matches(t, false) {
		return true
	}
	if !namesSecret(t) || o.sensitive() {
		return false
	}
	if tok.unseal(o) != nil {
		return false
	}
	return o.matches(t, true)
}

// FindObjects is C_FindObjects.
func (m *Module) FindObjects(h ck.SessionHandle, max int) ([]ck.ObjectHandle, error) {
	s, err := m.lock(h)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if s.find == nil {
		return nil, ck.CKR_OPERATION_NOT_INITIALIZED
	}
	if max < 0 {
		return nil, ck.CKR_ARGUMENTS_BAD
	}
	n := min(max, len(s.find.handles))
	out := append([]ck.ObjectHandle(nil), s.find.handles[:n]...)
	s.find.handles = s.find.handles[n:]
	return out, nil
}

// FindObjectsFinal is C_FindObjectsFinal.
func (m *Module) FindObjectsFinal(h ck.SessionHandle) error {
	s, err := m.lock(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.find == nil {
		return ck.CKR_OPERATION_NOT_INITIALIZED
	}
	s.find = nil
	return nil
}

// namesSecret reports whether t names an attribute that can be secret;
// only then is unsealing an object worth trying.
func namesSecret(t attr.Template) bool {
	for _, a := range t {
		for i := range attr.Table {
			if attr.Table[i].Type == a.Type && attr.Table[i].Rules&attr.Sensitive != 0 {
				return true
			}
		}
	}
	return false
}
