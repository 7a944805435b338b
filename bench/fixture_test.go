package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceMarked(t *testing.T) {
	p := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(p, []byte("# doc\n\n<!-- x:begin -->\nold\n<!-- x:end -->\n\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceMarked(p, "x", "new\ntable\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "# doc\n\n<!-- x:begin -->\nnew\ntable\n<!-- x:end -->\n\ntail\n" {
		t.Fatalf("got %q", b)
	}
	// No markers: appended with them, and replaced in place the next time.
	q := filepath.Join(t.TempDir(), "other.md")
	os.WriteFile(q, []byte("text"), 0o644)
	ReplaceMarked(q, "x", "one\n")
	ReplaceMarked(q, "x", "two\n")
	b, _ = os.ReadFile(q)
	if string(b) != "text\n\n<!-- x:begin -->\ntwo\n<!-- x:end -->\n" {
		t.Fatalf("got %q", b)
	}
}

func TestFixtureMarkdown(t *testing.T) {
	rep := &FixtureReport{Date: "2026-01-01", CPU: "cpu", Cores: 2, GoVersion: "go1.26", Repeats: 3, Commands: "make bench-fixture",
		Routes: []*FixtureRoute{
			{Title: "gohsm", Steps: []string{"up", "sign"}, Runs: [][]float64{{0.04, 0.05}, {0.05, 0.05}, {0.2, 0.9}}, commands: func() []string { return []string{"a"} }},
			{Title: "x", Steps: []string{"s"}, Runs: [][]float64{{0.1}, {0.1}, {0.1}}, commands: func() []string { return nil }},
			{Title: "softhsm", Steps: []string{"s"}, Runs: [][]float64{{0.05}, {0.05}, {0.05}}, commands: func() []string { return []string{"b"} }},
		}}
	md := rep.Markdown()
	for _, want := range []string{"| gohsm | **100 ms** | 90 ms – 1.10 s | up 50 ms; sign 50 ms |", "NOT met (slowest of the 3 runs: 1.10 s)", "in 2.00x SoftHSMv2's time"} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
}
