package bench

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The Go client's own benchmarks (firmware-sim/client/bench_test.go), run
// with go test and reported beside the C ABI table: an appliance over TLS on
// loopback in the benchmark's process, the client calling it directly
// (hsm.Backend, no cgo, no PKCS#11 shim).

// GoClientBenchPattern selects them.
const GoClientBenchPattern = "RoundTrip|SignSingle|SignBatch|SignParallel"

// GoBenchResult is one Go benchmark over its runs: medians.
type GoBenchResult struct {
	Name    string               `json:"name"` // without Benchmark and the -GOMAXPROCS suffix
	Runs    int                  `json:"runs"`
	NsPerOp float64              `json:"ns_per_op"`
	Metrics map[string]float64   `json:"metrics,omitempty"` // by unit: µs/sign, signs/s
	Values  map[string][]float64 `json:"values,omitempty"`  // every run, by unit (ns/op included)
}

// runGoClientBench builds the client's test binary and runs its
// benchmarks GoBenchCount times; a run during which other processes used
// more than cfg.Quiet CPUs is made again (at most twice).
func runGoClientBench(cfg RemoteConfig, dir string, logf func(string, ...any)) ([]GoBenchResult, string, error) {
	bin := filepath.Join(dir, "client.test")
	build := exec.Command(cfg.GoCmd, "test", "-c", "-o", bin, "./firmware-sim/client")
	build.Dir, build.Env = cfg.Root, cleanEnv()
	if out, err := build.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("go test -c ./firmware-sim/client: %w\n%s", err, out)
	}
	args := []string{"-test.run", "^$", "-test.bench", GoClientBenchPattern, "-test.benchtime", cfg.GoBenchTime}
	cmdline := fmt.Sprintf("go test -c -o client.test ./firmware-sim/client, then %d runs of ./client.test %s",
		max(cfg.GoBenchCount, 1), strings.Join(quoteArgs(args), " "))
	var all strings.Builder
	for run := 1; run <= max(cfg.GoBenchCount, 1); run++ {
		for try := 1; ; try++ {
			cmd := exec.Command(bin, args...)
			cmd.Dir, cmd.Env = filepath.Join(cfg.Root, "firmware-sim", "client"), cleanEnv()
			m0 := machineCPU()
			out, err := cmd.CombinedOutput()
			m1 := machineCPU()
			if err != nil {
				return nil, cmdline, fmt.Errorf("%s: %w\n%s", bin, err, out)
			}
			var own cpuTimes
			if ps := cmd.ProcessState; ps != nil {
				own = cpuTimes{user: ps.UserTime(), sys: ps.SystemTime()}
			}
			u := cpuUse{client: own, machine: m1.sub(m0)}
			if other := u.otherCPUs(); other > cfg.Quiet && try < 3 {
				logf("Go client benchmarks, run %d: other processes used %.2f CPUs; running again", run, other)
				continue
			}
			all.Write(out)
			break
		}
	}
	res, err := parseGoBench(strings.NewReader(all.String()))
	if err != nil {
		return nil, cmdline, err
	}
	if len(res) == 0 {
		return nil, cmdline, fmt.Errorf("%s: no benchmark lines\n%s", cmdline, all.String())
	}
	return res, cmdline, nil
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "|^$ *") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseGoBench reads go test -bench output: per benchmark, the median of
// each unit over its runs, in first-seen order.
func parseGoBench(r io.Reader) ([]GoBenchResult, error) {
	byName := map[string]*GoBenchResult{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("benchmark line %q: odd value/unit pairs", sc.Text())
		}
		g := byName[m[1]]
		if g == nil {
			g = &GoBenchResult{Name: m[1], Values: map[string][]float64{}}
			byName[m[1]] = g
			order = append(order, m[1])
		}
		g.Runs++
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %w", sc.Text(), err)
			}
			g.Values[f[i+1]] = append(g.Values[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]GoBenchResult, 0, len(order))
	for _, n := range order {
		g := byName[n]
		g.Metrics = map[string]float64{}
		units := make([]string, 0, len(g.Values))
		for u := range g.Values {
			units = append(units, u)
		}
		slices.Sort(units)
		for _, u := range units {
			if u == "ns/op" {
				g.NsPerOp = Median(g.Values[u])
				continue
			}
			g.Metrics[u] = Median(g.Values[u])
		}
		out = append(out, *g)
	}
	return out, nil
}

// goBench finds a result by name.
func goBench(rs []GoBenchResult, name string) *GoBenchResult {
	for i := range rs {
		if rs[i].Name == name {
			return &rs[i]
		}
	}
	return nil
}
