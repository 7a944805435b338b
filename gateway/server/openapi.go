package server

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/gohsm/gohsm/gateway/transit"
)

// The OpenAPI 3 document is generated from the route table, once. Transit
// rows appear under /transit/ (the default mount; every transit mount
// serves the same paths). A LIST row is Vault's way: GET with list=true
// (required when the path has no GET row, optional when it has).

// OpenAPI returns the document (JSON), built on first use.
func (s *Server) OpenAPI() []byte {
	s.openapiOnce.Do(func() { s.openapiDoc = buildOpenAPI(s.table.all, s.cfg.Version) })
	return s.openapiDoc
}

type oaParam struct {
	Name        string         `json:"name"`
	In          string         `json:"in"`
	Required    bool           `json:"required"`
	Description string         `json:"description,omitempty"`
	Schema      map[string]any `json:"schema"`
}

type oaOp struct {
	OperationID string             `json:"operationId"`
	Summary     string             `json:"summary"`
	Tags        []string           `json:"tags"`
	Parameters  []oaParam          `json:"parameters,omitempty"`
	RequestBody map[string]any     `json:"requestBody,omitempty"`
	Responses   map[string]any     `json:"responses"`
	Security    []map[string][]any `json:"security"`
	Capability  string             `json:"x-vault-capability,omitempty"`
	Operation   string             `json:"x-gohsm-operation"`
}

// DocPath is the document's path for a route: "/transit/encrypt/{name}".
func docPath(r *route) string {
	segs := make([]string, 0, len(r.segs)+1)
	if r.mounted {
		segs = append(segs, "transit")
	}
	for _, s := range r.segs {
		if s[0] == ':' || s[0] == '*' {
			s = "{" + s[1:] + "}"
		}
		segs = append(segs, s)
	}
	return "/" + strings.Join(segs, "/")
}

func buildOpenAPI(routes []*route, version string) []byte {
	paths := map[string]map[string]*oaOp{}
	schemas := map[string]any{}
	hasGet := map[string]bool{}
	for _, r := range routes {
		if r.method == mGET {
			hasGet[docPath(r)] = true
		}
	}
	for _, r := range routes {
		p := docPath(r)
		if paths[p] == nil {
			paths[p] = map[string]*oaOp{}
		}
		method := strings.ToLower(r.method)
		if r.method == mLIST {
			method = "get"
		}
		if r.method == mLIST && hasGet[p] {
			// Merged into the GET operation as an optional list=true.
			continue
		}
		op := &oaOp{
			OperationID: strings.ToLower(r.method) + strings.NewReplacer("/", "-", "{", "", "}", "").Replace(p),
			Summary:     r.summary,
			Tags:        []string{tagOf(r)},
			Responses:   map[string]any{},
			Security:    []map[string][]any{{"vaultToken": {}}, {"bearer": {}}},
			Capability:  string(r.cap),
			Operation:   r.op,
		}
		if r.cap == unauthenticated {
			op.Security = []map[string][]any{}
		}
		for _, s := range r.segs {
			if s[0] == ':' || s[0] == '*' {
				op.Parameters = append(op.Parameters, oaParam{Name: s[1:], In: "path", Required: true, Schema: map[string]any{"type": "string"}})
			}
		}
		if r.method == mLIST {
			op.Parameters = append(op.Parameters, oaParam{Name: "list", In: "query", Required: true, Description: "Must be true (or use the LIST method)", Schema: map[string]any{"type": "string", "enum": []string{"true"}}})
		} else if r.method == mGET && listRowFor(routes, p) {
			op.Parameters = append(op.Parameters, oaParam{Name: "list", In: "query", Required: false, Description: "true: list (the LIST method) instead of read", Schema: map[string]any{"type": "string", "enum": []string{"true"}}})
		}
		if r.req != nil {
			name := schemaName(reflect.TypeOf(r.req))
			addSchema(schemas, reflect.TypeOf(r.req))
			op.RequestBody = map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": ref(name)}}}
		}
		switch {
		case r.resp != nil:
			name := schemaName(reflect.TypeOf(r.resp))
			addSchema(schemas, reflect.TypeOf(r.resp))
			var sch any = map[string]any{"type": "object", "properties": map[string]any{"request_id": map[string]any{"type": "string"}, "data": ref(name)}}
			if r.op == "sys.health" {
				sch = ref(name)
			}
			op.Responses["200"] = map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": sch}}}
		case r.op == "sys.metrics":
			op.Responses["200"] = map[string]any{"description": "Prometheus text format", "content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}
		case r.op == "sys.openapi":
			op.Responses["200"] = map[string]any{"description": "This document", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		case r.method == mPOST && r.op == "auth.token.create":
			op.Responses["200"] = map[string]any{"description": "The new token, in the envelope's auth", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object", "properties": map[string]any{"auth": ref("tokenAuth")}}}}}
			addSchema(schemas, reflect.TypeOf(tokenAuth{}))
		case r.op == "sys.mounts.list" || r.op == "sys.capabilities-self":
			op.Responses["200"] = map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object", "properties": map[string]any{"data": map[string]any{"type": "object", "additionalProperties": true}}}}}}
		default:
			op.Responses["204"] = map[string]any{"description": "Done"}
		}
		op.Responses["4XX"] = ref("errors")
		op.Responses["5XX"] = ref("errors")
		paths[p][method] = op
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "gohsm crypto gateway",
			"version":     version,
			"description": "Vault Transit's HTTP API, path for path, with Vault's token, policy and mount endpoints. Paths are under /v1; /transit/ stands for every transit mount.",
		},
		"servers": []any{map[string]any{"url": "/v1"}},
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"responses": map[string]any{
				"errors": map[string]any{"description": "Vault's error form", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
					"type": "object", "properties": map[string]any{"errors": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}}}}},
			},
			"securitySchemes": map[string]any{
				"vaultToken": map[string]any{"type": "apiKey", "in": "header", "name": "X-Vault-Token"},
				"bearer":     map[string]any{"type": "http", "scheme": "bearer"},
			},
		},
	}
	// 4XX/5XX are response references, not schemas.
	for _, ops := range paths {
		for _, op := range ops {
			op.Responses["4XX"] = map[string]any{"$ref": "#/components/responses/errors"}
			op.Responses["5XX"] = map[string]any{"$ref": "#/components/responses/errors"}
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("openapi: %v", err))
	}
	return b
}

func listRowFor(routes []*route, p string) bool {
	for _, r := range routes {
		if r.method == mLIST && docPath(r) == p {
			return true
		}
	}
	return false
}

func tagOf(r *route) string {
	switch {
	case r.mounted:
		return "transit"
	case strings.HasPrefix(r.pattern, "auth/"):
		return "auth"
	}
	return "system"
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func schemaName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

var (
	tInt      = reflect.TypeOf(transit.Int(0))
	tBool     = reflect.TypeOf(transit.Bool(false))
	tDuration = reflect.TypeOf(transit.Duration(0))
	tKeyEntry = reflect.TypeOf(transit.KeyEntry{})
	tTime     = reflect.TypeOf(time.Time{})
	tBatch    = reflect.TypeOf(transit.Batch{})
)

// addSchema adds t (a struct) to schemas under its name.
func addSchema(schemas map[string]any, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := t.Name()
	if _, done := schemas[name]; done {
		return
	}
	schemas[name] = nil // recursion guard
	props := map[string]any{}
	collectFields(schemas, t, props)
	schemas[name] = map[string]any{"type": "object", "properties": props}
}

func collectFields(schemas map[string]any, t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Type != tBatch {
			collectFields(schemas, f.Type, props)
			continue
		}
		tag := f.Tag.Get("json")
		name := strings.Split(tag, ",")[0]
		if name == "-" || !f.IsExported() || f.Type == tBatch {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(schemas, f.Type)
	}
}

func schemaOf(schemas map[string]any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case tInt:
		return map[string]any{"type": "integer", "description": "a JSON number or a numeric string"}
	case tBool:
		return map[string]any{"type": "boolean", "description": "a JSON boolean or \"true\"/\"false\""}
	case tDuration:
		return map[string]any{"type": "string", "description": "a duration: \"1h\", \"30m\", or seconds"}
	case tKeyEntry:
		return map[string]any{"description": "symmetric: creation time (Unix seconds); asymmetric: name, public_key, creation_time"}
	case tTime:
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(schemas, t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(schemas, t.Elem())}
	case reflect.Struct:
		addSchema(schemas, t)
		return ref(t.Name())
	case reflect.Interface:
		return map[string]any{}
	}
	return map[string]any{}
}

// APITable renders the document's operations as a Markdown table (for
// docs/gateway.md): method, path, capability, summary.
func APITable(doc []byte) (string, error) {
	var d struct {
		Paths map[string]map[string]struct {
			Summary    string    `json:"summary"`
			Capability string    `json:"x-vault-capability"`
			Parameters []oaParam `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return "", err
	}
	type row struct{ path, method, cap, summary string }
	var rows []row
	for p, ops := range d.Paths {
		for m, op := range ops {
			method := strings.ToUpper(m)
			for _, prm := range op.Parameters {
				if prm.Name == "list" && prm.In == "query" {
					if prm.Required {
						method = "LIST"
					} else {
						method = "GET, LIST"
					}
				}
			}
			cap := op.Capability
			if cap == "" {
				cap = "(none: unauthenticated)"
			}
			rows = append(rows, row{p, method, cap, op.Summary})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].path != rows[j].path {
			return rows[i].path < rows[j].path
		}
		return rows[i].method < rows[j].method
	})
	var b strings.Builder
	b.WriteString("| Method | Path (under /v1) | Capability | What |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", r.method, r.path, r.cap, r.summary)
	}
	return b.String(), nil
}
