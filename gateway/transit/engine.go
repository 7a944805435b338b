package transit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/gateway/kv"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Engine serves one Transit mount: its key rings and their operations.
type Engine struct {
	mount      string
	metaPrefix string
	ex         Exec
	meta       kv.Swapper
	cfg        Config
	types      *table
	prefix     string // ciphertext prefix, "vault:" by default

	mu    sync.RWMutex
	cache map[string]cached
	pubs  sync.Map // PubRef -> public key (immutable)

	// lostSwaps counts metadata writes that lost to another writer and
	// were retried (Stats): contention between gateways, made visible.
	lostSwaps atomic.Int64
}

// Stats are counters for metrics.
type Stats struct {
	// LostSwaps is how many key-ring metadata writes found the entry
	// changed by another writer and started again.
	LostSwaps int64
}

// Stats reads the engine's counters.
func (e *Engine) Stats() Stats { return Stats{LostSwaps: e.lostSwaps.Load()} }

// Defaults of Config.
const (
	DefaultMaxBatch = 4096
	DefaultMetaTTL  = time.Second
	maxRandomBytes  = 1 << 20
)

// New returns the engine of mount (e.g. "transit", the path without
// slashes at either end) over the tokens ex reaches, keeping key-ring
// metadata in meta. meta must be a kv.Swapper: read-modify-write of a ring
// needs its conditional write (see the package doc).
func New(mount string, ex Exec, meta kv.Store, cfg Config) (*Engine, error) {
	mount = strings.Trim(mount, "/")
	if mount == "" {
		return nil, errors.New("transit: empty mount")
	}
	if ex == nil {
		return nil, errors.New("transit: nil Exec")
	}
	sw, ok := meta.(kv.Swapper)
	if !ok {
		return nil, fmt.Errorf("transit: metadata store %T has no CompareAndSwap (kv.Swapper)", meta)
	}
	if cfg.CiphertextPrefix == "" {
		cfg.CiphertextPrefix = "vault:"
	}
	if strings.ContainsAny(cfg.CiphertextPrefix, " \t\n") {
		return nil, fmt.Errorf("transit: ciphertext prefix %q has white space", cfg.CiphertextPrefix)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MetaTTL == 0 {
		cfg.MetaTTL = DefaultMetaTTL
	}
	prof := ck.DefaultProfile
	if cfg.SMProfile != "" {
		p, ok := ck.ProfileByName(cfg.SMProfile)
		if !ok {
			return nil, fmt.Errorf("transit: unknown SM profile %q", cfg.SMProfile)
		}
		prof = p
	}
	return &Engine{
		mount:      mount,
		metaPrefix: "transit/" + mount + "/keys/",
		ex:         ex,
		meta:       sw,
		cfg:        cfg,
		types:      typeTable(prof),
		prefix:     cfg.CiphertextPrefix,
		cache:      map[string]cached{},
	}, nil
}

// Mount is the engine's mount path.
func (e *Engine) Mount() string { return e.mount }

// Types lists the key types this engine can make.
func (e *Engine) Types() []string { return typeNames(e.types.types) }

func (e *Engine) keyType(name string) (*keyType, *Error) {
	kt := e.types.types[name]
	if kt == nil {
		return nil, badRequest("unknown key type %.40q; supported: %s", name, strings.Join(e.Types(), ", "))
	}
	return kt, nil
}

// ---- keys ----

// CreateKey makes the key ring with its version 1. Creating a ring that
// exists changes nothing and returns it (Vault's upsert).
func (e *Engine) CreateKey(ctx context.Context, name string, r *CreateKeyRequest) (*ReadKeyResponse, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if r == nil {
		r = &CreateKeyRequest{}
	}
	typ := r.Type
	if typ == "" {
		typ = "aes256-gcm96"
	}
	kt, kerr := e.keyType(typ)
	if kerr != nil {
		return nil, kerr
	}
	if r.ConvergentEncryption {
		return nil, badRequest("convergent_encryption is not supported: the token makes every nonce, so equal plaintexts never give equal ciphertexts")
	}
	if r.Derived && kt.kind != kindAEAD {
		return nil, badRequest("key derivation is supported only for the AEAD key types, not %s", kt.name)
	}
	keySize := 0
	if kt.kind == kindHMAC {
		keySize = int(r.KeySize)
		if keySize == 0 {
			keySize = 32
		}
		if keySize < 32 || keySize > 512 {
			return nil, badRequest("invalid key_size %d: hmac keys are 32 to 512 bytes", keySize)
		}
	} else if r.KeySize != 0 {
		return nil, badRequest("key_size applies only to hmac keys")
	}
	period, perr := checkAutoRotate(time.Duration(r.AutoRotatePeriod))
	if perr != nil {
		return nil, perr
	}
	if cur, _, err := e.load(name, true); err != nil {
		return nil, err
	} else if cur != nil {
		return e.read(cur)
	}
	ver, err := e.makeVersion(ctx, name, kt, 1, bool(r.Exportable), keySize)
	if err != nil {
		return nil, err
	}
	rg := &ring{
		Name: name, Type: kt.name, Versions: map[int]*version{1: ver}, Latest: 1, MinDecryption: 1,
		MinAvailable: 0, Exportable: bool(r.Exportable), AllowPlaintextBackup: bool(r.AllowPlaintextBackup),
		Derived: bool(r.Derived), AutoRotatePeriod: period, KeySize: keySize,
	}
	ok, err := e.swap(name, nil, rg)
	if err != nil || !ok {
		// Another gateway created it first (or the write failed): ours
		// goes, theirs stands.
		e.destroy(ctx, kt, []*version{ver})
		if err != nil {
			return nil, err
		}
		cur, _, err := e.load(name, true)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			return nil, fmt.Errorf("key %q: created and deleted concurrently", name)
		}
		return e.read(cur)
	}
	return e.read(rg)
}

func checkAutoRotate(d time.Duration) (int64, *Error) {
	if d != 0 && d < time.Hour {
		return 0, badRequest("auto_rotate_period must be 0 to disable or at least an hour")
	}
	return int64(d / time.Second), nil
}

// ReadKey is the ring as Vault shows it.
func (e *Engine) ReadKey(ctx context.Context, name string) (*ReadKeyResponse, error) {
	rg, err := e.ring(name)
	if err != nil {
		return nil, err
	}
	return e.read(rg)
}

func (e *Engine) read(rg *ring) (*ReadKeyResponse, error) {
	kt := e.types.types[rg.Type]
	out := &ReadKeyResponse{
		Name: rg.Name, Type: rg.Type, Keys: make(map[string]KeyEntry, len(rg.Versions)),
		LatestVersion: rg.Latest, MinAvailableVersion: rg.MinAvailable, MinDecryptionVersion: rg.MinDecryption,
		MinEncryptionVersion: rg.MinEncryption, DeletionAllowed: rg.DeletionAllowed, Exportable: rg.Exportable,
		AllowPlaintextBackup: rg.AllowPlaintextBackup, Derived: rg.Derived, AutoRotatePeriod: rg.AutoRotatePeriod,
		KeySize: rg.KeySize,
	}
	if rg.Derived {
		out.KDF = "aad" // the context is bound as AEAD associated data
	}
	if kt != nil {
		out.SupportsEncryption, out.SupportsDecryption = kt.supportsEncryption, kt.supportsDecryption
		out.SupportsDerivation, out.SupportsSigning = kt.supportsDerivation, kt.supportsSigning
	}
	for n, v := range rg.Versions {
		if kt != nil && kt.asymmetric() {
			pk, err := e.publicKeyOf(v)
			if err != nil {
				return nil, err
			}
			out.Keys[itoa(n)] = KeyEntry{Public: &KeyVersion{Name: kt.pubName, PublicKey: pk, CreationTime: v.Created.Format(time.RFC3339Nano)}}
		} else {
			out.Keys[itoa(n)] = KeyEntry{Created: v.Created.Unix()}
		}
	}
	return out, nil
}

// ListKeys lists the mount's key rings.
func (e *Engine) ListKeys(ctx context.Context) (*ListKeysResponse, error) {
	all, err := e.meta.List(e.metaPrefix)
	if err != nil {
		return nil, err
	}
	out := &ListKeysResponse{Keys: []string{}}
	for _, k := range all {
		n := strings.TrimPrefix(k, e.metaPrefix)
		if n != "" && !strings.Contains(n, "/") { // a nested mount's keys are not ours
			out.Keys = append(out.Keys, n)
		}
	}
	sort.Strings(out.Keys)
	return out, nil
}

// DeleteKey deletes the ring and its token objects, if deletion_allowed.
func (e *Engine) DeleteKey(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	for range maxSwapTries {
		rg, raw, err := e.load(name, false)
		if err != nil {
			return err
		}
		if rg == nil {
			return inOp(notFound(name))
		}
		if !rg.DeletionAllowed {
			return badRequest("deletion is not allowed for key %q: set deletion_allowed with keys/%s/config first", name, name)
		}
		ok, err := e.swap(name, raw, nil)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		vs := make([]*version, 0, len(rg.Versions))
		for _, v := range rg.Versions {
			vs = append(vs, v)
		}
		if err := e.destroy(ctx, e.types.types[rg.Type], vs); err != nil {
			return fmt.Errorf("key %q deleted, but destroying its token objects failed: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("key %q: metadata kept changing", name)
}

// ConfigKey changes the ring's settings with Vault's rules.
func (e *Engine) ConfigKey(ctx context.Context, name string, r *ConfigKeyRequest) (*ReadKeyResponse, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if r == nil {
		r = &ConfigKeyRequest{}
	}
	rg, err := e.update(name, func(rg *ring) error {
		if r.MinDecryptionVersion != nil {
			v := int(*r.MinDecryptionVersion)
			if v < 0 {
				return badRequest("min_decryption_version cannot be negative")
			}
			if v == 0 {
				v = 1
			}
			if v != rg.MinDecryption {
				if v > rg.Latest {
					return badRequest("cannot set min_decryption_version to %d: the latest key version is %d", v, rg.Latest)
				}
				if v < rg.MinAvailable {
					return badRequest("cannot set min_decryption_version to %d: versions below min_available_version %d are trimmed", v, rg.MinAvailable)
				}
				rg.MinDecryption = v
			}
		}
		if r.MinEncryptionVersion != nil {
			v := int(*r.MinEncryptionVersion)
			if v < 0 {
				return badRequest("min_encryption_version cannot be negative")
			}
			if v > rg.Latest {
				return badRequest("cannot set min_encryption_version to %d: the latest key version is %d", v, rg.Latest)
			}
			rg.MinEncryption = v
		}
		if rg.MinEncryption > 0 && rg.MinEncryption < rg.MinDecryption {
			return badRequest("min_encryption_version %d must not be below min_decryption_version %d", rg.MinEncryption, rg.MinDecryption)
		}
		if r.DeletionAllowed != nil {
			rg.DeletionAllowed = bool(*r.DeletionAllowed)
		}
		if r.Exportable != nil {
			// One way, as Vault; and further, PKCS#11 lets CKA_EXTRACTABLE
			// go only from true to false, so a key created
			// non-exportable stays so.
			switch {
			case bool(*r.Exportable) && !rg.Exportable:
				return badRequest("key %q was created non-exportable and its token objects cannot be made extractable; create a new key with exportable=true", name)
			case !bool(*r.Exportable) && rg.Exportable:
				return badRequest("exportable cannot be disabled once enabled")
			}
		}
		if r.AllowPlaintextBackup != nil {
			if !bool(*r.AllowPlaintextBackup) && rg.AllowPlaintextBackup {
				return badRequest("allow_plaintext_backup cannot be disabled once enabled")
			}
			rg.AllowPlaintextBackup = bool(*r.AllowPlaintextBackup)
		}
		if r.AutoRotatePeriod != nil {
			p, perr := checkAutoRotate(time.Duration(*r.AutoRotatePeriod))
			if perr != nil {
				return perr
			}
			rg.AutoRotatePeriod = p
		}
		return nil
	})
	if err != nil {
		return nil, inOp(err)
	}
	return e.read(rg)
}

// RotateKey adds a version and makes it the latest. Two rotations racing
// (here or on another gateway) both land: see the package doc.
func (e *Engine) RotateKey(ctx context.Context, name string, _ *RotateKeyRequest) (*ReadKeyResponse, error) {
	rg, _, err := e.rotate(ctx, name, nil)
	if err != nil {
		return nil, inOp(err)
	}
	return e.read(rg)
}

// rotate adds a version unless due (if given) says the ring no longer
// needs one; it reports whether it rotated.
func (e *Engine) rotate(ctx context.Context, name string, due func(*ring) bool) (*ring, bool, error) {
	if err := checkName(name); err != nil {
		return nil, false, err
	}
	for range maxSwapTries {
		rg, raw, err := e.load(name, false)
		if err != nil {
			return nil, false, err
		}
		if rg == nil {
			return nil, false, notFound(name)
		}
		if due != nil && !due(rg) {
			return rg, false, nil
		}
		kt, kerr := e.keyType(rg.Type)
		if kerr != nil {
			return nil, false, kerr
		}
		n := rg.Latest + 1
		ver, err := e.makeVersion(ctx, name, kt, n, rg.Exportable, rg.KeySize)
		if err != nil {
			return nil, false, err
		}
		rg.Versions[n] = ver
		rg.Latest = n
		ok, err := e.swap(name, raw, rg)
		if err == nil && ok {
			return rg, true, nil
		}
		// Lost the race (or could not write): our version never
		// existed; make the next number from a fresh read.
		e.destroy(ctx, kt, []*version{ver})
		if err != nil {
			return nil, false, err
		}
	}
	return nil, false, fmt.Errorf("key %q: rotation kept losing to concurrent changes", name)
}

// AutoRotate rotates every ring of the mount whose auto_rotate_period has
// passed since its latest version was made, and returns their names. The
// server calls it periodically (Vault checks about once a minute); with
// several gateways, the swap lets one of them rotate each ring once.
func (e *Engine) AutoRotate(ctx context.Context) ([]string, error) {
	l, err := e.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var rotated []string
	var errs []error
	now := time.Now()
	for _, name := range l.Keys {
		_, did, err := e.rotate(ctx, name, func(rg *ring) bool {
			if rg.AutoRotatePeriod <= 0 || rg.Versions[rg.Latest] == nil {
				return false
			}
			return now.Sub(rg.Versions[rg.Latest].Created) >= time.Duration(rg.AutoRotatePeriod)*time.Second
		})
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || te.Status != 404 {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			continue
		}
		if did {
			rotated = append(rotated, name)
		}
	}
	return rotated, errors.Join(errs...)
}

// TrimKey destroys the versions below min_available_version.
func (e *Engine) TrimKey(ctx context.Context, name string, r *TrimKeyRequest) (*ReadKeyResponse, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if r == nil {
		r = &TrimKeyRequest{}
	}
	min := int(r.MinAvailableVersion)
	var gone []*version
	rg, err := e.update(name, func(rg *ring) error {
		gone = gone[:0]
		switch {
		case min <= 0:
			return badRequest("missing or invalid min_available_version: it must be at least 1")
		case min < rg.MinAvailable:
			return badRequest("min_available_version %d is below the current %d: trimmed versions cannot come back", min, rg.MinAvailable)
		case min > rg.MinDecryption:
			return badRequest("min_available_version %d must not exceed min_decryption_version %d", min, rg.MinDecryption)
		case rg.MinEncryption > 0 && min > rg.MinEncryption:
			return badRequest("min_available_version %d must not exceed min_encryption_version %d", min, rg.MinEncryption)
		case min > rg.Latest:
			return badRequest("min_available_version %d exceeds the latest version %d", min, rg.Latest)
		}
		for n, v := range rg.Versions {
			if n < min {
				gone = append(gone, v)
				delete(rg.Versions, n)
			}
		}
		rg.MinAvailable = min
		return nil
	})
	if err != nil {
		return nil, inOp(err)
	}
	if err := e.destroy(ctx, e.types.types[rg.Type], gone); err != nil {
		return nil, fmt.Errorf("key %q trimmed, but destroying old versions' token objects failed: %w", name, err)
	}
	return e.read(rg)
}
