package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Where the server's CPU goes: with Config.PerfDir set and linux-perf
// installed, each cell of a profiled target gets one extra window (not in
// the table: perf's sampling costs CPU too) with `perf record -g` on the
// server, summarised as the inclusive share of marker functions.

// marker is a function whose inclusive time says where a request's CPU
// goes; match is a substring of the symbol (| separates alternatives).
type marker struct{ Label, match string }

var markers = []marker{
	{"HTTP server (fasthttp serveConn)", "fasthttp.(*Server).serveConn"},
	{"gateway request handling (gateway/server handle)", "gateway/server.(*Server).handle"},
	{"audit log write (gateway/audit Write)", "gateway/audit.(*Log).Write"},
	{"audit: fsync", "os.(*File).Sync"},
	{"audit: redacting data (JSON scan or typed, and HMAC of secret fields)", "gateway/audit.(*hasher).appendRedacted|gateway/audit.(*hasher).redactJSON|gateway/server.hotData.AppendRedacted"},
	{"request body decoding (gateway/server decodeBody: fast path, else encoding/json)", "gateway/server.decodeBody"},
	{"response data encoding (gateway/server encodeData)", "gateway/server.encodeData"},
	{"Transit engine (gateway/transit)", "gateway/transit.(*Engine).Encrypt|gateway/transit.(*Engine).Sign"},
	{"token pool Do (session, find, the token call)", "gateway/pool.(*Pool).Do"},
	{"token engine (hsm.(*Module) calls)", "hsm.(*Module)."},
	{"Go GC (gcBgMarkWorker)", "runtime.gcBgMarkWorker"},
	{"Go allocation (mallocgc)", "runtime.mallocgc"},
	{"Go scheduler (schedule)", "runtime.schedule"},
}

// Profile is one cell's server profile: marker label -> inclusive percent.
type Profile struct {
	Target, Op string
	Batch      int
	Samples    int
	Shares     map[string]float64
	File       string
}

// perfAvailable reports whether perf can record here.
func perfAvailable() bool {
	_, err := exec.LookPath("perf")
	return err == nil
}

// profileCell runs the closed loop for d with perf recording the server.
func profileCell(t *Target, op *Op, batch int, cfg Config) (*Profile, error) {
	if t.PID <= 0 {
		return nil, fmt.Errorf("no server PID")
	}
	if err := os.MkdirAll(cfg.PerfDir, 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(cfg.PerfDir, fmt.Sprintf("%s-%s-%d.perf.data", t.Name, op.Key, batch))
	rec := exec.Command("perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(t.PID), "-o", file)
	var recErr bytes.Buffer
	rec.Stderr = &recErr
	if err := rec.Start(); err != nil {
		return nil, err
	}
	var res Result
	err := closedLoop(t, op, op.body(batch), batch, cfg, &res)
	rec.Process.Signal(syscall.SIGINT)
	werr := rec.Wait()
	if err != nil {
		return nil, err
	}
	if werr != nil && !strings.Contains(recErr.String(), "Captured and wrote") {
		return nil, fmt.Errorf("perf record: %v: %s", werr, recErr.String())
	}
	out, err := exec.Command("perf", "report", "-i", file, "--children", "--sort", "sym", "--stdio", "-g", "none").Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %v", err)
	}
	p := parseReport(out)
	p.Target, p.Op, p.Batch, p.File = t.Name, op.Name, batch, file
	return p, nil
}

// parseReport reads `perf report --children --sort sym --stdio -g none`:
// lines "  Children  Self  [.] symbol", and the sample count from the
// header. A marker's share is its best-matching symbol's inclusive share
// (nested frames overlap, so shares are not summed).
func parseReport(out []byte) *Profile {
	p := &Profile{Shares: map[string]float64{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# Samples:") {
			f := strings.Fields(line)
			if len(f) >= 3 {
				n, _ := strconv.Atoi(strings.TrimRight(f[2], "KkMm"))
				p.Samples = n
				if strings.HasSuffix(f[2], "K") || strings.HasSuffix(f[2], "k") {
					p.Samples *= 1000
				}
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		sym := strings.Join(f[3:], " ")
		for _, m := range markers {
			for _, alt := range strings.Split(m.match, "|") {
				if strings.Contains(sym, alt) && pct > p.Shares[m.Label] {
					p.Shares[m.Label] = pct
				}
			}
		}
	}
	return p
}

// profileWindow is how long a profiled window lasts at most.
const profileWindow = 10 * time.Second
