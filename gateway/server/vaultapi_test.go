package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/gateway/token/p11mod"
)

func mustWrite(t *testing.T, c *vault.Client, path string, data map[string]any) *vault.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func str(t *testing.T, s *vault.Secret, k string) string {
	t.Helper()
	if s == nil || s.Data == nil {
		t.Fatalf("no data (want %s)", k)
	}
	v, ok := s.Data[k].(string)
	if !ok {
		t.Fatalf("data[%s] = %#v", k, s.Data[k])
	}
	return v
}

// TestVaultAPITransit drives every transit operation through
// github.com/hashicorp/vault/api, as a Vault user would.
func TestVaultAPITransit(t *testing.T) { transitScenario(t, newGW(t, gwOpts{})) }

// TestVaultAPISoftHSM: the same scenario with SoftHSMv2 as the token
// behind the gateway, through crypto11 (gateway/token/p11mod) and
// gateway/pool.
func TestVaultAPISoftHSM(t *testing.T) {
	mod := gwtest.SoftHSM(t, "gw-soft")
	transitScenario(t, newGW(t, gwOpts{token: func(t testing.TB) token.Token {
		tok, err := p11mod.Open(p11mod.Config{Path: mod, Label: "gw-soft", PIN: []byte(gwtest.UserPIN)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}}))
}

func transitScenario(t *testing.T, g *testGW) {
	c := g.client(t, g.root)
	l := c.Logical()

	mustWrite(t, c, "transit/keys/k", map[string]any{"type": "aes256-gcm96"})
	pt := b64("the quick brown fox")
	ct1 := str(t, mustWrite(t, c, "transit/encrypt/k", map[string]any{"plaintext": pt}), "ciphertext")
	if !strings.HasPrefix(ct1, "vault:v1:") {
		t.Fatalf("ciphertext %q", ct1)
	}
	if got := str(t, mustWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": ct1}), "plaintext"); got != pt {
		t.Fatalf("decrypt: %q", got)
	}
	// Rotate: old ciphertexts still decrypt; rewrap moves them to v2.
	mustWrite(t, c, "transit/keys/k/rotate", nil)
	ct2 := str(t, mustWrite(t, c, "transit/encrypt/k", map[string]any{"plaintext": pt}), "ciphertext")
	if !strings.HasPrefix(ct2, "vault:v2:") {
		t.Fatalf("after rotate: %q", ct2)
	}
	if got := str(t, mustWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": ct1}), "plaintext"); got != pt {
		t.Fatal("v1 ciphertext no longer decrypts after rotate")
	}
	rw := str(t, mustWrite(t, c, "transit/rewrap/k", map[string]any{"ciphertext": ct1}), "ciphertext")
	if !strings.HasPrefix(rw, "vault:v2:") {
		t.Fatalf("rewrap: %q", rw)
	}
	// min_decryption_version past v1: v1 refused, v2 fine.
	mustWrite(t, c, "transit/keys/k/config", map[string]any{"min_decryption_version": 2})
	if _, err := l.Write("transit/decrypt/k", map[string]any{"ciphertext": ct1}); statusOf(err) != 400 {
		t.Fatalf("v1 after min_decryption_version 2: %v", err)
	}
	if got := str(t, mustWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": rw}), "plaintext"); got != pt {
		t.Fatal("rewrapped ciphertext does not decrypt")
	}
	// Read and list.
	rk, err := l.Read("transit/keys/k")
	if err != nil || rk == nil || rk.Data["latest_version"] != json.Number("2") && rk.Data["latest_version"] != float64(2) {
		t.Fatalf("read key: %v %#v", err, rk)
	}
	ls, err := l.List("transit/keys")
	if err != nil || ls == nil || fmt.Sprint(ls.Data["keys"]) != "[k]" {
		t.Fatalf("list: %v %#v", err, ls)
	}

	// Data keys.
	dk := mustWrite(t, c, "transit/datakey/plaintext/k", nil)
	dkPT, dkCT := str(t, dk, "plaintext"), str(t, dk, "ciphertext")
	if got := str(t, mustWrite(t, c, "transit/decrypt/k", map[string]any{"ciphertext": dkCT}), "plaintext"); got != dkPT {
		t.Fatal("data key does not decrypt to its plaintext")
	}
	if w := mustWrite(t, c, "transit/datakey/wrapped/k", nil); w.Data["plaintext"] != nil {
		t.Fatal("wrapped data key returned its plaintext")
	}

	// Sign and verify (ECDSA P-256), HMAC and verify.
	mustWrite(t, c, "transit/keys/sig", map[string]any{"type": "ecdsa-p256"})
	in := b64("message")
	sig := str(t, mustWrite(t, c, "transit/sign/sig", map[string]any{"input": in}), "signature")
	if v := mustWrite(t, c, "transit/verify/sig", map[string]any{"input": in, "signature": sig}); v.Data["valid"] != true {
		t.Fatal("signature does not verify")
	}
	if v := mustWrite(t, c, "transit/verify/sig/sha2-256", map[string]any{"input": b64("other"), "signature": sig}); v.Data["valid"] != false {
		t.Fatal("signature verifies another message")
	}
	mac := str(t, mustWrite(t, c, "transit/hmac/k/sha2-256", map[string]any{"input": in}), "hmac")
	if v := mustWrite(t, c, "transit/verify/k", map[string]any{"input": in, "hmac": mac}); v.Data["valid"] != true {
		t.Fatal("hmac does not verify")
	}

	// Batch, with one bad item: 400, every item answered, the bad one with its error.
	batch := []any{
		map[string]any{"plaintext": b64("one"), "reference": "a"},
		map[string]any{"plaintext": "%%%not base64", "reference": "b"},
		map[string]any{"plaintext": b64("three"), "reference": "c"},
	}
	_, err = l.Write("transit/encrypt/k", map[string]any{"batch_input": batch})
	if statusOf(err) != 400 {
		t.Fatalf("batch with a bad item: %v", err)
	}
	st, body, _ := g.do(t, "POST", "/v1/transit/encrypt/k", g.root, mustJSON(map[string]any{"batch_input": batch, "partial_failure_response_code": 207}))
	if st != 207 {
		t.Fatalf("partial_failure_response_code: %d %v", st, body)
	}
	res := body["data"].(map[string]any)["batch_results"].([]any)
	if len(res) != 3 || res[1].(map[string]any)["error"] == nil || res[0].(map[string]any)["reference"] != "a" || res[2].(map[string]any)["ciphertext"] == nil {
		t.Fatalf("batch results %v", res)
	}
	good := mustWrite(t, c, "transit/encrypt/k", map[string]any{"batch_input": []any{batch[0], batch[2]}})
	if n := len(good.Data["batch_results"].([]any)); n != 2 {
		t.Fatalf("%d results", n)
	}
	// Random.
	if r := mustWrite(t, c, "transit/random/16", nil); len(str(t, r, "random_bytes")) != 24 {
		t.Fatalf("random: %v", r.Data)
	}
}

// TestPolicyEncryptOnly: an encrypt-only token is refused decrypt with
// 403, no token gets 403, and the audit log holds both, without plaintext.
func TestPolicyEncryptOnly(t *testing.T) {
	g := newGW(t, gwOpts{})
	root := g.client(t, g.root)
	mustWrite(t, root, "transit/keys/k", nil)
	if err := root.Sys().PutPolicy("enc-only", `path "transit/encrypt/k" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	if p, err := root.Sys().GetPolicy("enc-only"); err != nil || !strings.Contains(p, "transit/encrypt/k") {
		t.Fatalf("get policy: %q %v", p, err)
	}
	if ps, err := root.Sys().ListPolicies(); err != nil || !strings.Contains(strings.Join(ps, ","), "enc-only") {
		t.Fatalf("list policies: %v %v", ps, err)
	}
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"enc-only"}, TTL: "1h", DisplayName: "app"})
	if err != nil {
		t.Fatal(err)
	}
	enc := g.client(t, sec.Auth.ClientToken)
	secret := "top secret plaintext 42"
	ct := str(t, mustWrite(t, enc, "transit/encrypt/k", map[string]any{"plaintext": b64(secret)}), "ciphertext")
	_, err = enc.Logical().Write("transit/decrypt/k", map[string]any{"ciphertext": ct})
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 || !strings.Contains(strings.Join(re.Errors, ""), "permission denied") {
		t.Fatalf("decrypt with an encrypt-only token: %v", err)
	}
	// Encrypting with a key it may not create (missing key, no create capability): 403.
	if _, err := enc.Logical().Write("transit/encrypt/other", map[string]any{"plaintext": b64("x")}); statusOf(err) != 403 {
		t.Fatalf("upsert without create: %v", err)
	}
	// The token looks itself up (default policy).
	self, err := enc.Auth().Token().LookupSelf()
	if err != nil || fmt.Sprint(self.Data["policies"]) != "[default enc-only]" {
		t.Fatalf("lookup-self: %v %v", err, self)
	}
	// No token at all.
	none := g.client(t, "")
	if _, err := none.Logical().Write("transit/decrypt/k", map[string]any{"ciphertext": ct}); statusOf(err) != 403 {
		t.Fatalf("no token: %v", err)
	}
	st, _, _ := g.do(t, "POST", "/v1/transit/encrypt/k", "", mustJSON(map[string]any{"plaintext": b64("x")}))
	if st != 403 {
		t.Fatalf("no token raw: %d", st)
	}
	// Authorization: Bearer works like X-Vault-Token.
	for tok, want := range map[string]int{sec.Auth.ClientToken: 200, "hvs.not-a-token": 403} {
		req, _ := http.NewRequest("POST", g.addr+"/v1/transit/encrypt/k", strings.NewReader(`{"plaintext":"eA=="}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("bearer: %d, want %d", resp.StatusCode, want)
		}
	}

	log := readAudit(t, g)
	if bytes.Contains(log, []byte(secret)) || bytes.Contains(log, []byte(b64(secret))) || bytes.Contains(log, []byte(ct)) {
		t.Fatal("audit log holds the plaintext or ciphertext")
	}
	if bytes.Contains(log, []byte(sec.Auth.ClientToken)) || bytes.Contains(log, []byte(g.root)) {
		t.Fatal("audit log holds a token")
	}
	var denied, anon int
	for _, line := range bytes.Split(bytes.TrimSpace(log), []byte("\n")) {
		var r struct {
			Type   string `json:"type"`
			Path   string `json:"path"`
			Status int    `json:"status"`
			Auth   *struct {
				DisplayName string `json:"display_name"`
			} `json:"auth"`
		}
		json.Unmarshal(line, &r)
		if r.Type == "response" && r.Path == "transit/decrypt/k" && r.Status == 403 {
			if r.Auth != nil && r.Auth.DisplayName == "token-app" {
				denied++
			} else if r.Auth == nil {
				anon++
			}
		}
	}
	if denied != 1 || anon != 1 {
		t.Fatalf("audit: %d denied decrypts by the app token, %d without a token; want 1 and 1\n%s", denied, anon, log)
	}
	if _, err := audit.Verify(bytes.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	// The audit HMAC lets an operator find the request by a value they know.
	if !bytes.Contains(log, []byte(audit.HashValue(auditKey, b64(secret)))) {
		t.Fatal("the plaintext's HMAC is not in the log")
	}
}

func TestTokensAndMounts(t *testing.T) {
	g := newGW(t, gwOpts{})
	root := g.client(t, g.root)
	// A token with 2 uses.
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}, NumUses: 2})
	if err != nil {
		t.Fatal(err)
	}
	c := g.client(t, sec.Auth.ClientToken)
	for i := 0; i < 2; i++ {
		if _, err := c.Auth().Token().LookupSelf(); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != 403 {
		t.Fatalf("third use: %v", err)
	}
	// Revoke-self.
	sec, _ = root.Auth().Token().Create(&vault.TokenCreateRequest{})
	c = g.client(t, sec.Auth.ClientToken)
	if err := c.Auth().Token().RevokeSelf(""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != 403 {
		t.Fatalf("after revoke-self: %v", err)
	}
	// Lookup another token (root).
	sec, _ = root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"p1"}})
	if s, err := root.Auth().Token().Lookup(sec.Auth.ClientToken); err != nil || s.Data["accessor"] != sec.Auth.Accessor {
		t.Fatalf("lookup: %v %v", err, s)
	}
	// A non-root token cannot mint a wider one.
	c = g.client(t, sec.Auth.ClientToken)
	if _, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}}); statusOf(err) != 403 {
		t.Fatalf("non-root created root: %v", err)
	}

	// Mounts: enable another transit mount, use it, list, disable.
	if err := root.Sys().Mount("team/crypto", &vault.MountInput{Type: "transit", Description: "team"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().Mount("team/crypto", &vault.MountInput{Type: "transit"}); statusOf(err) != 400 {
		t.Fatalf("mounting twice: %v", err)
	}
	if err := root.Sys().Mount("kv2", &vault.MountInput{Type: "kv"}); statusOf(err) != 400 {
		t.Fatalf("mounting kv: %v", err)
	}
	ct := str(t, mustWrite(t, root, "team/crypto/encrypt/t", map[string]any{"plaintext": b64("x")}), "ciphertext")
	if _, err := root.Logical().Write("transit/decrypt/t", map[string]any{"ciphertext": ct}); statusOf(err)/100 != 4 {
		t.Fatalf("a key of another mount: %v", err)
	}
	ms, err := root.Sys().ListMounts()
	if err != nil || ms["team/crypto/"] == nil || ms["transit/"] == nil || ms["team/crypto/"].Type != "transit" {
		t.Fatalf("list mounts: %v %v", err, ms)
	}
	if err := root.Sys().Unmount("team/crypto"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("team/crypto/encrypt/t", map[string]any{"plaintext": b64("x")}); statusOf(err) != 404 {
		t.Fatalf("after unmount: %v", err)
	}
	// Health.
	h, err := root.Sys().Health()
	if err != nil || !h.Initialized || h.Sealed {
		t.Fatalf("health: %v %+v", err, h)
	}
	// Metrics count what happened.
	st, _, _ := g.do(t, "GET", "/v1/sys/metrics", g.root, nil)
	if st != 200 {
		t.Fatal(st)
	}
	r, _ := root.Logical().ReadRawWithContext(context.Background(), "sys/metrics")
	defer r.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(r.Body)
	if !strings.Contains(buf.String(), `gohsm_gateway_requests_total{operation="encrypt",status="200"} 1`) {
		t.Fatalf("metrics:\n%s", buf.String())
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
