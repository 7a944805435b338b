package gwtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// SoftHSMModule is Debian's SoftHSMv2 module (package softhsm2).
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

var softhsm struct {
	once sync.Once
	dir  string
	err  error
}

// SoftHSM returns the module path after making, once per test binary, a
// SoftHSMv2 token directory with an initialised token per label (the
// PINs above) and pointing SOFTHSM2_CONF at it. SoftHSMv2 reads its
// configuration at C_Initialize, once per process, so every test of the
// binary shares one directory: the labels of the first call are the
// tokens there are. Skips the test when SoftHSMv2 is not installed.
func SoftHSM(t testing.TB, labels ...string) string {
	t.Helper()
	if _, err := os.Stat(SoftHSMModule); err != nil {
		t.Skipf("SoftHSMv2 not installed (%s): apt-get install softhsm2", SoftHSMModule)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Skip("softhsm2-util not found")
	}
	softhsm.once.Do(func() {
		dir, err := os.MkdirTemp("", "gohsm-gw-softhsm-")
		if err != nil {
			softhsm.err = err
			return
		}
		softhsm.dir = dir
		conf := filepath.Join(dir, "softhsm2.conf")
		if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
			softhsm.err = err
			return
		}
		body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", filepath.Join(dir, "tokens"))
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			softhsm.err = err
			return
		}
		os.Setenv("SOFTHSM2_CONF", conf)
		for _, l := range labels {
			out, err := exec.Command(util, "--init-token", "--free", "--label", l, "--so-pin", SOPIN, "--pin", UserPIN).CombinedOutput()
			if err != nil {
				softhsm.err = fmt.Errorf("softhsm2-util: %v: %s", err, out)
				return
			}
		}
	})
	if softhsm.err != nil {
		t.Fatal(softhsm.err)
	}
	return SoftHSMModule
}

var freshN atomic.Int64

// Fresh is base made unique within the test binary: the SoftHSMv2 tokens
// outlive a test (one directory per binary), so a test that wants an
// empty namespace there names it with Fresh, and passes when run again
// in the same binary (go test -count=N).
func Fresh(base string) string { return fmt.Sprintf("%s-%d", base, freshN.Add(1)) }

// CleanupSoftHSM removes the directory SoftHSM made; call it from
// TestMain after m.Run.
func CleanupSoftHSM() {
	if softhsm.dir != "" {
		os.RemoveAll(softhsm.dir)
	}
}
