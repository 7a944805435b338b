package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Run measures every selected op on every target and returns the report.
// It loads each module once into this process; a module holds process-wide
// state, so call Run at most once per process with a given module.
func Run(cfg Config) (*Report, error) {
	if err := cfg.normalise(); err != nil {
		return nil, err
	}
	findCount = cfg.FindObjects
	started := time.Now()
	rep := &Report{Meta: newMeta(&cfg, started)}

	if len(cfg.Modules) > 0 {
		tmp, err := checkIsolated()
		if err != nil {
			return nil, err
		}
		if tmp != "" {
			defer os.RemoveAll(tmp) // runs after the modules are closed
		}
	}
	sm, err := LoadSMCodes(cfg.SMCodes)
	if err != nil {
		return nil, err
	}

	var targets []target
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()
	for _, m := range cfg.Modules {
		pm, err := openModule(m, &cfg, sm)
		if err != nil {
			return nil, err
		}
		targets = append(targets, pm)
		rep.Modules = append(rep.Modules, pm.info)
		cfg.Logf("loaded %s: %s %s (%s)", m.Name, pm.info.Manufacturer, pm.info.LibraryVersion, m.Path)
	}
	if cfg.Raw {
		targets = append(targets, &rawTarget{})
	}

	selected := Ops()
	if len(cfg.Ops) > 0 {
		selected = selected[:0]
		for _, o := range Ops() {
			if slices.Contains(cfg.Ops, o.Name) {
				selected = append(selected, o)
			}
		}
	}
	rep.Ops = selected

	// Preflight: set up and check each (target, op) once, untimed.
	runnable := map[string][]target{}
	total := 0
	for i := range selected {
		op := &selected[i]
		for _, t := range targets {
			c := Check{Target: t.targetName(), Op: op.Name, Status: StatusOK}
			if err := preflight(t, op); err != nil {
				if why, ok := isSkip(err); ok {
					c.Status, c.Detail = StatusSkip, why
				} else {
					c.Status, c.Detail = StatusFail, err.Error()
				}
				cfg.Logf("%s %s: %s: %s", c.Target, op.Name, c.Status, c.Detail)
			} else {
				runnable[op.Name] = append(runnable[op.Name], t)
				total += len(cfg.Threads) * cfg.Repeats
			}
			rep.Checks = append(rep.Checks, c)
		}
	}

	prog := newProgress(cfg.Progress, total)
	defer prog.done()
	for i := range selected {
		op := &selected[i]
		ts := runnable[op.Name]
		if len(ts) == 0 {
			continue
		}
		for _, threads := range cfg.Threads {
			acc := make([]*accum, len(ts))
			for j := range acc {
				acc[j] = &accum{}
			}
			for r := 0; r < cfg.Repeats; r++ {
				// Interleave targets, rotating who goes first each repeat,
				// so that drift and order effects fall on all of them.
				for k := range ts {
					j := (k + r) % len(ts)
					prog.step(fmt.Sprintf("%s %s t=%d r=%d/%d", op.Name, ts[j].targetName(), threads, r+1, cfg.Repeats))
					acc[j].add(measure(ts[j], op, threads, &cfg))
				}
			}
			for j, t := range ts {
				rep.Results = append(rep.Results, acc[j].result(t.targetName(), op.Name, threads))
			}
		}
	}
	rep.Meta.finish(time.Now())
	return rep, nil
}

func preflight(t target, op *Op) (err error) {
	if err := t.prepare(op); err != nil {
		return err
	}
	w, err := t.newWorker(op, 0)
	if err != nil {
		return err
	}
	defer w.close()
	if err := w.check(); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	return nil
}

// sample is one timed measurement.
type sample struct {
	ops     int64
	elapsed time.Duration
	lat     []int64
	err     error
}

// measure opens one worker (session) per thread, warms up, then lets all
// workers run op until cfg.Duration has passed. Opening sessions is not
// timed; ops/s is ops over the wall time from the common start to the last
// worker's end (a slow op may run past the deadline; it still counts).
func measure(t target, op *Op, threads int, cfg *Config) sample {
	ws := make([]*worker, 0, threads)
	defer func() {
		for _, w := range ws {
			w.close()
		}
	}()
	for i := 0; i < threads; i++ {
		w, err := t.newWorker(op, i)
		if err != nil {
			return sample{err: fmt.Errorf("worker %d: %w", i, err)}
		}
		ws = append(ws, w)
	}
	if cfg.Warmup > 0 {
		if s := runFor(ws, cfg.Warmup, false); s.err != nil {
			return s
		}
	}
	return runFor(ws, cfg.Duration, true)
}

func runFor(ws []*worker, d time.Duration, record bool) sample {
	var wg sync.WaitGroup
	type out struct {
		n   int64
		end time.Time
		lat *latencies
		err error
	}
	outs := make([]out, len(ws))
	start := make(chan struct{})
	var t0 time.Time
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := newLatencies(uint64(i) + 1)
			<-start
			deadline := t0.Add(d)
			var n int64
			var err error
			for {
				s := time.Now()
				if !s.Before(deadline) {
					break
				}
				if err = w.do(); err != nil {
					break
				}
				n++
				if record {
					lat.add(time.Since(s))
				}
			}
			outs[i] = out{n: n, end: time.Now(), lat: lat, err: err}
		}()
	}
	runtime.GC() // keep a previous measurement's garbage out of this one
	t0 = time.Now()
	close(start)
	wg.Wait()
	var s sample
	end := t0
	for _, o := range outs {
		s.ops += o.n
		if o.end.After(end) {
			end = o.end
		}
		if o.err != nil && s.err == nil {
			s.err = o.err
		}
		if record {
			s.lat = append(s.lat, o.lat.samples...)
		}
	}
	s.elapsed = end.Sub(t0)
	return s
}

// accum gathers the repeats of one (target, op, threads).
type accum struct {
	rates []float64
	ops   int64
	lat   []int64
	err   error
}

func (a *accum) add(s sample) {
	if s.err != nil {
		if a.err == nil {
			a.err = s.err
		}
		return
	}
	if s.elapsed > 0 {
		a.rates = append(a.rates, float64(s.ops)/s.elapsed.Seconds())
	}
	a.ops += s.ops
	a.lat = append(a.lat, s.lat...)
}

func (a *accum) result(target, op string, threads int) Result {
	r := Result{Target: target, Op: op, Threads: threads, Runs: a.rates, Count: a.ops}
	if a.err != nil {
		r.Error = a.err.Error()
	}
	if len(a.rates) > 0 {
		r.OpsPerSec = Median(a.rates)
	}
	slices.Sort(a.lat)
	r.P50Ns, r.P99Ns = Percentile(a.lat, 50), Percentile(a.lat, 99)
	return r
}

// LoadSMCodes reads docs/sm-codes.json: a flat object name -> "0x..." (or
// a JSON number). An empty path or a missing file means no SM codes.
func LoadSMCodes(path string) (map[string]uint, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make(map[string]uint, len(raw))
	for k, v := range raw {
		var s string
		var n uint64
		if json.Unmarshal(v, &s) == nil {
			if _, err := fmt.Sscanf(s, "0x%x", &n); err != nil {
				if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
					return nil, fmt.Errorf("%s: %s: value %q is not a number", path, k, s)
				}
			}
		} else if err := json.Unmarshal(v, &n); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		out[k] = uint(n)
	}
	return out, nil
}
