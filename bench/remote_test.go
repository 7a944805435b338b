package bench

import (
	"os"
	"strings"
	"testing"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkSignSingle-2     	       7	 148590027 ns/op	       148.6 µs/sign
BenchmarkSignSingle-2     	       8	 140000000 ns/op	       140.0 µs/sign
BenchmarkSignSingle-2     	       7	 150000000 ns/op	       150.0 µs/sign
BenchmarkSignBatch/sessions=1-2         	      18	  67264645 ns/op	        67.26 µs/sign
BenchmarkSignParallel/delay=20µs-2      	   25599	     52746 ns/op	     18960 signs/s
BenchmarkRoundTrip-2                    	   23805	     47030 ns/op
PASS
`
	rs, err := parseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 {
		t.Fatalf("%d results: %+v", len(rs), rs)
	}
	s := goBench(rs, "SignSingle")
	if s == nil || s.Runs != 3 || s.Metrics["µs/sign"] != 148.6 || s.NsPerOp != 148590027 {
		t.Fatalf("SignSingle: %+v", s)
	}
	if p := goBench(rs, "SignParallel/delay=20µs"); p == nil || p.Metrics["signs/s"] != 18960 {
		t.Fatalf("SignParallel: %+v", p)
	}
	if r := goBench(rs, "RoundTrip"); r == nil || r.NsPerOp != 47030 || len(r.Metrics) != 0 {
		t.Fatalf("RoundTrip: %+v", r)
	}
}

func TestReplaceMeasured(t *testing.T) {
	doc := "# A\n\n## Audit\n\ntext\n\n## Measured\n\n_To be filled._\n"
	once, err := replaceMeasured(doc, "table 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(once, "To be filled") || !strings.Contains(once, "## Measured\n\n"+measuredBegin+"\n\ntable 1\n\n"+measuredEnd+"\n") {
		t.Fatalf("first run:\n%s", once)
	}
	twice, err := replaceMeasured(once+"\n## Later\n\nkept\n", "table 2\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(twice, "table 1") || !strings.Contains(twice, "table 2") || !strings.HasSuffix(twice, "## Later\n\nkept\n") ||
		!strings.HasPrefix(twice, "# A\n\n## Audit\n\ntext\n") {
		t.Fatalf("second run:\n%s", twice)
	}
	// A section followed by another keeps it.
	mid, err := replaceMeasured("## Measured\n\nold\n\n## Next\n\nx\n", "new\n")
	if err == nil {
		t.Fatalf("a document whose Measured heading is its first line: %q", mid)
	}
	mid, err = replaceMeasured("top\n## Measured\n\nold\n\n## Next\n\nx\n", "new\n")
	if err != nil || strings.Contains(mid, "old") || !strings.HasSuffix(mid, "\n## Next\n\nx\n") {
		t.Fatalf("middle section: %v\n%s", err, mid)
	}
}

func TestSummarisePerf(t *testing.T) {
	script := `	ffffffff81000000 pvm_irq_enable+0x10 ([kernel.kallsyms])
	ffffffff81000100 __x64_sys_futex+0x20 ([kernel.kallsyms])
	          4a3b2c runtime.futex.abi0+0x23 (/tmp/libgohsm.so)
	          4a3b2d runtime.stoplockedm+0x40 (/tmp/libgohsm.so)

	          5a3b2c crypto/internal/fips140/ecdsa.sign[...]+0x3 (/x/gohsm)
	          5a3b2d github.com/gohsm/gohsm/hsm.(*Module).Sign+0x9 (/x/gohsm)

`
	var p Profile
	summarisePerf(&p, script)
	if p.Samples != 2 {
		t.Fatalf("%d samples", p.Samples)
	}
	got := map[string]float64{}
	for _, e := range p.Markers {
		got[e.Name] = e.Percent
	}
	if got["futex (wake-ups and sleeps)"] != 50 || got["engine: the operation itself (hsm.(*Module) calls)"] != 50 ||
		got["cgo: parking a C caller's thread (runtime.stoplockedm)"] != 50 {
		t.Fatalf("markers: %v", got)
	}
	if p.Self[0].Percent != 50 || (p.Self[0].Name != "pvm_irq_enable" && p.Self[1].Name != "pvm_irq_enable") {
		t.Fatalf("self: %+v", p.Self)
	}
	for _, d := range p.DSOs {
		if d.Name != "[kernel.kallsyms]" && d.Name != "gohsm" {
			t.Fatalf("dso %q", d.Name)
		}
	}
}

func TestProcCPU(t *testing.T) {
	x := 0
	for i := range 20_000_000 {
		x += i
	}
	_ = x
	c := procCPU([]int{os.Getpid()})
	if c.total() <= 0 {
		t.Skipf("no CPU time read from /proc (%v)", c)
	}
	if m := machineCPU(); m.total <= 0 || m.busy <= 0 || m.busy > m.total {
		t.Fatalf("machine: %+v", m)
	}
}

// The floor is the run's own arithmetic: local CPU per signature plus two
// wake-ups (half a ping-pong's CPU each), over the vCPUs; no calibration,
// no floor.
func TestRemoteFloor(t *testing.T) {
	r := &RemoteReport{
		Meta:    RemoteMeta{NumCPU: 2, Calibration: &Calibration{PingPongNs: 40000, PingPongCPUNs: 40000}},
		Results: []Result{{Target: TargetLocal, Op: "ecdsa-p256-sign", Threads: 32, OpsPerSec: 40000}},
		CPU:     []CPUResult{{Target: TargetLocal, Op: "ecdsa-p256-sign", Threads: 32, ClientUs: 30}},
	}
	var b strings.Builder
	if !r.writeFloor(&b) {
		t.Fatal("no floor written")
	}
	// 30 + 2 × 20 = 70 µs per signature; 2 vCPUs: 28.6k/s, 0.71x of 40.0k.
	for _, want := range []string{"so 70.0 µs", "at most 28.6k signatures/s, 0.71x of local's 40.0k"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("floor %q lacks %q", b.String(), want)
		}
	}
	r.Meta.Calibration.PingPongCPUNs = 0
	if r.writeFloor(&b) {
		t.Error("a floor without the calibration's CPU")
	}
}
