// Package kv is the gateway's key/value store: the key rings' metadata,
// API token records and policies. The gateway keeps no state of its own:
// OnToken keeps every entry as a private data object on a token, so
// several gateways serving one set of tokens see one store. NewMem is the
// same store in memory, for tests.
//
// Concurrency: every Store here is safe for concurrent use by many
// goroutines. Across gateways, Put and Delete are last-writer-wins per
// key; CompareAndSwap (the Swapper interface) is the conditional write for
// read-modify-write updates (a key ring's metadata). OnToken's doc states
// exactly what it guarantees, given that PKCS#11 has no transactions.
package kv

import (
	"errors"
	"strings"
)

// ErrNotFound is Get's error for a key with no entry.
var ErrNotFound = errors.New("kv: not found")

// Store is the store the gateway's packages take.
type Store interface {
	// Get returns the entry's value (a copy the caller owns; an empty
	// value is non-nil) or ErrNotFound.
	Get(key string) ([]byte, error)
	// Put sets the entry, last writer wins.
	Put(key string, val []byte) error
	// Delete removes the entry; deleting a missing key is not an error.
	Delete(key string) error
	// List returns the keys that start with prefix, sorted.
	List(prefix string) ([]string, error)
}

// Swapper is a Store with a conditional write. Both stores of this
// package are Swappers; a caller that needs the condition type-asserts.
type Swapper interface {
	Store
	// CompareAndSwap sets key to new only if its value is old, and
	// reports whether it did. old == nil means "no entry"; new == nil
	// deletes. A false result with a nil error means another writer got
	// there first: re-read and retry.
	CompareAndSwap(key string, old, new []byte) (bool, error)
}

// MaxKey and MaxValue bound an entry: a key is a token object's label, a
// value one attribute, and neither should grow without limit.
const (
	MaxKey   = 512
	MaxValue = 256 << 10
)

var errKey = errors.New("kv: empty or oversized key")

func checkKey(key string) error {
	if key == "" || len(key) > MaxKey || strings.IndexByte(key, 0) >= 0 {
		return errKey
	}
	return nil
}

func checkValue(v []byte) error {
	if len(v) > MaxValue {
		return errors.New("kv: value too large")
	}
	return nil
}
