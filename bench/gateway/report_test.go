package gateway

import (
	"bytes"
	"os"
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

// TestFloorLines: each CPU target is set against http-floor's CPU per
// request, with what each gohsm spends beyond it; the floor is no gohsm
// column of the target table.
func TestFloorLines(t *testing.T) {
	enc := Ops[0].Name
	cell := func(target string, cpu time.Duration) *Result {
		return &Result{Target: target, Op: enc, Batch: 1, Requests: 1000, ReqPerSec: 20000, ItemsPerSec: 20000, ServerCPU: cpu * 1000}
	}
	r := &Report{
		Targets: []*Target{{Name: "gohsm-sync-none"}, {Name: "openbao"}, {Name: FloorName}},
		Results: []*Result{cell("gohsm-sync-none", 44*time.Microsecond), cell("openbao", 320*time.Microsecond),
			cell(FloorName, 19*time.Microsecond)},
	}
	var md bytes.Buffer
	r.Markdown(&md)
	out := md.String()
	want := "- encrypt 64 B (aes256-gcm96), batch 1: HTTP alone costs 19 µs of server CPU per request (at 20.0k requests/s); " +
		"10x less than OpenBao's 320 µs is 32 µs, which leaves 13 µs for all that Transit does beyond HTTP (`gohsm-sync-none` spends 25 µs)."
	if !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}
	if !strings.Contains(out, "| gohsm vs OpenBao | required | `gohsm-sync-none` |\n") {
		t.Errorf("the target table's columns are not gohsm's alone:\n%s", out)
	}
}

// The floor answers one result per item, of the field the operation has.
func TestFloorBody(t *testing.T) {
	for _, op := range Ops {
		for _, batch := range []int{1, 3} {
			path := []byte("/v1/transit/" + op.Path)
			if err := check(op, batch, 200, floorBody(path, op.body(batch))); err != nil {
				t.Errorf("%s batch %d: %v", op.Key, batch, err)
			}
		}
	}
}

// TestCeilingLines: the sign CPU budget is net of the signature, and each
// sign throughput target is set against what the cores can sign at the
// run's smaller sign cost, with HTTP alone added at batch 1.
func TestCeilingLines(t *testing.T) {
	sign := Ops[1].Name
	cell := func(target string, batch int, reqs float64, cpu, load time.Duration) *Result {
		return &Result{Target: target, Op: sign, Batch: batch, Requests: 1000, ReqPerSec: reqs, ItemsPerSec: reqs * float64(batch),
			ServerCPU: cpu * 1000, LoadCPU: load * 1000}
	}
	r := &Report{
		Cores:      2,
		SignCosts:  []time.Duration{40 * time.Microsecond, 25 * time.Microsecond},
		WriteCosts: []time.Duration{6 * time.Microsecond, 4 * time.Microsecond},
		Targets:    []*Target{{Name: "gohsm-sync-none"}, {Name: "openbao"}, {Name: FloorName}},
		Results: []*Result{
			cell("gohsm-sync-none", 1, 12000, 80*time.Microsecond, 30*time.Microsecond),
			cell("openbao", 1, 4000, 300*time.Microsecond, 60*time.Microsecond),
			cell(FloorName, 1, 36000, 20*time.Microsecond, 5*time.Microsecond),
			cell("gohsm-sync-none", 100, 300, 4*time.Millisecond, 200*time.Microsecond),
			cell("openbao", 100, 300, 6*time.Millisecond, 300*time.Microsecond),
			cell(FloorName, 100, 8000, 100*time.Microsecond, 100*time.Microsecond),
		},
	}
	var md bytes.Buffer
	r.Markdown(&md)
	out := md.String()
	for _, want := range []string{
		// 300/5 = 60 µs budget; HTTP 20 + audit write 4 + signature 25 (the smaller ones) = 49.
		"HTTP alone costs 20 µs of server CPU per request (at 36.0k requests/s), writing its audit records alone 4 µs (one write(2) of 1500 bytes) and the signature alone 25 µs; 5x less than OpenBao's 300 µs is 60 µs, which leaves 11 µs for all that Transit does beyond HTTP, the audit write and the signature (`gohsm-sync-none` spends 31 µs).",
		"(one write(2) of 1500 bytes, about what gohsm writes per batch-1 request, timed in the server's temporary directory on one core's thread CPU clock, best of five rounds; 6 µs and 4 µs at the run's start and end, the smaller kept):",
		// 2 cores / (25 + 20 + 5 µs) = 40k requests/s against 3 x 4000.
		"batch 1: a request costs at least 50 µs of CPU (1 signature at 25 µs, plus HTTP alone (20 µs of server and 5 µs of load generator CPU)), so 2 logical CPUs serve at most 40.0k requests/s with nothing else running; 3x OpenBao's 4000 is 12.0k: within reach.",
		// 2 cores / (100 x 25 + 100 + 100 µs) x 100 = 74k items/s against 3 x 30k.
		"so 2 logical CPUs serve at most 74.1k items/s with nothing else running; 3x OpenBao's 30.0k is 90.0k: out of reach on this machine: the ceiling is 2.47x OpenBao.",
		"costs 25 µs of one core's CPU (thread CPU clock, best of five rounds; 40 µs and 25 µs at the run's start and end, the smaller kept)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The figures: sign 233 µs / 5 = 46.6 µs against 49 µs here;
	// 41,768 x 3 items/s against a 74.1k ceiling.
	for _, want := range []string{
		"By the issue's figure for OpenBao (233 µs per request), 5x less is 47 µs, less than HTTP, the audit write and the signature alone: out of reach on this machine.",
		"By the issue's figure for OpenBao (41.8k items/s), 3x is 125k: out of reach on this machine: the ceiling is 1.77x OpenBao.",
		"By the issue's figure for OpenBao (6850 requests/s), 3x is 20.6k: within reach.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// A budget below HTTP and the signature says so instead of a negative.
	r.Results[1] = cell("openbao", 1, 4000, 200*time.Microsecond, 60*time.Microsecond)
	md.Reset()
	r.Markdown(&md)
	if want := "5x less than OpenBao's 200 µs is 40 µs, less than HTTP, the audit write and the signature alone: out of reach on this machine"; !strings.Contains(md.String(), want) {
		t.Errorf("report lacks %q", want)
	}
	if t.Failed() {
		t.Log(out)
	}
}

// SignCost times real signatures: a positive figure, well under the
// window.
func TestSignCost(t *testing.T) {
	c, err := SignCost(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if c <= 0 || c > 50*time.Millisecond {
		t.Fatalf("sign cost %v", c)
	}
}

// WriteCost times real appends: a positive figure, and no file is left.
func TestWriteCost(t *testing.T) {
	dir := t.TempDir()
	c, err := WriteCost(dir, AuditRecordBytes, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if c <= 0 || c > 50*time.Millisecond {
		t.Fatalf("write cost %v", c)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left %v", left)
	}
}
