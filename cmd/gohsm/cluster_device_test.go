package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/firmware-sim/cluster"
	"github.com/gohsm/gohsm/firmware-sim/device"
)

// Devices across members (in-process members, as serve starts them): a
// member whose store has a device makes the cluster; a new member without
// one is refused at join; `gohsm cluster device-copy` gives a new member
// the device record over the raft port, after which it has the same device
// key fingerprint and joins; a second copy into it is refused.
func TestClusterDeviceCopyAndRefusal(t *testing.T) {
	base := t.TempDir()
	pki := filepath.Join(base, "pki")
	logger := log.New(io.Discard, "", 0)
	member := func(name, join string) (*devMember, string, error) {
		dir := filepath.Join(base, name)
		rdir := filepath.Join(dir, raftSubdir)
		if err := ensurePrivateDir(rdir); err != nil {
			t.Fatal(err)
		}
		conf, err := devMemberTLS(pki, rdir)
		if err != nil {
			t.Fatal(err)
		}
		raft := freePort(t)
		m, err := startMember(context.Background(), memberStart{tls: conf, rdir: rdir, storeDir: dir, raft: raft, join: join, id: name}, logger)
		if m != nil {
			t.Cleanup(func() { m.close() })
		}
		return m, raft, err
	}

	dirA := filepath.Join(base, "a")
	c, err := device.Init(dirA, device.InitOptions{Shares: 3, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	fpA, err := device.KeyFingerprint(dirA)
	if err != nil || fpA == "" {
		t.Fatalf("fingerprint: %q %v", fpA, err)
	}
	a, raftA, err := member("a", "")
	if err != nil {
		t.Fatal(err)
	}
	if st := a.node.Status(); st.Device != fpA {
		t.Fatalf("member a says device %q, its store has %q", st.Device, fpA)
	}

	// No device: refused, and not added.
	if _, _, err := member("b", raftA); !errors.Is(err, cluster.ErrDeviceMismatch) || !strings.Contains(err.Error(), "no device") {
		t.Fatalf("a member without the device joined or failed otherwise: %v", err)
	}
	if n := len(a.node.Status().Members); n != 1 {
		t.Fatalf("%d members after the refusal", n)
	}

	// device-copy, then the join succeeds.
	dirC := filepath.Join(base, "c")
	var out bytes.Buffer
	if err := clusterMain([]string{"device-copy", "--dir", dirC, "--pki", pki, "--from", raftA}, &out); err != nil {
		t.Fatalf("device-copy: %v", err)
	}
	if !strings.Contains(out.String(), fpA) {
		t.Fatalf("device-copy said %q", out.String())
	}
	if fp, err := device.KeyFingerprint(dirC); err != nil || fp != fpA {
		t.Fatalf("copy's fingerprint %q (%v), a's %q", fp, err, fpA)
	}
	if _, _, err := member("c", raftA); err != nil {
		t.Fatalf("join with the copied device: %v", err)
	}
	if n := len(a.node.Status().Members); n != 2 {
		t.Fatalf("%d members after c joined", n)
	}
	err = clusterMain([]string{"device-copy", "--dir", dirC, "--pki", pki, "--from", raftA}, &out)
	if err == nil || !strings.Contains(err.Error(), "already has a device") {
		t.Fatalf("second device-copy: %v", err)
	}
}
