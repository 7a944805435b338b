package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/cluster"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
)

// Dev mode, as `vault server -dev`: `gohsm serve --dev --dir D` makes
// everything a trial or a test needs, in D, and prints how to use it. The
// names below are a contract that outside tests and scripts rely on:
//
//	--dev, --dir D, --listen ADDR (loopback only; default 127.0.0.1:7443)
//	D                 the token store (kept if it exists; else made 0700)
//	D/pki/            ca.pem ca.key server.pem server.key client.pem client.key
//	D/audit.log       the audit log
//	D/remote.conf     mode = remote, address, ca, cert, key: GOHSM_CONF for libgohsm.so
//	token "dev-token" user PIN 123456, SO PIN dev-so-pin (made if the store has
//	                  neither it nor gohsm run's "gohsm-demo", whose PINs are printed then)
//	client "dev-client" sees every token and is admin
//
// More faces join dev mode as devFaces (the gateway's --http).
const (
	devListen     = "127.0.0.1:7443"
	devClientName = defaultClientName
	devLabel      = "dev-token"
	devSOPIN      = "dev-so-pin"
	devUserPIN    = "123456"
	devRemoteConf = "remote.conf"
	devAuditLog   = "audit.log"
	devPKIDir     = "pki"
	// A dev appliance has nothing worth waiting long for.
	devShutdownTimeout = 10 * time.Second
)

var devToken = knownToken{devLabel, devSOPIN, devUserPIN}

// A devFace is one more face `gohsm serve --dev` brings up beside the
// appliance, on the same store (the gateway's --http will be one). To add
// one, implement it and append its constructor to devFaces; serve's flag
// parsing, start-up, printed lines and shutdown then include it.
type devFace interface {
	// Flags registers the face's flags (valid with --dev only).
	Flags(fs *flag.FlagSet)
	// Enabled reports whether the flags ask for the face.
	Enabled() bool
	// Start brings the face up once the appliance is up; stop is called
	// at shutdown, before the appliance stops.
	Start(env *devEnv) (stop func(context.Context) error, err error)
	// Usage is the block of lines it adds to the printed instructions.
	Usage(env *devEnv) string
}

// devFaces are the constructors of the optional dev-mode faces.
var devFaces []func() devFace

// devEnv is what dev mode made, for the printed lines and for devFaces.
type devEnv struct {
	Dir        string // the store, absolute
	PKI        pkiFiles
	Token      knownToken
	TokenMade  bool
	Module     string // libgohsm.so, for the printed lines
	Addr       string // the appliance's address, host:port
	RemoteConf string
	AuditLog   string
	Logger     *log.Logger
	// Open returns a new engine over the store (as the appliance's), for a
	// face that serves the tokens itself; Finalize, then Close (io.Closer),
	// release it.
	Open func() (hsm.Backend, error)
	// Appliance is the running appliance (its audit log: Appliance.audit).
	Appliance *appliance
}

// devFlags are serve's dev-mode flags.
type devFlags struct {
	on     bool
	dir    string
	listen string
	module string
	// metrics: --metrics ADDR, the Prometheus endpoint (loopback)
	metrics string
	// cluster: --raft, --join, --pki, --node-id (cmd/gohsm/cluster.go)
	cluster devCluster
	faces   []devFace
	names   []string // the flags only dev mode takes
}

func (d *devFlags) register(fs *flag.FlagSet) {
	before := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { before[f.Name] = true })
	fs.BoolVar(&d.on, "dev", false, "dev mode: store, PKI, demo token, audit log and remote.conf in --dir, appliance on loopback")
	fs.StringVar(&d.dir, "dir", "", "dev mode: the directory for everything (default: the module's default store, as gohsm run)")
	fs.StringVar(&d.listen, "listen", devListen, "dev mode: the appliance's address, loopback only (port 0: any free port)")
	fs.StringVar(&d.module, "module", "", "dev mode: libgohsm.so's path for the printed lines (default: next to the gohsm binary)")
	fs.StringVar(&d.metrics, "metrics", "", "dev mode: serve Prometheus metrics on http://ADDR/metrics, loopback only (cluster members: gohsm_cluster_*)")
	d.cluster.register(fs)
	for _, mk := range devFaces {
		f := mk()
		f.Flags(fs)
		d.faces = append(d.faces, f)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !before[f.Name] && f.Name != "dev" {
			d.names = append(d.names, f.Name)
		}
	})
}

// setOutsideDev returns a dev-only flag among those set, or "".
func (d *devFlags) setOutsideDev(set map[string]bool) string {
	for _, n := range d.names {
		if set[n] {
			return n
		}
	}
	return ""
}

// checkLoopback refuses an address other hosts could reach.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT (%v)", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("--listen %q: bad port", addr)
	}
	if host == "" {
		return fmt.Errorf("--listen %q: every interface; dev mode listens on loopback only (127.0.0.1:PORT)", addr)
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		if host != "localhost" {
			return fmt.Errorf("--listen %q: dev mode listens on loopback only: 127.0.0.1, ::1 or localhost", addr)
		}
		ips = ips[:0]
		addrs, err := net.DefaultResolver.LookupIPAddr(context.Background(), host)
		if err != nil {
			return fmt.Errorf("--listen %q: %w", addr, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("--listen %q: %s is not a loopback address; dev mode (fixed PINs, a throw-away PKI) never listens beyond this machine: use --config for that", addr, ip)
		}
	}
	return nil
}

// runDev sets dev mode up, runs the appliance and the enabled faces, and
// prints the instructions.
func runDev(ctx context.Context, d *devFlags, sio serveIO, logger *log.Logger) error {
	if err := checkLoopback(d.listen); err != nil {
		return err
	}
	if d.metrics != "" {
		if err := checkLoopback(d.metrics); err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
	}
	if d.dir == "" {
		mc, err := conf.Load(os.Getenv)
		if err != nil {
			return fmt.Errorf("--dir not given, and the default store: %w", err)
		}
		d.dir = mc.Dir
	}
	dir, err := filepath.Abs(d.dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		logger.Printf("dev: created %s", dir)
	} else if err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("--dir %s is not a directory", dir)
	}
	env := &devEnv{
		Dir:        dir,
		PKI:        pkiFiles{filepath.Join(dir, devPKIDir)},
		RemoteConf: filepath.Join(dir, devRemoteConf),
		AuditLog:   filepath.Join(dir, devAuditLog),
		Module:     d.module,
		Logger:     logger,
	}
	if env.Module == "" {
		exe, _ := os.Executable()
		env.Module = filepath.Join(filepath.Dir(exe), "libgohsm.so")
	}
	if env.Module, err = filepath.Abs(env.Module); err != nil {
		return err
	}
	if d.cluster.pki != "" {
		if env.PKI.dir, err = filepath.Abs(d.cluster.pki); err != nil {
			return err
		}
	}
	if err := devPKI(env.PKI.dir, logger); err != nil {
		return err
	}
	var member *devMember
	if d.cluster.on() {
		// A cluster member: the tokens are the replicated store's.
		if member, env.Token, env.TokenMade, err = startDevMember(ctx, &d.cluster, dir, env.PKI.dir, logger); err != nil {
			if ctx.Err() != nil {
				logger.Printf("stopped before the member served: %v", err)
				return nil
			}
			return err
		}
		defer member.close()
	} else if d.cluster.join != "" {
		return errors.New("--join needs --raft")
	} else if env.Token, env.TokenMade, err = ensureKnownToken(&conf.Config{Dir: dir, Profile: ck.DefaultProfile}, devToken, demoToken); err != nil {
		return fmt.Errorf("dev token: %w", err)
	}
	cfg := devServeConfig(env, d.listen)
	if member != nil {
		cfg.storage, cfg.member = member.storage, member.node
	}
	env.Open = func() (hsm.Backend, error) { return openEngine(cfg) }
	a, err := startAppliance(cfg, logger)
	if err != nil {
		return err
	}
	env.Appliance = a
	env.Addr = a.Addr().String()
	var node *cluster.Node
	if member != nil {
		node = member.node
	}
	if err := a.startMetrics(d.metrics, node); err != nil {
		return errors.Join(err, a.shutdown())
	}
	if err := writeFileAtomic(env.RemoteConf, []byte(remoteConf(env)), 0o600); err != nil {
		a.shutdown()
		return fmt.Errorf("remote.conf: %w", err)
	}
	var stops []func(context.Context) error
	stopFaces := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), devShutdownTimeout)
		defer cancel()
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i](ctx))
		}
		return errors.Join(errs...)
	}
	for _, f := range d.faces {
		if !f.Enabled() {
			continue
		}
		stop, err := f.Start(env)
		if err != nil {
			return errors.Join(err, stopFaces(), a.shutdown())
		}
		stops = append(stops, stop)
	}
	sslConf, err := writeOpenSSLConf(dir, env.Module)
	if err != nil {
		return errors.Join(err, stopFaces(), a.shutdown())
	}
	printDevUsage(sio.stdout, env, sslConf, d.faces)
	if sio.ready != nil {
		sio.ready(a)
	}
	return a.run(ctx, stopFaces)
}

// devPKI makes the dev PKI in dir unless a complete one is there whose
// certificates still verify (a dev PKI older than a year is remade).
func devPKI(dir string, logger *log.Logger) error {
	if pkiComplete(dir) {
		err := pkiCheck(dir, time.Now().Add(time.Hour))
		if err == nil {
			return nil
		}
		logger.Printf("dev: remaking the PKI in %s: %v", dir, err)
	} else {
		logger.Printf("dev: making a development PKI in %s", dir)
	}
	return pkiInit(dir, nil, devClientName, true)
}

func devServeConfig(env *devEnv, listen string) *serveConfig {
	cfg := newServeConfig()
	cfg.Dev = true
	cfg.Listen = listen
	cfg.Dir = env.Dir
	cfg.TLSCert, cfg.TLSKey, cfg.ClientCA = env.PKI.ServerCert(), env.PKI.ServerKey(), env.PKI.CACert()
	cfg.AuditLog = env.AuditLog
	cfg.ShutdownTimeout = devShutdownTimeout
	e := cfg.client(devClientName, 0)
	e.All, e.Admin = true, true
	return cfg
}

// remoteConf is D/remote.conf: exactly the module's remote-mode keys.
func remoteConf(env *devEnv) string {
	return fmt.Sprintf("mode = remote\naddress = %s\nca = %s\ncert = %s\nkey = %s\n",
		env.Addr, env.PKI.CACert(), env.PKI.ClientCert(), env.PKI.ClientKey())
}

func printDevUsage(w io.Writer, env *devEnv, sslConf string, faces []devFace) {
	state := "found"
	if env.TokenMade {
		state = "created"
	}
	module := env.Module
	if _, err := os.Stat(module); err != nil {
		module += "  (not there: run make build)"
	}
	tok := env.Token
	fmt.Fprintf(w, `gohsm %s — the network HSM appliance in dev mode
(for trials and tests: loopback only, fixed PINs, a throw-away PKI; not for production)

Store:       %s  (kept between runs)
Token:       %s, label %q, user PIN %s, SO PIN %s
Appliance:   %s  (TLS 1.3, client certificates from %s)
Client:      %s, %s  (CN %s: every token, admin)
Audit log:   %s  (gohsm audit verify %s)
Module:      %s

Local mode: the module opens the store itself. Paste into a second terminal:

`, version, env.Dir, state, tok.Label, tok.UserPIN, tok.SOPIN,
		env.Addr, env.PKI.CACert(),
		env.PKI.ClientCert(), env.PKI.ClientKey(), devClientName,
		env.AuditLog, env.AuditLog,
		module)
	fmt.Fprint(w, localUsage(env.Dir, env.Module, sslConf, tok))
	fmt.Fprintf(w, `
Remote mode: the module talks to this appliance (%s):

  export GOHSM_CONF=%s
  M=%s
  pkcs11-tool --module $M -L
  pkcs11-tool --module $M --token-label %s --login --pin %s --keypairgen --key-type EC:prime256v1 --label remote-ec --id 02
  echo hello > /tmp/gohsm-msg
  pkcs11-tool --module $M --token-label %s --login --pin %s --sign -m ECDSA-SHA256 --label remote-ec -i /tmp/gohsm-msg -o /tmp/gohsm-remote.sig
  pkcs11-tool --module $M --token-label %s --verify -m ECDSA-SHA256 --label remote-ec -i /tmp/gohsm-msg --signature-file /tmp/gohsm-remote.sig
  unset GOHSM_CONF    # back to local mode
`, env.Addr, env.RemoteConf, env.Module,
		tok.Label, tok.UserPIN, tok.Label, tok.UserPIN, tok.Label)
	for _, f := range faces {
		if f.Enabled() {
			fmt.Fprintf(w, "\n%s", strings.TrimRight(f.Usage(env), "\n")+"\n")
		}
	}
	fmt.Fprint(w, "\nCtrl-C stops the appliance.\n")
}
