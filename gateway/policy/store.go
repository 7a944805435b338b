package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// KV is where a Store keeps documents: gateway/kv's Store method set (token
// data objects, so gateways sharing tokens share policies).
type KV interface {
	Get(key string) ([]byte, error)
	Put(key string, val []byte) error
	Delete(key string) error
	List(prefix string) ([]string, error)
}

// ErrNotFound: no policy of that name.
var ErrNotFound = errors.New("policy not found")

// storePrefix is the KV prefix of stored documents: policy/acl/<name>.
const storePrefix = "policy/acl/"

// Store keeps named policies in a KV and compiles ACLs for sets of them.
// It is safe for concurrent use: compiled ACLs are cached per policy set
// behind a mutex, for CacheTTL (2 s by default) so that a policy written
// through another gateway on the same tokens takes effect here within
// that; a write through this Store takes effect at once.
type Store struct {
	kv       KV
	notFound error // the KV's absent error, besides ErrNotFound
	ttl      time.Duration
	now      func() time.Time

	mu   sync.Mutex
	acls map[string]aclEntry // by sorted, comma-joined names
}

type aclEntry struct {
	acl   *ACL
	until time.Time
}

// NewStore returns a Store on kv. notFound is kv's "absent" error (nil if
// it returns this package's ErrNotFound); cacheTTL 0 means 2 s, negative
// means no cache.
func NewStore(kv KV, notFound error, cacheTTL time.Duration) *Store {
	if cacheTTL == 0 {
		cacheTTL = 2 * time.Second
	}
	return &Store{kv: kv, notFound: notFound, ttl: cacheTTL, now: time.Now, acls: map[string]aclEntry{}}
}

func (s *Store) isNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || (s.notFound != nil && errors.Is(err, s.notFound))
}

// Get returns the named policy: root and default are built in (a stored
// default overrides the built-in one, as in Vault).
func (s *Store) Get(name string) (*Policy, error) {
	name = NormalizeName(name)
	if name == "root" {
		return RootPolicy(), nil
	}
	if ValidateName(name) != nil {
		return nil, ErrNotFound
	}
	b, err := s.kv.Get(storePrefix + name)
	if err != nil {
		if s.isNotFound(err) {
			if name == "default" {
				return DefaultPolicy(), nil
			}
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("policy store: %w", err)
	}
	p, err := Parse(name, string(b))
	if err != nil {
		return nil, fmt.Errorf("stored policy %q no longer parses: %w", name, err)
	}
	return p, nil
}

// Put parses doc and stores it under name (a *ParseError for a bad document).
func (s *Store) Put(name, doc string) (*Policy, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	p, err := Parse(name, doc)
	if err != nil {
		return nil, err
	}
	if err := s.kv.Put(storePrefix+p.Name, []byte(doc)); err != nil {
		return nil, fmt.Errorf("policy store: %w", err)
	}
	s.invalidate()
	return p, nil
}

// Delete removes a stored policy; root and default cannot be deleted.
func (s *Store) Delete(name string) error {
	name = NormalizeName(name)
	switch name {
	case "root":
		return errors.New("cannot delete root policy")
	case "default":
		return errors.New("cannot delete default policy")
	}
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := s.kv.Delete(storePrefix + name); err != nil && !s.isNotFound(err) {
		return fmt.Errorf("policy store: %w", err)
	}
	s.invalidate()
	return nil
}

// List returns the policy names, sorted: default and root always, as
// Vault lists them.
func (s *Store) List() ([]string, error) {
	keys, err := s.kv.List(storePrefix)
	if err != nil {
		return nil, fmt.Errorf("policy store: %w", err)
	}
	out := []string{"default", "root"}
	for _, k := range keys {
		out = append(out, strings.TrimPrefix(k, storePrefix))
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// ACL compiles the named policies (unknown names are skipped, as Vault
// skips them). The result is cached per set of names.
func (s *Store) ACL(names []string) (*ACL, error) {
	var key string
	switch {
	case len(names) == 1:
		key = names[0] // the common case: no allocation
	case sort.StringsAreSorted(names):
		key = strings.Join(names, ",")
	default:
		sorted := slices.Clone(names)
		sort.Strings(sorted)
		key = strings.Join(sorted, ",")
	}
	now := s.now()
	if s.ttl > 0 {
		s.mu.Lock()
		e, ok := s.acls[key]
		s.mu.Unlock()
		if ok && now.Before(e.until) {
			return e.acl, nil
		}
	}
	ps := make([]*Policy, 0, len(names))
	for _, n := range names {
		p, err := s.Get(n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	acl := NewACL(ps...)
	if s.ttl > 0 {
		s.mu.Lock()
		if len(s.acls) > 10000 {
			clear(s.acls)
		}
		s.acls[key] = aclEntry{acl: acl, until: now.Add(s.ttl)}
		s.mu.Unlock()
	}
	return acl, nil
}

func (s *Store) invalidate() {
	s.mu.Lock()
	clear(s.acls)
	s.mu.Unlock()
}
