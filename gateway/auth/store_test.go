package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokenLifecycle(t *testing.T) {
	b := NewMemBackend()
	now := time.Unix(1_800_000_000, 0)
	s := NewStore(b, Options{Now: func() time.Time { return now }})
	rootSecret, root, err := s.CreateRoot("root")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rootSecret, "hvs.") || len(rootSecret) != 47 || !root.IsRoot() {
		t.Fatalf("root %q %+v", rootSecret, root)
	}
	// The secret is stored nowhere.
	for k, v := range b.Dump() {
		if strings.Contains(k, rootSecret[4:]) || strings.Contains(string(v), rootSecret[4:]) {
			t.Fatalf("secret stored under %s", k)
		}
	}
	sec, tok, err := s.Create(root, CreateRequest{Policies: []string{"Enc"}, TTL: time.Hour, DisplayName: "app", Meta: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tok.Policies, ","); got != "default,enc" || tok.DisplayName != "token-app" {
		t.Fatalf("policies %s name %s", got, tok.DisplayName)
	}
	got, err := s.Authenticate(sec)
	if err != nil || got.Accessor != tok.Accessor || got.Parent != root.Accessor {
		t.Fatalf("%+v %v", got, err)
	}
	if a, err := s.LookupAccessor(tok.Accessor); err != nil || a.DisplayName != "token-app" {
		t.Fatal(a, err)
	}
	// Children may not widen policies.
	if _, _, err := s.Create(got, CreateRequest{Policies: []string{"admin"}}); !errors.Is(err, ErrInvalid) {
		t.Fatal("child widened its policies:", err)
	}
	if _, _, err := s.Create(got, CreateRequest{Policies: []string{"root"}}); !errors.Is(err, ErrForbidden) {
		t.Fatal("non-root made a root token:", err)
	}
	childSec, _, err := s.Create(got, CreateRequest{Policies: []string{"enc"}})
	if err != nil {
		t.Fatal(err)
	}
	// Bad and near-miss secrets.
	last := "x" // the last character changed (a fixed "x" left a secret ending in x intact, 1 run in 62)
	if strings.HasSuffix(sec, last) {
		last = "y"
	}
	for _, bad := range []string{"", "hvs.", sec[:len(sec)-1] + last, strings.ToUpper(sec), sec + "A", "s.abc"} {
		if _, err := s.Authenticate(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("%q authenticated: %v", bad, err)
		}
	}
	// Expiry.
	now = now.Add(2 * time.Hour)
	if _, err := s.Authenticate(sec); !errors.Is(err, ErrNotFound) {
		t.Fatal("expired token works")
	}
	now = now.Add(-2 * time.Hour)
	// Revoking the parent revokes the child (through the store, not the cache).
	if err := s.Revoke(got); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(sec); !errors.Is(err, ErrNotFound) {
		t.Fatal("revoked token works")
	}
	if _, err := s.Authenticate(childSec); !errors.Is(err, ErrNotFound) {
		t.Fatal("child of a revoked token works")
	}
	if _, err := s.LookupAccessor(tok.Accessor); !errors.Is(err, ErrNotFound) {
		t.Fatal("accessor of a revoked token found")
	}
}

func TestNumUses(t *testing.T) {
	s := NewStore(NewMemBackend(), Options{})
	_, root, _ := s.CreateRoot("root")
	sec, _, err := s.Create(root, CreateRequest{NumUses: 2})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err := s.Lookup(sec); err != nil || tk.NumUses != 2 {
		t.Fatal("lookup counted a use", tk, err)
	}
	for i := 0; i < 2; i++ {
		if _, err := s.Authenticate(sec); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if _, err := s.Authenticate(sec); !errors.Is(err, ErrNotFound) {
		t.Fatal("third use of a 2-use token")
	}
	if _, _, err := s.Create(root, CreateRequest{NumUses: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

func TestCacheSeesOtherGatewaysRevocation(t *testing.T) {
	b := NewMemBackend()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a := NewStore(b, Options{Now: clock})
	other := NewStore(b, Options{Now: clock})
	sec, _, _ := a.CreateRoot("r")
	tk, err := a.Authenticate(sec)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Revoke(tk); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(sec); err != nil {
		t.Fatal("cached lookup should still answer within CacheTTL")
	}
	now = now.Add(3 * time.Second)
	if _, err := a.Authenticate(sec); !errors.Is(err, ErrNotFound) {
		t.Fatal("revocation by another gateway not seen after CacheTTL")
	}
}
