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
//   - Each Token has an RWMutex that serialises changes to the token as a
//     whole: login and logout, token objects (their commits, destroys and
//     search index), C_SetAttributeValue, closing sessions. Operations take
//     no token lock: the object table is a sync.Map (objtable.go) and the
//     login state is atomic, so C_SignInit finds its key while another
//     session commits (the read lock is taken only to unseal a key on its
//     first use after login). Calls that make keys (generation, unwrap,
//     derive, the KEMs) check access, do their cryptography with no token
//     lock, and take the write lock only to publish a token object
//     (objects.go: newObject, commit), re-checking access there; so an RSA
//     key generation stalls nobody.
//   - Session objects live with the session that made them
//     (sessionobjects.go: their set and index under that set's own mutex)
//     and are made and destroyed with no token lock at all, so sessions
//     making a key per call (a KEM) do not wait for each other. A logout
//     bumps the login generation before it destroys the private ones
//     (§5.6 C_Logout), and a commit re-reads the generation after
//     publishing, so a private session object made across a logout never
//     outlives it (commitSession).
//   - A logout's effects are ordered for the lock-free readers: the login
//     state changes before the login generation, and an operation reads the
//     generation before looking its key up, so one of the two sees the
//     logout (ops.go initKeyOp).
//   - Objects are immutable in their identity (class, key type, private flag).
//     Their clear attributes are replaced whole, never edited, and read with
//     one atomic load (no lock: a key used by many threads is not a shared
//     lock); their secrets are guarded by the object's own RWMutex, and their
//     parsed key material is computed once, under that lock, and then shared
//     read-only between sessions.
//
// Lock order: Module.mu (slot table) → Session.mu → Token.mu →
// sessionObjects.mu → Object.mu. A call holds its session's lock
// throughout and takes the others inside it; code holding Token.mu never
// waits for a Session lock (closeSession and CloseAllSessions release one
// before taking the other).
package hsm
