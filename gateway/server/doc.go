// Package server is the gateway's HTTP face: Vault's HTTP API shape over
// github.com/valyala/fasthttp, so that Vault's own clients
// (github.com/hashicorp/vault/api, hvac, curl) work unchanged.
//
// # Shape
//
// Requests are /v1/<path>; bodies are JSON objects; answers are Vault's
// envelope {"request_id":..., "data":{...}, "auth":..., ...} or
// {"errors":["message"]} with a 4xx/5xx status; deletes and policy writes
// answer 204. The token is X-Vault-Token or Authorization: Bearer; a client
// certificate (mTLS) mapped to policies stands in for a token when none is
// sent. LIST requests come as the LIST method or GET ?list=true.
//
// # One table, one gate
//
// Every endpoint is one row of the routes table (routes.go): method, path
// pattern (relative to a transit mount for the transit rows), the policy
// capability it needs, an operation name (metrics, OpenAPI), the request
// and response types (OpenAPI), and the handler. Every request passes one
// gate (gate.go), in this order: find the row; authenticate (no or a bad
// token: 403 "permission denied", as Vault); ACL.Allowed(path, capability)
// (else 403); the token's rate quota (else 429 with Retry-After); the audit
// request record (if it cannot be written: 500, nothing runs); the handler;
// the audit response record (if it cannot be written: 500 instead of the
// answer); the metrics. Unknown paths get 404 and wrong methods 405, but
// only after authentication and the ACL (as Vault: an unauthorised caller
// learns nothing of what exists). The OpenAPI document at sys/openapi is
// generated from the same table, and a test checks that every row is in it
// and nothing else is.
//
// # Memory
//
// fasthttp reuses its request and response buffers after the handler
// returns, so nothing from a RequestCtx outlives the call: the path and
// header values are copied into strings, the body is decoded by
// encoding/json (which copies every string it returns) or, for the hot
// transit bodies, by fastbody.go (whose strings are substrings of one
// copy of the body), and the audit record is written before the handler
// returns. The hand-written response data (fastresp.go) lives in a pooled
// buffer only until respond has copied it into the response and the audit
// record.
//
// # Concurrency
//
// fasthttp runs each connection's requests on a goroutine of its worker
// pool; handlers run concurrently and share only the Server's immutable
// route table, the mount table (an atomic pointer to a copy-on-write map),
// and the stores, engines, audit log, limiter and metrics, each safe for
// concurrent use; the per-token audit identities (auditid.go) are a map
// under a mutex. Shutdown stops accepting, lets in-flight requests finish
// (up to the context's deadline), then returns.
package server
