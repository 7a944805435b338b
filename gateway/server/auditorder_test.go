package server

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/gateway/audit"
)

// probeFile runs probe on every write to the audit log, with the bytes
// written.
type probeFile struct {
	audit.File
	probe func(p []byte) error
}

func (f probeFile) Write(p []byte) (int, error) {
	if err := f.probe(p); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

// TestUpsertRecordsBeforeCreating: encrypt is a pure route (its request
// record only queued), but encrypting with a missing key creates the key:
// the request record must reach the file before the key exists, and if it
// cannot, the key is never made.
func TestUpsertRecordsBeforeCreating(t *testing.T) {
	var mu sync.Mutex
	var g *testGW
	var existed []bool // per write carrying the upsert's request record
	fail := false
	g = newGW(t, gwOpts{auditWrap: func(f audit.File) audit.File {
		return probeFile{f, func(p []byte) error {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return errors.New("disk full")
			}
			if g != nil && bytes.Contains(p, []byte(`"type":"request"`)) && bytes.Contains(p, []byte(`"path":"transit/encrypt/up"`)) {
				_, err := g.s.mountList()[0].engine.ReadKey(t.Context(), "up")
				existed = append(existed, err == nil)
			}
			return nil
		}}
	}})
	st, body, _ := g.do(t, "POST", "/v1/transit/encrypt/up", g.root, []byte(`{"plaintext":"aGk="}`))
	if st != 200 {
		t.Fatalf("upsert: %d %v", st, body)
	}
	mu.Lock()
	got := append([]bool(nil), existed...)
	mu.Unlock()
	if len(got) != 1 || got[0] {
		t.Fatalf("writes carrying the request record, and whether the key existed then: %v (want [false])", got)
	}

	// The log fails between the queued request record and the upsert:
	// the key is never made, and the answer is a 500.
	mu.Lock()
	fail = true
	mu.Unlock()
	st, body, _ = g.do(t, "POST", "/v1/transit/encrypt/up2", g.root, []byte(`{"plaintext":"aGk="}`))
	if st != 500 || !strings.Contains(errorsOf(body), "audit") {
		t.Fatalf("with a failed log: %d %v", st, body)
	}
	if _, err := g.s.mountList()[0].engine.ReadKey(t.Context(), "up2"); err == nil {
		t.Fatal("an upsert whose request record could not be written created its key")
	}
}
