package server

import (
	"strings"

	"github.com/gohsm/gohsm/gateway/metrics"
	"github.com/gohsm/gohsm/gateway/policy"
	"github.com/gohsm/gohsm/gateway/transit"
)

// Methods. PUT is POST (Vault treats them alike); LIST is also GET ?list=true.
const (
	mGET    = "GET"
	mPOST   = "POST"
	mDELETE = "DELETE"
	mLIST   = "LIST"
)

// route is one row of the table.
type route struct {
	method  string
	pattern string // segments; ":x" one segment, "*x" the rest (last only)
	mounted bool   // pattern is relative to a transit mount
	cap     policy.Capability
	op      string // metrics and OpenAPI operation name
	summary string
	req     any // the request body type (OpenAPI); nil: none
	resp    any // the data type of the answer (OpenAPI); nil: 204 or raw
	h       func(c *call) (*result, error)

	segs   []string
	metric *metrics.Op
	pure   bool // no side effects: its audit request record is Deferred
}

// pureOps change nothing: their request records are only queued and go to
// the file with their response's (audit.Entry.Deferred), one write and one
// fsync for the pair. The exception, encrypt's upsert of a missing key,
// writes the queued record before it creates the key (call.context).
var pureOps = map[string]bool{
	"encrypt": true, "decrypt": true, "rewrap": true, "datakey.plaintext": true, "datakey.wrapped": true,
	"sign": true, "verify": true, "hmac": true, "random": true,
	"auth.token.lookup": true, "auth.token.lookup-accessor": true, "sys.capabilities-self": true,
}

// unauthenticated routes have no capability: anyone may call them.
const unauthenticated policy.Capability = ""

// routes is THE table: every endpoint of the gateway.
func (s *Server) routes() []*route {
	return []*route{
		// ---- transit, relative to each transit mount ----
		{method: mLIST, pattern: "keys", mounted: true, cap: policy.List, op: "keys.list", summary: "List key names", resp: transit.ListKeysResponse{}, h: s.listKeys},
		{method: mPOST, pattern: "keys/:name", mounted: true, cap: policy.Update, op: "keys.create", summary: "Create a key", req: transit.CreateKeyRequest{}, resp: transit.ReadKeyResponse{}, h: s.createKey},
		{method: mGET, pattern: "keys/:name", mounted: true, cap: policy.Read, op: "keys.read", summary: "Read a key: versions, public keys, supports_*", resp: transit.ReadKeyResponse{}, h: s.readKey},
		{method: mDELETE, pattern: "keys/:name", mounted: true, cap: policy.Delete, op: "keys.delete", summary: "Delete a key (deletion_allowed must be set)", h: s.deleteKey},
		{method: mPOST, pattern: "keys/:name/config", mounted: true, cap: policy.Update, op: "keys.config", summary: "Configure a key", req: transit.ConfigKeyRequest{}, resp: transit.ReadKeyResponse{}, h: s.configKey},
		{method: mPOST, pattern: "keys/:name/rotate", mounted: true, cap: policy.Update, op: "keys.rotate", summary: "Add a key version", req: transit.RotateKeyRequest{}, resp: transit.ReadKeyResponse{}, h: s.rotateKey},
		{method: mPOST, pattern: "keys/:name/trim", mounted: true, cap: policy.Update, op: "keys.trim", summary: "Destroy versions below min_available_version", req: transit.TrimKeyRequest{}, resp: transit.ReadKeyResponse{}, h: s.trimKey},
		{method: mPOST, pattern: "encrypt/:name", mounted: true, cap: policy.Update, op: "encrypt", summary: "Encrypt (batch_input for many)", req: transit.EncryptRequest{}, resp: transit.EncryptResponse{}, h: s.encrypt},
		{method: mPOST, pattern: "decrypt/:name", mounted: true, cap: policy.Update, op: "decrypt", summary: "Decrypt (batch_input for many)", req: transit.DecryptRequest{}, resp: transit.DecryptResponse{}, h: s.decrypt},
		{method: mPOST, pattern: "rewrap/:name", mounted: true, cap: policy.Update, op: "rewrap", summary: "Re-encrypt under the latest (or key_version) version; the plaintext never leaves the engine", req: transit.RewrapRequest{}, resp: transit.EncryptResponse{}, h: s.rewrap},
		{method: mPOST, pattern: "datakey/plaintext/:name", mounted: true, cap: policy.Update, op: "datakey.plaintext", summary: "New data key: plaintext and wrapped", req: transit.DataKeyRequest{}, resp: transit.DataKeyResponse{}, h: s.dataKey(true)},
		{method: mPOST, pattern: "datakey/wrapped/:name", mounted: true, cap: policy.Update, op: "datakey.wrapped", summary: "New data key: wrapped only", req: transit.DataKeyRequest{}, resp: transit.DataKeyResponse{}, h: s.dataKey(false)},
		{method: mPOST, pattern: "sign/:name", mounted: true, cap: policy.Update, op: "sign", summary: "Sign", req: transit.SignRequest{}, resp: transit.SignResponse{}, h: s.sign},
		{method: mPOST, pattern: "sign/:name/:hash_algorithm", mounted: true, cap: policy.Update, op: "sign", summary: "Sign with the hash algorithm in the path", req: transit.SignRequest{}, resp: transit.SignResponse{}, h: s.sign},
		{method: mPOST, pattern: "verify/:name", mounted: true, cap: policy.Update, op: "verify", summary: "Verify a signature or an HMAC", req: transit.VerifyRequest{}, resp: transit.VerifyResponse{}, h: s.verify},
		{method: mPOST, pattern: "verify/:name/:hash_algorithm", mounted: true, cap: policy.Update, op: "verify", summary: "Verify with the hash algorithm in the path", req: transit.VerifyRequest{}, resp: transit.VerifyResponse{}, h: s.verify},
		{method: mPOST, pattern: "hmac/:name", mounted: true, cap: policy.Update, op: "hmac", summary: "HMAC", req: transit.HMACRequest{}, resp: transit.HMACResponse{}, h: s.hmac},
		{method: mPOST, pattern: "hmac/:name/:algorithm", mounted: true, cap: policy.Update, op: "hmac", summary: "HMAC with the algorithm in the path", req: transit.HMACRequest{}, resp: transit.HMACResponse{}, h: s.hmac},
		{method: mPOST, pattern: "random", mounted: true, cap: policy.Update, op: "random", summary: "Random bytes from the token", req: transit.RandomRequest{}, resp: transit.RandomResponse{}, h: s.random},
		{method: mPOST, pattern: "random/:bytes", mounted: true, cap: policy.Update, op: "random", summary: "Random bytes (count, or source, in the path)", req: transit.RandomRequest{}, resp: transit.RandomResponse{}, h: s.random},
		{method: mPOST, pattern: "random/:source/:bytes", mounted: true, cap: policy.Update, op: "random", summary: "Random bytes (source and count in the path)", req: transit.RandomRequest{}, resp: transit.RandomResponse{}, h: s.random},

		// ---- policies ----
		{method: mLIST, pattern: "sys/policies/acl", cap: policy.List, op: "sys.policies.list", summary: "List ACL policies", resp: listResponse{}, h: s.listPolicies},
		{method: mGET, pattern: "sys/policies/acl/:name", cap: policy.Read, op: "sys.policies.read", summary: "Read an ACL policy", resp: policyResponse{}, h: s.readPolicy},
		{method: mPOST, pattern: "sys/policies/acl/:name", cap: policy.Update, op: "sys.policies.write", summary: "Write an ACL policy (HCL or JSON)", req: policyRequest{}, h: s.writePolicy},
		{method: mDELETE, pattern: "sys/policies/acl/:name", cap: policy.Delete, op: "sys.policies.delete", summary: "Delete an ACL policy", h: s.deletePolicy},
		{method: mGET, pattern: "sys/policy", cap: policy.Read, op: "sys.policy.list", summary: "List policies (older endpoint)", resp: oldPolicyList{}, h: s.listPoliciesOld},
		{method: mLIST, pattern: "sys/policy", cap: policy.List, op: "sys.policy.list", summary: "List policies (older endpoint)", resp: oldPolicyList{}, h: s.listPoliciesOld},
		{method: mGET, pattern: "sys/policy/:name", cap: policy.Read, op: "sys.policy.read", summary: "Read a policy (older endpoint)", resp: oldPolicyResponse{}, h: s.readPolicyOld},
		{method: mPOST, pattern: "sys/policy/:name", cap: policy.Update, op: "sys.policy.write", summary: "Write a policy (older endpoint)", req: oldPolicyRequest{}, h: s.writePolicyOld},
		{method: mDELETE, pattern: "sys/policy/:name", cap: policy.Delete, op: "sys.policy.delete", summary: "Delete a policy (older endpoint)", h: s.deletePolicy},
		{method: mPOST, pattern: "sys/capabilities-self", cap: policy.Update, op: "sys.capabilities-self", summary: "The calling token's capabilities on paths", req: capabilitiesRequest{}, h: s.capabilitiesSelf},

		// ---- tokens ----
		{method: mPOST, pattern: "auth/token/create", cap: policy.Update, op: "auth.token.create", summary: "Create a child token", req: tokenCreateRequest{}, h: s.tokenCreate},
		{method: mGET, pattern: "auth/token/lookup-self", cap: policy.Read, op: "auth.token.lookup-self", summary: "Look up the calling token", resp: tokenLookupResponse{}, h: s.tokenLookupSelf},
		{method: mPOST, pattern: "auth/token/lookup-self", cap: policy.Read, op: "auth.token.lookup-self", summary: "Look up the calling token", resp: tokenLookupResponse{}, h: s.tokenLookupSelf},
		{method: mPOST, pattern: "auth/token/lookup", cap: policy.Update, op: "auth.token.lookup", summary: "Look up a token", req: tokenRequest{}, resp: tokenLookupResponse{}, h: s.tokenLookup},
		{method: mPOST, pattern: "auth/token/lookup-accessor", cap: policy.Update, op: "auth.token.lookup-accessor", summary: "Look up a token by accessor", req: accessorRequest{}, resp: tokenLookupResponse{}, h: s.tokenLookupAccessor},
		{method: mPOST, pattern: "auth/token/revoke-self", cap: policy.Update, op: "auth.token.revoke-self", summary: "Revoke the calling token and its children", h: s.tokenRevokeSelf},
		{method: mPOST, pattern: "auth/token/revoke", cap: policy.Update, op: "auth.token.revoke", summary: "Revoke a token and its children", req: tokenRequest{}, h: s.tokenRevoke},
		{method: mPOST, pattern: "auth/token/revoke-accessor", cap: policy.Update, op: "auth.token.revoke-accessor", summary: "Revoke a token by accessor", req: accessorRequest{}, h: s.tokenRevokeAccessor},

		// ---- mounts ----
		{method: mGET, pattern: "sys/mounts", cap: policy.Read, op: "sys.mounts.list", summary: "List mounts", h: s.listMounts},
		{method: mGET, pattern: "sys/mounts/*path", cap: policy.Read, op: "sys.mounts.read", summary: "Read a mount's configuration", resp: mountOutput{}, h: s.readMount},
		{method: mPOST, pattern: "sys/mounts/*path", cap: policy.Update, op: "sys.mounts.enable", summary: "Enable a transit mount", req: mountRequest{}, h: s.enableMount},
		{method: mDELETE, pattern: "sys/mounts/*path", cap: policy.Delete, op: "sys.mounts.disable", summary: "Disable a mount (its keys stay on the tokens)", h: s.disableMount},

		// ---- operations ----
		{method: mGET, pattern: "sys/health", cap: unauthenticated, op: "sys.health", summary: "Health (unauthenticated; Vault's fields)", resp: healthResponse{}, h: s.health},
		{method: mGET, pattern: "sys/metrics", cap: policy.Read, op: "sys.metrics", summary: "Prometheus metrics (text format)", h: s.metricsText},
		{method: mGET, pattern: "sys/openapi", cap: unauthenticated, op: "sys.openapi", summary: "This API as an OpenAPI 3 document", h: s.openapi},
		{method: mGET, pattern: "sys/internal/specs/openapi", cap: unauthenticated, op: "sys.openapi", summary: "This API as an OpenAPI 3 document (Vault's path)", h: s.openapi},
	}
}

// table is the compiled route table.
type table struct {
	sys     []*route
	mounted []*route
	all     []*route
}

func newTable(s *Server, m *metrics.Metrics) *table {
	t := &table{}
	for _, r := range s.routes() {
		r.segs = strings.Split(r.pattern, "/")
		r.metric = m.Op(r.op)
		r.pure = r.method == mGET || r.method == mLIST || pureOps[r.op]
		if r.mounted {
			t.mounted = append(t.mounted, r)
		} else {
			t.sys = append(t.sys, r)
		}
		t.all = append(t.all, r)
	}
	return t
}

// param is one path parameter.
type param struct{ name, value string }

// matchPattern matches path against r's segments, filling params. One
// trailing slash is ignored (Vault's list paths end in one).
func (r *route) matchPattern(path string, ps *[4]param) (int, bool) {
	path = strings.TrimSuffix(path, "/")
	n := 0
	for _, seg := range r.segs {
		if seg[0] == '*' {
			if path == "" {
				return 0, false
			}
			ps[n] = param{seg[1:], path}
			return n + 1, true
		}
		if path == "" {
			return 0, false
		}
		part, rest, _ := strings.Cut(path, "/")
		switch {
		case seg[0] == ':':
			if part == "" || n == len(ps) {
				return 0, false
			}
			ps[n] = param{seg[1:], part}
			n++
		case seg != part:
			return 0, false
		}
		path = rest
	}
	return n, path == ""
}

// lookup finds the route for method and path (Vault path, no /v1/).
// found reports a row with this path pattern for some method (so a miss
// on the method is a 405); m is the mount for mounted rows.
func (s *Server) lookup(method, path string) (r *route, m *mount, ps [4]param, np int, found bool) {
	try := func(rs []*route, p string) {
		for _, rt := range rs {
			n, ok := rt.matchPattern(p, &ps)
			if !ok {
				continue
			}
			found = true
			if rt.method == method {
				r, np = rt, n
				return
			}
		}
	}
	try(s.table.sys, path)
	if r != nil || found {
		return
	}
	if strings.HasPrefix(path, "sys/") || strings.HasPrefix(path, "auth/") {
		return
	}
	m, rel := s.findMount(path)
	if m == nil {
		return
	}
	try(s.table.mounted, rel)
	return
}
