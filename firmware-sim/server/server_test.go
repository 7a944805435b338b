package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/testpki"
	"github.com/gohsm/gohsm/tokens"
)

const (
	soPIN   = "so-secret"
	userPIN = "user-1234"
)

func kdfCheap(c *hsm.Config) { c.KDFIterations = 10 }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newStore makes a token directory with initialised tokens labelled as given.
func newStore(t testing.TB, labels ...string) string {
	t.Helper()
	dir := t.TempDir()
	d, err := tokens.Open(dir)
	must(t, err)
	cfg := hsm.DefaultConfig(d)
	kdfCheap(&cfg)
	m, err := hsm.New(cfg)
	must(t, err)
	must(t, m.Initialize())
	for i, l := range labels {
		must(t, m.InitToken(ck.SlotID(i), []byte(soPIN), l))
		s, err := m.OpenSession(ck.SlotID(i), ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		must(t, err)
		must(t, m.Login(s, ck.CKU_SO, []byte(soPIN)))
		must(t, m.InitPIN(s, []byte(userPIN)))
		must(t, m.CloseSession(s))
	}
	must(t, m.Finalize())
	must(t, d.Close())
	return dir
}

// authorize: the common name is the identity; "admin..." names are
// administrators; parts maps names to partitions.
func authorize(parts map[string][]string) func(*x509.Certificate) (string, []string, bool, bool) {
	return func(cert *x509.Certificate) (string, []string, bool, bool) {
		cn := cert.Subject.CommonName
		p, ok := parts[cn]
		return cn, p, strings.HasPrefix(cn, "admin"), ok
	}
}

type fixture struct {
	t    *testing.T
	ca   *testpki.CA
	srv  *Server
	addr string
}

func newFixture(t *testing.T, parts map[string][]string, mod func(*Config)) *fixture {
	f := &fixture{t: t, ca: testpki.NewCA("test CA")}
	cfg := DefaultConfig()
	cfg.Authorize = authorize(parts)
	cfg.Open = StoreOpener(newStore(t, "alpha", "beta"), kdfCheap)
	cfg.TLS = testpki.ServerTLS(f.ca.Issue("localhost", true, time.Time{}), f.ca)
	cfg.Logf = t.Logf
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	must(t, err)
	f.srv = srv
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	f.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return f
}

// peer is a raw protocol client.
type peer struct {
	t   testing.TB
	rwc io.ReadWriteCloser
	br  *bufio.Reader
	id  uint64
	w   wire.Welcome
	// early holds answers read while looking for another one.
	early map[uint64]wire.Frame
}

func (f *fixture) dialTLS(cn string) (*peer, error) {
	cert := f.ca.Issue(cn, false, time.Time{})
	tc, err := tls.Dial("tcp", f.addr, testpki.ClientTLS(&cert, f.ca))
	if err != nil {
		return nil, err
	}
	p := &peer{t: f.t, rwc: tc, br: bufio.NewReader(tc)}
	f.t.Cleanup(func() { tc.Close() })
	return p, p.hello()
}

func (f *fixture) peer(cn string) *peer {
	p, err := f.dialTLS(cn)
	must(f.t, err)
	return p
}

// pipePeer talks to the server through net.Pipe.
func (f *fixture) pipePeer(cn string) *peer {
	c, s := net.Pipe()
	cert := f.ca.Issue(cn, false, time.Time{})
	go f.srv.ServeConn(s, cert.Leaf)
	p := &peer{t: f.t, rwc: c, br: bufio.NewReader(c)}
	f.t.Cleanup(func() { c.Close() })
	must(f.t, p.hello())
	return p
}

func (p *peer) hello() error {
	h := wire.AppendHello(nil, wire.Hello{Versions: []uint16{wire.Version}, MaxFrame: 1 << 24, Name: "raw peer"})
	if _, err := p.rwc.Write(wire.AppendFrame(nil, wire.FrameHello, 0, 0, h)); err != nil {
		return err
	}
	f, err := p.read()
	if err != nil {
		return err
	}
	if f.Type != wire.FrameWelcome {
		return errors.New("no WELCOME")
	}
	p.w, err = wire.ParseWelcome(f.Payload)
	return err
}

func (p *peer) read() (wire.Frame, error) {
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(p.br, hb[:]); err != nil {
		return wire.Frame{}, err
	}
	h, err := wire.ParseHeader(hb[:], 1<<24)
	if err != nil {
		return wire.Frame{}, err
	}
	b := make([]byte, h.Len)
	_, err = io.ReadFull(p.br, b)
	return wire.Frame{Header: h, Payload: b}, err
}

// send sends a call and returns its id.
func (p *peer) send(name string, args ...any) uint64 {
	p.t.Helper()
	c := wire.MustCall(name)
	b, err := c.AppendCall(nil, args)
	must(p.t, err)
	p.id++
	if _, err := p.rwc.Write(wire.AppendFrame(nil, wire.FrameCall, 0, p.id, b)); err != nil {
		p.t.Fatal(err)
	}
	return p.id
}

// answer reads RESULT frames (unpacking batches) until the one for id.
func (p *peer) answer(name string, id uint64) (wire.Result, byte) {
	p.t.Helper()
	if p.early == nil {
		p.early = map[uint64]wire.Frame{}
	}
	for {
		if x, ok := p.early[id]; ok {
			delete(p.early, id)
			r, err := wire.MustCall(name).DecodeResult(x.Payload, x.Flags)
			must(p.t, err)
			return r, x.Flags
		}
		f, err := p.read()
		must(p.t, err)
		frames := []wire.Frame{f}
		if f.Type == wire.FrameBatch {
			frames, err = wire.SplitBatch(f.Payload, 1<<24, wire.FrameResult)
			must(p.t, err)
		}
		for _, x := range frames {
			if x.Type == wire.FrameResult {
				p.early[x.ID] = x
			}
		}
	}
}

func (p *peer) call(name string, args ...any) wire.Result {
	p.t.Helper()
	r, _ := p.answer(name, p.send(name, args...))
	return r
}

func wantRV(t testing.TB, got, want ck.RV) {
	t.Helper()
	if got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// A peer that does not present a certificate from the configured CA, or
// presents an expired one, gets the TLS alert and not one byte of the
// protocol; a good client keeps working beside it.
func TestTLSRefusals(t *testing.T) {
	f := newFixture(t, map[string][]string{"app": {"alpha"}, "stranger": {"alpha"}}, nil)
	good := f.peer("app")
	other := testpki.NewCA("another CA")
	cases := map[string]*tls.Config{
		"no certificate": testpki.ClientTLS(nil, f.ca),
		"another CA": func() *tls.Config {
			// Presented whatever the server's CertificateRequest asks for.
			c := other.Issue("app", false, time.Time{})
			cfg := testpki.ClientTLS(nil, f.ca)
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
			return cfg
		}(),
		"expired": func() *tls.Config {
			c := f.ca.Issue("app", false, time.Now().Add(-time.Minute))
			return testpki.ClientTLS(&c, f.ca)
		}(),
		"TLS 1.2": func() *tls.Config {
			c := f.ca.Issue("app", false, time.Time{})
			cfg := testpki.ClientTLS(&c, f.ca)
			cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			return cfg
		}(),
		"not authorised": func() *tls.Config {
			c := f.ca.Issue("nobody", false, time.Time{})
			return testpki.ClientTLS(&c, f.ca)
		}(),
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			tc, err := tls.Dial("tcp", f.addr, cfg)
			if err == nil {
				// TLS 1.3: the client finishes before the server checks its
				// certificate; the refusal arrives on the first read.
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				tc.Write(wire.AppendFrame(nil, wire.FrameHello, 0, 0,
					wire.AppendHello(nil, wire.Hello{Versions: []uint16{1}, MaxFrame: 1 << 20})))
				buf := make([]byte, 64)
				n, rerr := tc.Read(buf)
				tc.Close()
				if n != 0 || rerr == nil {
					t.Fatalf("refused peer read %d bytes (%v)", n, rerr)
				}
				t.Logf("refused: %v", rerr)
			} else {
				t.Logf("refused: %v", err)
			}
		})
	}
	r := good.call("GetSlotList", true)
	wantRV(t, r.RV, ck.CKR_OK)
}

// A raw TCP peer sending garbage, one dribbling its TLS handshake, one
// dribbling a frame, and one announcing an oversized frame are all cut off,
// and a client working beside them is not disturbed.
func TestHostilePeers(t *testing.T) {
	f := newFixture(t, map[string][]string{"app": {"alpha"}}, func(c *Config) {
		c.HandshakeTimeout = 500 * time.Millisecond
		c.FrameTimeout = 500 * time.Millisecond
		c.MaxFrame = wire.MinMaxFrame
	})
	good := f.peer("app")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var goodCalls int
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r := good.call("GetTokenInfo", ck.SlotID(0))
			if r.RV != ck.CKR_OK {
				t.Errorf("good client: %v", r.RV)
				return
			}
			goodCalls++
		}
	}()

	// readsNothing waits for the server to close nc, failing if it sends
	// anything or keeps the connection past limit.
	readsNothing := func(name string, nc net.Conn, limit time.Duration) {
		t.Helper()
		start := time.Now()
		nc.SetReadDeadline(time.Now().Add(limit))
		n, err := io.Copy(io.Discard, nc)
		if n != 0 {
			t.Errorf("%s: server sent %d bytes", name, n)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: still connected after %v", name, limit)
		}
		t.Logf("%s: cut off after %v", name, time.Since(start).Round(time.Millisecond))
	}

	// Garbage instead of a TLS ClientHello.
	g, err := net.Dial("tcp", f.addr)
	must(t, err)
	g.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat("\x00\xff", 500)))
	readsNothing("garbage", g, 3*time.Second)

	// A handshake dribbled one byte at a time.
	s, err := net.Dial("tcp", f.addr)
	must(t, err)
	go func() {
		for _, b := range []byte{0x16, 0x03, 0x01, 0x00, 0xc0, 0x01} {
			if _, err := s.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	readsNothing("slow handshake", s, 3*time.Second)

	// A frame dribbled after a good handshake: cut off by FrameTimeout.
	slow := f.peer("app")
	go func() {
		frame := wire.AppendFrame(nil, wire.FrameCall, 0, 1, []byte{0, 3})
		for _, b := range frame {
			if _, err := slow.rwc.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	start := time.Now()
	for {
		fr, err := slow.read()
		if err != nil {
			break
		}
		if fr.Type != wire.FrameGoAway {
			t.Errorf("slow frame: got %v", fr.Type)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow frame: connection lasted %v", d)
	}

	// An oversized frame: GOAWAY, and the payload is never read.
	big := f.peer("app")
	big.rwc.Write(wire.AppendHeader(nil, wire.FrameCall, 0, 1, wire.MinMaxFrame+1))
	fr, err := big.read()
	if err != nil || fr.Type != wire.FrameGoAway {
		t.Fatalf("oversized frame: %v %v", fr.Type, err)
	}
	g2, _ := wire.ParseGoAway(fr.Payload)
	if g2.Reason != wire.GoAwayFrameTooLarge {
		t.Errorf("GOAWAY reason %d", g2.Reason)
	}
	if _, err := big.read(); err == nil {
		t.Errorf("connection open after an oversized frame")
	}

	// A protocol violation after the handshake (an unknown frame type).
	bad := f.peer("app")
	hb := wire.AppendHeader(nil, wire.FrameCall, 0, 1, 0)
	hb[4] = 0x7f
	bad.rwc.Write(hb)
	if _, err := bad.read(); err == nil {
		if _, err := bad.read(); err == nil {
			t.Errorf("connection open after a bad frame type")
		}
	}
	close(stop)
	wg.Wait()
	if goodCalls == 0 {
		t.Fatal("the good client made no calls")
	}
	t.Logf("good client: %d calls meanwhile", goodCalls)
}

// A client sees its partitions only; the free slot and C_InitToken are for
// administrators; another identity's login is not this one's.
func TestPartitions(t *testing.T) {
	f := newFixture(t, map[string][]string{"a": {"alpha"}, "b": {"beta"}, "admin": {"*"}, "c": {"alpha"}}, nil)
	a, b, admin := f.peer("a"), f.peer("b"), f.peer("admin")
	slots := func(p *peer) []ck.SlotID { return p.call("GetSlotList", false).Values[0].([]ck.SlotID) }
	if got := slots(a); len(got) != 1 || got[0] != 0 {
		t.Errorf("a sees %v", got)
	}
	if got := slots(b); len(got) != 1 || got[0] != 1 {
		t.Errorf("b sees %v", got)
	}
	if got := slots(admin); len(got) != 3 {
		t.Errorf("admin sees %v", got)
	}
	wantRV(t, a.call("GetTokenInfo", ck.SlotID(1)).RV, ck.CKR_SLOT_ID_INVALID)
	wantRV(t, a.call("OpenSession", ck.SlotID(1), ck.CKF_SERIAL_SESSION).RV, ck.CKR_SLOT_ID_INVALID)
	wantRV(t, a.call("GetMechanismList", ck.SlotID(2)).RV, ck.CKR_SLOT_ID_INVALID)
	wantRV(t, a.call("InitToken", ck.SlotID(2), []byte(soPIN), "gamma").RV, ck.CKR_SLOT_ID_INVALID)
	wantRV(t, a.call("InitToken", ck.SlotID(0), []byte(soPIN), "alpha").RV, ck.CKR_TOKEN_WRITE_PROTECTED)
	wantRV(t, a.call("CloseAllSessions", ck.SlotID(1)).RV, ck.CKR_SLOT_ID_INVALID)
	wantRV(t, admin.call("GetTokenInfo", ck.SlotID(2)).RV, ck.CKR_OK)

	// Login is per connection: a logged in does not log c in.
	sa := a.call("OpenSession", ck.SlotID(0), ck.CKF_SERIAL_SESSION).Values[0].(ck.SessionHandle)
	wantRV(t, a.call("Login", sa, ck.CKU_USER, []byte(userPIN)).RV, ck.CKR_OK)
	c := f.peer("c")
	sc := c.call("OpenSession", ck.SlotID(0), ck.CKF_SERIAL_SESSION).Values[0].(ck.SessionHandle)
	if st := c.call("GetSessionInfo", sc).Values[0].(ck.SessionInfo).State; st != ck.CKS_RO_PUBLIC_SESSION {
		t.Errorf("c's session is in state %v: another identity's login leaked", st)
	}
}

// Sessions belong to the connection that opened them: another connection,
// even of the same identity, cannot use them; C_CloseAllSessions closes only
// the caller's; a dropped connection closes its own.
func TestSessionOwnership(t *testing.T) {
	f := newFixture(t, map[string][]string{"a": {"alpha"}}, nil)
	one, two := f.peer("a"), f.pipePeer("a")
	open := func(p *peer) ck.SessionHandle {
		r := p.call("OpenSession", ck.SlotID(0), ck.CKF_SERIAL_SESSION)
		wantRV(t, r.RV, ck.CKR_OK)
		return r.Values[0].(ck.SessionHandle)
	}
	state := func(p *peer, s ck.SessionHandle) ck.State {
		t.Helper()
		r := p.call("GetSessionInfo", s)
		wantRV(t, r.RV, ck.CKR_OK)
		return r.Values[0].(ck.SessionInfo).State
	}
	// Each connection is an application of its own: its handles are its
	// own, and a handle it did not open does not exist for it.
	s1, s1b := open(one), open(one)
	s2 := open(two)
	if s2 != s1 && s2 != s1b {
		t.Logf("handles %d, %d and %d", s1, s1b, s2)
	}
	other := s1b
	if other == s2 {
		other = s1
	}
	wantRV(t, two.call("GetSessionInfo", other).RV, ck.CKR_SESSION_HANDLE_INVALID)
	wantRV(t, two.call("CloseSession", other).RV, ck.CKR_SESSION_HANDLE_INVALID)
	wantRV(t, two.call("Login", other, ck.CKU_USER, []byte(userPIN)).RV, ck.CKR_SESSION_HANDLE_INVALID)

	// Logged in through one: two, with the same certificate, is not (a
	// login is an application's, and each connection is one).
	wantRV(t, one.call("Login", s1, ck.CKU_USER, []byte(userPIN)).RV, ck.CKR_OK)
	if st := state(two, s2); st != ck.CKS_RO_PUBLIC_SESSION {
		t.Fatalf("two's session is %v after one logged in", st)
	}
	// two's CloseAllSessions and C_Finalize leave one's sessions alone.
	wantRV(t, two.call("CloseAllSessions", ck.SlotID(0)).RV, ck.CKR_OK)
	wantRV(t, two.call("GetSessionInfo", s2).RV, ck.CKR_SESSION_HANDLE_INVALID)
	if st := state(one, s1); st != ck.CKS_RO_USER_FUNCTIONS {
		t.Errorf("one's session state %v after two's CloseAllSessions", st)
	}
	s2 = open(two)
	wantRV(t, two.call("Finalize").RV, ck.CKR_OK)
	state(one, s1)
	wantRV(t, two.call("GetSessionInfo", s2).RV, ck.CKR_SESSION_HANDLE_INVALID)
	// two logs out nothing of one's: its own C_Logout is its own.
	s2 = open(two)
	wantRV(t, two.call("Logout", s2).RV, ck.CKR_USER_NOT_LOGGED_IN)
	if st := state(one, s1); st != ck.CKS_RO_USER_FUNCTIONS {
		t.Errorf("one's session state %v after two's C_Logout", st)
	}
	// Dropping one ends its application: its engine is finalised.
	one.rwc.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		f.srv.mu.Lock()
		n := len(f.srv.engines)
		f.srv.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d engines after one's drop, want two's alone", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	state(two, s2)
}

// A connection's sessions are bounded.
func TestSessionLimit(t *testing.T) {
	f := newFixture(t, map[string][]string{"a": {"alpha"}}, func(c *Config) { c.MaxSessionsPerConn = 3 })
	p := f.pipePeer("a")
	for range 3 {
		wantRV(t, p.call("OpenSession", ck.SlotID(0), ck.CKF_SERIAL_SESSION).RV, ck.CKR_OK)
	}
	wantRV(t, p.call("OpenSession", ck.SlotID(0), ck.CKF_SERIAL_SESSION).RV, ck.CKR_SESSION_COUNT)
	wantRV(t, f.pipePeer("a").call("OpenSession", ck.SlotID(0), ck.CKF_SERIAL_SESSION).RV, ck.CKR_OK)
}

// slowBackend holds C_GetTokenInfo until released.
type slowBackend struct {
	hsm.Backend
	gate chan struct{}
}

func (s *slowBackend) GetSlotInfo(slot ck.SlotID) (ck.SlotInfo, error) {
	<-s.gate
	return s.Backend.GetSlotInfo(slot)
}

// When the appliance is saturated a call is answered busy at once (not
// queued): CKR_DEVICE_MEMORY with the "not run" flag. A call past its
// deadline is answered too.
func TestBusyAndDeadline(t *testing.T) {
	gate := make(chan struct{})
	f := newFixture(t, map[string][]string{"a": {"alpha"}}, func(c *Config) {
		c.MaxCallsTotal = 2
		c.MaxCallsPerConn = 2
		c.CallTimeout = 300 * time.Millisecond
		c.WrapBackend = func(_ string, be hsm.Backend) hsm.Backend { return &slowBackend{Backend: be, gate: gate} }
	})
	p := f.peer("a")
	if p.w.MaxCalls != 2 {
		t.Fatalf("WELCOME announces %d calls", p.w.MaxCalls)
	}
	id1 := p.send("GetSlotInfo", ck.SlotID(0))
	id2 := p.send("GetSlotInfo", ck.SlotID(0))
	start := time.Now()
	r, flags := p.answer("GetSlotInfo", p.send("GetSlotInfo", ck.SlotID(0)))
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("busy answer took %v", d)
	}
	if flags&wire.FlagNotRun == 0 || r.RV != ck.CKR_DEVICE_MEMORY {
		t.Fatalf("third call: flags %#x rv %v, want not-run CKR_DEVICE_MEMORY", flags, r.RV)
	}
	// Another connection is busy too: the total is reached.
	q := f.pipePeer("a")
	r, flags = q.answer("GetSlotList", q.send("GetSlotList", true))
	if flags&wire.FlagNotRun == 0 || r.RV != ck.CKR_DEVICE_MEMORY {
		t.Fatalf("other connection: flags %#x rv %v", flags, r.RV)
	}
	// The held calls pass their deadline: outcome unknown, CKR_DEVICE_ERROR.
	r, flags = p.answer("GetSlotInfo", id1)
	if flags&wire.FlagNotRun != 0 || r.RV != ck.CKR_DEVICE_ERROR {
		t.Fatalf("deadline: flags %#x rv %v", flags, r.RV)
	}
	p.answer("GetSlotInfo", id2)
	close(gate)
	// Capacity comes back once the engine returns.
	deadline := time.Now().Add(2 * time.Second)
	for {
		r := q.call("GetSlotList", true)
		if r.RV == ck.CKR_OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %v", r.RV)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Arguments the engine must not see are refused at decoding: an int the
// frame could never carry back, a malformed parameter, an unknown call.
func TestDecodingRefusals(t *testing.T) {
	f := newFixture(t, map[string][]string{"a": {"alpha"}}, nil)
	p := f.pipePeer("a")
	s := p.call("OpenSession", ck.SlotID(0), ck.CKF_SERIAL_SESSION).Values[0].(ck.SessionHandle)
	wantRV(t, p.call("GenerateRandom", s, 1<<40).RV, ck.CKR_ARGUMENTS_BAD)
	// A GCM parameter given to CKM_RSA_PKCS_OAEP.
	wantRV(t, p.call("EncryptInit", s, ck.Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Param: &ck.GCMParams{}}, ck.ObjectHandle(1)).RV,
		ck.CKR_MECHANISM_PARAM_INVALID)
	// An unknown call id.
	p.id++
	p.rwc.Write(wire.AppendFrame(nil, wire.FrameCall, 0, p.id, []byte{0xff, 0xfe}))
	r, _ := p.answer("GetInfo", p.id)
	wantRV(t, r.RV, ck.CKR_FUNCTION_NOT_SUPPORTED)
	// C_Initialize does not reach the shared engine.
	wantRV(t, p.call("Initialize").RV, ck.CKR_OK)
	wantRV(t, p.call("GetSessionInfo", s).RV, ck.CKR_OK)
}

// WrapBackend sees every connection's engine once; Shutdown finalises the
// engines and lets a call in flight finish.
func TestWrapAndShutdown(t *testing.T) {
	var mu sync.Mutex
	wrapped := map[string]int{}
	gate := make(chan struct{})
	f := newFixture(t, map[string][]string{"a": {"alpha"}, "b": {"beta"}}, func(c *Config) {
		c.WrapBackend = func(id string, be hsm.Backend) hsm.Backend {
			mu.Lock()
			wrapped[id]++
			mu.Unlock()
			return &slowBackend{Backend: be, gate: gate}
		}
	})
	a1, a2, b := f.peer("a"), f.pipePeer("a"), f.peer("b")
	for _, p := range []*peer{a1, a2, b} {
		wantRV(t, p.call("GetSlotList", true).RV, ck.CKR_OK)
	}
	// One engine per connection: a's two connections are two.
	if wrapped["a"] != 2 || wrapped["b"] != 1 {
		t.Fatalf("wrapped %v", wrapped)
	}
	id := a1.send("GetSlotInfo", ck.SlotID(0))
	time.Sleep(50 * time.Millisecond)
	done := make(chan error)
	go func() { done <- f.srv.Shutdown(context.Background()) }()
	// GOAWAY first; a call sent after it is not run.
	fr, err := a1.read()
	if err != nil || fr.Type != wire.FrameGoAway {
		t.Fatalf("want GOAWAY, got %v %v", fr.Type, err)
	}
	r, flags := a1.answer("GetSessionInfo", a1.send("GetSessionInfo", ck.SessionHandle(1)))
	if flags&wire.FlagNotRun == 0 {
		t.Errorf("call after GOAWAY: flags %#x rv %v", flags, r.RV)
	}
	close(gate)
	r, _ = a1.answer("GetSlotInfo", id)
	wantRV(t, r.RV, ck.CKR_OK)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// slowSessionBackend holds C_GetSessionInfo until gate is closed.
type slowSessionBackend struct {
	hsm.Backend
	gate chan struct{}
}

func (s *slowSessionBackend) GetSessionInfo(h ck.SessionHandle) (ck.SessionInfo, error) {
	<-s.gate
	return s.Backend.GetSessionInfo(h)
}

// Calls on one session run in turn: when the running one passes its
// deadline it is answered CKR_DEVICE_ERROR (its outcome is unknown), and
// the one queued behind it busy with the "not run" flag (it did nothing);
// neither is answered twice when the engine returns.
func TestDeadlineQueuedCall(t *testing.T) {
	gate := make(chan struct{})
	f := newFixture(t, map[string][]string{"a": {"alpha"}}, func(c *Config) {
		c.CallTimeout = 300 * time.Millisecond
		c.WrapBackend = func(_ string, be hsm.Backend) hsm.Backend { return &slowSessionBackend{Backend: be, gate: gate} }
	})
	p := f.pipePeer("a")
	s := p.call("OpenSession", ck.SlotID(0), ck.CKF_SERIAL_SESSION).Values[0].(ck.SessionHandle)
	running := p.send("GetSessionInfo", s)
	queued := p.send("GetSessionInfo", s)
	r, flags := p.answer("GetSessionInfo", running)
	if flags&wire.FlagNotRun != 0 || r.RV != ck.CKR_DEVICE_ERROR {
		t.Fatalf("running call: flags %#x rv %v, want CKR_DEVICE_ERROR", flags, r.RV)
	}
	r, flags = p.answer("GetSessionInfo", queued)
	if flags&wire.FlagNotRun == 0 || r.RV != ck.CKR_DEVICE_MEMORY {
		t.Fatalf("queued call: flags %#x rv %v, want not-run CKR_DEVICE_MEMORY", flags, r.RV)
	}
	close(gate)
	// The session works again. The held call's own answer, due before
	// this one (the session runs its calls in order), was dropped.
	r = p.call("GetSessionInfo", s)
	wantRV(t, r.RV, ck.CKR_OK)
	if len(p.early) != 0 {
		t.Fatalf("%d answers to calls already answered", len(p.early))
	}
}

// seedGate holds C_SeedRandom until released: calls with large payloads
// that stay in flight.
type seedGate struct {
	hsm.Backend
	gate chan struct{}
}

func (s *seedGate) SeedRandom(h ck.SessionHandle, seed []byte) error {
	<-s.gate
	return s.Backend.SeedRandom(h, seed)
}

// Payload bytes in flight are bounded per connection and in all: a call
// that would pass either budget is answered busy at once, however few calls
// are in flight, while small calls still pass; the budget comes back when
// the calls are answered.
func TestBusyOnBytes(t *testing.T) {
	gate := make(chan struct{})
	f := newFixture(t, map[string][]string{"a": {"alpha"}}, func(c *Config) {
		c.MaxFrame = 64 << 10
		c.MaxBytesPerConn = 64 << 10
		c.MaxBytesTotal = 96 << 10
		c.WrapBackend = func(_ string, be hsm.Backend) hsm.Backend { return &seedGate{Backend: be, gate: gate} }
	})
	seed := make([]byte, 40<<10)
	busy := func(p *peer, id uint64, what string) {
		t.Helper()
		r, flags := p.answer("SeedRandom", id)
		if flags&wire.FlagNotRun == 0 || r.RV != ck.CKR_DEVICE_MEMORY {
			t.Fatalf("%s: flags %#x rv %v, want not-run CKR_DEVICE_MEMORY", what, flags, r.RV)
		}
	}
	p, q, r := f.pipePeer("a"), f.pipePeer("a"), f.pipePeer("a")
	ses := func(x *peer) ck.SessionHandle {
		return x.call("OpenSession", ck.SlotID(0), ck.CKF_SERIAL_SESSION).Values[0].(ck.SessionHandle)
	}
	sp, sq, sr := ses(p), ses(q), ses(r)
	type heldCall struct {
		p  *peer
		id uint64
	}
	held := []heldCall{{p, p.send("SeedRandom", sp, seed)}}
	busy(p, p.send("SeedRandom", sp, seed), "a second 40 KiB call on a 64 KiB connection")
	wantRV(t, p.call("GetSlotList", true).RV, ck.CKR_OK) // a small one passes
	held = append(held, heldCall{q, q.send("SeedRandom", sq, seed)})
	// q's reader admits its calls in order: once this answer is back, the
	// 40 KiB before it is counted (connections are read concurrently).
	wantRV(t, q.call("GetSlotList", true).RV, ck.CKR_OK)
	busy(r, r.send("SeedRandom", sr, seed), "a third 40 KiB call on a 96 KiB appliance")
	wantRV(t, r.call("GetSlotList", true).RV, ck.CKR_OK)
	close(gate)
	for _, h := range held {
		if res, flags := h.p.answer("SeedRandom", h.id); flags&wire.FlagNotRun != 0 || res.RV == ck.CKR_DEVICE_MEMORY {
			t.Fatalf("held call: flags %#x rv %v", flags, res.RV)
		}
	}
	if res, flags := r.answer("SeedRandom", r.send("SeedRandom", sr, seed)); flags&wire.FlagNotRun != 0 {
		t.Fatalf("after release: flags %#x rv %v", flags, res.RV)
	}
}
