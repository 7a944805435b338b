package hsm

import (
	"errors"
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Storage is where the engine's tokens live. The tokens package implements
// it on disk; MemoryStorage keeps everything in process for tests and for
// session-only use. The engine never imports an implementation.
type Storage interface {
	// Stores returns the stores of the tokens that exist, in slot order.
	Stores() ([]Store, error)
	// Create makes the store for a new token when the free slot is
	// initialised with C_InitToken.
	Create() (Store, error)
}

// Store persists one token. Every method is atomic: after a crash either the
// whole change is there or none of it. Records hold secrets only in sealed
// form; the engine seals and opens them, so a Store never sees a key or a
// PIN in the clear.
type Store interface {
	// LoadToken returns the token record, or (nil, nil) for a store that
	// was created but never initialised.
	LoadToken() (*TokenRecord, error)
	// SaveToken replaces the token record.
	SaveToken(*TokenRecord) error
	// UpdateToken reads the record, lets fn change it and writes it back
	// in one transaction, so that read-modify-write updates (the PIN retry
	// counters) are exact when several processes share the token. If fn
	// fails nothing is written and its error is returned. It returns the
	// record as written.
	UpdateToken(fn func(*TokenRecord) error) (*TokenRecord, error)
	// Reinit replaces the token record and removes every object at once
	// (C_InitToken).
	Reinit(*TokenRecord) error
	// Objects calls fn for every stored object, with its Gen set.
	Objects(fn func(*ObjectRecord) error) error
	// Commit applies one change to the objects, all of it or none, and
	// only if every version it was decided on is still the stored one:
	// otherwise it writes nothing and returns an error wrapping
	// ErrConflict. Several processes share a token and each decides on
	// its own view (a stale process relabelling a key another made
	// sensitive must not write the old CKA_SENSITIVE back), so every
	// write the engine makes is a compare-and-set against the versions it
	// read. On success each Put record's Gen is the generation it was
	// written at.
	Commit(*Change) error
	// NewObjectID returns an id no object of this token has had.
	NewObjectID() (uint64, error)
	Close() error
}

// TokenRecord is the persistent state of a token.
type TokenRecord struct {
	Label  string
	Serial string
	// UserPINSet is CKF_USER_PIN_INITIALIZED.
	UserPINSet bool
	// SOFailures and UserFailures count consecutive wrong PINs; they are
	// persisted so that the lockout survives restarts.
	SOFailures   int
	UserFailures int
	// SOKey and UserKey are the token key wrapped under keys derived from
	// the SO and the user PIN.
	SOKey   WrappedKey
	UserKey WrappedKey
	// PublicKey seals the secret attributes of public objects (CKA_PRIVATE
	// false), which must work before login; it is stored in the clear
	// beside them, so it only keeps those values out of casual view.
	PublicKey []byte
}

// WrappedKey is a key sealed with AES-256-GCM under a KDF of a PIN.
type WrappedKey struct {
	KDF        string // "pbkdf2-sha256"
	Salt       []byte
	Iterations int
	Nonce      []byte
	Sealed     []byte
}

// ObjectRecord is one stored object.
type ObjectRecord struct {
	ID uint64
	// Gen is the version of the record: the store generation of the
	// commit that wrote it. A store sets it on every record it returns;
	// in a Commit's Put it is the version the change replaces (0: a new
	// object, whose id must never have been stored, deleted ones
	// included, so that a destroyed object is never brought back).
	Gen     uint64
	Private bool
	// Attrs are the attributes kept in the clear (everything but secret
	// key material).
	Attrs []ck.Attribute
	// Sealed holds the secret attributes, AES-256-GCM under the token key
	// (private objects) or TokenRecord.PublicKey, with the object id as
	// associated data so that blobs cannot be moved between objects.
	Sealed []byte
}

// SharedStore is a Store that other processes may change at the same time.
// The engine asks Changed at the start of the calls that must see other
// processes' work (C_FindObjectsInit, login, token info) and catches up with
// ObjectsSince, whose cost is the number of changes, not the token's size.
type SharedStore interface {
	Store
	// Changed reports whether anyone else committed since this store last
	// loaded; its own writes do not count.
	Changed() (bool, error)
	// ObjectsSince calls put for every object written and del for every id
	// deleted after generation since; since = 0 loads everything.
	ObjectsSince(since uint64, put func(*ObjectRecord) error, del func(id uint64) error) (Delta, error)
}

// Delta says what ObjectsSince found.
type Delta struct {
	// Generation is the snapshot the delta brings the caller to; pass it
	// as since next time.
	Generation uint64
	// Reset means the token was reinitialised: put saw every object and
	// everything else the caller holds is gone.
	Reset bool
	// Token means the token record changed: call LoadToken.
	Token bool
}

// Change is one atomic write to a token's objects (Store.Commit).
type Change struct {
	// Put inserts (Gen 0) or replaces (Gen = the stored version) objects.
	Put []*ObjectRecord
	// Delete removes objects at these versions; a deleted id is
	// remembered (tombstoned) and never stored again.
	Delete []ObjectVersion
	// Require names objects the change was decided on without writing
	// them (the source of C_CopyObject): each must still be stored at
	// that version.
	Require []ObjectVersion
}

// ObjectVersion names one stored version of an object.
type ObjectVersion struct {
	ID  uint64
	Gen uint64
}

// ErrConflict is what Commit wraps when a version it was given is no
// longer the stored one (changed or deleted by another process, or a new
// id that exists or existed). The engine catches up and decides again.
var ErrConflict = errors.New("object changed by another process")

// Validate checks a change's shape: every object named has a non-zero id
// and is named at most once among Put and Delete. A bad change is the
// engine's bug: CKR_GENERAL_ERROR.
func (ch *Change) Validate() error {
	named := make(map[uint64]bool, len(ch.Put)+len(ch.Delete))
	name := func(id uint64) error {
		if id == 0 {
			return fmt.Errorf("commit: object id 0: %w", ck.CKR_GENERAL_ERROR)
		}
		if named[id] {
			return fmt.Errorf("commit: object %d named twice in one change: %w", id, ck.CKR_GENERAL_ERROR)
		}
		named[id] = true
		return nil
	}
	for _, o := range ch.Put {
		if o == nil {
			return fmt.Errorf("commit: no record: %w", ck.CKR_GENERAL_ERROR)
		}
		if err := name(o.ID); err != nil {
			return err
		}
	}
	for _, v := range ch.Delete {
		if err := name(v.ID); err != nil {
			return err
		}
	}
	return nil
}

// Writes reports whether the change writes anything (a Require-only
// change only checks).
func (ch *Change) Writes() bool { return len(ch.Put) > 0 || len(ch.Delete) > 0 }

// Check decides a change's preconditions (Commit's contract) against the
// stored state, which state reports for one id: whether a row is stored,
// its version, and whether the id was ever deleted. Every Store calls it
// inside its transaction, so the rule is written once.
func (ch *Change) Check(state func(id uint64) (stored bool, gen uint64, deleted bool, err error)) error {
	at := func(what string, v ObjectVersion) error {
		stored, g, _, err := state(v.ID)
		switch {
		case err != nil:
			return err
		case !stored:
			return fmt.Errorf("%s object %d at generation %d: it is gone: %w", what, v.ID, v.Gen, ErrConflict)
		case g != v.Gen:
			return fmt.Errorf("%s object %d at generation %d: it is at %d: %w", what, v.ID, v.Gen, g, ErrConflict)
		}
		return nil
	}
	for _, v := range ch.Require {
		if err := at("require", v); err != nil {
			return err
		}
	}
	for _, v := range ch.Delete {
		if err := at("delete", v); err != nil {
			return err
		}
	}
	for _, o := range ch.Put {
		if o.Gen != 0 {
			if err := at("replace", ObjectVersion{ID: o.ID, Gen: o.Gen}); err != nil {
				return err
			}
			continue
		}
		stored, _, deleted, err := state(o.ID)
		switch {
		case err != nil:
			return err
		case stored:
			return fmt.Errorf("insert object %d: the id is taken: %w", o.ID, ErrConflict)
		case deleted:
			return fmt.Errorf("insert object %d: the id was deleted and is never stored again: %w", o.ID, ErrConflict)
		}
	}
	return nil
}
