package tokens

import (
	"sync/atomic"
	"testing"

	"github.com/gohsm/gohsm/hsm"
)

// twoViews opens one token twice: two processes' Stores.
func twoViews(t *testing.T) (a, b *Store) {
	t.Helper()
	root := t.TempDir()
	da, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { da.Close() })
	a = mustCreate(t, da)
	if err := a.SaveToken(testToken("shared")); err != nil {
		t.Fatal(err)
	}
	db, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bs, err := db.Stores()
	if err != nil {
		t.Fatal(err)
	}
	b = bs[0].(*Store)
	if a.changes == nil || b.changes == nil {
		t.Fatal("the change counter is not mapped")
	}
	return a, b
}

// catchUp reads everything, as the engine does at open.
func catchUp(t *testing.T, stores ...*Store) {
	t.Helper()
	for _, s := range stores {
		if _, err := s.LoadToken(); err != nil {
			t.Fatal(err)
		}
		loadAll(t, s)
	}
}

func changed(t *testing.T, s *Store) bool {
	t.Helper()
	c, err := s.Changed()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Changed answers from the shared counter when nothing was committed, and
// from the database otherwise; a writer that died mid-commit (the counter
// left odd) costs readers a database read each time until the next writer
// repairs it, never a missed change.
func TestChangeCounter(t *testing.T) {
	a, b := twoViews(t)
	catchUp(t, a, b)
	if changed(t, a) || changed(t, b) {
		t.Fatal("changed before any write")
	}
	c0 := a.changes.load()
	if c0%2 != 0 || a.verified.Load() != c0+1 {
		t.Fatalf("counter %d, verified %d: the quiet answer is not cached", c0, a.verified.Load())
	}
	insert(t, b, newObj(t, b, "k"))
	if c := a.changes.load(); c != c0+2 {
		t.Fatalf("one commit moved the counter %d -> %d", c0, c)
	}
	if !changed(t, a) {
		t.Fatal("A missed B's commit")
	}
	if changed(t, b) {
		t.Fatal("B's own commit reported as someone else's")
	}
	catchUp(t, a)
	if changed(t, a) {
		t.Fatal("changed after catching up")
	}
	// A writer dies between its two bumps: readers go to the database.
	atomic.AddUint64(a.changes.word, 1)
	if changed(t, a) {
		t.Fatal("an odd counter with no commit reads as a change")
	}
	if a.verified.Load() == a.changes.load()+1 {
		t.Fatal("an odd counter was cached as verified")
	}
	insert(t, b, newObj(t, b, "k2"))
	if c := a.changes.load(); c%2 != 0 {
		t.Fatalf("the next writer left the counter odd (%d)", c)
	}
	if !changed(t, a) {
		t.Fatal("A missed the commit after the repair")
	}
}

// A commit in flight while a reader checks is never cached as seen: the
// reader records only the counter value it read before the database.
func TestChangeCounterCommitInFlight(t *testing.T) {
	a, b := twoViews(t)
	catchUp(t, a, b)
	changed(t, a)
	// The writer's first bump happened, its commit has not: A reads the
	// old generation, and must not cache the odd value.
	b.changes.beginWrite()
	if changed(t, a) {
		t.Fatal("no commit yet")
	}
	b.changes.endWrite()
	insert(t, b, newObj(t, b, "k"))
	if !changed(t, a) {
		t.Fatal("missed")
	}
}

func BenchmarkChangedQuiet(b *testing.B) {
	for _, mapped := range []bool{true, false} {
		name := "counter"
		if !mapped {
			name = "database"
		}
		b.Run(name, func(b *testing.B) {
			d, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			st, err := d.Create()
			if err != nil {
				b.Fatal(err)
			}
			s := st.(*Store)
			if err := s.SaveToken(testToken("t")); err != nil {
				b.Fatal(err)
			}
			if _, err := s.LoadToken(); err != nil {
				b.Fatal(err)
			}
			if err := s.Objects(func(*hsm.ObjectRecord) error { return nil }); err != nil {
				b.Fatal(err)
			}
			if !mapped {
				s.changes.close()
				s.changes = nil
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if c, err := s.Changed(); err != nil || c {
					b.Fatal(c, err)
				}
			}
		})
	}
}
