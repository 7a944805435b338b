package main

import (
	"bytes"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
)

// TestServeDevGateway: `gohsm serve --dev --http` starts the gateway
// beside the appliance; the printed curl line and python3-hvac snippet
// work when pasted into bash; D/token holds the printed root token; the
// gateway's audit log verifies with gohsm audit verify; a restart revokes
// the previous root token.
func TestServeDevGateway(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	_, stdout, stderr, stop := startServe(t, "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0")
	out := stdout.String()
	m := regexp.MustCompile(`Root token:  (hvs\.\S+)  \(also in (\S+)\)`).FindStringSubmatch(out)
	if m == nil || m[2] != filepath.Join(dir, "token") {
		t.Fatalf("no root token line:\n%s\n%s", out, stderr)
	}
	tok, _ := os.ReadFile(m[2])
	if strings.TrimSpace(string(tok)) != m[1] {
		t.Fatalf("D/token %q, printed %q", tok, m[1])
	}
	if fi, _ := os.Stat(m[2]); fi.Mode().Perm() != 0o600 {
		t.Fatalf("D/token mode %v", fi.Mode())
	}
	i := strings.Index(out, "  export VAULT_ADDR=")
	j := strings.Index(out[i:], "\nEOF\n")
	if i < 0 || j < 0 {
		t.Fatalf("no paste block:\n%s", out)
	}
	var paste strings.Builder
	for _, line := range strings.SplitAfter(out[i:i+j+5], "\n") {
		paste.WriteString(strings.TrimPrefix(line, "  "))
	}
	cmd := exec.Command("bash", "-e", "-c", paste.String())
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pasted lines failed: %v\n%s\n--- pasted:\n%s", err, got, paste.String())
	}
	if !bytes.Contains(got, []byte(`"ciphertext":"vault:v1:`)) || !bytes.Contains(got, []byte(" hello gohsm\n")) {
		t.Fatalf("pasted lines printed:\n%s", got)
	}
	addr := regexp.MustCompile(`export VAULT_ADDR=(\S+)`).FindStringSubmatch(out)[1]
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var vout, verr bytes.Buffer
	if err := auditMain([]string{"verify", filepath.Join(dir, "gateway-audit.log")}, &vout, &verr); err != nil || !strings.Contains(vout.String(), "records ok (crypto gateway audit log)") {
		t.Fatalf("audit verify: %v\n%s%s", err, vout.String(), verr.String())
	}
	log, _ := os.ReadFile(filepath.Join(dir, "gateway-audit.log"))
	if bytes.Contains(log, []byte("aGVsbG8gZ29oc20=")) || bytes.Contains(log, []byte(m[1])) {
		t.Fatal("the gateway audit log holds the plaintext or the root token")
	}

	// A restart makes a new root token and revokes the old one.
	_, stdout, _, _ = startServe(t, "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0")
	addr = regexp.MustCompile(`export VAULT_ADDR=(\S+)`).FindStringSubmatch(stdout.String())[1]
	req, _ := http.NewRequest("GET", addr+"/v1/auth/token/lookup-self", nil)
	req.Header.Set("X-Vault-Token", m[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("the previous run's root token: %d", resp.StatusCode)
	}
	// The key made by the first run is still there (state on the token).
	req, _ = http.NewRequest("GET", addr+"/v1/transit/keys/demo", nil)
	newTok, _ := os.ReadFile(filepath.Join(dir, "token"))
	req.Header.Set("X-Vault-Token", strings.TrimSpace(string(newTok)))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("key demo after a restart: %d", resp.StatusCode)
	}
}

func TestServeDevGatewayRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ addr, want string }{
		{"0.0.0.0:8200", "loopback"},
		{"10.1.2.3:8200", "loopback"},
		{"nohost", "HOST:PORT"},
	} {
		var errb bytes.Buffer
		err := serveMain(t.Context(), []string{"--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--http", c.addr}, serveIO{stdout: &bytes.Buffer{}, stderr: &errb})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--http %s: %v", c.addr, err)
		}
	}
	err := serveMain(t.Context(), []string{"--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--http-audit-sync", "sometimes"}, serveIO{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "want always, interval or none") {
		t.Errorf("--http-audit-sync sometimes: %v", err)
	}
}

// TestServeConfigGateway: the http* keys of a production configuration
// start the gateway beside the appliance, with a root token file, and
// stop it with the appliance.
func TestServeConfigGateway(t *testing.T) {
	confPath, _ := writeProdConfig(t, `audit_log = audit.log
http = 127.0.0.1:0
http_token = gw
http_pin_file = gw.pin
http_audit_log = gw-audit.log
http_audit_key_file = gw-audit.key
http_root_token_file = gw-root
http_audit_sync = interval
http_rate_limit = 1000:2000
`)
	base := filepath.Dir(confPath)
	if _, _, err := ensureKnownToken(&conf.Config{Dir: filepath.Join(base, "store"), Profile: ck.DefaultProfile}, knownToken{"gw", "so-pin-1", "user-pin-1"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "gw.pin"), []byte("user-pin-1\n"), 0o600)
	_, _, stderr, stop := startServe(t, "--config", confPath)
	m := regexp.MustCompile(`gateway: listening on (http://\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no gateway:\n%s", stderr)
	}
	root, _ := os.ReadFile(filepath.Join(base, "gw-root"))
	req, _ := http.NewRequest("POST", m[1]+"/v1/transit/encrypt/k", strings.NewReader(`{"plaintext":"aGk="}`))
	req.Header.Set("X-Vault-Token", strings.TrimSpace(string(root)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("encrypt: %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, stderr)
	}
	var vout bytes.Buffer
	if err := auditMain([]string{"verify", filepath.Join(base, "gw-audit.log")}, &vout, &vout); err != nil {
		t.Fatal(err, vout.String())
	}

	// Refusals: a non-loopback address without TLS, a missing audit log.
	for _, c := range []struct{ extra, want string }{
		{"audit_log = a.log\nhttp = 0.0.0.0:8200\nhttp_token = gw\nhttp_pin_file = p\nhttp_audit_log = g.log\nhttp_audit_key_file = g.key\n", "not a loopback address"},
		{"audit_log = a.log\nhttp = 127.0.0.1:0\nhttp_token = gw\nhttp_pin_file = p\nhttp_audit_key_file = g.key\n", "http_audit_log is required"},
		{"audit_log = a.log\nhttp_token = gw\n", "without http = ADDR"},
		{"audit_log = a.log\nhttp = nope\n", "HOST:PORT"},
		{"audit_log = a.log\nhttp_audit_sync = sometimes\n", "want always, interval or none"},
		{"audit_log = a.log\nhttp_rate_limit = fast\n", "RATE[:BURST]"},
		{"audit_log = a.log\nhttp_rate_limit = 10:0\n", "burst"},
	} {
		confPath, _ := writeProdConfig(t, c.extra)
		err := serveMain(t.Context(), []string{"--config", confPath}, serveIO{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.extra, err, c.want)
		}
	}
}

// TestTransitCLI: gohsm transit's commands against a dev gateway.
func TestTransitCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	_, stdout, _, _ := startServe(t, "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0")
	addr := regexp.MustCompile(`export VAULT_ADDR=(\S+)`).FindStringSubmatch(stdout.String())[1]
	run := func(stdin string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		base := []string{"--addr", addr, "--token-file", filepath.Join(dir, "token")}
		err := transitMain(append(base, args...), strings.NewReader(stdin), &out, &errb)
		return out.String(), err
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out
	}
	must("", "create", "cli")
	must("", "create", "cli-sig", "--type", "ecdsa-p256")
	ct := strings.TrimSpace(must("", "encrypt", "cli", "secret text"))
	if !strings.HasPrefix(ct, "vault:v1:") {
		t.Fatal(ct)
	}
	if got := must("", "decrypt", "cli", ct); got != "secret text" {
		t.Fatalf("decrypt %q", got)
	}
	ct2 := strings.TrimSpace(must("from stdin", "encrypt", "cli"))
	if got := must("", "decrypt", "cli", ct2); got != "from stdin" {
		t.Fatalf("stdin: %q", got)
	}
	if got := must("", "rotate", "cli"); !strings.Contains(got, "latest version 2") {
		t.Fatal(got)
	}
	if got := strings.TrimSpace(must("", "rewrap", "cli", ct)); !strings.HasPrefix(got, "vault:v2:") {
		t.Fatal(got)
	}
	sig := strings.TrimSpace(must("", "sign", "cli-sig", "msg"))
	if got := must("", "verify", "cli-sig", sig, "msg"); got != "valid\n" {
		t.Fatal(got)
	}
	if _, err := run("", "verify", "cli-sig", sig, "other"); err == nil {
		t.Fatal("a wrong message verified")
	}
	mac := strings.TrimSpace(must("", "hmac", "cli", "msg"))
	if got := must("", "verify", "--hmac", "cli", mac, "msg"); got != "valid\n" {
		t.Fatal(got)
	}
	if got := must("", "list"); got != "cli\ncli-sig\n" {
		t.Fatalf("list %q", got)
	}
	os.WriteFile(filepath.Join(dir, "p.hcl"), []byte(`path "transit/encrypt/cli" { capabilities = ["update"] }`), 0o600)
	must("", "policy", "enc", filepath.Join(dir, "p.hcl"))
	tokOut := must("", "token", "--policy", "enc", "--ttl", "10m")
	enc := strings.SplitN(tokOut, "\n", 2)[0]
	var out, errb bytes.Buffer
	if err := transitMain([]string{"--addr", addr, "--token", enc, "decrypt", "cli", ct}, nil, &out, &errb); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("encrypt-only token decrypted: %v", err)
	}
	if !strings.Contains(must("", "datakey", "cli", "--plaintext"), `"plaintext"`) {
		t.Fatal("datakey --plaintext")
	}
}

// TestListenGatewayFallback: a taken default port falls back to a free
// one; a taken port the user asked for (--http) is an error.
func TestListenGatewayFallback(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var logb bytes.Buffer
	logger := log.New(&logb, "", 0)
	ln, err := listenGateway(busy.Addr().String(), true, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if ln.Addr().String() == busy.Addr().String() || !strings.Contains(logb.String(), "is taken") {
		t.Fatalf("fallback %s; log %q", ln.Addr(), logb.String())
	}
	if _, err := listenGateway(busy.Addr().String(), false, logger); err == nil {
		t.Fatal("an explicit --http on a taken port did not fail")
	}
}
