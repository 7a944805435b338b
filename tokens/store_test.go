package tokens

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func testToken(label string) *hsm.TokenRecord {
	return &hsm.TokenRecord{
		Label:        label,
		Serial:       "0123456789abcdef",
		UserPINSet:   true,
		SOFailures:   2,
		UserFailures: 1,
		SOKey:        hsm.WrappedKey{KDF: "pbkdf2-sha256", Salt: []byte("so-salt"), Iterations: 600000, Nonce: []byte("so-nonce-123"), Sealed: []byte("so-sealed-key-material-0123456789abcdef")},
		UserKey:      hsm.WrappedKey{KDF: "pbkdf2-sha256", Salt: []byte("user-salt"), Iterations: 100000, Nonce: []byte("us-nonce-123"), Sealed: []byte("user-sealed-key-material-0123456789")},
		PublicKey:    bytes.Repeat([]byte{0x5a}, 32),
	}
}

func testObject(id uint64, label string, private bool) *hsm.ObjectRecord {
	return &hsm.ObjectRecord{
		ID:      id,
		Private: private,
		Attrs: []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
			{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
			{Type: ck.CKA_PRIVATE, Value: attr.Bool(private)},
			{Type: ck.CKA_LABEL, Value: []byte(label)},
			{Type: ck.CKA_ID, Value: []byte(fmt.Sprintf("id-%d", id))},
			{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
			{Type: ck.CKA_VENDOR_DEFINED | 7, Value: []byte{}},
		},
		Sealed: []byte(fmt.Sprintf("sealed-%d-%s", id, label)),
	}
}

func objectsEqual(a, b *hsm.ObjectRecord) bool {
	if a.ID != b.ID || a.Private != b.Private || !bytes.Equal(a.Sealed, b.Sealed) || len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for i := range a.Attrs {
		if a.Attrs[i].Type != b.Attrs[i].Type || !bytes.Equal(a.Attrs[i].Value, b.Attrs[i].Value) {
			return false
		}
	}
	return true
}

func loadAll(t *testing.T, s hsm.Store) map[uint64]*hsm.ObjectRecord {
	t.Helper()
	m := map[uint64]*hsm.ObjectRecord{}
	if err := s.Objects(func(o *hsm.ObjectRecord) error {
		if _, dup := m[o.ID]; dup {
			t.Fatalf("object %d seen twice", o.ID)
		}
		m[o.ID] = o
		return nil
	}); err != nil {
		t.Fatalf("Objects: %v", err)
	}
	return m
}

// commit applies ch and fails the test on an error.
func commit(t testing.TB, s hsm.Store, ch *hsm.Change) {
	t.Helper()
	if err := s.Commit(ch); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// insert stores new objects (Gen 0) in one commit.
func insert(t testing.TB, s hsm.Store, objs ...*hsm.ObjectRecord) {
	t.Helper()
	commit(t, s, &hsm.Change{Put: objs})
}

// del deletes objects at the versions their records carry.
func del(t testing.TB, s hsm.Store, objs ...*hsm.ObjectRecord) {
	t.Helper()
	var vs []hsm.ObjectVersion
	for _, o := range objs {
		vs = append(vs, hsm.ObjectVersion{ID: o.ID, Gen: o.Gen})
	}
	commit(t, s, &hsm.Change{Delete: vs})
}

func mustCreate(t *testing.T, d *Dir) *Store {
	t.Helper()
	s, err := d.Create()
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return s.(*Store)
}

func TestTokenRoundTrip(t *testing.T) {
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, d)
	if rec, err := s.LoadToken(); err != nil || rec != nil {
		t.Fatalf("new token: LoadToken = %v, %v; want nil, nil", rec, err)
	}
	want := testToken("first")
	if err := s.SaveToken(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadToken()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadToken = %+v\nwant %+v", got, want)
	}
	// A second save replaces the first.
	want.UserFailures = 3
	want.Label = "renamed"
	if err := s.SaveToken(want); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// Permissions: the tree is private to the user.
	for _, p := range []string{filepath.Join(root, "tokens")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, %v; want 0700", p, fi.Mode().Perm(), err)
		}
	}
	if fi, err := os.Stat(s.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, %v; want 0600", s.Path(), fi.Mode().Perm(), err)
	}

	d2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	stores, err := d2.Stores()
	if err != nil || len(stores) != 1 {
		t.Fatalf("Stores = %d, %v; want 1", len(stores), err)
	}
	got, err = stores[0].LoadToken()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen LoadToken = %+v\nwant %+v", got, want)
	}
}

func TestObjectRoundTrip(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := mustCreate(t, d)
	want := map[uint64]*hsm.ObjectRecord{}
	for i := range 10 {
		id, err := s.NewObjectID()
		if err != nil {
			t.Fatal(err)
		}
		o := testObject(id, fmt.Sprintf("key %d", i), i%2 == 0)
		if i == 3 {
			o.Sealed = nil // a public object with nothing secret
			o.Attrs = nil
		}
		insert(t, s, o)
		if o.Gen == 0 {
			t.Fatalf("Commit left Gen 0 on object %d", id)
		}
		want[id] = o
	}
	// Replace one, delete one, delete it again.
	var ids []uint64
	for id := range want {
		ids = append(ids, id)
	}
	repl := testObject(ids[0], "replaced", true)
	repl.Gen = want[ids[0]].Gen
	old := repl.Gen
	commit(t, s, &hsm.Change{Put: []*hsm.ObjectRecord{repl}})
	if repl.Gen <= old {
		t.Fatalf("replace: Gen %d, was %d", repl.Gen, old)
	}
	want[ids[0]] = repl
	del(t, s, want[ids[1]])
	gone := want[ids[1]]
	delete(want, ids[1])
	if err := s.Commit(&hsm.Change{Delete: []hsm.ObjectVersion{{ID: gone.ID, Gen: gone.Gen}}}); !errors.Is(err, hsm.ErrConflict) {
		t.Fatalf("deleting a deleted object: %v; want ErrConflict", err)
	}
	got := loadAll(t, s)
	if len(got) != len(want) {
		t.Fatalf("%d objects, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g := got[id]; g == nil || !objectsEqual(g, w) || g.Gen != w.Gen {
			t.Errorf("object %d = %+v, want %+v", id, g, w)
		}
		if o, err := s.Object(id); err != nil || o == nil || !objectsEqual(o, w) || o.Gen != w.Gen {
			t.Errorf("Object(%d) = %+v, %v", id, o, err)
		}
	}
	if o, err := s.Object(ids[1]); o != nil || err != nil {
		t.Errorf("Object(deleted) = %v, %v; want nil, nil", o, err)
	}
	// Values share one buffer; appending to one must not touch the next.
	for _, o := range got {
		if len(o.Attrs) < 2 {
			continue
		}
		next := append([]byte(nil), o.Attrs[1].Value...)
		o.Attrs[0].Value = append(o.Attrs[0].Value, 0xff, 0xff, 0xff)
		if !bytes.Equal(o.Attrs[1].Value, next) {
			t.Fatalf("append to one attribute value changed the next")
		}
		break
	}
	// An error from the callback stops the walk and comes back.
	stop := errors.New("stop")
	n := 0
	if err := s.Objects(func(*hsm.ObjectRecord) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Objects with failing fn = %v after %d calls", err, n)
	}
}

func TestReinit(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := mustCreate(t, d)
	if err := s.SaveToken(testToken("old")); err != nil {
		t.Fatal(err)
	}
	var last uint64
	var objs []*hsm.ObjectRecord
	for i := range 5 {
		id, err := s.NewObjectID()
		if err != nil {
			t.Fatal(err)
		}
		last = id
		o := testObject(id, fmt.Sprint(i), false)
		insert(t, s, o)
		objs = append(objs, o)
	}
	del(t, s, objs[4])
	nt := testToken("new")
	nt.UserPINSet = false
	nt.UserKey = hsm.WrappedKey{}
	if err := s.Reinit(nt); err != nil {
		t.Fatal(err)
	}
	if got := loadAll(t, s); len(got) != 0 {
		t.Fatalf("after Reinit %d objects remain", len(got))
	}
	rec, err := s.LoadToken()
	if err != nil || rec.Label != "new" || rec.UserPINSet {
		t.Fatalf("after Reinit LoadToken = %+v, %v", rec, err)
	}
	id, err := s.NewObjectID()
	if err != nil || id <= last {
		t.Fatalf("NewObjectID after Reinit = %d, %v; want > %d", id, err, last)
	}
	// No object of before the Reinit comes back: neither as an insert
	// (deleted before, or removed by the Reinit) nor as a replace.
	for _, o := range objs {
		stale := testObject(o.ID, "stale", false)
		if err := s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{stale}}); !errors.Is(err, hsm.ErrConflict) {
			t.Errorf("insert of id %d after Reinit: %v; want ErrConflict", o.ID, err)
		}
		stale.Gen = o.Gen
		if err := s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{stale}}); !errors.Is(err, hsm.ErrConflict) {
			t.Errorf("replace of object %d after Reinit: %v; want ErrConflict", o.ID, err)
		}
	}
	if got := loadAll(t, s); len(got) != 0 {
		t.Fatalf("after stale writes %d objects", len(got))
	}
	insert(t, s, testObject(id, "new", false))
}

func TestNewObjectIDUnique(t *testing.T) {
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, d)
	seen := map[uint64]bool{}
	take := func(s *Store) uint64 {
		t.Helper()
		id, err := s.NewObjectID()
		if err != nil {
			t.Fatal(err)
		}
		if id == 0 || seen[id] {
			t.Fatalf("NewObjectID returned %d twice (or zero)", id)
		}
		seen[id] = true
		return id
	}
	var maxID uint64
	for i := range 3 * idBlock {
		id := take(s)
		o := testObject(id, "x", false)
		insert(t, s, o)
		if i%3 == 0 {
			del(t, s, o)
		}
		maxID = max(maxID, id)
	}
	// An object stored under an id that was never handed out (a restore)
	// moves the counter past it.
	restored := maxID + 10*idBlock
	insert(t, s, testObject(restored, "restored", false))
	seen[restored] = true
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen, and a second handle on the same file (another process):
	// neither hands out an id used before or by the other.
	d1, _ := Open(root)
	d2, _ := Open(root)
	defer d1.Close()
	defer d2.Close()
	s1, err := d1.Stores()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := d2.Stores()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 * idBlock {
		if id := take(s1[0].(*Store)); id <= restored {
			t.Fatalf("id %d not above restored id %d", id, restored)
		}
		take(s2[0].(*Store))
	}
}

func TestSlotOrder(t *testing.T) {
	root := t.TempDir()
	d, _ := Open(root)
	for i := range 3 {
		s := mustCreate(t, d)
		if err := s.SaveToken(testToken(fmt.Sprint("token ", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Files that are not tokens are ignored.
	os.WriteFile(filepath.Join(root, "tokens", ".new-123.tmp"), []byte("junk"), 0o600)
	os.WriteFile(filepath.Join(root, "tokens", "notes.txt"), []byte("junk"), 0o600)
	d.Close()
	d2, _ := Open(root)
	defer d2.Close()
	stores, err := d2.Stores()
	if err != nil || len(stores) != 3 {
		t.Fatalf("Stores = %d, %v", len(stores), err)
	}
	for i, s := range stores {
		rec, err := s.LoadToken()
		if err != nil || rec.Label != fmt.Sprint("token ", i) {
			t.Errorf("slot %d: %+v, %v", i, rec, err)
		}
	}
}

// Two Dirs on one directory behave like two processes: each sees the
// other's writes once Changed says so, incrementally through ObjectsSince.
func TestTwoProcessesSeeEachOther(t *testing.T) {
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
	if err != nil || len(bs) != 1 {
		t.Fatalf("Stores = %d, %v", len(bs), err)
	}
	b := bs[0].(*Store)

	// Each side loads, as the engine does at start.
	type view struct {
		s       *Store
		objects map[uint64]*hsm.ObjectRecord
		token   *hsm.TokenRecord
		gen     uint64
	}
	load := func(s *Store) *view {
		v := &view{s: s, objects: loadAll(t, s)}
		var err error
		if v.token, err = s.LoadToken(); err != nil {
			t.Fatal(err)
		}
		if v.gen, err = s.Generation(); err != nil {
			t.Fatal(err)
		}
		return v
	}
	va, vb := load(a), load(b)
	changed := func(v *view) bool {
		c, err := v.s.Changed()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	catchUp := func(v *view) Delta {
		d, err := v.s.ObjectsSince(v.gen,
			func(o *hsm.ObjectRecord) error { v.objects[o.ID] = o; return nil },
			func(id uint64) error { delete(v.objects, id); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if d.Token {
			if v.token, err = v.s.LoadToken(); err != nil {
				t.Fatal(err)
			}
		}
		v.gen = d.Generation
		return d
	}
	if changed(va) || changed(vb) {
		t.Fatal("Changed before anyone wrote")
	}

	put := func(v *view, label string) uint64 {
		id, err := v.s.NewObjectID()
		if err != nil {
			t.Fatal(err)
		}
		o := testObject(id, label, true)
		insert(t, v.s, o)
		v.objects[id] = o
		return id
	}
	idA := put(va, "from a")
	if changed(va) {
		t.Error("a's own write makes a Changed")
	}
	if !changed(vb) {
		t.Fatal("b not told of a's write")
	}
	d := catchUp(vb)
	if d.Reset || d.Token || vb.objects[idA] == nil || vb.objects[idA].Attrs[4].Type != ck.CKA_LABEL {
		t.Fatalf("b after catch-up: %+v, objects %v", d, vb.objects)
	}
	if changed(vb) {
		t.Error("b still Changed after ObjectsSince")
	}

	idB := put(vb, "from b")
	del(t, vb.s, vb.objects[idA])
	delete(vb.objects, idA)
	rec := *vb.token
	rec.UserFailures = 5
	if err := vb.s.SaveToken(&rec); err != nil {
		t.Fatal(err)
	}
	vb.token = &rec
	if !changed(va) {
		t.Fatal("a not told of b's writes")
	}
	d = catchUp(va)
	if d.Reset || !d.Token {
		t.Errorf("a's delta = %+v; want the token flagged, no reset", d)
	}
	if va.token.UserFailures != 5 {
		t.Errorf("a sees UserFailures %d, want 5", va.token.UserFailures)
	}
	if len(va.objects) != 1 || va.objects[idB] == nil {
		t.Errorf("a sees %v; want only %d", va.objects, idB)
	}

	// Reinit by a: b must start over.
	if err := va.s.Reinit(testToken("fresh")); err != nil {
		t.Fatal(err)
	}
	va.objects = map[uint64]*hsm.ObjectRecord{}
	idA2 := put(va, "after reinit")
	if !changed(vb) {
		t.Fatal("b not told of Reinit")
	}
	vb.objects[999999] = testObject(999999, "stale", false) // must be discarded on Reset
	var fresh map[uint64]*hsm.ObjectRecord
	d, err = vb.s.ObjectsSince(vb.gen, func(o *hsm.ObjectRecord) error {
		if fresh == nil {
			fresh = map[uint64]*hsm.ObjectRecord{}
		}
		fresh[o.ID] = o
		return nil
	}, func(uint64) error { t.Error("del called on a reset"); return nil })
	if err != nil || !d.Reset || !d.Token {
		t.Fatalf("b's delta after Reinit = %+v, %v; want Reset and Token", d, err)
	}
	if len(fresh) != 1 || fresh[idA2] == nil {
		t.Errorf("b after reset sees %v; want only %d", fresh, idA2)
	}
	if rec, _ := vb.s.LoadToken(); rec.Label != "fresh" {
		t.Errorf("b's token label %q", rec.Label)
	}
}

func TestFindIDs(t *testing.T) {
	d, _ := Open(t.TempDir())
	defer d.Close()
	s := mustCreate(t, d)
	cert := func(id uint64, label string, ckaID []byte) *hsm.ObjectRecord {
		return &hsm.ObjectRecord{ID: id, Attrs: []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_CERTIFICATE))},
			{Type: ck.CKA_LABEL, Value: []byte(label)},
			{Type: ck.CKA_ID, Value: ckaID},
		}}
	}
	objs := []*hsm.ObjectRecord{
		testObject(1, "alpha", true),
		testObject(2, "beta", false),
		cert(3, "alpha", []byte("id-1")),
		cert(4, "", nil), // empty label and empty id are values, not absence
		{ID: 5, Attrs: []ck.Attribute{{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_DATA))}}},
	}
	insert(t, s, objs...)
	class := func(c ck.ObjectClass) ck.Attribute {
		return ck.Attribute{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(c))}
	}
	label := func(l string) ck.Attribute { return ck.Attribute{Type: ck.CKA_LABEL, Value: []byte(l)} }
	id := func(v []byte) ck.Attribute { return ck.Attribute{Type: ck.CKA_ID, Value: v} }
	for _, tc := range []struct {
		name string
		tmpl []ck.Attribute
		want []uint64
	}{
		{"all", nil, []uint64{1, 2, 3, 4, 5}},
		{"label", []ck.Attribute{label("alpha")}, []uint64{1, 3}},
		{"class+label", []ck.Attribute{class(ck.CKO_CERTIFICATE), label("alpha")}, []uint64{3}},
		{"class", []ck.Attribute{class(ck.CKO_SECRET_KEY)}, []uint64{1, 2}},
		{"id", []ck.Attribute{id([]byte("id-1"))}, []uint64{1, 3}},
		{"label+id", []ck.Attribute{label("alpha"), id([]byte("id-1"))}, []uint64{1, 3}},
		{"empty label", []ck.Attribute{label("")}, []uint64{4}},
		{"empty id", []ck.Attribute{id(nil)}, []uint64{4}},
		{"no match", []ck.Attribute{label("gamma")}, nil},
		{"other attrs ignored", []ck.Attribute{label("beta"), {Type: ck.CKA_TOKEN, Value: attr.Bool(false)}}, []uint64{2}},
	} {
		got, err := s.FindIDs(tc.tmpl)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: FindIDs = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestOpenMissingAndForeignFiles(t *testing.T) {
	root := t.TempDir()
	d, _ := Open(root)
	defer d.Close()
	// A file under a token name that is not a token database.
	p := filepath.Join(root, "tokens", "000001.db")
	if err := os.WriteFile(p, bytes.Repeat([]byte("not sqlite "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stores(); !errors.Is(err, ck.CKR_DEVICE_ERROR) {
		t.Errorf("Stores over a non-database file = %v; want CKR_DEVICE_ERROR", err)
	}
	// An empty file under a token name lost its schema: damaged, not new.
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stores(); !errors.Is(err, ck.CKR_DEVICE_ERROR) {
		t.Errorf("Stores over an empty file = %v; want CKR_DEVICE_ERROR", err)
	}
}

// Sessions of one process share a Store: concurrent writers and readers
// neither fail nor lose writes (run with -race).
func TestConcurrentSessions(t *testing.T) {
	d, _ := Open(t.TempDir())
	defer d.Close()
	s := mustCreate(t, d)
	const workers, each = 8, 25
	errs := make(chan error, workers)
	ids := make(chan uint64, workers*each)
	for w := range workers {
		go func() {
			for i := range each {
				id, err := s.NewObjectID()
				if err == nil {
					err = s.Commit(&hsm.Change{Put: []*hsm.ObjectRecord{testObject(id, fmt.Sprintf("w%d-%d", w, i), false)}})
				}
				if err == nil {
					_, err = s.FindIDs([]ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("w%d-%d", w, i))}})
				}
				if err == nil {
					_, err = s.Changed()
				}
				if err != nil {
					errs <- err
					return
				}
				ids <- id
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(ids)
	seen := map[uint64]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %d twice", id)
		}
		seen[id] = true
	}
	if got := loadAll(t, s); len(got) != workers*each {
		t.Fatalf("%d objects stored, want %d", len(got), workers*each)
	}
}
