package bench

import (
	"os"
	"os/exec"
	"path/filepath"
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
	for _, c := range rep.Checks {
		if c.Status == StatusFail {
			t.Errorf("check failed: %+v", c)
		}
		if c.Target == "softhsm2" && c.Status != StatusOK {
			t.Errorf("SoftHSMv2 must run every smoke op: %+v", c)
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

// TestSmokeChild is the child half of TestSmokeSoftHSM.
func TestSmokeChild(t *testing.T) {
	out := os.Getenv("BENCH_SMOKE_OUT")
	if out == "" {
		t.Skip("child of TestSmokeSoftHSM only")
	}
	mods := []Module{{Name: "softhsm2", Path: softhsmPath}}
	if p := os.Getenv("BENCH_GOHSM"); p != "" {
		mods = append([]Module{{Name: "gohsm", Path: p}}, mods...)
	}
	rep, err := Run(Config{
		Modules: mods, Raw: true, Ops: smokeOps, Threads: []int{1, 2},
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
