package server

import (
	"slices"
	"sync"

	"github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/auth"
)

// auditIDs keeps each API token's audit identity (audit.Auth, sealed:
// its HMAC'd secret and accessor made once) by the token's ID, so that a
// request's two records cost no HMAC and no allocation for who asked. No
// secret is kept: the key is the store's hash of the secret, the value
// holds HMACs. Bounded: past maxAuditIDs entries it starts again.
type auditIDs struct {
	mu sync.Mutex
	m  map[string]*audit.Auth
}

const maxAuditIDs = 10000

// get returns t's sealed identity for l, making it on first use (or when
// the token's recorded members changed).
func (a *auditIDs) get(l *audit.Log, t *auth.Token, secret string) *audit.Auth {
	id := t.ID()
	if id == "" {
		return &audit.Auth{ClientToken: secret, Accessor: t.Accessor, DisplayName: t.DisplayName, Policies: t.Policies, TokenType: t.Type}
	}
	a.mu.Lock()
	e := a.m[id]
	a.mu.Unlock()
	if e != nil && e.Accessor == t.Accessor && e.DisplayName == t.DisplayName && e.TokenType == t.Type && slices.Equal(e.Policies, t.Policies) {
		return e
	}
	e = l.Seal(&audit.Auth{ClientToken: secret, Accessor: t.Accessor, DisplayName: t.DisplayName,
		Policies: slices.Clone(t.Policies), TokenType: t.Type})
	a.mu.Lock()
	if a.m == nil || len(a.m) >= maxAuditIDs {
		a.m = make(map[string]*audit.Auth)
	}
	a.m[id] = e
	a.mu.Unlock()
	return e
}

// forget drops t's identity (a revoked token).
func (a *auditIDs) forget(t *auth.Token) {
	a.mu.Lock()
	delete(a.m, t.ID())
	a.mu.Unlock()
}
