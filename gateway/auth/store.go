package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Token is the public view of a token: everything the lookup endpoints
// show. It never holds the secret.
type Token struct {
	Accessor       string
	Policies       []string
	DisplayName    string
	Meta           map[string]string
	Parent         string // parent's accessor; "" for an orphan
	Orphan         bool
	Path           string // "auth/token/create", "auth/token/root", "auth/cert"
	CreationTime   time.Time
	CreationTTL    time.Duration
	ExpireTime     time.Time // zero: never
	ExplicitMaxTTL time.Duration
	NumUses        int // uses left; 0: unlimited
	Renewable      bool
	Type           string // "service", or "cert" for a certificate identity

	hash string // the store's key; "" for a certificate identity
}

// ID names the token without revealing it (the store's key, a hash of
// the secret); "" for a certificate identity. Callers key per-token caches
// by it.
func (t *Token) ID() string { return t.hash }

// IsRoot reports whether the token holds the root policy.
func (t *Token) IsRoot() bool { return t != nil && slices.Contains(t.Policies, "root") }

// TTL is the time left before the token expires (0 for a token that never does).
func (t *Token) TTL(now time.Time) time.Duration {
	if t.ExpireTime.IsZero() {
		return 0
	}
	return max(t.ExpireTime.Sub(now), 0)
}

// ErrInvalid marks a request the store refuses (the core answers 400 with
// the error's text).
var ErrInvalid = errors.New("invalid request")

// ErrForbidden marks a create the parent may not make (the core answers 403).
var ErrForbidden = errors.New("permission denied")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Options configure a Store. The zero value is the defaults.
type Options struct {
	// CacheTTL bounds how long a lookup is served from memory (2 s by
	// default; negative: no cache): how late a revocation made by another
	// gateway on the same backend is seen here.
	CacheTTL time.Duration
	// DefaultTTL is the TTL of a token created without one, and MaxTTL the
	// most any token gets (Vault's 768 h, 32 days, for both by default).
	DefaultTTL, MaxTTL time.Duration
	// NotFound is the backend's "absent" error when it is not ErrNotFound
	// (gateway/kv's ErrNotFound): Get errors matching it mean "no such key".
	NotFound error
	// Certificates map client certificates to identities (ForCertificate).
	Certificates []CertIdentity
	// Now is the clock (tests).
	Now func() time.Time
}

// CertIdentity maps a client certificate to policies: by the SHA-256 of
// its DER encoding (hex, any case, colons allowed) or, if Fingerprint is
// empty, by subject common name.
type CertIdentity struct {
	Name        string   `json:"name"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	CommonName  string   `json:"common_name,omitempty"`
	Policies    []string `json:"policies"`
}

// Store keeps tokens in a Backend. It is safe for concurrent use: the
// backend is, the lookup cache is behind a mutex, and the read-modify-write
// of a num_uses token is under the store's use lock.
type Store struct {
	b    Backend
	opts Options

	mu    sync.Mutex
	cache map[string]cacheEntry // by hash

	useMu sync.Mutex // serialises num_uses decrements
}

type cacheEntry struct {
	rec   *record
	until time.Time
}

// Backend keys.
const (
	keyHash     = "token/h/"
	keyAccessor = "token/a/"
	keyChild    = "token/c/"
)

// NewStore returns a Store on b.
func NewStore(b Backend, opts Options) *Store {
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 2 * time.Second
	}
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = 768 * time.Hour
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = 768 * time.Hour
	}
	if opts.DefaultTTL > opts.MaxTTL {
		opts.DefaultTTL = opts.MaxTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{b: b, opts: opts, cache: map[string]cacheEntry{}}
}

func (s *Store) notFound(err error) bool {
	return errors.Is(err, ErrNotFound) || (s.opts.NotFound != nil && errors.Is(err, s.opts.NotFound))
}

// hashSecret is the stored form of a secret (doc.go: why a plain hash).
func hashSecret(secret string) string {
	const domain = "gohsm-gateway-token\x00"
	var buf [128]byte // domain + a well-formed secret fit: no allocation
	sum := sha256.Sum256(append(append(buf[:0], domain...), secret...))
	clear(buf[:])
	return hex.EncodeToString(sum[:])
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomBase62 draws n base62 characters from crypto/rand without bias
// (rejection of bytes >= 248).
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+16)
	for len(out) < n {
		rand.Read(buf) // never fails (Go 1.24+)
		for _, c := range buf {
			if c < 248 && len(out) < n {
				out = append(out, base62[c%62])
			}
		}
	}
	return string(out)
}

// SecretPrefix starts every secret (Vault's service-token prefix).
const SecretPrefix = "hvs."

const (
	secretLen   = 43 // base62 characters: 256 bits
	accessorLen = 24
)

func validAccessor(s string) bool {
	if len(s) != accessorLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	return true
}

// wellFormed reports whether s can be a secret this store made: the check
// that keeps garbage out of the backend's key space.
func wellFormed(s string) bool {
	if len(s) != len(SecretPrefix)+secretLen || !strings.HasPrefix(s, SecretPrefix) {
		return false
	}
	for i := len(SecretPrefix); i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	return true
}

// CreateRequest is auth/token/create's body, decoded.
type CreateRequest struct {
	Policies        []string
	NoDefaultPolicy bool
	TTL             time.Duration // 0: DefaultTTL (or the parent's remaining TTL if less)
	ExplicitMaxTTL  time.Duration
	NumUses         int
	DisplayName     string
	Meta            map[string]string
	NoParent        bool // an orphan: needs root or sudo
	Renewable       *bool
	// Sudo: the caller has sudo on the create path (may make orphans and
	// tokens with policies its own does not hold).
	Sudo bool
	// Path is recorded as the token's path ("auth/token/create" by default).
	Path string
}

// Create makes a token as parent's child (parent nil: the store's own
// root token, see CreateRoot) and returns its secret, which is never
// stored and cannot be recovered.
func (s *Store) Create(parent *Token, req CreateRequest) (string, *Token, error) {
	now := s.opts.Now()
	if req.NumUses < 0 {
		return "", nil, invalid("num_uses cannot be negative")
	}
	if req.TTL < 0 || req.ExplicitMaxTTL < 0 {
		return "", nil, invalid("ttl cannot be negative")
	}
	if len(req.DisplayName) > maxDisplayName {
		return "", nil, invalid("display_name longer than %d characters", maxDisplayName)
	}
	if len(req.Meta) > maxMeta {
		return "", nil, invalid("more than %d meta entries", maxMeta)
	}
	for k, v := range req.Meta {
		if k == "" || len(k) > maxMetaKey || len(v) > maxMetaValue {
			return "", nil, invalid("meta key %q: keys of 1..%d and values up to %d bytes", k, maxMetaKey, maxMetaValue)
		}
	}
	// Policies: normalised, sorted, deduplicated; "default" added as Vault
	// adds it; "root" only from root.
	pols := make([]string, 0, len(req.Policies)+1)
	for _, p := range req.Policies {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if len(p) > maxPolicyName {
			return "", nil, invalid("policy name longer than %d characters", maxPolicyName)
		}
		pols = append(pols, p)
	}
	parentRoot := parent == nil || parent.IsRoot()
	if len(pols) == 0 && parent != nil {
		// Vault: no policies given inherits the parent's.
		pols = append(pols, parent.Policies...)
	}
	if !req.NoDefaultPolicy && !slices.Contains(pols, "root") {
		pols = append(pols, "default")
	}
	slices.Sort(pols)
	pols = slices.Compact(pols)
	if len(pols) > maxPolicies {
		return "", nil, invalid("more than %d policies", maxPolicies)
	}
	if slices.Contains(pols, "root") && !parentRoot {
		return "", nil, fmt.Errorf("%w: root tokens may only be created by a root token", ErrForbidden)
	}
	if !parentRoot && !req.Sudo {
		for _, p := range pols {
			if p != "default" && !slices.Contains(parent.Policies, p) {
				return "", nil, invalid("child policies must be subset of parent")
			}
		}
	}
	if req.NoParent && !parentRoot && !req.Sudo {
		return "", nil, fmt.Errorf("%w: root or sudo privileges required to create orphan token", ErrForbidden)
	}
	if parent != nil && parent.Type == "cert" {
		req.NoParent = true // a certificate identity cannot be a parent: it has no record
	}

	ttl := req.TTL
	if ttl == 0 && !slices.Contains(pols, "root") {
		ttl = s.opts.DefaultTTL
	}
	if ttl > s.opts.MaxTTL {
		ttl = s.opts.MaxTTL
	}
	if req.ExplicitMaxTTL > 0 && (ttl == 0 || ttl > req.ExplicitMaxTTL) {
		ttl = req.ExplicitMaxTTL
	}
	r := &record{
		V:           recordVersion,
		Accessor:    randomBase62(accessorLen),
		Policies:    pols,
		DisplayName: req.DisplayName,
		Meta:        req.Meta,
		Path:        req.Path,
		Created:     now.UnixNano(),
		TTL:         int64(ttl),
		ExplicitMax: int64(req.ExplicitMaxTTL),
		NumUses:     req.NumUses,
		Renewable:   req.Renewable == nil || *req.Renewable,
	}
	if r.Path == "" {
		r.Path = "auth/token/create"
	}
	if r.DisplayName == "" {
		r.DisplayName = "token"
	} else if !strings.HasPrefix(r.DisplayName, "token-") {
		r.DisplayName = "token-" + r.DisplayName // Vault's form
	}
	if ttl > 0 {
		r.Expire = now.Add(ttl).UnixNano()
	}
	if parent != nil && !req.NoParent && parent.hash != "" {
		r.Parent, r.ParentHash = parent.Accessor, parent.hash
		// A child never outlives its parent.
		if !parent.ExpireTime.IsZero() && (r.Expire == 0 || r.Expire > parent.ExpireTime.UnixNano()) {
			r.Expire = parent.ExpireTime.UnixNano()
			r.TTL = r.Expire - r.Created
		}
	}
	if r.Expire != 0 {
		r.MaxExpire = r.Expire
	}
	secret := SecretPrefix + randomBase62(secretLen)
	r.Hash = hashSecret(secret)
	if err := r.validate(); err != nil {
		return "", nil, invalid("%v", err)
	}
	b, err := r.encode()
	if err != nil {
		return "", nil, err
	}
	// Index entries first, the record last: a token exists exactly when
	// its record does (doc.go).
	if err := s.b.Put(keyAccessor+r.Accessor, []byte(r.Hash)); err != nil {
		return "", nil, fmt.Errorf("token store: %w", err)
	}
	if r.Parent != "" {
		if err := s.b.Put(keyChild+r.Parent+"/"+r.Accessor, nil); err != nil {
			return "", nil, fmt.Errorf("token store: %w", err)
		}
	}
	if err := s.b.Put(keyHash+r.Hash, b); err != nil {
		return "", nil, fmt.Errorf("token store: %w", err)
	}
	t := r.token()
	t.hash = r.Hash
	return secret, t, nil
}

// CreateRoot makes a root token (policy root, no TTL, no parent): for dev
// mode and for bootstrapping (`gohsm serve` prints it once).
func (s *Store) CreateRoot(displayName string) (string, *Token, error) {
	return s.Create(nil, CreateRequest{Policies: []string{"root"}, DisplayName: displayName, Path: "auth/token/root", NoParent: true})
}

// Authenticate resolves a secret sent with a request to its token and
// counts one use. Any failure (malformed, unknown, expired, revoked, used
// up, parent gone) is ErrNotFound: the client learns nothing more than
// "permission denied".
func (s *Store) Authenticate(secret string) (*Token, error) { return s.lookup(secret, true) }

// Lookup resolves a secret without counting a use (auth/token/lookup).
func (s *Store) Lookup(secret string) (*Token, error) { return s.lookup(secret, false) }

func (s *Store) lookup(secret string, use bool) (*Token, error) {
	if !wellFormed(secret) {
		return nil, ErrNotFound
	}
	return s.byHash(hashSecret(secret), use, 0)
}

// maxDepth bounds the parent chain walked (a loop in a damaged store ends).
const maxDepth = 32

func (s *Store) byHash(hash string, use bool, depth int) (*Token, error) {
	if depth > maxDepth {
		return nil, ErrNotFound
	}
	now := s.opts.Now()
	r, err := s.record(hash, now)
	if err != nil {
		return nil, err
	}
	if r.Expire != 0 && now.UnixNano() >= r.Expire {
		return nil, ErrNotFound
	}
	if r.ParentHash != "" {
		if _, err := s.byHash(r.ParentHash, false, depth+1); err != nil {
			return nil, ErrNotFound
		}
	}
	if use && r.NumUses > 0 {
		if r, err = s.useOnce(hash); err != nil {
			return nil, err
		}
	}
	t := r.token()
	t.hash = hash
	return t, nil
}

// record fetches a record by hash, from the cache if fresh. Records with
// num_uses are never cached.
func (s *Store) record(hash string, now time.Time) (*record, error) {
	if s.opts.CacheTTL > 0 {
		s.mu.Lock()
		e, ok := s.cache[hash]
		s.mu.Unlock()
		if ok && now.Before(e.until) {
			return e.rec, nil
		}
	}
	b, err := s.b.Get(keyHash + hash)
	if err != nil {
		if s.notFound(err) {
			s.drop(hash)
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("token store: %w", err)
	}
	r, err := decodeRecord(b)
	if err != nil {
		return nil, ErrNotFound
	}
	// The backend answered for this key; make sure the record says so too.
	if subtle.ConstantTimeCompare([]byte(r.Hash), []byte(hash)) != 1 {
		return nil, ErrNotFound
	}
	if s.opts.CacheTTL > 0 && r.NumUses == 0 {
		s.mu.Lock()
		if len(s.cache) > 100000 {
			clear(s.cache) // bounded: a flood of distinct tokens costs reads, not memory
		}
		s.cache[hash] = cacheEntry{rec: r, until: now.Add(s.opts.CacheTTL)}
		s.mu.Unlock()
	}
	return r, nil
}

func (s *Store) drop(hash string) {
	s.mu.Lock()
	delete(s.cache, hash)
	s.mu.Unlock()
}

// useOnce takes one use from a num_uses token; the last use revokes it
// (the request it authenticates still runs, as in Vault).
func (s *Store) useOnce(hash string) (*record, error) {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	b, err := s.b.Get(keyHash + hash)
	if err != nil {
		if s.notFound(err) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("token store: %w", err)
	}
	r, err := decodeRecord(b)
	if err != nil || r.NumUses <= 0 {
		return nil, ErrNotFound
	}
	left := *r
	left.NumUses--
	if left.NumUses == 0 {
		if err := s.revokeRecord(r); err != nil {
			return nil, err
		}
		// The view keeps NumUses 1 (this use): 0 would read as unlimited.
		return r, nil
	}
	nb, err := left.encode()
	if err != nil {
		return nil, err
	}
	if err := s.b.Put(keyHash+hash, nb); err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	return &left, nil
}

// LookupAccessor finds a token by accessor (auth/token/lookup-accessor).
func (s *Store) LookupAccessor(accessor string) (*Token, error) {
	if !validAccessor(accessor) {
		return nil, ErrNotFound
	}
	h, err := s.b.Get(keyAccessor + accessor)
	if err != nil {
		if s.notFound(err) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("token store: %w", err)
	}
	if !isHashHex(string(h)) {
		return nil, ErrNotFound
	}
	return s.byHash(string(h), false, 0)
}

// Revoke revokes t and all its descendants.
func (s *Store) Revoke(t *Token) error {
	if t == nil || t.hash == "" {
		return invalid("this identity has no token to revoke")
	}
	b, err := s.b.Get(keyHash + t.hash)
	if err != nil {
		if s.notFound(err) {
			s.drop(t.hash)
			return nil
		}
		return fmt.Errorf("token store: %w", err)
	}
	r, err := decodeRecord(b)
	if err != nil {
		// A damaged record: remove it anyway.
		s.drop(t.hash)
		return s.b.Delete(keyHash + t.hash)
	}
	return s.revokeRecord(r)
}

// RevokeAccessor revokes the token with this accessor and its descendants.
func (s *Store) RevokeAccessor(accessor string) error {
	t, err := s.LookupAccessor(accessor)
	if err != nil {
		return err
	}
	return s.Revoke(t)
}

// revokeRecord deletes the record first (the token stops working), then
// the descendants, then the index entries.
func (s *Store) revokeRecord(r *record) error {
	return s.revokeTree(r, 0)
}

func (s *Store) revokeTree(r *record, depth int) error {
	if err := s.b.Delete(keyHash + r.Hash); err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	s.drop(r.Hash)
	if depth < maxDepth {
		kids, err := s.b.List(keyChild + r.Accessor + "/")
		if err != nil {
			return fmt.Errorf("token store: %w", err)
		}
		for _, k := range kids {
			acc := k[strings.LastIndexByte(k, '/')+1:]
			if h, err := s.b.Get(keyAccessor + acc); err == nil && isHashHex(string(h)) {
				if b, err := s.b.Get(keyHash + string(h)); err == nil {
					if cr, err := decodeRecord(b); err == nil {
						if err := s.revokeTree(cr, depth+1); err != nil {
							return err
						}
					}
				}
			}
			s.b.Delete(k)
		}
	}
	s.b.Delete(keyAccessor + r.Accessor)
	if r.Parent != "" {
		s.b.Delete(keyChild + r.Parent + "/" + r.Accessor)
	}
	return nil
}

// ForCertificate maps a verified client certificate to an identity, or
// returns ErrNotFound. The TLS layer must have verified the chain.
func (s *Store) ForCertificate(cert *x509.Certificate) (*Token, error) {
	if cert == nil {
		return nil, ErrNotFound
	}
	sum := sha256.Sum256(cert.Raw)
	fp := hex.EncodeToString(sum[:])
	for i := range s.opts.Certificates {
		c := &s.opts.Certificates[i]
		match := false
		if c.Fingerprint != "" {
			want := strings.ToLower(strings.ReplaceAll(c.Fingerprint, ":", ""))
			match = subtle.ConstantTimeCompare([]byte(want), []byte(fp)) == 1
		} else if c.CommonName != "" {
			match = c.CommonName == cert.Subject.CommonName
		}
		if !match {
			continue
		}
		pols := append([]string(nil), c.Policies...)
		if !slices.Contains(pols, "default") && !slices.Contains(pols, "root") {
			pols = append(pols, "default")
		}
		slices.Sort(pols)
		// A stable accessor derived from the fingerprint: quotas and audit
		// see one identity per certificate.
		return &Token{
			Accessor:     "cert-" + fp[:24],
			Policies:     pols,
			DisplayName:  "cert-" + c.Name,
			Orphan:       true,
			Path:         "auth/cert/login",
			CreationTime: cert.NotBefore,
			ExpireTime:   cert.NotAfter,
			Type:         "cert",
		}, nil
	}
	return nil, ErrNotFound
}
