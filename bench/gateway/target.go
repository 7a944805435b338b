package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Target is one Transit server.
type Target struct {
	Name  string // "gohsm", "openbao"
	Title string // for the report: version, backend
	URL   string // http://127.0.0.1:8200
	Token string // X-Vault-Token
	Mount string // the transit mount, "transit"
	PID   int    // the server process, for its CPU; 0: not measured
	// AlsoPIDs are processes whose CPU counts as the server's too: the
	// appliance behind a gateway that uses it (StartGohsmRemote).
	AlsoPIDs []int

	addr   string
	client *fasthttp.HostClient
}

// Keys the benchmark makes on each target.
const (
	aesKey = "gohsm-bench-aes"
	ecKey  = "gohsm-bench-ecdsa"
)

func (t *Target) init(conns int) error {
	u, err := url.Parse(t.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("target %s: URL %q: want http://host:port", t.Name, t.URL)
	}
	if t.Mount == "" {
		t.Mount = "transit"
	}
	t.addr = u.Host
	t.client = &fasthttp.HostClient{
		Addr:                          t.addr,
		MaxConns:                      conns,
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  30 * time.Second,
		MaxIdleConnDuration:           time.Minute,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
	}
	return nil
}

// call makes one request and returns status and a copy of the body.
func (t *Target) call(method, path string, body []byte) (int, []byte, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://" + t.addr + path)
	req.Header.Set("X-Vault-Token", t.Token)
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	if err := t.client.DoTimeout(req, resp, 30*time.Second); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// Setup makes sure the target answers, has a transit mount, and has the
// benchmark's keys (creating a key that exists is a no-op in Transit).
func (t *Target) Setup(conns int) error {
	if err := t.init(conns); err != nil {
		return err
	}
	st, body, err := t.call("POST", "/v1/"+t.Mount+"/keys/"+aesKey, []byte(`{"type":"aes256-gcm96"}`))
	if err == nil && st == 404 || st == 400 && strings.Contains(string(body), "no handler") {
		// No transit mount yet (a plain `bao server -dev`): enable one.
		st, body, err = t.call("POST", "/v1/sys/mounts/"+t.Mount, []byte(`{"type":"transit"}`))
		if err != nil || st/100 != 2 {
			return fmt.Errorf("target %s: enable transit: %d %s %v", t.Name, st, body, err)
		}
		st, body, err = t.call("POST", "/v1/"+t.Mount+"/keys/"+aesKey, []byte(`{"type":"aes256-gcm96"}`))
	}
	if err != nil || st/100 != 2 {
		return fmt.Errorf("target %s: create %s: %d %s %v", t.Name, aesKey, st, body, err)
	}
	st, body, err = t.call("POST", "/v1/"+t.Mount+"/keys/"+ecKey, []byte(`{"type":"ecdsa-p256"}`))
	if err != nil || st/100 != 2 {
		return fmt.Errorf("target %s: create %s: %d %s %v", t.Name, ecKey, st, body, err)
	}
	return nil
}

// WaitReady waits until the server answers sys/health.
func WaitReady(rawURL string, timeout time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		st, _, err := fasthttp.GetTimeout(nil, "http://"+u.Host+"/v1/sys/health", time.Second)
		if err == nil && st < 500 {
			return nil
		}
		last = fmt.Errorf("status %d, %v", st, err)
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", rawURL, timeout, last)
}

// check decodes a response fully: status 200 and, per item, the field
// the operation returns, with no item error.
func check(op *Op, batch int, status int, body []byte) error {
	if status != 200 {
		return fmt.Errorf("status %d: %.300s", status, body)
	}
	var r struct {
		Data struct {
			Ciphertext   string `json:"ciphertext"`
			Signature    string `json:"signature"`
			BatchResults []struct {
				Ciphertext string `json:"ciphertext"`
				Signature  string `json:"signature"`
				Error      string `json:"error"`
			} `json:"batch_results"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("response: %v: %.300s", err, body)
	}
	pick := func(c, s string) string {
		if op.Field == "ciphertext" {
			return c
		}
		return s
	}
	if batch == 1 {
		if !strings.HasPrefix(pick(r.Data.Ciphertext, r.Data.Signature), "vault:v1:") {
			return fmt.Errorf("no %s in %.300s", op.Field, body)
		}
		return nil
	}
	if len(r.Data.BatchResults) != batch {
		return fmt.Errorf("%d batch results for %d items", len(r.Data.BatchResults), batch)
	}
	for i, it := range r.Data.BatchResults {
		if it.Error != "" || !strings.HasPrefix(pick(it.Ciphertext, it.Signature), "vault:v1:") {
			return fmt.Errorf("item %d: %q", i, it.Error)
		}
	}
	return nil
}

var errResponse = errors.New("bad response")
