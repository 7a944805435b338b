// Package hsm is the gohsm engine: PKCS#11 semantics (slots, tokens,
// sessions, login, objects, operations) in pure Go, with no cgo, network or
// HTTP dependency. *Module implements Backend; the C shim, the appliance
// and the gateway all drive it through that interface.
//
// Concurrency model. There is no global lock on the hot path:
//   - Module.sessions is a sync.Map from handle to *Session; lookups on the
//     hot path are lock-free reads.
//   - Each Session has its own mutex, held for the duration of one call on
//     that session, so two sessions signing never wait on each other.
//   - Each Token has an RWMutex guarding its login state, its object table and
//     its search index. Operations take it for reading only to look a key up;
//     login and object commits take it for writing. Calls that make keys
//     (generation, unwrap, derive, the KEMs) check under the read lock, do
//     their cryptography with no token lock, and take the write lock only to
//     publish the new objects (objects.go: newObject, commit), so an RSA key
//     generation does not stall other sessions.
//   - Objects are immutable in their identity (class, key type, private flag);
//     their attribute set is guarded by the object's own RWMutex and their
//     parsed key material is computed once (sync.Once) and then shared
//     read-only between sessions.
//
// Lock order: Module.mu (slot table) → Session.mu → Token.mu → Object.mu.
// A call holds its session's lock throughout and takes Token.mu inside it;
// code holding Token.mu never waits for a Session lock (closeSession and
// CloseAllSessions release one before taking the other).
package hsm
