package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// makeToken initialises one token with PINs in a new store directory.
func makeToken(t *testing.T, label string) string {
	t.Helper()
	dir := t.TempDir()
	st, err := tokens.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := hsm.DefaultConfig(st)
	cfg.KDFIterations = 10
	m, err := hsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Initialize())
	must(m.InitToken(0, []byte("so-pin-1"), label))
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(err)
	must(m.Login(s, ck.CKU_SO, []byte("so-pin-1")))
	must(m.InitPIN(s, []byte("user-pin")))
	must(m.Finalize())
	return dir
}

func TestTokenBackupRestoreCommands(t *testing.T) {
	src := makeToken(t, "cli-token")
	work := t.TempDir()
	pass := filepath.Join(work, "pass")
	if err := os.WriteFile(pass, []byte("a passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(work, "id.pem"), filepath.Join(work, "id.pub.pem")
	run := func(args ...string) error { t.Helper(); return tokenCmd(args) }
	if err := run("keygen", "--out", priv, "--pub", pub); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ seal, open []string }{
		{[]string{"--passphrase-file", pass}, []string{"--passphrase-file", pass}},
		{[]string{"--recipient", pub}, []string{"--identity", priv}},
	} {
		out := filepath.Join(work, "b-"+c.seal[0][2:])
		if err := run(append([]string{"backup", "--dir", src, "--out", out}, c.seal...)...); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// A flipped byte is refused and adds nothing.
		bad := filepath.Join(work, "bad")
		b[len(b)/2] ^= 1
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		dst := t.TempDir()
		if err := run(append([]string{"restore", "--dir", dst, "--in", bad}, c.open...)...); err == nil ||
			!strings.Contains(err.Error(), "authentication") {
			t.Fatalf("tampered backup: %v", err)
		}
		if err := run(append([]string{"restore", "--dir", dst, "--in", out}, c.open...)...); err != nil {
			t.Fatal(err)
		}
		if err := run("check", "--dir", dst, "--token", "cli-token"); err != nil {
			t.Fatal(err)
		}
		// The restored token opens with its original user PIN.
		st, err := tokens.Open(dst)
		if err != nil {
			t.Fatal(err)
		}
		cfg := hsm.DefaultConfig(st)
		cfg.KDFIterations = 10
		m, _ := hsm.New(cfg)
		if err := m.Initialize(); err != nil {
			t.Fatal(err)
		}
		s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Login(s, ck.CKU_USER, []byte("user-pin")); err != nil {
			t.Fatalf("login to the restored token: %v", err)
		}
		m.Finalize()
	}
	if err := run("backup", "--dir", src, "--out", filepath.Join(work, "x")); err == nil {
		t.Fatal("backup without a key accepted")
	}
}
