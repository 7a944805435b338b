package gateway

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// Report is a run: conditions and one result per cell.
type Report struct {
	Date, CPU, GoVersion string
	Cores                int
	LoadStart, LoadEnd   string
	Config               Config
	Commands             string
	Targets              []*Target
	Results              []*Result
	Profiles             []*Profile
	// SignCosts are SignCost at the start and at the end of the run (when
	// it signs); the smaller bounds the sign targets (ceilingMarkdown).
	SignCosts []time.Duration
	// WriteCosts are WriteCost likewise (the CPU targets' lines).
	WriteCosts []time.Duration
	// Notes are free lines for the report (how OpenBao was built, ...).
	Notes []string
}

// Run measures every cell on every target, interleaving targets cell by
// cell; with Repeats > 1 each cell keeps the round with the median
// requests/s.
// settle writes back the page cache before a cell: the audit logs that
// one cell's server wrote (tens of MB a second, never fsynced by
// gohsm-sync-none or OpenBao's file device) would otherwise be flushed by
// the kernel during the next cells, whichever server they measure.
func settle() {
	syscall.Sync()
	time.Sleep(100 * time.Millisecond)
}

func Run(targets []*Target, cfg Config, log io.Writer) (*Report, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 32
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = time.Second
	}
	if len(cfg.Batches) == 0 {
		cfg.Batches = []int{1, 100}
	}
	if cfg.Repeats <= 0 {
		cfg.Repeats = 1
	}
	var ops []*Op
	for _, op := range Ops {
		if len(cfg.Ops) == 0 || slices.Contains(cfg.Ops, op.Key) {
			ops = append(ops, op)
		}
	}
	rep := &Report{
		Date: time.Now().UTC().Format("2006-01-02 15:04"), CPU: cpuModel(), GoVersion: runtime.Version(),
		Cores: runtime.NumCPU(), LoadStart: loadAvg(), Config: cfg, Targets: targets,
	}
	for _, t := range targets {
		if err := t.Setup(cfg.Conns); err != nil {
			return nil, err
		}
	}
	signs := slices.ContainsFunc(ops, func(op *Op) bool { return op.Key == "sign" })
	calibrate := func() {
		settle()
		if c, err := WriteCost(os.TempDir(), AuditRecordBytes, 250*time.Millisecond); err != nil {
			fmt.Fprintf(log, "write cost: %v\n", err)
		} else {
			fmt.Fprintf(log, "one write(2) of %d bytes alone: %v of one core's CPU\n", AuditRecordBytes, c.Round(100*time.Nanosecond))
			rep.WriteCosts = append(rep.WriteCosts, c)
		}
		if !signs {
			return
		}
		settle()
		c, err := SignCost(time.Second)
		if err != nil {
			fmt.Fprintf(log, "sign cost: %v\n", err)
			return
		}
		fmt.Fprintf(log, "ECDSA P-256 signature alone: %v of one core's CPU\n", c.Round(100*time.Nanosecond))
		rep.SignCosts = append(rep.SignCosts, c)
	}
	calibrate()
	rounds := map[string][]*Result{}
	var order []string
	for r := 0; r < cfg.Repeats; r++ {
		for _, op := range ops {
			for _, b := range cfg.Batches {
				for i := range targets {
					// Alternate who goes first, round by round.
					t := targets[(i+r)%len(targets)]
					settle()
					res, err := Measure(t, op, b, cfg)
					if err != nil {
						return nil, err
					}
					key := fmt.Sprintf("%s|%s|%d", t.Name, op.Key, b)
					if _, ok := rounds[key]; !ok {
						order = append(order, key)
					}
					rounds[key] = append(rounds[key], res)
					fmt.Fprintf(log, "%-8s %-8s batch %3d: %8.0f req/s %9.0f items/s p50 %v p99 %v cpu/req %v | half %0.f/s p99 %v (failed %d+%d)\n",
						t.Name, op.Key, b, res.ReqPerSec, res.ItemsPerSec, res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond),
						res.CPUPerReq().Round(time.Microsecond), res.HalfRate, res.HalfP99.Round(time.Microsecond), res.Failed, res.HalfFailed)
				}
			}
		}
	}
	for _, k := range order {
		rs := rounds[k]
		slices.SortFunc(rs, func(a, b *Result) int {
			switch {
			case a.ReqPerSec < b.ReqPerSec:
				return -1
			case a.ReqPerSec > b.ReqPerSec:
				return 1
			}
			return 0
		})
		rep.Results = append(rep.Results, rs[len(rs)/2])
	}
	calibrate()
	if cfg.PerfDir != "" && perfAvailable() {
		pc := cfg
		if pc.Duration > profileWindow {
			pc.Duration = profileWindow
		}
		for _, t := range targets {
			if len(cfg.Profile) > 0 && !slices.Contains(cfg.Profile, t.Name) {
				continue
			}
			for _, op := range ops {
				for _, b := range cfg.Batches {
					p, err := profileCell(t, op, b, pc)
					if err != nil {
						fmt.Fprintf(log, "profile %s %s batch %d: %v\n", t.Name, op.Key, b, err)
						continue
					}
					rep.Profiles = append(rep.Profiles, p)
				}
			}
		}
	}
	rep.LoadEnd = loadAvg()
	return rep, nil
}

// SignCost is the smaller SignCost measured in the run (0: none).
func (r *Report) SignCost() time.Duration { return smallest(r.SignCosts) }

// WriteCost is the smaller WriteCost measured in the run (0: none).
func (r *Report) WriteCost() time.Duration { return smallest(r.WriteCosts) }

func smallest(ds []time.Duration) time.Duration {
	best := time.Duration(0)
	for _, c := range ds {
		if c > 0 && (best == 0 || c < best) {
			best = c
		}
	}
	return best
}

// Find is the result of a cell.
func (r *Report) Find(target, opKey string, batch int) *Result {
	for _, op := range Ops {
		if op.Key != opKey {
			continue
		}
		for _, res := range r.Results {
			if res.Target == target && res.Op == op.Name && res.Batch == batch {
				return res
			}
		}
	}
	return nil
}
