package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// RemoteReport is the outcome of a network comparison run.
type RemoteReport struct {
	Meta     RemoteMeta         `json:"meta"`
	Targets  []RemoteTargetInfo `json:"targets"`
	Ops      []Op               `json:"ops"`
	Checks   []Check            `json:"checks"`
	Results  []Result           `json:"results"`
	CPU      []CPUResult        `json:"cpu"`
	GoBench  []GoBenchResult    `json:"go_client_bench,omitempty"`
	Profiles []Profile          `json:"profiles,omitempty"`
	CHost    []CHostResult      `json:"chost,omitempty"`
	Notes    []string           `json:"notes,omitempty"`
}

// RemoteMeta records the conditions of the run.
type RemoteMeta struct {
	Version        int          `json:"version"`
	Started        time.Time    `json:"started"`
	Seconds        float64      `json:"seconds"`
	GoVersion      string       `json:"go_version"`
	Platform       string       `json:"platform"`
	CPU            string       `json:"cpu"`
	NumCPU         int          `json:"num_cpu"`
	Kernel         string       `json:"kernel"`
	LoadStart      string       `json:"loadavg_start"`
	LoadEnd        string       `json:"loadavg_end"`
	Threads        []int        `json:"sessions"`
	DurationMs     int64        `json:"duration_ms"`
	WarmupMs       int64        `json:"warmup_ms"`
	Repeats        int          `json:"repeats"`
	FindKeys       int          `json:"find_keys"`
	P11KitVersion  string       `json:"p11kit_version"`
	SoftHSMVersion string       `json:"softhsm_version"`
	Commands       []string     `json:"commands"`
	GoBenchCommand string       `json:"go_bench_command,omitempty"`
	Calibration    *Calibration `json:"calibration,omitempty"`
	Quiet          float64      `json:"quiet_cpus"`
	Measurements   int          `json:"measurements"`
	Retried        int          `json:"retried"`   // measurements made again: other processes used more than Quiet
	Disturbed      int          `json:"disturbed"` // kept although disturbed (retry budget spent)
}

// RemoteTargetInfo describes a target and the module its agent loaded.
type RemoteTargetInfo struct {
	Name   string     `json:"name"`
	Title  string     `json:"title"`
	Module ModuleInfo `json:"module"`
}

func sortRemote(r *RemoteReport) {
	ti := func(n string) int { return slices.Index(RemoteTargetNames, n) }
	oi := func(n string) int {
		for i, o := range r.Ops {
			if o.Name == n {
				return i
			}
		}
		return len(r.Ops)
	}
	slices.SortFunc(r.Results, func(a, b Result) int {
		return cmp.Or(cmp.Compare(oi(a.Op), oi(b.Op)), cmp.Compare(a.Threads, b.Threads), cmp.Compare(ti(a.Target), ti(b.Target)))
	})
	slices.SortFunc(r.CPU, func(a, b CPUResult) int {
		return cmp.Or(cmp.Compare(oi(a.Op), oi(b.Op)), cmp.Compare(a.Threads, b.Threads), cmp.Compare(ti(a.Target), ti(b.Target)))
	})
}

// WriteJSON writes the report, indented.
func (r *RemoteReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadRemoteJSON reads a report written by WriteJSON.
func ReadRemoteJSON(rd io.Reader) (*RemoteReport, error) {
	var r RemoteReport
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("bench-remote report: %w", err)
	}
	return &r, nil
}

func (r *RemoteReport) find(target, op string, threads int) *Result {
	for i := range r.Results {
		x := &r.Results[i]
		if x.Target == target && x.Op == op && x.Threads == threads && x.Error == "" && x.OpsPerSec > 0 {
			return x
		}
	}
	return nil
}

func (r *RemoteReport) cpu(target, op string, threads int) *CPUResult {
	for i := range r.CPU {
		x := &r.CPU[i]
		if x.Target == target && x.Op == op && x.Threads == threads {
			return x
		}
	}
	return nil
}

func (r *RemoteReport) ratio(a, b, op string, threads int) (float64, bool) {
	x, y := r.find(a, op, threads), r.find(b, op, threads)
	if x == nil || y == nil {
		return 0, false
	}
	return x.OpsPerSec / y.OpsPerSec, true
}

func (r *RemoteReport) op(name string) Op {
	for _, o := range r.Ops {
		if o.Name == name {
			return o
		}
	}
	if o := remoteOpByName(name); o != nil {
		return *o
	}
	return Op{Name: name, Title: name}
}

func (r *RemoteReport) title(o Op) string {
	if o.Name == "find-key-label" {
		return strings.Replace(o.Title, "among N", fmt.Sprintf("among %d", r.Meta.FindKeys), 1)
	}
	return o.Title
}

// RemoteGoal is one of the targets, evaluated.
type RemoteGoal struct {
	What     string  `json:"what"`
	Min      float64 `json:"min"`
	Ratio    float64 `json:"ratio"`
	Status   string  `json:"status"`
	Evidence string  `json:"evidence"`
}

// Goals evaluates issue 11's targets.
func (r *RemoteReport) Goals() []RemoteGoal {
	const t = 32
	var out []RemoteGoal
	add := func(what string, min float64, a, b, op string) {
		g := RemoteGoal{What: what, Min: min, Status: GoalNoData}
		if x, ok := r.ratio(a, b, op, t); ok {
			g.Ratio = x
			g.Status = GoalNotMet
			if x >= min {
				g.Status = GoalMet
			}
			g.Evidence = fmt.Sprintf("%s vs %s ops/s", fmtRate(r.find(a, op, t).OpsPerSec), fmtRate(r.find(b, op, t).OpsPerSec))
		}
		out = append(out, g)
	}
	add("remote ECDSA P-256 sign (CKM_ECDSA), 32 sessions, vs local", 0.7, TargetRemote, TargetLocal, "ecdsa-p256-sign")
	add("remote ECDSA P-256 sign (CKM_ECDSA), 32 sessions, vs p11-kit + SoftHSMv2", 3, TargetRemote, TargetP11KitSoftHSM, "ecdsa-p256-sign")
	add("remote AES-256-ECB encrypt 64 B, 32 sessions, vs p11-kit + SoftHSMv2 (the issue's AES-CBC: p11-kit 0.24 does not carry it)", 3, TargetRemote, TargetP11KitSoftHSM, "aes256-ecb-enc-64")
	single := goBench(r.GoBench, "SignSingle")
	for _, n := range []int{1, 8} {
		batch := goBench(r.GoBench, fmt.Sprintf("SignBatch/sessions=%d", n))
		what := fmt.Sprintf("Go client: 1,000 ECDSA signs in batch frames on %d session(s) vs the same 1,000 as single round trips", n)
		g := RemoteGoal{What: what, Min: 5, Status: GoalNoData}
		if single != nil && batch != nil && batch.Metrics["µs/sign"] > 0 {
			g.Ratio = single.Metrics["µs/sign"] / batch.Metrics["µs/sign"]
			g.Status = GoalNotMet
			if g.Ratio >= 5 {
				g.Status = GoalMet
			}
			g.Evidence = fmt.Sprintf("%.1f vs %.1f µs/sign", single.Metrics["µs/sign"], batch.Metrics["µs/sign"])
		}
		out = append(out, g)
	}
	return out
}

var targetShort = map[string]string{
	TargetLocal:         "local",
	TargetRemote:        "remote",
	TargetP11KitSoftHSM: "p11-kit + SoftHSMv2",
	TargetP11KitGohsm:   "p11-kit + gohsm",
}

func (r *RemoteReport) targetNames() []string {
	var out []string
	for _, t := range RemoteTargetNames {
		for _, x := range r.Targets {
			if x.Name == t {
				out = append(out, t)
			}
		}
	}
	return out
}

func (r *RemoteReport) threadCounts() []int {
	var ts []int
	for _, x := range r.Results {
		if !slices.Contains(ts, x.Threads) {
			ts = append(ts, x.Threads)
		}
	}
	slices.Sort(ts)
	return ts
}

func statusCell(s string) string {
	if s == GoalMet {
		return "**met**"
	}
	return s
}

// writeGoals writes the targets table.
func (r *RemoteReport) writeGoals(w io.Writer) {
	fmt.Fprintln(w, "| target | required | measured | status | ops/s or µs |")
	fmt.Fprintln(w, "|---|---:|---:|---|---|")
	for _, g := range r.Goals() {
		m := "—"
		if g.Status != GoalNoData {
			m = fmtRatio(g.Ratio)
		}
		fmt.Fprintf(w, "| %s | ≥ %gx | %s | %s | %s |\n", g.What, g.Min, m, statusCell(g.Status), g.Evidence)
	}
}

// writeFloor says how fast remote signing could be on this machine at
// best, from the run's own figures. A remote signature needs the signature
// (what it costs locally) and two round trips (C_SignInit, C_Sign); in
// each, the application's calling thread waits for the answer, so it is
// put to sleep and woken at least once (the appliance's side can share
// its wake-ups among many calls; the caller's cannot). The calibration's
// one-byte ping-pong between two processes is two such wake-ups and
// nothing else, so half its CPU is the least a wake-up costs here. With
// client and appliance on the same vCPUs, that bounds remote signatures
// per second, whatever the protocol or the code.
func (r *RemoteReport) writeFloor(w io.Writer) bool {
	const op, t = "ecdsa-p256-sign", 32
	c, loc, x := r.Meta.Calibration, r.cpu(TargetLocal, op, t), r.find(TargetLocal, op, t)
	if c == nil || c.PingPongCPUNs <= 0 || loc == nil || x == nil || x.OpsPerSec <= 0 || r.Meta.NumCPU <= 0 {
		return false
	}
	wakeUs := c.PingPongCPUNs / 2e3
	floorUs := loc.ClientUs + 2*wakeUs
	best := float64(r.Meta.NumCPU) * 1e6 / floorUs
	fmt.Fprintf(w, "The most remote signing can do on this machine: a remote ECDSA signature costs at least the signature "+
		"(%s µs of CPU in local mode at %d sessions) and, in each of its two round trips, one sleep and wake-up of the "+
		"calling thread (at least %s µs of CPU: half the calibration's one-byte ping-pong, which is two of them and "+
		"nothing else), so %s µs; %d vCPUs shared by client and appliance then do at most %s signatures/s, %s of "+
		"local's %s, before any TLS, encoding, system call or work on the appliance's side.\n", fmtUs(loc.ClientUs), t,
		fmtUs(wakeUs), fmtUs(floorUs), r.Meta.NumCPU, fmtRate(best), fmtRatio(best/x.OpsPerSec), fmtRate(x.OpsPerSec))
	return true
}

// writeRatioTable is ops/s per target and the ratios that matter.
func (r *RemoteReport) writeRatioTable(w io.Writer) {
	ts := r.targetNames()
	fmt.Fprint(w, "| op | sessions |")
	for _, t := range ts {
		fmt.Fprintf(w, " %s |", targetShort[t])
	}
	type rc struct{ a, b, label string }
	ratios := []rc{
		{TargetRemote, TargetLocal, "remote / local"},
		{TargetRemote, TargetP11KitSoftHSM, "remote / p11-kit + SoftHSMv2"},
		{TargetRemote, TargetP11KitGohsm, "remote / p11-kit + gohsm"},
		{TargetP11KitGohsm, TargetLocal, "p11-kit + gohsm / local"},
	}
	var rs []rc
	for _, x := range ratios {
		if slices.Contains(ts, x.a) && slices.Contains(ts, x.b) {
			rs = append(rs, x)
			fmt.Fprintf(w, " %s |", x.label)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "|---|---:|")
	for range len(ts) + len(rs) {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, o := range r.Ops {
		for _, th := range r.threadCounts() {
			fmt.Fprintf(w, "| %s | %d |", r.title(o), th)
			for _, t := range ts {
				x := r.find(t, o.Name, th)
				if x == nil {
					fmt.Fprint(w, " — |")
				} else {
					fmt.Fprintf(w, " %s |", fmtRate(x.OpsPerSec))
				}
			}
			for _, x := range rs {
				if v, ok := r.ratio(x.a, x.b, o.Name, th); ok {
					fmt.Fprintf(w, " %s |", fmtRatio(v))
				} else {
					fmt.Fprint(w, " — |")
				}
			}
			fmt.Fprintln(w)
		}
	}
}

func (r *RemoteReport) chost(target string, threads int) *CHostResult {
	for i := range r.CHost {
		if r.CHost[i].Target == target && r.CHost[i].Threads == threads {
			return &r.CHost[i]
		}
	}
	return nil
}

// writeCHost is the C application's table: ECDSA signing without the Go
// host's runtime and without the size query.
func (r *RemoteReport) writeCHost(w io.Writer) {
	fmt.Fprintln(w, "| threads | local | remote | remote / local |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|")
	for _, th := range r.Meta.Threads {
		l, m := r.chost(TargetLocal, th), r.chost(TargetRemote, th)
		if l == nil || m == nil {
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s |\n", th, fmtRate(l.OpsPerSec), fmtRate(m.OpsPerSec), fmtRatio(m.OpsPerSec/l.OpsPerSec))
	}
}

const chostIntro = "ECDSA P-256 from a C application (bench/chost/csrc/chost.c, `make bench-chost`'s host): one thread " +
	"and session per worker, C_SignInit + C_Sign into a buffer large enough (no size query; the Go host's is answered " +
	"without a round trip, so both make two per signature), and no second Go runtime in the process; ops/s, median of the runs, local and " +
	"remote alternating."

func (r *RemoteReport) writeLatencyTable(w io.Writer) {
	ts := r.targetNames()
	fmt.Fprint(w, "| op | sessions |")
	for _, t := range ts {
		fmt.Fprintf(w, " %s |", targetShort[t])
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "|---|---:|")
	for range ts {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, o := range r.Ops {
		for _, th := range r.threadCounts() {
			fmt.Fprintf(w, "| %s | %d |", r.title(o), th)
			for _, t := range ts {
				x := r.find(t, o.Name, th)
				if x == nil {
					fmt.Fprint(w, " — |")
				} else {
					fmt.Fprintf(w, " %s / %s |", fmtDur(x.P50Ns), fmtDur(x.P99Ns))
				}
			}
			fmt.Fprintln(w)
		}
	}
}

func (r *RemoteReport) writeCPUTable(w io.Writer) {
	fmt.Fprintln(w, "| op | sessions | target | client µs/op (kernel) | server µs/op (kernel) | rest of machine µs/op | CPUs busy |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|")
	for _, o := range r.Ops {
		for _, th := range r.threadCounts() {
			for _, t := range r.targetNames() {
				c := r.cpu(t, o.Name, th)
				if c == nil {
					continue
				}
				server := "—"
				if t != TargetLocal {
					server = fmt.Sprintf("%s (%s)", fmtUs(c.ServerUs), fmtUs(c.ServerSysUs))
				}
				fmt.Fprintf(w, "| %s | %d | %s | %s (%s) | %s | %s | %.2f |\n", r.title(o), th, targetShort[t],
					fmtUs(c.ClientUs), fmtUs(c.ClientSysUs), server, fmtUs(c.OtherUs), c.MachineBusy)
			}
		}
	}
}

func fmtUs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

var goBenchWhat = map[string]string{
	"SignSingle":               "1,000 ECDSA signs (C_SignInit + C_Sign) as single round trips, one after the other",
	"SignBatch/sessions=1":     "the same 1,000 in batch frames, one session (the appliance runs them in order)",
	"SignBatch/sessions=8":     "the same 1,000 in batch frames over 8 sessions (the appliance runs sessions in parallel)",
	"SignParallel/delay=0s":    "32 goroutines, a session each, sharing the connection (coalescing, default)",
	"SignParallel/delay=20µs":  "the same with a 20 µs coalescing delay",
	"SignParallel/delay=100µs": "the same with a 100 µs coalescing delay",
	"RoundTrip":                "one C_GetSessionInfo round trip",
}

func (r *RemoteReport) writeGoBench(w io.Writer) {
	fmt.Fprintln(w, "| benchmark | what | result (median) | runs |")
	fmt.Fprintln(w, "|---|---|---:|---:|")
	for _, g := range r.GoBench {
		var res string
		switch {
		case g.Metrics["µs/sign"] > 0:
			res = fmt.Sprintf("%.1f µs/sign", g.Metrics["µs/sign"])
		case g.Metrics["signs/s"] > 0:
			res = fmtRate(g.Metrics["signs/s"]) + " signs/s"
		default:
			res = fmtDur(int64(g.NsPerOp)) + "/op"
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %d |\n", g.Name, goBenchWhat[g.Name], res, g.Runs)
	}
}

func (p *Profile) share(label string) float64 {
	for _, e := range p.Markers {
		if strings.HasPrefix(e.Name, label) {
			return e.Percent
		}
	}
	return 0
}

func (p *Profile) dso(name string) float64 {
	for _, e := range p.DSOs {
		if e.Name == name {
			return e.Percent
		}
	}
	return 0
}

func (r *RemoteReport) profile(process, op string) *Profile {
	for i := range r.Profiles {
		if r.Profiles[i].Process == process && r.Profiles[i].Op == op && r.Profiles[i].Target == TargetRemote {
			return &r.Profiles[i]
		}
	}
	return nil
}

// writeTimeSummary says, with this run's numbers, where a remote ECDSA
// signature's time goes at the largest session count.
func (r *RemoteReport) writeTimeSummary(w io.Writer) {
	const op = "ecdsa-p256-sign"
	ts := r.threadCounts()
	if len(ts) == 0 {
		return
	}
	t := ts[len(ts)-1]
	loc, rem := r.cpu(TargetLocal, op, t), r.cpu(TargetRemote, op, t)
	if loc == nil || rem == nil {
		return
	}
	fmt.Fprintf(w, "Where the time goes, ECDSA P-256 at %d sessions: local mode costs %s µs of CPU per signature, all in "+
		"the application's process; remote mode costs the application's process %s µs (%s in the kernel) and the "+
		"appliance %s µs (%s in the kernel)", t, fmtUs(loc.ClientUs), fmtUs(rem.ClientUs), fmtUs(rem.ClientSysUs),
		fmtUs(rem.ServerUs), fmtUs(rem.ServerSysUs))
	if x := r.find(TargetRemote, op, t); x != nil {
		fmt.Fprintf(w, ", and the two shared the machine's %d vCPUs (%.2f busy on average", r.Meta.NumCPU, rem.MachineBusy)
		fmt.Fprint(w, ")")
	}
	fmt.Fprint(w, ". A signature is three calls (C_SignInit, the size query, C_Sign) but two round trips (the client "+
		"answers the size query from the appliance's earlier answer: firmware-sim/client/sizes.go), so")
	fmt.Fprintf(w, " each round trip costs about %s µs of CPU on the two sides together beyond the %s µs a local signature costs.",
		fmtUs((rem.ClientUs+rem.ServerUs-loc.ClientUs)/2), fmtUs(loc.ClientUs))
	cl, ap := r.profile("client", op), r.profile("appliance", op)
	if cl != nil && ap != nil {
		fmt.Fprintf(w, " In the application's process (perf), %.0f%% of the samples are in the kernel, and %.0f%% are "+
			"under the Go runtime's parking and waking of the C caller's thread (runtime.stoplockedm %.0f%%, "+
			"runtime.startlockedm %.0f%%: a C thread that calls into libgohsm.so is locked to it, and the scheduler "+
			"hands a locked thread its P to wake it; the module's callers wait for answers on a futex instead "+
			"(client.Config.WaitInKernel), so what remains is a thread entering Go while every P is busy, which waits for one); the client's own "+
			"code, its encoding, TLS, socket calls and that futex wait included, is %.0f%%.",
			cl.dso("[kernel.kallsyms]"), cl.share("cgo: parking")+cl.share("cgo: waking"),
			cl.share("cgo: parking"), cl.share("cgo: waking"), cl.share("client code"))
		fmt.Fprintf(w, " In the appliance, the engine's work is %.0f%% of the samples, the kernel %.0f%% (reading and "+
			"writing the socket, waking goroutines' threads), the Go scheduler %.0f%%.",
			ap.share("engine"), ap.dso("[kernel.kallsyms]"), ap.share("Go scheduler (runtime.schedule)"))
	}
	if c := r.Meta.Calibration; c != nil {
		fmt.Fprintf(w, " What makes a call this dear is what this virtual machine charges for the kernel: a system call "+
			"costs %.2f µs and waking another process's thread about %.0f µs (half the ping-pong round trip of the "+
			"calibration; on bare metal both are commonly several times cheaper), and a remote call pays several of "+
			"each on both sides.", c.SyscallNs/1e3, c.PingPongNs/2e3)
	}
	fmt.Fprintln(w)
}

// writeBatchSummary explains the Go client's batch ratio with this run's
// round trip and signing cost.
func (r *RemoteReport) writeBatchSummary(w io.Writer) {
	rt, single, b1 := goBench(r.GoBench, "RoundTrip"), goBench(r.GoBench, "SignSingle"), goBench(r.GoBench, "SignBatch/sessions=1")
	loc := r.cpu(TargetLocal, "ecdsa-p256-sign", 1)
	if rt == nil || single == nil || b1 == nil || loc == nil {
		return
	}
	rtt, sig := rt.NsPerOp/1e3, loc.ClientUs
	b := b1.Metrics["µs/sign"]
	fmt.Fprintf(w, "The Go client's batch: batch frames save the round trips (one is %s µs here: C_GetSessionInfo, "+
		"RoundTrip) but not the signatures, which the appliance still computes (%s µs of CPU each in local mode), on "+
		"the vCPUs the client shares. Single round trips cost %s µs per signature, about two round trips and a "+
		"signature; batched on one session, %s µs: mostly the signature. The ratio is therefore about (2 × round "+
		"trip + batched cost) / batched cost, and 5x needs a round trip of twice the batched cost (%s µs) or more: "+
		"loopback on this machine is shorter than that; a round trip between two hosts often is not.\n",
		fmtUs(rtt), fmtUs(sig), fmtUs(single.Metrics["µs/sign"]), fmtUs(b), fmtUs(2*b))
}

func (r *RemoteReport) writeProfiles(w io.Writer) {
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "**%s, %s, %s, %d sessions** (%s ops/s during the profile; this process: %s µs CPU per op; %d samples):\n\n",
			p.Process, targetShort[p.Target], r.title(r.op(p.Op)), p.Threads, fmtRate(p.OpsPerSec), fmtUs(p.CPUUsPerOp), p.Samples)
		var parts []string
		for _, e := range p.DSOs {
			if e.Percent >= 1 {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", e.Name, e.Percent))
			}
		}
		fmt.Fprintf(w, "- by object: %s\n", strings.Join(parts, ", "))
		parts = parts[:0]
		for _, e := range p.Markers {
			if e.Percent >= 1 {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", e.Name, e.Percent))
			}
		}
		fmt.Fprintf(w, "- on the stack (a sample counts for every marker it is under): %s\n", strings.Join(parts, "; "))
		parts = parts[:0]
		for i, e := range p.Self {
			if i >= 12 {
				break
			}
			parts = append(parts, fmt.Sprintf("`%s` %.1f%%", e.Name, e.Percent))
		}
		fmt.Fprintf(w, "- top functions (self): %s\n\n", strings.Join(parts, ", "))
	}
}

func (r *RemoteReport) writeMachine(w io.Writer) {
	m := r.Meta
	fmt.Fprintf(w, "Run %s, %.0f s: %s, %d vCPUs, Linux %s, %s; load average %s at the start, %s at the end. "+
		"p11-kit %s, SoftHSMv2 %s. Sessions %s in turn; each point the median of %d interleaved runs of %d ms "+
		"(after %d ms of warm-up).\n", m.Started.Format("2006-01-02 15:04 UTC"), m.Seconds, m.CPU, m.NumCPU, m.Kernel, m.GoVersion, m.LoadStart, m.LoadEnd,
		m.P11KitVersion, m.SoftHSMVersion, joinInts(m.Threads), m.Repeats, m.DurationMs, m.WarmupMs)
	if m.Quiet > 0 {
		fmt.Fprintf(w, "\nA measurement during which other processes used more than %.2f CPUs on average was made again: "+
			"%d of the %d C ABI measurements were", m.Quiet, m.Retried, m.Measurements)
		if m.Disturbed > 0 {
			fmt.Fprintf(w, ", and %d were kept disturbed when the time allowed for repeats ran out", m.Disturbed)
		}
		fmt.Fprintln(w, " (the \"rest of machine\" column of docs/bench-remote.md's CPU table shows what remained).")
	}
	if c := m.Calibration; c != nil {
		fmt.Fprintf(w, "\nWhat this machine charges for what a remote call is made of besides cryptography "+
			"(bench/remote_calib.go): a system call (getppid) %.2f µs, a round trip of one byte between two processes over "+
			"a unix socket (two wake-ups, four system calls) %.1f µs", c.SyscallNs/1e3, c.PingPongNs/1e3)
		if c.PingPongCPUNs > 0 {
			fmt.Fprintf(w, ", of which %.1f µs of CPU (both processes)", c.PingPongCPUNs/1e3)
		}
		fmt.Fprintln(w, ".")
	}
}

func (r *RemoteReport) writeCommands(w io.Writer) {
	fmt.Fprintln(w, "```sh")
	for _, c := range r.Meta.Commands {
		fmt.Fprintln(w, strings.TrimSpace(c))
	}
	fmt.Fprintln(w, "```")
	if r.Meta.GoBenchCommand != "" {
		fmt.Fprintf(w, "\nwhich runs the C ABI comparison (`build/gohsm-bench-remote`), the C application (`build/chost`), "+
			"and the Go client's benchmarks: `%s` (in firmware-sim/client).\n", r.Meta.GoBenchCommand)
	}
}

const sameMachine = "Client and appliance share the machine's vCPUs and talk over loopback: every remote op pays for " +
	"both ends on the same cores. A network HSM normally has a machine of its own (the client then pays only its own " +
	"column of the CPU table, and the appliance's cores do the cryptography), so these ratios are a floor for remote mode's " +
	"throughput, and a ceiling on nothing: a real network adds latency (a LAN round trip is typically 50–200 µs), which more sessions hide."

// WriteMarkdown writes docs/bench-remote.md.
func (r *RemoteReport) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# Network benchmark: remote mode vs local, and vs p11-kit")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "_Written by `make bench-remote` (bench/remote*.go); do not edit by hand. docs/appliance.md (\"Measured\") has the summary._")
	fmt.Fprintln(bw)
	r.writeMachine(bw)
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, sameMachine)
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "## Reproduce")
	fmt.Fprintln(bw)
	r.writeCommands(bw)
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "## Targets")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "Issue 11's targets, at 32 sessions:")
	fmt.Fprintln(bw)
	r.writeGoals(bw)
	fmt.Fprintln(bw)
	if r.writeFloor(bw) {
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw, "## Targets compared")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| name | what | module (C_GetInfo) |")
	fmt.Fprintln(bw, "|---|---|---|")
	for _, t := range r.Targets {
		fmt.Fprintf(bw, "| %s | %s | %s, %s %s (Cryptoki %s), `%s` |\n", targetShort[t.Name], t.Title,
			t.Module.Manufacturer, t.Module.Library, t.Module.LibraryVersion, t.Module.CryptokiVersion, t.Module.Path)
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "## Throughput")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "ops/s (all sessions together), and ratios of ops/s.")
	fmt.Fprintln(bw)
	r.writeRatioTable(bw)
	fmt.Fprintln(bw)
	if len(r.CHost) > 0 {
		fmt.Fprintln(bw, "### From a C application")
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, chostIntro)
		fmt.Fprintln(bw)
		r.writeCHost(bw)
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw, "## Latency")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "One op's wall time, p50 / p99, pooled over the runs.")
	fmt.Fprintln(bw)
	r.writeLatencyTable(bw)
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "## CPU per op")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "CPU time per op from /proc over each whole measurement (sessions opened, warm-up and timed part): the "+
		"application's process (client), the serving process (`gohsm serve`, or p11-kit's `p11-kit-remote` that "+
		"`p11-kit-server` starts per connection), and whatever else ran on the machine meanwhile; with \"CPUs busy\" "+
		"(of the machine's total) this shows when a target is bound by CPU and when by waiting.")
	fmt.Fprintln(bw)
	r.writeCPUTable(bw)
	fmt.Fprintln(bw)
	if len(r.GoBench) > 0 {
		fmt.Fprintln(bw, "## The Go client (firmware-sim/client)")
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "The client's own benchmarks: the appliance (firmware-sim/server) runs in the benchmark's process and "+
			"the client calls it over TLS 1.3 on loopback directly, without the C ABI.")
		fmt.Fprintln(bw)
		r.writeGoBench(bw)
		fmt.Fprintln(bw)
		r.writeBatchSummary(bw)
		fmt.Fprintln(bw)
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintln(bw, "## Where the time goes")
		fmt.Fprintln(bw)
		r.writeTimeSummary(bw)
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, "`perf record -e cpu-clock -g` on each process during one more measurement (the profiler costs a "+
			"little throughput). Shares are of that process's samples. A timer drives the sampling, and it cannot fire "+
			"while the kernel runs with interrupts off, so that time shows where they come back on: in this paravirtual "+
			"guest, `pvm_irq_enable`, reached from the scheduler's context switch and from wake-ups "+
			"(`finish_task_switch`, `try_to_wake_up`).")
		fmt.Fprintln(bw)
		r.writeProfiles(bw)
	}
	fmt.Fprintln(bw, "## Method")
	fmt.Fprintln(bw)
	for _, l := range r.methodNotes() {
		fmt.Fprintf(bw, "- %s\n", l)
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "## Checks and skips")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "Before timing, every (target, op) ran once and its result was checked with Go's crypto (signatures "+
		"verified, ciphertexts compared, the found key's label read back).")
	fmt.Fprintln(bw)
	for _, c := range r.Checks {
		if c.Status != StatusOK {
			fmt.Fprintf(bw, "- %s %s: %s — %s\n", targetShort[c.Target], c.Op, c.Status, c.Detail)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(bw, "- %s\n", n)
	}
	for _, x := range r.Results {
		if x.Error != "" {
			fmt.Fprintf(bw, "- %s %s %d sessions: error — %s\n", targetShort[x.Target], x.Op, x.Threads, x.Error)
		}
	}
	return bw.Flush()
}

func (r *RemoteReport) methodNotes() []string {
	return []string{
		"Every target is driven through its C functions by the same harness (bench/, `github.com/miekg/pkcs11`), each in " +
			"an agent process of its own (libgohsm.so's mode comes from the environment the process starts with, and so does " +
			"p11-kit-client.so's server address). The parent runs one measurement at a time, targets interleaved and rotated " +
			"each repeat (A, B, C, D, then B, C, D, A, ...), so drift on the shared machine falls on all of them.",
		"A session is a goroutine of the Go host with its own PKCS#11 session, opened before the clock starts; during a " +
			"C call it holds an OS thread, so 32 sessions are 32 application threads calling at once. For remote mode they " +
			"share the module's one TLS connection, which sends whatever is queued as one batch frame.",
		"One op is what an application calls: C_SignInit + C_Sign, C_EncryptInit + C_Encrypt, C_FindObjectsInit + " +
			"C_FindObjects + C_FindObjectsFinal. miekg/pkcs11 asks for the output size first (C_Sign or C_Encrypt with a " +
			"NULL buffer) for every module alike: through p11-kit a sign is three round trips; remote mode answers the size query from the appliance's earlier answer (firmware-sim/client/sizes.go), so it makes two.",
		"ECDSA signs a 32-byte digest with CKM_ECDSA: p11-kit 0.24's client carries no CKM_ECDSA_SHA256. RSA-2048 signs " +
			"with CKM_SHA256_RSA_PKCS, which all four carry. AES-GCM 64 B (a fresh IV per op) and AES-CBC 64 B run on local " +
			"and remote only: p11-kit 0.24's client carries neither (its fixed table refuses them at C_EncryptInit; " +
			"tests/clients/p11kit.sh); AES-ECB 64 B is the AES op all four run, and the one the AES target uses.",
		fmt.Sprintf("C_FindObjects looks up one AES key by CKA_CLASS and CKA_LABEL among %d session keys made in the "+
			"setup session; the long-lived keys (EC, RSA, AES) are token objects.", r.Meta.FindKeys),
		"remote: `gohsm serve --dev --listen 127.0.0.1:0` on a fresh directory (dev PKI, audit log on: sign, encrypt " +
			"and find are not audited calls), the module with its `remote.conf` (TLS 1.3, client certificate). " +
			"p11-kit: `p11-kit-server --provider MODULE -n SOCKET pkcs11:token=gohsm-bench` (one `p11-kit-remote` process " +
			"per client connection, running the module), read through `p11-kit-client.so` with " +
			"P11_KIT_SERVER_ADDRESS=unix:path=SOCKET; no TLS, one machine by design. p11-kit + gohsm serves libgohsm.so in " +
			"local mode the same way, which isolates what p11-kit's transport costs.",
		"ops/s is ops over the wall time from the common start to the last session's end; the table shows the median of " +
			"the repeats. p50/p99 pool every op of every repeat (nearest rank).",
	}
}

// Section markers in docs/appliance.md; what lies between them is replaced.
const (
	measuredBegin = "<!-- bench-remote: begin (make bench-remote writes this part) -->"
	measuredEnd   = "<!-- bench-remote: end -->"
)

// WriteApplianceSection writes the summary for docs/appliance.md's
// "Measured" section.
func (r *RemoteReport) WriteApplianceSection(w io.Writer, fullDoc string) error {
	bw := bufio.NewWriter(w)
	r.writeMachine(bw)
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, sameMachine)
	fmt.Fprintln(bw)
	r.writeCommands(bw)
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "Targets (issue 11), at 32 sessions:")
	fmt.Fprintln(bw)
	r.writeGoals(bw)
	fmt.Fprintln(bw)
	if r.writeFloor(bw) {
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw, "ops/s, and their ratios (p11-kit 0.24's client carries neither AES-GCM nor AES-CBC: AES-ECB is the AES op all four run):")
	fmt.Fprintln(bw)
	r.writeRatioTable(bw)
	fmt.Fprintln(bw)
	if len(r.CHost) > 0 {
		fmt.Fprintln(bw, chostIntro)
		fmt.Fprintln(bw)
		r.writeCHost(bw)
		fmt.Fprintln(bw)
	}
	if len(r.GoBench) > 0 {
		fmt.Fprintln(bw, "The Go client (firmware-sim/client), appliance in the same process, over TLS on loopback:")
		fmt.Fprintln(bw)
		r.writeGoBench(bw)
		fmt.Fprintln(bw)
		r.writeBatchSummary(bw)
		fmt.Fprintln(bw)
	}
	r.writeTimeSummary(bw)
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "Latency, CPU per op on each side, profiles of where the time goes, and the method: [%s](%s).\n", fullDoc, fullDoc)
	return bw.Flush()
}

// UpdateApplianceDoc replaces the generated part of the "Measured" section
// of the document at path (between the markers; the first run replaces the
// whole section body, which was a placeholder).
func (r *RemoteReport) UpdateApplianceDoc(path, fullDoc string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	if err := r.WriteApplianceSection(&body, fullDoc); err != nil {
		return err
	}
	out, err := replaceMeasured(string(old), body.String())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

func replaceMeasured(doc, body string) (string, error) {
	block := measuredBegin + "\n\n" + strings.TrimRight(body, "\n") + "\n\n" + measuredEnd + "\n"
	if i := strings.Index(doc, measuredBegin); i >= 0 {
		j := strings.Index(doc[i:], measuredEnd)
		if j < 0 {
			return "", errors.New("begin marker without end marker")
		}
		end := i + j + len(measuredEnd)
		if end < len(doc) && doc[end] == '\n' {
			end++
		}
		return doc[:i] + block + doc[end:], nil
	}
	const head = "\n## Measured\n"
	i := strings.Index(doc, head)
	if i < 0 {
		return "", errors.New(`no "## Measured" section`)
	}
	start := i + len(head)
	end := len(doc)
	if j := strings.Index(doc[start:], "\n## "); j >= 0 {
		end = start + j + 1
	}
	rest := doc[end:]
	sep := ""
	if rest != "" {
		sep = "\n"
	}
	return doc[:start] + "\n" + block + sep + rest, nil
}
