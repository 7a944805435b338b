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
//     object creation and login take it for writing.
//   - Objects are immutable in their identity (class, key type, private flag);
//     their attribute set is guarded by the object's own RWMutex and their
//     parsed key material is computed once (sync.Once) and then shared
//     read-only between sessions.
//
// Lock order: Module.mu (slot table) → Token.mu → Session.mu → Object.mu.
// Calls that hold a Session lock may take Token.mu for reading and Object.mu,
// never the reverse.
package hsm
