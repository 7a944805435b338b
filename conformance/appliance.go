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

// appliance is the running `gohsm serve` process(es) for one isolated
// store: one appliance, or the members of a cluster.
type appliance struct {
	members []*member
}

// member is one `gohsm serve` process.
type member struct {
	cmd    *exec.Cmd
	dir    string
	exited chan struct{}
}

var raftRE = regexp.MustCompile(`cluster: member \S+ on (\S+) \(raft`)

// startAppliance runs gohsm serve over the token store tokens, with its
// files in dir, and sets GOHSM_CONF (and unsets GOHSM_DIR) so that the
// module, loaded afterwards, reaches it in remote mode. With members > 1
// it runs a cluster instead (docs/cluster.md): that many members on
// loopback, each over its own store in dir/mN, the first bootstrapping and
// the others joining it, raft over mutual TLS with a cluster CA of its own;
// the module's configuration lists every member, as a cluster's clients do.
func startAppliance(gohsm, tokens, dir string, members int, logf func(string, ...any)) (*appliance, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pki := filepath.Join(dir, "pki")
	if out, err := exec.Command(gohsm, "pki", "init", pki).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("appliance: %s pki init: %v\n%s", gohsm, err, out)
	}
	base := fmt.Sprintf("listen = 127.0.0.1:0\n"+
		"tls_cert = %s\ntls_key = %s\nclient_ca = %s\n"+
		"client.dev-client = *\nadmin.dev-client = true\nshutdown_timeout = 10s\n",
		filepath.Join(pki, "server.pem"), filepath.Join(pki, "server.key"), filepath.Join(pki, "ca.pem"))
	a := &appliance{}
	var addrs []string
	if members <= 1 {
		m, addr, _, err := startMember(gohsm, dir, base+fmt.Sprintf("dir = %s\naudit_log = %s\n", tokens, filepath.Join(dir, "audit.log")))
		if err != nil {
			return nil, err
		}
		a.members, addrs = append(a.members, m), append(addrs, addr)
	} else {
		cpki := filepath.Join(dir, "cluster-pki")
		if out, err := exec.Command(gohsm, "pki", "init", cpki).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("cluster: %s pki init: %v\n%s", gohsm, err, out)
		}
		join := ""
		for i := 1; i <= members; i++ {
			mdir := filepath.Join(dir, fmt.Sprintf("m%d", i))
			cn := fmt.Sprintf("conformance-m%d", i)
			if out, err := exec.Command(gohsm, "pki", "client", cpki, cn).CombinedOutput(); err != nil {
				a.stop()
				return nil, fmt.Errorf("cluster: %s pki client: %v\n%s", gohsm, err, out)
			}
			conf := base + fmt.Sprintf("dir = %s\naudit_log = %s\nraft = 127.0.0.1:0\nnode_id = m%d\n"+
				"cluster_ca = %s\nmember_cert = %s\nmember_key = %s\n",
				filepath.Join(mdir, "store"), filepath.Join(mdir, "audit.log"), i, filepath.Join(cpki, "ca.pem"),
				filepath.Join(cpki, cn+".pem"), filepath.Join(cpki, cn+".key"))
			if join != "" {
				conf += "raft_join = " + join + "\n"
			}
			m, addr, raddr, err := startMember(gohsm, mdir, conf)
			if err != nil {
				a.stop()
				return nil, err
			}
			a.members, addrs = append(a.members, m), append(addrs, addr)
			if join == "" {
				if join = raddr; join == "" {
					a.stop()
					return nil, fmt.Errorf("cluster: member 1 did not say its raft address:\n%s", readTail(filepath.Join(mdir, "serve.log")))
				}
			}
		}
	}
	remote := filepath.Join(dir, "remote.conf")
	body := fmt.Sprintf("mode = remote\naddress = %s\nca = %s\ncert = %s\nkey = %s\n", strings.Join(addrs, ","),
		filepath.Join(pki, "ca.pem"), filepath.Join(pki, "client.pem"), filepath.Join(pki, "client.key"))
	err := os.WriteFile(remote, []byte(body), 0o600)
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
	if members > 1 {
		logf("remote mode: a cluster of %d gohsm serve members on %s (logs %s/m*/serve.log)", members, strings.Join(addrs, ","), dir)
	} else {
		logf("remote mode: gohsm serve on %s over %s (log %s)", addrs[0], tokens, filepath.Join(dir, "serve.log"))
	}
	return a, nil
}

// startMember runs `gohsm serve --config` with the configuration conf,
// its files in dir, and returns once it listens: its appliance address and,
// for a cluster member, its raft address.
func startMember(gohsm, dir, conf string) (*member, string, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", "", err
	}
	confPath := filepath.Join(dir, "serve.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, "", "", err
	}
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", "", err
	}
	m := &member{cmd: exec.Command(gohsm, "serve", "--config", confPath), dir: dir, exited: make(chan struct{})}
	m.cmd.Stdout = logFile
	stderr, err := m.cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, "", "", err
	}
	if err := m.cmd.Start(); err != nil {
		logFile.Close()
		return nil, "", "", fmt.Errorf("appliance: %w", err)
	}
	addr := make(chan string, 1)
	var raddr string
	go func() {
		// The whole log goes to serve.log; the listen line tells the
		// address (a cluster member says its raft address before it).
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if r := raftRE.FindStringSubmatch(sc.Text()); r != nil && raddr == "" {
				raddr = r[1]
			}
			if x := listeningRE.FindStringSubmatch(sc.Text()); x != nil {
				select {
				case addr <- x[1]:
				default:
				}
			}
		}
		m.cmd.Wait()
		logFile.Close()
		close(m.exited)
	}()
	select {
	case address := <-addr:
		return m, address, raddr, nil
	case <-m.exited:
		return nil, "", "", fmt.Errorf("appliance: gohsm serve exited at start (%v):\n%s", m.cmd.ProcessState, readTail(logPath))
	case <-time.After(applianceStart):
		m.cmd.Process.Kill()
		<-m.exited
		return nil, "", "", fmt.Errorf("appliance: not listening after %v:\n%s", applianceStart, readTail(logPath))
	}
}

// stop stops every member (the later ones first: the first is a cluster's
// bootstrap member) and reports each one's failure.
func (a *appliance) stop() error {
	var errs []error
	for i := len(a.members) - 1; i >= 0; i-- {
		errs = append(errs, a.members[i].stop())
	}
	return errors.Join(errs...)
}

// stop ends the appliance as an operator does (SIGTERM: calls in flight
// finish, the store closes) and fails if it does not exit cleanly: an
// appliance that crashed during the run shows here.
func (m *member) stop() error {
	select {
	case <-m.exited:
		return fmt.Errorf("appliance exited during the run (%v):\n%s", m.cmd.ProcessState, readTail(filepath.Join(m.dir, "serve.log")))
	default:
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
		return errors.New("appliance: still running 30 s after SIGTERM")
	}
	if !m.cmd.ProcessState.Success() {
		return fmt.Errorf("appliance: %v after SIGTERM:\n%s", m.cmd.ProcessState, readTail(filepath.Join(m.dir, "serve.log")))
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
