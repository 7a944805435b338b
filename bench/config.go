package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Module names a PKCS#11 module to load.
type Module struct {
	Name string `json:"name"` // short name used in tables (gohsm, softhsm2)
	Path string `json:"path"`
}

// RawName is the pseudo-target that runs every op on the Go libraries.
const RawName = "raw"

// Config is one benchmark run.
type Config struct {
	Modules []Module
	// Raw adds the raw Go library column.
	Raw bool
	// Ops to run, by name (see Ops); empty means all.
	Ops []string
	// Threads lists the worker counts; each worker owns one session.
	Threads []int
	// Duration of one timed measurement; Warmup runs untimed before it.
	Duration, Warmup time.Duration
	// Repeats of every (target, op, threads) measurement, interleaved.
	Repeats int
	// FindObjects is the number of session objects C_FindObjects searches.
	FindObjects int
	// SessionKeys makes the long-lived keys session objects; by default they
	// are token objects, as an HSM's keys are.
	SessionKeys bool
	// SMCodes is the path of docs/sm-codes.json; empty or missing means no
	// SM ops on modules.
	SMCodes string
	// SOPIN and UserPIN for the token the harness initialises.
	SOPIN, UserPIN string
	// Progress, when set, receives a one-line progress display.
	Progress io.Writer
	// Logf receives setup notes (skips, module info); nil is silent.
	Logf func(format string, args ...any)
	// Mode is a label recorded in the report (quick, full, custom).
	Mode string
}

// Quick is a whole run in well under two minutes on two cores.
func Quick() Config {
	return Config{
		Raw: true, Threads: []int{1, 2}, Duration: 300 * time.Millisecond,
		Warmup: 50 * time.Millisecond, Repeats: 1, FindObjects: 10000, Mode: "quick",
	}
}

// Full is the run behind docs/benchmarks.md: three interleaved repeats of
// one second each (the median damps a noisy neighbour), and 4 threads on
// top of 1 and 2 to show what oversubscribing two cores does. About 12
// minutes with two modules and raw.
func Full() Config {
	return Config{
		Raw: true, Threads: []int{1, 2, 4}, Duration: time.Second,
		Warmup: 200 * time.Millisecond, Repeats: 3, FindObjects: 10000, Mode: "full",
	}
}

// DefaultModules lists the modules found at their usual places: our module
// under build/ (relative to root) and Debian's SoftHSMv2.
func DefaultModules(root string) []Module {
	var ms []Module
	for _, m := range []Module{
		{Name: "gohsm", Path: filepath.Join(root, "build", "libgohsm.so")},
		{Name: "softhsm2", Path: "/usr/lib/softhsm/libsofthsm2.so"},
	} {
		if _, err := os.Stat(m.Path); err == nil {
			ms = append(ms, m)
		}
	}
	return ms
}

// ParseModule reads "name=path" or a bare path (named after the file).
func ParseModule(s string) Module {
	if name, path, ok := strings.Cut(s, "="); ok && !strings.Contains(name, "/") {
		return Module{Name: name, Path: path}
	}
	b := strings.TrimSuffix(filepath.Base(s), filepath.Ext(s))
	return Module{Name: strings.TrimPrefix(b, "lib"), Path: s}
}

func (c *Config) normalise() error {
	if len(c.Threads) == 0 {
		c.Threads = []int{1}
	}
	for _, t := range c.Threads {
		if t < 1 {
			return fmt.Errorf("bench: thread count %d", t)
		}
	}
	if c.Duration <= 0 {
		return fmt.Errorf("bench: duration %v", c.Duration)
	}
	if c.Repeats < 1 {
		c.Repeats = 1
	}
	if c.FindObjects < 1 {
		c.FindObjects = 10000
	}
	if c.SOPIN == "" {
		c.SOPIN = "31415926"
	}
	if c.UserPIN == "" {
		c.UserPIN = "27182818"
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	seen := map[string]bool{RawName: true}
	for _, m := range c.Modules {
		if seen[m.Name] {
			return fmt.Errorf("bench: target name %q used twice", m.Name)
		}
		seen[m.Name] = true
	}
	for _, o := range c.Ops {
		if opByName(o) == nil {
			return fmt.Errorf("bench: unknown op %q (have %s)", o, strings.Join(OpNames(), ", "))
		}
	}
	if len(c.Modules) == 0 && !c.Raw {
		return fmt.Errorf("bench: nothing to measure: no module and no raw")
	}
	return nil
}
