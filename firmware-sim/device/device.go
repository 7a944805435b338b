package device

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/device/selftest"
	"github.com/gohsm/gohsm/firmware-sim/device/shamir"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// Status is what the Guard asks before every call.
type Status struct {
	State State
	// Reason says why the device does not serve (shown in C_GetTokenInfo's
	// manufacturerID and C_GetInfo's libraryDescription); "" when
	// operational.
	Reason string
	// Epoch changes at every entry into the operational state, so that a
	// guard knows its engine predates a seal and must be made again.
	Epoch uint64
	// Key is the token store's device key while operational (nil for a
	// store without a device).
	Key []byte
}

// Source is the state a Guard obeys: a Device (the appliance), or a
// module's boot.
type Source interface {
	Status() Status
	// SOLogin tells the source how an SO login (or C_InitToken, which
	// checks the SO PIN) ended.
	SOLogin(failed bool)
}

// Auditor receives the device's transitions; the appliance's audit log
// implements it (cmd/gohsm). An error refuses an unseal or an install
// (fail closed); a zeroisation happens anyway.
type Auditor interface {
	DeviceEvent(event, note string) error
}

// Options configure Open.
type Options struct {
	// Dir is the token store directory (D): D/device holds the state.
	Dir     string
	Profile *ck.Profile
	// FailSelftest names a self-test to fail (GOHSM_FAIL_SELFTEST,
	// fail_selftest).
	FailSelftest string
	// Binary is the running program, for the integrity test
	// (os.Executable()), checked against the installed manifest's Role.
	Binary string
	Role   string
	// SkipSelftests is for the offline tools (gohsm firmware install
	// --share): they serve no calls.
	SkipSelftests bool
	Audit         Auditor
	Logf          func(format string, args ...any)
}

// Device is one appliance's firmware: its state machine and secrets.
type Device struct {
	o      Options
	status atomic.Pointer[Status]

	mu        sync.Mutex
	doc       *stateDoc // nil: factory
	secret    []byte    // S; nil once zeroised
	master    []byte    // while operational
	pending   map[int][]byte
	epoch     uint64
	guards    map[*Guard]struct{}
	soFails   int
	report    *selftest.Report
	bootTook  time.Duration
	bootState State
	manifest  *Manifest
	firmwareN string
}

// Open boots the device in dir: the power-on self-tests, then the state.
// It fails only when dir cannot be read; every other problem is the error
// state, with its reason.
func Open(o Options) (*Device, error) {
	start := time.Now()
	d := &Device{o: o, guards: map[*Guard]struct{}{}, pending: map[int][]byte{}}
	if o.Logf == nil {
		d.o.Logf = func(string, ...any) {}
	}
	doc, err := readState(o.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		d.report = &selftest.Report{}
		d.set(Status{State: Error, Reason: "device state unreadable"})
		d.event("boot", fmt.Sprintf("error: %v", err))
		return d, nil
	default:
		d.doc = doc
	}
	// The state is authenticated before the self-tests read the installed
	// manifest from it.
	stateErr := d.loadSecret()
	if !o.SkipSelftests {
		d.report = selftest.Run(selftest.Options{Profile: o.Profile, Fail: o.FailSelftest, Integrity: d.integrity})
		for _, r := range d.report.Results {
			if r.Err != nil {
				d.o.Logf("self-test %s FAILED: %v", r.Name, r.Err)
			}
		}
	} else {
		d.report = &selftest.Report{}
	}
	d.boot(stateErr)
	d.bootTook = time.Since(start)
	st := d.Status()
	d.bootState = st.State
	note := fmt.Sprintf("%s; %d self-tests in %.1f ms", st.State, len(d.report.Results), float64(d.report.Took.Microseconds())/1000)
	if st.Reason != "" {
		note += "; " + st.Reason
	}
	if d.firmwareN != "" {
		note += "; " + d.firmwareN
	}
	d.event("boot", note)
	return d, nil
}

// loadSecret reads S and checks the state's MAC; a state that fails is
// dropped (d.doc nil) so that nothing reads it, and the returned status is
// the boot's outcome.
func (d *Device) loadSecret() *Status {
	if d.doc == nil {
		return nil
	}
	if d.doc.Lifecycle == lifeZeroised {
		return &Status{State: Zeroised, Reason: "device zeroised"}
	}
	s, err := readSecret(d.o.Dir)
	if errors.Is(err, errSecretGone) {
		return &Status{State: Zeroised, Reason: "device secret destroyed"}
	}
	if err != nil {
		d.o.Logf("device: %v", err)
		return &Status{State: Error, Reason: "device secret unreadable"}
	}
	if !d.doc.checkMAC(s) {
		clear(s)
		d.doc = nil
		return &Status{State: Error, Reason: "device state fails its MAC"}
	}
	d.secret = s
	return nil
}

// boot decides the state after the self-tests: the state file's verdict
// (zeroised, damaged) first, then a failed self-test, then sealed (or, for
// a store without a device, operational).
func (d *Device) boot(stateErr *Status) {
	switch {
	case stateErr != nil:
		d.set(*stateErr)
	case !d.report.OK():
		d.set(Status{State: Error, Reason: d.report.Reason()})
	case d.doc == nil:
		d.set(Status{State: Operational, Epoch: 1}) // factory: no device key
	default:
		d.set(Status{State: Sealed, Reason: fmt.Sprintf("sealed: unseal %d of %d", d.doc.Threshold, d.doc.Shares)})
	}
}

func (d *Device) set(s Status) { d.status.Store(&s) }

// Status is the current state (lock-free: every call asks).
func (d *Device) Status() Status {
	if s := d.status.Load(); s != nil {
		return *s
	}
	return Status{State: Error, Reason: "not booted"}
}

// Report is the boot's self-test report.
func (d *Device) Report() *selftest.Report { return d.report }

// BootTime is power-on to the state Open left the device in.
func (d *Device) BootTime() time.Duration { return d.bootTook }

// ID is the device id ("" for a factory store).
func (d *Device) ID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.doc == nil {
		return ""
	}
	return d.doc.DeviceID
}

func (d *Device) event(ev, note string) error {
	d.o.Logf("device: %s: %s", ev, note)
	if d.o.Audit == nil {
		return nil
	}
	if err := d.o.Audit.DeviceEvent(ev, note); err != nil {
		d.o.Logf("device: audit %s: %v", ev, err)
		return err
	}
	return nil
}

// integrity is the firmware integrity self-test: the running binary
// against the installed manifest.
func (d *Device) integrity(corrupt func([]byte) []byte) (string, error) {
	if d.doc == nil || len(d.doc.Firmware) == 0 {
		if !bytes.Equal(corrupt([]byte{0}), []byte{0}) {
			return "", errors.New("unsigned development firmware, and made to fail")
		}
		return "unsigned development firmware", nil
	}
	im, err := ParseImage(d.doc.Firmware)
	if err != nil {
		return "", err
	}
	pinned, err := hex.DecodeString(d.doc.Signer)
	if err != nil || len(pinned) != ed25519.PublicKeySize {
		return "", errors.New("installed firmware: no pinned signer")
	}
	m, err := im.Verify(ed25519.PublicKey(pinned), 0)
	if err != nil {
		return "", fmt.Errorf("installed firmware: %w", err)
	}
	role := d.o.Role
	if role == "" {
		role = RoleBinary
	}
	want, ok := m.Files[role]
	if !ok {
		return "", fmt.Errorf("installed firmware %s has no digest for %s", m.Version, role)
	}
	bin := d.o.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return "", err
		}
	}
	got, err := FileDigest(bin)
	if err != nil {
		return "", err
	}
	gb, _ := hex.DecodeString(got)
	wb, _ := hex.DecodeString(want)
	if subtle.ConstantTimeCompare(corrupt(gb), wb) != 1 {
		return "", fmt.Errorf("the running %s (sha256 %.16s) is not the installed firmware %s svn %d (sha256 %.16s)", role, got, m.Version, m.SVN, want)
	}
	d.manifest = m
	d.firmwareN = fmt.Sprintf("firmware %s svn %d signed by %s", m.Version, m.SVN, KeyID(pinned))
	return d.firmwareN, nil
}

// Progress is where an unseal stands.
type Progress struct {
	Have, Need int
	State      State
}

// Present offers one share towards unsealing (value is the share's
// plaintext: a custodian's encrypted share is opened before, by the
// custodian's tool). A wrong or damaged share is refused and named; the
// shares already presented stay.
func (d *Device) Present(sh *Share) (Progress, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.Status()
	prog := func() Progress {
		p := Progress{Have: len(d.pending), State: d.Status().State}
		if d.doc != nil {
			p.Need = d.doc.Threshold
		}
		return p
	}
	switch st.State {
	case Sealed:
	case Operational:
		if d.doc == nil {
			return prog(), errors.New("this store has no device (gohsm device init): nothing to unseal")
		}
		return prog(), errors.New("already unsealed")
	case Zeroised:
		return prog(), errors.New("the device is zeroised: no share can ever unseal it")
	default:
		return prog(), fmt.Errorf("the device is in the %s state (%s)", st.State, st.Reason)
	}
	value, err := sh.Open(nil)
	if err != nil {
		return prog(), fmt.Errorf("share %d: %w", sh.Index, err)
	}
	defer clear(value)
	if sh.Device != d.doc.DeviceID {
		d.event("share", fmt.Sprintf("refused share %d: of device %s", sh.Index, sh.Device))
		return prog(), fmt.Errorf("share %d: %w: it is of device %s, this is %s", sh.Index, ErrShareWrong, sh.Device, d.doc.DeviceID)
	}
	if sh.Index < 1 || sh.Index > len(d.doc.ShareDigests) ||
		subtle.ConstantTimeCompare([]byte(shareDigest(d.doc.DeviceID, sh.Index, value)), []byte(d.doc.ShareDigests[sh.Index-1])) != 1 {
		d.event("share", fmt.Sprintf("refused share %d: does not match the share issued", sh.Index))
		return prog(), fmt.Errorf("share %d: %w (another ceremony's, or altered)", sh.Index, ErrShareWrong)
	}
	if _, dup := d.pending[sh.Index]; dup {
		return prog(), fmt.Errorf("share %d was already presented", sh.Index)
	}
	d.pending[sh.Index] = bytes.Clone(value)
	d.event("share", fmt.Sprintf("accepted share %d (%d of %d)", sh.Index, len(d.pending), d.doc.Threshold))
	if len(d.pending) < d.doc.Threshold {
		return prog(), nil
	}
	err = d.unsealLocked()
	return prog(), err
}

func (d *Device) clearPending() {
	for i, v := range d.pending {
		clear(v)
		delete(d.pending, i)
	}
}

// unsealLocked combines the pending shares.
func (d *Device) unsealLocked() error {
	parts := make([][]byte, 0, len(d.pending))
	for _, v := range d.pending {
		parts = append(parts, v)
	}
	master, err := shamir.Combine(parts)
	d.clearPending()
	if err != nil {
		return fmt.Errorf("combine: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(masterCheck(master)), []byte(d.doc.MasterCheck)) != 1 {
		clear(master)
		return errors.New("the shares do not combine to the master key")
	}
	if !d.doc.checkAuth(d.secret, master) {
		clear(master)
		d.set(Status{State: Error, Reason: "device state altered"})
		d.event("unseal", "refused: the device state does not authenticate under the master key (altered since the last unseal)")
		return errors.New("the device state does not authenticate under the master key: it was altered; the device is in the error state")
	}
	if err := d.event("unseal", "unsealed: operational"); err != nil {
		clear(master)
		return fmt.Errorf("unseal refused: audit: %w", err)
	}
	if d.doc.Lifecycle == lifeInitialised {
		d.doc.Lifecycle = lifeInService
		d.doc.seal(d.secret, master)
		if err := writeState(d.o.Dir, d.doc); err != nil {
			d.o.Logf("device: state: %v", err)
		}
	}
	d.master = master
	d.epoch++
	d.set(Status{State: Operational, Epoch: d.epoch + 1, Key: deviceKey(master, d.secret, d.doc.DeviceID)})
	return nil
}

// Seal leaves the operational state: the master key and the device key
// are wiped, every engine is finalised (its sessions and unsealed keys
// go), and the device waits for shares again.
func (d *Device) Seal(why string) error {
	d.mu.Lock()
	st := d.Status()
	if st.State != Operational || d.doc == nil {
		d.mu.Unlock()
		return fmt.Errorf("nothing to seal: the device is %s", st.State)
	}
	clear(d.master)
	d.master = nil
	clear(st.Key)
	d.set(Status{State: Sealed, Reason: fmt.Sprintf("sealed: unseal %d of %d", d.doc.Threshold, d.doc.Shares)})
	guards := d.guardList()
	d.mu.Unlock()
	for _, g := range guards {
		g.drop()
	}
	d.event("seal", why)
	return nil
}

func (d *Device) guardList() []*Guard {
	out := make([]*Guard, 0, len(d.guards))
	for g := range d.guards {
		out = append(out, g)
	}
	return out
}

// Zeroise destroys the device secret S (overwrite, fsync, unlink), wipes
// the master and device keys from memory and records the zeroised state:
// no share, now or later, can derive the device key again, so every token
// record, and every object under it, is unreadable for good.
func (d *Device) Zeroise(why string) error {
	d.mu.Lock()
	if d.doc == nil {
		d.mu.Unlock()
		return errors.New("this store has no device (gohsm device init): nothing to zeroise")
	}
	st := d.Status()
	d.set(Status{State: Zeroised, Reason: "device zeroised"})
	clear(st.Key)
	clear(d.master)
	d.master = nil
	d.clearPending()
	err := destroySecret(d.o.Dir)
	clear(d.secret)
	d.secret = nil
	d.doc.Lifecycle = lifeZeroised
	d.doc.Zeroised = nowString() + ": " + why
	d.doc.MAC, d.doc.Auth = "", ""
	if werr := writeState(d.o.Dir, d.doc); werr != nil {
		err = errors.Join(err, werr)
	}
	guards := d.guardList()
	d.mu.Unlock()
	for _, g := range guards {
		g.drop()
	}
	note := "zeroised: " + why
	if err != nil {
		note += fmt.Sprintf(" (errors: %v)", err)
	}
	d.event("zeroise", note)
	return err
}

// SOLogin counts consecutive failed SO logins against the device's
// policy (stateDoc.ZeroiseAfterSOFailures).
func (d *Device) SOLogin(failed bool) {
	d.mu.Lock()
	if !failed {
		d.soFails = 0
		d.mu.Unlock()
		return
	}
	d.soFails++
	n, limit := d.soFails, 0
	if d.doc != nil {
		limit = d.doc.ZeroiseAfterSOFailures
	}
	d.mu.Unlock()
	if limit > 0 && n >= limit {
		d.Zeroise(fmt.Sprintf("%d consecutive failed SO logins (policy: %d)", n, limit))
	}
}

// Install verifies a firmware image against the pinned signer and the
// minimum SVN, records it and raises the minimum. The device must be
// operational: the state's authentication MAC is made under the master
// key. Nothing else changes: every token and key stays as it is.
func (d *Device) Install(b []byte) (*Manifest, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.Status(); st.State != Operational || d.doc == nil {
		if d.doc == nil {
			return nil, errors.New("this store has no device (gohsm device init)")
		}
		return nil, fmt.Errorf("the device is %s: unseal it first", st.State)
	}
	im, err := ParseImage(b)
	if err != nil {
		return nil, err
	}
	if d.doc.Signer == "" {
		return nil, ErrNoSigner
	}
	pinned, _ := hex.DecodeString(d.doc.Signer)
	m, err := im.Verify(ed25519.PublicKey(pinned), d.doc.MinSVN)
	if err != nil {
		d.event("firmware", "refused: "+err.Error())
		return nil, err
	}
	if err := d.event("firmware", fmt.Sprintf("installing %s svn %d (minimum %d -> %d)", m.Version, m.SVN, d.doc.MinSVN, max(m.SVN, d.doc.MinSVN))); err != nil {
		return nil, fmt.Errorf("install refused: audit: %w", err)
	}
	d.doc.Firmware = im.Marshal()
	d.doc.MinSVN = max(m.SVN, d.doc.MinSVN)
	d.doc.seal(d.secret, d.master)
	if err := writeState(d.o.Dir, d.doc); err != nil {
		return nil, err
	}
	return m, nil
}

// Info is a device's description for status displays.
type Info struct {
	State, Reason       string
	DeviceID            string
	Threshold, Shares   int
	Presented           int
	MinSVN              uint32
	Firmware            string
	Signer              string
	ZeroiseAfterSOFails int
	SelftestsMS         float64
	BootMS              float64 // power-on to BootState
	BootState           string
	SelftestFailed      string
}

// Info describes the device now.
func (d *Device) Info() Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.Status()
	in := Info{State: st.State.String(), Reason: st.Reason, Presented: len(d.pending), Firmware: d.firmwareN,
		BootMS: float64(d.bootTook.Microseconds()) / 1000, BootState: d.bootState.String()}
	if d.report != nil {
		in.SelftestsMS = float64(d.report.Took.Microseconds()) / 1000
		if f := d.report.Failed(); f != nil {
			in.SelftestFailed = f.Name
		}
	}
	if d.doc != nil {
		in.DeviceID, in.Threshold, in.Shares, in.MinSVN = d.doc.DeviceID, d.doc.Threshold, d.doc.Shares, d.doc.MinSVN
		in.ZeroiseAfterSOFails = d.doc.ZeroiseAfterSOFailures
		if d.doc.Signer != "" {
			b, _ := hex.DecodeString(d.doc.Signer)
			in.Signer = KeyID(b)
		}
	}
	if in.Firmware == "" {
		in.Firmware = "unsigned development firmware"
	}
	return in
}

// InitOptions are the ceremony's choices.
type InitOptions struct {
	Shares, Threshold int
	// Custodians, if not empty, has one public key per share (nil: that
	// share is written in the clear).
	Custodians []*ecdh.PublicKey
	// Signer is the firmware signing key the device will trust (optional).
	Signer                 ed25519.PublicKey
	ZeroiseAfterSOFailures int
	Rand                   io.Reader
}

// Ceremony is a device just initialised: its shares, and the master key
// until Close, so that the tokens already in the store can be adopted once
// the shares are safely written (never before: a crash in between would
// leave tokens sealed under a key no share holds).
type Ceremony struct {
	dir    string
	ID     string
	Shares []*Share
	master []byte
	secret []byte
}

// Init holds the key ceremony in dir: a 256-bit master key and a 256-bit
// device secret S from the system's random generator, the master key split
// M-of-N (Shamir over GF(2^8)), the state written (fsynced) with the share
// digests, the master key's check value and the pinned firmware signer.
// A store that already has a device is refused unless it was zeroised.
func Init(dir string, o InitOptions) (*Ceremony, error) {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Threshold < 2 || o.Shares < o.Threshold || o.Shares > 255 {
		return nil, fmt.Errorf("need 2 <= threshold (%d) <= shares (%d) <= 255", o.Threshold, o.Shares)
	}
	if len(o.Custodians) != 0 && len(o.Custodians) != o.Shares {
		return nil, fmt.Errorf("%d custodian keys for %d shares", len(o.Custodians), o.Shares)
	}
	if old, err := readState(dir); err == nil && old.Lifecycle != lifeZeroised {
		return nil, fmt.Errorf("%s already has a device (%s, %s): a new ceremony needs a new store, or the old device zeroised", dir, old.DeviceID, old.Lifecycle)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if c, err := AdminDial(filepath.Join(dir, AdminSocket)); err == nil {
		c.Close()
		return nil, fmt.Errorf("an appliance is running on %s (%s answers): stop it for the ceremony", dir, AdminSocket)
	}
	master, s, idb := make([]byte, 32), make([]byte, 32), make([]byte, 8)
	for _, b := range [][]byte{master, s, idb} {
		if _, err := io.ReadFull(o.Rand, b); err != nil {
			return nil, err
		}
	}
	id := hex.EncodeToString(idb)
	parts, err := shamir.Split(master, o.Shares, o.Threshold)
	if err != nil {
		return nil, err
	}
	c := &Ceremony{dir: dir, ID: id, master: master, secret: s}
	doc := &stateDoc{Format: 1, DeviceID: id, Lifecycle: lifeInitialised, Created: nowString(), Threshold: o.Threshold, Shares: o.Shares,
		MasterCheck: masterCheck(master), ZeroiseAfterSOFailures: o.ZeroiseAfterSOFailures}
	if o.Signer != nil {
		doc.Signer = hex.EncodeToString(o.Signer)
	}
	for i, p := range parts {
		sh := &Share{Format: 1, Device: id, Index: i + 1, Threshold: o.Threshold, Shares: o.Shares}
		if len(o.Custodians) > 0 && o.Custodians[i] != nil {
			if err := sh.seal(p, o.Custodians[i]); err != nil {
				return nil, err
			}
		} else {
			sh.Value = hex.EncodeToString(p)
		}
		sh.Check = sh.checksum()
		doc.ShareDigests = append(doc.ShareDigests, shareDigest(id, i+1, p))
		c.Shares = append(c.Shares, sh)
		clear(p)
	}
	doc.seal(s, master)
	if err := os.MkdirAll(filepath.Join(dir, deviceDir), 0o700); err != nil {
		return nil, err
	}
	if err := writeFileSync(secretPath(dir), s); err != nil {
		return nil, err
	}
	if err := writeState(dir, doc); err != nil {
		return nil, err
	}
	return c, nil
}

// Adopt seals every token of the store that is not yet under a device key
// under this device's key, and returns their labels. Tokens sealed by
// another (zeroised) device are left as they are: unreadable.
func (c *Ceremony) Adopt() ([]string, error) {
	if c.master == nil {
		return nil, errors.New("ceremony closed")
	}
	return adoptTokens(c.dir, deviceKey(c.master, c.secret, c.ID))
}

// Close wipes the master key and S from the ceremony's memory.
func (c *Ceremony) Close() {
	clear(c.master)
	clear(c.secret)
	c.master, c.secret = nil, nil
}

// Adopt seals the store's unsealed tokens under the device key; the device
// must be operational (gohsm device adopt).
func (d *Device) Adopt() ([]string, error) {
	st := d.Status()
	if st.State != Operational || st.Key == nil {
		return nil, fmt.Errorf("the device is %s: unseal it first", st.State)
	}
	labels, err := adoptTokens(d.o.Dir, st.Key)
	if err == nil && len(labels) > 0 {
		d.event("adopt", fmt.Sprintf("adopted %d token(s): %q", len(labels), labels))
	}
	return labels, err
}

func adoptTokens(dir string, key []byte) ([]string, error) {
	td, err := tokens.Open(dir)
	if err != nil {
		return nil, err
	}
	defer td.Close()
	stores, err := td.Stores()
	if err != nil {
		return nil, err
	}
	var labels []string
	for _, st := range stores {
		rec, err := st.LoadToken()
		if err != nil {
			return labels, err
		}
		if rec == nil || hsm.TokenRecordSealed(rec) {
			continue
		}
		if _, err := st.UpdateToken(func(r *hsm.TokenRecord) error { return hsm.AdoptTokenRecord(r, key) }); err != nil {
			return labels, fmt.Errorf("adopt %q: %w", rec.Label, err)
		}
		labels = append(labels, rec.Label)
	}
	return labels, nil
}
