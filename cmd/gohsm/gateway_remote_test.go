package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/gohsm/gohsm/gateway/pool"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
)

// The gateway alone (no listen), on tokens reached through the appliance's
// client: one appliance, a cluster with a member killed under load, a pool
// of a remote and a local token.

// startGatewayAlone writes the gateway's configuration (the http* keys of
// extra, a PIN file with pin, an audit log and a root token file in a new
// directory) and runs `gohsm serve --config` on it. It returns a Vault
// client with the root token (no retries: a failed request must show), the
// stop function and serve's stderr.
func startGatewayAlone(t *testing.T, pin, extra string) (*vault.Client, func() error, *syncBuffer) {
	t.Helper()
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "gw.pin"), []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(base, "gateway.conf")
	text := "http = 127.0.0.1:0\nhttp_pin_file = gw.pin\nhttp_audit_log = gw-audit.log\nhttp_audit_key_file = gw-audit.key\nhttp_root_token_file = gw-root\nshutdown_timeout = 5s\n" + extra
	if err := os.WriteFile(confPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _, stderr, stop := startServe(t, "--config", confPath)
	if a != nil {
		t.Fatal("an appliance started without listen")
	}
	m := regexp.MustCompile(`gateway: listening on (http://\S+)`).FindStringSubmatch(stderr.String())
	if m == nil || !strings.Contains(stderr.String(), "the crypto gateway alone") {
		t.Fatalf("no gateway alone:\n%s", stderr)
	}
	root, err := os.ReadFile(filepath.Join(base, "gw-root"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := vault.DefaultConfig()
	cfg.Address, cfg.MaxRetries = m[1], 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(strings.TrimSpace(string(root)))
	return c, stop, stderr
}

func gwWrite(t *testing.T, c *vault.Client, path string, data map[string]any) map[string]any {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if s == nil || s.Data == nil {
		t.Fatalf("write %s: no data", path)
	}
	return s.Data
}

// transitRoundTrip drives the common transit calls through vault/api and
// checks every answer; it returns a v1 ciphertext of plaintext under key
// "k".
func transitRoundTrip(t *testing.T, c *vault.Client, plaintext string) string {
	t.Helper()
	pt := base64.StdEncoding.EncodeToString([]byte(plaintext))
	gwWrite(t, c, "transit/keys/k", map[string]any{"type": "aes256-gcm96"})
	ct1, _ := gwWrite(t, c, "transit/encrypt/k", map[string]any{"plaintext": pt})["ciphertext"].(string)
	if !strings.HasPrefix(ct1, "vault:v1:") {
		t.Fatalf("ciphertext %q", ct1)
	}
	if got := gwWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": ct1})["plaintext"]; got != pt {
		t.Fatalf("decrypt: %v, want %s", got, pt)
	}
	gwWrite(t, c, "transit/keys/k/rotate", nil)
	ct2, _ := gwWrite(t, c, "transit/encrypt/k", map[string]any{"plaintext": pt})["ciphertext"].(string)
	if !strings.HasPrefix(ct2, "vault:v2:") {
		t.Fatalf("after rotate: %q", ct2)
	}
	for _, ct := range []string{ct1, ct2} {
		if got := gwWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": ct})["plaintext"]; got != pt {
			t.Fatalf("decrypt %s after rotate: %v", ct[:9], got)
		}
	}
	if rw, _ := gwWrite(t, c, "transit/rewrap/k", map[string]any{"ciphertext": ct1})["ciphertext"].(string); !strings.HasPrefix(rw, "vault:v2:") {
		t.Fatalf("rewrap: %q", rw)
	}
	gwWrite(t, c, "transit/keys/s", map[string]any{"type": "ecdsa-p256"})
	sig, _ := gwWrite(t, c, "transit/sign/s", map[string]any{"input": pt})["signature"].(string)
	if v := gwWrite(t, c, "transit/verify/s", map[string]any{"input": pt, "signature": sig})["valid"]; v != true {
		t.Fatalf("verify: %v", v)
	}
	other := base64.StdEncoding.EncodeToString([]byte("another message"))
	if v := gwWrite(t, c, "transit/verify/s", map[string]any{"input": other, "signature": sig})["valid"]; v != false {
		t.Fatalf("a signature verified another message: %v", v)
	}
	transitBatches(t, c, pt)
	mac, _ := gwWrite(t, c, "transit/hmac/k", map[string]any{"input": pt})["hmac"].(string)
	if v := gwWrite(t, c, "transit/verify/k", map[string]any{"input": pt, "hmac": mac})["valid"]; v != true {
		t.Fatalf("hmac verify: %v", v)
	}
	dk := gwWrite(t, c, "transit/datakey/plaintext/k", nil)
	if got := gwWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": dk["ciphertext"]})["plaintext"]; got != dk["plaintext"] || got == nil {
		t.Fatalf("data key: decrypted %v, plaintext %v", got, dk["plaintext"])
	}
	return ct1
}

// transitBatches encrypts and signs batches with a bad item among good
// ones (on an appliance's token, a run of items is one batch of calls on
// the wire): every good item's result stands, in its place, and checks.
func transitBatches(t *testing.T, c *vault.Client, pt string) {
	t.Helper()
	results := func(d map[string]any) []map[string]any {
		rs, _ := d["batch_results"].([]any)
		out := make([]map[string]any, len(rs))
		for i, r := range rs {
			out[i], _ = r.(map[string]any)
		}
		return out
	}
	var enc, sig []any
	for i := range 9 {
		in := pt
		if i == 4 {
			in = "not base64!"
		}
		enc = append(enc, map[string]any{"plaintext": in, "reference": fmt.Sprint(i)})
		sig = append(sig, map[string]any{"input": in, "reference": fmt.Sprint(i)})
	}
	er := results(gwWrite(t, c, "transit/encrypt/k", map[string]any{"batch_input": enc, "partial_failure_response_code": 200}))
	sr := results(gwWrite(t, c, "transit/sign/s", map[string]any{"batch_input": sig, "partial_failure_response_code": 200}))
	if len(er) != 9 || len(sr) != 9 {
		t.Fatalf("batch results: %d encrypt, %d sign; want 9 each", len(er), len(sr))
	}
	for i := range 9 {
		if er[i]["reference"] != fmt.Sprint(i) || sr[i]["reference"] != fmt.Sprint(i) {
			t.Fatalf("item %d: references %v, %v", i, er[i]["reference"], sr[i]["reference"])
		}
		if i == 4 {
			if er[i]["error"] == nil || sr[i]["error"] == nil || er[i]["ciphertext"] != nil || sr[i]["signature"] != nil {
				t.Fatalf("the bad item: %v, %v", er[i], sr[i])
			}
			continue
		}
		if got := gwWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": er[i]["ciphertext"]})["plaintext"]; got != pt {
			t.Fatalf("batch item %d: decrypted %v", i, got)
		}
		if v := gwWrite(t, c, "transit/verify/s", map[string]any{"input": pt, "signature": sr[i]["signature"]})["valid"]; v != true {
			t.Fatalf("batch item %d: signature %v does not verify", i, sr[i]["signature"])
		}
	}
}

// TestGatewayRemote: the gateway alone (no listen, no dir) over the token
// of a dev appliance, through http_remote = D/remote.conf: the vault/api
// round trip works, the appliance saw the gateway's client, and the keys
// and the gateway's state are on the appliance's token (a second gateway
// decrypts what the first encrypted, with the key ring it made).
func TestGatewayRemote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	_, _, appLog, _ := startServe(t, "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--http", "off")
	remote := "http_remote = " + filepath.Join(dir, devRemoteConf) + "\nhttp_token = " + devLabel + "\n"
	c, stop, stderr := startGatewayAlone(t, devUserPIN, remote)
	ct := transitRoundTrip(t, c, "hello through the appliance")
	if !regexp.MustCompile(`identity "dev-client" connected \(gohsm gateway \(pid \d+\)\)`).MatchString(appLog.String()) {
		t.Fatalf("the appliance did not see the gateway's client:\n%s", appLog)
	}
	if !strings.Contains(stderr.String(), "on appliance 127.0.0.1:") {
		t.Fatalf("the gateway does not say where its token is:\n%s", stderr)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, stderr)
	}
	if !strings.HasSuffix(stderr.String(), " stopped\n") {
		t.Fatalf("no clean stop:\n%s", stderr)
	}

	c2, _, _ := startGatewayAlone(t, devUserPIN, remote)
	want := base64.StdEncoding.EncodeToString([]byte("hello through the appliance"))
	if got := gwWrite(t, c2, "transit/decrypt/k", map[string]any{"ciphertext": ct})["plaintext"]; got != want {
		t.Fatalf("a second gateway on the same remote token: decrypt %v", got)
	}
}

// TestGatewayAloneLocal: the gateway alone on a token of a local store
// (dir, no http_remote): no appliance, the keys in dir.
func TestGatewayAloneLocal(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	if _, _, err := ensureKnownToken(&conf.Config{Dir: store, Profile: ck.DefaultProfile}, knownToken{"gw", "so-pin-1", "user-pin-1"}); err != nil {
		t.Fatal(err)
	}
	c, _, stderr := startGatewayAlone(t, "user-pin-1", "dir = "+store+"\nhttp_token = gw\nkdf_iterations = 1000\n")
	if !strings.Contains(stderr.String(), "on store "+store) {
		t.Fatalf("the gateway does not say where its token is:\n%s", stderr)
	}
	transitRoundTrip(t, c, "alone on a local store")
}

// TestGatewayRemoteConfigRefusals: what the gateway alone refuses, each
// with the reason.
func TestGatewayRemoteConfigRefusals(t *testing.T) {
	base := t.TempDir()
	local := filepath.Join(base, "local.conf")
	os.WriteFile(local, []byte("mode = local\n"), 0o600)
	half := filepath.Join(base, "half.conf")
	os.WriteFile(half, []byte("mode = remote\naddress = 127.0.0.1:1\n"), 0o600)
	gw := "http = 127.0.0.1:0\nhttp_token = gw\nhttp_pin_file = p\nhttp_audit_log = g.log\nhttp_audit_key_file = g.key\n"
	os.WriteFile(filepath.Join(base, "p"), []byte("1234\n"), 0o600)
	for _, c := range []struct{ text, want string }{
		{gw + "dir = store\ntls_cert = x.pem\nclient.app = gw\n", `these keys are the appliance's: "tls_cert", "client.*, admin.*, pubkey.*"`},
		{gw, "dir is required for the gateway's local tokens"},
		{gw + "http_remote = " + local + "\nhttp_pool_local = other\n", "dir is required"},
		{gw + "dir = store\nhttp_pool_local = other\n", "http_pool_local is for a pool of remote and local tokens"},
		{gw + "dir = store\nhttp_pool = gw\n", `token "gw" twice`},
		{gw + "http_remote = " + local + "\n", "want mode = remote"},
		{gw + "http_remote = local.conf\n", "want mode = remote"}, // relative to the configuration's directory
		{gw + "http_remote = " + half + "\n", "mode remote needs ca, cert, key"},
		{gw + "http_remote = " + filepath.Join(base, "missing.conf") + "\n", "missing.conf"},
		{gw + "http_pool = \"a\" b\n", "http_pool"},
	} {
		p := filepath.Join(base, "serve.conf")
		os.WriteFile(p, []byte(c.text), 0o600)
		err := serveMain(t.Context(), []string{"--config", p}, serveIO{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.text, err, c.want)
		}
	}
}

// TestGatewayRemoteCluster: the gateway alone on a cluster of three
// `gohsm serve --dev --raft` processes (http_remote's address lists them
// all). Under load, the member the gateway's client is on is killed: no
// request fails (the vault client does not retry), the client moves to
// another member, the gateway's only token stays in service, and what was
// encrypted before the kill decrypts after it.
func TestGatewayRemoteCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("three appliance processes")
	}
	pc := startProcCluster(t, 3)
	rc := filepath.Join(t.TempDir(), "cluster.conf")
	if err := os.WriteFile(rc, fmt.Appendf(nil, "mode = remote\naddress = %s\nca = %s\ncert = %s\nkey = %s\ntimeout = 10s\n",
		pc.addresses(), filepath.Join(pc.pki, "ca.pem"), filepath.Join(pc.pki, "client.pem"), filepath.Join(pc.pki, "client.key")), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, stderr := startGatewayAlone(t, devUserPIN, "http_remote = "+rc+"\nhttp_token = "+devLabel+"\n")
	pt := base64.StdEncoding.EncodeToString([]byte("before the kill"))
	gwWrite(t, c, "transit/keys/k", map[string]any{"type": "aes256-gcm96"})
	before, _ := gwWrite(t, c, "transit/encrypt/k", map[string]any{"plaintext": pt})["ciphertext"].(string)

	gatewayOn := func(skip int) int {
		for i, m := range pc.members {
			if i != skip && strings.Contains(m.log.String(), "(gohsm gateway (pid ") {
				return i
			}
		}
		return -1
	}
	on := gatewayOn(-1)
	if on < 0 {
		t.Fatal("no member saw the gateway's client")
	}

	// Load: 4 callers encrypting and decrypting, 60 rounds each; the
	// member dies after the first 20 rounds.
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				msg := make([]byte, 24)
				rand.Read(msg)
				p := base64.StdEncoding.EncodeToString(msg)
				s, err := c.Logical().Write("transit/encrypt/k", map[string]any{"plaintext": p})
				if err == nil {
					s, err = c.Logical().Write("transit/decrypt/k", map[string]any{"ciphertext": s.Data["ciphertext"]})
				}
				if err == nil && s.Data["plaintext"] != p {
					err = fmt.Errorf("decrypted %v, encrypted %s", s.Data["plaintext"], p)
				}
				if err != nil {
					errs <- fmt.Errorf("caller %d, round %d: %w", w, i, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	waitUntil(t, func() bool { return done.Load() >= 20 || len(errs) > 0 })
	pc.kill(on)
	atKill := done.Load()
	<-finished
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Fatalf("gateway log:\n%s", stderr)
	}
	if after := done.Load() - atKill; after < 40 {
		t.Fatalf("only %d rounds after the kill: not a failover under load", after)
	}
	if now := gatewayOn(on); now < 0 {
		t.Fatalf("the gateway's client reached no other member:\n%s", stderr)
	}
	if got := gwWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": before})["plaintext"]; got != pt {
		t.Fatalf("the ciphertext from before the kill: %v", got)
	}
	after, _ := gwWrite(t, c, "transit/encrypt/k", map[string]any{"plaintext": pt})["ciphertext"].(string)
	if got := gwWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": after})["plaintext"]; got != pt {
		t.Fatalf("after the kill: %v", got)
	}
}

// TestGatewayRemotePool: a pool of the dev appliance's token (remote) and
// a token of a local store (http_pool_local), the pool transport key
// installed on both and trusted by each SO: keys made through the gateway
// are cloned onto both tokens, and the round trip works whichever serves.
// Without the transport key on a token, the gateway does not start.
func TestGatewayRemotePool(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	startServe(t, "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--http", "off")
	store := filepath.Join(t.TempDir(), "store")
	localTok := knownToken{"gw-local", "so-pin-local", devUserPIN}
	if _, _, err := ensureKnownToken(&conf.Config{Dir: store, Profile: ck.DefaultProfile}, localTok); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("dir = %s\nhttp_remote = %s\nhttp_token = %s\nhttp_pool_local = gw-local\n", store, filepath.Join(dir, devRemoteConf), devLabel)

	// No transport key yet: refused, naming the token.
	p := filepath.Join(t.TempDir(), "serve.conf")
	os.WriteFile(filepath.Join(filepath.Dir(p), "gw.pin"), []byte(devUserPIN+"\n"), 0o600)
	os.WriteFile(p, []byte("http = 127.0.0.1:0\nhttp_pin_file = gw.pin\nhttp_audit_log = a.log\nhttp_audit_key_file = a.key\n"+extra), 0o600)
	err := serveMain(t.Context(), []string{"--config", p}, serveIO{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "has no pool transport key") {
		t.Fatalf("a pool without the transport key: %v", err)
	}

	// The ceremony: one value onto both tokens, then each SO trusts it.
	value := make([]byte, 32)
	rand.Read(value)
	for _, tk := range []struct {
		dir string
		tok knownToken
	}{{dir, devToken}, {store, localTok}} {
		installTrustedTransport(t, tk.dir, tk.tok, value)
	}
	clear(value)

	c, _, _ := startGatewayAlone(t, devUserPIN, extra)
	transitRoundTrip(t, c, "cloned between a remote and a local token")
	var held []string // per token: the CKA_IDs of key k's secret objects
	for _, tk := range []struct {
		dir, label string
	}{{dir, devLabel}, {store, "gw-local"}} {
		tok, err := token.OpenEngineToken(tk.dir, tk.label, []byte(devUserPIN), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tok.OpenSession()
		if err != nil {
			t.Fatal(err)
		}
		hs, err := s.FindObjects([]ck.Attribute{{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, h := range hs {
			v, err := s.GetAttributes(h, ck.CKA_ID)
			if err == nil && strings.HasPrefix(string(v[0]), "gohsm-transit/transit/k/") {
				ids = append(ids, string(v[0]))
			}
		}
		s.Close()
		tok.Close()
		slices.Sort(ids)
		held = append(held, strings.Join(ids, " "))
	}
	if !strings.Contains(held[0], "/k/v1/") || !strings.Contains(held[0], "/k/v2/") || held[0] != held[1] {
		t.Fatalf("key k's objects: on %s %q, on gw-local %q (want versions 1 and 2 on both)", devLabel, held[0], held[1])
	}
}

// installTrustedTransport creates the pool transport key with value on
// the token (pool.InstallTransport, as the user) and has its SO trust it.
func installTrustedTransport(t *testing.T, dir string, tk knownToken, value []byte) {
	t.Helper()
	tok, err := token.OpenEngineToken(dir, tk.Label, []byte(tk.UserPIN), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.InstallTransport(s, []byte(pool.DefaultTransportID), value); err != nil {
		t.Fatal(err)
	}
	s.Close()
	tok.Close()
	be, release, err := token.OpenEngine(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	slot, _ := slotOf(t, be, tk.Label)
	h, err := be.OpenSession(slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer be.CloseSession(h)
	if err := be.Login(h, ck.CKU_SO, []byte(tk.SOPIN)); err != nil {
		t.Fatal(err)
	}
	if err := be.FindObjectsInit(h, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(pool.DefaultTransportID)}}); err != nil {
		t.Fatal(err)
	}
	hs, err := be.FindObjects(h, 4)
	be.FindObjectsFinal(h)
	if err != nil || len(hs) != 1 {
		t.Fatalf("transport key for the SO: %v %v", hs, err)
	}
	if err := be.SetAttributeValue(h, hs[0], []ck.Attribute{{Type: ck.CKA_TRUSTED, Value: attr.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	be.Logout(h)
}
