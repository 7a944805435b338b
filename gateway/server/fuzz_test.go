package server

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/gohsm/gohsm/gateway/transit"
)

// Fuzz targets for every request body decoder (decodeBody into each
// route's request type), and for the whole gate (FuzzGate: any method,
// any route, any body through the real handler and engine).

var seedBodies = []string{
	``, `null`, `{}`, `[]`, `"x"`, `{"plaintext":"aGk="}`, `{"plaintext":"aGk=","context":"Y3R4","key_version":"2"}`,
	`{"batch_input":[{"plaintext":"aGk=","reference":"a"},{"plaintext":5}]}`, `{"ciphertext":"vault:v1:AAAA"}`,
	`{"input":"aGk=","signature":"vault:v1:MEUC","hash_algorithm":"sha2-512","prehashed":"true"}`,
	`{"type":"ecdsa-p256","exportable":true,"auto_rotate_period":"1h"}`, `{"min_decryption_version":"x"}`,
	`{"policy":"path \"a\" { capabilities = [\"read\"] }"}`, `{"policies":["a"],"ttl":"1h","num_uses":3,"meta":{"k":"v"}}`,
	`{"type":"transit","description":"d"}`, `{"bytes":"32","format":"hex"}`, `{"a":1} trailing`, `{"plaintext":"\u0000"}`,
	`{"batch_input":null}`, `{` + strings.Repeat(`"a":{`, 50), `{"ttl":-5}`, `{"num_uses":1e400}`,
}

func fuzzDecoder[T any](f *testing.F) {
	for _, s := range seedBodies {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v T
		err := decodeBody(body, &v)
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) || he.status != 400 || !strings.HasPrefix(he.msg, "failed to parse JSON input") {
			t.Fatalf("decode error %v is not a 400 parse error", err)
		}
	})
}

func FuzzCreateKeyBody(f *testing.F)   { fuzzDecoder[transit.CreateKeyRequest](f) }
func FuzzConfigKeyBody(f *testing.F)   { fuzzDecoder[transit.ConfigKeyRequest](f) }
func FuzzTrimKeyBody(f *testing.F)     { fuzzDecoder[transit.TrimKeyRequest](f) }
func FuzzEncryptBody(f *testing.F)     { fuzzDecoder[transit.EncryptRequest](f) }
func FuzzDecryptBody(f *testing.F)     { fuzzDecoder[transit.DecryptRequest](f) }
func FuzzRewrapBody(f *testing.F)      { fuzzDecoder[transit.RewrapRequest](f) }
func FuzzDataKeyBody(f *testing.F)     { fuzzDecoder[transit.DataKeyRequest](f) }
func FuzzSignBody(f *testing.F)        { fuzzDecoder[transit.SignRequest](f) }
func FuzzVerifyBody(f *testing.F)      { fuzzDecoder[transit.VerifyRequest](f) }
func FuzzHMACBody(f *testing.F)        { fuzzDecoder[transit.HMACRequest](f) }
func FuzzRandomBody(f *testing.F)      { fuzzDecoder[transit.RandomRequest](f) }
func FuzzPolicyBody(f *testing.F)      { fuzzDecoder[oldPolicyRequest](f) }
func FuzzTokenCreateBody(f *testing.F) { fuzzDecoder[tokenCreateRequest](f) }
func FuzzTokenBody(f *testing.F)       { fuzzDecoder[tokenRequest](f) }
func FuzzAccessorBody(f *testing.F)    { fuzzDecoder[accessorRequest](f) }
func FuzzMountBody(f *testing.F)       { fuzzDecoder[mountRequest](f) }
func FuzzCapabilitiesBody(f *testing.F) {
	fuzzDecoder[capabilitiesRequest](f)
}

// TestEveryRequestTypeIsFuzzed: a route whose request type has no fuzz
// target above fails here.
func TestEveryRequestTypeIsFuzzed(t *testing.T) {
	fuzzed := map[string]bool{"CreateKeyRequest": true, "ConfigKeyRequest": true, "TrimKeyRequest": true, "RotateKeyRequest": true,
		"EncryptRequest": true, "DecryptRequest": true, "RewrapRequest": true, "DataKeyRequest": true, "SignRequest": true,
		"VerifyRequest": true, "HMACRequest": true, "RandomRequest": true, "policyRequest": true, "oldPolicyRequest": true,
		"tokenCreateRequest": true, "tokenRequest": true, "accessorRequest": true, "mountRequest": true, "capabilitiesRequest": true}
	g := &Server{}
	for _, r := range g.routes() {
		if r.req == nil {
			continue
		}
		if n := schemaNameOf(r.req); !fuzzed[n] {
			t.Errorf("route %s %s: request type %s has no fuzz target", r.method, r.pattern, n)
		}
	}
}

func schemaNameOf(v any) string {
	return strings.TrimPrefix(strings.TrimPrefix(typeName(v), "transit."), "server.")
}

// FuzzGate sends any body to any route through the real gate, token
// store, policies, audit log and engine: the answer is a well-formed
// status, never a panic, and a 5xx only for the engine's own failures.
func FuzzGate(f *testing.F) {
	for i, s := range seedBodies {
		f.Add(uint8(i), []byte(s))
	}
	g := newGW(f, gwOpts{})
	routes := g.s.table.all
	fill := strings.NewReplacer(":name", "k", ":hash_algorithm", "sha2-256", ":algorithm", "sha2-256",
		":bytes", "8", ":source", "platform", "*path", "fz")
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		r := routes[int(which)%len(routes)]
		p := fill.Replace(r.pattern)
		if r.mounted {
			p = "transit/" + p
		}
		if r.op == "sys.mounts.disable" {
			return // would take transit/ away from the next inputs
		}
		var req fasthttp.Request
		method := r.method
		if method == mLIST {
			method = "LIST"
		}
		req.Header.SetMethod(method)
		req.SetRequestURI("/v1/" + p)
		req.Header.Set("X-Vault-Token", g.root)
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, remote, nil)
		g.s.handle(&ctx)
		st := ctx.Response.StatusCode()
		if st < 200 || st > 599 {
			t.Fatalf("%s %s: status %d", method, p, st)
		}
		if st >= 500 && !strings.Contains(string(ctx.Response.Body()), "token failure") {
			t.Fatalf("%s %s %q: %d %s", method, p, body, st, ctx.Response.Body())
		}
	})
}

func typeName(v any) string { return reflect.TypeOf(v).String() }
