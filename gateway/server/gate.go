package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/auth"
	"github.com/gohsm/gohsm/gateway/policy"
	"github.com/gohsm/gohsm/gateway/quota"
	"github.com/gohsm/gohsm/gateway/transit"
)

// call is one request as the handlers see it. body is fasthttp's memory:
// valid during the call only, and never kept (decode copies).
type call struct {
	s      *Server
	ctx    *fasthttp.RequestCtx
	id     string
	method string // GET POST DELETE LIST
	path   string // the Vault path, without /v1/
	body   []byte
	ps     [4]param
	np     int
	mount  *mount
	tok    *auth.Token
	secret string // the token sent; never logged
	acl    *policy.ACL
	remote string      // the client's address, for the audit records
	aa     *audit.Auth // who asked, for both audit records (its HMACs made once)
	aaDone bool
	hot    any  // the response data when appendData wrote it (auditdata.go)
	queued bool // its audit request record is queued, not yet written (audit.Entry.Deferred)
}

// param returns the path parameter name ("" if absent).
func (c *call) param(name string) string {
	for i := 0; i < c.np; i++ {
		if c.ps[i].name == name {
			return c.ps[i].value
		}
	}
	return ""
}

// result is a handler's answer.
type result struct {
	status int // 0: 200, or 204 when there is no data
	data   any // the envelope's data
	auth   any // the envelope's auth (token create)
	raw    []byte
	ctype  string // with raw
	items  int    // batch items (metrics); 0: 1
}

func ok(data any) (*result, error) { return &result{data: data}, nil }

func noContent() (*result, error) { return &result{status: http.StatusNoContent}, nil }

// httpError is a failure the gate answers with status and Vault's errors array.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

const msgDenied = "permission denied"

// handle is the one gate every request passes (doc.go).
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	c := &call{s: s, ctx: ctx}
	raw := ctx.Path()
	if !bytes.HasPrefix(raw, []byte("/v1/")) {
		s.writeError(ctx, http.StatusNotFound, "no handler for route: paths start with /v1/")
		s.cfg.Metrics.Observe("unknown", http.StatusNotFound, time.Since(start))
		return
	}
	c.path = string(raw[4:])
	switch m := string(ctx.Method()); m {
	case "PUT", "POST":
		c.method = mPOST
	case "GET", "HEAD":
		c.method = mGET
		if v := ctx.QueryArgs().Peek("list"); len(v) > 0 {
			if b, err := strconv.ParseBool(string(v)); err == nil && b {
				c.method = mLIST
			}
		}
	case "LIST", "DELETE":
		c.method = m
	default:
		c.method = m
	}
	rt, m, ps, np, found := s.lookup(c.method, c.path)
	c.mount, c.ps, c.np = m, ps, np
	c.body = ctx.PostBody()

	if rt != nil && rt.cap == unauthenticated {
		// Health checks and the API document: not audited (a load
		// balancer's probes would drown the log), no token, no quota.
		res, err := rt.h(c)
		status := s.respond(c, rt, res, err, nil)
		rt.metric.Done(status, time.Since(start))
		return
	}

	// Authenticate: a token, else a verified client certificate.
	c.secret = tokenFrom(ctx)
	if c.secret != "" {
		if t, err := s.cfg.Tokens.Authenticate(c.secret); err == nil {
			c.tok = t
		} else if !errors.Is(err, auth.ErrNotFound) {
			s.cfg.Logf("token store: %v", err)
		}
	} else if cs := ctx.TLSConnectionState(); cs != nil && len(cs.PeerCertificates) > 0 {
		if t, err := s.cfg.Tokens.ForCertificate(cs.PeerCertificates[0]); err == nil {
			c.tok = t
		}
	}
	capability := methodCap(c.method)
	op := "unknown"
	if rt != nil {
		capability, op = rt.cap, rt.op
	}
	denied := c.tok == nil
	if !denied {
		acl, err := s.cfg.Policies.ACL(c.tok.Policies)
		if err != nil {
			s.cfg.Logf("policies: %v", err)
			denied = true
		} else {
			c.acl = acl
			denied = !acl.Allowed(c.path, capability)
		}
	}
	c.id = newUUID()
	if !s.auditRequest(c, op, rt != nil && rt.pure) {
		s.writeError(ctx, http.StatusInternalServerError, "audit log unavailable: request refused")
		s.cfg.Metrics.Observe(op, http.StatusInternalServerError, time.Since(start))
		return
	}
	var res *result
	var err error
	switch {
	case denied:
		err = &httpError{http.StatusForbidden, msgDenied}
	case rt == nil && found:
		err = &httpError{http.StatusMethodNotAllowed, "unsupported operation"}
	case rt == nil:
		err = &httpError{http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", c.path)}
	}
	if err == nil && s.cfg.Quota != nil {
		if d := s.cfg.Quota.AllowToken(c.tok.Accessor, c.tok.Policies); !d.OK {
			ctx.Response.Header.Set("Retry-After", quota.RetryAfterHeader(d.RetryAfter))
			s.cfg.Metrics.QuotaRejected()
			err = &httpError{http.StatusTooManyRequests, fmt.Sprintf("request path %q: rate limit quota exceeded", c.path)}
		}
	}
	if err == nil {
		res, err = rt.h(c)
	}
	status := s.respond(c, rt, res, err, func(status int, data []byte, msg string) bool {
		return s.auditResponse(c, op, status, data, msg)
	})
	if rt != nil {
		rt.metric.Done(status, time.Since(start))
		if status < 300 && res != nil {
			rt.metric.Batch(max(res.items, 1))
		}
	} else {
		s.cfg.Metrics.Observe(op, status, time.Since(start))
	}
}

// methodCap is the capability a method needs on a path no route knows.
func methodCap(method string) policy.Capability {
	switch method {
	case mGET:
		return policy.Read
	case mLIST:
		return policy.List
	case mDELETE:
		return policy.Delete
	}
	return policy.Update
}

// tokenFrom reads the token: X-Vault-Token, else Authorization: Bearer.
func tokenFrom(ctx *fasthttp.RequestCtx) string {
	if v := ctx.Request.Header.Peek("X-Vault-Token"); len(v) > 0 {
		return string(v)
	}
	if v := ctx.Request.Header.Peek("Authorization"); len(v) > 7 && strings.EqualFold(string(v[:7]), "bearer ") {
		return strings.TrimSpace(string(v[7:]))
	}
	return ""
}

func (s *Server) auditAuth(c *call) *audit.Auth {
	if !c.aaDone {
		c.aa, c.aaDone = s.newAuditAuth(c), true
		c.remote = c.ctx.RemoteAddr().String()
	}
	return c.aa
}

func (s *Server) newAuditAuth(c *call) *audit.Auth {
	if c.tok == nil {
		if c.secret == "" {
			return nil
		}
		return &audit.Auth{ClientToken: c.secret} // a bad token: recorded HMAC'd
	}
	if c.secret == "" {
		// A certificate identity: no secret, no HMAC of it.
		return &audit.Auth{Accessor: c.tok.Accessor, DisplayName: c.tok.DisplayName, Policies: c.tok.Policies, TokenType: c.tok.Type}
	}
	return s.auditIDs.get(s.cfg.Audit, c.tok, c.secret)
}

// auditRequest writes the request record; false: it could not be written.
func (s *Server) auditRequest(c *call, op string, deferred bool) bool {
	if s.cfg.Audit == nil {
		return true
	}
	a := s.auditAuth(c) // sets c.remote
	e := audit.Entry{Type: audit.TypeRequest, ID: c.id, Operation: opName(c.method), Path: c.path,
		Auth: a, RemoteAddr: c.remote, Body: c.body, Deferred: deferred}
	c.queued = deferred
	if err := s.cfg.Audit.Write(e); err != nil {
		s.cfg.Metrics.AuditFailure(false)
		c.queued = false
		s.cfg.Logf("audit: %v", err)
		return false
	}
	return true
}

func (s *Server) auditResponse(c *call, op string, status int, data []byte, msg string) bool {
	if s.cfg.Audit == nil {
		return true
	}
	a := s.auditAuth(c) // sets c.remote
	e := audit.Entry{Type: audit.TypeResponse, ID: c.id, Operation: opName(c.method), Path: c.path,
		Auth: a, RemoteAddr: c.remote, Body: data, Status: status, Error: msg}
	if c.hot != nil && data != nil {
		e.Data = hotData{c.hot} // Body stays, for when it declines
	}
	if err := s.cfg.Audit.Write(e); err != nil {
		s.cfg.Metrics.AuditFailure(true)
		s.cfg.Logf("audit: %v", err)
		return false
	}
	return true
}

// opName is Vault's logical operation for a method.
func opName(method string) string {
	switch method {
	case mGET:
		return "read"
	case mLIST:
		return "list"
	case mDELETE:
		return "delete"
	}
	return "update"
}

// errorOf maps an error to its status and message.
func (s *Server) errorOf(err error) (int, string) {
	var he *httpError
	var te *transit.Error
	var pe *policy.ParseError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg
	case errors.As(err, &te):
		st := te.Status
		if st < 400 || st > 599 {
			st = http.StatusInternalServerError
		}
		return st, te.Msg
	case errors.As(err, &pe):
		return http.StatusBadRequest, "failed to parse policy: " + pe.Error()
	case errors.Is(err, auth.ErrForbidden):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, auth.ErrInvalid):
		return http.StatusBadRequest, strings.TrimPrefix(err.Error(), auth.ErrInvalid.Error()+": ")
	case errors.Is(err, policy.ErrNotFound):
		return http.StatusNotFound, "policy not found"
	}
	s.cfg.Logf("internal error: %v", err)
	return http.StatusInternalServerError, "internal error: " + err.Error()
}

// respond writes the answer. audit, if not nil, records it first and may
// refuse it (then the client gets a 500). It returns the status sent.
func (s *Server) respond(c *call, rt *route, res *result, err error, auditf func(int, []byte, string) bool) int {
	ctx := c.ctx
	status, msg := 0, ""
	failed := err != nil
	var data []byte
	if failed {
		status, msg = s.errorOf(err)
	} else {
		status = res.status
		if res.raw == nil && (res.data != nil || res.auth != nil) {
			var pooled *[]byte
			data, pooled, err = encodeData(res.data)
			if pooled != nil {
				defer putData(pooled, data)
				if res.auth == nil {
					c.hot = res.data // its audit redaction straight from the struct
				}
			}
			if err != nil {
				status, msg, data, failed = http.StatusInternalServerError, "internal error: encoding the response", nil, true
			}
		}
		if status == 0 {
			status = http.StatusOK
			if res.raw == nil && res.data == nil && res.auth == nil {
				status = http.StatusNoContent
			}
		}
	}
	if auditf != nil {
		auditData := data
		if res != nil && res.auth != nil && err == nil {
			auditData, _ = json.Marshal(map[string]any{"auth": res.auth})
		}
		if !auditf(status, auditData, msg) {
			status, msg = http.StatusInternalServerError, "audit log unavailable: response withheld"
			res, data, failed = nil, nil, true
		}
	}
	if failed {
		s.writeError(ctx, status, msg)
		return status
	}
	ctx.SetStatusCode(status)
	if status == http.StatusNoContent {
		return status
	}
	if res.raw != nil {
		ctx.SetContentType(res.ctype)
		ctx.SetBody(res.raw)
		return status
	}
	ctx.SetContentType("application/json")
	var authJSON []byte
	if res.auth != nil {
		authJSON, _ = json.Marshal(res.auth)
	}
	// Appended piece by piece to the response's pooled body buffer.
	r := &ctx.Response
	r.AppendBodyString(`{"request_id":"`)
	r.AppendBodyString(c.id)
	r.AppendBodyString(`","lease_id":"","renewable":false,"lease_duration":0,"data":`)
	if data == nil {
		data = []byte("null")
	}
	r.AppendBody(data)
	r.AppendBodyString(`,"wrap_info":null,"warnings":null,"auth":`)
	if authJSON == nil {
		authJSON = []byte("null")
	}
	r.AppendBody(authJSON)
	r.AppendBodyString(`,"mount_type":"`)
	if c.mount != nil {
		r.AppendBodyString(c.mount.Type)
	}
	r.AppendBodyString("\"}\n")
	return status
}

func marshalData(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// encodeData is v's JSON: for the hot response types written by hand into
// a pooled buffer (pooled not nil: give it back with putData once data is
// copied out), else encoding/json's.
func encodeData(v any) (data []byte, pooled *[]byte, err error) {
	p := dataBufs.Get().(*[]byte)
	if b, ok := appendData((*p)[:0], v); ok {
		return b, p, nil
	}
	dataBufs.Put(p)
	data, err = marshalData(v)
	return data, nil, err
}

func putData(p *[]byte, data []byte) {
	if cap(data) <= 1<<20 {
		*p = data[:0]
		dataBufs.Put(p)
	}
}

// writeError answers Vault's {"errors":[msg]}.
func (s *Server) writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	errs := []string{}
	if msg != "" {
		errs = append(errs, msg)
	}
	b, _ := json.Marshal(struct {
		Errors []string `json:"errors"`
	}{errs})
	ctx.SetBody(append(b, '\n'))
}

// errorHandler answers what fasthttp refuses before the handler: a body
// over the limit (413), a malformed request (400), a timeout (408).
func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.writeError(ctx, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: more than the %d bytes allowed", s.cfg.MaxRequestBody))
		s.cfg.Metrics.Observe("too_large", http.StatusRequestEntityTooLarge, 0)
	case isTimeout(err):
		s.writeError(ctx, http.StatusRequestTimeout, "timed out reading the request")
	default:
		s.writeError(ctx, http.StatusBadRequest, "malformed HTTP request")
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// decode reads the JSON body into v: an empty body is {}; anything but one
// JSON object is a 400 with the parser's message (never the input).
func (c *call) decode(v any) error {
	return decodeBody(c.body, v)
}

func decodeBody(body []byte, v any) error { return decodeBodyWith(body, v, true) }

// decodeBodyWith is decodeBody; fast false skips the fast path (the
// differential tests' reference).
func decodeBodyWith(body []byte, v any, fast bool) error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || string(b) == "null" {
		return nil // vault/api sends null for a write without data
	}
	if b[0] != '{' {
		return badRequest("failed to parse JSON input: the body must be a JSON object")
	}
	if fast && fastDecode(b, v) {
		return nil // the hot bodies, when plain (fastbody.go)
	}
	return decodeJSON(b, v)
}

// decodeJSON is decodeBody's encoding/json path (every body the fast path
// does not take, and every error message).
func decodeJSON(b []byte, v any) error {
	// Unmarshal, not a Decoder: it validates the whole body first (so
	// data after the object is an error) and allocates less.
	if err := json.Unmarshal(b, v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) && strings.Contains(se.Error(), "after top-level value") {
			return badRequest("failed to parse JSON input: data after the JSON object")
		}
		return badRequest("failed to parse JSON input: %s", jsonErr(err))
	}
	return nil
}

// jsonErr describes a decode error without quoting the input.
func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q: expected %s, got a JSON %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("expected %s, got a JSON %s", te.Type, te.Value)
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// newUUID is a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}
