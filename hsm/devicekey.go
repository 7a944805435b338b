package hsm

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Device keys. An appliance (firmware-sim/device) holds a master key split
// among custodians; from it and a device secret it derives a 256-bit
// device key, and Config.DeviceKey seals every token record's secrets
// under it once more: the token key wrapped under the SO PIN and under the
// user PIN (TokenRecord.SOKey, UserKey) and the public objects' key
// (TokenRecord.PublicKey). Objects are sealed under the token key, which
// only those unwrap, so without the device key nothing of a token can be
// read, whatever PIN is known, and not one PIN can be tried offline. The
// store still never sees a secret in the clear: the engine seals and
// opens, and tokens/ stores the result in the same columns.
//
// A sealed wrapped key keeps its KDF parameters and has the KDF name
// prefixed with deviceKDFPrefix; its Sealed is nonce [12] | AES-256-GCM
// (device key, the PIN-wrapped key) with the record's serial, the field's
// name and the KDF parameters as associated data, so a sealed value cannot
// be moved to another token or field. A sealed PublicKey is
// devicePublicMagic | nonce [12] | AES-256-GCM(device key, key).
//
// An engine without a device key opens a store whose tokens are sealed,
// and shows their labels and serials (kept in the clear, as always), but
// a session on such a token, or C_InitToken over it, answers
// CKR_DEVICE_ERROR saying why. An engine with a device key refuses the
// same way a token sealed under another key and a token that was never
// sealed (made by the local module, or restored from its backup): such a
// token joins the device only by an explicit adoption (AdoptTokenRecord,
// `gohsm device adopt`), never silently. Without a device key (the
// module's local mode, the common case) nothing here runs.

const (
	deviceKDFPrefix = "device-v1/"
	deviceKeyLen    = 32
)

var devicePublicMagic = []byte("GDK1")

// ErrDeviceSealed is what a session on a token that needs a device key
// wraps (with CKR_DEVICE_ERROR) in an engine that has none.
var ErrDeviceSealed = errors.New("the token is sealed under a device key (an appliance's store): use it through its appliance, unsealed")

// ErrDeviceForeign: the token does not open under this engine's device key.
var ErrDeviceForeign = errors.New("the token does not open under this device's key (sealed by another device, or damaged)")

// ErrDeviceNotAdopted: an engine with a device key met a token that is not
// sealed under any.
var ErrDeviceNotAdopted = errors.New("the token is not protected by this device's key: adopt it (gohsm device adopt) or remove it")

// TokenRecordSealed reports whether r's secrets are sealed under a device
// key.
func TokenRecordSealed(r *TokenRecord) bool {
	return r != nil && (strings.HasPrefix(r.SOKey.KDF, deviceKDFPrefix) || bytes.HasPrefix(r.PublicKey, devicePublicMagic))
}

// AdoptTokenRecord seals a record that is not yet sealed under deviceKey,
// in place. A record already sealed is left alone if it opens under
// deviceKey, and refused (ErrDeviceForeign) if it does not.
func AdoptTokenRecord(r *TokenRecord, deviceKey []byte) error {
	if len(deviceKey) != deviceKeyLen {
		return fmt.Errorf("device key of %d bytes, want %d", len(deviceKey), deviceKeyLen)
	}
	if TokenRecordSealed(r) {
		if _, err := openTokenRecord(r, deviceKey); err != nil {
			return err
		}
		return nil
	}
	s, err := sealTokenRecord(r, nil, deviceKey)
	if err != nil {
		return err
	}
	*r = *s
	return nil
}

func deviceAD(r *TokenRecord, field string, w *WrappedKey) []byte {
	ad := make([]byte, 0, 96)
	ad = append(ad, "gohsm device seal v1\x00"...)
	ad = append(ad, field...)
	ad = append(ad, 0)
	ad = append(ad, r.Serial...)
	ad = append(ad, 0)
	if w != nil {
		ad = append(ad, w.Salt...)
		ad = binary.BigEndian.AppendUint64(ad, uint64(w.Iterations))
		ad = append(ad, w.Nonce...)
	}
	return ad
}

func sealWrapped(r *TokenRecord, field string, w WrappedKey, key []byte) WrappedKey {
	if w.KDF == "" && w.Sealed == nil {
		return w // no PIN set (UserKey before C_InitPIN)
	}
	out := w
	out.KDF = deviceKDFPrefix + w.KDF
	nonce := make([]byte, 12, 12+len(w.Sealed)+16)
	rand.Read(nonce)
	out.Sealed = gcmFor(key).Seal(nonce, nonce, w.Sealed, deviceAD(r, field, &w))
	return out
}

func openWrapped(r *TokenRecord, field string, w WrappedKey, key []byte) (WrappedKey, error) {
	if w.KDF == "" && w.Sealed == nil {
		return w, nil
	}
	if !strings.HasPrefix(w.KDF, deviceKDFPrefix) || len(w.Sealed) < 12 {
		return WrappedKey{}, fmt.Errorf("%s: %w", field, ErrDeviceForeign)
	}
	out := w
	out.KDF = strings.TrimPrefix(w.KDF, deviceKDFPrefix)
	inner, err := gcmFor(key).Open(nil, w.Sealed[:12], w.Sealed[12:], deviceAD(r, field, &out))
	if err != nil {
		return WrappedKey{}, fmt.Errorf("%s: %w", field, ErrDeviceForeign)
	}
	out.Sealed = inner
	return out, nil
}

// sealTokenRecord returns r sealed under key. Where r's plain value equals
// prev's (the record as opened before a change) the sealed value of
// prevSealed is kept, so a counter update rewrites no ciphertext.
func sealTokenRecord(r, prevSealed *TokenRecord, key []byte) (*TokenRecord, error) {
	out := *r
	var prev *TokenRecord
	if prevSealed != nil {
		var err error
		if prev, err = openTokenRecord(prevSealed, key); err != nil {
			prev = nil
		}
	}
	if prev != nil && prev.Serial == r.Serial && sameWrapped(prev.SOKey, r.SOKey) {
		out.SOKey = prevSealed.SOKey
	} else {
		out.SOKey = sealWrapped(r, "so", r.SOKey, key)
	}
	if prev != nil && prev.Serial == r.Serial && sameWrapped(prev.UserKey, r.UserKey) {
		out.UserKey = prevSealed.UserKey
	} else {
		out.UserKey = sealWrapped(r, "user", r.UserKey, key)
	}
	switch {
	case r.PublicKey == nil:
	case prev != nil && prev.Serial == r.Serial && bytes.Equal(prev.PublicKey, r.PublicKey):
		out.PublicKey = prevSealed.PublicKey
	default:
		sealed := make([]byte, len(devicePublicMagic)+12, len(devicePublicMagic)+12+len(r.PublicKey)+16)
		copy(sealed, devicePublicMagic)
		nonce := sealed[len(devicePublicMagic):]
		rand.Read(nonce)
		out.PublicKey = gcmFor(key).Seal(sealed, nonce, r.PublicKey, deviceAD(r, "public", nil))
	}
	return &out, nil
}

// openTokenRecord returns r with its secrets opened under key.
func openTokenRecord(r *TokenRecord, key []byte) (*TokenRecord, error) {
	if !TokenRecordSealed(r) {
		return nil, ErrDeviceNotAdopted
	}
	out := *r
	var err error
	if out.SOKey, err = openWrapped(r, "so", r.SOKey, key); err != nil {
		return nil, err
	}
	if out.UserKey, err = openWrapped(r, "user", r.UserKey, key); err != nil {
		return nil, err
	}
	if r.PublicKey != nil {
		m := len(devicePublicMagic)
		if !bytes.HasPrefix(r.PublicKey, devicePublicMagic) || len(r.PublicKey) < m+12 {
			return nil, fmt.Errorf("public: %w", ErrDeviceForeign)
		}
		if out.PublicKey, err = gcmFor(key).Open(nil, r.PublicKey[m:m+12], r.PublicKey[m+12:], deviceAD(r, "public", nil)); err != nil {
			return nil, fmt.Errorf("public: %w", ErrDeviceForeign)
		}
	}
	return &out, nil
}

// deviceStorage seals and opens every token record of Storage under a
// device key (Config.DeviceKey).
type deviceStorage struct {
	Storage
	key []byte
}

func (d deviceStorage) Stores() ([]Store, error) {
	sts, err := d.Storage.Stores()
	if err != nil {
		return nil, err
	}
	for i, st := range sts {
		sts[i] = wrapDeviceStore(st, d.key)
	}
	return sts, nil
}

func (d deviceStorage) Create() (Store, error) {
	st, err := d.Storage.Create()
	if err != nil {
		return nil, err
	}
	return wrapDeviceStore(st, d.key), nil
}

func wrapDeviceStore(st Store, key []byte) Store {
	ds := &deviceStore{Store: st, key: key}
	if ss, ok := st.(SharedStore); ok {
		return &deviceSharedStore{deviceStore: ds, shared: ss}
	}
	return ds
}

// deviceStore is one token's Store under a device key. lock is why the
// record last read cannot be used (nil when it opened); the engine reads
// it through deviceLock.
type deviceStore struct {
	Store
	key  []byte
	lock error
}

type deviceSharedStore struct {
	*deviceStore
	shared SharedStore
}

func (d *deviceSharedStore) Changed() (bool, error) { return d.shared.Changed() }
func (d *deviceSharedStore) ObjectsSince(since uint64, put func(*ObjectRecord) error, del func(id uint64) error) (Delta, error) {
	return d.shared.ObjectsSince(since, put, del)
}

func (d *deviceStore) deviceLock() error { return d.lock }

// opened opens a record read from the store; one that does not open is
// returned as stored, with lock saying why.
func (d *deviceStore) opened(r *TokenRecord) *TokenRecord {
	if r == nil {
		d.lock = nil
		return nil
	}
	p, err := openTokenRecord(r, d.key)
	if err != nil {
		d.lock = err
		return r
	}
	d.lock = nil
	return p
}

func (d *deviceStore) LoadToken() (*TokenRecord, error) {
	r, err := d.Store.LoadToken()
	if err != nil {
		return nil, err
	}
	return d.opened(r), nil
}

func (d *deviceStore) SaveToken(r *TokenRecord) error {
	s, err := sealTokenRecord(r, nil, d.key)
	if err != nil {
		return err
	}
	return d.Store.SaveToken(s)
}

func (d *deviceStore) Reinit(r *TokenRecord) error {
	s, err := sealTokenRecord(r, nil, d.key)
	if err != nil {
		return err
	}
	if err := d.Store.Reinit(s); err != nil {
		return err
	}
	d.lock = nil
	return nil
}

func (d *deviceStore) UpdateToken(fn func(*TokenRecord) error) (*TokenRecord, error) {
	r, err := d.Store.UpdateToken(func(stored *TokenRecord) error {
		p, err := openTokenRecord(stored, d.key)
		if err != nil {
			return fmt.Errorf("%v: %w", err, ck.CKR_DEVICE_ERROR)
		}
		if err := fn(p); err != nil {
			return err
		}
		s, err := sealTokenRecord(p, stored, d.key)
		if err != nil {
			return err
		}
		*stored = *s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d.opened(r), nil
}

// deviceLock says why t's record cannot be used here, or nil. The caller
// holds t.mu.
func (t *Token) deviceLock() error {
	if t.rec == nil {
		return nil
	}
	var err error
	if ds, ok := t.store.(interface{ deviceLock() error }); ok {
		err = ds.deviceLock()
	} else if TokenRecordSealed(t.rec) {
		err = ErrDeviceSealed
	}
	if err != nil {
		return fmt.Errorf("token %q (slot %d): %v: %w", strings.TrimRight(t.rec.Label, " "), t.slot, err, ck.CKR_DEVICE_ERROR)
	}
	return nil
}
