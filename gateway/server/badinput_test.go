package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/quota"
)

// TestBadInput: each bad request gets a 4xx with a clear message, and the
// server goes on serving (the good request after each one works).
func TestBadInput(t *testing.T) {
	g := newGW(t, gwOpts{maxBody: 1 << 20})
	root := g.client(t, g.root)
	mustWrite(t, root, "transit/keys/k", nil)
	mustWrite(t, root, "transit/keys/sig", map[string]any{"type": "ed25519"})
	ct := str(t, mustWrite(t, root, "transit/encrypt/k", map[string]any{"plaintext": b64("data"), "context": b64("ctx-a")}), "ciphertext")
	// Flip one character of the ciphertext's base64 body.
	i := len("vault:v1:") + 5
	tampered := ct[:i] + string("AB"[(strings.IndexByte("A", ct[i])+1)%2]) + ct[i+1:]
	if tampered == ct {
		tampered = ct[:i] + "C" + ct[i+1:]
	}
	items := make([]map[string]any, 10000)
	for j := range items {
		items[j] = map[string]any{"plaintext": b64("x")}
	}
	huge := mustJSON(map[string]any{"batch_input": items})
	cases := []struct {
		name, method, path string
		body               []byte
		status             int
		msg                string
	}{
		{"malformed JSON", "POST", "/v1/transit/encrypt/k", []byte(`{"plaintext": "aGk=",`), 400, "failed to parse JSON input"},
		{"not an object", "POST", "/v1/transit/encrypt/k", []byte(`["aGk="]`), 400, "must be a JSON object"},
		{"wrong field type", "POST", "/v1/transit/encrypt/k", []byte(`{"plaintext": 5}`), 400, "plaintext"},
		{"trailing data", "POST", "/v1/transit/encrypt/k", []byte(`{"plaintext": "aGk="} {}`), 400, "after the JSON object"},
		{"bad base64", "POST", "/v1/transit/encrypt/k", []byte(`{"plaintext": "not base64!!"}`), 400, "base64"},
		{"unknown key read", "GET", "/v1/transit/keys/nope", nil, 404, "not found"},
		{"unknown key decrypt", "POST", "/v1/transit/decrypt/nope", mustJSON(map[string]any{"ciphertext": ct}), 0, "not found"},
		{"wrong key type", "POST", "/v1/transit/encrypt/sig", []byte(`{"plaintext": "aGk="}`), 400, "encrypt"},
		{"unknown key type", "POST", "/v1/transit/keys/new", []byte(`{"type": "rot13"}`), 400, "rot13"},
		{"10,000-item batch", "POST", "/v1/transit/encrypt/k", huge, 400, "batch"},
		{"tampered ciphertext", "POST", "/v1/transit/decrypt/k", mustJSON(map[string]any{"ciphertext": tampered, "context": b64("ctx-a")}), 400, ""},
		{"wrong context", "POST", "/v1/transit/decrypt/k", mustJSON(map[string]any{"ciphertext": ct, "context": b64("ctx-b")}), 400, ""},
		{"bad ciphertext form", "POST", "/v1/transit/decrypt/k", []byte(`{"ciphertext": "v1:abc"}`), 400, "ciphertext"},
		{"unknown path", "POST", "/v1/transit/nothing/k", []byte(`{}`), 404, "no handler"},
		{"wrong method", "DELETE", "/v1/transit/encrypt/k", nil, 405, "unsupported operation"},
		{"not /v1", "GET", "/sys/health", nil, 404, "/v1/"},
		{"bad policy", "PUT", "/v1/sys/policies/acl/p", []byte(`{"policy": "path \"x\" { capabilities = [\"fly\"] }"}`), 400, "fly"},
		{"policy without document", "PUT", "/v1/sys/policies/acl/p", []byte(`{}`), 400, "policy"},
		{"custom token id", "POST", "/v1/auth/token/create", []byte(`{"id": "mine"}`), 400, "custom token IDs"},
		{"negative num_uses", "POST", "/v1/auth/token/create", []byte(`{"num_uses": -1}`), 400, "num_uses"},
		{"bad mount path", "POST", "/v1/sys/mounts/sys", []byte(`{"type": "transit"}`), 400, "reserved"},
	}
	for _, c := range cases {
		st, body, _ := g.do(t, c.method, c.path, g.root, c.body)
		msg := errorsOf(body)
		if (c.status != 0 && st != c.status) || (c.status == 0 && st/100 != 4) || !strings.Contains(strings.ToLower(msg), strings.ToLower(c.msg)) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, st, msg, c.status, c.msg)
		} else {
			t.Logf("%-22s -> %d %s", c.name, st, msg)
		}
		if msg == "" {
			t.Errorf("%s: no message", c.name)
		}
		// The server is unharmed: a good request still works.
		if got := str(t, mustWrite(t, root, "transit/decrypt/k", map[string]any{"ciphertext": ct, "context": b64("ctx-a")}), "plaintext"); got != b64("data") {
			t.Fatalf("after %s: decrypt gives %q", c.name, got)
		}
	}
	// An oversized body is refused on its Content-Length, before the body
	// is read. Sent over a raw socket: an HTTP client still writing the 2 MiB
	// body may see the server's close as a reset before it reads the 413, so
	// the test sends the head and a little of the body, then reads.
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/transit/encrypt/k HTTP/1.1\r\nHost: x\r\nX-Vault-Token: %s\r\nContent-Length: %d\r\n\r\n{\"plaintext\": \"", g.root, 2<<20)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, _ := io.ReadAll(conn)
	conn.Close()
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 413")) {
		t.Errorf("oversized body: got %q, want a 413", resp)
	}
	if got := str(t, mustWrite(t, root, "transit/decrypt/k", map[string]any{"ciphertext": ct, "context": b64("ctx-a")}), "plaintext"); got != b64("data") {
		t.Fatalf("after the oversized body: decrypt gives %q", got)
	}
	// Nothing lost: the key still has its one version and decrypts.
	rk, _ := root.Logical().Read("transit/keys/k")
	if fmt.Sprint(rk.Data["latest_version"]) != "1" {
		t.Fatalf("key changed: %v", rk.Data)
	}
	// No 5xx was ever answered.
	st, _, _ := g.do(t, "GET", "/v1/sys/metrics", g.root, nil)
	if st != 200 {
		t.Fatal(st)
	}
	var buf bytes.Buffer
	g.s.Metrics().WriteText(&buf)
	if strings.Contains(buf.String(), `status="500"`) {
		t.Fatalf("a 500 was answered:\n%s", buf.String())
	}
}

func TestQuota429(t *testing.T) {
	lim := quota.New(quota.Config{Default: quota.Limit{Rate: 1, Burst: 3}, Exempt: []string{"root"}})
	g := newGW(t, gwOpts{quota: lim})
	root := g.client(t, g.root)
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	var retry string
	for i := 0; i < 5; i++ {
		st, body, h := g.do(t, "GET", "/v1/auth/token/lookup-self", sec.Auth.ClientToken, nil)
		got = append(got, st)
		if st == 429 {
			retry = h.Get("Retry-After")
			if !strings.Contains(errorsOf(body), "rate limit quota exceeded") {
				t.Fatalf("429 body %v", body)
			}
		}
	}
	if fmt.Sprint(got) != "[200 200 200 429 429]" || retry != "1" {
		t.Fatalf("statuses %v, Retry-After %q", got, retry)
	}
	// The root policy is exempt.
	for i := 0; i < 10; i++ {
		if st, _, _ := g.do(t, "GET", "/v1/auth/token/lookup-self", g.root, nil); st != 200 {
			t.Fatalf("root limited: %d", st)
		}
	}
}

type brokenFile struct {
	audit.File
	fail *bool
}

func (f brokenFile) Write(p []byte) (int, error) {
	if *f.fail {
		return 0, errors.New("disk full")
	}
	return f.File.Write(p)
}

// TestAuditFailClosed: once the audit log cannot be written, requests are
// refused with 500 and never reach the engine; health says so.
func TestAuditFailClosed(t *testing.T) {
	fail := false
	g := newGW(t, gwOpts{auditWrap: func(f audit.File) audit.File { return brokenFile{f, &fail} }})
	root := g.client(t, g.root)
	mustWrite(t, root, "transit/keys/k", nil)
	fail = true
	st, body, _ := g.do(t, "POST", "/v1/transit/keys/k2", g.root, []byte(`{}`))
	if st != 500 || !strings.Contains(errorsOf(body), "audit") {
		t.Fatalf("%d %v", st, body)
	}
	fail = false
	// Still refused (the log failed for good), and the key was never made.
	if st, _, _ := g.do(t, "GET", "/v1/transit/keys/k2", g.root, nil); st != 500 {
		t.Fatalf("after the failure: %d", st)
	}
	if _, err := g.s.mountList()[0].engine.ReadKey(t.Context(), "k2"); err == nil {
		t.Fatal("the refused request created its key")
	}
	if st, body, _ := g.do(t, "GET", "/v1/sys/health", "", nil); st != 500 || body["audit_failed"] != true {
		t.Fatalf("health: %d %v", st, body)
	}
}

func TestGracefulShutdown(t *testing.T) {
	g := newGW(t, gwOpts{noAudit: true})
	done := make(chan error, 1)
	go func() {
		_, err := g.client(t, g.root).Logical().Write("transit/encrypt/k", map[string]any{"plaintext": b64("x")})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := g.s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if _, err := g.client(t, g.root).Logical().Read("sys/health"); err == nil {
		t.Fatal("served after shutdown")
	}
}

func TestLookupNeverKeepsBody(t *testing.T) {
	// decodeBody's results own their memory: mutating the input after
	// decoding changes nothing (fasthttp reuses it after the call).
	body := []byte(`{"plaintext":"aGVsbG8=","reference":"r"}`)
	var v struct {
		Plaintext string `json:"plaintext"`
		Reference string `json:"reference"`
	}
	if err := decodeBody(body, &v); err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'x'
	}
	if v.Plaintext != "aGVsbG8=" || v.Reference != "r" {
		t.Fatalf("decoded values alias the body: %+v", v)
	}
	_ = json.Valid
}

// TestReadTimeout: a client that sends half a request is cut off after
// ReadTimeout, and the server keeps serving others.
func TestReadTimeout(t *testing.T) {
	g := newGW(t, gwOpts{noAudit: true, configure: func(c *Config) { c.ReadTimeout = 200 * time.Millisecond }})
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("POST /v1/transit/encrypt/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"plain"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	buf := make([]byte, 512)
	n, _ := conn.Read(buf) // a 408 or a close
	if time.Since(start) > 3*time.Second {
		t.Fatal("a half-sent request held its connection past ReadTimeout")
	}
	if !strings.Contains(string(buf[:n]), "408") {
		t.Fatalf("want a 408, got %q", buf[:n])
	}
	if st, _, _ := g.do(t, "GET", "/v1/sys/health", "", nil); st != 200 {
		t.Fatalf("health after a slow client: %d", st)
	}
}
