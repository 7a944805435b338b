package server

import (
	"bufio"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The busy answer. A call the server does not run because it is saturated
// gets FlagNotRun and CKR_DEVICE_MEMORY.
//
// Why CKR_DEVICE_MEMORY: it is the standard code for "the token does not
// have the resources to perform the requested function" and every C_
// function may return it, so every PKCS#11 application already handles it,
// as a transient condition rather than a bug in its own call
// (CKR_ARGUMENTS_BAD, ...) or a lost device (CKR_DEVICE_REMOVED). It is not
// CKR_FUNCTION_FAILED, which for C_Verify and the KEMs means a
// cryptographic failure, nor a vendor code, which generic tools print as an
// unknown error. The code alone cannot say "not executed" (the store answers
// CKR_DEVICE_MEMORY for a full disk), so the protocol adds FlagNotRun, which
// tells a client it may send the call again; gohsm's client does, with
// backoff, within its call bound.
const rvBusy = ck.CKR_DEVICE_MEMORY

// rvShutdown answers calls that arrive after GOAWAY (with FlagNotRun): the
// client sends them again on its next connection.
const rvShutdown = ck.CKR_DEVICE_ERROR

// maxQueuedControl bounds the PONG frames waiting for the writer; beyond it
// PINGs go unanswered (a peer flooding PINGs without reading gets nothing).
const maxQueuedControl = 64

// conn is one client connection.
type conn struct {
	srv      *Server
	rwc      io.ReadWriteCloser
	br       *bufio.Reader
	peer     string
	identity string
	parts    []string
	all      bool // partitions include "*"
	admin    bool
	be       hsm.Backend
	maxOut   int    // the client's MaxFrame
	version  uint16 // the protocol version chosen in WELCOME

	// Outgoing frames, written by writeLoop.
	outMu   sync.Mutex
	out     [][]byte
	control int // PONGs queued
	outSig  chan struct{}
	closed  chan struct{}
	once    sync.Once

	// Sessions this connection opened, with their FIFO of calls.
	smu      sync.Mutex
	sessions map[ck.SessionHandle]*sessq

	inflight  atomic.Int64
	inbytes   atomic.Int64 // payload bytes of the calls in flight
	goingAway atomic.Bool
	// eng is the connection's own engine (Server.openEngine).
	eng *engine
	// readTimer enforces read deadlines on an rwc without SetReadDeadline.
	readTimer *time.Timer
	// calls holds the CallTimeout deadlines of the calls in flight.
	calls deadlines
	// rbuf is the reader's frame buffer, reused from frame to frame
	// (zeroised after each: it may hold a PIN or plaintext).
	rbuf []byte
}

// sessq is a session's call queue.
type sessq struct {
	slot    ck.SlotID
	queue   []*item
	running bool
}

// item is one call in flight.
type item struct {
	id    uint64
	dec   wire.Decoded
	size  int // its payload's length, counted in by admit
	state atomic.Int32
	// In conn.calls (deadlines.go), under its mutex.
	deadline   time.Time
	prev, next *item
	listed     bool
}

const (
	stQueued int32 = iota
	stRunning
	stAnswered
)

func newConn(s *Server, rwc io.ReadWriteCloser, identity string, parts []string, admin bool, peer string) *conn {
	c := &conn{
		srv:      s,
		rwc:      rwc,
		br:       bufio.NewReaderSize(rwc, 32<<10),
		peer:     peer,
		identity: identity,
		parts:    parts,
		all:      slices.Contains(parts, "*"),
		admin:    admin,
		outSig:   make(chan struct{}, 1),
		closed:   make(chan struct{}),
		sessions: map[ck.SessionHandle]*sessq{},
	}
	c.calls.fire = c.timeout
	if _, ok := rwc.(readDeadliner); !ok {
		// Made here, before any goroutine, so close can stop it safely.
		c.readTimer = time.AfterFunc(time.Hour, func() { rwc.Close() })
	}
	return c
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// armRead sets the deadline of the next read. An rwc without deadlines
// (a test's pipe) gets a timer that closes it instead.
func (c *conn) armRead(t time.Time) {
	if d, ok := c.rwc.(readDeadliner); ok {
		d.SetReadDeadline(t)
		return
	}
	c.readTimer.Reset(time.Until(t))
}

// readFrame reads one frame: the first byte must come by first (the
// connection may be quiet that long), the rest of the frame by rest (a
// frame dribbled byte by byte is cut off); a zero rest is FrameTimeout from
// the first byte.
func (c *conn) readFrame(first, rest time.Time, max int) (wire.Header, []byte, error) {
	c.armRead(first)
	if _, err := c.br.Peek(1); err != nil {
		return wire.Header{}, nil, err
	}
	if rest.IsZero() {
		rest = time.Now().Add(c.srv.cfg.FrameTimeout)
	}
	c.armRead(rest)
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(c.br, hb[:]); err != nil {
		return wire.Header{}, nil, err
	}
	h, err := wire.ParseHeader(hb[:], max)
	if err != nil {
		return h, nil, err
	}
	p := c.frameBuf(h.Len)
	if _, err := io.ReadFull(c.br, p); err != nil {
		clear(p)
		return h, nil, err
	}
	return h, p, nil
}

// maxReuse bounds the reader buffer kept from frame to frame: a rare
// large frame does not pin its size for the connection's life.
const maxReuse = 256 << 10

// frameBuf is a buffer of n bytes for the next frame's payload. The
// caller zeroises it once the frame is handled: decoding copies what it
// keeps (wire.Decoder), so it can be reused for the next frame.
func (c *conn) frameBuf(n int) []byte {
	if cap(c.rbuf) >= n {
		return c.rbuf[:n]
	}
	p := make([]byte, n)
	if n <= maxReuse {
		c.rbuf = p
	}
	return p
}

// run is the connection: handshake, then the reader loop on this goroutine
// and the writer on another. When it returns the connection is closed and
// its sessions too.
func (c *conn) run(deadline time.Time) {
	defer c.close()
	cfg := &c.srv.cfg
	h, p, err := c.readFrame(deadline, deadline, 4096) // the handshake's deadline bounds HELLO too
	if err != nil || h.Type != wire.FrameHello || h.ID != 0 {
		c.srv.logf("%s (%s): no HELLO: %v", c.peer, c.identity, err)
		return
	}
	hello, err := wire.ParseHello(p)
	if err != nil {
		c.srv.logf("%s (%s): %v", c.peer, c.identity, err)
		return
	}
	c.maxOut = int(hello.MaxFrame)
	w := wire.Welcome{Version: wire.Choose(hello.Versions), MaxFrame: uint32(cfg.MaxFrame),
		MaxCalls: uint32(cfg.MaxCallsPerConn), IdleMillis: uint32(cfg.IdleTimeout.Milliseconds()),
		CallMillis: uint32(cfg.CallTimeout.Milliseconds()), Identity: c.identity, Server: cfg.Name}
	c.version = w.Version
	if w.Version == 0 {
		c.writeNow(wire.AppendFrame(nil, wire.FrameWelcome, 0, 0, wire.AppendWelcome(nil, w)))
		c.srv.logf("%s (%s): no common protocol version in %v", c.peer, c.identity, hello.Versions)
		return
	}
	if w.Version >= 2 && h.Flags&wire.HelloProbe != 0 {
		// A client measuring the members' load: WELCOME only, no engine.
		c.srv.fillLoad(&w)
		c.writeNow(wire.AppendFrame(nil, wire.FrameWelcome, 0, 0, wire.AppendWelcome(nil, w)))
		return
	}
	eng, err := c.srv.openEngine(c.identity)
	if err != nil {
		c.srv.logf("%s (%s): %v", c.peer, c.identity, err)
		c.writeNow(goAwayFrame(wire.GoAwayShutdown, "engine unavailable"))
		return
	}
	c.eng, c.be = eng, eng.be
	c.srv.fillLoad(&w)
	// Counted before the client can read WELCOME: its next probe (or
	// another client's) already sees this connection.
	c.srv.engaged.Add(1)
	defer c.srv.engaged.Add(-1)
	if !c.writeNow(wire.AppendFrame(nil, wire.FrameWelcome, 0, 0, wire.AppendWelcome(nil, w))) {
		return
	}
	c.srv.logf("%s: identity %q connected (%s)", c.peer, c.identity, hello.Name)
	go c.writeLoop()
	var items []wire.Frame
	for {
		h, p, err := c.readFrame(time.Now().Add(cfg.IdleTimeout), time.Time{}, cfg.MaxFrame)
		if err != nil {
			var big *wire.FrameTooLarge
			switch {
			case errors.As(err, &big):
				c.srv.logf("%s (%s): %v", c.peer, c.identity, err)
				c.fatal(wire.GoAwayFrameTooLarge, "frame too large")
			case isTimeout(err) && h.Len == 0 && c.br.Buffered() == 0:
				c.fatal(wire.GoAwayIdle, "idle")
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			default:
				c.srv.logf("%s (%s): read: %v", c.peer, c.identity, err)
				c.fatal(wire.GoAwayProtocolError, "protocol error")
			}
			return
		}
		switch h.Type {
		case wire.FrameCall:
			c.dispatch(h.ID, p, time.Now())
		case wire.FrameBatch:
			// The item list is reused from batch to batch.
			items, err = wire.AppendBatchItems(items[:0], p, cfg.MaxFrame, wire.FrameCall)
			if err != nil {
				clear(p)
				c.srv.logf("%s (%s): %v", c.peer, c.identity, err)
				c.fatal(wire.GoAwayProtocolError, "bad batch")
				return
			}
			// One clock reading for the frame: its calls arrived together.
			now := time.Now()
			for _, it := range items {
				c.dispatch(it.ID, it.Payload, now)
			}
			clear(items) // no reference to the frame's bytes is kept
		case wire.FramePing:
			if h.Len <= wire.PingMax {
				c.sendControl(wire.AppendFrame(nil, wire.FramePong, 0, h.ID, p))
			}
		case wire.FramePong:
		default:
			c.srv.logf("%s (%s): unexpected %v frame", c.peer, c.identity, h.Type)
			c.fatal(wire.GoAwayProtocolError, "unexpected frame")
			return
		}
		clear(p) // it may hold a PIN or plaintext; decoding copied what it kept
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

func goAwayFrame(reason uint32, msg string) []byte {
	return wire.AppendFrame(nil, wire.FrameGoAway, 0, 0, wire.AppendGoAway(nil, wire.GoAway{Reason: reason, Message: msg}))
}

// fatal sends GOAWAY and ends the connection (the caller returns from run).
func (c *conn) fatal(reason uint32, msg string) {
	c.send(goAwayFrame(reason, msg))
	c.flushAndClose()
}

// writeNow writes a frame on the reader's goroutine, before the writer
// runs (the handshake).
func (c *conn) writeNow(f []byte) bool {
	if d, ok := c.rwc.(writeDeadliner); ok {
		d.SetWriteDeadline(time.Now().Add(c.srv.cfg.FrameTimeout))
	}
	_, err := c.rwc.Write(f)
	return err == nil
}

// send queues a frame for the writer.
func (c *conn) send(f []byte) {
	c.outMu.Lock()
	c.out = append(c.out, f)
	c.outMu.Unlock()
	select {
	case c.outSig <- struct{}{}:
	default:
	}
}

func (c *conn) sendControl(f []byte) {
	c.outMu.Lock()
	if c.control >= maxQueuedControl {
		c.outMu.Unlock()
		return
	}
	c.control++
	c.out = append(c.out, f)
	c.outMu.Unlock()
	select {
	case c.outSig <- struct{}{}:
	default:
	}
}

// writeLoop writes queued frames. Several RESULT frames ready at once go
// out as one BATCH (up to the client's MaxFrame); every buffer is zeroised
// once written, as it may hold plaintext.
func (c *conn) writeLoop() {
	bw := bufio.NewWriterSize(c.rwc, 64<<10)
	// spare is the frame list given back to send once written, so that
	// the list is not grown again for every round of answers.
	var spare [][]byte
	for {
		select {
		case <-c.outSig:
		case <-c.closed:
			return
		}
		// Other calls are running: let them finish first, so that their
		// answers share this write (one TLS record, one system call)
		// instead of each paying for its own. A yield, not a timer: it
		// costs nothing when there is nothing to wait for.
		if c.inflight.Load() > 0 {
			runtime.Gosched()
		}
		for {
			c.outMu.Lock()
			frames := c.out
			c.out = spare
			spare = nil
			c.control = 0
			c.outMu.Unlock()
			if len(frames) == 0 {
				spare = frames
				break
			}
			if d, ok := c.rwc.(writeDeadliner); ok {
				d.SetWriteDeadline(time.Now().Add(c.srv.cfg.FrameTimeout))
			}
			err := writeFrames(bw, frames, c.maxOut)
			for _, f := range frames {
				clear(f)
			}
			clear(frames)
			if cap(frames) <= wire.MaxBatchItems {
				spare = frames[:0]
			}
			if err == nil {
				err = c.flush(bw)
			}
			if err != nil {
				c.close()
				return
			}
		}
	}
}

// flush flushes bw, bounded by FrameTimeout even on an rwc without write
// deadlines: a client that stops reading is cut off.
func (c *conn) flush(bw *bufio.Writer) error {
	if _, ok := c.rwc.(writeDeadliner); ok {
		return bw.Flush()
	}
	t := time.AfterFunc(c.srv.cfg.FrameTimeout, func() { c.rwc.Close() })
	defer t.Stop()
	return bw.Flush()
}

// writeFrames writes frames, packing runs of RESULT frames into BATCH
// frames.
func writeFrames(bw *bufio.Writer, frames [][]byte, max int) error {
	for i := 0; i < len(frames); {
		j, size := i, 4
		for j < len(frames) && wire.FrameType(frames[j][4]) == wire.FrameResult && j-i < wire.MaxBatchItems &&
			size+len(frames[j]) <= max {
			size += len(frames[j])
			j++
		}
		if j-i < 2 {
			if _, err := bw.Write(frames[i]); err != nil {
				return err
			}
			i++
			continue
		}
		var hb [wire.BatchOverhead]byte
		if _, err := bw.Write(wire.AppendBatchHeader(hb[:0], j-i, size)); err != nil {
			return err
		}
		for ; i < j; i++ {
			if _, err := bw.Write(frames[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// close ends the connection: the writer stops, the socket closes, and the
// connection's sessions are closed in the engine (which logs the identity
// out of a token whose last session this was, as PKCS#11 says).
func (c *conn) close() {
	c.once.Do(func() {
		close(c.closed)
		c.rwc.Close()
		c.calls.stop()
		if c.readTimer != nil {
			c.readTimer.Stop()
		}
		c.closeSessions(func(ck.SlotID) bool { return true })
		if c.eng != nil {
			// The engine goes when the calls still running on it have
			// returned (their answers are dropped): a connection is one
			// application, and its end is that application's C_Finalize.
			go func() {
				for c.inflight.Load() > 0 {
					time.Sleep(time.Millisecond)
				}
				if err := c.srv.releaseEngine(c.eng); err != nil {
					c.srv.logf("%s (%s): %v", c.peer, c.identity, err)
				}
			}()
		}
	})
}

// flushAndClose gives the writer a moment to send what is queued (a
// GOAWAY, the last answers), then closes.
func (c *conn) flushAndClose() {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		c.outMu.Lock()
		n := len(c.out)
		c.outMu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-c.closed:
			return
		case <-time.After(time.Millisecond):
		}
	}
	// The writer may be in its last write; closing the socket ends it.
	time.Sleep(time.Millisecond)
	c.close()
}

// goAway starts a graceful shutdown of the connection: GOAWAY goes out and
// new calls are answered "not run".
func (c *conn) goAway() {
	c.goingAway.Store(true)
	c.send(goAwayFrame(wire.GoAwayShutdown, "shutting down"))
}

// closeSessions closes the connection's sessions on the slots match says.
func (c *conn) closeSessions(match func(ck.SlotID) bool) {
	c.smu.Lock()
	var hs []ck.SessionHandle
	for h, q := range c.sessions {
		if match(q.slot) {
			hs = append(hs, h)
			delete(c.sessions, h)
		}
	}
	c.smu.Unlock()
	if c.be == nil {
		return
	}
	for _, h := range hs {
		c.be.CloseSession(h)
	}
}

// answerCode queues a RESULT that is only a return code.
func (c *conn) answerCode(id uint64, flags byte, rv ck.RV) {
	c.send(codeFrame(id, flags, rv))
}

// codeFrame is a RESULT frame that is only a return code, in one
// allocation.
func codeFrame(id uint64, flags byte, rv ck.RV) []byte {
	f := wire.AppendHeader(make([]byte, 0, wire.HeaderSize+8), wire.FrameResult, flags, id, 8)
	return wire.AppendCode(f, rv)
}

// resultSize estimates a RESULT frame with values, so that the frame is
// one allocation rather than one per append: byte strings by their
// length, anything else (a handle, a count, a small structure) by a guess
// that append corrects when it is wrong.
func resultSize(results []any, orig [][]byte) int {
	n := wire.HeaderSize + 8
	for _, r := range results {
		if b, ok := r.([]byte); ok {
			n += 4 + len(b)
		} else {
			n += 16
		}
	}
	for _, p := range orig {
		n += 1 + len(p)
	}
	return n
}

// admit counts a call of size payload bytes in, or says why not.
func (c *conn) admit(size int) (ck.RV, bool) {
	if c.goingAway.Load() {
		return rvShutdown, false
	}
	cfg, n := &c.srv.cfg, int64(size)
	ok := c.inflight.Add(1) <= int64(cfg.MaxCallsPerConn)
	ok = c.srv.total.Add(1) <= int64(cfg.MaxCallsTotal) && ok
	ok = c.inbytes.Add(n) <= int64(cfg.MaxBytesPerConn) && ok
	ok = c.srv.totalBytes.Add(n) <= int64(cfg.MaxBytesTotal) && ok
	if !ok {
		c.release(size)
		c.srv.busy.Add(1)
		return rvBusy, false
	}
	return ck.CKR_OK, true
}

// release counts out a call of size payload bytes that admit counted in.
func (c *conn) release(size int) {
	c.srv.totalBytes.Add(-int64(size))
	c.inbytes.Add(-int64(size))
	c.srv.total.Add(-1)
	c.inflight.Add(-1)
}

// dispatch admits, decodes and schedules one call that arrived at now. It
// runs on the reader goroutine and never blocks on the engine.
func (c *conn) dispatch(id uint64, p []byte, now time.Time) {
	if rv, ok := c.admit(len(p)); !ok {
		c.answerCode(id, wire.FlagNotRun, rv)
		return
	}
	dec, err := wire.DecodeCall(p, c.srv.cfg.MaxFrame)
	if err != nil {
		c.release(len(p)) // before the answer, which frees the client's slot
		c.answerCode(id, 0, hsm.ToRV(err))
		return
	}
	it := &item{id: id, dec: dec, size: len(p)}
	c.calls.add(it, now.Add(c.srv.cfg.CallTimeout))
	if !dec.Call.Session {
		c.srv.workers.run(func() { c.execute(it) })
		return
	}
	h := dec.Args[0].(ck.SessionHandle)
	c.smu.Lock()
	q := c.sessions[h]
	if q == nil {
		c.smu.Unlock()
		// Not this connection's session: it does not exist here, even if
		// another connection of the same identity has one with this handle.
		c.finish(it, ck.CKR_SESSION_HANDLE_INVALID, nil, false)
		return
	}
	q.queue = append(q.queue, it)
	start := !q.running
	q.running = true
	c.smu.Unlock()
	if start {
		c.srv.workers.run(func() { c.drain(q) })
	}
}

// drain runs a session's calls in arrival order.
func (c *conn) drain(q *sessq) {
	for {
		c.smu.Lock()
		if len(q.queue) == 0 {
			q.running = false
			c.smu.Unlock()
			return
		}
		it := q.queue[0]
		q.queue[0] = nil
		q.queue = q.queue[1:]
		c.smu.Unlock()
		c.execute(it)
	}
}

// timeout answers a call that passed CallTimeout: busy if it never
// started (it did nothing), CKR_DEVICE_ERROR if it is running (its outcome
// is unknown). The running call's own answer is then dropped.
func (c *conn) timeout(it *item) {
	if it.state.CompareAndSwap(stQueued, stAnswered) {
		c.srv.busy.Add(1)
		c.answerCode(it.id, wire.FlagNotRun, rvBusy)
		return
	}
	if it.state.CompareAndSwap(stRunning, stAnswered) {
		c.srv.logf("%s (%s): %s passed the call deadline", c.peer, c.identity, it.dec.Call.Name)
		c.answerCode(it.id, 0, ck.CKR_DEVICE_ERROR)
	}
}

// execute runs one admitted call and answers it.
func (c *conn) execute(it *item) {
	if !it.state.CompareAndSwap(stQueued, stRunning) {
		c.wipe(it)
		c.release(it.size)
		return
	}
	select {
	case <-c.closed:
		// The connection is gone: nothing may run on its behalf.
		it.state.Store(stAnswered)
		c.calls.remove(it)
		c.wipe(it)
		c.release(it.size)
		return
	default:
	}
	results, err := c.invoke(it.dec)
	var flags byte
	if err != nil && c.version >= 2 && c.srv.cfg.Unavailable != nil && c.srv.cfg.Unavailable(err) {
		// The member cannot reach its cluster's leader: another member
		// may serve this call. The return code stays (CKR_DEVICE_ERROR,
		// what a version-1 client sees); the flag tells them apart.
		flags = wire.FlagTryElsewhere
	}
	c.finishFlags(it, hsm.ToRV(err), results, true, flags)
}

// finish answers a call (unless its deadline already did) and releases it.
// The release comes first: the answer tells the client a slot is free, and
// its next call may arrive before this goroutine runs again.
func (c *conn) finish(it *item, rv ck.RV, results []any, ran bool) {
	c.finishFlags(it, rv, results, ran, 0)
}

// finishFlags is finish with extra RESULT flags (wire.FlagTryElsewhere)
// on an answer with values.
func (c *conn) finishFlags(it *item, rv ck.RV, results []any, ran bool, flags byte) {
	c.calls.remove(it)
	answer := it.state.Swap(stAnswered) != stAnswered
	var f []byte
	if answer && ran {
		call := it.dec.Call
		var off int
		f, off = wire.BeginFrame(make([]byte, 0, resultSize(results, it.dec.Params)), wire.FrameResult,
			wire.FlagValues|flags, it.id)
		f = call.AppendResult(f, rv, results, it.dec.Args, it.dec.Params)
		if len(f)-off-wire.HeaderSize > c.maxOut {
			// The answer cannot reach the client; the call ran, so this is
			// not "busy". The client's limit makes this impossible for a
			// result it was allowed to ask for.
			clear(f)
			f = codeFrame(it.id, 0, ck.CKR_DEVICE_MEMORY)
		} else {
			wire.EndFrame(f, off)
		}
	} else if answer {
		f = codeFrame(it.id, 0, rv)
	}
	c.wipe(it)
	c.release(it.size)
	if f != nil {
		c.send(f)
	}
}

// wipe zeroises the call's secrets: PIN arguments and the copies of its
// parameters (a PBKDF2 password).
func (c *conn) wipe(it *item) {
	for _, i := range it.dec.Call.Wipe {
		if b, ok := it.dec.Args[i].([]byte); ok {
			clear(b)
		}
	}
	for _, p := range it.dec.Params {
		clear(p)
	}
}
