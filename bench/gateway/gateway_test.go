package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fakeTransit answers the calls the benchmark makes as Vault does (shape
// only: no cryptography), so the generator's request building, response
// checks and report are tested without a server binary. Nothing here is
// timed: the test asserts what was sent and counted, not how fast.
func fakeTransit(t *testing.T, failItem bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if string(c.Request.Header.Peek("X-Vault-Token")) != "tok" {
			c.SetStatusCode(403)
			return
		}
		path := string(c.Path())
		switch {
		case path == "/v1/sys/health":
			c.SetBodyString(`{"initialized":true}`)
		case strings.HasPrefix(path, "/v1/transit/keys/"):
			c.SetStatusCode(204)
		case strings.HasPrefix(path, "/v1/transit/encrypt/"), strings.HasPrefix(path, "/v1/transit/sign/"):
			field := "ciphertext"
			if strings.Contains(path, "/sign/") {
				field = "signature"
			}
			var req struct {
				Plaintext, Input string
				BatchInput       []map[string]string `json:"batch_input"`
			}
			if err := json.Unmarshal(c.PostBody(), &req); err != nil {
				c.SetStatusCode(400)
				return
			}
			if req.BatchInput == nil {
				if req.Plaintext == "" && req.Input == "" {
					c.SetStatusCode(400)
					return
				}
				fmt.Fprintf(c, `{"data":{%q:"vault:v1:abc"}}`, field)
				return
			}
			var b bytes.Buffer
			b.WriteString(`{"data":{"batch_results":[`)
			for i := range req.BatchInput {
				if i > 0 {
					b.WriteByte(',')
				}
				if failItem && i == 3 {
					b.WriteString(`{"error":"bad item"}`)
					continue
				}
				fmt.Fprintf(&b, `{%q:"vault:v1:abc"}`, field)
			}
			b.WriteString(`]}}`)
			c.SetBody(b.Bytes())
		default:
			c.SetStatusCode(404)
		}
	}}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String()
}

func TestRunAgainstFake(t *testing.T) {
	url := fakeTransit(t, false)
	tg := &Target{Name: "gohsm", Title: "fake", URL: url, Token: "tok"}
	cfg := Config{Conns: 4, Duration: 100 * time.Millisecond, Warmup: 20 * time.Millisecond, Batches: []int{1, 10}}
	var log bytes.Buffer
	rep, err := Run([]*Target{tg}, cfg, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 4 {
		t.Fatalf("%d cells", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Requests == 0 || r.Failed != 0 || r.HalfFailed != 0 || r.ItemsPerSec != r.ReqPerSec*float64(r.Batch) {
			t.Fatalf("cell %+v", r)
		}
		if r.HalfRate == 0 || r.HalfP99 == 0 {
			t.Fatalf("no half-peak run: %+v", r)
		}
	}
	var md bytes.Buffer
	rep.Markdown(&md)
	for _, want := range []string{"| gohsm | encrypt 64 B", "| sign ECDSA P-256", "p99 at half peak", "issue's OpenBao 2.6.2 figures"} {
		if !strings.Contains(md.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, md.String())
		}
	}
}

// TestBadItemsFail: a batch with an item error is a failed request, and
// the first response's full check refuses to start the cell.
func TestBadItemsFail(t *testing.T) {
	url := fakeTransit(t, true)
	tg := &Target{Name: "x", URL: url, Token: "tok"}
	if err := tg.Setup(2); err != nil {
		t.Fatal(err)
	}
	_, err := Measure(tg, Ops[0], 10, Config{Conns: 2, Duration: 50 * time.Millisecond, Warmup: 10 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "bad item") {
		t.Fatalf("bad item: %v", err)
	}
	// And the quick check counts results.
	r := newRequester(tg, Ops[0], Ops[0].body(10), 10)
	defer r.release()
	if err := r.do(); err == nil {
		t.Fatal("9 results for 10 items accepted")
	}
	// A wrong token is a clear setup error.
	bad := &Target{Name: "y", URL: url, Token: "nope"}
	if err := bad.Setup(1); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("wrong token: %v", err)
	}
}
