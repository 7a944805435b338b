package gateway

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// The HTTP floor: what serving a Transit request costs on this machine
// before any of the work a Transit server does. FloorName is a fasthttp
// server (the gateway's HTTP library) whose handler checks the token
// header and answers a fixed body shaped like Transit's, one result per
// item: no JSON decoding, no key, no cryptography, no audit. Its server
// CPU per request, measured by the same load generator in the same run,
// is the part of every server's figure that no Transit implementation on
// this machine can avoid; the report sets the CPU targets against it.

// FloorName is the floor's target name.
const FloorName = "http-floor"

const floorToken = "gohsm-bench-floor"

// Fixed results of the sizes a real server sends: a 64-byte plaintext's
// AES-GCM ciphertext (nonce, data, tag: 92 bytes) and a P-256 signature
// (DER, 71 bytes), base64.
var (
	floorCiphertext = "vault:v1:" + strings.Repeat("A", 124)
	floorSignature  = "vault:v1:" + strings.Repeat("B", 96)
)

// floorBody answers a request body for the operation at path: one result
// per item (an item is a "plaintext" or an "input" member).
func floorBody(path, body []byte) []byte {
	field, value, marker := "ciphertext", floorCiphertext, []byte(`"plaintext"`)
	if bytes.Contains(path, []byte("/sign/")) {
		field, value, marker = "signature", floorSignature, []byte(`"input"`)
	}
	item := `{"` + field + `":"` + value + `","key_version":1}`
	var b bytes.Buffer
	b.WriteString(`{"request_id":"00000000-0000-4000-8000-000000000000","lease_id":"","renewable":false,"lease_duration":0,"data":`)
	if !bytes.Contains(body, []byte(`"batch_input"`)) {
		b.WriteString(item)
	} else {
		b.WriteString(`{"batch_results":[`)
		for i := range bytes.Count(body, marker) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(item)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`,"wrap_info":null,"warnings":null,"auth":null}`)
	return b.Bytes()
}

func floorHandler(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case bytes.Equal(path, []byte("/v1/sys/health")):
		ctx.SetBodyString(`{"initialized":true,"sealed":false}`)
		return
	case subtle.ConstantTimeCompare(ctx.Request.Header.Peek("X-Vault-Token"), []byte(floorToken)) != 1:
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		ctx.SetBodyString(`{"errors":["permission denied"]}`)
		return
	case bytes.Contains(path, []byte("/keys/")), bytes.Contains(path, []byte("/sys/mounts/")):
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(floorBody(path, ctx.PostBody()))
}

// FloorMain serves the floor on addr until killed: the benchmark runs it
// as a process of its own (StartFloor), so that its CPU is its own.
func FloorMain(addr string) error {
	s := &fasthttp.Server{Handler: floorHandler, Name: "gohsm-bench http-floor"}
	return s.ListenAndServe(addr)
}

// FloorArg is the argument with which a benchmark binary runs FloorMain.
const FloorArg = "-http-floor-serve"

// StartFloor runs self (a binary whose main calls FloorMain when its first
// argument is FloorArg) as the floor server.
func StartFloor(self string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd, log, err := start(self, []string{FloorArg, addr}, nil)
	if err != nil {
		return nil, err
	}
	s := newServer(cmd, log, "")
	s.Target = &Target{Name: FloorName, URL: "http://" + addr, Token: floorToken, Mount: "transit", PID: cmd.Process.Pid,
		Title: "not a Transit server: fasthttp alone, a handler that checks the token and answers a fixed Transit-shaped body " +
			"(one result per item; no JSON decoding, no cryptography, no audit), to show what HTTP costs on this machine"}
	if err := WaitReady(s.Target.URL, 30*time.Second); err != nil {
		return nil, fmt.Errorf("%s: %v; output:\n%s", FloorName, err, s.output())
	}
	return s, nil
}
