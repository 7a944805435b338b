package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Op is one measured Transit operation.
type Op struct {
	Name  string // "encrypt 64 B"
	Key   string // short name for tables and flags: "encrypt", "sign"
	Path  string // after the mount: "encrypt/<key>"
	Field string // the response field per item: "ciphertext", "signature"
	item  func() string
}

// Ops are the two operations.
var Ops = []*Op{
	{Name: "encrypt 64 B (aes256-gcm96)", Key: "encrypt", Path: "encrypt/" + aesKey, Field: "ciphertext",
		item: func() string { return `{"plaintext":"` + randB64(64) + `"}` }},
	{Name: "sign ECDSA P-256 (32 B input, sha2-256)", Key: "sign", Path: "sign/" + ecKey, Field: "signature",
		item: func() string { return `{"input":"` + randB64(32) + `"}` }},
}

func randB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// body is the request body of batch items: the item itself for 1, else
// batch_input.
func (op *Op) body(batch int) []byte {
	if batch == 1 {
		return []byte(op.item())
	}
	var b bytes.Buffer
	b.WriteString(`{"batch_input":[`)
	for i := 0; i < batch; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(op.item())
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// Result is one cell.
type Result struct {
	Target, Op string
	Batch      int

	Requests, Failed int
	FirstError       string
	Seconds          float64
	ReqPerSec        float64
	ItemsPerSec      float64
	P50, P99         time.Duration
	// ServerCPU and LoadCPU are the CPU time the server and the load
	// generator spent in the window; 0 when the server's PID is unknown.
	ServerCPU, LoadCPU time.Duration

	// The open loop at half the peak rate.
	HalfRate     float64 // requests/s asked
	HalfAchieved float64 // requests/s served
	HalfP50      time.Duration
	HalfP99      time.Duration
	HalfFailed   int
}

// CPUPerReq is the server's CPU per request.
func (r *Result) CPUPerReq() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.ServerCPU / time.Duration(r.Requests)
}

// CPUPer1k is the server's CPU per 1,000 items.
func (r *Result) CPUPer1k() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.ServerCPU * 1000 / time.Duration(r.Requests*r.Batch)
}

// Config is a run's shape.
type Config struct {
	Conns    int           // connections (and closed-loop workers): 32
	Warmup   time.Duration // before each timed window
	Duration time.Duration // each timed window
	Batches  []int         // 1, 100
	Ops      []string      // Op keys; empty: all
	Repeats  int           // rounds over the cells (results: the median round by req/s)
	// PerfDir, when set (and perf is installed), profiles the servers in
	// Profile with one extra window per cell and keeps the data here.
	PerfDir string
	Profile []string // target names; empty: every target
}

// requester is one worker's reusable request.
type requester struct {
	t    *Target
	req  *fasthttp.Request
	resp *fasthttp.Response
	want int
}

func newRequester(t *Target, op *Op, body []byte, batch int) *requester {
	r := &requester{t: t, req: fasthttp.AcquireRequest(), resp: fasthttp.AcquireResponse(), want: batch}
	r.req.Header.SetMethod("POST")
	r.req.SetRequestURI("http://" + t.addr + "/v1/" + t.Mount + "/" + op.Path)
	r.req.Header.Set("X-Vault-Token", t.Token)
	r.req.Header.SetContentType("application/json")
	r.req.SetBody(body)
	return r
}

var resultMarker = []byte(`"vault:v1:`)

// do sends the request once; the quick check is status 200 and one
// versioned ciphertext or signature per item.
func (r *requester) do() error {
	if err := r.t.client.DoTimeout(r.req, r.resp, 30*time.Second); err != nil {
		return err
	}
	if r.resp.StatusCode() != 200 {
		return fmt.Errorf("status %d: %.200s", r.resp.StatusCode(), r.resp.Body())
	}
	if n := bytes.Count(r.resp.Body(), resultMarker); n != r.want {
		return fmt.Errorf("%d results for %d items: %.200s", n, r.want, r.resp.Body())
	}
	return nil
}

func (r *requester) release() {
	fasthttp.ReleaseRequest(r.req)
	fasthttp.ReleaseResponse(r.resp)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

type failures struct {
	n     atomic.Int64
	mu    sync.Mutex
	first string
}

func (f *failures) add(err error) {
	if f.n.Add(1) == 1 {
		f.mu.Lock()
		f.first = err.Error()
		f.mu.Unlock()
	}
}

// Measure runs one cell: the closed loop for the peak and the server's
// CPU, then the open loop at half the peak rate.
func Measure(t *Target, op *Op, batch int, cfg Config) (*Result, error) {
	body := op.body(batch)
	// The first response of the cell, decoded fully.
	st, resp, err := t.call("POST", "/v1/"+t.Mount+"/"+op.Path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", t.Name, op.Key, err)
	}
	if err := check(op, batch, st, resp); err != nil {
		return nil, fmt.Errorf("%s %s batch %d: %w", t.Name, op.Key, batch, err)
	}
	res := &Result{Target: t.Name, Op: op.Name, Batch: batch}
	if err := closedLoop(t, op, body, batch, cfg, res); err != nil {
		return nil, err
	}
	if res.ReqPerSec > 0 {
		openLoop(t, op, body, batch, cfg, res, res.ReqPerSec/2)
	}
	return res, nil
}

func closedLoop(t *Target, op *Op, body []byte, batch int, cfg Config, res *Result) error {
	var measuring atomic.Bool
	var t0 atomic.Int64
	var stop atomic.Bool
	var fails failures
	lats := make([][]time.Duration, cfg.Conns)
	var wg sync.WaitGroup
	for w := 0; w < cfg.Conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := newRequester(t, op, body, batch)
			defer r.release()
			mine := make([]time.Duration, 0, 4096)
			for !stop.Load() {
				start := time.Now()
				err := r.do()
				end := time.Now()
				if !measuring.Load() || start.UnixNano() < t0.Load() {
					continue
				}
				if err != nil {
					fails.add(err)
					continue
				}
				mine = append(mine, end.Sub(start))
			}
			lats[w] = mine
		}(w)
	}
	time.Sleep(cfg.Warmup)
	srv0, _ := serverCPU(t)
	self0, _ := procCPU(0)
	start := time.Now()
	t0.Store(start.UnixNano())
	measuring.Store(true)
	time.Sleep(cfg.Duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	srv1, _ := serverCPU(t)
	self1, _ := procCPU(0)
	stop.Store(true)
	wg.Wait()

	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.Requests = len(all)
	res.Failed = int(fails.n.Load())
	res.FirstError = fails.first
	res.Seconds = elapsed.Seconds()
	res.ReqPerSec = float64(len(all)) / elapsed.Seconds()
	res.ItemsPerSec = res.ReqPerSec * float64(batch)
	res.P50, res.P99 = percentile(all, 0.50), percentile(all, 0.99)
	if t.PID > 0 {
		res.ServerCPU = srv1 - srv0
	}
	res.LoadCPU = self1 - self0
	return nil
}

func serverCPU(t *Target) (time.Duration, error) {
	if t.PID <= 0 {
		return 0, nil
	}
	sum, err := procCPU(t.PID)
	for _, pid := range t.AlsoPIDs {
		c, perr := procCPU(pid)
		sum += c
		if err == nil {
			err = perr
		}
	}
	return sum, err
}

// openLoop sends requests on a fixed schedule at rate per second over the
// same connections; latency runs from each request's scheduled time.
func openLoop(t *Target, op *Op, body []byte, batch int, cfg Config, res *Result, rate float64) {
	interval := time.Duration(float64(time.Second) / rate)
	warm := cfg.Warmup / 2
	total := warm + cfg.Duration
	n := int(total / interval)
	sched := make(chan time.Time, n+1)
	var fails failures
	lats := make([][]time.Duration, cfg.Conns)
	var wg sync.WaitGroup
	begin := time.Now().Add(10 * time.Millisecond)
	measureFrom := begin.Add(warm)
	for w := 0; w < cfg.Conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := newRequester(t, op, body, batch)
			defer r.release()
			var mine []time.Duration
			for at := range sched {
				err := r.do()
				if at.Before(measureFrom) {
					continue
				}
				if err != nil {
					fails.add(err)
					continue
				}
				mine = append(mine, time.Since(at))
			}
			lats[w] = mine
		}(w)
	}
	for i := 0; i < n; i++ {
		at := begin.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		sched <- at
	}
	close(sched)
	wg.Wait()
	end := time.Now()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.HalfRate = rate
	res.HalfAchieved = float64(len(all)) / end.Sub(measureFrom).Seconds()
	res.HalfP50, res.HalfP99 = percentile(all, 0.50), percentile(all, 0.99)
	res.HalfFailed = int(fails.n.Load())
}
