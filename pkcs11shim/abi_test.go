package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The C-level tests build libgohsm.so twice — with the echoing fake backend
// (-tags shimfake) and with the real engine — once per test binary, and
// drive them with the C programs in testdata/.

var shared struct {
	once          sync.Once
	dir           string
	fake, real    string
	abiTest       string
	v32Test       string
	ifaceTest     string
	err           error
	errOut        string
	modCache      string
	referenceHdrs string
}

func buildShared(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not available")
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "gohsm-shim-test")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		shared.fake = filepath.Join(dir, "fake", "libgohsm.so")
		shared.real = filepath.Join(dir, "real", "libgohsm.so")
		shared.abiTest = filepath.Join(dir, "abi_test")
		shared.v32Test = filepath.Join(dir, "v32_test")
		shared.ifaceTest = filepath.Join(dir, "iface_test")
		steps := [][]string{
			{"go", "build", "-tags", "shimfake", "-buildmode=c-shared", "-o", shared.fake, "."},
			{"go", "build", "-buildmode=c-shared", "-o", shared.real, "."},
			{"gcc", "-Wall", "-Werror", "-Wno-unused-parameter", "-I.", "-o", shared.abiTest, "testdata/abi_test.c", "-ldl"},
			{"gcc", "-Wall", "-Werror", "-I.", "-o", shared.v32Test, "testdata/v32_test.c", "-ldl"},
			{"gcc", "-Wall", "-Werror", "-I.", "-o", shared.ifaceTest, "testdata/iface_test.c", "-ldl"},
		}
		for _, s := range steps {
			out, err := exec.Command(s[0], s[1:]...).CombinedOutput()
			if err != nil {
				shared.err, shared.errOut = err, strings.Join(s, " ")+": "+string(out)
				return
			}
		}
	})
	if shared.err != nil {
		t.Fatalf("build: %v\n%s", shared.err, shared.errOut)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// runABI runs testdata/abi_test.c in a clean environment: the module reads
// nothing of the developer's configuration.
func runABI(t *testing.T, module, mode string, env ...string) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(shared.abiTest, module, mode)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOHSM_DIR=" + filepath.Join(home, "store")}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok\n") {
		t.Fatalf("abi_test %s: %v\n%s", mode, err, out)
	}
}

func TestABIFake(t *testing.T) {
	buildShared(t)
	runABI(t, shared.fake, "fake")
}

func TestABIRemoteModeFails(t *testing.T) {
	buildShared(t)
	conf := filepath.Join(t.TempDir(), "gohsm.conf")
	if err := os.WriteFile(conf, []byte("mode = remote\naddress = 127.0.0.1:1\nca = ca.pem\ncert = c.pem\nkey = k.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runABI(t, shared.fake, "remote", "GOHSM_CONF="+conf)
}

func TestABIRealEngine(t *testing.T) {
	buildShared(t)
	runABI(t, shared.real, "real")
}

// TestABIV32Real drives the real engine through the 3.2 table: ML-KEM
// C_EncapsulateKey / C_DecapsulateKey and the 3.0 message API
// (testdata/v32_test.c).
func TestABIV32Real(t *testing.T) {
	buildShared(t)
	runReal(t, shared.v32Test)
}

// TestABIInterfacesReal drives the real engine through the 2.40, 3.0 and
// 3.2 tables where they differ (a NULL mechanism, mechanism flags), and
// checks that a NULL PIN never reaches the PIN retry counter
// (testdata/iface_test.c).
func TestABIInterfacesReal(t *testing.T) {
	buildShared(t)
	runReal(t, shared.ifaceTest)
}

// runReal runs a C test program against the real engine in a fresh token
// store. A cheap KDF keeps C_InitToken and C_Login fast.
func runReal(t *testing.T, prog string) {
	t.Helper()
	home := t.TempDir()
	conf := filepath.Join(home, "gohsm.conf")
	if err := os.WriteFile(conf, []byte("kdf_iterations = 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prog, shared.real)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOHSM_DIR=" + filepath.Join(home, "store"), "GOHSM_CONF=" + conf}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok\n") {
		t.Fatalf("%s: %v\n%s", filepath.Base(prog), err, out)
	}
}

// TestExports checks the .so exports every 2.40, 3.0 and 3.2 function by its
// spec name and keeps the NODELETE flag Go links c-shared libraries with,
// which C_Finalize followed by C_Initialize after a dlclose relies on.
func TestExports(t *testing.T) {
	buildShared(t)
	out, err := exec.Command("nm", "-D", "--defined-only", shared.real).Output()
	if err != nil {
		t.Skipf("nm: %v", err)
	}
	syms := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && strings.HasPrefix(f[2], "C_") {
			syms[f[2]] = true
		}
	}
	hdr, err := os.ReadFile("pkcs11.h")
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, l := range strings.Split(string(hdr), "\n") {
		l = strings.TrimSpace(l)
		if name, ok := strings.CutPrefix(l, "X(C_"); ok {
			name = "C_" + name[:strings.Index(name, ",")]
			want++
			if !syms[name] {
				t.Errorf("%s not exported", name)
			}
		}
	}
	if want != 104 || len(syms) != 104 {
		t.Errorf("header lists %d functions, library exports %d C_ symbols; want 104 (68 + 24 + 12)", want, len(syms))
	}
	dyn, err := exec.Command("readelf", "-d", shared.real).Output()
	if err != nil {
		t.Skipf("readelf: %v", err)
	}
	if !strings.Contains(string(dyn), "NODELETE") {
		t.Error("libgohsm.so lost the NODELETE flag")
	}
}

// TestLayout compiles testdata/layout_check.c, whose static assertions
// compare every struct shared with the OASIS 2.40 header (from the
// miekg/pkcs11 module, read-only in the module cache) with ours.
func TestLayout(t *testing.T) {
	buildShared(t)
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11").Output()
	if err != nil {
		t.Skipf("reference header module not available: %v", err)
	}
	ref := filepath.Join(strings.TrimSpace(string(out)), "pkcs11.h")
	if _, err := os.Stat(ref); err != nil {
		t.Skipf("reference header: %v", err)
	}
	dir := t.TempDir()
	gen := filepath.Join(dir, "layout_ref")
	run := func(name string, args ...string) []byte {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return out
	}
	run("gcc", "-Wall", `-DREF_PKCS11="`+ref+`"`, "-o", gen, "testdata/layout_ref.c")
	defs := run(gen)
	if n := strings.Count(string(defs), "#define"); n < 150 {
		t.Fatalf("only %d reference layout facts", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "ref_layout.h"), defs, 0o600); err != nil {
		t.Fatal(err)
	}
	run("gcc", "-Wall", "-I.", "-I"+dir, "-o", filepath.Join(dir, "layout_check"), "testdata/layout_check.c")
}
