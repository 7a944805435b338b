// Package server serves PKCS#11 engines on the appliance's native protocol
// (firmware-sim/wire, spec.md there): TLS 1.3 with verified client
// certificates, one engine per connection (each connection is one PKCS#11
// application, as each process that loads the module is), and a
// per-identity view of the slots (its partitions).
//
// Concurrency model. Each connection has one reader goroutine (frames in,
// admission, dispatch) and one writer goroutine (answers out, packed into
// BATCH frames when several are ready). Calls run concurrently: a call on a
// session joins that session's FIFO, served by one goroutine at a time, so
// calls on one session run in the order they arrived and calls on different
// sessions run in parallel; a call without a session runs on its own
// goroutine. Admission is counted, never queued: a call beyond
// MaxCallsPerConn or MaxCallsTotal, or whose payload would pass
// MaxBytesPerConn or MaxBytesTotal, is answered busy at once by the reader.
// A connection's calls in flight share one deadline timer (deadlines.go),
// and its reader reuses one buffer for the frames it reads (zeroised after
// each frame).
// A connection's engine is its own and is safe for concurrent use
// (hsm.Backend); engines on one store see each other's token objects as
// processes on one store do.
//
// Nothing a peer sends is trusted: frames are bounded (MaxFrame), timed
// (IdleTimeout, FrameTimeout), decoded by the checked wire decoders, and a
// protocol error ends that connection only.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/hsm"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Server is the appliance's network service.
type Server struct {
	cfg Config

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	engines   map[*engine]struct{}
	// finishing are the engines being finalised, each with a channel
	// closed when its store is: Shutdown and Close wait for them, so that
	// an engine a connection's end began to release is closed too before
	// they return.
	finishing map[*engine]chan struct{}
	// finishMu makes engines close one at a time: SQLite removes a
	// store's WAL file only when the connection closing it is the last,
	// and two closing at once each see the other open.
	finishMu sync.Mutex
	closing  bool

	// total counts calls in flight over all connections.
	total atomic.Int64
	// totalBytes counts their payload bytes.
	totalBytes atomic.Int64
	// nconns counts open connections (handshaking included).
	nconns atomic.Int64
	// engaged counts connections with an engine (past WELCOME): the
	// connections WELCOME reports as load (probes and handshakes are not).
	engaged atomic.Int64
	// busy counts calls answered busy (rvBusy with FlagNotRun).
	busy atomic.Uint64
	// wg tracks connection goroutines.
	wg sync.WaitGroup
	// workers run the calls.
	workers *pool
}

// engine is one connection's backend: a PKCS#11 application of its own.
type engine struct {
	identity string
	be       hsm.Backend // what calls go to (wrapped)
	raw      hsm.Backend // what Open returned, finalised when released
}

// New checks cfg and makes a server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{
		cfg:       cfg,
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		engines:   map[*engine]struct{}{},
		finishing: map[*engine]chan struct{}{},
		workers:   newPool(10 * time.Second),
	}, nil
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// Serve accepts connections on l (a plain TCP listener; Serve does the TLS)
// until Shutdown, and returns ErrServerClosed then.
func (s *Server) Serve(l net.Listener) error {
	tcfg, err := s.cfg.serverTLS()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Descriptor exhaustion and the like pass: back off and go on
			// rather than spin or give up.
			s.logf("accept: %v", err)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if s.nconns.Add(1) > int64(s.cfg.MaxConns) {
			s.nconns.Add(-1)
			nc.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.nconns.Add(-1)
			s.serveTLS(nc, tcfg)
		}()
	}
}

// serveTLS runs the TLS handshake, authorises the certificate, and serves
// the connection. A peer that fails any of it gets the TLS alert (Go's TLS
// stack sends it) or a closed connection, never a protocol byte.
func (s *Server) serveTLS(nc net.Conn, tcfg *tls.Config) {
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	tc := tls.Server(nc, tcfg)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		s.logf("%s: TLS handshake: %v", nc.RemoteAddr(), err)
		tc.Close()
		return
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 { // RequireAndVerifyClientCert makes this impossible
		tc.Close()
		return
	}
	s.serve(tc, certs[0], deadline, nc.RemoteAddr().String())
}

// ServeConn serves one connection whose peer presented cert (the caller
// did the TLS, or a test runs the protocol on a pipe). It returns when the
// connection ends.
func (s *Server) ServeConn(rwc io.ReadWriteCloser, cert *x509.Certificate) error {
	if s.isClosing() {
		rwc.Close()
		return ErrServerClosed
	}
	s.nconns.Add(1)
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.nconns.Add(-1)
	s.serve(rwc, cert, time.Now().Add(s.cfg.HandshakeTimeout), "conn")
	return nil
}

func (s *Server) serve(rwc io.ReadWriteCloser, cert *x509.Certificate, deadline time.Time, peer string) {
	identity, parts, admin, ok := s.cfg.Authorize(cert)
	if !ok {
		s.logf("%s: certificate %q not authorised", peer, cert.Subject.String())
		rwc.Close()
		return
	}
	c := newConn(s, rwc, identity, parts, admin, peer)
	if !s.track(c) {
		rwc.Close()
		return
	}
	defer s.untrack(c)
	c.run(deadline)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// openEngine makes a connection's engine. Each connection is one PKCS#11
// application, as each process that loads libgohsm.so is one: its login is
// its own (another connection's C_Login or C_Logout, even under the same
// certificate, changes nothing for it), and its sessions and session
// objects go with it. Engines on one store see each other's token objects
// as processes on one store do (hsm: SharedStore).
func (s *Server) openEngine(identity string) (*engine, error) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return nil, ErrServerClosed
	}
	raw, err := s.cfg.Open(identity)
	if err == nil {
		if err = raw.Initialize(); err != nil {
			if c, ok := raw.(io.Closer); ok {
				c.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("engine for %q: %w", identity, err)
	}
	e := &engine{identity: identity, raw: raw, be: raw}
	if s.cfg.WrapBackend != nil {
		e.be = s.cfg.WrapBackend(identity, raw)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.finishEngine(e)
		return nil, ErrServerClosed
	}
	s.engines[e] = struct{}{}
	s.mu.Unlock()
	return e, nil
}

// releaseEngine finalises a connection's engine and closes its store,
// once: the connection's end and Shutdown may both ask.
func (s *Server) releaseEngine(e *engine) error {
	s.mu.Lock()
	_, ok := s.engines[e]
	delete(s.engines, e)
	done := make(chan struct{})
	if ok {
		s.finishing[e] = done
	}
	s.mu.Unlock()
	if !ok {
		return nil
	}
	defer func() {
		s.mu.Lock()
		delete(s.finishing, e)
		s.mu.Unlock()
		close(done)
	}()
	return s.finishEngine(e)
}

func (s *Server) finishEngine(e *engine) error {
	s.finishMu.Lock()
	defer s.finishMu.Unlock()
	var errs []error
	if err := e.raw.Finalize(); err != nil {
		errs = append(errs, fmt.Errorf("finalize engine of %q: %w", e.identity, err))
	}
	if c, ok := e.raw.(io.Closer); ok {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close engine of %q: %w", e.identity, err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops accepting, sends GOAWAY to every connection, lets the calls
// in flight finish (until ctx ends), closes the connections (and so their
// sessions), and finalises every engine and closes its store. It returns
// ctx's error if it had to cut calls short.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.goAway()
	}
	var cut error
	tick := time.NewTicker(5 * time.Millisecond)
wait:
	for {
		idle := true
		for _, c := range conns {
			if c.inflight.Load() > 0 {
				idle = false
				break
			}
		}
		if idle {
			break
		}
		select {
		case <-ctx.Done():
			cut = ctx.Err()
			break wait
		case <-tick.C:
		}
	}
	tick.Stop()
	var closing sync.WaitGroup
	for _, c := range conns {
		closing.Add(1)
		go func() { defer closing.Done(); c.flushAndClose() }()
	}
	closing.Wait()
	// Connections still handshaking see closing and end by themselves.
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		if cut == nil {
			cut = ctx.Err()
		}
	}
	err := s.closeEngines()
	if cut != nil {
		return cut
	}
	return err
}

// Close stops the server at once, as a crash would look to clients: the
// listeners and every connection close without GOAWAY and calls in flight
// get no answer. Engines are finalised once their running calls return.
// (gohsm serve uses Shutdown; Close is for a second interrupt and tests.)
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	return s.closeEngines()
}

// closeEngines finalises every engine still open and closes its store.
func (s *Server) closeEngines() error {
	s.mu.Lock()
	engines := make([]*engine, 0, len(s.engines))
	for e := range s.engines {
		engines = append(engines, e)
	}
	s.mu.Unlock()
	var errs []error
	for _, e := range engines {
		if err := s.releaseEngine(e); err != nil {
			errs = append(errs, err)
		}
	}
	// Engines a connection's end took before us: wait until they are
	// closed (their own goroutine reports their errors).
	s.mu.Lock()
	var pending []chan struct{}
	for _, done := range s.finishing {
		pending = append(pending, done)
	}
	s.mu.Unlock()
	for _, done := range pending {
		<-done
	}
	return errors.Join(errs...)
}
