package gateway

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestTargetTablePerVariant: each gohsm audit policy gets its own target
// column against openbao, and the like-for-like table uses openbao-audit.
func TestTargetTablePerVariant(t *testing.T) {
	enc := Ops[0].Name
	cell := func(target string, reqs float64, cpu time.Duration, half time.Duration) *Result {
		return &Result{Target: target, Op: enc, Batch: 1, Requests: 1000, ReqPerSec: reqs, ItemsPerSec: reqs,
			ServerCPU: cpu * 1000, HalfP99: half}
	}
	r := &Report{
		Targets: []*Target{{Name: "gohsm"}, {Name: "gohsm-sync-none"}, {Name: "openbao"}, {Name: "openbao-audit"}},
		Results: []*Result{
			cell("gohsm", 15000, 60*time.Microsecond, 8*time.Millisecond),
			cell("gohsm-sync-none", 30000, 30*time.Microsecond, 3*time.Millisecond),
			cell("openbao", 5000, 300*time.Microsecond, 10*time.Millisecond),
			cell("openbao-audit", 3000, 600*time.Microsecond, 20*time.Millisecond),
		},
	}
	var md bytes.Buffer
	r.Markdown(&md)
	out := md.String()
	for _, want := range []string{
		"| gohsm vs OpenBao | required | `gohsm` | `gohsm-sync-none` |",
		"| requests/s | ≥ 4x | 3.00x not met | 6.00x **met** |",
		"| less server CPU per request | ≥ 10x | 5.00x not met | 10.00x **met** |",
		"| p99 at half peak | < 5 ms | 8.00 ms not met | 3.00 ms **met** |",
		"| requests/s | 5.00x | 10.00x |",
		"| less server CPU per request | 10.00x | 20.00x |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}
