package hsm

import (
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
)

// Several processes may share a token store (SharedStore). Each keeps its
// own view of the objects and catches up when the store says someone else
// committed: at C_FindObjectsInit (so a process sees the others' new token
// objects at its next search), at login and PIN calls (counters and wrapped
// keys), and in C_GetTokenInfo.

// sync catches up if another process changed the token; it takes t.mu for
// writing only when there is something to apply.
func (t *Token) sync() error {
	ss, ok := t.store.(SharedStore)
	if !ok {
		return nil
	}
	changed, err := ss.Changed()
	if err != nil {
		return fmt.Errorf("token %d: %w", t.slot, deviceError(err))
	}
	if !changed {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.syncLocked()
}

// syncLocked applies other processes' changes; the caller holds t.mu for
// writing.
func (t *Token) syncLocked() error {
	ss, ok := t.store.(SharedStore)
	if !ok || t.rec == nil {
		return nil
	}
	changed, err := ss.Changed()
	if err != nil {
		return fmt.Errorf("token %d: %w", t.slot, deviceError(err))
	}
	if !changed {
		return nil
	}
	return t.catchUp(ss, t.gen)
}

// catchUp loads everything after generation since (0: everything).
func (t *Token) catchUp(ss SharedStore, since uint64) error {
	seen := map[uint64]bool{}
	put := func(r *ObjectRecord) error {
		seen[r.ID] = true
		if o := t.byID[r.ID]; o != nil {
			t.index.remove(o)
			o.forget()
			o.mu.Lock()
			o.setClear(attr.Layered{Own: r.Attrs})
			o.sealed, o.ver = r.Sealed, r.Gen
			o.mu.Unlock()
			t.index.add(o)
			return nil
		}
		o, err := t.objectFromRecord(r)
		if err != nil {
			return err
		}
		t.addObject(o)
		return nil
	}
	del := func(id uint64) error {
		if o := t.byID[id]; o != nil {
			t.removeObject(o)
			o.forget()
		}
		return nil
	}
	d, err := ss.ObjectsSince(since, put, del)
	if err != nil {
		return fmt.Errorf("token %d: catch up: %w", t.slot, deviceError(err))
	}
	t.gen = d.Generation
	if d.Reset {
		for id, o := range t.byID {
			if !seen[id] {
				t.removeObject(o)
				o.forget()
			}
		}
	}
	if d.Token || d.Reset {
		rec, err := t.store.LoadToken()
		if err != nil {
			return fmt.Errorf("token %d: %w", t.slot, deviceError(err))
		}
		if d.Reset && t.rec != nil && rec != nil && rec.Serial != t.rec.Serial {
			// Re-initialised elsewhere: the token key we hold is gone.
			t.logout()
		}
		t.rec = rec
	}
	return nil
}
