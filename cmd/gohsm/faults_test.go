package main

import (
	"bytes"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/audit"
	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The serve configuration's faults key: a path relative to the file.
func TestServeConfigFaults(t *testing.T) {
	c := newServeConfig()
	if err := c.parse(strings.NewReader("faults = plans/p.json\n")); err != nil {
		t.Fatal(err)
	}
	c.resolvePaths("/etc/gohsm")
	if c.Faults != "/etc/gohsm/plans/p.json" {
		t.Fatalf("faults = %q", c.Faults)
	}
	for _, in := range []string{"faults =", "faults = a\nfaults = b"} {
		if err := newServeConfig().parse(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// gohsm faults check / set / clear / profiles / functions.
func TestFaultsCLI(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte(`{"seed": 7, "rules": [{"function": "C_Sign", "nth": 3, "rv": "CKR_DEVICE_ERROR"}], "profile": "luna"}`), 0o600)
	os.WriteFile(bad, []byte(`{"rules": [{"function": "C_Sgin", "nth": 3, "rv": "CKR_DEVICE_ERROR"}]}`), 0o600)
	var out, errb bytes.Buffer
	if err := faultsMain([]string{"check", good}, &out, &errb); err != nil || !strings.Contains(out.String(), "ok") || !strings.Contains(out.String(), "profile luna") {
		t.Fatalf("check good: %v\n%s", err, out.String())
	}
	if err := faultsMain([]string{"check", bad}, &out, &errb); err == nil || !strings.Contains(err.Error(), `unknown function "C_Sgin"`) {
		t.Fatalf("check bad: %v", err)
	}
	// set --dir D writes D/faults.json; a bad plan changes nothing.
	d := filepath.Join(dir, "dev")
	os.Mkdir(d, 0o700)
	if err := faultsMain([]string{"set", "--dir", d, good}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(d, "faults.json")); !bytes.Equal(got, mustRead(t, good)) {
		t.Fatalf("D/faults.json: %s", got)
	}
	if err := faultsMain([]string{"set", "--dir", d, bad}, &out, &errb); err == nil {
		t.Fatal("a bad plan was set")
	}
	if got, _ := os.ReadFile(filepath.Join(d, "faults.json")); !bytes.Equal(got, mustRead(t, good)) {
		t.Fatal("a refused plan changed the file")
	}
	if err := faultsMain([]string{"clear", "--dir", d}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "faults.json")); !os.IsNotExist(err) {
		t.Fatal("clear left the plan")
	}
	// --config: the serve configuration's faults file.
	confPath, _ := writeProdConfig(t, "audit_log = audit.log\nfaults = plan.json\n")
	if err := faultsMain([]string{"set", good, "--config", confPath}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(confPath), "plan.json")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"set", good}, {"set", "--dir", d, "--file", good, good}, {"set", "--dir", d}, {"clear", "--dir", d, good}, {"nope"}} {
		if err := faultsMain(args, &out, &errb); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	out.Reset()
	faultsMain([]string{"profiles"}, &out, &errb)
	for _, w := range []string{"cloudhsm", "luna", "yubikey", "source: "} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("profiles: no %q in\n%s", w, out.String())
		}
	}
	out.Reset()
	faultsMain([]string{"functions"}, &out, &errb)
	if !strings.Contains(out.String(), "C_Sign\n") {
		t.Errorf("functions:\n%s", out.String())
	}
}

// The appliance with `faults = FILE`: a client sees the planned CKR at the
// planned call; the audit log holds only what reached the engine (faults
// wrap outside it); a new plan applies at run time (SIGHUP, or the
// once-a-second read); a plan that does not parse at start stops the start.
func TestServeFaults(t *testing.T) {
	confPath, p := writeProdConfig(t, "audit_log = audit.log\nfaults = plan.json\nadmin.app1 = true\n")
	base := filepath.Dir(confPath)
	plan := filepath.Join(base, "plan.json")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(plan, []byte(`{"rules": [`), 0o600)
	if _, err := loadServeConfig(confPath); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cfg, _ := loadServeConfig(confPath)
	if _, err := startAppliance(cfg, log.New(&stderr, "", 0)); err == nil || !strings.Contains(err.Error(), "faults") {
		t.Fatalf("a broken plan at start: %v", err)
	}
	must(os.WriteFile(plan, []byte(`{"rules": [{"function": "C_GetInfo", "nth": 2, "rv": "CKR_DEVICE_ERROR"},
		{"function": "C_InitToken", "nth": 1, "rv": "CKR_DEVICE_MEMORY"}]}`), 0o600))
	a, _, logs, stop := startServe(t, "--config", confPath)
	tlsConf, err := client.LoadTLS(p.CACert(), p.ClientCert(), p.ClientKey(), "", a.Addr().String())
	must(err)
	ccfg := client.DefaultConfig()
	ccfg.Address, ccfg.TLS = a.Addr().String(), tlsConf
	c, err := client.New(ccfg)
	must(err)
	must(c.Initialize())
	defer c.Finalize()
	var got []ck.RV
	for range 3 {
		_, err := c.GetInfo()
		got = append(got, hsm.ToRV(err))
	}
	if got[0] != ck.CKR_OK || got[1] != ck.CKR_DEVICE_ERROR || got[2] != ck.CKR_OK {
		t.Fatalf("C_GetInfo through the appliance: %v, want OK, CKR_DEVICE_ERROR, OK", got)
	}
	slots, err := c.GetSlotList(false)
	must(err)
	if len(slots) != 1 {
		t.Fatalf("slots %v, want the free slot", slots)
	}
	if err := c.InitToken(slots[0], []byte("so-pin-1"), "payments"); hsm.ToRV(err) != ck.CKR_DEVICE_MEMORY {
		t.Fatalf("planned C_InitToken failure: %v", err)
	}
	must(c.InitToken(slots[0], []byte("so-pin-1"), "payments"))

	// A new plan at run time: SIGHUP (the handler is the appliance's).
	must(os.WriteFile(plan, []byte(`{"rules": [{"function": "C_GetInfo", "rv": "CKR_FUNCTION_FAILED"}]}`), 0o600))
	must(syscall.Kill(os.Getpid(), syscall.SIGHUP))
	deadline := time.Now().Add(5 * time.Second)
	for len(a.faults.Plan().Rules) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.GetInfo(); hsm.ToRV(err) != ck.CKR_FUNCTION_FAILED {
		t.Fatalf("after SIGHUP: %v", err)
	}
	// gohsm faults clear: no faults (read within a second).
	var out bytes.Buffer
	must(faultsMain([]string{"clear", "--config", confPath}, &out, &out))
	deadline = time.Now().Add(5 * time.Second)
	for len(a.faults.Plan().Rules) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.GetInfo(); err != nil {
		t.Fatalf("after clear: %v", err)
	}
	c.Finalize()
	if err := stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, logs)
	}
	if !strings.Contains(logs.String(), "fault plan "+plan) {
		t.Errorf("the plan is not logged:\n%s", logs)
	}
	// The audit log: the failed C_InitToken never reached the engine, so
	// it has one C_InitToken (the one that ran).
	n := 0
	for _, r := range checkAuditLog(t, filepath.Join(base, "audit.log"), nil) {
		if r.Call == "C_InitToken" && r.Phase == audit.PhaseIntent {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d C_InitToken intents in the audit log, want 1", n)
	}
}

// Dev mode reads D/faults.json: `gohsm faults set --dir D` changes a
// running dev appliance's plan within a second, `clear` ends it.
func TestServeDevFaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	a, _, logs, _ := startServe(t, "--dev", "--dir", dir, "--listen", "127.0.0.1:0")
	p := pkiFiles{filepath.Join(dir, "pki")}
	tlsConf, err := client.LoadTLS(p.CACert(), p.ClientCert(), p.ClientKey(), "", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ccfg := client.DefaultConfig()
	ccfg.Address, ccfg.TLS = a.Addr().String(), tlsConf
	c, err := client.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer c.Finalize()
	if _, err := c.GetInfo(); err != nil {
		t.Fatalf("no plan yet: %v", err)
	}
	plan := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(plan, []byte(`{"rules": [{"function": "C_GetInfo", "rv": "CKR_DEVICE_ERROR"}]}`), 0o600)
	var out bytes.Buffer
	if err := faultsMain([]string{"set", "--dir", dir, plan}, &out, &out); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { _, err := c.GetInfo(); return hsm.ToRV(err) == ck.CKR_DEVICE_ERROR })
	if err := faultsMain([]string{"clear", "--dir", dir}, &out, &out); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { _, err := c.GetInfo(); return err == nil })
	if !strings.Contains(logs.String(), "fault plan "+filepath.Join(dir, "faults.json")) {
		t.Errorf("log:\n%s", logs)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
