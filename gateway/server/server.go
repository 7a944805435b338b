package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/auth"
	"github.com/gohsm/gohsm/gateway/kv"
	"github.com/gohsm/gohsm/gateway/metrics"
	"github.com/gohsm/gohsm/gateway/policy"
	"github.com/gohsm/gohsm/gateway/quota"
	"github.com/gohsm/gohsm/gateway/transit"
)

// Engine is a transit mount's engine: gateway/transit's *Engine method set.
type Engine interface {
	CreateKey(ctx context.Context, name string, r *transit.CreateKeyRequest) (*transit.ReadKeyResponse, error)
	ReadKey(ctx context.Context, name string) (*transit.ReadKeyResponse, error)
	ListKeys(ctx context.Context) (*transit.ListKeysResponse, error)
	DeleteKey(ctx context.Context, name string) error
	ConfigKey(ctx context.Context, name string, r *transit.ConfigKeyRequest) (*transit.ReadKeyResponse, error)
	RotateKey(ctx context.Context, name string, r *transit.RotateKeyRequest) (*transit.ReadKeyResponse, error)
	TrimKey(ctx context.Context, name string, r *transit.TrimKeyRequest) (*transit.ReadKeyResponse, error)
	Encrypt(ctx context.Context, name string, r *transit.EncryptRequest) (*transit.EncryptResponse, error)
	Decrypt(ctx context.Context, name string, r *transit.DecryptRequest) (*transit.DecryptResponse, error)
	Rewrap(ctx context.Context, name string, r *transit.RewrapRequest) (*transit.RewrapResponse, error)
	DataKey(ctx context.Context, name string, plaintext bool, r *transit.DataKeyRequest) (*transit.DataKeyResponse, error)
	Sign(ctx context.Context, name string, r *transit.SignRequest) (*transit.SignResponse, error)
	Verify(ctx context.Context, name string, r *transit.VerifyRequest) (*transit.VerifyResponse, error)
	HMAC(ctx context.Context, name string, r *transit.HMACRequest) (*transit.HMACResponse, error)
	Random(ctx context.Context, r *transit.RandomRequest) (*transit.RandomResponse, error)
}

// Config configures a Server. Tokens, Policies, KV and NewEngine are required.
type Config struct {
	Tokens   *auth.Store
	Policies *policy.Store
	// KV holds the mount table (mounts/<path>); a kv.Store on the tokens
	// so that gateways sharing tokens share mounts.
	KV kv.Store
	// NewEngine makes the engine of a transit mount ("transit/"), at start
	// for each stored mount and when sys/mounts enables one.
	NewEngine func(mount string) (Engine, error)
	// Audit, if not nil, records every request and response (fail closed).
	Audit *audit.Log
	// Metrics (nil: a new set with the runtime collectors).
	Metrics *metrics.Metrics
	// Quota (nil: no rate limits).
	Quota *quota.Limiter
	// MaxRequestBody bounds a body (default 8 MiB: a 10,000-item batch
	// fits); more is a 413.
	MaxRequestBody int
	// ReadTimeout, WriteTimeout, IdleTimeout: fasthttp's (defaults 30 s,
	// 30 s, 120 s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns bounds concurrent connections (default 10,000).
	MaxConns int
	// TLS, if not nil, serves HTTPS; with ClientAuth VerifyClientCertIfGiven
	// (or stricter) and ClientCAs, client certificates authenticate
	// (auth.Options.Certificates maps them).
	TLS *tls.Config
	// Version is reported by sys/health.
	Version string
	// Logf logs server events (never tokens, keys or data); nil: silent.
	Logf func(format string, args ...any)
}

// Server is the gateway's HTTP server.
type Server struct {
	cfg    Config
	hs     *fasthttp.Server
	table  *table
	mounts atomic.Pointer[map[string]*mount] // copy-on-write; keys end in '/'
	mu     sync.Mutex                        // serialises mount changes
	reload atomic.Int64                      // unix ns of the last mount reload on a miss
	start  time.Time
	id     string // cluster id for sys/health

	openapiOnce sync.Once
	openapiDoc  []byte

	auditIDs auditIDs // each token's audit identity (auditid.go)
}

type mount struct {
	Path        string    `json:"path"`
	Type        string    `json:"type"`
	Description string    `json:"description"`
	Accessor    string    `json:"accessor"`
	UUID        string    `json:"uuid"`
	Created     time.Time `json:"created"`
	engine      Engine
}

const mountPrefix = "mounts/"

// autoRotator is an engine that rotates keys whose auto_rotate_period has
// passed (transit.Engine).
type autoRotator interface {
	AutoRotate(ctx context.Context) ([]string, error)
}

// AutoRotate runs every mount's auto-rotation once and returns the rotated
// keys as mount/name. The caller calls it periodically (gohsm serve: each
// minute, as Vault checks); gateways sharing tokens may all do so, the
// key ring's compare-and-swap lets one of them rotate each key once.
func (s *Server) AutoRotate(ctx context.Context) ([]string, error) {
	var rotated []string
	var errs []error
	for p, m := range *s.mounts.Load() {
		r, ok := m.engine.(autoRotator)
		if !ok {
			continue
		}
		names, err := r.AutoRotate(ctx)
		for _, n := range names {
			rotated = append(rotated, p+n)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	return rotated, errors.Join(errs...)
}

// New makes a Server and loads the stored mounts.
func New(cfg Config) (*Server, error) {
	if cfg.Tokens == nil || cfg.Policies == nil || cfg.KV == nil || cfg.NewEngine == nil {
		return nil, errors.New("server: Tokens, Policies, KV and NewEngine are required")
	}
	if cfg.MaxRequestBody <= 0 {
		cfg.MaxRequestBody = 8 << 20
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10000
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(metrics.Options{})
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Version == "" {
		cfg.Version = "gohsm-gateway"
	}
	s := &Server{cfg: cfg, start: time.Now(), id: newUUID()}
	s.table = newTable(s, cfg.Metrics)
	empty := map[string]*mount{}
	s.mounts.Store(&empty)
	if err := s.loadMounts(); err != nil {
		return nil, err
	}
	s.hs = &fasthttp.Server{
		Handler:                       s.handle,
		ErrorHandler:                  s.errorHandler,
		Name:                          "gohsm",
		MaxRequestBodySize:            cfg.MaxRequestBody,
		ReadTimeout:                   cfg.ReadTimeout,
		WriteTimeout:                  cfg.WriteTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		Concurrency:                   cfg.MaxConns,
		DisableHeaderNamesNormalizing: false,
		NoDefaultServerHeader:         false,
		NoDefaultContentType:          true,
		TLSConfig:                     cfg.TLS,
		CloseOnShutdown:               true,
		Logger:                        logger(cfg.Logf),
	}
	return s, nil
}

// Serve serves on ln (wrapping it in TLS if Config.TLS is set) until
// Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	return s.hs.Serve(ln)
}

// Shutdown stops accepting connections and waits for in-flight requests
// (until ctx ends).
func (s *Server) Shutdown(ctx context.Context) error { return s.hs.ShutdownWithContext(ctx) }

// Handler is the server's request handler (for fasthttputil in-memory
// listeners and benchmarks).
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// Metrics is the server's metric set.
func (s *Server) Metrics() *metrics.Metrics { return s.cfg.Metrics }

// ---- mounts ----

// normMount makes "transit", "/transit/" and "transit/" all "transit/".
func normMount(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", errors.New("mount path is empty")
	}
	if len(p) > 128 {
		return "", errors.New("mount path longer than 128 characters")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("mount path %q has an empty or dot segment", p)
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return "", fmt.Errorf("mount path %q: only letters, digits, '-', '_', '.' and '/' are allowed", p)
			}
		}
	}
	first := strings.SplitN(p, "/", 2)[0]
	switch first {
	case "sys", "auth", "cubbyhole", "identity":
		return "", fmt.Errorf("cannot mount under %q: reserved", first+"/")
	}
	return p + "/", nil
}

func (s *Server) loadMounts() error {
	keys, err := s.cfg.KV.List(mountPrefix)
	if err != nil {
		return fmt.Errorf("server: mount table: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.mounts.Load()
	next := make(map[string]*mount, len(keys))
	for _, k := range keys {
		b, err := s.cfg.KV.Get(k)
		if err != nil {
			continue
		}
		var m mount
		if err := json.Unmarshal(b, &m); err != nil || m.Type != "transit" {
			s.cfg.Logf("mount entry %s unreadable; skipped", k)
			continue
		}
		if o, ok := old[m.Path]; ok && o.UUID == m.UUID {
			next[m.Path] = o
			continue
		}
		e, err := s.cfg.NewEngine(m.Path)
		if err != nil {
			return fmt.Errorf("server: mount %s: %w", m.Path, err)
		}
		m.engine = e
		next[m.Path] = &m
	}
	s.mounts.Store(&next)
	return nil
}

// Mount enables a transit mount at path (idempotent for an existing
// transit mount): what sys/mounts/:path does, and dev mode's transit/.
func (s *Server) Mount(path, typ, description string) error {
	p, err := normMount(path)
	if err != nil {
		return err
	}
	if typ != "transit" {
		return fmt.Errorf("unknown secrets engine type %q: this gateway serves transit only", typ)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := *s.mounts.Load()
	if _, ok := cur[p]; ok {
		return errExists{p}
	}
	for existing := range cur {
		if strings.HasPrefix(existing, p) || strings.HasPrefix(p, existing) {
			return fmt.Errorf("path is already in use at %s", existing)
		}
	}
	e, err := s.cfg.NewEngine(p)
	if err != nil {
		return err
	}
	m := &mount{Path: p, Type: typ, Description: description, Accessor: "transit_" + newUUID()[:8], UUID: newUUID(), Created: time.Now().UTC(), engine: e}
	b, _ := json.Marshal(m)
	if err := s.cfg.KV.Put(mountPrefix+strings.TrimSuffix(p, "/"), b); err != nil {
		return fmt.Errorf("mount table: %w", err)
	}
	next := make(map[string]*mount, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[p] = m
	s.mounts.Store(&next)
	return nil
}

// logger is fasthttp's Logger over Logf (connection errors: a client
// that sent too much or went away).
type logger func(format string, args ...any)

func (l logger) Printf(format string, args ...any) { l(format, args...) }

type errExists struct{ path string }

func (e errExists) Error() string { return "path is already in use at " + e.path }

// EnsureMount mounts transit at path unless it is mounted (dev mode).
func (s *Server) EnsureMount(path string) error {
	err := s.Mount(path, "transit", "transit engine (dev mode)")
	var ee errExists
	if errors.As(err, &ee) {
		return nil
	}
	return err
}

// Unmount disables a mount. Its keys stay on the tokens (a mount enabled
// again at the same path serves them again): the gateway never destroys
// key material as a side effect of a routing change.
func (s *Server) Unmount(path string) error {
	p, err := normMount(path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := *s.mounts.Load()
	if _, ok := cur[p]; !ok {
		return nil // Vault: disabling an absent mount succeeds
	}
	if err := s.cfg.KV.Delete(mountPrefix + strings.TrimSuffix(p, "/")); err != nil {
		return fmt.Errorf("mount table: %w", err)
	}
	next := make(map[string]*mount, len(cur))
	for k, v := range cur {
		if k != p {
			next[k] = v
		}
	}
	s.mounts.Store(&next)
	return nil
}

// findMount returns the mount path is under (longest prefix) and the path
// relative to it. On a miss it re-reads the mount table, at most once a
// second (another gateway may have enabled it).
func (s *Server) findMount(path string) (*mount, string) {
	if m, rel := s.lookupMount(path); m != nil {
		return m, rel
	}
	now := time.Now().UnixNano()
	last := s.reload.Load()
	if now-last > int64(time.Second) && s.reload.CompareAndSwap(last, now) {
		if err := s.loadMounts(); err != nil {
			s.cfg.Logf("reloading the mount table: %v", err)
		}
		return s.lookupMount(path)
	}
	return nil, ""
}

func (s *Server) lookupMount(path string) (*mount, string) {
	ms := *s.mounts.Load()
	var best *mount
	for p, m := range ms {
		if (strings.HasPrefix(path, p) || path == strings.TrimSuffix(p, "/")) && (best == nil || len(p) > len(best.Path)) {
			best = m
		}
	}
	if best == nil {
		return nil, ""
	}
	if len(path) < len(best.Path) {
		return best, ""
	}
	return best, path[len(best.Path):]
}

func (s *Server) mountList() []*mount {
	ms := *s.mounts.Load()
	out := make([]*mount, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
