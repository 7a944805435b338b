package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gateFile holds each Sync until released, and counts them.
type gateFile struct {
	File
	mu      sync.Mutex
	release chan error // one value per Sync to let through
	entered chan struct{}
	syncs   atomic.Int32
	writes  atomic.Int32
}

func (g *gateFile) Write(p []byte) (int, error) {
	g.writes.Add(1)
	return g.File.Write(p)
}

func (g *gateFile) Sync() error {
	g.entered <- struct{}{}
	err := <-g.release
	g.syncs.Add(1)
	if err != nil {
		return err
	}
	return g.File.Sync()
}

func openGated(t *testing.T) (*Log, *gateFile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.log")
	g := &gateFile{release: make(chan error, 8), entered: make(chan struct{}, 8)}
	g.release <- nil // the genesis record's fsync
	l, err := OpenWith(path, testKey, Options{WrapFile: func(f File) File { g.File = f; return g }})
	if err != nil {
		t.Fatal(err)
	}
	<-g.entered
	return l, g, path
}

func returned(ch <-chan error) (error, bool) {
	select {
	case err := <-ch:
		return err, true
	case <-time.After(100 * time.Millisecond):
		return nil, false
	}
}

// TestWriteDoesNotWaitForFsync: under SyncAlways a deferred record is
// queued, and Flush writes it, while another record's fsync is in flight;
// a durable record written after that fsync began is not answered by it
// but waits for an fsync of its own.
func TestWriteDoesNotWaitForFsync(t *testing.T) {
	l, g, path := openGated(t)
	a := make(chan error, 1)
	go func() { a <- l.Write(Entry{Type: TypeResponse, ID: "A", Path: "p", Status: 200}) }()
	<-g.entered // A's fsync has begun and is held
	d := make(chan error, 1)
	go func() { d <- l.Write(Entry{Type: TypeRequest, ID: "D", Path: "p", Deferred: true}) }()
	if err, done := returned(d); !done || err != nil {
		t.Fatalf("a deferred write waited for another record's fsync (returned %v, %v)", done, err)
	}
	fl := make(chan error, 1)
	go func() { fl <- l.Flush() }()
	if err, done := returned(fl); !done || err != nil {
		t.Fatalf("Flush waited for another record's fsync (returned %v, %v)", done, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte(`"id":"D"`)) {
		t.Fatal("Flush did not write the deferred record")
	}
	bch := make(chan error, 1)
	go func() { bch <- l.Write(Entry{Type: TypeResponse, ID: "B", Path: "p", Status: 200}) }()
	if _, done := returned(a); done {
		t.Fatal("A returned before its fsync ended")
	}
	g.release <- nil // A's fsync ends
	if err, done := returned(a); !done || err != nil {
		t.Fatalf("A: %v %v", done, err)
	}
	// B came while A's fsync ran: that fsync cannot cover it, it needs
	// another (B waits queued, and is written just before it).
	if _, done := returned(bch); done {
		t.Fatal("B returned on an fsync that began before it was written")
	}
	<-g.entered
	g.release <- nil
	if err, done := returned(bch); !done || err != nil {
		t.Fatalf("B: %v %v", done, err)
	}
	if n := g.syncs.Load(); n != 3 { // genesis, A, B
		t.Fatalf("%d fsyncs, want 3", n)
	}
	g.release <- nil // Close's
	l.Close()
	b, _ := os.ReadFile(path)
	if st, err := Verify(bytes.NewReader(b)); err != nil || st.Records != 4 {
		t.Fatalf("%+v %v", st, err)
	}
}

// TestFsyncFailureFailsClosed: the writers waiting on a failed fsync get
// the error, and so does every later Write, deferred or not.
func TestFsyncFailureFailsClosed(t *testing.T) {
	l, g, _ := openGated(t)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() { errs <- l.Write(Entry{Type: TypeResponse, Path: "p", Status: 200}) }()
	}
	<-g.entered
	time.Sleep(20 * time.Millisecond) // let the others queue behind it
	g.release <- errors.New("EIO")
	for i := 0; i < 4; i++ {
		err := <-errs
		if err == nil {
			// Only a record covered by an fsync that succeeded may pass;
			// none did.
			t.Fatal("a durable write returned nil after its fsync failed")
		}
		select {
		case <-g.entered: // a later fsync attempt must not happen
			t.Fatal("fsync retried after a failure")
		default:
		}
	}
	if l.Err() == nil {
		t.Fatal("the log did not fail")
	}
	if err := l.Write(Entry{Type: TypeRequest, Path: "p", Deferred: true}); err == nil {
		t.Fatal("a failed log accepted a deferred record")
	}
	g.release <- nil
	l.Close()
}

// TestGroupCommitConcurrent: many concurrent durable writers share
// fsyncs, all records land in order in a valid chain.
func TestGroupCommitConcurrent(t *testing.T) {
	n := 0
	var mu sync.Mutex
	path := filepath.Join(t.TempDir(), "gw.log")
	l, err := OpenWith(path, testKey, Options{WrapFile: func(f File) File {
		return countSyncLocked{f, &n, &mu}
	}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	const writers, each = 16, 50
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := l.Write(Entry{Type: TypeRequest, Path: "p", Body: []byte(`{"plaintext":"aGk="}`), Deferred: i%2 == 0}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	b, _ := os.ReadFile(path)
	if st, err := Verify(bytes.NewReader(b)); err != nil || st.Records != 1+writers*each {
		t.Fatalf("%+v %v", st, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n > 1+writers*each/2+1 {
		t.Fatalf("%d fsyncs for %d durable records", n, writers*each/2)
	}
}

type countSyncLocked struct {
	File
	n  *int
	mu *sync.Mutex
}

func (c countSyncLocked) Sync() error {
	c.mu.Lock()
	*c.n++
	c.mu.Unlock()
	return c.File.Sync()
}

// TestAuthHashesReused: an Auth's HMACs are made once and reused, but
// never across logs with other keys or after its members change.
func TestAuthHashesReused(t *testing.T) {
	dir := t.TempDir()
	key2 := bytes.Repeat([]byte{9}, 32)
	l1, err := Open(filepath.Join(dir, "a.log"), testKey)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := Open(filepath.Join(dir, "b.log"), key2)
	if err != nil {
		t.Fatal(err)
	}
	a := &Auth{ClientToken: "hvs.one", Accessor: "acc1"}
	for _, l := range []*Log{l1, l1, l2} {
		if err := l.Write(Entry{Type: TypeRequest, Path: "p", Auth: a}); err != nil {
			t.Fatal(err)
		}
	}
	a.ClientToken = "hvs.two"
	l1.Write(Entry{Type: TypeRequest, Path: "p", Auth: a})
	l1.Close()
	l2.Close()
	b1, _ := os.ReadFile(filepath.Join(dir, "a.log"))
	b2, _ := os.ReadFile(filepath.Join(dir, "b.log"))
	if n := bytes.Count(b1, []byte(HashValue(testKey, "hvs.one"))); n != 2 {
		t.Fatalf("token HMAC under key 1 %d times, want 2", n)
	}
	if !bytes.Contains(b1, []byte(HashValue(testKey, "hvs.two"))) {
		t.Fatal("a changed token was recorded with the old HMAC")
	}
	if !bytes.Contains(b2, []byte(HashValue(key2, "hvs.one"))) || !bytes.Contains(b2, []byte(HashValue(key2, "acc1"))) {
		t.Fatal("the second log did not HMAC under its own key")
	}
}

// TestDurableGroupDuringFsync: the durable records that arrive while an
// fsync is in flight share one write and one fsync after it.
func TestDurableGroupDuringFsync(t *testing.T) {
	l, g, path := openGated(t)
	a := make(chan error, 1)
	go func() { a <- l.Write(Entry{Type: TypeResponse, ID: "A", Path: "p", Status: 200}) }()
	<-g.entered
	const n = 6
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- l.Write(Entry{Type: TypeResponse, Path: "p", Status: 200}) }()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if seq, _ := l.Head(); seq == 2+n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writers did not queue")
		}
	}
	if _, done := returned(errs); done {
		t.Fatal("a durable write returned during an fsync that began before it")
	}
	w0 := g.writes.Load()
	g.release <- nil // A's fsync ends; one of the group starts the next
	if err := <-a; err != nil {
		t.Fatal(err)
	}
	<-g.entered
	g.release <- nil
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if w := g.writes.Load() - w0; w != 1 {
		t.Fatalf("%d writes for the group, want 1", w)
	}
	if s := g.syncs.Load(); s != 3 { // genesis, A, the group
		t.Fatalf("%d fsyncs, want 3", s)
	}
	g.release <- nil
	l.Close()
	b, _ := os.ReadFile(path)
	if st, err := Verify(bytes.NewReader(b)); err != nil || st.Records != 2+n {
		t.Fatalf("%+v %v", st, err)
	}
}
