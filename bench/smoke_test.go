package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const softhsmPath = "/usr/lib/softhsm/libsofthsm2.so"

// Run must refuse to load modules in a process not started isolated: a Go
// module would otherwise use the user's real token store.
func TestRunRefusesWithoutIsolation(t *testing.T) {
	if os.Getenv(envBenchDir) != "" {
		t.Skip("this process is isolated")
	}
	_, err := Run(Config{Modules: []Module{{Name: "softhsm2", Path: softhsmPath}}, Duration: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "ExecIsolated") {
		t.Fatalf("Run without isolation: %v", err)
	}
}

// TestSmokeSoftHSM runs the harness for a few milliseconds per measurement
// against SoftHSMv2 (and our module when BENCH_GOHSM names a built one) in a
// child process started with the isolated environment, then checks the
// report's shape. It asserts nothing about speed.
func TestSmokeSoftHSM(t *testing.T) {
	if _, err := os.Stat(softhsmPath); err != nil {
		t.Skipf("SoftHSMv2 not installed (%s): apt-get install softhsm2 to run the smoke test", softhsmPath)
	}
	dir := t.TempDir()
	env, err := IsolationEnv(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSmokeChild$", "-test.v")
	cmd.Env = append(append(os.Environ(), env...), "BENCH_SMOKE_OUT="+out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, b)
	}
	defer f.Close()
	rep, err := ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	withGohsm := os.Getenv("BENCH_GOHSM") != ""
	for _, c := range rep.Checks {
		if c.Status == StatusFail {
			t.Errorf("check failed: %+v", c)
		}
		v3 := slices.Contains(smokeOps3, c.Op)
		if c.Target == "softhsm2" && !v3 && c.Status != StatusOK {
			t.Errorf("SoftHSMv2 must run every smoke op: %+v", c)
		}
		// SoftHSMv2 2.6 has no ML-DSA or ML-KEM: those ops skip (it may
		// have EdDSA, when built with an OpenSSL that has it).
		if c.Target == "softhsm2" && v3 && c.Op != "ed25519-sign" && c.Status != StatusSkip {
			t.Errorf("SoftHSMv2 should skip %s: %+v", c.Op, c)
		}
		if c.Target == "gohsm" && c.Status != StatusOK {
			t.Errorf("gohsm must run every smoke op: %+v", c)
		}
	}
	if withGohsm {
		for _, op := range smokeOps3 {
			for _, tg := range []string{"gohsm", RawName} {
				if r := rep.Find(tg, op, 1); r == nil || r.Error != "" || r.Count < 1 {
					t.Errorf("%s %s t=1: %+v", tg, op, r)
				}
			}
		}
	}
	for _, op := range smokeOps {
		for _, th := range []int{1, 2} {
			for _, tg := range []string{"softhsm2", RawName} {
				if op == "find-label" && tg == RawName {
					continue
				}
				r := rep.Find(tg, op, th)
				if r == nil || r.Error != "" || r.Count < 1 || r.OpsPerSec <= 0 || r.P99Ns < r.P50Ns || r.P50Ns <= 0 {
					t.Errorf("%s %s t=%d: %+v", tg, op, th, r)
				}
			}
		}
	}
	if rs := rep.Ratios("softhsm2", RawName); len(rs) == 0 {
		t.Error("no softhsm2/raw ratio")
	}
	found := false
	for _, m := range rep.Modules {
		found = found || (m.Name == "softhsm2" && m.Manufacturer == "SoftHSM" && m.Path == softhsmPath)
	}
	if !found {
		t.Errorf("no SoftHSMv2 module info in %+v", rep.Modules)
	}
	// The run's token store went where the isolation said.
	if ents, _ := os.ReadDir(filepath.Join(dir, "softhsm-tokens")); len(ents) == 0 {
		t.Error("SoftHSMv2 wrote no token into the isolated directory")
	}
}

var smokeOps = []string{"ecdsa-p256-sign", "rsa2048-pkcs1-verify", "aes256-gcm-enc-64", "aes256-cbc-enc-4k", "hmac-sha256-4k", "random-32", "find-label"}

// smokeOps3 run too when BENCH_GOHSM names our module: the PKCS#11 3.x ops,
// which SoftHSMv2 must skip or pass, never fail.
var smokeOps3 = []string{"ed25519-sign", "mldsa65-sign", "mlkem768-encaps"}

// TestSmokeChild is the child half of TestSmokeSoftHSM.
func TestSmokeChild(t *testing.T) {
	out := os.Getenv("BENCH_SMOKE_OUT")
	if out == "" {
		t.Skip("child of TestSmokeSoftHSM only")
	}
	mods := []Module{{Name: "softhsm2", Path: softhsmPath}}
	ops := smokeOps
	if p := os.Getenv("BENCH_GOHSM"); p != "" {
		mods = append([]Module{{Name: "gohsm", Path: p}}, mods...)
		ops = append(slices.Clone(smokeOps), smokeOps3...)
	}
	rep, err := Run(Config{
		Modules: mods, Raw: true, Ops: ops, Threads: []int{1, 2},
		Duration: 20 * time.Millisecond, Repeats: 1, FindObjects: 50,
		SMCodes: "../docs/sm-codes.json", Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := rep.WriteJSON(f); err != nil {
		t.Fatal(err)
	}
}
