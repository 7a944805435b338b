package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
)

// The appliance process is killed with SIGKILL under load from 8 threads of
// a C program that goes through libgohsm.so in remote mode (the C ABI, as
// any PKCS#11 application: testdata/kill9load.c), then started again on the
// same store and address. While it is down every thread's calls return
// within the module's timeout with CKR_DEVICE_ERROR; after the restart every
// thread signs again with the session handle it had, logged in, although
// the program called C_Login once, before the kill.
//
// The appliance is this test binary running gohsm's main (TestMainHelper):
// the real `gohsm serve --config`, in a process of its own. The module is
// build/libgohsm.so as `make build` leaves it (or GOHSM_TEST_MODULE); when
// there is none the test builds one.
func TestKill9UnderLoad(t *testing.T) {
	if os.Getenv("GOHSM_TEST_MAIN") == "1" {
		t.Skip("in the child")
	}
	const (
		threads = 8
		bound   = time.Second // the module's timeout (remote.conf)
		slack   = 500 * time.Millisecond
		outage  = 5 * bound / 2
	)
	prog := buildKill9Load(t)
	module := testModule(t)
	dir := t.TempDir()
	store, pki := filepath.Join(dir, "store"), pkiFiles{filepath.Join(dir, "pki")}
	if err := pkiInit(pki.dir, nil, devClientName, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ensureKnownToken(&conf.Config{Dir: store, Profile: ck.DefaultProfile}, devToken); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	serveConf := filepath.Join(dir, "serve.conf")
	writeTestFile(t, serveConf, fmt.Sprintf("listen = %s\ndir = %s\ntls_cert = %s\ntls_key = %s\nclient_ca = %s\n"+
		"audit_log = %s\nclient.%s = *\n", addr, store, pki.ServerCert(), pki.ServerKey(), pki.CACert(),
		filepath.Join(dir, "audit.log"), devClientName))
	remoteConf := filepath.Join(dir, "remote.conf")
	writeTestFile(t, remoteConf, fmt.Sprintf("mode = remote\naddress = %s\nca = %s\ncert = %s\nkey = %s\ntimeout = %s\n",
		addr, pki.CACert(), pki.ClientCert(), pki.ClientKey(), bound))

	first, _ := startServeProcess(t, serveConf)

	// The load: the C program, its events read as they come.
	cmd := exec.Command(prog, module, devLabel, devUserPIN, strconv.Itoa(threads))
	cmd.Env = append(withoutEnv("GOHSM_DIR", "GOHSM_CONF"), "GOHSM_CONF="+remoteConf)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
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
	lines := make(chan []string, 4096)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- strings.Fields(sc.Text())
		}
		close(lines)
	}()
	ev := &kill9Events{fails: map[int][]kill9Call{}, back: map[int][]kill9Call{}, sessions: map[int]string{}}
	// next waits for a line of the given kind, recording every line on the way.
	next := func(kind string, limit time.Duration) bool {
		timer := time.After(limit)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("kill9load ended early:\n%s\n%s", ev.log.String(), stderr.String())
				}
				if ev.add(t, l) == kind {
					return true
				}
			case <-timer:
				return false
			}
		}
	}
	if !next("ready", 30*time.Second) {
		t.Fatalf("kill9load not ready after 30 s:\n%s\n%s", ev.log.String(), stderr.String())
	}
	time.Sleep(500 * time.Millisecond) // load on a healthy appliance

	killed := monoNow()
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	time.Sleep(outage) // longer than the bound: every call in it must give up
	restarted := monoNow()
	second, listening := startServeProcess(t, serveConf)

	// Every thread signs again.
	deadline := time.Now().Add(15 * time.Second)
	for len(ev.recovered(listening)) < threads {
		if !next("back", time.Until(deadline)) {
			t.Fatalf("after 15 s, %d of %d threads signed again after the restart:\n%s", len(ev.recovered(listening)), threads, ev.log.String())
		}
	}
	time.Sleep(300 * time.Millisecond) // and go on signing
	stdin.Close()
	if !next("done", 30*time.Second) {
		t.Fatalf("kill9load did not finish:\n%s\n%s", ev.log.String(), stderr.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kill9load: %v\n%s", err, stderr.String())
	}

	// Judge. A thread's calls may fail from the kill until its first
	// success after the restart (the module reconnects with backoff, so
	// that may come a little after the appliance listens again), each
	// within the bound and with CKR_DEVICE_ERROR; no call fails before the
	// kill or after that success.
	rec := ev.recovered(listening)
	var worstOutage time.Duration
	for w := range threads {
		down := 0
		for _, c := range ev.fails[w] {
			if c.rv != uint64(ck.CKR_DEVICE_ERROR) {
				t.Errorf("thread %d: a call failed with 0x%x, want CKR_DEVICE_ERROR", w, c.rv)
			}
			switch {
			case c.end < killed:
				t.Errorf("thread %d: a call failed %v before the kill", w, time.Duration(killed-c.end))
			case c.start >= rec[w]:
				t.Errorf("thread %d: a call failed %v after the thread had signed again", w, time.Duration(c.start-rec[w]))
			default:
				down++
				worstOutage = max(worstOutage, c.dur())
			}
		}
		if down == 0 {
			t.Errorf("thread %d: no call failed while the appliance was down", w)
		}
	}
	for _, s := range ev.summaries {
		worstOK, worstFail := time.Duration(s[3]), time.Duration(s[4])
		if worstOK > bound+slack || worstFail > bound+slack {
			t.Errorf("thread %d: slowest success %v, slowest failure %v; the bound is %v", s[5], worstOK, worstFail, bound)
		}
		worstOutage = max(worstOutage, worstFail)
	}
	for w, f := range ev.finals {
		// f: handle, state, rv
		if f[0] != ev.sessions[w] {
			t.Errorf("thread %d: session handle %s at the end, %s at the start", w, f[0], ev.sessions[w])
		}
		if f[1] != strconv.Itoa(int(ck.CKS_RO_USER_FUNCTIONS)) || f[2] != "0x0" {
			t.Errorf("thread %d: after the restart its session is in state %s and signs with rv %s; want CKS_RO_USER_FUNCTIONS and CKR_OK", w, f[1], f[2])
		}
	}
	if len(ev.finals) != threads || len(ev.summaries) != threads {
		t.Errorf("%d final and %d summary lines, want %d each:\n%s", len(ev.finals), len(ev.summaries), threads, ev.log.String())
	}
	var firstBack, lastBack time.Duration
	var perThread []string
	for w := range threads {
		d := time.Duration(rec[w] - listening)
		perThread = append(perThread, d.Round(time.Millisecond).String())
		if w == 0 || d < firstBack {
			firstBack = d
		}
		lastBack = max(lastBack, d)
	}
	var calls, fails uint64
	for _, s := range ev.summaries {
		calls += s[0]
		fails += s[2]
	}
	t.Logf("appliance killed (SIGKILL) under load from %d threads through libgohsm.so (remote mode, timeout %v); down %v; restarted and listening %v after its exec",
		threads, bound, time.Duration(listening-killed).Round(time.Millisecond), time.Duration(listening-restarted).Round(time.Millisecond))
	t.Logf("slowest call around the outage: %v (bound %v); %d calls, %d failed, all CKR_DEVICE_ERROR", worstOutage.Round(time.Millisecond), bound, calls, fails)
	t.Logf("from listening again to each thread's first signature: %s (first %v, last %v); same session handles, C_Login once before the kill",
		strings.Join(perThread, " "), firstBack.Round(time.Millisecond), lastBack.Round(time.Millisecond))
	// The killed appliance's torn audit record is cut at the restart, and
	// the chain verifies to the second appliance's close record.
	if err := stopServeProcess(second); err != nil {
		t.Error(err)
	}
	recs := checkAuditLog(t, filepath.Join(dir, "audit.log"), nil)
	// The program's one C_Login before the kill, and the module's own on
	// the new connection after the restart: nothing else logged in.
	var logins []string
	for _, r := range recs {
		if r.Call == "C_Login" && r.Phase == "result" {
			logins = append(logins, r.RV)
		}
	}
	if len(logins) != 2 || logins[0] != "CKR_OK" || logins[1] != "CKR_OK" {
		t.Errorf("C_Login results in the audit log: %v; want the program's and the module's re-login after the restart", logins)
	}
	t.Logf("audit log: %d records, the chain verifies across the kill; C_Login twice (the program's, the module's after the restart)", len(recs))
}

// kill9Call is a call the C program reported (CLOCK_MONOTONIC ns).
type kill9Call struct {
	start, end, rv uint64
}

func (c kill9Call) dur() time.Duration { return time.Duration(c.end - c.start) }

type kill9Events struct {
	log       strings.Builder
	fails     map[int][]kill9Call
	back      map[int][]kill9Call
	sessions  map[int]string
	summaries [][6]uint64 // calls, ok, failed, worst ok, worst fail, thread
	finals    map[int][3]string
}

func (e *kill9Events) add(t *testing.T, l []string) string {
	if len(l) == 0 {
		return ""
	}
	if e.log.Len() < 64<<10 {
		e.log.WriteString(strings.Join(l, " ") + "\n")
	}
	u := func(i int) uint64 {
		if i >= len(l) {
			t.Fatalf("kill9load: short line %q", l)
		}
		v, err := strconv.ParseUint(l[i], 0, 64) // decimal, or 0x hex
		if err != nil {
			t.Fatalf("kill9load: line %q: %v", l, err)
		}
		return v
	}
	switch l[0] {
	case "fail":
		e.fails[int(u(1))] = append(e.fails[int(u(1))], kill9Call{u(2), u(3), u(4)})
	case "back":
		e.back[int(u(1))] = append(e.back[int(u(1))], kill9Call{start: u(2), end: u(3)})
	case "session":
		e.sessions[int(u(1))] = l[2]
	case "summary":
		e.summaries = append(e.summaries, [6]uint64{u(2), u(3), u(4), u(5), u(6), u(1)})
	case "final":
		if e.finals == nil {
			e.finals = map[int][3]string{}
		}
		e.finals[int(u(1))] = [3]string{l[2], l[3], l[4]}
	case "setup":
		t.Fatalf("kill9load: %s", strings.Join(l, " "))
	}
	return l[0]
}

// recovered is, per thread, the end of its first successful call that
// ended after t.
func (e *kill9Events) recovered(t uint64) map[int]uint64 {
	out := map[int]uint64{}
	for w, bs := range e.back {
		for _, b := range bs {
			if b.end >= t {
				out[w] = b.end
				break
			}
		}
	}
	return out
}

// monoNow is CLOCK_MONOTONIC in nanoseconds, the C program's clock.
func monoNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return uint64(ts.Nano())
}

// startServeProcess runs `gohsm serve --config conf` in a process of its own
// (this test binary running main) and returns once it listens, with the
// CLOCK_MONOTONIC time it said so. It is killed when the test ends.
func startServeProcess(t *testing.T, conf string) (*exec.Cmd, uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainHelper$")
	cmd.Env = append(os.Environ(), "GOHSM_TEST_MAIN=1", "GOHSM_TEST_ARGS="+strings.Join([]string{"serve", "--config", conf}, "\x1f"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			if err := stopServeProcess(cmd); err != nil {
				t.Error(err)
			}
		}
	})
	up := make(chan uint64, 1)
	var log syncBuffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), " listening on ") {
				up <- monoNow()
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case at := <-up:
		return cmd, at
	case <-time.After(30 * time.Second):
		t.Fatalf("gohsm serve --config %s: not listening after 30 s:\n%s", conf, log.String())
	}
	return nil, 0
}

// stopServeProcess stops an appliance as an operator does (SIGTERM), which
// must end it cleanly.
func stopServeProcess(cmd *exec.Cmd) error {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("gohsm serve after SIGTERM: %v", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("gohsm serve still running 30 s after SIGTERM")
	}
}

// buildKill9Load compiles testdata/kill9load.c.
func buildKill9Load(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not available")
	}
	const inc = "/usr/include/p11-kit-1"
	if _, err := os.Stat(filepath.Join(inc, "p11-kit", "pkcs11.h")); err != nil {
		t.Skip("no p11-kit PKCS#11 header (apt-get install libp11-kit-dev; make deps)")
	}
	bin := filepath.Join(t.TempDir(), "kill9load")
	out, err := exec.Command("gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-pthread", "-I"+inc,
		"-o", bin, filepath.Join("testdata", "kill9load.c"), "-ldl").CombinedOutput()
	if err != nil {
		t.Fatalf("gcc kill9load.c: %v\n%s", err, out)
	}
	return bin
}

// testModule is the libgohsm.so to drive: GOHSM_TEST_MODULE, else
// build/libgohsm.so (make test builds it first), else one built here.
func testModule(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GOHSM_TEST_MODULE"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", "build", "libgohsm.so"))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if testing.Short() {
		t.Skip("no build/libgohsm.so (make build), and -short")
	}
	p = filepath.Join(t.TempDir(), "libgohsm.so")
	out, err := exec.Command("go", "build", "-buildmode=c-shared", "-o", p, "../../pkcs11shim").CombinedOutput()
	if err != nil {
		t.Fatalf("building libgohsm.so: %v\n%s", err, out)
	}
	return p
}

// freeLoopbackAddr is a loopback address with a port nothing listens on now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeTestFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withoutEnv is the environment without the named variables.
func withoutEnv(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && k != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
