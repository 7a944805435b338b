package tokens

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// realisticKey is shaped like an RSA-2048 private key object: ~25 clear
// attributes including a 256-byte modulus, and a sealed blob for the
// private exponent and CRT values.
func realisticKey(id uint64) *hsm.ObjectRecord {
	modulus := bytes.Repeat([]byte{byte(id)}, 256)
	a := []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_RSA))},
		{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("key-%06d", id))},
		{Type: ck.CKA_ID, Value: []byte(fmt.Sprintf("%020d", id))},
		{Type: ck.CKA_MODULUS, Value: modulus},
		{Type: ck.CKA_PUBLIC_EXPONENT, Value: []byte{1, 0, 1}},
		{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(2048)},
	}
	for _, t := range []ck.AttributeType{ck.CKA_TOKEN, ck.CKA_PRIVATE, ck.CKA_MODIFIABLE, ck.CKA_COPYABLE,
		ck.CKA_DESTROYABLE, ck.CKA_SENSITIVE, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_SIGN_RECOVER, ck.CKA_UNWRAP,
		ck.CKA_EXTRACTABLE, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE, ck.CKA_WRAP_WITH_TRUSTED,
		ck.CKA_ALWAYS_AUTHENTICATE, ck.CKA_LOCAL, ck.CKA_DERIVE} {
		a = append(a, ck.Attribute{Type: t, Value: attr.Bool(true)})
	}
	a = append(a, ck.Attribute{Type: ck.CKA_KEY_GEN_MECHANISM, Value: attr.ULong(ck.ULong(ck.CKM_RSA_PKCS_KEY_PAIR_GEN))})
	return &hsm.ObjectRecord{ID: id, Private: true, Attrs: a, Sealed: bytes.Repeat([]byte{0xa5}, 1200)}
}

// TestLargeToken measures a 100,000-object token. It logs times and
// asserts only correctness (go test -v -run LargeToken to see them).
func TestLargeToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-object token")
	}
	const n = 100_000
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, d)
	if err := s.SaveToken(testToken("large")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const batch = 5000
	for i := 1; i <= n; i += batch {
		objs := make([]*hsm.ObjectRecord, 0, batch)
		for j := i; j < i+batch; j++ {
			objs = append(objs, realisticKey(uint64(j)))
		}
		insert(t, s, objs...)
	}
	t.Logf("insert %d objects in batches of %d: %v", n, batch, time.Since(start))
	start = time.Now()
	var added []*hsm.ObjectRecord
	for i := range 50 {
		o := realisticKey(uint64(n + 1 + i))
		insert(t, s, o)
		added = append(added, o)
	}
	t.Logf("Commit of one new object (no fsync): %v per object", time.Since(start)/50)
	start = time.Now()
	for _, o := range added {
		commit(t, s, &hsm.Change{Put: []*hsm.ObjectRecord{o}}) // a replace at o.Gen
	}
	t.Logf("Commit of one replaced object (fsync): %v per object", time.Since(start)/50)
	start = time.Now()
	for range 10000 {
		if _, err := s.Changed(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Changed(): %v per call", time.Since(start)/10000)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(s.Path())
	t.Logf("file size: %.1f MiB (%d bytes per object)", float64(fi.Size())/(1<<20), fi.Size()/(n+50))

	start = time.Now()
	d2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	stores, err := d2.Stores()
	if err != nil {
		t.Fatal(err)
	}
	s2 := stores[0].(*Store)
	openTime := time.Since(start)
	start = time.Now()
	count := 0
	if err := s2.Objects(func(o *hsm.ObjectRecord) error {
		count++
		if len(o.Attrs) != 25 || len(o.Sealed) != 1200 {
			return fmt.Errorf("object %d has %d attributes", o.ID, len(o.Attrs))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	loadTime := time.Since(start)
	if count != n+50 {
		t.Fatalf("Objects saw %d, want %d", count, n+50)
	}
	t.Logf("open (Stores, incl. quick_check): %v; Objects() over %d: %v; total %v", openTime, count, loadTime, openTime+loadTime)

	start = time.Now()
	if err := s2.quickCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("quick_check alone: %v", time.Since(start))

	start = time.Now()
	const lookups = 1000
	for i := range lookups {
		id := uint64(1 + i*97)
		ids, err := s2.FindIDs([]ck.Attribute{
			{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))},
			{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("key-%06d", id))},
		})
		if err != nil || len(ids) != 1 || ids[0] != id {
			t.Fatalf("FindIDs(label of %d) = %v, %v", id, ids, err)
		}
	}
	t.Logf("FindIDs by class+label: %v per lookup", time.Since(start)/lookups)

	gen, err := s2.Generation()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	puts := 0
	dl, err := s2.ObjectsSince(gen-1, func(*hsm.ObjectRecord) error { puts++; return nil }, func(uint64) error { return nil })
	if err != nil || dl.Reset || puts != 1 {
		t.Fatalf("ObjectsSince(one change ago) = %+v, %v, %d objects; want 1", dl, err, puts)
	}
	t.Logf("ObjectsSince(one change ago): %v", time.Since(start))

	start = time.Now()
	if err := s2.Check(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Check (integrity_check + full verified read): %v", time.Since(start))
}
