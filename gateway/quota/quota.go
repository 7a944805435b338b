// Package quota is the gateway's per-token rate limiting: a token bucket per
// API token, answered with 429 Too Many Requests and Retry-After when empty.
//
// # Configuration
//
// A Limit is a rate (requests per second) and a burst (how many may arrive
// at once). Config says which limit applies to a token: its own, by accessor
// (PerToken), else the most generous of the limits of its policies
// (PerPolicy: policies are unioned, so their allowances are too), else
// Default; a zero Limit (Rate 0) means unlimited. Each token has its own
// bucket even when the limit comes from a policy: "per policy" is the limit
// each of the policy's tokens gets, not a budget the tokens share.
//
// # Algorithm
//
// Each bucket is GCRA (the generic cell rate algorithm, ITU-T I.371), which
// is a token bucket expressed as one number: the theoretical arrival time
// (TAT) of the next request. A request at time now is allowed if
// max(TAT, now) - now <= (burst-1)/rate, and then TAT = max(TAT, now) +
// 1/rate; otherwise it is refused, and may retry after max(TAT, now) -
// (burst-1)/rate - now. The TAT is one atomic int64 updated by
// compare-and-swap, so Allow takes no lock; buckets live in a sync.Map
// (lock-free reads for existing keys). A bucket whose TAT has passed is
// indistinguishable from a new one, so Sweep (run by Allow every so often)
// drops those, and memory is bounded by the tokens active within their
// burst window. Limits can change at run time (SetConfig); a bucket picks
// up its new limit at its next request.
//
// # Scope
//
// Buckets are per gateway process: N gateways behind a load balancer allow
// up to N times a limit (Vault's rate limit quotas behave the same on
// performance standbys). Call Allow after authentication, with the token's
// accessor, so that unauthenticated requests (refused anyway) create no
// buckets.
package quota

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limit is a rate limit: Rate requests per second on average, Burst at
// once. Rate <= 0 means unlimited. Burst < 1 is taken as 1 (or, when zero,
// as max(1, Rate) — one second's worth).
type Limit struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// Unlimited reports whether l imposes no limit.
func (l Limit) Unlimited() bool { return !(l.Rate > 0) || math.IsInf(l.Rate, 1) }

// Config says which limit applies to which token.
type Config struct {
	// Default applies to tokens with no limit of their own and none from a
	// policy. Zero: unlimited.
	Default Limit `json:"default"`
	// PerPolicy: the limit for each token holding the policy (the most
	// generous applies when a token holds several).
	PerPolicy map[string]Limit `json:"per_policy,omitempty"`
	// PerToken: the limit for one token, by accessor; it overrides the rest.
	PerToken map[string]Limit `json:"per_token,omitempty"`
	// Exempt lists policies whose tokens are never limited (e.g. "root").
	Exempt []string `json:"exempt,omitempty"`
}

// Decision is Allow's answer, with what the HTTP response needs.
type Decision struct {
	// OK: serve the request.
	OK bool
	// Limit is the limit applied (zero when unlimited).
	Limit Limit
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// RetryAfter: when OK is false, how long until one request will be
	// allowed (Retry-After is its whole seconds rounded up, RetryAfterHeader).
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}

// RetryAfterHeader formats d as a Retry-After value: whole seconds, rounded
// up, at least 1 (HTTP's Retry-After has a resolution of one second).
func RetryAfterHeader(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// Limiter holds the buckets. It is safe for concurrent use.
type Limiter struct {
	cfg     atomic.Pointer[compiled]
	buckets sync.Map // string -> *bucket
	calls   atomic.Uint64
	epoch   time.Time
	now     func() time.Time
}

type compiled struct {
	Config
	exempt map[string]bool
}

// bucket is one GCRA cell: the theoretical arrival time in nanoseconds
// since the Limiter's epoch, and the limit it was made for.
type bucket struct {
	tat      atomic.Int64
	interval int64 // ns per request: 1/rate
	tau      int64 // burst tolerance: (burst-1)*interval
	lim      Limit
}

// New returns a Limiter with cfg.
func New(cfg Config) *Limiter {
	l := &Limiter{epoch: time.Now(), now: time.Now}
	l.SetConfig(cfg)
	return l
}

// SetConfig replaces the configuration; buckets take their new limit at
// their next request.
func (l *Limiter) SetConfig(cfg Config) {
	c := &compiled{Config: cfg, exempt: map[string]bool{}}
	for _, p := range cfg.Exempt {
		c.exempt[p] = true
	}
	l.cfg.Store(c)
}

// Config returns the current configuration.
func (l *Limiter) Config() Config { return l.cfg.Load().Config }

// LimitFor resolves the limit for a token: PerToken by accessor, else the
// most generous PerPolicy limit among its policies (unlimited if any of
// them is unlimited by an explicit zero entry, or exempt), else Default.
func (l *Limiter) LimitFor(accessor string, policies []string) Limit {
	c := l.cfg.Load()
	if lim, ok := c.PerToken[accessor]; ok {
		return lim
	}
	var best Limit
	found := false
	for _, p := range policies {
		if c.exempt[p] {
			return Limit{}
		}
		lim, ok := c.PerPolicy[p]
		if !ok {
			continue
		}
		if lim.Unlimited() {
			return Limit{}
		}
		if !found || lim.Rate > best.Rate || (lim.Rate == best.Rate && lim.Burst > best.Burst) {
			best, found = lim, true
		}
	}
	if found {
		return best
	}
	return c.Default
}

// AllowToken is LimitFor then Allow: the gateway's per-request call.
func (l *Limiter) AllowToken(accessor string, policies []string) Decision {
	return l.Allow(accessor, l.LimitFor(accessor, policies))
}

// sweepEvery is how many Allow calls pass between sweeps of idle buckets.
const sweepEvery = 1 << 16

// Allow takes one request from key's bucket under lim.
func (l *Limiter) Allow(key string, lim Limit) Decision {
	if lim.Unlimited() {
		return Decision{OK: true}
	}
	if l.calls.Add(1)%sweepEvery == 0 {
		go l.Sweep()
	}
	b := l.bucketFor(key, lim)
	now := int64(l.now().Sub(l.epoch))
	for {
		tat := b.tat.Load()
		t := max(tat, now)
		if wait := t - b.tau - now; wait > 0 {
			return Decision{Limit: b.lim, RetryAfter: time.Duration(wait), Reset: time.Duration(t - now)}
		}
		next := t + b.interval
		if b.tat.CompareAndSwap(tat, next) {
			rem := 0
			if b.interval > 0 {
				rem = int((b.tau - (next - b.interval - now)) / b.interval)
			}
			return Decision{OK: true, Limit: b.lim, Remaining: max(rem, 0), Reset: time.Duration(next - now)}
		}
	}
}

func (l *Limiter) bucketFor(key string, lim Limit) *bucket {
	if v, ok := l.buckets.Load(key); ok {
		b := v.(*bucket)
		if b.lim == lim {
			return b
		}
		nb := newBucket(lim)
		nb.tat.Store(b.tat.Load()) // keep the debt across a limit change
		l.buckets.CompareAndSwap(key, v, nb)
		v, _ = l.buckets.Load(key)
		if v == nil {
			return nb
		}
		return v.(*bucket)
	}
	v, _ := l.buckets.LoadOrStore(key, newBucket(lim))
	return v.(*bucket)
}

func newBucket(lim Limit) *bucket {
	burst := lim.Burst
	if burst == 0 {
		burst = int(math.Max(1, math.Ceil(lim.Rate)))
	}
	burst = max(burst, 1)
	interval := int64(float64(time.Second) / lim.Rate)
	interval = max(interval, 1)
	return &bucket{interval: interval, tau: int64(burst-1) * interval, lim: lim}
}

// Sweep drops buckets that are full again (their state is that of a new
// bucket). Allow runs it every 65536 calls; call it from a timer if the
// gateway is idle for long stretches and memory matters.
func (l *Limiter) Sweep() int {
	now := int64(l.now().Sub(l.epoch))
	n := 0
	l.buckets.Range(func(k, v any) bool {
		if v.(*bucket).tat.Load() <= now {
			if l.buckets.CompareAndDelete(k, v) {
				n++
			}
		}
		return true
	})
	return n
}

// Forget drops key's bucket (a revoked token).
func (l *Limiter) Forget(key string) { l.buckets.Delete(key) }

// Len returns the number of buckets held (for tests and a gauge).
func (l *Limiter) Len() int {
	n := 0
	l.buckets.Range(func(_, _ any) bool { n++; return true })
	return n
}
