package device

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/firmware-sim/device/internal/genguard"
	"github.com/gohsm/gohsm/firmware-sim/device/selftest"
	"github.com/gohsm/gohsm/firmware-sim/device/shamir"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

const (
	soPIN   = "so-pin-1234"
	userPIN = "user-pin-1234"
)

// opener makes engines on dir's store, as the appliance does.
func opener(t testing.TB, dir string) func(key []byte) (hsm.Backend, error) {
	return func(key []byte) (hsm.Backend, error) {
		td, err := tokens.Open(dir)
		if err != nil {
			return nil, err
		}
		cfg := hsm.DefaultConfig(td)
		cfg.KDFIterations = 10
		cfg.DeviceKey = key
		m, err := hsm.New(cfg)
		if err != nil {
			td.Close()
			return nil, err
		}
		return &closingEngine{Module: m, td: td}, nil
	}
}

type closingEngine struct {
	*hsm.Module
	td *tokens.Dir
}

func (c *closingEngine) Close() error { return c.td.Close() }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantRV(t testing.TB, err error, rv ck.RV) {
	t.Helper()
	if got := hsm.ToRV(err); got != rv {
		t.Fatalf("got %v (%v), want %v", got, err, rv)
	}
}

var p256 = func() []byte { b, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}); return b }()

// plainToken makes a token in dir with the local module's engine (no
// device) and an EC key pair; it returns a signature and the message.
func plainToken(t *testing.T, dir string) (msg, sig []byte) {
	be, err := opener(t, dir)(nil)
	must(t, err)
	defer be.(*closingEngine).Close()
	must(t, be.Initialize())
	defer be.Finalize()
	must(t, be.InitToken(0, []byte(soPIN), "custody"))
	s, err := be.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	must(t, be.Login(s, ck.CKU_SO, []byte(soPIN)))
	must(t, be.InitPIN(s, []byte(userPIN)))
	must(t, be.Logout(s))
	must(t, be.Login(s, ck.CKU_USER, []byte(userPIN)))
	_, priv, err := be.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_TOKEN, Value: []byte{1}}, {Type: ck.CKA_LABEL, Value: []byte("k")}},
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: []byte{1}}, {Type: ck.CKA_LABEL, Value: []byte("k")}})
	must(t, err)
	msg = []byte("signed before the ceremony")
	must(t, be.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, priv))
	sig, _, err = be.Sign(s, msg, 256)
	must(t, err)
	return msg, sig
}

// verifyWith verifies sig with the token's public key "k" through be.
func verifyWith(t *testing.T, be hsm.Backend, msg, sig []byte) error {
	t.Helper()
	s, err := be.OpenSession(0, ck.CKF_SERIAL_SESSION)
	if err != nil {
		return err
	}
	defer be.CloseSession(s)
	if err := be.Login(s, ck.CKU_USER, []byte(userPIN)); err != nil {
		return err
	}
	must(t, be.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_CLASS, Value: []byte{2, 0, 0, 0, 0, 0, 0, 0}}}))
	objs, err := be.FindObjects(s, 10)
	must(t, err)
	must(t, be.FindObjectsFinal(s))
	if len(objs) != 1 {
		t.Fatalf("%d public keys", len(objs))
	}
	if err := be.VerifyInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, objs[0]); err != nil {
		return err
	}
	return be.Verify(s, msg, sig)
}

func writeShares(t *testing.T, dir string, c *Ceremony) []string {
	var paths []string
	for _, sh := range c.Shares {
		p := filepath.Join(dir, "share"+string(rune('0'+sh.Index))+".json")
		must(t, os.WriteFile(p, sh.Marshal(), 0o600))
		paths = append(paths, p)
	}
	return paths
}

func readShare(t *testing.T, path string) *Share {
	b, err := os.ReadFile(path)
	must(t, err)
	sh, err := ParseShare(b)
	must(t, err)
	return sh
}

type memAudit struct{ events []string }

func (m *memAudit) DeviceEvent(ev, note string) error {
	m.events = append(m.events, ev+": "+note)
	return nil
}

// TestCeremonyUnsealTamper is the custody story end to end: a 3-of-5
// ceremony over a store that already has a token (adopted), sealed after
// boot (every call but the descriptive ones CKR_DEVICE_ERROR), two shares
// do not unseal, a corrupted share and a wrong share are named, the third
// share (encrypted to its custodian) unseals, the key made before the
// ceremony verifies its old signature; then tamper, restart: nothing can
// be read, by any share.
func TestCeremonyUnsealTamper(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	msg, sig := plainToken(t, dir)
	cust, err := ecdh.X25519().GenerateKey(rand.Reader)
	must(t, err)
	keys := make([]*ecdh.PublicKey, 5)
	keys[1] = cust.PublicKey()
	c, err := Init(dir, InitOptions{Shares: 5, Threshold: 3, Custodians: keys})
	must(t, err)
	paths := writeShares(t, out, c)
	adopted, err := c.Adopt()
	must(t, err)
	c.Close()
	if len(adopted) != 1 || strings.TrimRight(adopted[0], " ") != "custody" {
		t.Fatalf("adopted %q", adopted)
	}
	if _, err := Init(dir, InitOptions{Shares: 5, Threshold: 3}); err == nil {
		t.Fatal("a second ceremony over a live device")
	}
	// The store alone opens nothing now.
	be, _ := opener(t, dir)(nil)
	must(t, be.Initialize())
	_, err = be.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	be.Finalize()
	be.(*closingEngine).Close()

	aud := &memAudit{}
	d, err := Open(Options{Dir: dir, Audit: aud})
	must(t, err)
	if st := d.Status(); st.State != Sealed {
		t.Fatalf("after boot: %v %s", st.State, st.Reason)
	}
	g := d.Guard(opener(t, dir))
	defer g.Close()
	must(t, g.Initialize())
	info, err := g.GetTokenInfo(0)
	must(t, err)
	if strings.TrimRight(info.Label, " ") != "custody" || !strings.HasPrefix(info.ManufacturerID, "sealed: unseal 3 of 5") || strings.TrimRight(info.Model, " ") != "SEALED" {
		t.Fatalf("sealed token info: %q %q %q", info.Label, info.ManufacturerID, info.Model)
	}
	_, err = g.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)

	// Two shares do not unseal.
	for _, i := range []int{0, 2} {
		p, err := d.Present(readShare(t, paths[i]))
		must(t, err)
		if p.State != Sealed {
			t.Fatalf("unsealed with %d shares", p.Have)
		}
	}
	_, err = g.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)

	// A corrupted share file is named as corrupted.
	b, _ := os.ReadFile(paths[3])
	i := bytes.Index(b, []byte(`"value": "`)) + 12
	b[i] ^= 1 // a hex digit changes
	if _, err := ParseShare(b); !errors.Is(err, ErrShareCorrupted) {
		t.Fatalf("corrupted share: %v", err)
	}
	// A share altered with its checksum recomputed, and a share of another
	// device, are named as not this device's.
	sh := readShare(t, paths[3])
	v, _ := hex.DecodeString(sh.Value)
	v[0] ^= 1
	sh.Value = hex.EncodeToString(v)
	sh, err = ParseShare(sh.Marshal())
	must(t, err)
	if _, err := d.Present(sh); !errors.Is(err, ErrShareWrong) || !strings.Contains(err.Error(), "share 4") {
		t.Fatalf("altered share: %v", err)
	}
	other := t.TempDir()
	oc, err := Init(other, InitOptions{Shares: 5, Threshold: 3})
	must(t, err)
	oc.Close()
	if _, err := d.Present(oc.Shares[3]); !errors.Is(err, ErrShareWrong) || !strings.Contains(err.Error(), oc.ID) {
		t.Fatalf("another device's share: %v", err)
	}
	// A repeated share does not count twice.
	if _, err := d.Present(readShare(t, paths[0])); err == nil {
		t.Fatal("share 1 counted twice")
	}
	// The encrypted share needs its custodian's key; with it, it unseals.
	enc := readShare(t, paths[1])
	if _, err := d.Present(enc); err == nil {
		t.Fatal("an encrypted share was taken without its key")
	}
	val, err := enc.Open(cust)
	must(t, err)
	plain := &Share{Format: 1, Device: enc.Device, Index: enc.Index, Threshold: enc.Threshold, Shares: enc.Shares, Value: hex.EncodeToString(val)}
	p, err := d.Present(plain)
	must(t, err)
	if p.State != Operational {
		t.Fatalf("3 shares: %v", p.State)
	}
	// Operational: the key made before the ceremony verifies its signature.
	must(t, verifyWith(t, g, msg, sig))
	info, _ = g.GetTokenInfo(0)
	if strings.TrimRight(info.ManufacturerID, " ") != "gohsm" {
		t.Fatalf("operational token info: %q", info.ManufacturerID)
	}

	// Seal and unseal again.
	must(t, d.Seal("test"))
	_, err = g.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	for _, i := range []int{2, 3, 4} {
		_, err := d.Present(readShare(t, paths[i]))
		must(t, err)
	}
	must(t, verifyWith(t, g, msg, sig))

	// Tamper, then restart: nothing can be read, by any share.
	must(t, d.Zeroise("tamper (test)"))
	_, err = g.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	if _, err := os.Stat(secretPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the device secret survived: %v", err)
	}
	d2, err := Open(Options{Dir: dir})
	must(t, err)
	if st := d2.Status(); st.State != Zeroised {
		t.Fatalf("after restart: %v", st.State)
	}
	for _, i := range []int{0, 2, 3, 4} {
		if _, err := d2.Present(readShare(t, paths[i])); err == nil || !strings.Contains(err.Error(), "zeroised") {
			t.Fatalf("share %d after zeroise: %v", i+1, err)
		}
	}
	// Even with the master key rebuilt from the shares, no key derivable
	// without S opens the tokens: try the master key itself and the
	// derivation with an empty S.
	var parts [][]byte
	for _, i := range []int{0, 2, 3} {
		v, _ := hex.DecodeString(readShare(t, paths[i]).Value)
		parts = append(parts, v)
	}
	master, err := shamir.Combine(parts)
	must(t, err)
	for _, k := range [][]byte{master, deviceKey(master, nil, c.ID), deviceKey(master, make([]byte, 32), c.ID)} {
		be, _ := opener(t, dir)(k)
		must(t, be.Initialize())
		_, err := be.OpenSession(0, ck.CKF_SERIAL_SESSION)
		wantRV(t, err, ck.CKR_DEVICE_ERROR)
		be.Finalize()
		be.(*closingEngine).Close()
	}
	// Every transition was audited.
	all := strings.Join(aud.events, "\n")
	for _, ev := range []string{"boot: sealed", "share: accepted share 1", "refused share 4", "unseal: unsealed", "seal: test", "zeroise: zeroised: tamper (test)"} {
		if !strings.Contains(all, ev) {
			t.Errorf("audit lacks %q:\n%s", ev, all)
		}
	}
}

// TestSOFailuresZeroise: the ceremony's policy zeroises after N
// consecutive failed SO logins.
func TestSOFailuresZeroise(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	plainToken(t, dir)
	c, err := Init(dir, InitOptions{Shares: 3, Threshold: 2, ZeroiseAfterSOFailures: 3})
	must(t, err)
	paths := writeShares(t, out, c)
	_, err = c.Adopt()
	must(t, err)
	c.Close()
	d, err := Open(Options{Dir: dir, SkipSelftests: true})
	must(t, err)
	for _, p := range paths[:2] {
		_, err := d.Present(readShare(t, p))
		must(t, err)
	}
	g := d.Guard(opener(t, dir))
	defer g.Close()
	must(t, g.Initialize())
	s, err := g.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	wantRV(t, g.Login(s, ck.CKU_SO, []byte("wrong-1")), ck.CKR_PIN_INCORRECT)
	must(t, g.Login(s, ck.CKU_SO, []byte(soPIN))) // a success resets the count
	must(t, g.Logout(s))
	for i := 0; i < 2; i++ {
		wantRV(t, g.Login(s, ck.CKU_SO, []byte("wrong")), ck.CKR_PIN_INCORRECT)
	}
	if d.Status().State != Operational {
		t.Fatal("zeroised too early")
	}
	wantRV(t, g.Login(s, ck.CKU_SO, []byte("wrong")), ck.CKR_PIN_INCORRECT)
	if st := d.Status(); st.State != Zeroised {
		t.Fatalf("after 3 failed SO logins: %v", st.State)
	}
	_, err = g.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
}

// TestFirmwareImages: a tampered image, a wrong signer and a rollback are
// refused; an install raises the minimum SVN and keeps every key; the boot
// integrity test checks the running binary against the installed image.
func TestFirmwareImages(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	msg, sig := plainToken(t, dir)
	sk := filepath.Join(out, "fw.key")
	pk := filepath.Join(out, "fw.pub")
	pub, err := WriteSigningKey(sk, pk, rand.Reader)
	must(t, err)
	key, err := ReadSigningKey(sk)
	must(t, err)
	if p2, err := ReadSignerPublic(pk); err != nil || !p2.Equal(pub) {
		t.Fatalf("public key file: %v", err)
	}
	_, wrongKey, _ := ed25519.GenerateKey(rand.Reader)
	c, err := Init(dir, InitOptions{Shares: 3, Threshold: 2, Signer: pub})
	must(t, err)
	paths := writeShares(t, out, c)
	_, err = c.Adopt()
	must(t, err)
	c.Close()
	exe, err := os.Executable()
	must(t, err)
	exeDigest, err := FileDigest(exe)
	must(t, err)
	image := func(svn uint32, k ed25519.PrivateKey, digest string) []byte {
		im, err := SignImage(&Manifest{Version: "0.1", SVN: svn, Files: map[string]string{RoleBinary: digest}}, k)
		must(t, err)
		return im.Marshal()
	}
	boot := func() *Device {
		d, err := Open(Options{Dir: dir, Binary: exe})
		must(t, err)
		return d
	}
	unseal := func(d *Device) {
		for _, p := range paths[:2] {
			_, err := d.Present(readShare(t, p))
			must(t, err)
		}
		if d.Status().State != Operational {
			t.Fatalf("not operational: %v", d.Status().Reason)
		}
	}
	d := boot()
	if _, err := d.Install(image(5, key, exeDigest)); err == nil {
		t.Fatal("installed while sealed")
	}
	unseal(d)
	// Wrong signer.
	if _, err := d.Install(image(5, wrongKey, exeDigest)); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("wrong signer: %v", err)
	}
	// Tampered: the manifest changed after signing (svn 5 -> 9), signer kept.
	var im Image
	json.Unmarshal(image(5, key, exeDigest), &im)
	var compact bytes.Buffer
	json.Compact(&compact, im.Manifest)
	im.Manifest = bytes.Replace(compact.Bytes(), []byte(`"svn":5`), []byte(`"svn":9`), 1)
	if bytes.Equal(im.Manifest, compact.Bytes()) {
		t.Fatal("tamper did not change the manifest")
	}
	if _, err := d.Install(im.Marshal()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered image: %v", err)
	}
	// An update: svn 5, keys kept.
	m, err := d.Install(image(5, key, exeDigest))
	must(t, err)
	if m.SVN != 5 || d.Info().MinSVN != 5 {
		t.Fatalf("min svn %d", d.Info().MinSVN)
	}
	// Rollback refused; the same svn is accepted.
	if _, err := d.Install(image(4, key, exeDigest)); !errors.Is(err, ErrRollback) {
		t.Fatalf("rollback: %v", err)
	}
	// Restart: the integrity test passes with the running binary, names the
	// image, and the key made before verifies its signature after.
	d2 := boot()
	if !d2.Report().OK() || !strings.Contains(d2.Info().Firmware, "svn 5") {
		t.Fatalf("boot after install: %s %+v", d2.Report().Reason(), d2.Info())
	}
	unseal(d2)
	g := d2.Guard(opener(t, dir))
	defer g.Close()
	must(t, g.Initialize())
	must(t, verifyWith(t, g, msg, sig))
	// An image of another build: the next boot's integrity test fails.
	_, err = d2.Install(image(6, key, strings.Repeat("ab", 32)))
	must(t, err)
	d3 := boot()
	if st := d3.Status(); st.State != Error || st.Reason != "selftest FAIL: "+selftest.IntegrityName {
		t.Fatalf("boot with another build's image: %v %q", st.State, st.Reason)
	}
	// The minimum never goes down, even by editing the file: the state's
	// MAC (keyed by S) fails at boot.
	doc, err := readState(dir)
	must(t, err)
	doc.MinSVN = 0
	must(t, writeState(dir, doc))
	if st := boot().Status(); st.State != Error || !strings.Contains(st.Reason, "MAC") {
		t.Fatalf("edited state: %v %q", st.State, st.Reason)
	}
	// Someone who recomputes that MAC (S is on the same disk) still lacks
	// the master key: the unseal refuses the state.
	s, _ := readSecret(dir)
	doc.seal(s, nil)
	doc.Auth = strings.Repeat("0", 64)
	must(t, writeState(dir, doc))
	d4, err := Open(Options{Dir: dir, SkipSelftests: true})
	must(t, err)
	for _, p := range paths[:2] {
		d4.Present(readShare(t, p))
	}
	if st := d4.Status(); st.State != Error || !strings.Contains(st.Reason, "altered") {
		t.Fatalf("forged state at unseal: %v %q", st.State, st.Reason)
	}
}

// callAll calls every hsm.Backend method of be with zero arguments and
// returns each one's error.
func callAll(be hsm.Backend) map[string]error {
	out := map[string]error{}
	v := reflect.ValueOf(be)
	t := reflect.TypeFor[hsm.Backend]()
	for i := 0; i < t.NumMethod(); i++ {
		name := t.Method(i).Name
		if name == "Initialize" || name == "Finalize" || name == "WaitForSlotEvent" {
			continue
		}
		m := v.MethodByName(name)
		args := make([]reflect.Value, m.Type().NumIn())
		for j := range args {
			args[j] = reflect.Zero(m.Type().In(j))
		}
		res := m.Call(args)
		err, _ := res[len(res)-1].Interface().(error)
		out[name] = err
	}
	return out
}

var descriptive = map[string]bool{"GetInfo": true, "GetSlotList": true, "GetSlotInfo": true, "GetTokenInfo": true}

// TestModuleErrorStateEveryTest: each self-test, made to fail by name,
// puts a module's backend in the error state: every call answers
// CKR_DEVICE_ERROR but the four descriptive ones, and C_GetTokenInfo names
// the test.
func TestModuleErrorStateEveryTest(t *testing.T) {
	for _, name := range selftest.Names() {
		m, err := hsm.New(hsm.DefaultConfig(hsm.NewMemoryStorage()))
		must(t, err)
		g := NewModuleGuard(m, BootOptions{FailSelftest: name})
		must(t, g.Initialize())
		for call, err := range callAll(g) {
			if descriptive[call] {
				if err != nil && call != "GetSlotInfo" && call != "GetTokenInfo" { // slot 0 exists
					t.Fatalf("%s: %s: %v", name, call, err)
				}
				continue
			}
			if hsm.ToRV(err) != ck.CKR_DEVICE_ERROR || !strings.Contains(err.Error(), "selftest FAIL: "+name) {
				t.Fatalf("%s: %s: %v", name, call, err)
			}
		}
		info, err := g.GetTokenInfo(0)
		must(t, err)
		if strings.TrimRight(info.ManufacturerID, " ") != "selftest FAIL: "+name && len(name) < 17 {
			t.Fatalf("%s: token info %q", name, info.ManufacturerID)
		}
		if !strings.HasPrefix("selftest FAIL: "+name, strings.TrimRight(info.ManufacturerID, " ")) || strings.TrimRight(info.Model, " ") != "ERROR" {
			t.Fatalf("%s: token info %q %q", name, info.ManufacturerID, info.Model)
		}
		ci, err := g.GetInfo()
		must(t, err)
		if !strings.HasPrefix("selftest FAIL: "+name, ci.LibraryDescription) {
			t.Fatalf("%s: C_GetInfo %q", name, ci.LibraryDescription)
		}
		must(t, g.Finalize())
	}
}

// TestModuleCleanBoot: a clean boot passes every test and reports its
// time (power-on self-tests + engine start, C_Initialize to operational).
func TestModuleCleanBoot(t *testing.T) {
	dir := t.TempDir()
	be, err := opener(t, dir)(nil)
	must(t, err)
	defer be.(*closingEngine).Close()
	bootMu.Lock()
	clear(bootCache) // a real power-on: nothing cached
	bootMu.Unlock()
	g := NewModuleGuard(be, BootOptions{Dir: dir})
	must(t, g.Initialize())
	defer g.Finalize()
	if g.Reason() != "" {
		t.Fatal(g.Reason())
	}
	rep := ModuleBoot(BootOptions{})
	t.Logf("boot to operational: %.1f ms (self-tests %.1f ms, %d tests)", float64(g.BootTime().Microseconds())/1000,
		float64(rep.Took.Microseconds())/1000, len(rep.Results))
	must(t, g.InitToken(0, []byte(soPIN), "clean"))
	// A store with a device is an appliance's: the module refuses it.
	c, err := Init(dir, InitOptions{Shares: 2, Threshold: 2})
	must(t, err)
	c.Close()
	g2 := NewModuleGuard(be, BootOptions{Dir: dir})
	must(t, g.Finalize())
	must(t, g2.Initialize())
	_, err = g2.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	must(t, g2.Finalize())
	must(t, g.Initialize())
}

func TestGuardGenerated(t *testing.T) {
	manual, err := genguard.HandWritten(".")
	must(t, err)
	src, err := genguard.Generate(manual)
	must(t, err)
	have, err := os.ReadFile(genguard.Out)
	must(t, err)
	if !bytes.Equal(src, have) {
		t.Fatal("zguard.go is stale: go generate ./firmware-sim/device")
	}
}
