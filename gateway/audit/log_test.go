package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{7}, 32)

func TestWriteVerifyAndSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.log")
	l, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	secret := "c2VjcmV0IHBsYWludGV4dA==" // the plaintext as sent
	body := `{"plaintext":"` + secret + `","context":"Y3R4","type":"aes256-gcm96","batch_input":[{"plaintext":"aXRlbTE=","reference":"r1"}],"key_version":3}`
	if err := l.Write(Entry{Type: TypeRequest, ID: "1", Operation: "update", Path: "transit/encrypt/k",
		Auth: &Auth{ClientToken: "hvs.SECRETTOKEN", Accessor: "ACC123", DisplayName: "token-x", Policies: []string{"enc"}}, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Entry{Type: TypeResponse, ID: "1", Path: "transit/encrypt/k", Status: 200,
		Data: map[string]any{"ciphertext": "vault:v1:abcd", "key_version": 1}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Entry{Type: TypeRequest, ID: "2", Path: "transit/encrypt/k", Body: []byte(`{not json ` + secret)}); err != nil {
		t.Fatal(err)
	}
	seq, head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, leak := range []string{secret, "aXRlbTE=", "Y3R4", "hvs.SECRETTOKEN", "ACC123", "vault:v1:abcd", `"r1"`} {
		if bytes.Contains(b, []byte(leak)) {
			t.Errorf("log holds %q:\n%s", leak, b)
		}
	}
	for _, want := range []string{`"type":"aes256-gcm96"`, `"key_version":3`, `"policies":["enc"]`, HashValue(testKey, secret), `"body_bytes":`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("log lacks %s:\n%s", want, b)
		}
	}
	st, err := Verify(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != seq || st.Head != head || seq != 4 {
		t.Fatalf("verify %+v, head %d %s", st, seq, head)
	}
	if !IsGatewayLog(b[:bytes.IndexByte(b, '\n')]) {
		t.Fatal("not recognised")
	}

	// Reopen: the chain continues with an open record.
	l, err = Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(Entry{Type: TypeRequest, Path: "sys/health"})
	l.Close()
	b, _ = os.ReadFile(path)
	if st, err := Verify(bytes.NewReader(b)); err != nil || st.Records != 6 {
		t.Fatalf("after reopen: %+v %v", st, err)
	}
	// Another key is refused.
	if _, err := Open(path, bytes.Repeat([]byte{8}, 32)); err == nil {
		t.Fatal("opened under another key")
	}
}

func TestVerifyNamesFirstBrokenRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.log")
	l, _ := Open(path, testKey)
	for i := 0; i < 5; i++ {
		l.Write(Entry{Type: TypeRequest, Path: "transit/keys/k", Body: []byte(`{"type":"ed25519"}`)})
	}
	l.Close()
	orig, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(orig), "\n")
	cases := map[string]struct {
		edit func([]string) []string
		line int
	}{
		"changed": {func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], "ed25519", "rsa-2048", 1)
			return ls
		}, 4},
		"removed": {func(ls []string) []string { return append(ls[:2:2], ls[3:]...) }, 3},
		"swapped": {func(ls []string) []string { ls[2], ls[3] = ls[3], ls[2]; return ls }, 3},
		"torn":    {func(ls []string) []string { ls[len(ls)-2] = ls[len(ls)-2][:20]; return ls[:len(ls)-1] }, 6},
	}
	for name, c := range cases {
		ls := c.edit(append([]string(nil), lines...))
		_, err := Verify(strings.NewReader(strings.Join(ls, "")))
		var be *BrokenError
		if !errors.As(err, &be) || be.Line != c.line {
			t.Errorf("%s: %v, want line %d", name, err, c.line)
		}
	}
	// A torn tail is cut at open, and noted.
	os.WriteFile(path, orig[:len(orig)-10], 0o600)
	l, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, _ := os.ReadFile(path)
	if _, err := Verify(bytes.NewReader(b)); err != nil || !bytes.Contains(b, []byte("torn")) {
		t.Fatalf("%v\n%s", err, b)
	}
}

type failFile struct {
	File
	fail bool
}

func (f *failFile) Write(p []byte) (int, error) {
	if f.fail {
		return 0, errors.New("disk full")
	}
	return f.File.Write(p)
}

func TestFailClosedAndGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.log")
	ff := &failFile{}
	l, err := OpenWith(path, testKey, Options{WrapFile: func(f File) File { ff.File = f; return ff }})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Write(Entry{Type: TypeRequest, Path: "transit/encrypt/k"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	ff.fail = true
	if err := l.Write(Entry{Type: TypeRequest, Path: "x"}); err == nil {
		t.Fatal("write succeeded on a failing file")
	}
	ff.fail = false
	if err := l.Write(Entry{Type: TypeRequest, Path: "x"}); err == nil || l.Err() == nil {
		t.Fatal("a failed log accepted a record")
	}
	l.Close()
	b, _ := os.ReadFile(path)
	if st, err := Verify(bytes.NewReader(b)); err != nil || st.Records != 51 {
		t.Fatalf("%+v %v", st, err)
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, mode := range []SyncMode{SyncAlways, SyncNone} {
		b.Run([]string{"always", "interval", "none"}[mode], func(b *testing.B) {
			l, _ := OpenWith(filepath.Join(b.TempDir(), "gw.log"), testKey, Options{Sync: mode})
			defer l.Close()
			body := []byte(`{"plaintext":"aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ="}`)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Write(Entry{Type: TypeRequest, Path: "transit/encrypt/k", Body: body})
				}
			})
		})
	}
}

func FuzzVerify(f *testing.F) {
	path := filepath.Join(f.TempDir(), "seed.log")
	l, _ := Open(path, testKey)
	l.Write(Entry{Type: TypeRequest, Path: "transit/encrypt/k", Body: []byte(`{"plaintext":"aGk="}`)})
	l.Close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add([]byte(`{"seq":1}` + "\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Verify(bytes.NewReader(b))
		if err == nil && (st.Records == 0 || st.End != int64(len(b))) {
			t.Fatalf("accepted %q as %+v", b, st)
		}
	})
}

type countSync struct {
	File
	n *int
}

func (c countSync) Sync() error { *c.n++; return c.File.Sync() }

// countWrite counts a File's writes.
type countWrite struct {
	File
	n *int
}

func (c countWrite) Write(p []byte) (int, error) { *c.n++; return c.File.Write(p) }

// TestDeferredSharesWriteAndFsync: a deferred record is only queued; the
// next durable record carries it in the same write and fsync, in order.
func TestDeferredSharesWriteAndFsync(t *testing.T) {
	syncs, writes := 0, 0
	path := filepath.Join(t.TempDir(), "gw.log")
	l, err := OpenWith(path, testKey, Options{WrapFile: func(f File) File { return countWrite{countSync{f, &syncs}, &writes} }})
	if err != nil {
		t.Fatal(err)
	}
	s0, w0 := syncs, writes
	if err := l.Write(Entry{Type: TypeRequest, ID: "R", Path: "transit/encrypt/k", Deferred: true}); err != nil {
		t.Fatal(err)
	}
	if syncs != s0 || writes != w0 {
		t.Fatalf("a deferred record cost %d writes and %d fsyncs on its own, want none", writes-w0, syncs-s0)
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(`"seq":2`)) {
		t.Fatal("a deferred record was written before a record followed it")
	}
	if err := l.Write(Entry{Type: TypeResponse, ID: "R", Path: "transit/encrypt/k", Status: 200}); err != nil {
		t.Fatal(err)
	}
	if syncs != s0+1 || writes != w0+1 {
		t.Fatalf("request and response: %d writes and %d fsyncs, want 1 and 1", writes-w0, syncs-s0)
	}
	b, _ := os.ReadFile(path)
	req, resp := bytes.Index(b, []byte(`"seq":2,`)), bytes.Index(b, []byte(`"seq":3,`))
	if req < 0 || resp < 0 || req > resp {
		t.Fatalf("records out of order or missing (request at %d, response at %d)", req, resp)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := Verify(bytes.NewReader(mustRead(t, path))); err != nil || st.Records != 3 {
		t.Fatalf("%+v %v", st, err)
	}
}

// TestFlushAndCloseWriteDeferred: Flush (before a change) and Close write
// what is queued; nothing deferred is lost.
func TestFlushAndCloseWriteDeferred(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.log")
	l, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(Entry{Type: TypeRequest, ID: "F", Path: "transit/encrypt/new", Deferred: true})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(mustRead(t, path), []byte(`"id":"F"`)) {
		t.Fatal("Flush did not write the queued record")
	}
	l.Write(Entry{Type: TypeRequest, ID: "C", Path: "transit/encrypt/k", Deferred: true})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b := mustRead(t, path)
	if !bytes.Contains(b, []byte(`"id":"C"`)) {
		t.Fatal("Close lost a queued record")
	}
	if st, err := Verify(bytes.NewReader(b)); err != nil || st.Records != 3 {
		t.Fatalf("%+v %v", st, err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealedAuth: a sealed Auth (one per API token, reused) records the
// same auth member as a fresh one, and holds no secret.
func TestSealedAuth(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, a func(l *Log) *Auth) []byte {
		l, err := OpenWith(filepath.Join(dir, name), testKey, Options{Sync: SyncNone})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := l.Write(Entry{Type: TypeRequest, ID: "1", Path: "p", Auth: a(l), Time: time.Unix(1, 0)}); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return b
	}
	fresh := func(*Log) *Auth {
		return &Auth{ClientToken: "hvs.SECRET", Accessor: "ACC", DisplayName: "d", Policies: []string{"p"}, TokenType: "service"}
	}
	var sealed *Auth
	reuse := func(l *Log) *Auth {
		if sealed == nil {
			sealed = l.Seal(fresh(l))
		}
		return sealed
	}
	authOf := func(b []byte) []string {
		var out []string
		for _, line := range bytes.Split(b, []byte("\n")) {
			if i := bytes.Index(line, []byte(`"auth":{`)); i >= 0 {
				out = append(out, string(line[i:bytes.IndexByte(line[i:], '}')+i]))
			}
		}
		return out
	}
	a, b := authOf(write("fresh.log", fresh)), authOf(write("sealed.log", reuse))
	if len(a) != 2 || len(b) != 2 || a[0] != b[0] || b[0] != b[1] {
		t.Fatalf("fresh %q\nsealed %q", a, b)
	}
	if !strings.Contains(a[0], HashValue(testKey, "hvs.SECRET")) || !strings.Contains(a[0], HashValue(testKey, "ACC")) {
		t.Fatalf("auth %s lacks the HMACs", a[0])
	}
	if sealed.ClientToken != "" {
		t.Fatal("a sealed Auth keeps the secret")
	}
}
