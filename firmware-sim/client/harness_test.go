package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/testpki"
	"github.com/gohsm/gohsm/tokens"
)

const (
	soPIN   = "so-secret"
	userPIN = "user-1234"
)

// kdfCheap makes engines with a cheap PIN KDF (tests only).
func kdfCheap(c *hsm.Config) { c.KDFIterations = 10 }

// newStore makes a token directory with initialised tokens, labelled as
// given, each with soPIN and userPIN.
func newStore(t testing.TB, labels ...string) string {
	t.Helper()
	dir := t.TempDir()
	d, err := tokens.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := hsm.DefaultConfig(d)
	kdfCheap(&cfg)
	m, err := hsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.Initialize())
	for i, l := range labels {
		slot := ck.SlotID(i)
		must(t, m.InitToken(slot, []byte(soPIN), l))
		s, err := m.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		must(t, err)
		must(t, m.Login(s, ck.CKU_SO, []byte(soPIN)))
		must(t, m.InitPIN(s, []byte(userPIN)))
		must(t, m.CloseSession(s))
	}
	must(t, m.Finalize())
	must(t, d.Close())
	return dir
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantRV(t testing.TB, err error, want ck.RV) {
	t.Helper()
	if got := hsm.ToRV(err); got != want {
		t.Fatalf("got %v (%v), want %v", got, err, want)
	}
}

// identities maps a client certificate's common name to its partitions;
// names starting with "admin" are administrators.
type identities map[string][]string

func (ids identities) authorize(cert *x509.Certificate) (string, []string, bool, bool) {
	parts, ok := ids[cert.Subject.CommonName]
	if !ok {
		return "", nil, false, false
	}
	return cert.Subject.CommonName, parts, len(cert.Subject.CommonName) >= 5 && cert.Subject.CommonName[:5] == "admin", true
}

// appliance is a server on a store, reachable over pipes and, once
// listen is called, over TLS on loopback.
type appliance struct {
	t    testing.TB
	dir  string
	ids  identities
	ca   *testpki.CA
	srv  *server.Server
	addr string
	mod  func(*server.Config)
	mu   sync.Mutex
}

func newAppliance(t testing.TB, dir string, ids identities, mod func(*server.Config)) *appliance {
	a := &appliance{t: t, dir: dir, ids: ids, ca: testpki.NewCA("test CA"), mod: mod}
	a.start()
	t.Cleanup(func() { a.stop() })
	return a
}

func (a *appliance) config() server.Config {
	cfg := server.DefaultConfig()
	cfg.Authorize = a.ids.authorize
	cfg.Open = server.StoreOpener(a.dir, kdfCheap)
	cfg.TLS = testpki.ServerTLS(a.ca.Issue("localhost", true, time.Time{}), a.ca)
	if os.Getenv("GOHSM_TEST_SERVER_LOG") != "" {
		cfg.Logf = a.t.Logf
	}
	if a.mod != nil {
		a.mod(&cfg)
	}
	return cfg
}

func (a *appliance) start() {
	srv, err := server.New(a.config())
	if err != nil {
		a.t.Fatal(err)
	}
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
}

func (a *appliance) server() *server.Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.srv
}

// listen serves TLS on loopback (on the previous address after a restart).
func (a *appliance) listen() string {
	addr := a.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	var err error
	for range 100 {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		a.t.Fatal(err)
	}
	a.addr = l.Addr().String()
	srv := a.server()
	go srv.Serve(l)
	return a.addr
}

func (a *appliance) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.server().Shutdown(ctx)
}

// restart stops the server and starts a new one on the same store (and
// address, if it listened).
func (a *appliance) restart() {
	a.stop()
	a.start()
	if a.addr != "" {
		a.listen()
	}
}

// pipeDialer connects through net.Pipe as the client named cn.
func (a *appliance) pipeDialer(cn string) func(context.Context) (io.ReadWriteCloser, error) {
	cert := a.ca.Issue(cn, false, time.Time{})
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		c, s := net.Pipe()
		srv := a.server()
		go srv.ServeConn(s, cert.Leaf)
		return c, nil
	}
}

// testConfig is the client configuration the tests use.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Timeout = 2 * time.Second
	cfg.BackoffMin = 10 * time.Millisecond
	cfg.BackoffMax = 100 * time.Millisecond
	cfg.Name = "client test"
	return cfg
}

// pipeClient is an initialised client over pipes.
func (a *appliance) pipeClient(cn string, mod ...func(*Config)) *Client {
	a.t.Helper()
	cfg := testConfig()
	for _, m := range mod {
		m(&cfg)
	}
	c, err := NewWithDialer(cfg, a.pipeDialer(cn))
	if err != nil {
		a.t.Fatal(err)
	}
	must(a.t, c.Initialize())
	a.t.Cleanup(func() { c.Finalize() })
	return c
}

// tlsClient is an initialised client over TLS on loopback.
func (a *appliance) tlsClient(cn string, mod ...func(*Config)) *Client {
	a.t.Helper()
	cert := a.ca.Issue(cn, false, time.Time{})
	cfg := testConfig()
	cfg.Address = a.addr
	cfg.TLS = testpki.ClientTLS(&cert, a.ca)
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	must(a.t, c.Initialize())
	a.t.Cleanup(func() { c.Finalize() })
	return c
}

// userSession opens an R/W session on slot and logs the user in.
func userSession(t testing.TB, be hsm.Backend, slot ck.SlotID) ck.SessionHandle {
	t.Helper()
	s, err := be.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	if err := be.Login(s, ck.CKU_USER, []byte(userPIN)); err != nil && !errors.Is(err, ck.CKR_USER_ALREADY_LOGGED_IN) {
		t.Fatal(err)
	}
	return s
}

var _ = tls.VersionTLS13
