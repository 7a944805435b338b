package client

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm/ck"
)

// conn is one connection to the appliance.
type conn struct {
	c       *Client
	rwc     io.ReadWriteCloser
	epoch   uint64
	welcome wire.Welcome
	// member is the index of the cluster member in Config.Address (-1:
	// one appliance, or a Dialer).
	member int
	// moving: a move off this connection is being decided (rebalance.go);
	// under Client.mu.
	moving    bool
	maxCalls  int
	keepAlive time.Duration

	mu      sync.Mutex
	pending map[uint64]*request
	nextID  uint64
	// priv holds the restore's calls, sent before the public queue.
	priv []*request
	// ctrl holds PONG frames for the writer.
	ctrl [][]byte
	dead bool

	sig       chan struct{}
	done      chan struct{}
	lastRecv  atomic.Int64
	lastSent  atomic.Int64
	draining  atomic.Bool // GOAWAY received
	readTimer *time.Timer

	// wmu serialises writes: the writer goroutine's, and those of calling
	// goroutines that find no write in progress (flush). bw and wbuf are
	// the writing side's, under wmu.
	wmu  sync.Mutex
	bw   *bufio.Writer
	wbuf []byte
}

func (cn *conn) signal() {
	select {
	case cn.sig <- struct{}{}:
	default:
	}
}

// callLimit is how long a sent call may go unanswered on a live connection:
// the server's own call deadline answers it well before.
func (cn *conn) callLimit() time.Duration {
	return time.Duration(cn.welcome.CallMillis)*time.Millisecond + cn.c.cfg.Timeout
}

// abandon fails a sent request the server never answered.
func (cn *conn) abandon(r *request) {
	cn.mu.Lock()
	if cn.pending[r.id] != r {
		cn.mu.Unlock()
		return
	}
	delete(cn.pending, r.id)
	cn.mu.Unlock()
	r.state.Store(stDone)
	r.fail(ck.CKR_DEVICE_ERROR)
	cn.c.logf("%s: no answer from the appliance within %v", r.call.Name, cn.callLimit())
}

// manage keeps the client connected until Finalize.
func (c *Client) manage() {
	defer close(c.mgrDone)
	backoff := c.cfg.BackoffMin
	first := true
	for {
		if c.ctx.Err() != nil {
			return
		}
		cn, err := c.connect()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			c.lastErr = err
			if first && definitive(err) && c.refused != nil {
				close(c.refused)
				c.refused = nil
			}
			c.mu.Unlock()
			c.logf("appliance %s: %v; retrying in about %v", c.cfg.Address, err, backoff)
			// Full jitter in [backoff/2, backoff): clients cut off by one
			// restart do not come back in lock step.
			d := backoff/2 + rand.N(backoff/2+1)
			select {
			case <-time.After(d):
			case <-c.ctx.Done():
				return
			}
			backoff = min(2*backoff, c.cfg.BackoffMax)
			continue
		}
		backoff = c.cfg.BackoffMin
		if first {
			first = false
			close(c.connected)
		} else {
			c.logf("appliance %s: reconnected (%s)", c.cfg.Address, cn.welcome.Server)
		}
		select {
		case <-cn.done:
		case <-c.ctx.Done():
			c.kill(cn, errFinalized)
			return
		}
	}
}

// definitive reports a connection failure that retrying cannot mend: the
// TLS handshake failed on a certificate (the appliance refused ours, or
// ours does not verify the appliance's). A refused or reset TCP connection
// is not: the appliance may be restarting.
func definitive(err error) bool {
	var alert tls.AlertError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &host) || errors.As(err, &verify) {
		return true
	}
	if errors.As(err, &alert) {
		switch alert {
		case 42, 43, 44, 45, 46, 48, 116: // bad/unsupported/revoked/expired/unknown certificate, unknown CA, certificate required
			return true
		}
	}
	// Alerts the appliance sends arrive as an unexported type: match the
	// certificate ones by their text ("remote error: tls: bad certificate").
	msg := err.Error()
	if i := strings.Index(msg, "remote error: tls: "); i >= 0 {
		for _, a := range []string{"certificate", "unknown certificate authority", "access denied"} {
			if strings.Contains(msg[i:], a) {
				return true
			}
		}
	}
	return false
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// connect dials, shakes hands and restores the sessions, within Timeout.
func (c *Client) connect() (*conn, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout)
	defer cancel()
	member := -1
	var rwc io.ReadWriteCloser
	var err error
	if c.members != nil {
		c.mu.Lock()
		target := c.target
		c.target = -1
		c.mu.Unlock()
		rwc, member, err = c.members.dial(ctx, target)
	} else {
		rwc, err = c.dial(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	deadline := start.Add(c.cfg.Timeout)
	// The handshake is bounded like everything else: a server that
	// accepts and says nothing must not hold the client.
	stop := context.AfterFunc(ctx, func() { rwc.Close() })
	w, err := handshake(rwc, c.cfg.Name, deadline)
	if !stop() || err != nil {
		rwc.Close()
		if err == nil {
			err = errors.New("handshake timed out")
		}
		return nil, err
	}
	cn := &conn{c: c, rwc: rwc, welcome: w, member: member, pending: map[uint64]*request{},
		sig: make(chan struct{}, 1), done: make(chan struct{}), bw: bufio.NewWriterSize(rwc, 64<<10)}
	cn.maxCalls = min(int(w.MaxCalls), c.cfg.MaxInFlight)
	cn.keepAlive = c.cfg.KeepAlive
	if cn.keepAlive == 0 {
		cn.keepAlive = c.cfg.Timeout / 3
	}
	if idle := time.Duration(w.IdleMillis) * time.Millisecond / 3; idle > 0 {
		cn.keepAlive = min(cn.keepAlive, idle)
	}
	now := time.Now().UnixNano()
	cn.lastRecv.Store(now)
	cn.lastSent.Store(now)
	c.mu.Lock()
	c.epochSeq++
	cn.epoch = c.epochSeq
	c.limit = int(w.MaxFrame)
	c.mu.Unlock()
	if _, ok := rwc.(readDeadliner); !ok {
		// Created before the goroutines, so kill can stop it safely.
		cn.readTimer = time.AfterFunc(time.Hour, func() { rwc.Close() })
	}
	go cn.readLoop()
	go cn.writeLoop()
	// C_Finalize during the restore ends it at once.
	stopRestore := context.AfterFunc(c.ctx, func() { c.kill(cn, errFinalized) })
	err = c.restore(cn)
	stopRestore()
	if err != nil {
		c.kill(cn, err)
		return nil, fmt.Errorf("restore sessions: %w", err)
	}
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		c.kill(cn, errFinalized)
		return nil, errFinalized
	}
	c.cur = cn
	c.mu.Unlock()
	cn.signal()
	return cn, nil
}

// handshake sends HELLO and reads WELCOME before deadline.
func handshake(rwc io.ReadWriteCloser, name string, deadline time.Time) (wire.Welcome, error) {
	return handshakeFlags(rwc, name, deadline, 0)
}

// handshakeFlags is handshake with HELLO flags (wire.HelloProbe).
func handshakeFlags(rwc io.ReadWriteCloser, name string, deadline time.Time, flags byte) (wire.Welcome, error) {
	if d, ok := rwc.(writeDeadliner); ok {
		d.SetWriteDeadline(deadline)
		defer d.SetWriteDeadline(time.Time{})
	}
	if d, ok := rwc.(readDeadliner); ok {
		d.SetReadDeadline(deadline)
		defer d.SetReadDeadline(time.Time{})
	}
	hello := wire.AppendHello(nil, wire.Hello{Versions: wire.Versions, MaxFrame: clientMaxFrame, Name: name})
	if _, err := rwc.Write(wire.AppendFrame(nil, wire.FrameHello, flags, 0, hello)); err != nil {
		return wire.Welcome{}, fmt.Errorf("handshake: %w", err)
	}
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(rwc, hb[:]); err != nil {
		return wire.Welcome{}, fmt.Errorf("handshake: %w", err)
	}
	h, err := wire.ParseHeader(hb[:], 4096)
	if err != nil {
		return wire.Welcome{}, err
	}
	p := make([]byte, h.Len)
	if _, err := io.ReadFull(rwc, p); err != nil {
		return wire.Welcome{}, fmt.Errorf("handshake: %w", err)
	}
	switch h.Type {
	case wire.FrameWelcome:
	case wire.FrameGoAway:
		g, _ := wire.ParseGoAway(p)
		return wire.Welcome{}, fmt.Errorf("appliance refused the connection: %s", g.Message)
	default:
		return wire.Welcome{}, fmt.Errorf("handshake: %v frame instead of WELCOME", h.Type)
	}
	w, err := wire.ParseWelcome(p)
	if err != nil {
		return wire.Welcome{}, err
	}
	if w.Version == 0 {
		return wire.Welcome{}, fmt.Errorf("appliance speaks none of protocol versions %v", wire.Versions)
	}
	return w, nil
}

// restore re-opens the application's sessions on a new connection and logs
// their tokens back in, before any queued call goes through it.
func (c *Client) restore(cn *conn) error {
	c.mu.Lock()
	c.epoch = cn.epoch
	var list []*session
	for _, s := range c.sessions {
		if !s.closed {
			list = append(list, s)
		}
	}
	slots := make([]ck.SlotID, 0, len(c.logins))
	for slot := range c.logins {
		slots = append(slots, slot)
	}
	c.mu.Unlock()
	slices.SortFunc(list, func(a, b *session) int { return cmp.Compare(a.app, b.app) })
	slices.Sort(slots)
	for _, s := range list {
		c.mu.Lock()
		skip := s.closed
		c.mu.Unlock()
		if skip {
			continue
		}
		res, err := cn.roundTrip(callOpenSession, s.slot, s.flags)
		if err != nil {
			return err
		}
		c.mu.Lock()
		s.open, s.objects = 0, nil // ended with the old connection's session
		if res.RV != ck.CKR_OK {
			s.broken = true
			c.mu.Unlock()
			c.logf("re-open session %d on slot %d: %v", s.app, s.slot, res.RV)
			continue
		}
		s.server = value[ck.SessionHandle](res.Values, 0)
		s.epoch = cn.epoch
		s.broken = false
		s.lost |= s.active &^ s.told
		s.active, s.told = 0, 0
		closed := s.closed
		c.mu.Unlock()
		if closed { // the application closed it meanwhile
			if _, err := cn.roundTrip(callCloseSession, s.server); err != nil {
				return err
			}
		}
	}
	for _, slot := range slots {
		if err := c.relogin(cn, slot); err != nil {
			return err
		}
	}
	return nil
}

// relogin logs slot's token back in on cn with the held PIN. The PIN is
// copied out of its locked pages under the lock (C_Logout or C_SetPIN may
// release them meanwhile) into a buffer zeroised as soon as it is encoded.
func (c *Client) relogin(cn *conn, slot ck.SlotID) error {
	c.mu.Lock()
	l := c.logins[slot]
	if l == nil {
		c.mu.Unlock()
		return nil
	}
	var h ck.SessionHandle
	found := false
	for _, s := range c.sessions {
		if s.slot == slot && s.epoch == cn.epoch && !s.broken && !s.closed {
			h, found = s.server, true
			break
		}
	}
	if !found {
		// No session on the token: the application is logged out.
		delete(c.logins, slot)
		c.mu.Unlock()
		l.destroy()
		return nil
	}
	user := l.user
	pin := append([]byte(nil), l.pin.bytes()...)
	var username []byte
	if l.username != nil {
		username = append([]byte(nil), l.username.bytes()...)
	}
	c.mu.Unlock()
	var res wire.Result
	var err error
	if username != nil {
		res, err = cn.roundTrip(callLoginUser, h, user, pin, username)
	} else {
		res, err = cn.roundTrip(callLogin, h, user, pin)
	}
	clear(pin)
	clear(username)
	if err != nil {
		return err
	}
	if res.RV != ck.CKR_OK && res.RV != ck.CKR_USER_ALREADY_LOGGED_IN {
		c.logf("log slot %d back in: %v; the application's sessions there are public now", slot, res.RV)
		c.mu.Lock()
		mine := c.logins[slot] == l
		if mine {
			delete(c.logins, slot)
		}
		c.mu.Unlock()
		if mine {
			l.destroy()
		}
	}
	return nil
}

// roundTrip runs a call on cn ahead of the queue (the restore's calls):
// the arguments carry the appliance's handles already. A busy answer, a
// dead connection or no answer within Timeout is an error.
func (cn *conn) roundTrip(call *wire.Call, args ...any) (wire.Result, error) {
	p, err := call.AppendCall(nil, args)
	if err != nil {
		return wire.Result{}, err
	}
	r := &request{call: call, args: args, payload: p, done: make(chan struct{}),
		deadline: time.Now().Add(cn.c.cfg.Timeout), priv: true}
	defer clear(p)
	cn.mu.Lock()
	if cn.dead {
		cn.mu.Unlock()
		return wire.Result{}, errors.New("connection lost")
	}
	cn.priv = append(cn.priv, r)
	cn.mu.Unlock()
	cn.signal()
	t := time.NewTimer(cn.c.cfg.Timeout)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		cn.c.kill(cn, errors.New("no answer during restore"))
		<-r.done
	}
	defer clear(r.resp)
	if r.local {
		return wire.Result{}, fmt.Errorf("%s: %v", call.Name, r.rv)
	}
	if r.flags&wire.FlagNotRun != 0 {
		return wire.Result{}, fmt.Errorf("%s: appliance busy", call.Name)
	}
	if r.flags&wire.FlagTryElsewhere != 0 && cn.member >= 0 {
		// The member cannot reach its leader: a failed re-login here would
		// drop the held PIN. Fail the restore; the next connection skips
		// this member.
		cn.c.members.avoidFor(cn.member, max(cn.c.cfg.rebalanceEvery(), 2*cn.c.cfg.Timeout))
		return wire.Result{}, fmt.Errorf("%s: member cannot reach its cluster's leader", call.Name)
	}
	return call.DecodeResult(r.resp, r.flags)
}

// kill ends a connection: calls in flight that are safe to run twice go
// back to the front of the queue (once; within their deadline), the others
// fail with CKR_DEVICE_ERROR, and the manager reconnects.
func (c *Client) kill(cn *conn, why error) {
	cn.mu.Lock()
	if cn.dead {
		cn.mu.Unlock()
		return
	}
	cn.dead = true
	pend := cn.pending
	cn.pending = nil
	priv := cn.priv
	cn.priv = nil
	cn.mu.Unlock()
	close(cn.done)
	cn.rwc.Close()
	if cn.readTimer != nil {
		cn.readTimer.Stop()
	}
	if why != errFinalized {
		c.logf("appliance %s: connection lost: %v", c.cfg.Address, why)
	}
	sent := make([]*request, 0, len(pend))
	for _, r := range pend {
		sent = append(sent, r)
	}
	slices.SortFunc(sent, func(a, b *request) int { return cmp.Compare(a.id, b.id) })
	now := time.Now()
	c.mu.Lock()
	if c.cur == cn {
		c.cur = nil
	}
	var again []*request
	for _, r := range sent {
		if c.running && r.call.Retry == wire.Safe && !r.retried && now.Before(r.deadline) {
			r.retried = true
			r.sentOn.Store(nil)
			r.state.Store(stQueued)
			again = append(again, r)
			continue
		}
		r.state.Store(stDone)
		rv := ck.CKR_DEVICE_ERROR
		if !c.running {
			rv = ck.CKR_CRYPTOKI_NOT_INITIALIZED
		}
		if r.sess != nil && !r.call.Init {
			r.sess.told |= r.call.Op // this answer reports the operation's end
		}
		r.fail(rv)
	}
	c.queue = append(again, c.queue...)
	c.mu.Unlock()
	for _, r := range priv {
		if r.state.CompareAndSwap(stQueued, stDone) || r.state.CompareAndSwap(stSent, stDone) {
			r.fail(ck.CKR_DEVICE_ERROR)
		}
	}
}

// armRead sets the deadline of the next read; an rwc without deadlines
// gets a timer that closes it.
func (cn *conn) armRead(t time.Time) {
	if d, ok := cn.rwc.(readDeadliner); ok {
		d.SetReadDeadline(t)
		return
	}
	cn.readTimer.Reset(time.Until(t))
}

// readLoop reads answers until the connection fails. A connection silent
// for Timeout (the writer pings it every KeepAlive) is dead.
func (cn *conn) readLoop() {
	c := cn.c
	br := bufio.NewReaderSize(cn.rwc, 64<<10)
	var hb [wire.HeaderSize]byte
	var items []wire.Frame
	for {
		cn.armRead(time.Now().Add(c.cfg.Timeout))
		if _, err := io.ReadFull(br, hb[:]); err != nil {
			c.kill(cn, err)
			return
		}
		h, err := wire.ParseHeader(hb[:], clientMaxFrame)
		if err != nil {
			c.kill(cn, err)
			return
		}
		p := make([]byte, h.Len)
		if _, err := io.ReadFull(br, p); err != nil {
			c.kill(cn, err)
			return
		}
		cn.lastRecv.Store(time.Now().UnixNano())
		switch h.Type {
		case wire.FrameResult:
			cn.deliver(h, p)
		case wire.FrameBatch:
			// The item list is reused from batch to batch.
			items, err = wire.AppendBatchItems(items[:0], p, clientMaxFrame, wire.FrameResult)
			if err != nil {
				clear(p)
				c.kill(cn, err)
				return
			}
			// Each answer is handed over in place, not copied: its
			// request owns that part of the frame and zeroises it once
			// decoded (result), as deliver does for one it drops. The
			// rest of the frame is headers.
			for _, it := range items {
				cn.deliver(it.Header, it.Payload)
			}
			clear(items)
		case wire.FramePing:
			if h.Len <= wire.PingMax {
				cn.mu.Lock()
				if len(cn.ctrl) < 16 {
					cn.ctrl = append(cn.ctrl, wire.AppendFrame(nil, wire.FramePong, 0, h.ID, p))
				}
				cn.mu.Unlock()
				cn.signal()
			}
		case wire.FramePong:
		case wire.FrameGoAway:
			g, _ := wire.ParseGoAway(p)
			c.logf("appliance %s: GOAWAY (%d: %s)", c.cfg.Address, g.Reason, g.Message)
			cn.draining.Store(true)
			c.mu.Lock()
			if c.cur == cn {
				c.cur = nil
			}
			c.mu.Unlock()
			cn.drainedCheck()
		default:
			c.kill(cn, fmt.Errorf("unexpected %v frame", h.Type))
			return
		}
	}
}

// drainedCheck closes a connection the server is retiring once its last
// call is answered, so the manager opens the next one.
func (cn *conn) drainedCheck() {
	if !cn.draining.Load() {
		return
	}
	cn.mu.Lock()
	n := len(cn.pending) + len(cn.priv)
	cn.mu.Unlock()
	if n == 0 {
		cn.c.kill(cn, errors.New("appliance going away"))
	}
}

// deliver hands an answer to its request; p becomes the request's, which
// zeroises it (Client.result), or is zeroised here if nobody takes it.
func (cn *conn) deliver(h wire.Header, p []byte) {
	cn.mu.Lock()
	r := cn.pending[h.ID]
	if r != nil {
		full := len(cn.pending) >= cn.maxCalls
		delete(cn.pending, h.ID)
		if full {
			cn.signal() // room for a queued call
		}
	}
	cn.mu.Unlock()
	if r == nil {
		clear(p) // an answer to a call abandoned meanwhile
		return
	}
	c := cn.c
	if h.Flags&wire.FlagTryElsewhere != 0 && !r.priv && cn.welcome.Version >= 2 {
		// The member cannot reach its cluster's leader: go to another
		// (rebalance.go), and send this call again there if that is safe.
		leaving := c.tryElsewhere(cn)
		if leaving && r.call.Retry == wire.Safe && !r.retried && time.Now().Before(r.deadline) {
			clear(p)
			r.retried = true
			r.sentOn.Store(nil)
			r.state.Store(stQueued)
			c.mu.Lock()
			if c.running {
				c.queue = append([]*request{r}, c.queue...)
				c.mu.Unlock()
			} else {
				c.mu.Unlock()
				r.tryFail(ck.CKR_CRYPTOKI_NOT_INITIALIZED)
			}
			cn.drainedCheck()
			return
		}
	}
	if h.Flags&wire.FlagNotRun != 0 && !r.priv && len(p) >= 8 {
		// Not run. Busy (CKR_DEVICE_MEMORY): send it again after a
		// backoff, within its deadline, if RetryBusy. Refused by a server
		// going away: send it again on the next connection.
		busy := ck.RV(binary.BigEndian.Uint64(p)) == ck.CKR_DEVICE_MEMORY
		var d time.Duration
		if busy {
			n := r.busy.Add(1)
			d = time.Duration(1<<min(n, 6)) * time.Millisecond
			d = d/2 + rand.N(d/2+1)
		}
		if (!busy || c.cfg.RetryBusy) && time.Now().Add(d).Before(r.deadline) {
			clear(p)
			r.sentOn.Store(nil)
			r.state.Store(stQueued)
			time.AfterFunc(d, func() {
				c.mu.Lock()
				if r.state.Load() == stQueued && c.running {
					c.queue = append(c.queue, r)
				}
				cur := c.cur
				c.mu.Unlock()
				if cur != nil {
					cur.signal()
				}
			})
			cn.drainedCheck()
			return
		}
	}
	r.state.Store(stDone)
	r.flags, r.resp = h.Flags, p
	r.finish()
	cn.drainedCheck()
}

// writeLoop sends keepalives, and what is queued when it is signalled:
// PONGs, the restore's calls, calls queued while there was no connection or
// no room in flight, and every call when CoalesceDelay is set. Other calls
// are sent by their callers (flush).
func (cn *conn) writeLoop() {
	c := cn.c
	// Tick at half the interval: a PING then leaves at most one interval
	// after the last frame, not almost two (a tick just missing it), which
	// with the server's idle limit at three intervals keeps a margin for a
	// loaded machine's scheduling delays.
	ka := time.NewTicker(cn.keepAlive / 2)
	defer ka.Stop()
	ping := wire.AppendFrame(nil, wire.FramePing, 0, 0, nil)
	for {
		select {
		case <-cn.sig:
		case <-ka.C:
			if time.Since(time.Unix(0, cn.lastRecv.Load())) < cn.keepAlive/2 &&
				time.Since(time.Unix(0, cn.lastSent.Load())) < cn.keepAlive/2 {
				continue
			}
			cn.wmu.Lock()
			err := cn.write(ping)
			cn.wmu.Unlock()
			if err != nil {
				c.kill(cn, err)
				return
			}
			// A caller that queued a call while this PING held wmu found
			// the lock taken and left its call to the writer (flush):
			// send it now, or it waits in the queue for its deadline.
			cn.flush()
			continue
		case <-cn.done:
			return
		}
		// Other calls are in flight: their callers may be about to queue
		// more; yield once so that they share this write.
		cn.mu.Lock()
		busy := len(cn.pending) > 0
		cn.mu.Unlock()
		if busy {
			runtime.Gosched()
		}
		if c.cfg.CoalesceDelay > 0 {
			c.mu.Lock()
			few := len(c.queue) < 4
			c.mu.Unlock()
			if few {
				time.Sleep(c.cfg.CoalesceDelay)
			}
		}
		cn.flush()
	}
}

// flush sends what can be sent now, on the calling goroutine, unless
// another goroutine is writing: that one looks at the queue again once its
// write is done, so a call queued meanwhile goes out in its next write. A
// lone caller that sends its own call spares the hand-off to the writer
// goroutine: for a C application (libgohsm.so in remote mode) that hand-off
// is a thread woken and put to sleep again per call, which costs more CPU
// than the call's encoding, TLS and system call together
// (docs/bench-remote.md).
func (cn *conn) flush() {
	for cn.wmu.TryLock() {
		err := cn.sendQueued()
		cn.wmu.Unlock()
		if err != nil {
			cn.c.kill(cn, err)
			return
		}
		if !cn.sendable() {
			return
		}
	}
}

// idle reports whether no call is in flight on the connection.
func (cn *conn) idle() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return len(cn.pending) == 0
}

// sendQueued writes what take gives until it gives nothing; wmu is held.
func (cn *conn) sendQueued() error {
	for {
		var n int
		cn.wbuf, n = cn.take(cn.wbuf[:0])
		if n == 0 {
			return nil
		}
		err := cn.write(cn.wbuf)
		clear(cn.wbuf)
		if err != nil {
			return err
		}
	}
}

// sendable reports whether take would give something now.
func (cn *conn) sendable() bool {
	c := cn.c
	c.mu.Lock()
	defer c.mu.Unlock()
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.dead {
		return false
	}
	room := cn.maxCalls > len(cn.pending)
	return len(cn.ctrl) > 0 || (room && len(cn.priv) > 0) ||
		(room && len(c.queue) > 0 && c.cur == cn && !cn.draining.Load())
}

// write writes and flushes a buffer within Timeout; wmu is held.
func (cn *conn) write(b []byte) error {
	if d, ok := cn.rwc.(writeDeadliner); ok {
		d.SetWriteDeadline(time.Now().Add(cn.c.cfg.Timeout))
	}
	if _, err := cn.bw.Write(b); err != nil {
		return err
	}
	if err := cn.bw.Flush(); err != nil {
		return err
	}
	cn.lastSent.Store(time.Now().UnixNano())
	return nil
}

// take moves what can be sent now into frames appended to buf: PONGs, the
// restore's calls, then (on a restored connection) queued calls, up to the
// in-flight cap. One call is a CALL frame; several are BATCH frames. It
// returns the number of frames' worth of work taken.
func (cn *conn) take(buf []byte) ([]byte, int) {
	c := cn.c
	c.mu.Lock()
	defer c.mu.Unlock()
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.dead {
		return buf, 0
	}
	n := 0
	for _, f := range cn.ctrl {
		buf = append(buf, f...)
		n++
	}
	cn.ctrl = nil
	var out []*request
	room := cn.maxCalls - len(cn.pending)
	for len(cn.priv) > 0 && room > 0 {
		r := cn.priv[0]
		cn.priv = cn.priv[1:]
		out = append(out, r)
		room--
	}
	if c.cur == cn && !cn.draining.Load() {
		i := 0
		for ; i < len(c.queue) && room > 0; i++ {
			r := c.queue[i]
			if r.state.Load() != stQueued {
				continue
			}
			if s := r.sess; s != nil {
				var rv ck.RV
				switch {
				case s.closed:
					rv = ck.CKR_SESSION_HANDLE_INVALID
				case s.broken || s.epoch != cn.epoch:
					rv = ck.CKR_DEVICE_ERROR
				case r.call.Init:
					s.lost &^= r.call.Op
				case s.lost&r.call.Op != 0:
					// The operation this call continues was begun before
					// the reconnect: it is gone. Say so once.
					s.lost &^= r.call.Op
					rv = ck.CKR_DEVICE_ERROR
				}
				if rv != ck.CKR_OK {
					r.tryFail(rv)
					continue
				}
			}
			out = append(out, r)
			room--
		}
		c.queue = c.queue[i:]
		if len(c.queue) == 0 {
			c.queue = nil
		}
	}
	if len(out) == 0 {
		return buf, n
	}
	now := time.Now().UnixNano()
	kept := out[:0]
	for _, r := range out {
		cn.nextID++
		r.id = cn.nextID
		r.epoch = cn.epoch
		r.sentAt.Store(now)
		r.sentOn.Store(cn)
		if !r.state.CompareAndSwap(stQueued, stSent) {
			continue // abandoned by its caller just now
		}
		cn.pending[r.id] = r
		kept = append(kept, r)
	}
	if len(kept) == 1 {
		return cn.appendCall(buf, kept[0]), n + 1
	}
	for i := 0; i < len(kept); {
		start := len(buf)
		buf = append(buf, make([]byte, wire.BatchOverhead)...)
		j := i
		for j < len(kept) && j-i < wire.MaxBatchItems &&
			(j == i || len(buf)-start+wire.HeaderSize+len(kept[j].payload) <= c.limit) {
			buf = cn.appendCall(buf, kept[j])
			j++
		}
		batch := wire.AppendBatchHeader(nil, j-i, len(buf)-start-wire.HeaderSize)
		copy(buf[start:], batch)
		i = j
	}
	return buf, n + len(kept)
}

// appendCall appends r as a CALL frame with the appliance's session handle.
func (cn *conn) appendCall(buf []byte, r *request) []byte {
	buf = wire.AppendHeader(buf, wire.FrameCall, 0, r.id, len(r.payload))
	start := len(buf)
	buf = append(buf, r.payload...)
	if r.sess != nil {
		putU64(buf[start+wire.SessionOffset:], uint64(r.sess.server))
	}
	return buf
}

func putU64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }
