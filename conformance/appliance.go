package conformance

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Remote mode: with Options.Appliance the module is judged as libgohsm.so in
// mode = remote. The isolated store gets an appliance of its own (`gohsm
// serve --config`, from the gohsm binary Options.Appliance names, on a free
// loopback port, with a development PKI and an audit log beside the store),
// and GOHSM_CONF points the module at it. The peer processes of the xproc
// checks inherit that environment, so each is another connection to the
// appliance: another application with its own engine on the same store,
// as each process is another application in local mode.

// applianceStart bounds the appliance's start (PKI, store, listen).
const applianceStart = 60 * time.Second

var listeningRE = regexp.MustCompile(`listening on (\S+) \(`)

// appliance is a running `gohsm serve` for one isolated store.
type appliance struct {
	cmd    *exec.Cmd
	dir    string
	exited chan struct{}
}

// startAppliance runs gohsm serve over the token store tokens, with its
// files in dir, and sets GOHSM_CONF (and unsets GOHSM_DIR) so that the
// module, loaded afterwards, reaches it in remote mode.
func startAppliance(gohsm, tokens, dir string, logf func(string, ...any)) (*appliance, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pki := filepath.Join(dir, "pki")
	if out, err := exec.Command(gohsm, "pki", "init", pki).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("appliance: %s pki init: %v\n%s", gohsm, err, out)
	}
	conf := filepath.Join(dir, "serve.conf")
	body := fmt.Sprintf("listen = 127.0.0.1:0\ndir = %s\naudit_log = %s\n"+
		"tls_cert = %s\ntls_key = %s\nclient_ca = %s\n"+
		"client.dev-client = *\nadmin.dev-client = true\nshutdown_timeout = 10s\n",
		tokens, filepath.Join(dir, "audit.log"),
		filepath.Join(pki, "server.pem"), filepath.Join(pki, "server.key"), filepath.Join(pki, "ca.pem"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	a := &appliance{cmd: exec.Command(gohsm, "serve", "--config", conf), dir: dir, exited: make(chan struct{})}
	a.cmd.Stdout = logFile
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := a.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("appliance: %w", err)
	}
	addr := make(chan string, 1)
	go func() {
		// The whole log goes to serve.log; the listen line tells the address.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		a.cmd.Wait()
		logFile.Close()
		close(a.exited)
	}()
	var address string
	select {
	case address = <-addr:
	case <-a.exited:
		return nil, fmt.Errorf("appliance: gohsm serve exited at start (%v):\n%s", a.cmd.ProcessState, readTail(logPath))
	case <-time.After(applianceStart):
		a.cmd.Process.Kill()
		<-a.exited
		return nil, fmt.Errorf("appliance: not listening after %v:\n%s", applianceStart, readTail(logPath))
	}
	remote := filepath.Join(dir, "remote.conf")
	body = fmt.Sprintf("mode = remote\naddress = %s\nca = %s\ncert = %s\nkey = %s\n", address,
		filepath.Join(pki, "ca.pem"), filepath.Join(pki, "client.pem"), filepath.Join(pki, "client.key"))
	err = os.WriteFile(remote, []byte(body), 0o600)
	if err == nil {
		err = os.Setenv("GOHSM_CONF", remote)
	}
	if err == nil {
		err = os.Unsetenv("GOHSM_DIR")
	}
	if err != nil {
		a.stop()
		return nil, err
	}
	logf("remote mode: gohsm serve on %s over %s (log %s)", address, tokens, logPath)
	return a, nil
}

// stop ends the appliance as an operator does (SIGTERM: calls in flight
// finish, the store closes) and fails if it does not exit cleanly: an
// appliance that crashed during the run shows here.
func (a *appliance) stop() error {
	select {
	case <-a.exited:
		return fmt.Errorf("appliance exited during the run (%v):\n%s", a.cmd.ProcessState, readTail(filepath.Join(a.dir, "serve.log")))
	default:
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		a.cmd.Process.Kill()
		<-a.exited
		return errors.New("appliance: still running 30 s after SIGTERM")
	}
	if !a.cmd.ProcessState.Success() {
		return fmt.Errorf("appliance: %v after SIGTERM:\n%s", a.cmd.ProcessState, readTail(filepath.Join(a.dir, "serve.log")))
	}
	return nil
}

// readTail is the end of a log file, for an error message.
func readTail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}
