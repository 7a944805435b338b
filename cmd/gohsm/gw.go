package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/auth"
	"github.com/gohsm/gohsm/gateway/kv"
	"github.com/gohsm/gohsm/gateway/pool"
	"github.com/gohsm/gohsm/gateway/quota"
	gwserver "github.com/gohsm/gohsm/gateway/server"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/gateway/transit"
	"github.com/gohsm/gohsm/hsm"
)

// The crypto gateway as gohsm serve runs it (docs/gateway.md): the HTTP
// server over a pool of tokens, its state (tokens, policies, mounts, key
// rings) on the first token, an audit log beside the store.

// gatewaySpec is what startGateway needs.
type gatewaySpec struct {
	// Open returns a new engine over the store; the gateway Finalizes and
	// Closes it at stop.
	Open  func() (hsm.Backend, error)
	Label string // the token the gateway uses
	PIN   string
	// OpenTokens, if set, replaces Open, Label and PIN: the gateway's
	// tokens, logged in; the first holds its state, and several make a
	// pool whose keys are cloned between them (gateway_remote.go).
	OpenTokens func() ([]token.Token, error)
	// Listener is where it serves: plain HTTP, or HTTPS with TLS (whose
	// ClientCAs, if set, admit client certificates mapped by Certs).
	Listener net.Listener
	TLS      *tls.Config
	Certs    []auth.CertIdentity
	// AuditLog and AuditKeyFile: the gateway's audit log and its HMAC key
	// (32 random bytes, made 0600 if the file is missing).
	AuditLog, AuditKeyFile string
	AuditSync              audit.SyncMode
	Quota                  *quota.Limiter // nil: no rate limits
	// TokenFile, if set, receives a new root token (0600); the previous
	// one in it is revoked first.
	TokenFile string
	Logger    *log.Logger
}

// gatewayRun is a running gateway.
type gatewayRun struct {
	srv    *gwserver.Server
	ln     net.Listener
	pool   *pool.Pool
	audit  *audit.Log
	root   string
	served chan error
	quit   chan struct{}
}

// gatewayGCPercent is the garbage collector's target when the gateway
// runs and GOGC is not set: a request's garbage is short-lived and the
// live heap small (tens of MB), so letting the heap grow to 5x the live
// heap before a cycle instead of 2x cuts the collector's CPU per request
// by most of it, for a few tens of MB.
const gatewayGCPercent = 400

func startGateway(sp gatewaySpec) (_ *gatewayRun, err error) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gatewayGCPercent)
	}
	var cleanup []func() error
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	if sp.OpenTokens == nil {
		sp.OpenTokens = sp.openEngineToken
	}
	toks, err := sp.OpenTokens()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	closeAll := func() {
		for _, t := range toks {
			t.Close()
		}
	}
	store, err := kv.OnToken(toks[0], "gateway")
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("gateway: state store on token %q: %w", toks[0].Label(), err)
	}
	p, err := pool.New(toks, pool.Config{}) // owns toks from here
	if err != nil {
		closeAll()
		return nil, err
	}
	cleanup = append(cleanup, p.Close)
	key, err := auditKey(sp.AuditKeyFile)
	if err != nil {
		return nil, err
	}
	al, err := audit.OpenWith(sp.AuditLog, key, audit.Options{Sync: sp.AuditSync})
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cleanup = append(cleanup, al.Close)
	tokens, pols := gwserver.Stores(store, sp.Certs)
	srv, err := gwserver.New(gwserver.Config{
		Tokens: tokens, Policies: pols, KV: store,
		NewEngine: gwserver.TransitEngines(p, store, transit.Config{Cloneable: len(toks) > 1}),
		Audit:     al,
		TLS:       sp.TLS,
		Quota:     sp.Quota,
		Version:   "gohsm " + version,
		Logf:      func(f string, a ...any) { sp.Logger.Printf("gateway: "+f, a...) },
	})
	if err != nil {
		return nil, err
	}
	if err := srv.EnsureMount("transit"); err != nil {
		return nil, fmt.Errorf("gateway: mounting transit/: %w", err)
	}
	root := ""
	if sp.TokenFile != "" {
		if root, err = rootToken(tokens, sp.TokenFile); err != nil {
			return nil, err
		}
	}
	g := &gatewayRun{srv: srv, ln: sp.Listener, pool: p, audit: al, root: root, served: make(chan error, 1), quit: make(chan struct{})}
	go func() { g.served <- srv.Serve(sp.Listener) }()
	go g.poolHealth()
	go g.autoRotate(sp.Logger)
	return g, nil
}

// openEngineToken is the token labelled Label on a new engine from Open.
func (sp *gatewaySpec) openEngineToken() ([]token.Token, error) {
	be, err := sp.Open()
	if err != nil {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	if err := be.Initialize(); err != nil {
		if c, ok := be.(io.Closer); ok {
			c.Close()
		}
		return nil, fmt.Errorf("initialising the engine: %w", err)
	}
	release := func() error {
		be.Finalize()
		if c, ok := be.(io.Closer); ok {
			return c.Close()
		}
		return nil
	}
	tok, err := token.FromBackend(be, sp.Label, []byte(sp.PIN), release)
	if err != nil {
		release()
		return nil, fmt.Errorf("token %q: %w", sp.Label, err)
	}
	return []token.Token{tok}, nil
}

// autoRotate rotates the keys whose auto_rotate_period has passed, once a
// minute (Vault's interval).
func (g *gatewayRun) autoRotate(logger *log.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-g.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rotated, err := g.srv.AutoRotate(ctx)
		cancel()
		for _, k := range rotated {
			logger.Printf("gateway: auto-rotated %s", k)
		}
		if err != nil {
			logger.Printf("gateway: auto-rotation: %v", err)
		}
	}
}

// poolHealth copies the pool's token states to the metrics every second.
func (g *gatewayRun) poolHealth() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, st := range g.pool.Status() {
			g.srv.Metrics().SetPoolHealth(st.Label, st.InService)
		}
		select {
		case <-g.quit:
			return
		case <-t.C:
		}
	}
}

// stop shuts the server down gracefully, then the audit log and the pool.
func (g *gatewayRun) stop(ctx context.Context) error {
	close(g.quit)
	err := g.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil // in-flight requests were cut short: what the deadline is for
	}
	return errors.Join(err, g.audit.Close(), g.pool.Close())
}

// auditKey reads the audit HMAC key, making it (32 random bytes, 0600)
// if the file does not exist.
func auditKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = make([]byte, 32)
		rand.Read(b)
		if err := writeFileAtomic(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("gateway audit key: %w", err)
		}
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gateway audit key: %w", err)
	}
	if len(b) < 32 {
		return nil, fmt.Errorf("gateway audit key %s: %d bytes, want at least 32", path, len(b))
	}
	return b, nil
}

// rootToken revokes the root token a previous run left in path and makes
// a new one there (as `vault server -dev` makes a root token per start).
func rootToken(tokens *auth.Store, path string) (string, error) {
	if old, err := os.ReadFile(path); err == nil {
		if t, err := tokens.Lookup(strings.TrimSpace(string(old))); err == nil && t.IsRoot() {
			tokens.Revoke(t)
		}
	}
	secret, _, err := tokens.CreateRoot("root")
	if err != nil {
		return "", fmt.Errorf("gateway root token: %w", err)
	}
	if err := writeFileAtomic(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("gateway root token: %w", err)
	}
	return secret, nil
}

// listenGateway listens on addr; if that port is taken and fallback is
// set (the address is the default, not one the user asked for), it
// listens on any free loopback port instead and says so.
func listenGateway(addr string, fallback bool, logger *log.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil || !fallback {
		if err != nil {
			return nil, fmt.Errorf("--http %s: %w", addr, err)
		}
		return ln, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, fmt.Errorf("--http %s: %w (and no free port: %v)", addr, err, err2)
	}
	logger.Printf("gateway: %s is taken (%v; a Vault dev server?): listening on %s instead (--http to choose)", addr, err, ln.Addr())
	return ln, nil
}
