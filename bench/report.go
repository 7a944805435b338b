package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ReportVersion changes when the JSON layout does.
const ReportVersion = 1

// Report is the outcome of a run; its JSON form is the published format.
type Report struct {
	Meta    Meta         `json:"meta"`
	Modules []ModuleInfo `json:"modules"`
	Ops     []Op         `json:"ops"`
	Checks  []Check      `json:"checks"`
	Results []Result     `json:"results"`
}

// Meta records the conditions of a run, so a number is never read without
// them.
type Meta struct {
	Version     int       `json:"version"`
	Mode        string    `json:"mode"`
	Started     time.Time `json:"started"`
	Seconds     float64   `json:"seconds"`
	GoVersion   string    `json:"go_version"`
	Platform    string    `json:"platform"`
	CPU         string    `json:"cpu"`
	NumCPU      int       `json:"num_cpu"`
	GOMAXPROCS  int       `json:"gomaxprocs"`
	LoadStart   string    `json:"loadavg_start"`
	LoadEnd     string    `json:"loadavg_end"`
	Threads     []int     `json:"threads"`
	DurationMs  int64     `json:"duration_ms"`
	WarmupMs    int64     `json:"warmup_ms"`
	Repeats     int       `json:"repeats"`
	FindObjects int       `json:"find_objects"`
	KeyStorage  string    `json:"key_storage"` // token or session
}

// Check is the untimed correctness check of one (target, op).
type Check struct {
	Target string `json:"target"`
	Op     string `json:"op"`
	Status string `json:"status"` // ok, skip or fail
	Detail string `json:"detail,omitempty"`
}

// Check statuses.
const (
	StatusOK   = "ok"
	StatusSkip = "skip"
	StatusFail = "fail"
)

// Result is one (target, op, threads) measurement over all repeats.
type Result struct {
	Target    string    `json:"target"`
	Op        string    `json:"op"`
	Threads   int       `json:"threads"`
	OpsPerSec float64   `json:"ops_per_sec"`      // median over repeats
	Runs      []float64 `json:"runs_ops_per_sec"` // each repeat
	Count     int64     `json:"count"`            // ops timed, all repeats
	P50Ns     int64     `json:"p50_ns"`
	P99Ns     int64     `json:"p99_ns"`
	Error     string    `json:"error,omitempty"`
}

func newMeta(cfg *Config, start time.Time) Meta {
	ks := "token"
	if cfg.SessionKeys {
		ks = "session"
	}
	return Meta{
		Version: ReportVersion, Mode: cfg.Mode, Started: start.UTC().Truncate(time.Second),
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		CPU: cpuModel(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		LoadStart: loadAvg(), Threads: cfg.Threads,
		DurationMs: cfg.Duration.Milliseconds(), WarmupMs: cfg.Warmup.Milliseconds(),
		Repeats: cfg.Repeats, FindObjects: cfg.FindObjects, KeyStorage: ks,
	}
}

func (m *Meta) finish(end time.Time) {
	m.Seconds = end.Sub(m.Started).Round(time.Second).Seconds()
	m.LoadEnd = loadAvg()
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// loadAvg is the 1, 5 and 15 minute load average: the first thing to look
// at before believing a number from a shared machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("bench report: %w", err)
	}
	if r.Meta.Version != ReportVersion {
		return nil, fmt.Errorf("bench report: version %d, want %d", r.Meta.Version, ReportVersion)
	}
	return &r, nil
}

// Merge adds other's results to r (for comparing runs saved separately, or
// adding ops measured later): a measurement r already has is kept from r.
func (r *Report) Merge(other *Report) {
	// A measurement is (target, op, threads): another report adds the ones
	// this one lacks, whether a new module or new ops of the same modules.
	type key struct {
		target, op string
		threads    int
	}
	have := map[string]bool{}
	measured := map[key]bool{}
	for _, x := range r.Results {
		have[x.Target] = true
		measured[key{x.Target, x.Op, x.Threads}] = true
	}
	for _, x := range other.Results {
		if !measured[key{x.Target, x.Op, x.Threads}] {
			r.Results = append(r.Results, x)
		}
	}
	for _, o := range other.Ops {
		if opIndex(r.Ops, o.Name) < 0 {
			r.Ops = append(r.Ops, o)
		}
	}
	for _, m := range other.Modules {
		if !have[m.Name] {
			r.Modules = append(r.Modules, m)
		}
	}
}

func opIndex(os []Op, name string) int {
	for i, o := range os {
		if o.Name == name {
			return i
		}
	}
	return -1
}

// Targets lists the targets that have results, in first-seen order.
func (r *Report) Targets() []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range r.Results {
		if !seen[x.Target] {
			seen[x.Target] = true
			out = append(out, x.Target)
		}
	}
	return out
}

// ThreadCounts lists the thread counts that have results, ascending.
func (r *Report) ThreadCounts() []int {
	seen := map[int]bool{}
	var out []int
	for _, x := range r.Results {
		if !seen[x.Threads] {
			seen[x.Threads] = true
			out = append(out, x.Threads)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Find returns the result for (target, op, threads), or nil.
func (r *Report) Find(target, op string, threads int) *Result {
	for i := range r.Results {
		x := &r.Results[i]
		if x.Target == target && x.Op == op && x.Threads == threads {
			return x
		}
	}
	return nil
}

// Ratio is A's ops/s over B's for one op and thread count.
type Ratio struct {
	Op      string  `json:"op"`
	Threads int     `json:"threads"`
	A       float64 `json:"a_ops_per_sec"`
	B       float64 `json:"b_ops_per_sec"`
	Ratio   float64 `json:"ratio"`
}

// Ratios compares target a with target b wherever both have a good result,
// in the report's op order, then by thread count.
func (r *Report) Ratios(a, b string) []Ratio {
	var out []Ratio
	for _, o := range r.Ops {
		for _, t := range r.ThreadCounts() {
			if x, ok := ratio(r.Find(a, o.Name, t), r.Find(b, o.Name, t)); ok {
				out = append(out, Ratio{Op: o.Name, Threads: t, A: r.Find(a, o.Name, t).OpsPerSec, B: r.Find(b, o.Name, t).OpsPerSec, Ratio: x})
			}
		}
	}
	return out
}

func ratio(a, b *Result) (float64, bool) {
	if a == nil || b == nil || a.Error != "" || b.Error != "" || a.OpsPerSec <= 0 || b.OpsPerSec <= 0 {
		return 0, false
	}
	return a.OpsPerSec / b.OpsPerSec, true
}

// GoalResult is one goal evaluated at one thread count.
type GoalResult struct {
	Goal    Goal    `json:"goal"`
	Ref     string  `json:"ref"` // the target A was compared with
	Threads int     `json:"threads"`
	Ratio   float64 `json:"ratio"`
	Status  string  `json:"status"` // met, not met, no data
}

// Goal statuses.
const (
	GoalMet    = "met"
	GoalNotMet = "not met"
	GoalNoData = "no data"
)

// EvaluateGoals checks goals with a as the candidate and b the reference
// (or raw, for a goal whose Ref says so). A goal for every thread count
// (Threads 0) yields one row per count run.
func (r *Report) EvaluateGoals(goals []Goal, a, b string) []GoalResult {
	var out []GoalResult
	for _, g := range goals {
		counts := []int{g.Threads}
		if g.Threads == 0 {
			counts = r.ThreadCounts()
		}
		for _, t := range counts {
			ref := g.reference(b)
			gr := GoalResult{Goal: g, Ref: ref, Threads: t, Status: GoalNoData}
			if x, ok := ratio(r.Find(a, g.Op, t), r.Find(ref, g.Op, t)); ok {
				gr.Ratio = x
				gr.Status = GoalNotMet
				if x >= g.Min {
					gr.Status = GoalMet
				}
			}
			out = append(out, gr)
		}
	}
	return out
}

// WriteRatios prints the compare table: A/B per op and thread count.
func (r *Report) WriteRatios(w io.Writer, a, b string) error {
	rs := r.Ratios(a, b)
	if len(rs) == 0 {
		return fmt.Errorf("no op has results for both %q and %q (targets: %s)", a, b, strings.Join(r.Targets(), ", "))
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%-24s %7s %14s %14s %9s\n", "op", "threads", a+" ops/s", b+" ops/s", a+"/"+b)
	for _, x := range rs {
		fmt.Fprintf(bw, "%-24s %7d %14s %14s %9s\n", x.Op, x.Threads, fmtRate(x.A), fmtRate(x.B), fmtRatio(x.Ratio))
	}
	return bw.Flush()
}

// fmtRate prints ops/s with three significant digits and a thousands unit.
func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', sig3(v/1e6), 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', sig3(v/1e3), 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', sig3(v), 64)
	}
}

func sig3(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	default:
		return 2
	}
}

// fmtDur prints a latency in the unit that keeps it short.
func fmtDur(ns int64) string {
	d := float64(ns)
	switch {
	case ns <= 0:
		return "-"
	case d >= 1e9:
		return strconv.FormatFloat(d/1e9, 'f', sig3(d/1e9), 64) + " s"
	case d >= 1e6:
		return strconv.FormatFloat(d/1e6, 'f', sig3(d/1e6), 64) + " ms"
	case d >= 1e3:
		return strconv.FormatFloat(d/1e3, 'f', sig3(d/1e3), 64) + " µs"
	default:
		return strconv.FormatFloat(d, 'f', 0, 64) + " ns"
	}
}
