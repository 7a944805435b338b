package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/gohsm/gohsm/gateway/auth"
	"github.com/gohsm/gohsm/gateway/policy"
	"github.com/gohsm/gohsm/gateway/transit"
)

// tokenCreateRequest is auth/token/create's body (Vault's names; numbers
// and booleans as JSON values or strings, durations as "1h" or seconds).
type tokenCreateRequest struct {
	ID              string            `json:"id,omitempty"`
	Policies        []string          `json:"policies,omitempty"`
	Meta            map[string]string `json:"meta,omitempty"`
	NoParent        transit.Bool      `json:"no_parent,omitempty"`
	NoDefaultPolicy transit.Bool      `json:"no_default_policy,omitempty"`
	Renewable       *transit.Bool     `json:"renewable,omitempty"`
	TTL             transit.Duration  `json:"ttl,omitempty"`
	ExplicitMaxTTL  transit.Duration  `json:"explicit_max_ttl,omitempty"`
	DisplayName     string            `json:"display_name,omitempty"`
	NumUses         transit.Int       `json:"num_uses,omitempty"`
	Type            string            `json:"type,omitempty"`
	Period          transit.Duration  `json:"period,omitempty"`
}

// tokenAuth is the envelope's auth block for a new token.
type tokenAuth struct {
	ClientToken   string            `json:"client_token"`
	Accessor      string            `json:"accessor"`
	Policies      []string          `json:"policies"`
	TokenPolicies []string          `json:"token_policies"`
	Metadata      map[string]string `json:"metadata"`
	LeaseDuration int64             `json:"lease_duration"`
	Renewable     bool              `json:"renewable"`
	EntityID      string            `json:"entity_id"`
	TokenType     string            `json:"token_type"`
	Orphan        bool              `json:"orphan"`
	NumUses       int               `json:"num_uses"`
}

type tokenRequest struct {
	Token string `json:"token"`
}

type accessorRequest struct {
	Accessor string `json:"accessor"`
}

// tokenLookupResponse is the data of the lookup endpoints.
type tokenLookupResponse struct {
	Accessor       string            `json:"accessor"`
	CreationTime   int64             `json:"creation_time"`
	CreationTTL    int64             `json:"creation_ttl"`
	DisplayName    string            `json:"display_name"`
	EntityID       string            `json:"entity_id"`
	ExpireTime     *string           `json:"expire_time"`
	ExplicitMaxTTL int64             `json:"explicit_max_ttl"`
	ID             string            `json:"id"`
	IssueTime      string            `json:"issue_time"`
	Meta           map[string]string `json:"meta"`
	NumUses        int               `json:"num_uses"`
	Orphan         bool              `json:"orphan"`
	Path           string            `json:"path"`
	Policies       []string          `json:"policies"`
	Renewable      bool              `json:"renewable"`
	TTL            int64             `json:"ttl"`
	Type           string            `json:"type"`
}

func lookupData(t *auth.Token, id string) tokenLookupResponse {
	r := tokenLookupResponse{
		Accessor: t.Accessor, CreationTime: t.CreationTime.Unix(), CreationTTL: int64(t.CreationTTL / time.Second),
		DisplayName: t.DisplayName, ExplicitMaxTTL: int64(t.ExplicitMaxTTL / time.Second), ID: id,
		IssueTime: t.CreationTime.Format(time.RFC3339Nano), Meta: t.Meta, NumUses: t.NumUses, Orphan: t.Orphan,
		Path: t.Path, Policies: t.Policies, Renewable: t.Renewable, TTL: int64(t.TTL(time.Now()) / time.Second), Type: t.Type,
	}
	if !t.ExpireTime.IsZero() {
		e := t.ExpireTime.Format(time.RFC3339Nano)
		r.ExpireTime = &e
	}
	return r
}

func (s *Server) tokenCreate(c *call) (*result, error) {
	var req tokenCreateRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.ID != "" {
		return nil, badRequest("custom token IDs are not supported: the gateway makes every token from 256 random bits")
	}
	if req.Type != "" && req.Type != "service" {
		return nil, badRequest("token type %q is not supported (service tokens only)", req.Type)
	}
	cr := auth.CreateRequest{
		Policies: req.Policies, NoDefaultPolicy: bool(req.NoDefaultPolicy), TTL: time.Duration(req.TTL),
		ExplicitMaxTTL: time.Duration(req.ExplicitMaxTTL), NumUses: int(req.NumUses), DisplayName: req.DisplayName,
		Meta: req.Meta, NoParent: bool(req.NoParent), Sudo: c.acl.Allowed("auth/token/create", policy.Sudo),
	}
	if req.Renewable != nil {
		b := bool(*req.Renewable)
		cr.Renewable = &b
	}
	secret, t, err := s.cfg.Tokens.Create(c.tok, cr)
	if err != nil {
		return nil, err
	}
	pols := t.Policies
	if pols == nil {
		pols = []string{}
	}
	return &result{auth: tokenAuth{
		ClientToken: secret, Accessor: t.Accessor, Policies: pols, TokenPolicies: pols, Metadata: t.Meta,
		LeaseDuration: int64(t.TTL(time.Now()) / time.Second), Renewable: t.Renewable, TokenType: "service",
		Orphan: t.Orphan, NumUses: t.NumUses,
	}}, nil
}

func (s *Server) tokenLookupSelf(c *call) (*result, error) {
	if c.tok.Type == "cert" {
		return ok(lookupData(c.tok, ""))
	}
	return ok(lookupData(c.tok, c.secret))
}

func (s *Server) tokenLookup(c *call) (*result, error) {
	var req tokenRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Token == "" {
		return nil, badRequest("missing token to look up")
	}
	t, err := s.cfg.Tokens.Lookup(req.Token)
	if err != nil {
		return nil, tokenErr(err)
	}
	return ok(lookupData(t, req.Token))
}

func (s *Server) tokenLookupAccessor(c *call) (*result, error) {
	var req accessorRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	t, err := s.cfg.Tokens.LookupAccessor(req.Accessor)
	if err != nil {
		return nil, tokenErr(err)
	}
	return ok(lookupData(t, ""))
}

func (s *Server) tokenRevokeSelf(c *call) (*result, error) {
	if c.tok.Type == "cert" {
		return nil, badRequest("a certificate identity has no token to revoke")
	}
	if err := s.cfg.Tokens.Revoke(c.tok); err != nil {
		return nil, err
	}
	s.forget(c.tok)
	return noContent()
}

func (s *Server) tokenRevoke(c *call) (*result, error) {
	var req tokenRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	t, err := s.cfg.Tokens.Lookup(req.Token)
	if errors.Is(err, auth.ErrNotFound) {
		return noContent() // Vault: revoking an invalid token succeeds
	}
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Tokens.Revoke(t); err != nil {
		return nil, err
	}
	s.forget(t)
	return noContent()
}

func (s *Server) tokenRevokeAccessor(c *call) (*result, error) {
	var req accessorRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	t, err := s.cfg.Tokens.LookupAccessor(req.Accessor)
	if err != nil {
		return nil, tokenErr(err)
	}
	if err := s.cfg.Tokens.Revoke(t); err != nil {
		return nil, err
	}
	s.forget(t)
	return noContent()
}

func (s *Server) forget(t *auth.Token) {
	s.auditIDs.forget(t)
	if s.cfg.Quota != nil {
		s.cfg.Quota.Forget(t.Accessor)
	}
}

func tokenErr(err error) error {
	if errors.Is(err, auth.ErrNotFound) {
		return &httpError{http.StatusBadRequest, "bad token"}
	}
	return err
}
