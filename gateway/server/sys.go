package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gohsm/gohsm/gateway/metrics"
	"github.com/gohsm/gohsm/gateway/policy"
)

// ---- policies ----

type policyRequest struct {
	Policy string `json:"policy"`
}

type policyResponse struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
}

type listResponse struct {
	Keys []string `json:"keys"`
}

type oldPolicyRequest struct {
	Policy string `json:"policy,omitempty"`
	Rules  string `json:"rules,omitempty"`
}

type oldPolicyResponse struct {
	Name  string `json:"name"`
	Rules string `json:"rules"`
}

type oldPolicyList struct {
	Policies []string `json:"policies"`
	Keys     []string `json:"keys"`
}

type capabilitiesRequest struct {
	Path  string   `json:"path,omitempty"`
	Paths []string `json:"paths,omitempty"`
}

func (s *Server) policyText(name string) (string, string, error) {
	p, err := s.cfg.Policies.Get(name)
	if err != nil {
		return "", "", err
	}
	if p.IsRoot() {
		return p.Name, "", nil
	}
	return p.Name, p.Raw, nil
}

func (s *Server) listPolicies(c *call) (*result, error) {
	names, err := s.cfg.Policies.List()
	if err != nil {
		return nil, err
	}
	return ok(listResponse{Keys: names})
}

func (s *Server) listPoliciesOld(c *call) (*result, error) {
	names, err := s.cfg.Policies.List()
	if err != nil {
		return nil, err
	}
	return ok(oldPolicyList{Policies: names, Keys: names})
}

func (s *Server) readPolicy(c *call) (*result, error) {
	name, text, err := s.policyText(c.param("name"))
	if err != nil {
		return nil, err
	}
	return ok(policyResponse{Name: name, Policy: text})
}

func (s *Server) readPolicyOld(c *call) (*result, error) {
	name, text, err := s.policyText(c.param("name"))
	if err != nil {
		return nil, err
	}
	return ok(oldPolicyResponse{Name: name, Rules: text})
}

func (s *Server) writePolicy(c *call) (*result, error) {
	var req policyRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	return s.putPolicy(c.param("name"), req.Policy)
}

func (s *Server) writePolicyOld(c *call) (*result, error) {
	var req oldPolicyRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	doc := req.Policy
	if doc == "" {
		doc = req.Rules
	}
	return s.putPolicy(c.param("name"), doc)
}

func (s *Server) putPolicy(name, doc string) (*result, error) {
	if err := policy.ValidateName(name); err != nil {
		return nil, badRequest("%v", err)
	}
	if doc == "" {
		return nil, badRequest("'policy' parameter not supplied or empty")
	}
	if _, err := s.cfg.Policies.Put(name, doc); err != nil {
		return nil, err
	}
	return noContent()
}

func (s *Server) deletePolicy(c *call) (*result, error) {
	if err := s.cfg.Policies.Delete(c.param("name")); err != nil {
		if errors.Is(err, policy.ErrNotFound) {
			return noContent()
		}
		return nil, badRequest("%v", err)
	}
	return noContent()
}

func (s *Server) capabilitiesSelf(c *call) (*result, error) {
	var req capabilitiesRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	paths := req.Paths
	if req.Path != "" {
		paths = append(paths, req.Path)
	}
	if len(paths) == 0 {
		return nil, badRequest("'paths' parameter not supplied or empty")
	}
	out := map[string]any{}
	var all []policy.Capability
	for _, p := range paths {
		caps := c.acl.Capabilities(p)
		out[p] = caps
		all = caps
	}
	if len(paths) == 1 {
		out["capabilities"] = all
	}
	return ok(out)
}

// ---- mounts ----

type mountRequest struct {
	Type        string         `json:"type"`
	Description string         `json:"description,omitempty"`
	Config      map[string]any `json:"config,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
}

type mountConfig struct {
	DefaultLeaseTTL int  `json:"default_lease_ttl"`
	MaxLeaseTTL     int  `json:"max_lease_ttl"`
	ForceNoCache    bool `json:"force_no_cache"`
}

type mountOutput struct {
	Type                  string            `json:"type"`
	Description           string            `json:"description"`
	Accessor              string            `json:"accessor"`
	UUID                  string            `json:"uuid"`
	Config                mountConfig       `json:"config"`
	Options               map[string]string `json:"options"`
	Local                 bool              `json:"local"`
	SealWrap              bool              `json:"seal_wrap"`
	ExternalEntropyAccess bool              `json:"external_entropy_access"`
	PluginVersion         string            `json:"plugin_version"`
	RunningPluginVersion  string            `json:"running_plugin_version"`
	RunningSha256         string            `json:"running_sha256"`
}

func outputOf(m *mount) mountOutput {
	return mountOutput{Type: m.Type, Description: m.Description, Accessor: m.Accessor, UUID: m.UUID, Options: map[string]string{}}
}

func (s *Server) listMounts(c *call) (*result, error) {
	out := map[string]mountOutput{
		"sys/": {Type: "system", Description: "system endpoints used for control, policy and debugging", Accessor: "system_gohsm", UUID: s.id, Options: map[string]string{}},
	}
	for _, m := range s.mountList() {
		out[m.Path] = outputOf(m)
	}
	return ok(out)
}

func (s *Server) readMount(c *call) (*result, error) {
	p, err := normMount(c.param("path"))
	if err != nil {
		return nil, badRequest("%v", err)
	}
	m, _ := s.lookupMount(p)
	if m == nil || m.Path != p {
		return nil, badRequest("no mount at %s", p)
	}
	return ok(outputOf(m))
}

func (s *Server) enableMount(c *call) (*result, error) {
	var req mountRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Type == "" {
		return nil, badRequest("'type' parameter not supplied (this gateway mounts transit)")
	}
	if err := s.Mount(c.param("path"), req.Type, req.Description); err != nil {
		return nil, badRequest("%v", err)
	}
	return noContent()
}

func (s *Server) disableMount(c *call) (*result, error) {
	if err := s.Unmount(c.param("path")); err != nil {
		return nil, badRequest("%v", err)
	}
	return noContent()
}

// ---- operations ----

type healthResponse struct {
	Initialized                bool   `json:"initialized"`
	Sealed                     bool   `json:"sealed"`
	Standby                    bool   `json:"standby"`
	PerformanceStandby         bool   `json:"performance_standby"`
	ReplicationPerformanceMode string `json:"replication_performance_mode"`
	ReplicationDRMode          string `json:"replication_dr_mode"`
	ServerTimeUTC              int64  `json:"server_time_utc"`
	Version                    string `json:"version"`
	ClusterName                string `json:"cluster_name"`
	ClusterID                  string `json:"cluster_id"`
	// AuditFailed: the audit log failed, so every request is refused
	// (the status is then 500, so load balancers route elsewhere).
	AuditFailed bool `json:"audit_failed,omitempty"`
}

func (s *Server) health(c *call) (*result, error) {
	h := healthResponse{Initialized: true, ReplicationPerformanceMode: "disabled", ReplicationDRMode: "disabled",
		ServerTimeUTC: time.Now().Unix(), Version: s.cfg.Version, ClusterName: "gohsm-gateway", ClusterID: s.id}
	status := http.StatusOK
	if s.cfg.Audit != nil && s.cfg.Audit.Err() != nil {
		h.AuditFailed, status = true, http.StatusInternalServerError
	}
	b, _ := json.Marshal(h)
	if string(c.ctx.Method()) == "HEAD" {
		return &result{status: status, raw: []byte{}, ctype: "application/json"}, nil
	}
	return &result{status: status, raw: append(b, '\n'), ctype: "application/json"}, nil
}

func (s *Server) metricsText(c *call) (*result, error) {
	var buf bytes.Buffer
	if err := s.cfg.Metrics.WriteText(&buf); err != nil {
		s.cfg.Logf("metrics: %v", err)
	}
	return &result{raw: buf.Bytes(), ctype: metrics.ContentType}, nil
}

func (s *Server) openapi(c *call) (*result, error) {
	return &result{raw: s.OpenAPI(), ctype: "application/json"}, nil
}
