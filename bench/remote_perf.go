package bench

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Where the time goes: perf record on the appliance and on the client
// process during one extra (untimed for the table) measurement, summarised
// by shared object, by function (self time) and by what a call spends its
// time in (inclusive time of marker functions).

// Profile is one process's CPU profile during one measurement.
type Profile struct {
	Target     string         `json:"target"`
	Op         string         `json:"op"`
	Threads    int            `json:"threads"`
	Process    string         `json:"process"` // appliance or client
	Samples    int64          `json:"samples"`
	OpsPerSec  float64        `json:"ops_per_sec"`
	CPUUsPerOp float64        `json:"cpu_us_per_op"` // this process
	DSOs       []ProfileEntry `json:"dsos"`
	Self       []ProfileEntry `json:"self"`    // top functions by self time
	Markers    []ProfileEntry `json:"markers"` // inclusive time of what the call path goes through
	File       string         `json:"file,omitempty"`
}

// ProfileEntry is a share of a profile's samples.
type ProfileEntry struct {
	Name    string  `json:"name"`
	Percent float64 `json:"percent"`
}

// profileMarkers are functions whose inclusive time says where a remote
// call's CPU goes; a name matches a symbol that contains it.
var profileMarkers = []struct{ label, match string }{
	{"engine: the operation itself (hsm.(*Module) calls)", "hsm.(*Module)."},
	{"ECDSA P-256 signing (crypto/ecdsa)", "crypto/internal/fips140/ecdsa.sign"},
	{"TLS record write (crypto/tls.(*Conn).Write)", "crypto/tls.(*Conn).Write"},
	{"TLS record read (crypto/tls.(*Conn).Read)", "crypto/tls.(*Conn).Read"},
	{"wire encoding and decoding (firmware-sim/wire)", "firmware-sim/wire.(*Call).Append|firmware-sim/wire.(*Call).Decode|" +
		"firmware-sim/wire.DecodeCall|firmware-sim/wire.Split|firmware-sim/wire.Parse|firmware-sim/wire.Append"},
	{"client code (firmware-sim/client), its encoding, TLS and socket calls included", "firmware-sim/client."},
	{"PKCS#11 shim (pkcs11shim exports)", "main.goC_"},
	{"cgo: entering Go from C (runtime.cgocallback)", "runtime.cgocallback"},
	{"cgo: calling C from Go (runtime.cgocall)", "runtime.cgocall"},
	{"cgo: parking a C caller's thread (runtime.stoplockedm)", "runtime.stoplockedm"},
	{"cgo: waking a C caller's thread (runtime.startlockedm)", "runtime.startlockedm"},
	{"Go scheduler (runtime.schedule)", "runtime.schedule"},
	{"Go GC (runtime.gcBgMarkWorker)", "runtime.gcBgMarkWorker"},
	{"Go allocation (runtime.mallocgc)", "runtime.mallocgc"},
	{"system calls (entry_SYSCALL_64)", "entry_SYSCALL_64"},
	{"futex (wake-ups and sleeps)", "__x64_sys_futex"},
	{"socket writes (__x64_sys_write)", "__x64_sys_write"},
	{"socket reads (__x64_sys_read)", "__x64_sys_read"},
	{"epoll (__x64_sys_epoll_pwait)", "__x64_sys_epoll_pwait"},
}

// onStack reports whether a frame contains one of the |-separated names.
func onStack(frames []string, match string) bool {
	for _, m := range strings.Split(match, "|") {
		for _, f := range frames {
			if strings.Contains(f, m) {
				return true
			}
		}
	}
	return false
}

// profileRemote measures op on t at threads once more with perf attached to
// the client and to every serving process.
func profileRemote(cfg RemoteConfig, dir string, t *remoteTarget, op string, threads int, limit time.Duration) ([]Profile, error) {
	pd := filepath.Join(dir, "perf")
	if err := os.MkdirAll(pd, 0o700); err != nil {
		return nil, err
	}
	type rec struct {
		process string
		pid     int
		file    string
		cmd     *exec.Cmd
	}
	var recs []*rec
	recs = append(recs, &rec{process: "client", pid: t.agent.pid()})
	for _, pid := range t.server() {
		recs = append(recs, &rec{process: "appliance", pid: pid})
	}
	stopAll := func() {
		for _, r := range recs {
			if r.cmd != nil && r.cmd.Process != nil {
				_ = r.cmd.Process.Signal(syscall.SIGINT)
				done := make(chan struct{})
				go func() { r.cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					_ = r.cmd.Process.Kill()
					<-done
				}
				r.cmd = nil
			}
		}
	}
	defer stopAll()
	for i, r := range recs {
		r.file = filepath.Join(pd, fmt.Sprintf("%s-%s-%s-t%d-%d.data", t.name, op, r.process, threads, i))
		r.cmd = exec.Command(cfg.Perf, "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-p", strconv.Itoa(r.pid), "-o", r.file)
		lf, err := os.Create(r.file + ".log")
		if err != nil {
			return nil, err
		}
		r.cmd.Stdout, r.cmd.Stderr = lf, lf
		err = r.cmd.Start()
		lf.Close()
		if err != nil {
			r.cmd = nil
			return nil, fmt.Errorf("perf record: %w", err)
		}
	}
	time.Sleep(500 * time.Millisecond) // perf attaches
	var cpu0 []cpuTimes
	for _, r := range recs {
		cpu0 = append(cpu0, procCPU([]int{r.pid}))
	}
	rep, err := t.agent.call(agentRequest{Cmd: "measure", Op: op, Threads: threads, Duration: cfg.Duration, Warmup: cfg.Warmup}, limit)
	if err != nil {
		return nil, err
	}
	if rep.Err != "" {
		return nil, fmt.Errorf("%s", rep.Err)
	}
	var cpuPer []float64
	for i, r := range recs {
		cpuPer = append(cpuPer, perOp(procCPU([]int{r.pid}).sub(cpu0[i]).total(), rep.AllOps))
	}
	stopAll()
	rate := 0.0
	if rep.Elapsed > 0 {
		rate = float64(rep.Ops) / (float64(rep.Elapsed) / 1e9)
	}
	var out []Profile
	for i, r := range recs {
		p := Profile{Target: t.name, Op: op, Threads: threads, Process: r.process, OpsPerSec: rate, CPUUsPerOp: cpuPer[i], File: r.file}
		script, err := exec.Command(cfg.Perf, "script", "-i", r.file, "-F", "ip,sym,dso").Output()
		if err != nil {
			return nil, fmt.Errorf("perf script -i %s: %w", r.file, err)
		}
		summarisePerf(&p, string(script))
		out = append(out, p)
	}
	return out, nil
}

// summarisePerf fills p from perf script output (a sample is its stack,
// one frame a line, innermost first; a blank line ends it): shares by the
// innermost frame's object and function, and by marker anywhere on the
// stack (each sample counted once per marker).
func summarisePerf(p *Profile, script string) {
	dso, self, mark := map[string]int64{}, map[string]int64{}, make([]int64, len(profileMarkers))
	var frames []string
	var first, firstDSO string
	flush := func() {
		if len(frames) == 0 {
			return
		}
		p.Samples++
		dso[firstDSO]++
		self[first]++
		for i, mk := range profileMarkers {
			if onStack(frames, mk.match) {
				mark[i]++
			}
		}
		frames = frames[:0]
	}
	for _, l := range strings.Split(script, "\n") {
		t := strings.TrimSpace(l)
		if t == "" {
			flush()
			continue
		}
		// "addr sym+off (dso)"
		_, rest, ok := strings.Cut(t, " ")
		if !ok {
			continue
		}
		sym, obj := rest, ""
		if i := strings.LastIndex(rest, " ("); i >= 0 {
			sym, obj = rest[:i], strings.TrimSuffix(rest[i+2:], ")")
		}
		if i := strings.LastIndex(sym, "+0x"); i >= 0 {
			sym = sym[:i]
		}
		if len(frames) == 0 {
			first, firstDSO = sym, filepath.Base(obj)
		}
		frames = append(frames, sym)
	}
	flush()
	if p.Samples == 0 {
		return
	}
	share := func(m map[string]int64, n int) []ProfileEntry {
		var es []ProfileEntry
		for k, v := range m {
			es = append(es, ProfileEntry{Name: k, Percent: 100 * float64(v) / float64(p.Samples)})
		}
		slices.SortFunc(es, func(a, b ProfileEntry) int { return cmp.Compare(b.Percent, a.Percent) })
		if len(es) > n {
			es = es[:n]
		}
		return es
	}
	p.DSOs, p.Self = share(dso, 8), share(self, 25)
	for i, mk := range profileMarkers {
		if mark[i] > 0 {
			p.Markers = append(p.Markers, ProfileEntry{Name: mk.label, Percent: 100 * float64(mark[i]) / float64(p.Samples)})
		}
	}
}
