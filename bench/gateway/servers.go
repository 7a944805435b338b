package gateway

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Server is a server process the benchmark started.
type Server struct {
	Target *Target
	cmd    *exec.Cmd
	log    *bytes.Buffer // read only after exited is closed
	dir    string
	exited chan struct{}
}

func newServer(cmd *exec.Cmd, log *bytes.Buffer, dir string) *Server {
	s := &Server{cmd: cmd, log: log, dir: dir, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	return s
}

// output stops the server and returns what it printed.
func (s *Server) output() string {
	s.Stop()
	return s.log.String()
}

// freeAddr is a loopback address with a port nobody listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func start(name string, args []string, env []string) (*exec.Cmd, *bytes.Buffer, error) {
	cmd := exec.Command(name, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	return cmd, &log, nil
}

// StartGohsm starts `gohsm serve --dev --dir D --http ADDR` on a fresh
// directory and reads the root token from D/token.
func StartGohsm(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "gohsm-bench-gateway-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd, log, err := start(bin, []string{"serve", "--dev", "--dir", dir, "--http", addr}, nil)
	if err != nil {
		return nil, err
	}
	s := newServer(cmd, log, dir)
	var tok []byte
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if tok, err = os.ReadFile(filepath.Join(dir, "token")); err == nil && len(bytes.TrimSpace(tok)) > 0 {
			break
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("gohsm serve --dev --http exited; output:\n%s", s.output())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(bytes.TrimSpace(tok)) == 0 {
		return nil, fmt.Errorf("gohsm serve --dev --http: no %s/token after 60 s; output:\n%s", dir, s.output())
	}
	s.Target = &Target{Name: "gohsm", URL: "http://" + addr, Token: strings.TrimSpace(string(tok)), Mount: "transit", PID: cmd.Process.Pid}
	if err := WaitReady(s.Target.URL, 30*time.Second); err != nil {
		return nil, fmt.Errorf("gohsm gateway: %v; output:\n%s", err, s.output())
	}
	s.Target.Title = "gohsm gateway (" + bin + " serve --dev: in-process engine token; audit log on, every response record fsynced before the answer, group commit: --http-audit-sync always, the default)"
	return s, nil
}

// StartOpenBao starts `bao server -dev` (in-memory storage, root token
// chosen here); Setup enables the transit mount.
func StartOpenBao(bin string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	const root = "gohsm-bench-root"
	cmd, log, err := start(bin, []string{"server", "-dev", "-dev-root-token-id=" + root, "-dev-listen-address=" + addr, "-log-level=error"},
		[]string{"BAO_DEV_ROOT_TOKEN_ID=" + root})
	if err != nil {
		return nil, err
	}
	s := newServer(cmd, log, "")
	s.Target = &Target{Name: "openbao", URL: "http://" + addr, Token: root, Mount: "transit", PID: cmd.Process.Pid}
	if err := WaitReady(s.Target.URL, 60*time.Second); err != nil {
		return nil, fmt.Errorf("bao server -dev: %v; output:\n%s", err, s.output())
	}
	if v, err := exec.Command(bin, "version").Output(); err == nil {
		s.Target.Title = strings.TrimSpace(string(v)) + " (server -dev: in-memory storage, no audit device)"
	} else {
		s.Target.Title = "OpenBao (server -dev, no audit device)"
	}
	return s, nil
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s) and removes
// its directory.
func (s *Server) Stop() {
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
}
