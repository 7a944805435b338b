// Package client is an hsm.Backend on the appliance's native protocol
// (firmware-sim/wire, spec.md there): libgohsm.so in `mode = remote` and Go
// programs use it exactly as they use the local engine.
//
// One Client keeps one TLS connection, multiplexed: every call gets a
// request id and many are in flight at once, answered in any order. Calls
// from many goroutines meet in one queue; a caller that finds no write in
// progress sends what is queued itself, and one that finds a write in
// progress leaves its call to the writing goroutine's next write, several
// calls as one BATCH frame, so that under load calls share frames, TLS
// records and system calls without a coalescing delay (CoalesceDelay adds
// one; it measured no better, see README's "Remote mode"). A writer
// goroutine sends keepalives and what is left when room frees up. Batch is
// the explicit form for Go callers. A size query the appliance has answered
// once is answered again here, without a round trip (sizes.go).
//
// The application's sessions survive the network. The client hands out its
// own session handles and maps them to the appliance's. When the connection
// drops, or the appliance restarts, a manager goroutine reconnects with
// bounded backoff, re-opens every session (same slot, same flags), logs each
// token back in with the PIN the application gave (held in locked memory,
// secret.go), and only then lets queued calls through, with their session
// handles rewritten. Token object handles are the store's and pass through
// unchanged. What cannot survive is reported, not hidden: session objects
// are gone (the appliance destroyed them with the session), an operation
// begun before the drop answers its next call CKR_DEVICE_ERROR (once), a call
// in flight at the drop is sent again only if running it twice is the same
// as once (wire.Safe), and otherwise answers CKR_DEVICE_ERROR. While the
// appliance is unreachable every call returns within Config.Timeout.
//
// With several addresses (a cluster, docs/cluster.md) the connection goes
// to the least loaded member that can serve, learnt by probing the members
// at each connection (members.go); a rebalancing goroutine probes again
// every Config.Rebalance and moves the connection to a recovered or less
// busy member when the move loses nothing (no session object, no operation
// in progress, no call in flight: objects.go), and an answer flagged
// TRY_ELSEWHERE (the member cannot reach its leader) moves it at once
// (rebalance.go). A move is the reconnection above, to a chosen member.
//
// Concurrency model: all methods are safe for concurrent use. Client.mu
// guards the queue, the session table and the held logins; each connection
// has a reader and a writer goroutine and its own mutex for its table of
// calls in flight (lock order: conn.wmu, then Client.mu, then conn.mu;
// wmu, held while writing, is only ever tried by callers, never waited
// for). A calling goroutine encodes its own arguments and decodes its own
// results; whoever writes only copies bytes. A move pauses the connection
// by setting Client.cur to nil under Client.mu (calls then wait in the
// queue) and marks it conn.moving (also under Client.mu), so that one move
// at a time is decided; members has its own mutex for its avoid list.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// clientMaxFrame is the largest answer the client accepts (announced in
// HELLO): above the server's default request limit, so the output of any
// call whose input fitted (an encryption adds a block or a tag) fits too.
const clientMaxFrame = 64 << 20

// Client is an hsm.Backend on a remote appliance.
type Client struct {
	cfg  Config
	dial func(ctx context.Context) (io.ReadWriteCloser, error)
	// members: the cluster's members, with several addresses and no
	// Dialer (members.go); nil otherwise, and dial is used.
	members *members

	mu      sync.Mutex
	running bool
	ctx     context.Context // cancelled by Finalize
	cancel  context.CancelFunc
	mgrDone chan struct{}
	cur     *conn // the connection calls go to; nil while there is none (or a move is being decided)
	target  int   // the member the next connection goes to (a move), or -1
	// lastLeave: when the client last looked for another member after a
	// TRY_ELSEWHERE answer (rebalance.go), to do it at most once a while.
	lastLeave time.Time
	epoch     uint64 // the epoch of the newest connection (its restore)
	epochSeq  uint64
	queue     []*request
	sessions  map[ck.SessionHandle]*session
	nextApp   ck.SessionHandle
	logins    map[ck.SlotID]*login
	// sizeGen and sizes: size queries answered here (sizes.go).
	sizeGen uint64
	sizes   map[sizeKey]int
	// limit bounds int arguments and request sizes: the server's MaxFrame.
	limit   int
	lastErr error
	// refused is closed when the first connection attempt was refused for
	// good (a TLS certificate rejection): Initialize fails at once.
	refused chan struct{}
	// connected is closed at the first successful connection after
	// Initialize.
	connected chan struct{}
}

// session is one application session.
type session struct {
	app    ck.SessionHandle
	slot   ck.SlotID
	flags  ck.Flags
	server ck.SessionHandle // the appliance's handle in epoch
	epoch  uint64
	// broken: re-opening after a reconnect failed; calls answer
	// CKR_DEVICE_ERROR until the application closes it.
	broken bool
	closed bool
	// active: operations started (Init succeeded) in this epoch; lost:
	// operations a reconnect ended, reported on their next call; told:
	// operations whose end a call in flight at the drop already reported.
	active, lost, told wire.Op
	// track: what the client knows of its operations (sizes.go), in
	// sizeOps' order.
	track [3]opTrack
	// open: operations in progress on the appliance, and objects: the
	// session objects this session made (objects.go); while either is
	// not empty the client does not move to another member of its own
	// accord.
	open    wire.Op
	objects map[ck.ObjectHandle]bool
}

// login is a token's login, kept to log re-opened sessions back in.
type login struct {
	user     ck.UserType
	pin      *secret
	username *secret // C_LoginUser's, or nil
}

func (l *login) destroy() {
	if l != nil {
		l.pin.destroy()
		l.username.destroy()
	}
}

// New makes a client for cfg; it connects at Initialize.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, dial: cfg.Dialer, target: -1}
	if c.dial == nil {
		if addrs := cfg.addresses(); len(addrs) > 1 {
			c.members = newMembers(addrs, cfg.clientTLS(), cfg.Name)
		}
		c.dial = cfg.tcpDialer()
	}
	return c, nil
}

// NewWithDialer makes a client that reaches the appliance through dial,
// which returns a connection that is already secure (or a pipe, in tests).
func NewWithDialer(cfg Config, dial func(ctx context.Context) (io.ReadWriteCloser, error)) (*Client, error) {
	cfg.Dialer = dial
	return New(cfg)
}

func (c *Client) logf(format string, args ...any) {
	if c.cfg.Logf != nil {
		c.cfg.Logf(format, args...)
	}
}

// Request states.
const (
	stQueued int32 = iota // waiting in Client.queue (or for a busy backoff)
	stSent                // in a connection's pending table
	stDone                // answered, failed or abandoned
)

// request is one call on its way.
type request struct {
	call *wire.Call
	args []any
	// payload is the CALL payload; for a session call its handle field
	// (wire.SessionOffset) is rewritten with the appliance's handle when
	// it is sent.
	payload  []byte
	sess     *session
	deadline time.Time
	state    atomic.Int32
	done     chan struct{}
	// kwait: the caller waits on woken (Config.WaitInKernel), set to 1
	// once done is closed.
	kwait bool
	woken atomic.Uint32

	// Set by the writer, under conn.mu.
	id     uint64
	epoch  uint64
	sentOn atomic.Pointer[conn]
	sentAt atomic.Int64
	// retried: sent again after a drop (wire.Safe calls, once).
	retried bool
	// priv: a restore call (conn.roundTrip), never re-queued.
	priv bool
	busy atomic.Int32 // busy answers so far

	// The answer, written by whoever finishes the request.
	local bool
	rv    ck.RV
	flags byte
	resp  []byte
}

// fail finishes a request the caller owns exclusively (it won the state
// change that makes it the finisher).
func (r *request) fail(rv ck.RV) {
	r.local, r.rv = true, rv
	r.finish()
}

// finish tells the caller its request is finished.
func (r *request) finish() {
	close(r.done)
	if r.kwait {
		futexWake(&r.woken)
	}
}

// tryFail finishes a queued request (false if another party owns it).
func (r *request) tryFail(rv ck.RV) bool {
	if !r.state.CompareAndSwap(stQueued, stDone) {
		return false
	}
	r.fail(rv)
	return true
}

// value is the i-th result as a T, or its zero value.
func value[T any](r []any, i int) T {
	if i < len(r) {
		if v, ok := r[i].(T); ok {
			return v
		}
	}
	var zero T
	return zero
}

// call runs one call and returns its results (zero values on error).
func (c *Client) call(call *wire.Call, args ...any) ([]any, error) {
	vals, done, gen := c.sizeBefore(call, args)
	if done {
		return vals, nil
	}
	r, vals, err := c.roundTrip(call, args)
	c.sizeAfter(call, args, r, gen, vals, err)
	return vals, err
}

// callRaw is call without the size-query bookkeeping (sizes.go).
func (c *Client) callRaw(call *wire.Call, args ...any) ([]any, error) {
	_, vals, err := c.roundTrip(call, args)
	return vals, err
}

// roundTrip sends one call and waits for its answer; r is nil when the
// call was refused before it was queued.
func (c *Client) roundTrip(call *wire.Call, args []any) (*request, []any, error) {
	r, err := c.prepare(call, args)
	if err != nil {
		return nil, nil, err
	}
	c.enqueue(r)
	c.wait(r)
	vals, err := c.result(r)
	return r, vals, err
}

// prepare checks the state, finds the session and encodes the call.
func (c *Client) prepare(call *wire.Call, args []any) (*request, error) {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return nil, ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	limit := c.limit
	c.sizeForget(call)
	r := &request{call: call, args: args, done: make(chan struct{}), deadline: time.Now().Add(c.cfg.Timeout),
		kwait: c.cfg.WaitInKernel && haveFutex}
	if call.Session {
		s := c.sessions[args[0].(ck.SessionHandle)]
		if s == nil || s.closed {
			c.mu.Unlock()
			return nil, ck.CKR_SESSION_HANDLE_INVALID
		}
		r.sess = s
	}
	c.mu.Unlock()
	enc := clampArgs(call, args, limit)
	p, err := call.AppendCall(make([]byte, 0, 64+argSize(enc)), enc)
	if err != nil {
		return nil, hsm.ToRV(err)
	}
	if len(p)+wire.BatchOverhead+wire.HeaderSize > limit {
		clear(p)
		return nil, ck.CKR_DEVICE_MEMORY // more than the appliance accepts in a frame
	}
	r.payload = p
	return r, nil
}

// argSize estimates the encoding of the byte-string arguments.
func argSize(args []any) int {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			n += len(v) + 4
		case []ck.Attribute:
			for _, x := range v {
				n += len(x.Value) + 12
			}
		}
	}
	return n
}

// clampArgs bounds buffer capacities by what one frame can carry back:
// the appliance refuses larger int arguments (they would let a peer make
// it allocate without bound), and a buffer larger than any answer is the
// same, for the engine, as one exactly that large.
func clampArgs(call *wire.Call, args []any, limit int) []any {
	out, copied := args, false
	set := func(i int, v any) {
		if !copied {
			out, copied = append([]any(nil), args...), true
		}
		out[i] = v
	}
	for i, a := range args {
		switch v := a.(type) {
		case int:
			if v > limit {
				set(i, limit)
			}
		case []ck.AttributeRequest:
			for _, q := range v {
				if q.Cap > limit {
					w := append([]ck.AttributeRequest(nil), v...)
					for k := range w {
						w[k].Cap = min(w[k].Cap, limit)
					}
					set(i, w)
					break
				}
			}
		}
	}
	return out
}

// enqueue puts requests in the queue, in order, and sends them (or has
// them sent: flush).
func (c *Client) enqueue(rs ...*request) {
	c.mu.Lock()
	c.queue = append(c.queue, rs...)
	cur := c.cur
	c.mu.Unlock()
	switch {
	case cur == nil:
		// The connection's restore signals its writer when it is done.
	case c.cfg.CoalesceDelay == 0 && cur.idle():
		// A lone call: send it now (unless a write is in progress). With
		// other calls in flight the writer goroutine sends instead: it
		// yields first, so that calls answered meanwhile and sent again
		// (the next call of each caller) share its frame.
		cur.flush()
	default:
		cur.signal()
	}
}

// wait blocks until r is answered, or fails it when it could not get onto
// a connection within its deadline. A request already sent is waited for:
// the connection answers it, or its death fails or re-queues it; a server
// silent beyond its own call deadline is a safety net.
func (c *Client) wait(r *request) {
	// In the kernel until the answer or the deadline; what the deadline
	// then does (fail, abandon) is waitTimer's.
	for r.kwait && r.woken.Load() == 0 {
		d := time.Until(r.deadline)
		if d <= 0 {
			break
		}
		futexWait(&r.woken, d)
	}
	var t *time.Timer
	c.waitTimer(r, &t)
	if t != nil {
		t.Stop()
	}
}

// waitTimer is wait with a timer the caller keeps (nil at first, made when
// needed) and stops when done, so that waiting for many requests in turn
// (Batch.Run) makes one timer, not one per request. A request already
// answered costs no timer.
func (c *Client) waitTimer(r *request, tp **time.Timer) {
	select {
	case <-r.done:
		return
	default:
	}
	if *tp == nil {
		*tp = time.NewTimer(time.Until(r.deadline))
	} else {
		(*tp).Reset(time.Until(r.deadline))
	}
	t := *tp
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			rv := ck.CKR_DEVICE_ERROR
			if r.busy.Load() > 0 {
				rv = ck.CKR_DEVICE_MEMORY
			}
			if r.tryFail(rv) {
				return
			}
			if cn := r.sentOn.Load(); cn != nil && r.state.Load() == stSent &&
				time.Since(time.Unix(0, r.sentAt.Load())) > cn.callLimit() {
				cn.abandon(r)
			}
			t.Reset(20 * time.Millisecond)
		}
	}
}

// result decodes an answered request.
func (c *Client) result(r *request) ([]any, error) {
	defer func() {
		clear(r.payload)
		clear(r.resp)
		// An answer from a BATCH is part of that frame's buffer: let
		// the buffer go even if the request is kept.
		r.payload, r.resp = nil, nil
	}()
	if r.local {
		return nil, r.rv
	}
	res, err := r.call.DecodeResult(r.resp, r.flags)
	if err != nil {
		c.logf("appliance answered %s with a malformed result: %v", r.call.Name, err)
		return nil, ck.CKR_DEVICE_ERROR
	}
	if r.flags&wire.FlagNotRun != 0 {
		return nil, rvError(res.RV)
	}
	c.track(r, res.Values, res.RV)
	for j, i := range r.call.InOut {
		if j < len(res.Changed) && res.Changed[j] {
			if !wire.UpdateParam(paramOf(r.args[i]), res.Params[j]) {
				// The engine changed a parameter the caller cannot see
				// changed (passed by value); the local engine could not
				// have reported it either.
				c.logf("%s: parameter changed by the appliance not written back", r.call.Name)
			}
		}
	}
	if r.call.Init && res.RV == ck.CKR_OK && r.sess != nil {
		c.mu.Lock()
		if r.sess.epoch == r.epoch {
			r.sess.active |= r.call.Op
		} else {
			r.sess.lost |= r.call.Op
		}
		c.mu.Unlock()
	}
	return res.Values, rvError(res.RV)
}

func paramOf(v any) any {
	if m, ok := v.(ck.Mechanism); ok {
		return m.Param
	}
	return v
}

func rvError(rv ck.RV) error {
	if rv == ck.CKR_OK {
		return nil
	}
	return rv
}

// Initialize starts the client: it connects to the appliance, waiting at
// most Timeout for the first connection. C_Initialize fails with
// CKR_DEVICE_ERROR if the appliance cannot be reached (or refuses the
// client's certificate) in that time, so a misconfiguration shows at once;
// after that, the client reconnects by itself.
func (c *Client) Initialize() error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return ck.CKR_CRYPTOKI_ALREADY_INITIALIZED
	}
	c.running = true
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mgrDone = make(chan struct{})
	c.connected = make(chan struct{})
	c.sessions = map[ck.SessionHandle]*session{}
	c.logins = map[ck.SlotID]*login{}
	c.limit = wire.DefaultMaxFrame
	c.lastErr = nil
	c.target = -1
	connected := c.connected
	refused := make(chan struct{})
	c.refused = refused
	c.mu.Unlock()
	go c.manage()
	if every := c.cfg.rebalanceEvery(); c.members != nil && every > 0 {
		go c.rebalanceLoop(c.ctx, every)
	}
	t := time.NewTimer(c.cfg.Timeout)
	defer t.Stop()
	select {
	case <-connected:
		return nil
	case <-refused:
		// The appliance (or its certificate) said no: trying again until
		// the timeout cannot change that.
	case <-t.C:
	}
	c.mu.Lock()
	err := c.lastErr
	c.mu.Unlock()
	if err == nil {
		err = errors.New("no connection")
	}
	c.Finalize()
	return fmt.Errorf("appliance %s: %v: %w", c.cfg.Address, err, ck.CKR_DEVICE_ERROR)
}

// Finalize closes the connection (the appliance closes the client's
// sessions with it), fails calls still waiting, and zeroises the PINs.
func (c *Client) Finalize() error {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	c.running = false
	c.cancel()
	queue := c.queue
	c.queue = nil
	cur := c.cur
	c.cur = nil
	logins := c.logins
	c.logins = map[ck.SlotID]*login{}
	c.sessions = map[ck.SessionHandle]*session{}
	done := c.mgrDone
	c.mu.Unlock()
	for _, r := range queue {
		r.tryFail(ck.CKR_CRYPTOKI_NOT_INITIALIZED)
	}
	if cur != nil {
		c.kill(cur, errFinalized)
	}
	<-done
	for _, l := range logins {
		l.destroy()
	}
	return nil
}

var errFinalized = errors.New("finalized")
