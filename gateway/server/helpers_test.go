package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/kv"
	"github.com/gohsm/gohsm/gateway/metrics"
	"github.com/gohsm/gohsm/gateway/pool"
	"github.com/gohsm/gohsm/gateway/quota"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/gateway/transit"
)

// testGW is a gateway on a real token (in-process engine), listening on
// loopback, with an audit log and a root token.
type testGW struct {
	s        *Server
	addr     string // http://127.0.0.1:port
	root     string
	auditLog string
	kv       kv.Store
}

type gwOpts struct {
	quota     *quota.Limiter
	maxBody   int
	auditWrap func(audit.File) audit.File
	configure func(*Config)
	noAudit   bool
	// token, if set, is the token behind the gateway (default: an
	// in-process engine token); it runs through gateway/pool.
	token func(t testing.TB) token.Token
}

var auditKey = bytes.Repeat([]byte{0x5a}, 32)

func newGW(t testing.TB, o gwOpts) *testGW {
	t.Helper()
	var ex transit.Exec
	if o.token != nil {
		p, err := pool.New([]token.Token{o.token(t)}, pool.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		ex = p
	} else {
		dir := gwtest.Store(t, "gw")
		tok := gwtest.Token(t, dir, "gw")
		x := gwtest.NewExec(tok)
		t.Cleanup(func() { x.Close() })
		ex = x
	}
	store := kv.NewMem()
	tokens, pols := Stores(store, nil)
	cfg := Config{
		Tokens: tokens, Policies: pols, KV: store,
		NewEngine:      TransitEngines(ex, store, transit.Config{}),
		Metrics:        metrics.New(metrics.Options{NoRuntimeMetrics: true}),
		Quota:          o.quota,
		MaxRequestBody: o.maxBody,
		Logf:           t.Logf,
	}
	g := &testGW{kv: store}
	if !o.noAudit {
		g.auditLog = filepath.Join(t.TempDir(), "gateway-audit.log")
		al, err := audit.OpenWith(g.auditLog, auditKey, audit.Options{WrapFile: o.auditWrap})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { al.Close() })
		cfg.Audit = al
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureMount("transit"); err != nil {
		t.Fatal(err)
	}
	root, _, err := tokens.CreateRoot("root")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	g.s, g.addr, g.root = s, "http://"+ln.Addr().String(), root
	return g
}

// client is a vault/api client for the gateway with token tok ("" for none).
func (g *testGW) client(t testing.TB, tok string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = g.addr
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(tok) // "" clears what VAULT_TOKEN may have set
	if tok == "" {
		c.ClearToken()
	}
	return c
}

// do sends a raw request and returns the status and decoded body.
func (g *testGW) do(t testing.TB, method, path, tok string, body []byte) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, g.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("X-Vault-Token", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		json.Unmarshal(b, &m)
	}
	return resp.StatusCode, m, resp.Header
}

// errorsOf is the body's errors array joined.
func errorsOf(m map[string]any) string {
	es, _ := m["errors"].([]any)
	var out []string
	for _, e := range es {
		s, _ := e.(string)
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func readAudit(t testing.TB, g *testGW) []byte {
	t.Helper()
	b, err := os.ReadFile(g.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// statusOf is the HTTP status in a vault/api error (0 if none).
func statusOf(err error) int {
	if re, ok := err.(*vault.ResponseError); ok {
		return re.StatusCode
	}
	return 0
}
