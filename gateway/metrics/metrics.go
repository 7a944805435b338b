// Package metrics is the gateway's Prometheus instrumentation: request
// counts and latencies per operation and status, batch sizes, the token
// pool's health, quota refusals and audit failures, served at
// /v1/sys/metrics in the Prometheus text format.
//
// The library is github.com/prometheus/client_golang, the Prometheus
// project's own Go client: maintained by the Prometheus team, the reference
// implementation of the exposition formats, used by Vault, Kubernetes and
// most Go servers, and with lock-free (atomic) counters and histograms on the
// hot path. Its promhttp handler is net/http, and the gateway is fasthttp,
// so WriteText writes the exposition to any io.Writer through
// prometheus.Gatherer and expfmt (the same encoder promhttp uses).
//
// # Cost per request
//
// The core resolves an *Op once per route (Metrics.Op) and calls Op.Done
// with the status and the duration of each request: one atomic load to
// find the (operation, status) pair's series (made on first use), one
// atomic add for the counter and the histogram's bucket, count and sum. No
// map lookup, no label hashing, no allocation on the hot path
// (BenchmarkOpDone).
//
// # Series
//
//	gohsm_gateway_requests_total{operation,status}            counter
//	gohsm_gateway_request_duration_seconds{operation,status}  histogram
//	gohsm_gateway_batch_items{operation}                      histogram (batch_input sizes)
//	gohsm_gateway_scheduler_batch_items                       histogram (coalesced batches)
//	gohsm_gateway_pool_token_healthy{token}                   gauge 1|0
//	gohsm_gateway_pool_retries_total{token}                   counter
//	gohsm_gateway_quota_rejected_total                        counter (429s)
//	gohsm_gateway_audit_failures_total{kind}                  counter (request|response)
//	go_*, process_*                                           the Go runtime and process
//	                                                          (CPU seconds: server CPU per item)
//
// "operation" is the core's name for a route (encrypt, decrypt, sign,
// keys.read, sys.health, ...): a fixed set, never a key name or a path, so
// the number of series stays bounded. "status" is the HTTP status code.
package metrics

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// Namespace prefixes every gateway series.
const Namespace = "gohsm_gateway"

// DefaultLatencyBuckets are the request duration buckets, in seconds: 50 µs
// to 10 s, dense where the gateway lives (sub-millisecond to a few ms).
var DefaultLatencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
}

// DefaultBatchBuckets are the batch size buckets (items).
var DefaultBatchBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}

// Options configure New. The zero value is the defaults.
type Options struct {
	// LatencyBuckets and BatchBuckets override the defaults.
	LatencyBuckets []float64
	BatchBuckets   []float64
	// NoRuntimeMetrics leaves out the Go runtime and process collectors.
	NoRuntimeMetrics bool
	// Registry, if not nil, is used instead of a new one (the core may
	// register its own collectors on it too).
	Registry *prometheus.Registry
}

// Metrics is the gateway's metric set. It is safe for concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	batch     *prometheus.HistogramVec
	coalesced prometheus.Histogram
	health    *prometheus.GaugeVec
	retries   *prometheus.CounterVec
	rejected  prometheus.Counter
	auditFail *prometheus.CounterVec

	mu  sync.Mutex
	ops atomic.Pointer[map[string]*Op] // copy-on-write: Op never locks
}

// New makes the metric set and registers it.
func New(opts Options) *Metrics {
	if opts.LatencyBuckets == nil {
		opts.LatencyBuckets = DefaultLatencyBuckets
	}
	if opts.BatchBuckets == nil {
		opts.BatchBuckets = DefaultBatchBuckets
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "requests_total",
			Help: "Requests served, by operation and HTTP status.",
		}, []string{"operation", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "request_duration_seconds",
			Help:    "Time from the request's arrival to its response, by operation and HTTP status.",
			Buckets: opts.LatencyBuckets,
		}, []string{"operation", "status"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "batch_items",
			Help:    "Items per request (batch_input size; 1 for a single item), by operation.",
			Buckets: opts.BatchBuckets,
		}, []string{"operation"}),
		coalesced: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "scheduler_batch_items",
			Help:    "Items per batch the scheduler sent to a token (after coalescing concurrent requests).",
			Buckets: opts.BatchBuckets,
		}),
		health: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "pool_token_healthy",
			Help: "1 if the pool's token is in service, 0 if health checks took it out.",
		}, []string{"token"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "pool_retries_total",
			Help: "Requests retried on another token after this token failed.",
		}, []string{"token"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "quota_rejected_total",
			Help: "Requests refused with 429 by a rate limit quota.",
		}),
		auditFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "audit_failures_total",
			Help: "Audit records that could not be written (kind request: the request was refused; response: the response became an error).",
		}, []string{"kind"}),
	}
	empty := map[string]*Op{}
	m.ops.Store(&empty)
	reg.MustRegister(m.requests, m.latency, m.batch, m.coalesced, m.health, m.retries, m.rejected, m.auditFail)
	if !opts.NoRuntimeMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry the metrics are on (to register more).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Op is one operation's handle. Resolve it once (Metrics.Op) and keep it.
type Op struct {
	m     *Metrics
	name  string
	batch prometheus.Observer
	// by status code 100..599; nil until first used
	status [500]atomic.Pointer[series]
}

type series struct {
	count prometheus.Counter
	dur   prometheus.Observer
}

// Op returns the handle of operation name, making it on first use. Cheap
// after the first call (a lock-free map read), but the core should keep the
// handle per route rather than call Op per request.
func (m *Metrics) Op(name string) *Op {
	if o, ok := (*m.ops.Load())[name]; ok {
		return o
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.ops.Load()
	if o, ok := old[name]; ok {
		return o
	}
	o := &Op{m: m, name: name, batch: m.batch.WithLabelValues(name)}
	next := make(map[string]*Op, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = o
	m.ops.Store(&next)
	return o
}

// Name returns the operation's name.
func (o *Op) Name() string { return o.name }

// Done records one request: its HTTP status and how long it took.
func (o *Op) Done(status int, d time.Duration) {
	s := o.series(status)
	s.count.Inc()
	s.dur.Observe(d.Seconds())
}

// Batch records a request's item count (len(batch_input), or 1).
func (o *Op) Batch(items int) { o.batch.Observe(float64(items)) }

func (o *Op) series(status int) *series {
	i := status - 100
	if i < 0 || i >= len(o.status) {
		return o.m.makeSeries(o.name, status)
	}
	if s := o.status[i].Load(); s != nil {
		return s
	}
	s := o.m.makeSeries(o.name, status)
	if !o.status[i].CompareAndSwap(nil, s) {
		s = o.status[i].Load()
	}
	return s
}

func (m *Metrics) makeSeries(op string, status int) *series {
	code := strconv.Itoa(status)
	return &series{count: m.requests.WithLabelValues(op, code), dur: m.latency.WithLabelValues(op, code)}
}

// Observe is Op(op).Done(status, d): for rare paths; hot paths keep the Op.
func (m *Metrics) Observe(op string, status int, d time.Duration) { m.Op(op).Done(status, d) }

// Coalesced records one batch the scheduler sent to a token.
func (m *Metrics) Coalesced(items int) { m.coalesced.Observe(float64(items)) }

// SetPoolHealth reports a pool token's state: healthy (in service) or not
// (taken out by health checks). token is the pool's name for it (a label).
func (m *Metrics) SetPoolHealth(token string, healthy bool) {
	v := 0.0
	if healthy {
		v = 1
	}
	m.health.WithLabelValues(token).Set(v)
}

// RemovePoolToken drops a token's series when it leaves the pool for good.
func (m *Metrics) RemovePoolToken(token string) {
	m.health.DeleteLabelValues(token)
	m.retries.DeleteLabelValues(token)
}

// PoolRetry counts a request retried on another token because token failed.
func (m *Metrics) PoolRetry(token string) { m.retries.WithLabelValues(token).Inc() }

// QuotaRejected counts a request refused with 429.
func (m *Metrics) QuotaRejected() { m.rejected.Inc() }

// AuditFailure counts an audit record that could not be written; response
// reports whether it was a response record (else a request record).
func (m *Metrics) AuditFailure(response bool) {
	kind := "request"
	if response {
		kind = "response"
	}
	m.auditFail.WithLabelValues(kind).Inc()
}

// ContentType is the Content-Type of WriteText's output (the Prometheus text
// format, version 0.0.4).
var ContentType = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// WriteText gathers every metric and writes them to w in the Prometheus text
// exposition format (ContentType). A gathering error (an inconsistent
// collector) is returned after writing whatever could be gathered, as
// promhttp does with its default ContinueOnError.
func (m *Metrics) WriteText(w io.Writer) error { return WriteText(w, m.reg) }

// WriteText writes what g gathers to w in the Prometheus text format.
func WriteText(w io.Writer, g prometheus.Gatherer) error {
	mfs, gerr := g.Gather()
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := expfmt.NewEncoder(bw, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return gerr
}
