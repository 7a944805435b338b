package server

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gohsm/gohsm/gateway/audit"
)

// The typed audit redaction of the hot responses (auditdata.go) against
// the redaction of their JSON: the same data member, byte for byte, or a
// decline (then the record takes the JSON path).

func auditDataPair(t *testing.T, l *audit.Log, path string, v any) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1, 0)
	for _, e := range []audit.Entry{
		{Body: body, Data: hotData{v}}, // typed, the JSON if it declines
		{Body: body},                   // the JSON's redaction
		{Data: hotData{v}},             // typed only: "null" if it declines
	} {
		e.Type, e.ID, e.Path, e.Time = audit.TypeResponse, "x", "p", at
		if err := l.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	data := func(line []byte) []byte {
		i, j := bytes.Index(line, []byte(`,"data":`)), bytes.Index(line, []byte(`,"prev":`))
		if i < 0 || j < i {
			t.Fatalf("no data member in %s", line)
		}
		return line[i:j]
	}
	n := len(lines)
	typed, viaJSON, only := data(lines[n-3]), data(lines[n-2]), data(lines[n-1])
	if !bytes.Equal(typed, viaJSON) {
		t.Fatalf("%T:\ntyped %s\njson  %s", v, typed, viaJSON)
	}
	// The typed path declines only for invalid UTF-8.
	if validStrings(v) && !bytes.Equal(only, viaJSON) {
		t.Fatalf("%T: typed alone %s, want %s", v, only, viaJSON)
	}
}

// validStrings: json.Marshal replaced nothing (re-encoding gives the same).
func validStrings(v any) bool {
	b, _ := json.Marshal(v)
	return !bytes.Contains(b, []byte(`\ufffd`))
}

func newDiffLog(t *testing.T) (*audit.Log, string) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := audit.OpenWith(path, auditKey, audit.Options{Sync: audit.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func TestAuditDataDifferential(t *testing.T) {
	l, path := newDiffLog(t)
	for _, s := range []struct{ a, b, c string }{
		{"vault:v1:AAAA", "ref", "an error"}, {"", "", ""}, {"<a&b>", "\"q\"\\", "\n\r\t\b\f\x00\x1f\x7f"},
		{"\u2028\u2029é", "\xff\xfe", "日本"}, {"a\xc3", "\xed\xa0\x80", "\U0001F600"},
	} {
		for _, v := range hotResponses(s.a, s.b, s.c, 3, true) {
			auditDataPair(t, l, path, v)
		}
	}
}

func FuzzAuditDataDifferential(f *testing.F) {
	f.Add("vault:v1:AAAA", "ref", "err", 1, true)
	f.Add("<&>", "\u2028", "\xff", -7, false)
	f.Fuzz(func(t *testing.T, a, b, c string, n int, valid bool) {
		l, path := newDiffLog(t)
		for _, v := range hotResponses(a, b, c, n, valid) {
			auditDataPair(t, l, path, v)
		}
	})
}
