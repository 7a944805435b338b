package hsm

import (
	"errors"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// The Commit contract is tested on MemoryStorage and the disk store alike
// in package tokens (commit_test.go); here: MemoryStorage's copies and
// versions.

func memTestStore(t *testing.T) Store {
	t.Helper()
	s, err := NewMemoryStorage().Create()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func memRecord(id uint64, label string) *ObjectRecord {
	return &ObjectRecord{ID: id, Attrs: []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(label)}}, Sealed: []byte("sealed")}
}

func memLoad(t *testing.T, s Store) map[uint64]*ObjectRecord {
	t.Helper()
	m := map[uint64]*ObjectRecord{}
	if err := s.Objects(func(r *ObjectRecord) error { m[r.ID] = r; return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMemoryStoreCopies(t *testing.T) {
	s := memTestStore(t)
	r := memRecord(1, "one")
	if err := s.Commit(&Change{Put: []*ObjectRecord{r}}); err != nil {
		t.Fatal(err)
	}
	if r.Gen == 0 {
		t.Fatal("Commit left Gen 0")
	}
	// The caller's record, and what Objects returns, are not the store's.
	r.Attrs[0].Value[0] = 'X'
	r.Sealed[0] = 'X'
	r.Gen = 99
	got := memLoad(t, s)[1]
	if string(got.Attrs[0].Value) != "one" || string(got.Sealed) != "sealed" || got.Gen == 99 {
		t.Fatalf("the store shares the caller's record: %+v", got)
	}
	got.Attrs[0].Value[0] = 'Y'
	got.Sealed[0] = 'Y'
	if again := memLoad(t, s)[1]; string(again.Attrs[0].Value) != "one" || string(again.Sealed) != "sealed" {
		t.Fatalf("the store shares what Objects returned: %+v", again)
	}
}

func TestMemoryStoreVersions(t *testing.T) {
	s := memTestStore(t)
	id, err := s.NewObjectID()
	if err != nil {
		t.Fatal(err)
	}
	r := memRecord(id, "v1")
	if err := s.Commit(&Change{Put: []*ObjectRecord{r}}); err != nil {
		t.Fatal(err)
	}
	v1 := r.Gen
	r2 := memRecord(id, "v2")
	r2.Gen = v1
	if err := s.Commit(&Change{Put: []*ObjectRecord{r2}}); err != nil {
		t.Fatal(err)
	}
	if got := memLoad(t, s)[id]; got.Gen != r2.Gen || r2.Gen <= v1 {
		t.Fatalf("stored Gen %d, returned %d, old %d", got.Gen, r2.Gen, v1)
	}
	stale := memRecord(id, "stale")
	stale.Gen = v1
	if err := s.Commit(&Change{Put: []*ObjectRecord{stale}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale replace: %v", err)
	}
	// Objects removed by Reinit never come back either; ids go on.
	if err := s.Reinit(&TokenRecord{Label: "new"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(&Change{Put: []*ObjectRecord{memRecord(id, "again")}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("insert of an id Reinit removed: %v", err)
	}
	// An id stored without NewObjectID is never handed out.
	if err := s.Commit(&Change{Put: []*ObjectRecord{memRecord(id+100, "imported")}}); err != nil {
		t.Fatal(err)
	}
	if next, err := s.NewObjectID(); err != nil || next <= id+100 {
		t.Fatalf("NewObjectID after an import of %d = %d, %v", id+100, next, err)
	}
}
