package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/audit"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs serveMain in the test's process until the returned stop
// is called; stop returns serveMain's result.
func startServe(t *testing.T, args ...string) (a *appliance, stdout, stderr *syncBuffer, stop func() error) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *appliance, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveMain(ctx, args, serveIO{stdout: stdout, stderr: stderr, ready: func(a *appliance) { ready <- a }})
	}()
	select {
	case a = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve %v: %v\nstderr:\n%s", args, err, stderr)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("serve %v: not up after 60 s\nstderr:\n%s", args, stderr)
	}
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(60 * time.Second):
				result = errors.New("serve did not stop within 60 s")
			}
		})
		return result
	}
	t.Cleanup(func() { stop() })
	return a, stdout, stderr, stop
}

// tlsClient is a TLS 1.3 client of the appliance with the given client
// certificate (none if certFile is "").
func tlsDial(t *testing.T, addr, caFile, certFile, keyFile string) (*tls.Conn, error) {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// refused reports whether the appliance refused the TLS client: in TLS 1.3
// the client's handshake ends before the server has checked its
// certificate, so the refusal is the alert the first read gets. Not one
// byte of the protocol may come back.
func refused(t *testing.T, addr, caFile, certFile, keyFile string) error {
	t.Helper()
	c, err := tlsDial(t, addr, caFile, certFile, keyFile)
	if err != nil {
		return nil // refused during the handshake
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 {
		return fmt.Errorf("got %d bytes: %x", n, buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("no alert within 5 s: the connection stayed open")
	}
	if err == nil {
		return errors.New("read returned nothing and no error")
	}
	return nil
}

// accepted completes a TLS 1.3 handshake that the server accepts: the
// server speaks first in the protocol or waits for the client, so a
// rejection shows as an alert within a short read window.
func accepted(t *testing.T, addr, caFile, certFile, keyFile string) error {
	t.Helper()
	c, err := tlsDial(t, addr, caFile, certFile, keyFile)
	if err != nil {
		return err
	}
	defer c.Close()
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		return fmt.Errorf("TLS version %x", v)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return nil // data or silence: not an alert
	}
	return fmt.Errorf("after the handshake: %w", err)
}

func checkAuditLog(t *testing.T, path string, key []byte) []*audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []*audit.Record
	if _, err := audit.Scan(f, key, func(r *audit.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatalf("audit log %s does not verify: %v", path, err)
	}
	if len(recs) == 0 || recs[len(recs)-1].Call != audit.CallClose {
		t.Fatalf("audit log %s: last record is not %s", path, audit.CallClose)
	}
	return recs
}

// noOpenStores checks that this process (serve runs in the test's) holds
// no file of the token store open: every engine and store was closed.
func noOpenStores(t *testing.T, dir string, tokens bool) {
	t.Helper()
	// A file of the store this process still has open. (Not a WAL file
	// left behind: SQLite removes it only when the connection closing is
	// the last, and one closing while another still was leaves it, to be
	// replayed at the next open.)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(l, filepath.Join(dir, "tokens")+"/") {
			t.Errorf("store not closed: %s still open", l)
		}
	}
	dbs, _ := filepath.Glob(filepath.Join(dir, "tokens", "*.db"))
	if tokens && len(dbs) == 0 {
		t.Errorf("no token files in %s", dir)
	}
}

// Dev mode end to end in the test's process: the files, the printed lines,
// the TLS door (the dev client in, a cert-less client and another CA's
// client out), a clean stop.
func TestServeDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	module := filepath.Join(t.TempDir(), "libgohsm.so")
	a, stdout, stderr, stop := startServe(t, "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--module", module)
	addr := a.Addr().String()
	p := pkiFiles{filepath.Join(dir, "pki")}

	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir: %v %v", fi.Mode(), err)
	}
	rc, err := os.ReadFile(filepath.Join(dir, "remote.conf"))
	if err != nil {
		t.Fatal(err)
	}
	wantRC := fmt.Sprintf("mode = remote\naddress = %s\nca = %s/pki/ca.pem\ncert = %s/pki/client.pem\nkey = %s/pki/client.key\n", addr, dir, dir, dir)
	if string(rc) != wantRC {
		t.Errorf("remote.conf:\n%s\nwant:\n%s", rc, wantRC)
	}
	out := stdout.String()
	for _, want := range []string{
		"Store:       " + dir,
		`label "dev-token", user PIN 123456, SO PIN dev-so-pin`,
		"Appliance:   " + addr,
		"Module:      " + module + "  (not there: run make build)",
		// local mode, as gohsm run prints it
		"  export GOHSM_DIR=" + dir + "\n  M=" + module + "\n  pkcs11-tool --module $M --list-token-slots\n",
		"--token-label dev-token --login --pin 123456 --keypairgen --key-type EC:prime256v1 --label demo-ec --id 01",
		"export OPENSSL_CONF=" + filepath.Join(dir, "openssl-pkcs11.cnf"),
		// remote mode
		"  export GOHSM_CONF=" + dir + "/remote.conf\n  M=" + module + "\n  pkcs11-tool --module $M -L\n",
		"pkcs11-tool --module $M --token-label dev-token --login --pin 123456 --keypairgen --key-type EC:prime256v1 --label remote-ec --id 02",
		"pkcs11-tool --module $M --token-label dev-token --login --pin 123456 --sign -m ECDSA-SHA256 --label remote-ec -i /tmp/gohsm-msg -o /tmp/gohsm-remote.sig",
		"Ctrl-C stops the appliance.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printed lines lack %q:\n%s", want, out)
		}
	}
	if err := pkiCheck(p.dir, time.Now()); err != nil {
		t.Errorf("dev PKI: %v", err)
	}

	if err := accepted(t, addr, p.CACert(), p.ClientCert(), p.ClientKey()); err != nil {
		t.Errorf("the dev client certificate: %v\nstderr:\n%s", err, stderr)
	}
	if err := refused(t, addr, p.CACert(), "", ""); err != nil {
		t.Errorf("a client without a certificate: %v", err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if err := pkiInit(other, nil, "dev-client", false); err != nil {
		t.Fatal(err)
	}
	if err := refused(t, addr, p.CACert(), filepath.Join(other, "client.pem"), filepath.Join(other, "client.key")); err != nil {
		t.Errorf("a client certificate from another CA, with the dev CN: %v", err)
	}
	// The server certificate does not authenticate a client.
	if err := refused(t, addr, p.CACert(), p.ServerCert(), p.ServerKey()); err != nil {
		t.Errorf("the server certificate as a client certificate: %v", err)
	}
	remoteClientCheck(t, dir)

	if err := stop(); err != nil {
		t.Fatalf("stop: %v\nstderr:\n%s", err, stderr)
	}
	logs := stderr.String()
	for _, want := range []string{"listening on " + addr, "audit log " + filepath.Join(dir, "audit.log"), "head seq", "stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{"123456", "dev-so-pin", "PRIVATE KEY"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	recs := checkAuditLog(t, filepath.Join(dir, "audit.log"), nil)
	logins := 0
	for _, r := range recs {
		if r.Call == "C_Login" && r.Who == devClientName && r.Phase == "result" && r.RV == "CKR_OK" {
			logins++
		}
	}
	if logins != 1 {
		t.Errorf("audit log: %d successful C_Login records of %s, want the remote client's 1", logins, devClientName)
	}
	noOpenStores(t, dir, true)

	// A second start keeps the store, the token and the PKI.
	ca1, _ := os.ReadFile(p.CACert())
	_, stdout2, _, stop2 := startServe(t, "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--module", module)
	if !strings.Contains(stdout2.String(), `Token:       found, label "dev-token"`) {
		t.Errorf("second start:\n%s", stdout2)
	}
	if ca2, _ := os.ReadFile(p.CACert()); !bytes.Equal(ca1, ca2) {
		t.Error("second start remade the PKI")
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	checkAuditLog(t, filepath.Join(dir, "audit.log"), nil)
}

func TestServeDevRefusals(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:7443", ":7443", "[::]:7443", "10.1.2.3:7443", "example.com:7443", "7443"} {
		if err := checkLoopback(addr); err == nil {
			t.Errorf("dev mode would listen on %s", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:7443", "localhost:7443", "127.0.0.2:1"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	sio := serveIO{stdout: io.Discard, stderr: io.Discard}
	for _, args := range [][]string{
		{},
		{"--dev", "--config", "x"},
		{"--config", "x", "--dir", "d"},
		{"--config", "x", "--listen", "127.0.0.1:1"},
		{"--dev", "--listen", "0.0.0.0:0", "--dir", t.TempDir()},
		{"--dev", "stray"},
	} {
		if err := serveMain(context.Background(), args, sio); err == nil {
			t.Errorf("serve %v: no error", args)
		}
	}
}

// writeProdConfig makes a PKI and a configuration in a temp dir.
func writeProdConfig(t *testing.T, extra string) (confPath string, p pkiFiles) {
	t.Helper()
	base := t.TempDir()
	p = pkiFiles{filepath.Join(base, "pki")}
	if err := pkiInit(p.dir, nil, "app1", false); err != nil {
		t.Fatal(err)
	}
	fp, err := certFingerprintFile(p.ClientCert())
	if err != nil {
		t.Fatal(err)
	}
	confPath = filepath.Join(base, "serve.conf")
	text := fmt.Sprintf(`listen = 127.0.0.1:0
dir = store
tls_cert = pki/server.pem
tls_key = pki/server.key
client_ca = pki/ca.pem
kdf_iterations = 1000
shutdown_timeout = 5s
client.app1 = payments
pubkey.app1 = %s
%s`, fp, extra)
	if err := os.WriteFile(confPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return confPath, p
}

// A production configuration: checked at start, served, stopped.
func TestServeConfigFile(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	confPath, p := writeProdConfig(t, "audit_log = audit.log\naudit_key_file = audit.key\n")
	base := filepath.Dir(confPath)
	if err := os.WriteFile(filepath.Join(base, "audit.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	a, _, stderr, stop := startServe(t, "--config", confPath)
	if err := accepted(t, a.Addr().String(), p.CACert(), p.ClientCert(), p.ClientKey()); err != nil {
		t.Errorf("app1: %v", err)
	}
	// Another certificate of the same CA with the same CN, but not the pinned key.
	if _, _, err := pkiIssueClient(p.dir, "app1", false); err != nil {
		t.Fatal(err)
	}
	if err := refused(t, a.Addr().String(), p.CACert(), p.path("app1.pem"), p.path("app1.key")); err != nil {
		t.Errorf("app1's CN with an unpinned key: %v", err)
	}
	if _, _, err := pkiIssueClient(p.dir, "stranger", false); err != nil {
		t.Fatal(err)
	}
	if err := refused(t, a.Addr().String(), p.CACert(), p.path("stranger.pem"), p.path("stranger.key")); err != nil {
		t.Errorf("a CN the configuration does not name: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "hmac-sha256 chain") {
		t.Errorf("log:\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), `client app1 names token "payments", which the store does not have`) {
		t.Errorf("no note about the missing token:\n%s", stderr)
	}
	checkAuditLog(t, filepath.Join(base, "audit.log"), key)
	noOpenStores(t, filepath.Join(base, "store"), false)
}

// What stops a production start, with clear errors.
func TestServeConfigFileRefusals(t *testing.T) {
	sio := serveIO{stdout: io.Discard, stderr: io.Discard}
	run := func(confPath string) error {
		return serveMain(context.Background(), []string{"--config", confPath}, sio)
	}

	confPath, _ := writeProdConfig(t, "")
	if err := run(confPath); err == nil || !strings.Contains(err.Error(), "audit_log is required") {
		t.Errorf("no audit log: %v", err)
	}
	confPath, p := writeProdConfig(t, "audit_log = audit.log\n")
	os.Chmod(p.ServerKey(), 0o644)
	if err := run(confPath); err == nil || !strings.Contains(err.Error(), "accessible to every user") {
		t.Errorf("world-readable tls_key: %v", err)
	}
	os.Chmod(p.ServerKey(), 0o600)
	os.WriteFile(p.ServerKey(), mustRead(t, p.ClientKey()), 0o600)
	if err := run(confPath); err == nil || !strings.Contains(err.Error(), "tls_key") {
		t.Errorf("a key that is not the certificate's: %v", err)
	}
	confPath, p = writeProdConfig(t, "audit_log = audit.log\n")
	os.WriteFile(p.ServerCert(), mustRead(t, p.ClientCert()), 0o644)
	os.WriteFile(p.ServerKey(), mustRead(t, p.ClientKey()), 0o600)
	if err := run(confPath); err == nil || !strings.Contains(err.Error(), "not for TLS servers") {
		t.Errorf("a client certificate as tls_cert: %v", err)
	}
	confPath, _ = writeProdConfig(t, "audit_log = audit.log\naudit_key_file = short.key\n")
	os.WriteFile(filepath.Join(filepath.Dir(confPath), "short.key"), []byte("short"), 0o600)
	if err := run(confPath); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("short audit key: %v", err)
	}
	confPath, p = writeProdConfig(t, "audit_log = audit.log\n")
	os.WriteFile(p.CACert(), []byte("not a certificate"), 0o644)
	if err := run(confPath); err == nil || !strings.Contains(err.Error(), "client_ca") {
		t.Errorf("bad client_ca: %v", err)
	}
	// A broken audit chain: the appliance does not start on it.
	confPath, _ = writeProdConfig(t, "audit_log = audit.log\n")
	_, _, _, stop := startServe(t, "--config", confPath)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(filepath.Dir(confPath), "audit.log")
	b := mustRead(t, logPath)
	os.WriteFile(logPath, bytes.Replace(b, []byte(`"seq":2`), []byte(`"seq":3`), 1), 0o600)
	if err := run(confPath); err == nil || !strings.Contains(err.Error(), "audit") {
		t.Errorf("a broken audit log: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The real thing: gohsm serve --dev as its own process (this test binary
// running main), stopped by SIGTERM: it exits 0, the store is closed and
// the audit log verifies.
func TestServeDevSIGTERM(t *testing.T) {
	if os.Getenv("GOHSM_TEST_MAIN") == "1" {
		t.Skip("in the child")
	}
	dir := filepath.Join(t.TempDir(), "d")
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainHelper$")
	cmd.Env = append(os.Environ(), "GOHSM_TEST_MAIN=1", "GOHSM_TEST_ARGS="+strings.Join([]string{"serve", "--dev", "--dir", dir, "--listen", "127.0.0.1:0"}, "\x1f"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	up := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var all strings.Builder
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if sc.Text() == "Ctrl-C stops the appliance." {
				up <- all.String()
			}
		}
		close(up)
	}()
	var out string
	select {
	case out = <-up:
	case <-time.After(60 * time.Second):
		t.Fatalf("not up after 60 s:\n%s", stderr.String())
	}
	if !strings.Contains(out, "export GOHSM_CONF="+dir+"/remote.conf") {
		t.Fatalf("printed:\n%s", out)
	}
	rc, _ := os.ReadFile(filepath.Join(dir, "remote.conf"))
	addr := strings.TrimPrefix(strings.Split(string(rc), "\n")[1], "address = ")
	p := pkiFiles{filepath.Join(dir, "pki")}
	if err := accepted(t, addr, p.CACert(), p.ClientCert(), p.ClientKey()); err != nil {
		t.Errorf("dev client: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM\nstderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	checkAuditLog(t, filepath.Join(dir, "audit.log"), nil)
	noOpenStores(t, dir, true)
}

// TestMainHelper is the child of TestServeDevSIGTERM: it runs gohsm's main
// with GOHSM_TEST_ARGS.
func TestMainHelper(t *testing.T) {
	if os.Getenv("GOHSM_TEST_MAIN") != "1" {
		t.Skip("run by TestServeDevSIGTERM")
	}
	os.Args = append([]string{"gohsm"}, strings.Split(os.Getenv("GOHSM_TEST_ARGS"), "\x1f")...)
	main()
	os.Exit(0)
}

// fakeFace is a dev-mode face as the gateway's --http will be one.
type fakeFace struct {
	on            bool
	started       *devEnv
	slots         int
	stoppedWhenUp bool
}

func (f *fakeFace) Flags(fs *flag.FlagSet) { fs.BoolVar(&f.on, "fake", false, "a test face") }
func (f *fakeFace) Enabled() bool          { return f.on }
func (f *fakeFace) Usage(env *devEnv) string {
	return "Fake face: on the store " + env.Dir + "\n"
}
func (f *fakeFace) Start(env *devEnv) (func(context.Context) error, error) {
	f.started = env
	be, err := env.Open()
	if err != nil {
		return nil, err
	}
	defer be.(io.Closer).Close()
	if err := be.Initialize(); err != nil {
		return nil, err
	}
	defer be.Finalize()
	slots, err := be.GetSlotList(true)
	f.slots = len(slots)
	return func(context.Context) error {
		// Faces stop first: the appliance is still serving.
		c, err := net.Dial("tcp", env.Addr)
		if err == nil {
			c.Close()
		}
		f.stoppedWhenUp = err == nil
		return nil
	}, err
}

// A face added to devFaces gets its flag, its start with the dev
// environment, its lines in the printout, and its stop before the
// appliance's.
func TestServeDevFace(t *testing.T) {
	f := &fakeFace{}
	saved := devFaces
	devFaces = append(devFaces, func() devFace { return f })
	defer func() { devFaces = saved }()
	dir := t.TempDir()
	if err := serveMain(context.Background(), []string{"--config", "x", "--fake"}, serveIO{stdout: io.Discard, stderr: io.Discard}); err == nil || !strings.Contains(err.Error(), "--fake is a dev-mode flag") {
		t.Errorf("--fake outside dev mode: %v", err)
	}
	_, stdout, _, stop := startServe(t, "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--fake")
	if f.started == nil || f.started.Dir != dir || f.started.Token.Label != devLabel || f.slots != 2 {
		t.Fatalf("face started with %+v, %d slots", f.started, f.slots)
	}
	if !strings.Contains(stdout.String(), "\nFake face: on the store "+dir+"\n") {
		t.Errorf("printed:\n%s", stdout)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !f.stoppedWhenUp {
		t.Error("the face was stopped after the appliance")
	}
}
