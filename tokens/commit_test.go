package tokens

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The Commit contract (hsm.Store) is checked on the disk store and on the
// engine's MemoryStorage alike: the engine relies on the same rules from
// both.
var commitStores = []struct {
	name string
	make func(t *testing.T) hsm.Store
}{
	{"disk", func(t *testing.T) hsm.Store {
		d, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return mustCreate(t, d)
	}},
	{"memory", func(t *testing.T) hsm.Store {
		s, err := hsm.NewMemoryStorage().Create()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

func forEachStore(t *testing.T, fn func(t *testing.T, s hsm.Store)) {
	for _, c := range commitStores {
		t.Run(c.name, func(t *testing.T) {
			s := c.make(t)
			if err := s.SaveToken(testToken("commit")); err != nil {
				t.Fatal(err)
			}
			fn(t, s)
		})
	}
}

func newObj(t *testing.T, s hsm.Store, label string) *hsm.ObjectRecord {
	t.Helper()
	id, err := s.NewObjectID()
	if err != nil {
		t.Fatal(err)
	}
	return testObject(id, label, false)
}

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, hsm.ErrConflict) {
		t.Fatalf("%s: %v; want ErrConflict", what, err)
	}
	if errors.Is(err, ck.CKR_DEVICE_ERROR) {
		t.Fatalf("%s: a conflict must not be CKR_DEVICE_ERROR: %v", what, err)
	}
}

// sameObjects checks that s holds exactly want (content and Gen).
func sameObjects(t *testing.T, s hsm.Store, want map[uint64]*hsm.ObjectRecord) {
	t.Helper()
	got := loadAll(t, s)
	if len(got) != len(want) {
		t.Fatalf("%d objects stored, want %d", len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		if g == nil || !objectsEqual(g, w) || g.Gen != w.Gen {
			t.Fatalf("object %d = %+v, want %+v", id, g, w)
		}
	}
}

func clone(o *hsm.ObjectRecord) *hsm.ObjectRecord {
	c := *o
	c.Attrs = append([]ck.Attribute(nil), o.Attrs...)
	return &c
}

func relabel(o *hsm.ObjectRecord, label string) *hsm.ObjectRecord {
	c := clone(o)
	for i, a := range c.Attrs {
		if a.Type == ck.CKA_LABEL {
			c.Attrs[i].Value = []byte(label)
		}
	}
	return c
}

func TestCommitInsert(t *testing.T) {
	forEachStore(t, func(t *testing.T, s hsm.Store) {
		a, b := newObj(t, s, "a"), newObj(t, s, "b")
		insert(t, s, a)
		insert(t, s, b)
		if a.Gen == 0 || b.Gen <= a.Gen {
			t.Fatalf("Gens %d then %d; want increasing, non-zero", a.Gen, b.Gen)
		}
		// The id is taken: an insert (Gen 0) conflicts.
		wantConflict(t, "insert of a stored id", s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{testObject(a.ID, "again", false)}}))
		// A deleted id is never stored again.
		del(t, s, a)
		wantConflict(t, "insert of a deleted id", s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{testObject(a.ID, "zombie", false)}}))
		sameObjects(t, s, map[uint64]*hsm.ObjectRecord{b.ID: b})
	})
}

func TestCommitReplace(t *testing.T) {
	forEachStore(t, func(t *testing.T, s hsm.Store) {
		o := newObj(t, s, "v1")
		insert(t, s, o)
		v1 := o.Gen
		v2 := relabel(o, "v2")
		commit(t, s, &hsm.Change{Put: []*hsm.ObjectRecord{v2}})
		if v2.Gen <= v1 {
			t.Fatalf("replace stamped Gen %d, the old version was %d", v2.Gen, v1)
		}
		// A writer that decided on v1 conflicts, and nothing changes.
		stale := relabel(o, "stale")
		stale.Gen = v1
		wantConflict(t, "replace at an old Gen", s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{stale}}))
		if stale.Gen != v1 {
			t.Errorf("a failed Commit changed the record's Gen to %d", stale.Gen)
		}
		sameObjects(t, s, map[uint64]*hsm.ObjectRecord{o.ID: v2})
		// A replace of an object that never existed, or was deleted.
		ghost := newObj(t, s, "ghost")
		ghost.Gen = v2.Gen
		wantConflict(t, "replace of a never stored id", s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{ghost}}))
		del(t, s, v2)
		wantConflict(t, "replace of a deleted object", s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{relabel(v2, "back")}}))
		sameObjects(t, s, map[uint64]*hsm.ObjectRecord{})
	})
}

func TestCommitDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, s hsm.Store) {
		o := newObj(t, s, "x")
		insert(t, s, o)
		v1 := o.Gen
		v2 := relabel(o, "changed")
		commit(t, s, &hsm.Change{Put: []*hsm.ObjectRecord{v2}})
		wantConflict(t, "delete of a changed object", s.Commit(&hsm.Change{Delete: []hsm.ObjectVersion{{ID: o.ID, Gen: v1}}}))
		wantConflict(t, "delete of a never stored id", s.Commit(&hsm.Change{Delete: []hsm.ObjectVersion{{ID: o.ID + 1000, Gen: v2.Gen}}}))
		sameObjects(t, s, map[uint64]*hsm.ObjectRecord{o.ID: v2})
		del(t, s, v2)
		wantConflict(t, "delete of a deleted object", s.Commit(&hsm.Change{Delete: []hsm.ObjectVersion{{ID: o.ID, Gen: v2.Gen}}}))
		sameObjects(t, s, map[uint64]*hsm.ObjectRecord{})
	})
}

func TestCommitRequire(t *testing.T) {
	forEachStore(t, func(t *testing.T, s hsm.Store) {
		src := newObj(t, s, "source")
		insert(t, s, src)
		// C_CopyObject: the copy is made from src as read.
		cp := newObj(t, s, "copy")
		commit(t, s, &hsm.Change{Put: []*hsm.ObjectRecord{cp}, Require: []hsm.ObjectVersion{{ID: src.ID, Gen: src.Gen}}})
		// src changes meanwhile: a copy decided on the old src conflicts.
		old := src.Gen
		src2 := relabel(src, "source changed")
		commit(t, s, &hsm.Change{Put: []*hsm.ObjectRecord{src2}})
		cp2 := newObj(t, s, "copy 2")
		wantConflict(t, "copy of a changed source", s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{cp2}, Require: []hsm.ObjectVersion{{ID: src.ID, Gen: old}}}))
		if cp2.Gen != 0 {
			t.Errorf("a failed Commit set Gen %d", cp2.Gen)
		}
		// Require alone writes nothing.
		commit(t, s, &hsm.Change{Require: []hsm.ObjectVersion{{ID: src2.ID, Gen: src2.Gen}}})
		wantConflict(t, "require of a missing object", s.Commit(&hsm.Change{Require: []hsm.ObjectVersion{{ID: cp2.ID, Gen: 1}}}))
		sameObjects(t, s, map[uint64]*hsm.ObjectRecord{src2.ID: src2, cp.ID: cp})
		// The id of a failed insert is still free.
		insert(t, s, cp2)
	})
}

// One failing precondition, wherever it is in the change, and nothing of
// the change is written.
func TestCommitAllOrNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s hsm.Store) {
		var objs []*hsm.ObjectRecord
		want := map[uint64]*hsm.ObjectRecord{}
		for i := range 6 {
			o := newObj(t, s, fmt.Sprint("o", i))
			objs = append(objs, o)
			want[o.ID] = o
		}
		insert(t, s, objs...)
		gone := newObj(t, s, "gone")
		insert(t, s, gone)
		del(t, s, gone)
		disk, _ := s.(*Store)
		var gen0 uint64
		if disk != nil {
			gen0, _ = disk.Generation()
		}
		fresh := newObj(t, s, "fresh")
		good := func() *hsm.Change {
			return &hsm.Change{
				Put:     []*hsm.ObjectRecord{fresh, relabel(objs[0], "r0"), relabel(objs[1], "r1")},
				Delete:  []hsm.ObjectVersion{{ID: objs[2].ID, Gen: objs[2].Gen}, {ID: objs[3].ID, Gen: objs[3].Gen}},
				Require: []hsm.ObjectVersion{{ID: objs[4].ID, Gen: objs[4].Gen}},
			}
		}
		for _, tc := range []struct {
			name  string
			spoil func(ch *hsm.Change)
		}{
			{"last put stale", func(ch *hsm.Change) { ch.Put[2].Gen-- }},
			{"put of a deleted id", func(ch *hsm.Change) { ch.Put = append(ch.Put, testObject(gone.ID, "zombie", false)) }},
			{"insert of a stored id", func(ch *hsm.Change) { ch.Put[0] = testObject(objs[5].ID, "dup", false) }},
			{"last delete stale", func(ch *hsm.Change) { ch.Delete[1].Gen++ }},
			{"delete of a deleted id", func(ch *hsm.Change) { ch.Delete = append(ch.Delete, hsm.ObjectVersion{ID: gone.ID, Gen: gone.Gen}) }},
			{"require stale", func(ch *hsm.Change) { ch.Require[0].Gen++ }},
			{"require missing", func(ch *hsm.Change) { ch.Require = append(ch.Require, hsm.ObjectVersion{ID: gone.ID, Gen: gone.Gen}) }},
		} {
			ch := good()
			tc.spoil(ch)
			wantConflict(t, tc.name, s.Commit(ch))
			for _, p := range ch.Put {
				if p.ID == fresh.ID && p.Gen != 0 {
					t.Fatalf("%s: Gen set by a failed Commit", tc.name)
				}
			}
			sameObjects(t, s, want)
			if disk != nil {
				if g, _ := disk.Generation(); g != gen0 {
					t.Fatalf("%s: generation moved from %d to %d", tc.name, gen0, g)
				}
			}
		}
		// Unspoilt, all of it is written, at one Gen.
		ch := good()
		commit(t, s, ch)
		for _, p := range ch.Put {
			if p.Gen != ch.Put[0].Gen || p.Gen == 0 {
				t.Fatalf("Gens %d and %d in one commit", p.Gen, ch.Put[0].Gen)
			}
			want[p.ID] = p
		}
		delete(want, objs[2].ID)
		delete(want, objs[3].ID)
		sameObjects(t, s, want)
	})
}

// A change naming an object twice, or id 0, is a caller's bug, not a
// conflict; an empty change does nothing.
func TestCommitBadChange(t *testing.T) {
	forEachStore(t, func(t *testing.T, s hsm.Store) {
		o := newObj(t, s, "o")
		insert(t, s, o)
		for name, ch := range map[string]*hsm.Change{
			"put twice":        {Put: []*hsm.ObjectRecord{relabel(o, "a"), relabel(o, "b")}},
			"put and delete":   {Put: []*hsm.ObjectRecord{relabel(o, "a")}, Delete: []hsm.ObjectVersion{{ID: o.ID, Gen: o.Gen}}},
			"delete twice":     {Delete: []hsm.ObjectVersion{{ID: o.ID, Gen: o.Gen}, {ID: o.ID, Gen: o.Gen}}},
			"id 0":             {Put: []*hsm.ObjectRecord{testObject(0, "zero", false)}},
			"nil record":       {Put: []*hsm.ObjectRecord{nil}},
			"put beside a nil": {Put: []*hsm.ObjectRecord{newObj(t, s, "n"), nil}},
		} {
			if err := s.Commit(ch); !errors.Is(err, ck.CKR_GENERAL_ERROR) {
				t.Errorf("%s: %v; want CKR_GENERAL_ERROR", name, err)
			}
		}
		for _, ch := range []*hsm.Change{nil, {}} {
			if err := s.Commit(ch); err != nil {
				t.Errorf("empty change: %v", err)
			}
		}
		sameObjects(t, s, map[uint64]*hsm.ObjectRecord{o.ID: o})
	})
}

func TestCommitDurability(t *testing.T) {
	o := &hsm.ObjectRecord{ID: 1}
	old := &hsm.ObjectRecord{ID: 2, Gen: 5}
	v := hsm.ObjectVersion{ID: 3, Gen: 4}
	for _, tc := range []struct {
		name string
		ch   hsm.Change
		want durability
	}{
		{"one new object", hsm.Change{Put: []*hsm.ObjectRecord{o}}, cached},
		{"one new object, a source required", hsm.Change{Put: []*hsm.ObjectRecord{o}, Require: []hsm.ObjectVersion{v}}, cached},
		{"require only", hsm.Change{Require: []hsm.ObjectVersion{v}}, cached},
		{"one replace", hsm.Change{Put: []*hsm.ObjectRecord{old}}, fsynced},
		{"two new objects", hsm.Change{Put: []*hsm.ObjectRecord{o, {ID: 7}}}, fsynced},
		{"one delete", hsm.Change{Delete: []hsm.ObjectVersion{v}}, fsynced},
		{"new object and a delete", hsm.Change{Put: []*hsm.ObjectRecord{o}, Delete: []hsm.ObjectVersion{v}}, fsynced},
	} {
		if got := changeDurability(&tc.ch); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Two Stores on one file are two processes' views. A stale one can no
// longer write its old view back, and the other sees each change as before.
func TestCommitStaleView(t *testing.T) {
	root := t.TempDir()
	da, _ := Open(root)
	defer da.Close()
	a := mustCreate(t, da)
	if err := a.SaveToken(testToken("shared")); err != nil {
		t.Fatal(err)
	}
	db, _ := Open(root)
	defer db.Close()
	bs, err := db.Stores()
	if err != nil {
		t.Fatal(err)
	}
	b := bs[0].(*Store)

	key := newObj(t, a, "key")
	other := newObj(t, a, "other")
	insert(t, a, key, other)
	viewA := loadAll(t, a)
	genA, _ := a.Generation()
	viewB := loadAll(t, b)

	// B makes the key "sensitive"; A, stale, relabels its old view.
	sens := relabel(viewB[key.ID], "sensitive now")
	commit(t, b, &hsm.Change{Put: []*hsm.ObjectRecord{sens}})
	wantConflict(t, "stale replace", a.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{relabel(viewA[key.ID], "relabelled by a")}}))

	// A catches up and sees B's version, with its Gen, as ObjectsSince
	// always reported a change.
	var puts []*hsm.ObjectRecord
	var dels []uint64
	d, err := a.ObjectsSince(genA, func(o *hsm.ObjectRecord) error { puts = append(puts, o); return nil },
		func(id uint64) error { dels = append(dels, id); return nil })
	if err != nil || d.Reset || len(puts) != 1 || len(dels) != 0 || puts[0].ID != key.ID || puts[0].Gen != sens.Gen || !objectsEqual(puts[0], sens) {
		t.Fatalf("A's catch-up: %+v, %v, puts %+v, dels %v", d, err, puts, dels)
	}
	viewA[key.ID] = puts[0]
	genA = d.Generation
	// Deciding again on the fresh view works.
	both := relabel(viewA[key.ID], "sensitive and relabelled")
	commit(t, a, &hsm.Change{Put: []*hsm.ObjectRecord{both}})

	// B (now stale) deletes the key at the version it knows: conflict.
	wantConflict(t, "delete of a changed object", b.Commit(&hsm.Change{Delete: []hsm.ObjectVersion{{ID: key.ID, Gen: sens.Gen}}}))
	// B deletes "other", which nobody changed; A, stale, relabels it:
	// the deleted object must not come back, neither as a replace nor as
	// an insert.
	commit(t, b, &hsm.Change{Delete: []hsm.ObjectVersion{{ID: other.ID, Gen: viewB[other.ID].Gen}}})
	wantConflict(t, "replace of a deleted object", a.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{relabel(viewA[other.ID], "zombie")}}))
	zombie := relabel(viewA[other.ID], "zombie")
	zombie.Gen = 0
	wantConflict(t, "insert of a deleted id", a.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{zombie}}))
	dels = nil
	d, err = a.ObjectsSince(genA, func(o *hsm.ObjectRecord) error { return nil }, func(id uint64) error { dels = append(dels, id); return nil })
	if err != nil || len(dels) != 1 || dels[0] != other.ID {
		t.Fatalf("A's catch-up after B's delete: %+v, %v, dels %v", d, err, dels)
	}

	// A fresh reader (a third process) sees the newest state.
	dc, _ := Open(root)
	defer dc.Close()
	cs, err := dc.Stores()
	if err != nil {
		t.Fatal(err)
	}
	sameObjects(t, cs[0], map[uint64]*hsm.ObjectRecord{key.ID: both})
	if o, err := cs[0].(*Store).Object(key.ID); err != nil || o.Gen != both.Gen {
		t.Fatalf("Object(%d) = %+v, %v; want Gen %d", key.ID, o, err, both.Gen)
	}
}
