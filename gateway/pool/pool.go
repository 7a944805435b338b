// Package pool runs the gateway's token work over several tokens: the
// Exec the transit engine takes. Each token has a bounded set of sessions;
// a call goes to the healthy token with the fewest calls in flight; a
// health check (token.Ping) takes a failing token out and puts it back
// when it answers again; a call whose token failed under it runs once more
// on another token. Key objects are addressed by CKA_ID, whose handle on
// each token find looks up (and caches). Replicate copies a key's objects
// to every token under the pool's transport key (transport.go says how
// that key gets onto the tokens).
//
// Concurrency: a Pool is safe for concurrent use. Each Do holds one
// session for the duration of f, so concurrent calls spread over up to
// Sessions sessions per token and then wait (for a session or for ctx).
// The health loop runs in its own goroutine until Close.
//
// A run of calls (token.Many) reaches an appliance's session in one
// exchange: the session f gets passes Many through and notes each call's
// error. Not done: merging concurrent same-key single-item requests into
// one run. The appliance's client already sends the calls in flight on its
// connection together (firmware-sim/client); the pool itself only spreads.
package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Config tunes a Pool. The zero value is usable.
type Config struct {
	// Sessions per token (default 8): the most calls one token runs at
	// once for this pool.
	Sessions int
	// HealthEvery is the health check's period (default 1s).
	HealthEvery time.Duration
	// TransportID is the CKA_ID of the pool transport key on every token
	// (default DefaultTransportID).
	TransportID []byte
	// SessionWait bounds the wait for a session of another token inside a
	// call (lazy replication, Replicate); default 5s.
	SessionWait time.Duration
}

// ErrNoToken is Do's error when no token of the pool is in service.
var ErrNoToken = errors.New("pool: no token in service")

// ErrNoObject is find's error for a CKA_ID no token of the pool holds. It
// carries CKR_KEY_HANDLE_INVALID, the request's fault, not the token's.
var ErrNoObject = fmt.Errorf("pool: no object with that CKA_ID: %w", ck.CKR_KEY_HANDLE_INVALID)

// Pool is an Exec over tokens.
type Pool struct {
	cfg     Config
	members []*member
	next    atomic.Uint64 // round-robin start among equally busy members

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// member is one token of the pool.
type member struct {
	p   *Pool
	tok token.Token
	idx int

	inService atomic.Bool
	inflight  atomic.Int64
	// gen counts the times the token was taken out: a session opened in
	// an older generation is closed when it comes back.
	gen atomic.Uint64

	slots chan struct{} // a token per session that may be in use
	mu    sync.Mutex
	idle  []pooled
	// handles caches CKA_ID -> handle (string(id) -> ck.ObjectHandle).
	handles sync.Map
	// checking is set while a check started by a failed call runs.
	checking atomic.Bool
}

type pooled struct {
	s   token.Session
	gen uint64
}

// New makes a pool over toks (it takes ownership: Close closes them). A
// token whose first Ping fails starts out of service and the health check
// brings it in when it answers.
func New(toks []token.Token, cfg Config) (*Pool, error) {
	if len(toks) == 0 {
		return nil, errors.New("pool: no tokens")
	}
	if cfg.Sessions <= 0 {
		cfg.Sessions = 8
	}
	if cfg.HealthEvery <= 0 {
		cfg.HealthEvery = time.Second
	}
	if len(cfg.TransportID) == 0 {
		cfg.TransportID = []byte(DefaultTransportID)
	}
	if cfg.SessionWait <= 0 {
		cfg.SessionWait = 5 * time.Second
	}
	p := &Pool{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	for i, t := range toks {
		m := &member{p: p, tok: t, idx: i, slots: make(chan struct{}, cfg.Sessions)}
		m.inService.Store(t.Ping() == nil)
		p.members = append(p.members, m)
	}
	go p.healthLoop()
	return p, nil
}

// Status is one token's state, for metrics and sys/health.
type Status struct {
	Label     string
	InService bool
	InFlight  int64
}

// Status reports every token's state.
func (p *Pool) Status() []Status {
	out := make([]Status, len(p.members))
	for i, m := range p.members {
		out[i] = Status{Label: m.tok.Label(), InService: m.inService.Load(), InFlight: m.inflight.Load()}
	}
	return out
}

// pick is the in-service member with the fewest calls in flight, not
// skip; equally busy members take turns.
func (p *Pool) pick(skip *member) *member {
	n := len(p.members)
	start := int(p.next.Add(1) % uint64(n))
	var best *member
	var bestLoad int64
	for i := 0; i < n; i++ {
		m := p.members[(start+i)%n]
		if m == skip || !m.inService.Load() {
			continue
		}
		if l := m.inflight.Load(); best == nil || l < bestLoad {
			best, bestLoad = m, l
		}
	}
	return best
}

// Do runs f on a session of the least busy token in service, with find
// mapping CKA_IDs to handles on that token. When a session call inside f
// failed because of the token (token.DeviceFailure), the token is checked
// at once and f runs once more on another token; f's own errors (a bad
// tag, a refused mechanism, the caller's) are returned as they are and
// never count against the token.
func (p *Pool) Do(ctx context.Context, f func(s token.Session, find func(id []byte) (ck.ObjectHandle, error)) error) error {
	var tried *member
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		m := p.pick(tried)
		if m == nil {
			if lastErr != nil {
				return lastErr
			}
			return ErrNoToken
		}
		err, deviceFailed := m.run(ctx, f)
		if !deviceFailed {
			return err
		}
		m.suspect()
		if ctx.Err() != nil {
			return err
		}
		tried, lastErr = m, err
	}
	return lastErr
}

// run is one attempt on m. deviceFailed reports a session call that
// failed because of the token.
func (m *member) run(ctx context.Context, f func(token.Session, func([]byte) (ck.ObjectHandle, error)) error) (err error, deviceFailed bool) {
	m.inflight.Add(1)
	defer m.inflight.Add(-1)
	ps, err := m.acquire(ctx)
	if err != nil {
		return err, ctx.Err() == nil && token.DeviceFailure(err)
	}
	ts := &tracked{Session: ps.s}
	var cached [][]byte
	find := func(id []byte) (ck.ObjectHandle, error) {
		h, hit, err := m.find(ctx, ts, id)
		if hit {
			cached = append(cached, id)
		}
		return h, err
	}
	err = f(ts, find)
	if err != nil && len(cached) > 0 && isStaleHandle(err) && ts.failed == nil {
		// A key destroyed (by another gateway) under a cached handle:
		// forget and look again, once.
		for _, id := range cached {
			m.handles.Delete(string(id))
		}
		err = f(ts, func(id []byte) (ck.ObjectHandle, error) {
			h, _, err := m.find(ctx, ts, id)
			return h, err
		})
	}
	m.release(ps, ts.failed != nil)
	if ts.failed != nil {
		if err == nil {
			// f swallowed the failure yet finished: its answer stands.
			return nil, false
		}
		return err, true
	}
	return err, false
}

func isStaleHandle(err error) bool {
	switch token.RV(err) {
	case ck.CKR_KEY_HANDLE_INVALID, ck.CKR_OBJECT_HANDLE_INVALID:
		return !errors.Is(err, ErrNoObject)
	}
	return false
}

// acquire takes an idle session of m or opens one, waiting for a free
// slot (or ctx).
func (m *member) acquire(ctx context.Context) (pooled, error) {
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return pooled{}, ctx.Err()
	}
	gen := m.gen.Load()
	m.mu.Lock()
	for len(m.idle) > 0 {
		ps := m.idle[len(m.idle)-1]
		m.idle = m.idle[:len(m.idle)-1]
		if ps.gen == gen {
			m.mu.Unlock()
			return ps, nil
		}
		ps.s.Close()
	}
	m.mu.Unlock()
	s, err := m.tok.OpenSession()
	if err != nil {
		<-m.slots
		return pooled{}, err
	}
	return pooled{s: s, gen: gen}, nil
}

// release returns the session; one that failed with the token, or from a
// generation before the token was last taken out, is closed instead.
func (m *member) release(ps pooled, bad bool) {
	if bad || ps.gen != m.gen.Load() {
		ps.s.Close()
	} else {
		m.mu.Lock()
		m.idle = append(m.idle, ps)
		m.mu.Unlock()
	}
	<-m.slots
}

// find looks id up on m's token: the cache, then C_FindObjects; a miss
// copies the object from a token that has it (lazy replication: a token
// that was out of service when a key was made catches up on first use).
func (m *member) find(ctx context.Context, s token.Session, id []byte) (h ck.ObjectHandle, hit bool, err error) {
	if v, ok := m.handles.Load(string(id)); ok {
		return v.(ck.ObjectHandle), true, nil
	}
	hs, err := s.FindObjects([]ck.Attribute{{Type: ck.CKA_ID, Value: id}})
	if err != nil {
		return 0, false, err
	}
	if len(hs) == 0 {
		if err := m.p.replicateTo(ctx, id, m, s); err != nil {
			return 0, false, err
		}
		if hs, err = s.FindObjects([]ck.Attribute{{Type: ck.CKA_ID, Value: id}}); err != nil {
			return 0, false, err
		}
		if len(hs) == 0 {
			return 0, false, ErrNoObject
		}
	}
	// Two gateways replicating at once may leave two copies of one key
	// (same value): either serves.
	m.handles.Store(string(id), hs[0])
	return hs[0], false, nil
}

// suspect checks m now, in the background, after a call failed on it.
func (m *member) suspect() {
	if !m.checking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer m.checking.Store(false)
		m.check()
	}()
}

// check pings the token and moves it out of or into service.
func (m *member) check() {
	err := m.tok.Ping()
	switch {
	case err != nil && m.inService.Load():
		m.takeOut()
	case err == nil && !m.inService.Load():
		m.inService.Store(true)
	}
}

// takeOut stops new calls reaching m and drops what may be dead: idle
// sessions (closed now), sessions in use (closed when they come back),
// cached handles (a replaced token has other handles).
func (m *member) takeOut() {
	m.inService.Store(false)
	m.gen.Add(1)
	m.mu.Lock()
	idle := m.idle
	m.idle = nil
	m.mu.Unlock()
	for _, ps := range idle {
		ps.s.Close()
	}
	m.handles.Clear()
}

func (p *Pool) healthLoop() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.HealthEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			for _, m := range p.members {
				if m.checking.CompareAndSwap(false, true) {
					m.check()
					m.checking.Store(false)
				}
			}
		}
	}
}

// Close stops the health check, closes every idle session and the tokens.
// Calls still running finish first on their own sessions; do not start
// new ones.
func (p *Pool) Close() error {
	var err error
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		for _, m := range p.members {
			for i := 0; i < cap(m.slots); i++ {
				m.slots <- struct{}{} // wait for calls in flight
			}
			m.mu.Lock()
			for _, ps := range m.idle {
				ps.s.Close()
			}
			m.idle = nil
			m.mu.Unlock()
			err = errors.Join(err, m.tok.Close())
		}
	})
	return err
}

// withSession runs f on a session of m, waiting at most SessionWait.
func (m *member) withSession(ctx context.Context, f func(s token.Session) error) error {
	ctx, cancel := context.WithTimeout(ctx, m.p.cfg.SessionWait)
	defer cancel()
	ps, err := m.acquire(ctx)
	if err != nil {
		return err
	}
	ts := &tracked{Session: ps.s}
	err = f(ts)
	m.release(ps, ts.failed != nil)
	if ts.failed != nil {
		m.suspect()
	}
	return err
}

// Destroy destroys the objects with CKA_ID id on every token in service
// and forgets their handles: a deleted or trimmed key version leaves no
// copy behind. A token out of service keeps its copy (it is unreachable
// through the pool's metadata, since the ring no longer names it); the
// error says which tokens were skipped so the caller may retry.
func (p *Pool) Destroy(ctx context.Context, id []byte) error {
	var errs []error
	for _, m := range p.members {
		m.handles.Delete(string(id))
		if !m.inService.Load() {
			errs = append(errs, fmt.Errorf("token %q out of service: its copy of %q stays", m.tok.Label(), id))
			continue
		}
		err := m.withSession(ctx, func(s token.Session) error {
			hs, err := s.FindObjects([]ck.Attribute{{Type: ck.CKA_ID, Value: id}})
			if err != nil {
				return err
			}
			for _, h := range hs {
				if err := s.DestroyObject(h); err != nil && token.RV(err) != ck.CKR_OBJECT_HANDLE_INVALID {
					return err
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("token %q: %w", m.tok.Label(), err))
		}
	}
	return errors.Join(errs...)
}

// boolAttr is a CK_BBOOL attribute.
func boolAttr(t ck.AttributeType, v bool) ck.Attribute {
	return ck.Attribute{Type: t, Value: attr.Bool(v)}
}
