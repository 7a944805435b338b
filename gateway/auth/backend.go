package auth

import (
	"errors"
	"sort"
	"strings"
	"sync"
)

// ErrNotFound is returned by Lookup and friends for a token that is unknown,
// expired, revoked or used up (the core answers 403 "permission denied", as
// Vault does), and by a Backend's Get for an absent key.
var ErrNotFound = errors.New("token not found")

// Backend is where tokens are kept: a flat key-value store the core
// implements on token data objects. Keys are printable ASCII, at most 100
// bytes; values at most a few KiB. It must be safe for concurrent use.
type Backend interface {
	// Put stores val under key, replacing any value.
	Put(key string, val []byte) error
	// Get returns key's value, or an error wrapping ErrNotFound.
	Get(key string) ([]byte, error)
	// Delete removes key; an absent key is not an error.
	Delete(key string) error
	// List returns every key that starts with prefix (the whole keys), in
	// any order.
	List(prefix string) ([]string, error)
}

// MemBackend is an in-memory Backend for tests and ephemeral dev servers.
type MemBackend struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemBackend returns an empty MemBackend.
func NewMemBackend() *MemBackend { return &MemBackend{m: map[string][]byte{}} }

// Put implements Backend.
func (b *MemBackend) Put(key string, val []byte) error {
	b.mu.Lock()
	b.m[key] = append([]byte(nil), val...)
	b.mu.Unlock()
	return nil
}

// Get implements Backend.
func (b *MemBackend) Get(key string) ([]byte, error) {
	b.mu.RLock()
	v, ok := b.m[key]
	b.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

// Delete implements Backend.
func (b *MemBackend) Delete(key string) error {
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
	return nil
}

// List implements Backend (sorted, for tests' convenience).
func (b *MemBackend) List(prefix string) ([]string, error) {
	b.mu.RLock()
	var out []string
	for k := range b.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	b.mu.RUnlock()
	sort.Strings(out)
	return out, nil
}

// Len returns the number of keys (for tests).
func (b *MemBackend) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.m)
}

// Dump returns a copy of every key and value (for tests that check what is
// stored).
func (b *MemBackend) Dump() map[string][]byte {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make(map[string][]byte, len(b.m))
	for k, v := range b.m {
		out[k] = append([]byte(nil), v...)
	}
	return out
}
