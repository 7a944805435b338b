package hsmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsmtest/fixture"
)

// Fixture is a module-backed token: Module is the absolute path of
// libgohsm.so, Env the environment that points it at the token (already
// set in the test unless NoSetenv), Slot, TokenLabel, UserPIN, SOPIN and
// URI what a PKCS#11 binding needs, and Keys the generated keys.
type Fixture = fixture.Fixture

// Module makes a fixture for libgohsm.so in t.TempDir(), sets its
// environment with t.Setenv (so the module finds the token when the test
// loads it, and so do child processes), and removes it when the test ends.
//
// The module reads GOHSM_CONF when it is initialised (C_Initialize): a
// module loaded into the test binary must be finalised (crypto11's
// Context.Close, miekg's Finalize) before the next test's fixture applies.
//
// The module is ModulePath, else $GOHSM_MODULE (the CI action and `gohsm
// fixture up` set it), else libgohsm.so built from this module's source once
// per test binary with `go build -buildmode=c-shared` (cgo; about ten
// seconds, into the user's cache directory).
func Module(t testing.TB, opts ...Option) *Fixture {
	t.Helper()
	o := collect(opts)
	lib := o.module
	if lib == "" {
		var err error
		if lib, err = ModuleLibrary(); err != nil {
			t.Fatalf("hsmtest: %v", err)
		}
	}
	lib, err := filepath.Abs(lib)
	if err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "gohsm-fixture")
	fo := fixture.Options{
		Dir: dir, Label: o.label, UserPIN: o.userPIN, SOPIN: o.soPIN,
		Keys: o.keys, Module: lib, KDFIterations: o.kdf,
	}
	if o.faults != nil {
		fo.Faults = filepath.Join(t.TempDir(), "faults.json")
		if err := o.faults.WriteFile(fo.Faults); err != nil {
			t.Fatalf("hsmtest: fault plan: %v", err)
		}
	}
	fx, err := fixture.Up(fo)
	if err != nil {
		t.Fatalf("hsmtest: fixture: %v", err)
	}
	t.Cleanup(func() {
		if err := fixture.Down(fx.Dir); err != nil {
			t.Errorf("hsmtest: fixture down: %v", err)
		}
	})
	if o.setenv {
		for k, v := range fx.Env {
			t.Setenv(k, v)
		}
	}
	return fx
}

// ModuleLibrary returns the path of libgohsm.so for module-backed tests:
// $GOHSM_MODULE if set, else one built from source (once per process).
func ModuleLibrary() (string, error) {
	if p := os.Getenv(fixture.EnvModule); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("GOHSM_MODULE: %w", err)
		}
		return p, nil
	}
	return buildModule()
}

var buildModule = sync.OnceValues(func() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "gohsm-hsmtest")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	// Build to a new name and rename: another test binary may have the
	// previous build loaded, and the rename leaves its mapping alone.
	tmp, err := os.CreateTemp(dir, "libgohsm-*.so.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", tmp.Name(), "github.com/gohsm/gohsm/pkcs11shim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build libgohsm.so (set GOHSM_MODULE to use a built one): %v\n%s", err, out)
	}
	os.Remove(strings.TrimSuffix(tmp.Name(), filepath.Ext(tmp.Name())) + ".h")
	lib := filepath.Join(dir, "libgohsm.so")
	if err := os.Rename(tmp.Name(), lib); err != nil {
		return "", err
	}
	return lib, nil
})
