package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/internal/testpki"
)

// remoteConf starts an appliance on loopback over a fresh store (one
// administrator identity that sees every token) and writes the module's
// configuration for it, as `gohsm serve --dev` writes D/remote.conf.
func remoteConf(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA("shim test CA")
	cfg := server.DefaultConfig()
	cfg.TLS = testpki.ServerTLS(ca.Issue("localhost", true, time.Time{}), ca)
	cfg.Authorize = func(c *x509.Certificate) (string, []string, bool, bool) {
		return c.Subject.CommonName, []string{"*"}, true, c.Subject.CommonName == "admin"
	}
	cfg.Open = server.StoreOpener(filepath.Join(dir, "store"), func(c *hsm.Config) { c.KDFIterations = 10 })
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	caFile, certFile, keyFile, err := testpki.WriteFiles(dir, ca, ca.Issue("admin", false, time.Time{}), "client")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "remote.conf")
	body := fmt.Sprintf("mode = remote\naddress = %s\nca = %s\ncert = %s\nkey = %s\n", l.Addr(), caFile, certFile, keyFile)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// The C ABI programs that drive the real engine pass through libgohsm.so in
// remote mode too: the shim does not know which backend it has.
func TestABIRemote(t *testing.T) {
	buildShared(t)
	for _, prog := range []string{shared.abiTest, shared.v32Test, shared.ifaceTest} {
		t.Run(filepath.Base(prog), func(t *testing.T) {
			args := []string{shared.real}
			if prog == shared.abiTest {
				args = append(args, "real")
			}
			home := t.TempDir()
			cmd := exec.Command(prog, args...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOHSM_CONF=" + remoteConf(t)}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "ok\n") {
				t.Fatalf("%s: %v\n%s", filepath.Base(prog), err, out)
			}
		})
	}
	// An appliance that is not there: C_Initialize fails within the bound
	// with CKR_DEVICE_ERROR (abi_test's "remote" mode checks the code).
	conf := remoteConf(t)
	b, _ := os.ReadFile(conf)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	lines := strings.Split(string(b), "\n")
	lines[1] = "address = " + dead
	os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"timeout = 1s\n"), 0o600)
	start := time.Now()
	runABI(t, shared.real, "remote", "GOHSM_CONF="+conf)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("C_Initialize against no appliance took %v", d)
	}
}
