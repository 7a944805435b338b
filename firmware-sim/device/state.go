package device

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// State is where a device is in its lifecycle.
type State int

const (
	// Factory: the store has no device (no ceremony was held): the
	// appliance serves its tokens as the module does, without a master
	// key. Self-tests still run.
	Factory State = iota
	// Initialised: the ceremony made the master key and its shares; the
	// device has not been unsealed since (persisted until the first
	// unseal).
	Initialised
	// Sealed: running, but the master key is not in memory.
	Sealed
	// Operational: serving.
	Operational
	// Zeroised: the device secret is destroyed; nothing can be read, by
	// any share, ever.
	Zeroised
	// Error: a self-test failed, or the device's state is damaged.
	Error
)

var stateNames = [...]string{"factory", "initialised", "sealed", "operational", "zeroised", "error"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Paths in a store directory.
const (
	deviceDir  = "device"
	stateFile  = "state"
	secretFile = "secret"
	// AdminSocket is the running appliance's admin socket, D/admin.sock.
	AdminSocket = "admin.sock"
)

// StatePath is D/device/state.
func StatePath(dir string) string { return filepath.Join(dir, deviceDir, stateFile) }

func secretPath(dir string) string { return filepath.Join(dir, deviceDir, secretFile) }

// HasDevice reports whether the store directory dir has a device (a
// ceremony was held there).
func HasDevice(dir string) bool {
	_, err := os.Stat(StatePath(dir))
	return err == nil
}

// persisted lifecycle values of stateDoc.Lifecycle.
const (
	lifeInitialised = "initialised"
	lifeInService   = "in-service" // unsealed at least once
	lifeZeroised    = "zeroised"
)

// stateDoc is D/device/state. Every field but the MACs is covered by
// both: MAC, under a key derived from S, is checked at every boot (a
// change made by a tool or by hand is an error state); Auth, under a key
// derived from the master key and S, is checked at unseal, so that whoever
// can write the file but holds no quorum of shares cannot lower the
// minimum security version nor change the pinned firmware signer or the
// share digests unnoticed. A zeroised state has neither: S is gone, and
// a file claiming "zeroised" only denies service.
type stateDoc struct {
	Format    int    `json:"format"`
	DeviceID  string `json:"device_id"`
	Lifecycle string `json:"lifecycle"`
	Created   string `json:"created"`
	Threshold int    `json:"threshold"`
	Shares    int    `json:"shares"`
	// ShareDigests[i-1] is SHA-256("gohsm share v1" | device id | i |
	// value) of share i: a presented share is matched to its index alone,
	// so a wrong one is named before a quorum is reached.
	ShareDigests []string `json:"share_digests"`
	// MasterCheck is HMAC-SHA256(master, "gohsm master key check v1"): the
	// combined shares are the master key exactly when it matches.
	MasterCheck string `json:"master_check"`
	// Signer is the pinned firmware signing key (Ed25519, hex), "" if none
	// was pinned (then no image can be installed).
	Signer string `json:"signer,omitempty"`
	MinSVN uint32 `json:"min_svn"`
	// Firmware is the installed image ("" before the first install).
	Firmware json.RawMessage `json:"firmware,omitempty"`
	// ZeroiseAfterSOFailures: this many consecutive failed SO logins (any
	// token) zeroise the device; 0 never.
	ZeroiseAfterSOFailures int    `json:"zeroise_after_so_failures,omitempty"`
	Zeroised               string `json:"zeroised,omitempty"` // when, and why
	MAC                    string `json:"mac,omitempty"`
	Auth                   string `json:"auth,omitempty"`
}

func (d *stateDoc) body() []byte {
	c := *d
	c.MAC, c.Auth = "", ""
	b, _ := json.Marshal(&c)
	return b
}

func kdf(secret, salt []byte, info string, n int) []byte {
	k, err := hkdf.Key(sha256.New, secret, salt, info, n)
	if err != nil {
		panic(err) // n is ours
	}
	return k
}

func macOf(key, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func (d *stateDoc) seal(s, master []byte) {
	body := d.body()
	d.MAC = macOf(kdf(s, nil, "gohsm device state mac v1", 32), body)
	if master != nil {
		d.Auth = macOf(kdf(master, s, "gohsm device state auth v1", 32), body)
	}
}

func (d *stateDoc) checkMAC(s []byte) bool {
	want := macOf(kdf(s, nil, "gohsm device state mac v1", 32), d.body())
	return hmac.Equal([]byte(want), []byte(d.MAC))
}

func (d *stateDoc) checkAuth(s, master []byte) bool {
	want := macOf(kdf(master, s, "gohsm device state auth v1", 32), d.body())
	return hmac.Equal([]byte(want), []byte(d.Auth))
}

func masterCheck(master []byte) string {
	h := hmac.New(sha256.New, master)
	h.Write([]byte("gohsm master key check v1"))
	return hex.EncodeToString(h.Sum(nil))
}

// deviceKey is the token store's device key (hsm.Config.DeviceKey).
func deviceKey(master, s []byte, id string) []byte {
	return kdf(master, s, "gohsm device key v1|"+id, 32)
}

func readState(dir string) (*stateDoc, error) {
	b, err := os.ReadFile(StatePath(dir))
	if err != nil {
		return nil, err
	}
	var d stateDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("device state %s: %w", StatePath(dir), err)
	}
	if d.Format != 1 {
		return nil, fmt.Errorf("device state %s: format %d", StatePath(dir), d.Format)
	}
	return &d, nil
}

// writeState replaces the state file atomically (temporary file, fsync,
// rename, fsync of the directory).
func writeState(dir string, d *stateDoc) error {
	b, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return err
	}
	return writeFileSync(StatePath(dir), append(b, '\n'))
}

func writeFileSync(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func readSecret(dir string) ([]byte, error) {
	b, err := os.ReadFile(secretPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errSecretGone
	}
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		clear(b)
		return nil, fmt.Errorf("device secret %s: %d bytes, want 32", secretPath(dir), len(b))
	}
	return b, nil
}

var errSecretGone = errors.New("the device secret is gone (zeroised, or removed)")

// destroySecret overwrites D/device/secret with random bytes and then
// zeros, fsyncing each pass, and unlinks it. On a copy-on-write or
// flash file system an overwrite may not reach the old blocks: docs/
// firmware.md's threat model says what that means.
func destroySecret(dir string) error {
	p := secretPath(dir)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	buf := make([]byte, 32)
	rand.Read(buf)
	var errs []error
	for pass := 0; pass < 2; pass++ {
		if _, err := f.WriteAt(buf, 0); err != nil {
			errs = append(errs, err)
		}
		if err := f.Sync(); err != nil {
			errs = append(errs, err)
		}
		clear(buf)
	}
	errs = append(errs, f.Close(), os.Remove(p), syncDir(filepath.Dir(p)))
	return errors.Join(errs...)
}

func nowString() string { return time.Now().UTC().Format(time.RFC3339) }
