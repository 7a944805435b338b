package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// faultyFile injects write and fsync failures in front of the log's file.
type faultyFile struct {
	f         File
	failWrite atomic.Bool // every write fails with ENOSPC
	partial   atomic.Bool // ... after writing half the line
	failSync  atomic.Bool // every fsync fails with EIO
	// failIf, when set, fails the writes of lines it returns true for.
	failIf        func(line []byte) bool
	writes, syncs atomic.Int64
}

func (ff *faultyFile) Write(p []byte) (int, error) {
	if ff.failWrite.Load() || (ff.failIf != nil && ff.failIf(p)) {
		if ff.partial.Load() {
			n, _ := ff.f.Write(p[:len(p)/2])
			return n, syscall.ENOSPC
		}
		return 0, syscall.ENOSPC
	}
	ff.writes.Add(1)
	return ff.f.Write(p)
}

func (ff *faultyFile) Sync() error {
	if ff.failSync.Load() {
		return syscall.EIO
	}
	ff.syncs.Add(1)
	return ff.f.Sync()
}

func openFaulty(t *testing.T, path string, opts Options) (*Log, *faultyFile) {
	t.Helper()
	ff := &faultyFile{}
	opts.WrapFile = func(f File) File { ff.f = f; return ff }
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, ff
}

func verifyFile(t *testing.T, path string, key []byte) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := Verify(f, key)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	seq, head := l.Head()
	if seq != 1 || len(head) != 64 || len(l.Chain()) != 32 {
		t.Fatalf("head %d %q chain %q", seq, head, l.Chain())
	}
	if _, err := Open(path, Options{Key: testKey}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second writer: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "b.log"), Options{Key: []byte("short")}); err == nil {
		t.Fatal("a 5-byte HMAC key was taken")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(Record{Who: "local", Call: "C_Login"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// TestReopenContinuesChain: each reopen verifies the file, continues the
// sequence and the links with an audit.open record, and the head is the
// last line.
func TestReopenContinuesChain(t *testing.T) {
	path, lines := makeLog(t, 3, testKey)
	chain := ""
	for round := range 3 {
		l, err := Open(path, Options{Key: testKey})
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			chain = l.Chain()
		} else if l.Chain() != chain {
			t.Fatalf("chain id changed: %s, %s", chain, l.Chain())
		}
		seq, err := l.Append(Record{Who: "local", Call: "C_Logout", Phase: PhaseIntent})
		if err != nil || seq != uint64(len(lines)+round*3+2) {
			t.Fatalf("round %d: seq %d, %v", round, seq, err)
		}
		hseq, head := l.Head()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		all := readLines(t, path)
		last, _ := ParseRecord(bytes.TrimSuffix(all[len(all)-1], []byte("\n")))
		open, _ := ParseRecord(bytes.TrimSuffix(all[len(all)-3], []byte("\n")))
		if hseq != seq || last.Prev != head || last.Call != CallClose || open.Call != CallOpen {
			t.Fatalf("round %d: head %d %s; last %+v; open %+v", round, hseq, head, last, open)
		}
	}
	if n := verifyFile(t, path, testKey); n != len(lines)+9 {
		t.Fatalf("%d records", n)
	}
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("a keyed log opened without its key")
	}
}

// TestBrokenLogRefusesToOpen: fail closed at start, naming the record.
func TestBrokenLogRefusesToOpen(t *testing.T) {
	path, lines := makeLog(t, 4, nil)
	lines[2] = bytes.Replace(lines[2], []byte(`"rv":"CKR_OK"`), []byte(`"rv":"CKR_NO"`), 1)
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	_, err := Open(path, Options{RecoverTornTail: true})
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 3 || !strings.Contains(err.Error(), "record 3") {
		t.Fatalf("open of a log broken at record 3: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused open changed the file")
	}
}

// TestTornTail: a write cut short fails the log; the file then refuses to
// open, unless RecoverTornTail, which cuts the tail and says so.
func TestTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, ff := openFaulty(t, path, Options{})
	if _, err := l.Append(Record{Who: "local", Call: "C_Logout", Phase: PhaseIntent}); err != nil {
		t.Fatal(err)
	}
	ff.failWrite.Store(true)
	ff.partial.Store(true)
	if _, err := l.Append(Record{Who: "local", Call: "C_Logout", Phase: PhaseResult, Ref: 2}); err == nil {
		t.Fatal("a failed write was acknowledged")
	}
	ff.failWrite.Store(false)
	if _, err := l.Append(Record{Who: "local", Call: "C_Logout", Phase: PhaseIntent}); err == nil || l.Err() == nil {
		t.Fatalf("append after a failed write: %v", err)
	}
	l.Close()
	_, err := Open(path, Options{})
	var ce *ChainError
	if !errors.As(err, &ce) || !ce.Torn || ce.Seq != 3 {
		t.Fatalf("open of a torn log: %v", err)
	}
	l2, err := Open(path, Options{RecoverTornTail: true})
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	all := readLines(t, path)
	open, _ := ParseRecord(bytes.TrimSuffix(all[2], []byte("\n")))
	if len(all) != 4 || open.Call != CallOpen || open.Seq != 3 || !strings.Contains(open.Note, "torn") {
		t.Fatalf("after recovery: %q", all)
	}
	verifyFile(t, path, nil)
}

func TestSyncFailureFailsLog(t *testing.T) {
	l, ff := openFaulty(t, filepath.Join(t.TempDir(), "a.log"), Options{})
	ff.failSync.Store(true)
	if _, err := l.Append(Record{Who: "local", Call: "C_Logout"}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing fsync: %v", err)
	}
	ff.failSync.Store(false)
	if _, err := l.Append(Record{Who: "local", Call: "C_Logout"}); err == nil {
		t.Fatal("append after a failed fsync succeeded: a retried fsync proves nothing")
	}
}

func TestRecordTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, _ := openFaulty(t, path, Options{})
	big := make([]string, MaxLine/8)
	for i := range big {
		big[i] = "CKA_VALUE"
	}
	if _, err := l.Append(Record{Who: "local", Call: "C_CreateObject", Template: big}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge record: %v", err)
	}
	if _, err := l.Append(Record{Who: "local", Call: "C_Logout"}); err != nil || l.Err() != nil {
		t.Fatalf("a refused large record failed the log: %v", err)
	}
}

// TestConcurrentAppend: many writers, one chain with contiguous sequence
// numbers, and every Append returns a distinct seq; fsyncs are shared.
func TestConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, ff := openFaulty(t, path, Options{Key: testKey})
	const writers, each = 32, 40
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range each {
				seq, err := l.Append(Record{Who: "w", Call: "C_OpenSession", Slot: new(uint64(w))})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[seq] {
					t.Errorf("seq %d twice", seq)
				}
				seen[seq] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := verifyFile(t, path, testKey); n != writers*each+2 {
		t.Fatalf("%d records", n)
	}
	t.Logf("%d appends, %d fsyncs", ff.writes.Load(), ff.syncs.Load())
}

// BenchmarkAppend: one fsynced record per op, from parallel writers (group
// commit); the disk under the temporary directory sets the figure.
func BenchmarkAppend(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "a.log"), Options{Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	slot := uint64(3)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(Record{Who: "CN=bench", Call: "C_OpenSession", Phase: PhaseIntent, Slot: &slot}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
