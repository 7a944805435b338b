package tokens

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// buildToken writes a closed token with n objects and returns its file and
// the objects.
func buildToken(t *testing.T, n int, extra func(o *hsm.ObjectRecord)) (string, map[uint64]*hsm.ObjectRecord) {
	t.Helper()
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, d)
	if err := s.SaveToken(testToken("corruptible")); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]*hsm.ObjectRecord{}
	var batch []*hsm.ObjectRecord
	for i := 1; i <= n; i++ {
		o := testObject(uint64(i), fmt.Sprintf("object number %d", i), i%2 == 0)
		if extra != nil {
			extra(o)
		}
		want[o.ID] = o
		batch = append(batch, o)
	}
	insert(t, s, batch...)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path() + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("WAL left after close: %v", err)
	}
	return s.Path(), want
}

// openDamaged copies the token file into a fresh directory, lets damage
// change it, and reads everything back. It returns the first error met.
func openDamaged(t *testing.T, src string, damage func(f *os.File)) (map[uint64]*hsm.ObjectRecord, *hsm.TokenRecord, error) {
	t.Helper()
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dst := filepath.Join(root, "tokens", "000001.db")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	in.Close()
	damage(out)
	out.Close()

	stores, err := d.Stores()
	if err != nil {
		return nil, nil, err
	}
	rec, err := stores[0].LoadToken()
	if err != nil {
		return nil, nil, err
	}
	got := map[uint64]*hsm.ObjectRecord{}
	err = stores[0].Objects(func(o *hsm.ObjectRecord) error { got[o.ID] = o; return nil })
	return got, rec, err
}

func writeAt(t *testing.T, f *os.File, off int64, b []byte) {
	t.Helper()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptPageIsAnError(t *testing.T) {
	src, _ := buildToken(t, 2000, nil)
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	pages := fi.Size() / page
	rng := rand.New(rand.NewPCG(1, 2))
	// Pages a third, half and two thirds in (table and index pages), the
	// schema page right after the header, and the last page.
	for _, p := range []int64{pages / 3, pages / 2, pages * 2 / 3, 0, pages - 1} {
		junk := make([]byte, page)
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		off := p * page
		if p == 0 {
			off, junk = 100, junk[:page-100] // keep the file header
		}
		_, _, err := openDamaged(t, src, func(f *os.File) { writeAt(t, f, off, junk) })
		if !errors.Is(err, ck.CKR_DEVICE_ERROR) {
			t.Errorf("page %d of %d overwritten: err = %v; want CKR_DEVICE_ERROR", p, pages, err)
		} else {
			t.Logf("page %d of %d overwritten: %v", p, pages, err)
		}
	}
}

// A flipped byte inside a value passes every SQLite check; the row
// checksum must catch it.
func TestCorruptValueIsAnError(t *testing.T) {
	marker := []byte("<<unique value marker>>")
	src, _ := buildToken(t, 500, func(o *hsm.ObjectRecord) {
		if o.ID == 250 {
			o.Attrs = append(o.Attrs, ck.Attribute{Type: ck.CKA_APPLICATION, Value: marker})
		}
	})
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(raw, marker)
	if at < 0 || bytes.Index(raw[at+1:], marker) >= 0 {
		t.Fatalf("marker found at %d, or more than once", at)
	}
	_, _, err = openDamaged(t, src, func(f *os.File) { writeAt(t, f, int64(at+5), []byte{'X'}) })
	if !errors.Is(err, ck.CKR_DEVICE_ERROR) {
		t.Fatalf("flipped value byte: err = %v; want CKR_DEVICE_ERROR", err)
	}
	t.Logf("flipped value byte: %v", err)
}

// Random small damage anywhere: either an error, or exactly the data that
// was written. Some damage lands in unused space and is harmless.
func TestRandomDamageNeverWrongData(t *testing.T) {
	src, want := buildToken(t, 1000, nil)
	fi, _ := os.Stat(src)
	rng := rand.New(rand.NewPCG(3, 4))
	wantTok := testToken("corruptible")
	errorsSeen := 0
	const trials = 40
	for range trials {
		off := 100 + rng.Int64N(fi.Size()-200) // keep clear of the 100-byte header
		junk := make([]byte, 1+rng.IntN(16))
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		got, rec, err := openDamaged(t, src, func(f *os.File) { writeAt(t, f, off, junk) })
		if err != nil {
			if !errors.Is(err, ck.CKR_DEVICE_ERROR) {
				t.Errorf("damage at %d: error %v does not wrap CKR_DEVICE_ERROR", off, err)
			}
			errorsSeen++
			continue
		}
		if rec.Label != wantTok.Label || rec.UserFailures != wantTok.UserFailures || !bytes.Equal(rec.SOKey.Sealed, wantTok.SOKey.Sealed) {
			t.Errorf("damage at %d: wrong token record %+v", off, rec)
		}
		if len(got) != len(want) {
			t.Errorf("damage at %d: %d objects without an error, want %d", off, len(got), len(want))
			continue
		}
		for id, w := range want {
			if !objectsEqual(got[id], w) {
				t.Errorf("damage at %d: object %d wrong without an error", off, id)
				break
			}
		}
	}
	t.Logf("%d of %d random damages detected, the rest were harmless", errorsSeen, trials)
}
