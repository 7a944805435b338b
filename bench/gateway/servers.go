package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
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
	// behind is a server this one uses, stopped after it (the appliance
	// behind a gateway).
	behind *Server
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

// GohsmName is the target name of gohsm run with an audit fsync policy:
// "gohsm" for the default (always), else "gohsm-sync-<mode>".
func GohsmName(sync string) string {
	if sync == "" || sync == "always" {
		return "gohsm"
	}
	return "gohsm-sync-" + sync
}

// syncMode checks an --http-audit-sync policy ("" is always).
func syncMode(sync string) (string, error) {
	if sync == "" {
		sync = "always"
	}
	if gohsmSyncTitle[sync] == "" {
		return "", fmt.Errorf("gohsm audit sync %q: want always, interval or none", sync)
	}
	return sync, nil
}

// gohsmSyncTitle says what each --http-audit-sync policy promises.
var gohsmSyncTitle = map[string]string{
	"always":   "every response record fsynced before the answer, group commit: --http-audit-sync always, the default",
	"interval": "records written before the answer, fsynced every 100 ms: --http-audit-sync interval",
	"none":     "records written to the file before the answer, never fsynced by the gateway (the durability of Vault's file audit device): --http-audit-sync none",
}

// StartGohsm starts `gohsm serve --dev --dir D --http ADDR
// --http-audit-sync SYNC` on a fresh directory and reads the root token
// from D/token.
func StartGohsm(bin, sync string) (*Server, error) {
	sync, err := syncMode(sync)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gohsm-bench-gateway-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// --listen on any free port: several gohsm servers run side by side.
	cmd, log, err := start(bin, []string{"serve", "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--http", addr, "--http-audit-sync", sync}, nil)
	if err != nil {
		return nil, err
	}
	s := newServer(cmd, log, dir)
	tok, err := s.waitFile(filepath.Join(dir, "token"), "gohsm serve --dev --http")
	if err != nil {
		return nil, err
	}
	s.Target = &Target{Name: GohsmName(sync), URL: "http://" + addr, Token: strings.TrimSpace(string(tok)), Mount: "transit", PID: cmd.Process.Pid}
	if err := WaitReady(s.Target.URL, 30*time.Second); err != nil {
		return nil, fmt.Errorf("gohsm gateway: %v; output:\n%s", err, s.output())
	}
	s.Target.Title = "gohsm gateway (" + bin + " serve --dev: in-process engine token; audit log on, " + gohsmSyncTitle[sync] + ")"
	return s, nil
}

// Names and credentials of `gohsm serve --dev` that a gateway in front of
// a dev appliance uses (cmd/gohsm's dev mode: D/remote.conf is the client
// configuration it writes for the appliance's clients).
const (
	devRemoteConf = "remote.conf"
	devLabel      = "dev-token"
	devUserPIN    = "123456"
)

// GohsmRemoteName is the target name of the gateway in front of an
// appliance with an audit fsync policy.
func GohsmRemoteName(sync string) string {
	return strings.Replace(GohsmName(sync), "gohsm", "gohsm-remote", 1)
}

// StartGohsmRemote starts the gateway as a network-HSM deployment runs
// it, in front of an appliance: `gohsm serve --dev --dir D --listen ADDR
// --http off` (the appliance alone, on a fresh dev store), then `gohsm
// serve --config G` with the gateway's keys only (http_remote =
// D/remote.conf, the dev token and its user PIN, an audit log under sync),
// so that every key operation crosses mutual TLS to the appliance. The
// CPU of both processes counts as the server's.
func StartGohsmRemote(bin, sync string) (*Server, error) {
	sync, err := syncMode(sync)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gohsm-bench-appliance-")
	if err != nil {
		return nil, err
	}
	acmd, alog, err := start(bin, []string{"serve", "--dev", "--dir", dir, "--listen", "127.0.0.1:0", "--http", "off"}, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	app := newServer(acmd, alog, dir)
	remoteConf := filepath.Join(dir, devRemoteConf)
	if _, err := app.waitFile(remoteConf, "gohsm serve --dev --listen"); err != nil {
		return nil, err
	}
	gdir, err := os.MkdirTemp("", "gohsm-bench-gateway-remote-")
	if err != nil {
		app.Stop()
		return nil, err
	}
	addr, err := freeAddr()
	if err == nil {
		err = os.WriteFile(filepath.Join(gdir, "gw.pin"), []byte(devUserPIN+"\n"), 0o600)
	}
	conf := filepath.Join(gdir, "gateway.conf")
	if err == nil {
		err = os.WriteFile(conf, fmt.Appendf(nil, "http = %s\nhttp_remote = %s\nhttp_token = %s\nhttp_pin_file = gw.pin\n"+
			"http_audit_log = gw-audit.log\nhttp_audit_key_file = gw-audit.key\nhttp_audit_sync = %s\nhttp_root_token_file = gw-root\n",
			addr, remoteConf, devLabel, sync), 0o600)
	}
	if err != nil {
		os.RemoveAll(gdir)
		app.Stop()
		return nil, err
	}
	gcmd, glog, err := start(bin, []string{"serve", "--config", conf}, nil)
	if err != nil {
		os.RemoveAll(gdir)
		app.Stop()
		return nil, err
	}
	s := newServer(gcmd, glog, gdir)
	s.behind = app
	tok, err := s.waitFile(filepath.Join(gdir, "gw-root"), "gohsm gateway in front of an appliance")
	if err != nil {
		return nil, fmt.Errorf("%w\nappliance:\n%s", err, app.output())
	}
	s.Target = &Target{Name: GohsmRemoteName(sync), URL: "http://" + addr, Token: strings.TrimSpace(string(tok)), Mount: "transit",
		PID: gcmd.Process.Pid, AlsoPIDs: []int{acmd.Process.Pid}}
	if err := WaitReady(s.Target.URL, 30*time.Second); err != nil {
		return nil, fmt.Errorf("gohsm gateway in front of an appliance: %v; output:\n%s", err, s.output())
	}
	s.Target.Title = "gohsm gateway in front of a gohsm appliance (" + bin + " serve --config: every key in the appliance's token, reached over mutual TLS on loopback by the appliance's client, from a second process, `" +
		bin + " serve --dev --listen`; server CPU is both processes'; audit log on, " + gohsmSyncTitle[sync] + ")"
	return s, nil
}

// waitFile waits (up to 60 s) until path, which s writes, holds something,
// and returns it. s's exit, or the time running out, is an error with what
// s printed (what names s in it).
func (s *Server) waitFile(path, what string) ([]byte, error) {
	for deadline := time.Now().Add(60 * time.Second); ; {
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return b, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no %s after 60 s; output:\n%s", what, path, s.output())
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%s exited; output:\n%s", what, s.output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StartOpenBao starts `bao server -dev` (in-memory storage, root token
// chosen here); Setup enables the transit mount. With audit, a file audit
// device is enabled too (as a production server has one): target
// "openbao-audit", else "openbao" (the reference: -dev as is).
func StartOpenBao(bin string, audit bool) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	const root = "gohsm-bench-root"
	args := []string{"server", "-dev", "-dev-root-token-id=" + root, "-dev-listen-address=" + addr, "-log-level=error"}
	dir := ""
	if audit {
		// OpenBao 2 refuses to enable an audit device through the API
		// by default: it is declared in a configuration file instead.
		if dir, err = os.MkdirTemp("", "gohsm-bench-openbao-"); err != nil {
			return nil, err
		}
		conf := filepath.Join(dir, "audit.hcl")
		stanza := fmt.Sprintf("audit \"file\" \"file\" {\n  options {\n    file_path = %q\n  }\n}\n", filepath.Join(dir, "audit.log"))
		if err := os.WriteFile(conf, []byte(stanza), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = append(args, "-config="+conf)
	}
	cmd, log, err := start(bin, args, []string{"BAO_DEV_ROOT_TOKEN_ID=" + root})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := newServer(cmd, log, dir)
	name, what := "openbao", "no audit device"
	if audit {
		name, what = "openbao-audit", "a file audit device declared in its configuration, default options (records written, not fsynced)"
	}
	s.Target = &Target{Name: name, URL: "http://" + addr, Token: root, Mount: "transit", PID: cmd.Process.Pid}
	if err := WaitReady(s.Target.URL, 60*time.Second); err != nil {
		return nil, fmt.Errorf("bao server -dev: %v; output:\n%s", err, s.output())
	}
	if audit {
		if b, err := apiCall(s.Target.URL, root, "GET", "/v1/sys/audit", ""); err != nil || !bytes.Contains(b, []byte(`"file/"`)) {
			s.Stop()
			return nil, fmt.Errorf("bao: the declared file audit device is not enabled: %s %v", b, err)
		}
	}
	if v, err := exec.Command(bin, "version").Output(); err == nil {
		s.Target.Title = strings.TrimSpace(string(v)) + " (server -dev: in-memory storage, " + what + ")"
	} else {
		s.Target.Title = "OpenBao (server -dev, " + what + ")"
	}
	return s, nil
}

// apiCall makes one authenticated call, before the load generator's
// client exists, and returns the body; any status but 2xx is an error.
func apiCall(base, token, method, path, body string) ([]byte, error) {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return b, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b, nil
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s) and removes
// its directory; then the server behind it, likewise.
func (s *Server) Stop() {
	s.stop()
	if s.behind != nil {
		s.behind.Stop()
	}
}

func (s *Server) stop() {
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
