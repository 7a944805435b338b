package transit

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gohsm/gohsm/gateway/kv"
)

// ring is a key ring's metadata: the JSON entry in the kv store.
type ring struct {
	Name                 string           `json:"name"`
	Type                 string           `json:"type"`
	Versions             map[int]*version `json:"versions"`
	Latest               int              `json:"latest_version"`
	MinDecryption        int              `json:"min_decryption_version"`
	MinEncryption        int              `json:"min_encryption_version"`
	MinAvailable         int              `json:"min_available_version"`
	DeletionAllowed      bool             `json:"deletion_allowed"`
	Exportable           bool             `json:"exportable"`
	AllowPlaintextBackup bool             `json:"allow_plaintext_backup"`
	Derived              bool             `json:"derived"`
	AutoRotatePeriod     int64            `json:"auto_rotate_period"` // seconds, 0 = off
	KeySize              int              `json:"key_size,omitempty"`
}

// version is one key version: the CKA_ID stem of its objects, when it
// was made, and where its public key is.
//
// The public key (as Vault shows it) is a kv entry of its own, PubRef,
// not part of the ring's entry: an ML-DSA-87 key is 3.6 kB of PEM, and a
// ring whose entry held every version's would outgrow a token data object
// (kv.MaxValue) after some 70 rotations. Public keys never change, so an
// Engine caches them.
type version struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	PubRef  string    `json:"pub,omitempty"`
	HMAC    bool      `json:"hmac,omitempty"` // has a companion HMAC key
}

// Object IDs: the version stem plus one suffix per object.
const (
	objKey  = "/k" // secret or private key
	objPub  = "/p" // public key
	objHMAC = "/h" // companion HMAC key
)

func (v *version) id(suffix string) []byte { return []byte(v.ID + suffix) }

// ids are the CKA_IDs of every object of the version of a key of type kt.
func (v *version) ids(kt *keyType) [][]byte {
	out := [][]byte{v.id(objKey)}
	if kt != nil && kt.asymmetric() {
		out = append(out, v.id(objPub))
	}
	if v.HMAC {
		out = append(out, v.id(objHMAC))
	}
	return out
}

// nameRE is Vault's GenericNameRegex: a key name is one path segment.
// validName is what it matches, without the regexp engine on every
// request (TestValidNameMatchesRE holds the two together).
var nameRE = regexp.MustCompile(`^\w(([\w\-.@]+)?\w)?$`)

func validName(name string) bool {
	word := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
	}
	n := len(name)
	if n == 0 || !word(name[0]) || !word(name[n-1]) {
		return false
	}
	for i := 1; i < n-1; i++ {
		if c := name[i]; !word(c) && c != '-' && c != '.' && c != '@' {
			return false
		}
	}
	return true
}

func checkName(name string) error {
	if len(name) > 128 || !validName(name) {
		return badRequest("invalid key name %.130q: letters, digits, '_', '-', '.' and '@', at most 128", name)
	}
	return nil
}

func (e *Engine) metaKey(name string) string { return e.metaPrefix + name }

// cached is a ring as last read from (or written to) the store, with its
// exact stored bytes, the CAS comparand.
type cached struct {
	r   *ring
	raw []byte
	at  time.Time
}

// load reads the ring from the store (not the cache): nil, nil for
// none. A ring read to be modified is not cached (keep false): the cache
// holds only rings nobody changes.
func (e *Engine) load(name string, keep bool) (*ring, []byte, error) {
	raw, err := e.meta.Get(e.metaKey(name))
	if errors.Is(err, kv.ErrNotFound) {
		e.forget(name)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("key %q metadata: %w", name, err)
	}
	r := new(ring)
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, nil, fmt.Errorf("key %q metadata: %w", name, err)
	}
	if r.Versions == nil {
		r.Versions = map[int]*version{}
	}
	if keep {
		e.remember(name, r, raw)
	}
	return r, raw, nil
}

// ring returns the key ring, from the cache when fresh enough. The
// returned ring is shared: callers must not modify it.
func (e *Engine) ring(name string) (*ring, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if e.cfg.MetaTTL >= 0 {
		e.mu.RLock()
		c, ok := e.cache[name]
		e.mu.RUnlock()
		if ok && time.Since(c.at) < e.cfg.MetaTTL {
			return c.r, nil
		}
	}
	r, _, err := e.load(name, true)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, notFound(name)
	}
	return r, nil
}

func (e *Engine) remember(name string, r *ring, raw []byte) {
	if e.cfg.MetaTTL < 0 {
		return
	}
	e.mu.Lock()
	e.cache[name] = cached{r: r, raw: raw, at: time.Now()}
	e.mu.Unlock()
}

func (e *Engine) forget(name string) {
	e.mu.Lock()
	delete(e.cache, name)
	e.mu.Unlock()
}

// swap writes next in place of the entry whose bytes were old (nil: no
// entry; next nil: delete). It reports false when another writer got
// there first.
func (e *Engine) swap(name string, old []byte, next *ring) (bool, error) {
	var raw []byte
	if next != nil {
		var err error
		if raw, err = json.Marshal(next); err != nil {
			return false, err
		}
		if len(raw) > kv.MaxValue {
			return false, badRequest("key %q: metadata would exceed %d bytes; trim old versions first", name, kv.MaxValue)
		}
	}
	ok, err := e.meta.CompareAndSwap(e.metaKey(name), old, raw)
	if err != nil {
		return false, fmt.Errorf("key %q metadata: %w", name, err)
	}
	if !ok {
		e.lostSwaps.Add(1)
		e.forget(name)
		return false, nil
	}
	if next == nil {
		e.forget(name)
	} else {
		e.remember(name, next, raw)
	}
	return true, nil
}

// maxSwapTries bounds a read-modify-write that keeps losing: far more
// than gateways that could race on one key within a swap.
const maxSwapTries = 64

// update applies f to a fresh copy of the ring and swaps it in, retrying
// from a fresh read when another writer got there first. f must not have
// side effects outside the ring (rotate, which makes token objects, has
// its own loop).
func (e *Engine) update(name string, f func(r *ring) error) (*ring, error) {
	for range maxSwapTries {
		r, raw, err := e.load(name, false)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, notFound(name)
		}
		if err := f(r); err != nil {
			return nil, err
		}
		ok, err := e.swap(name, raw, r)
		if err != nil {
			return nil, err
		}
		if ok {
			return r, nil
		}
	}
	return nil, fmt.Errorf("key %q: metadata kept changing under %d tries", name, maxSwapTries)
}

// versionFor resolves a requested version for encryption-like use (0 is
// the latest), with Vault's rules.
func (r *ring) versionFor(req int, what string) (int, *version, *Error) {
	v := req
	if v == 0 {
		v = r.Latest
	}
	if v < 0 {
		return 0, nil, badRequest("invalid key_version %d", req)
	}
	if v > r.Latest {
		return 0, nil, badRequest("requested key_version %d is newer than the latest version %d", v, r.Latest)
	}
	if r.MinEncryption > 0 && v < r.MinEncryption {
		return 0, nil, badRequest("requested key_version %d is below the key's min_encryption_version %d", v, r.MinEncryption)
	}
	if v < r.MinDecryption {
		// Stricter than Vault: what it made could not be opened.
		return 0, nil, badRequest("requested key_version %d is below the key's min_decryption_version %d: its output could not be decrypted or verified", v, r.MinDecryption)
	}
	ver := r.Versions[v]
	if ver == nil {
		return 0, nil, badRequest("key_version %d has been trimmed", v)
	}
	return v, ver, nil
}

// versionForOpen resolves the version a ciphertext, signature or HMAC
// names, for decryption-like use.
func (r *ring) versionForOpen(v int, what string) (*version, *Error) {
	if v < r.MinDecryption {
		return nil, badRequest("%s version %d is disallowed by policy: below the key's min_decryption_version %d", what, v, r.MinDecryption)
	}
	if v > r.Latest {
		return nil, badRequest("invalid %s: version %d is newer than the key's latest version %d", what, v, r.Latest)
	}
	ver := r.Versions[v]
	if ver == nil {
		return nil, badRequest("invalid %s: key version %d has been trimmed", what, v)
	}
	return ver, nil
}

func itoa(i int) string { return strconv.Itoa(i) }

// fresh returns rg, or the ring read again from the store when some
// value in vals (versioned strings) names a version newer than rg knows:
// another gateway rotated within MetaTTL, and its output must open here
// at once.
func (e *Engine) fresh(rg *ring, vals func(yield func(string) bool)) (*ring, error) {
	for s := range vals {
		v, _, err := parseVersioned(e.prefix, s, "")
		if err == nil && v > rg.Latest {
			r, _, lerr := e.load(rg.Name, true)
			if lerr != nil {
				return nil, lerr
			}
			if r == nil {
				return nil, notFound(rg.Name)
			}
			return r, nil
		}
	}
	return rg, nil
}

// pubRef is the kv key of a version's public key.
func (e *Engine) pubRef(stem string) string {
	return "transit/" + e.mount + "/pub/" + strings.TrimPrefix(stem, "gohsm-transit/"+e.mount+"/")
}

// publicKeyOf is a version's public key, from the cache or the store.
func (e *Engine) publicKeyOf(v *version) (string, error) {
	if v.PubRef == "" {
		return "", nil
	}
	if pk, ok := e.pubs.Load(v.PubRef); ok {
		return pk.(string), nil
	}
	b, err := e.meta.Get(v.PubRef)
	if err != nil {
		return "", fmt.Errorf("public key %s: %w", v.PubRef, err)
	}
	e.pubs.Store(v.PubRef, string(b))
	return string(b), nil
}
