package device

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// KeyFingerprint: none without a device; the same for a copy of the
// device record (which, unsealed with the same shares, opens the tokens
// the original sealed: the same device key); different for another
// ceremony; refused for a damaged state or a zeroised device.
func TestKeyFingerprint(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	if fp, err := KeyFingerprint(dir); err != nil || fp != "" {
		t.Fatalf("no device: %q %v", fp, err)
	}
	msg, sig := plainToken(t, dir)
	c, err := Init(dir, InitOptions{Shares: 3, Threshold: 2})
	must(t, err)
	paths := writeShares(t, out, c)
	_, err = c.Adopt()
	must(t, err)
	c.Close()
	fp, err := KeyFingerprint(dir)
	must(t, err)
	if !strings.HasPrefix(fp, "dk1:") || len(fp) != 4+32 {
		t.Fatalf("fingerprint %q", fp)
	}

	// A second member gets a copy of the device record (ExportRecord on
	// one member, ImportRecord on the other: gohsm cluster device-copy).
	rec, err := ExportRecord(dir)
	must(t, err)
	copyDir := t.TempDir()
	bad := &Record{State: rec.State, Secret: append([]byte(nil), rec.Secret...)}
	bad.Secret[0] ^= 1
	if err := ImportRecord(copyDir, bad); err == nil || !strings.Contains(err.Error(), "MAC") {
		t.Fatalf("a record with another secret: %v", err)
	}
	if HasDevice(copyDir) {
		t.Fatal("a refused record left a device behind")
	}
	must(t, ImportRecord(copyDir, rec))
	if err := ImportRecord(copyDir, rec); err == nil || !strings.Contains(err.Error(), "already has a device") {
		t.Fatalf("a second import: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(copyDir, deviceDir, secretFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("imported secret: %v %v", fi.Mode(), err)
	}
	rec.Wipe()
	fc, err := KeyFingerprint(copyDir)
	must(t, err)
	if fc != fp {
		t.Fatalf("copy: %q, original %q", fc, fp)
	}
	// Unsealed with the original's shares, the copy's key opens the
	// original's tokens.
	d, err := Open(Options{Dir: copyDir, SkipSelftests: true})
	must(t, err)
	g := d.Guard(opener(t, dir))
	defer g.Close()
	must(t, g.Initialize())
	for _, p := range paths[:2] {
		_, err := d.Present(readShare(t, p))
		must(t, err)
	}
	must(t, verifyWith(t, g, msg, sig))

	// Another ceremony: another fingerprint.
	other := t.TempDir()
	oc, err := Init(other, InitOptions{Shares: 3, Threshold: 2})
	must(t, err)
	oc.Close()
	fo, err := KeyFingerprint(other)
	must(t, err)
	if fo == fp || fo == "" {
		t.Fatalf("another device: %q, first %q", fo, fp)
	}

	// A state edited by hand, and a zeroised device, have none.
	b, err := os.ReadFile(StatePath(copyDir))
	must(t, err)
	must(t, os.WriteFile(StatePath(copyDir), []byte(strings.Replace(string(b), `"threshold": 2`, `"threshold": 1`, 1)), 0o600))
	if _, err := KeyFingerprint(copyDir); err == nil || !strings.Contains(err.Error(), "MAC") {
		t.Fatalf("edited state: %v", err)
	}
	do, err := Open(Options{Dir: other, SkipSelftests: true})
	must(t, err)
	must(t, do.Zeroise("test"))
	if _, err := KeyFingerprint(other); err == nil {
		t.Fatal("a zeroised device has a fingerprint")
	}
}
