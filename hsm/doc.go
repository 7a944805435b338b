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
//   - Each Token has an RWMutex that serialises changes: login and logout,
//     object commits and destroys, the search index, the per-session object
//     sets. Operations take no token lock: the object table is a sync.Map
//     (objtable.go) and the login state is atomic, so C_SignInit finds its
//     key while another session commits (the read lock is taken only to
//     unseal a key on its first use after login). Calls that make keys
//     (generation, unwrap, derive, the KEMs) check access, do their
//     cryptography with no token lock, and take the write lock only to
//     publish the new objects (objects.go: newObject, commit), re-checking
//     access there; so an RSA key generation stalls nobody.
//   - A logout's effects are ordered for the lock-free readers: the login
//     state changes before the login generation, and an operation reads the
//     generation before looking its key up, so one of the two sees the
//     logout (ops.go initKeyOp).
//   - Objects are immutable in their identity (class, key type, private flag);
//     their attribute set is guarded by the object's own RWMutex (replaced,
//     never edited in place) and their parsed key material is computed once,
//     under that lock, and then shared read-only between sessions.
//
// Lock order: Module.mu (slot table) → Session.mu → Token.mu → Object.mu.
// A call holds its session's lock throughout and takes Token.mu inside it;
// code holding Token.mu never waits for a Session lock (closeSession and
// CloseAllSessions release one before taking the other).
package hsm
