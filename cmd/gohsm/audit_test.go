package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/firmware-sim/audit"
)

// auditTestLog writes a log of the genesis record, 5 records and the close
// record, and returns its path and head.
func auditTestLog(t *testing.T, key []byte) (string, uint64, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := l.Append(audit.Record{Who: "CN=c", Call: "C_Login", Phase: audit.PhaseIntent, User: fmt.Sprint("CKU_USER", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = audit.Open(path, audit.Options{Key: key}) // an audit.open record
	if err != nil {
		t.Fatal(err)
	}
	seq, head := l.Head()
	l.Close()
	return path, seq, head
}

func runAudit(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := auditMain(args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestAuditVerifyCommand(t *testing.T) {
	path, seq, head := auditTestLog(t, nil)
	out, err := runAudit("verify", path)
	if err != nil || !strings.HasPrefix(out, "9 records ok\n") {
		t.Fatalf("verify: %q, %v", out, err)
	}
	if out, err := runAudit("verify", "--head", fmt.Sprintf("%d:%s", seq, head), path); err != nil {
		t.Fatalf("verify --head: %q, %v", out, err)
	}

	// A broken record is named, and the command fails.
	data, _ := os.ReadFile(path)
	bad := bytes.Replace(data, []byte("CKU_USER3"), []byte("CKU_USER9"), 1)
	badPath := filepath.Join(t.TempDir(), "bad.log")
	os.WriteFile(badPath, bad, 0o600)
	if _, err := runAudit("verify", badPath); err == nil || !strings.Contains(err.Error(), "record 5 (line 5)") {
		t.Fatalf("tampered log: %v", err)
	}

	// A log cut at a line boundary verifies, but not against its head.
	lines := bytes.SplitAfter(data, []byte("\n"))
	cut := filepath.Join(t.TempDir(), "cut.log")
	os.WriteFile(cut, bytes.Join(lines[:5], nil), 0o600)
	if _, err := runAudit("verify", cut); err != nil {
		t.Fatal(err)
	}
	if _, err := runAudit("verify", cut, "--head", fmt.Sprintf("%d:%s", seq, head)); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("cut log against its head: %v", err)
	}
	if _, err := runAudit("verify", path, "--head", fmt.Sprintf("%d:%s", seq-1, head)); err == nil || !strings.Contains(err.Error(), "rewritten") {
		t.Fatalf("wrong head: %v", err)
	}

	if _, err := runAudit("verify"); err == nil {
		t.Fatal("verify without a file")
	}
	if _, err := runAudit("verify", path, "--head", "x"); err == nil {
		t.Fatal("a bad --head was taken")
	}
	if _, err := runAudit("frobnicate"); err == nil {
		t.Fatal("an unknown command")
	}
	if out, err := runAudit("-h"); err != nil || !strings.Contains(out, "usage: gohsm audit verify") {
		t.Fatalf("-h: %q %v", out, err)
	}
}

func TestAuditVerifyKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{0x5a}, 32)
	keyFile := filepath.Join(dir, "audit.key")
	os.WriteFile(keyFile, key, 0o600)
	path, _, _ := auditTestLog(t, key)
	if out, err := runAudit("verify", path, "--key-file", keyFile); err != nil || !strings.HasPrefix(out, "9 records ok") {
		t.Fatalf("keyed log with its key: %q %v", out, err)
	}
	if _, err := runAudit("verify", path); err == nil || !strings.Contains(err.Error(), "its key") {
		t.Fatalf("keyed log without a key: %v", err)
	}
	other := filepath.Join(dir, "other.key")
	os.WriteFile(other, bytes.Repeat([]byte{1}, 32), 0o600)
	if _, err := runAudit("verify", "--key-file", other, path); err == nil || !strings.Contains(err.Error(), "wrong key") {
		t.Fatalf("wrong key: %v", err)
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("short"), 0o600)
	if _, err := runAudit("verify", "--key-file", short, path); err == nil {
		t.Fatal("a short key file was taken")
	}
}
