package bench

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	return &Report{
		Meta: Meta{Version: ReportVersion, Mode: "quick", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			CPU: "test cpu", NumCPU: 2, GOMAXPROCS: 2, Threads: []int{1, 2}, DurationMs: 300, Repeats: 1,
			FindObjects: 10000, KeyStorage: "token", LoadStart: "0.10 0.20 0.30", LoadEnd: "0.40 0.50 0.60"},
		Modules: []ModuleInfo{{Name: "gohsm", Path: "/x/libgohsm.so", Manufacturer: "gohsm"}, {Name: "softhsm2", Path: "/y/libsofthsm2.so"}},
		Ops:     []Op{*opByName("ecdsa-p256-sign"), *opByName("aes256-gcm-enc-64"), *opByName("find-label"), *opByName("sm2-sign")},
		Checks: []Check{
			{Target: "gohsm", Op: "ecdsa-p256-sign", Status: StatusOK},
			{Target: "softhsm2", Op: "sm2-sign", Status: StatusSkip, Detail: "module does not list CKM_SM3_SM2"},
		},
		Results: []Result{
			{Target: "gohsm", Op: "ecdsa-p256-sign", Threads: 1, OpsPerSec: 3000, Runs: []float64{3000}, Count: 900, P50Ns: 300000, P99Ns: 900000},
			{Target: "softhsm2", Op: "ecdsa-p256-sign", Threads: 1, OpsPerSec: 2000, Runs: []float64{2000}, Count: 600, P50Ns: 500000, P99Ns: 1500000},
			{Target: "gohsm", Op: "ecdsa-p256-sign", Threads: 2, OpsPerSec: 3000, Count: 900},
			{Target: "softhsm2", Op: "ecdsa-p256-sign", Threads: 2, OpsPerSec: 2000, Count: 600},
			{Target: "raw", Op: "ecdsa-p256-sign", Threads: 1, OpsPerSec: 6000, Count: 1800},
			{Target: "gohsm", Op: "aes256-gcm-enc-64", Threads: 1, OpsPerSec: 500000, Count: 1},
			{Target: "softhsm2", Op: "aes256-gcm-enc-64", Threads: 1, OpsPerSec: 100000, Count: 1},
			{Target: "gohsm", Op: "aes256-gcm-enc-64", Threads: 2, OpsPerSec: 500000, Count: 1},
			{Target: "softhsm2", Op: "aes256-gcm-enc-64", Threads: 2, Error: "pkcs11: 0x30: CKR_DEVICE_ERROR"},
			{Target: "gohsm", Op: "find-label", Threads: 1, OpsPerSec: 100000, Count: 1},
			{Target: "softhsm2", Op: "find-label", Threads: 1, OpsPerSec: 20, Count: 1},
			{Target: "gohsm", Op: "sm2-sign", Threads: 1, OpsPerSec: 40000, Count: 1},
		},
	}
}

func TestRatios(t *testing.T) {
	r := sampleReport()
	got := r.Ratios("gohsm", "softhsm2")
	want := []Ratio{
		{Op: "ecdsa-p256-sign", Threads: 1, A: 3000, B: 2000, Ratio: 1.5},
		{Op: "ecdsa-p256-sign", Threads: 2, A: 3000, B: 2000, Ratio: 1.5},
		{Op: "aes256-gcm-enc-64", Threads: 1, A: 500000, B: 100000, Ratio: 5},
		// t=2 AES: B errored, so no ratio; sm2: no B at all.
		{Op: "find-label", Threads: 1, A: 100000, B: 20, Ratio: 5000},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Ratios:\n got %+v\nwant %+v", got, want)
	}
	if rr := r.Ratios("softhsm2", "gohsm"); rr[0].Ratio != 2000.0/3000 {
		t.Errorf("reverse ratio %v", rr[0].Ratio)
	}
}

func TestEvaluateGoals(t *testing.T) {
	r := sampleReport()
	byKey := map[string]GoalResult{}
	for _, g := range r.EvaluateGoals(Goals, "gohsm", "softhsm2") {
		byKey[g.Goal.Op+"/"+string(rune('0'+g.Threads))] = g
	}
	for k, want := range map[string]string{
		"ecdsa-p256-sign/1":    GoalMet,    // 1.5 >= 1.4
		"ecdsa-p256-sign/2":    GoalNotMet, // 1.5 < 2
		"aes256-gcm-enc-64/1":  GoalMet,    // 5 >= 4
		"aes256-gcm-enc-64/2":  GoalNoData, // reference errored
		"rsa2048-pkcs1-sign/1": GoalNoData,
		"find-label/1":         GoalMet,
		"find-label/2":         GoalNoData, // a Threads 0 goal expands to every count run
	} {
		if got := byKey[k].Status; got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
}

// Goals whose Ref is raw compare A with the raw target, ignore module B,
// and leave the module-vs-module goals as they were.
func TestEvaluateGoalsAgainstRaw(t *testing.T) {
	r := sampleReport()
	r.Results = append(r.Results,
		Result{Target: "gohsm", Op: "ed25519-sign", Threads: 1, OpsPerSec: 8000},
		Result{Target: "raw", Op: "ed25519-sign", Threads: 1, OpsPerSec: 10000},
		// B is faster than A here; a raw goal must not look at it.
		Result{Target: "softhsm2", Op: "ed25519-sign", Threads: 1, OpsPerSec: 1e6},
		Result{Target: "gohsm", Op: "ed25519-sign", Threads: 2, OpsPerSec: 15990},
		Result{Target: "raw", Op: "ed25519-sign", Threads: 2, OpsPerSec: 20000},
		Result{Target: "gohsm", Op: "mldsa65-sign", Threads: 1, OpsPerSec: 900},
		Result{Target: "raw", Op: "mldsa65-sign", Threads: 1, Error: "boom"},
		Result{Target: "gohsm", Op: "mlkem768-encaps", Threads: 1, OpsPerSec: 30000},
		Result{Target: "raw", Op: "mlkem768-encaps", Threads: 1, OpsPerSec: 25000},
	)
	goals := []Goal{
		{Op: "ed25519-sign", Min: 0.8, Ref: RawName},
		{Op: "mldsa65-sign", Threads: 1, Min: 0.8, Ref: RawName},
		{Op: "mlkem768-encaps", Threads: 1, Min: 0.8, Ref: RawName},
		{Op: "ecdsa-p256-sign", Threads: 1, Min: 1.4}, // module B, although raw has a result
	}
	got := r.EvaluateGoals(goals, "gohsm", "softhsm2")
	want := []struct {
		op      string
		threads int
		ref     string
		ratio   float64
		status  string
	}{
		{"ed25519-sign", 1, RawName, 0.8, GoalMet}, // exactly the minimum is met
		{"ed25519-sign", 2, RawName, 15990.0 / 20000, GoalNotMet},
		{"mldsa65-sign", 1, RawName, 0, GoalNoData}, // raw errored
		{"mlkem768-encaps", 1, RawName, 1.2, GoalMet},
		{"ecdsa-p256-sign", 1, "softhsm2", 1.5, GoalMet}, // 3000/2000, not 3000/6000
	}
	if len(got) != len(want) {
		t.Fatalf("%d goal rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Goal.Op != w.op || g.Threads != w.threads || g.Ref != w.ref || g.Status != w.status || math.Abs(g.Ratio-w.ratio) > 1e-12 {
			t.Errorf("row %d: %+v, want %+v", i, g, w)
		}
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf, "gohsm", "softhsm2"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "vs raw") || !strings.Contains(buf.String(), "vs softhsm2") {
		t.Errorf("text targets do not name their references:\n%s", buf.String())
	}
}

// The targets for the 3.x ops are against raw Go, every other goal
// against module B, and every goal names an op of the catalogue.
func TestGoalsCatalogue(t *testing.T) {
	raw := map[string]bool{}
	for _, g := range Goals {
		if opByName(g.Op) == nil {
			t.Errorf("goal for unknown op %q", g.Op)
		}
		if g.Ref != "" && g.Ref != RawName {
			t.Errorf("goal %+v: reference must be module B or raw", g)
		}
		if g.Ref == RawName {
			raw[g.Op] = g.Min == 0.8
		}
	}
	for _, op := range []string{"ed25519-sign", "mldsa65-sign", "mlkem768-encaps"} {
		if !raw[op] {
			t.Errorf("no ≥0.8x raw goal for %s", op)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, back) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", back, r)
	}
	r.Meta.Version = 99
	buf.Reset()
	_ = r.WriteJSON(&buf)
	if _, err := ReadJSON(&buf); err == nil {
		t.Error("a report of another version was accepted")
	}
}

func TestMergeAddsMissingMeasurements(t *testing.T) {
	a := sampleReport()
	first := a.Results[0]
	b := &Report{Meta: a.Meta, Ops: []Op{*opByName("random-32")}, Results: []Result{
		{Target: "gohsm", Op: "random-32", Threads: 1, OpsPerSec: 1},
		{Target: "other", Op: "random-32", Threads: 1, OpsPerSec: 2},
		{Target: first.Target, Op: first.Op, Threads: first.Threads, OpsPerSec: first.OpsPerSec + 1},
	}}
	n := len(a.Results)
	a.Merge(b)
	if len(a.Results) != n+2 || a.Find("other", "random-32", 1) == nil || a.Find("gohsm", "random-32", 1) == nil {
		t.Errorf("merge: %d results, want %d", len(a.Results), n+2)
	}
	if got := a.Find(first.Target, first.Op, first.Threads); got == nil || got.OpsPerSec != first.OpsPerSec {
		t.Errorf("merge replaced a measurement the first report had: %+v", got)
	}
	if opIndex(a.Ops, "random-32") < 0 {
		t.Error("merge lost the other report's op")
	}
}

func TestWriteRatios(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteRatios(&buf, "gohsm", "softhsm2"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"gohsm/softhsm2", "ecdsa-p256-sign", "1.50x", "5000x"} {
		if !strings.Contains(out, want) {
			t.Errorf("compare output lacks %q:\n%s", want, out)
		}
	}
	if err := sampleReport().WriteRatios(&buf, "gohsm", "nobody"); err == nil {
		t.Error("comparing with a missing target must fail")
	}
}

func TestMarkdown(t *testing.T) {
	var buf bytes.Buffer
	err := sampleReport().WriteMarkdown(&buf, MarkdownOptions{
		A: "gohsm", B: "softhsm2", Draft: true, DraftNote: "Busy machine.",
		Commands: []string{"make bench-report"}, Images: []Image{{Title: "ops", SVG: "ops-t1.svg", PNG: "ops-t1.png"}}, ImageDir: "img",
	})
	if err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"**DRAFT", "Busy machine.",
		"| load average at start / end | 0.10 0.20 0.30 / 0.40 0.50 0.60 |",
		"```sh\nmake bench-report\n```",
		"| op | threads | gohsm vs | required | measured | status |",
		"| ECDSA P-256 sign (32-byte digest) | 1 | softhsm2 | ≥ 1.4x | 1.500x | **met** |",
		"| ECDSA P-256 sign (32-byte digest) | 2 | softhsm2 | ≥ 2x | 1.500x | not met |",
		"| AES-256-GCM encrypt 64 B | 2 | softhsm2 | ≥ 4x | — | no data |",
		"| Ed25519 sign (32-byte message) | 1 | raw | ≥ 0.8x | — | no data |",
		"| op | threads | gohsm | softhsm2 | raw | gohsm/softhsm2 | gohsm/raw |",
		"| ECDSA P-256 sign (32-byte digest) | 1 | 3.00k (300 µs / 900 µs) | 2.00k (500 µs / 1.50 ms) | 6.00k (- / -) | 1.50x | 0.50x |",
		"![ops](img/ops-t1.svg) ([PNG](img/ops-t1.png))",
		"`softhsm2` sm2-sign: skip — module does not list CKM_SM3_SM2",
		"error during timing — pkcs11: 0x30: CKR_DEVICE_ERROR",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	buf.Reset()
	_ = sampleReport().WriteMarkdown(&buf, MarkdownOptions{A: "gohsm", B: "softhsm2"})
	if strings.Contains(buf.String(), "DRAFT") {
		t.Error("a non-draft report says DRAFT")
	}
}

func TestWritePlots(t *testing.T) {
	dir := t.TempDir()
	ims, err := WritePlots(sampleReport(), dir, "gohsm", "softhsm2")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, im := range ims {
		names[im.SVG] = true
		svg, err := os.ReadFile(filepath.Join(dir, im.SVG))
		if err != nil || !bytes.Contains(svg[:min(len(svg), 200)], []byte("<svg")) {
			t.Errorf("%s is not an SVG (%v)", im.SVG, err)
		}
		png, err := os.ReadFile(filepath.Join(dir, im.PNG))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG (%v)", im.PNG, err)
		}
	}
	for _, want := range []string{"ops-t1.svg", "ops-t2.svg", "ratio.svg", "scaling.svg"} {
		if !names[want] {
			t.Errorf("no %s among %v", want, names)
		}
	}
}

func TestFormatting(t *testing.T) {
	for v, want := range map[float64]string{0.92: "0.92", 13.9: "13.9", 906: "906", 1200: "1.20k", 22500: "22.5k", 1.12e6: "1.12M"} {
		if got := fmtRate(v); got != want {
			t.Errorf("fmtRate(%v) = %q, want %q", v, got, want)
		}
	}
	for ns, want := range map[int64]string{0: "-", 551: "551 ns", 2210: "2.21 µs", 1_040_000: "1.04 ms", 1_050_000_000: "1.05 s"} {
		if got := fmtDur(ns); got != want {
			t.Errorf("fmtDur(%d) = %q, want %q", ns, got, want)
		}
	}
	for x, want := range map[float64]string{0.9444: "0.94x", 12.34: "12.3x", 3806.27: "3806x"} {
		if got := fmtRatio(x); got != want {
			t.Errorf("fmtRatio(%v) = %q, want %q", x, got, want)
		}
	}
}
