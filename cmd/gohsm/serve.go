package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/audit"
	"github.com/gohsm/gohsm/firmware-sim/cluster"
	"github.com/gohsm/gohsm/firmware-sim/faults"
	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// gohsm serve: the network HSM appliance (docs/appliance.md).
//
//	gohsm serve --config FILE
//	gohsm serve --dev [--dir D] [--listen ADDR] [--module PATH]
//
// SIGINT or SIGTERM stops it: in-flight calls finish (up to
// shutdown_timeout), the engines and the store close, the audit log gets
// its close record, and the process exits 0.

func serveCmd(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal the default action is back: a second Ctrl-C
	// ends the process at once (the store is crash-safe; the audit log then
	// lacks its close record).
	go func() { <-ctx.Done(); stop() }()
	return serveMain(ctx, args, serveIO{stdout: os.Stdout, stderr: os.Stderr})
}

// serveIO is where serve writes; tests also learn when it is up.
type serveIO struct {
	stdout, stderr io.Writer
	// ready, if set, is called once the appliance accepts connections.
	ready func(a *appliance)
}

type serveFlags struct {
	config string
	dev    devFlags
}

func serveUsage(fs *flag.FlagSet) func() {
	return func() {
		w := fs.Output()
		fmt.Fprint(w, `usage:
  gohsm serve --config FILE                       the appliance, configured by FILE (docs/appliance.md)
  gohsm serve --dev [--dir D] [--listen ADDR]     everything for a trial in one step, on loopback

flags:
`)
		fs.PrintDefaults()
	}
}

func serveMain(ctx context.Context, args []string, sio serveIO) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(sio.stderr)
	var f serveFlags
	fs.StringVar(&f.config, "config", "", "the appliance's configuration file")
	fs.Var(&unsealShares, "unseal-shares", "share files to present at start (FILE,FILE,...: tests and scripted trials; docs/firmware.md)")
	f.dev.register(fs)
	fs.Usage = serveUsage(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q (gohsm serve -h)", pos[0])
	}
	logger := log.New(sio.stderr, "gohsm serve: ", log.LstdFlags)
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	if !f.dev.on {
		if f.config == "" {
			return errors.New("want --config FILE, or --dev for a trial (gohsm serve -h)")
		}
		if extra := f.dev.setOutsideDev(set); extra != "" {
			return fmt.Errorf("--%s is a dev-mode flag (with --dev); in production it is in the config file", extra)
		}
		cfg, err := loadServeConfig(f.config)
		if err != nil {
			return err
		}
		if cfg.Listen == "" { // http and no listen: the gateway alone (gateway_remote.go)
			return serveGatewayAlone(ctx, cfg, logger, sio)
		}
		var node *cluster.Node
		if cfg.Cluster.Raft != "" {
			// A cluster member (docs/cluster.md): the engines use the
			// replicated store.
			m, err := startConfigMember(ctx, cfg, logger)
			if err != nil {
				if ctx.Err() != nil {
					logger.Printf("stopped before the member served: %v", err)
					return nil
				}
				return err
			}
			defer m.close()
			cfg.storage, cfg.member = m.storage, m.node
			node = m.node
		}
		a, err := startAppliance(cfg, logger)
		if err != nil {
			return err
		}
		if err := a.startMetrics(cfg.Metrics, node); err != nil {
			return errors.Join(err, a.shutdown())
		}
		stopGateway, err := startConfiguredGateway(cfg, logger) // the http* keys: serve_gateway_conf.go
		if err != nil {
			return errors.Join(err, a.shutdown())
		}
		if sio.ready != nil {
			sio.ready(a)
		}
		return a.run(ctx, stopGateway)
	}
	if f.config != "" {
		return errors.New("--dev and --config exclude each other: dev mode makes its own configuration")
	}
	return runDev(ctx, &f.dev, sio, logger)
}

// appliance is a running gohsm serve.
type appliance struct {
	cfg    *serveConfig
	logger *log.Logger
	audit  *audit.Log // nil in dev mode only if none was asked for (never today)
	srv    *server.Server
	ln     net.Listener
	served chan error
	// faults is the fault plan every connection runs through (nil: none);
	// stopFaults ends its file watch and SIGHUP handler.
	faults     *faults.Injector
	stopFaults func()
	// device is the firmware (cmd/gohsm/device.go): self-tests,
	// lifecycle, admin socket.
	device *applianceDevice
	// metrics is the Prometheus endpoint (cluster_metrics.go), nil if
	// none was asked for.
	metrics *metricsServer
}

// startAppliance checks everything the configuration names, opens the audit
// log, and starts serving on cfg.Listen.
func startAppliance(cfg *serveConfig, logger *log.Logger) (_ *appliance, err error) {
	tlsConf, err := serverTLS(cfg, logger, time.Now())
	if err != nil {
		return nil, err
	}
	labels, err := storeLabels(cfg)
	if err != nil {
		return nil, err
	}
	logger.Printf("store %s: %d token(s)%s", cfg.Dir, len(labels), quotedList(labels))
	for _, cn := range cfg.clientOrder {
		e := cfg.Clients[cn]
		for _, p := range e.Partitions {
			if !slices.Contains(labels, p) {
				logger.Printf("note: client %s names token %q, which the store does not have (yet)", configName(cn), p)
			}
		}
	}
	a := &appliance{cfg: cfg, logger: logger, served: make(chan error, 1)}
	defer func() {
		if err != nil && a.audit != nil {
			a.audit.Close()
		}
		if err != nil && a.stopFaults != nil {
			a.stopFaults()
		}
		if err != nil {
			a.stopDevice()
		}
	}()
	if cfg.AuditLog != "" {
		opts := audit.Options{RecoverTornTail: true}
		if cfg.AuditKeyFile != "" {
			key, err := readSecretFile(cfg.AuditKeyFile, "audit_key_file")
			if err != nil {
				return nil, err
			}
			opts.Key = key
			defer clear(key)
		}
		if a.audit, err = audit.Open(cfg.AuditLog, opts); err != nil {
			return nil, fmt.Errorf("audit_log: %w", err)
		}
		seq, head := a.audit.Head()
		mac := "sha256"
		if opts.Key != nil {
			mac = "hmac-sha256"
		}
		logger.Printf("audit log %s (%s chain): head seq %d hash %s", cfg.AuditLog, mac, seq, head)
	} else {
		logger.Printf("WARNING: no audit log (dev mode only)")
	}

	sc := cfg.serverConfig()
	sc.TLS = tlsConf
	if cfg.member != nil {
		// A member without a leader says so (WELCOME) and answers its
		// calls with TRY_ELSEWHERE: clients move to another member.
		sc.Unavailable = cluster.Unavailable
		sc.Serving = cfg.member.Serving
	}
	sc.Authorize = cfg.authorize
	sc.Open = engineOpener(cfg)
	// The device (firmware-sim/device, docs/firmware.md): power-on
	// self-tests, and for a store with a device its lifecycle (sealed until
	// M shares are presented on D/admin.sock; SIGUSR1 zeroises). Every
	// connection's engine is behind the device's guard: CKR_DEVICE_ERROR
	// outside the operational state.
	if err := a.startDevice(&sc); err != nil {
		return nil, err
	}
	if a.audit != nil {
		sc.WrapBackend = func(identity string, be hsm.Backend) hsm.Backend { return audit.Wrap(be, a.audit, identity) }
	}
	if err := a.startFaults(&sc); err != nil {
		return nil, err
	}
	sc.Logf = func(format string, args ...any) { logger.Printf(format, args...) }
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if a.srv, err = server.New(sc); err != nil {
		return nil, err
	}
	if a.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	go func() { a.served <- a.srv.Serve(a.ln) }()
	logger.Printf("listening on %s (TLS 1.3, client certificates from %s; client identities: %d)", a.ln.Addr(), cfg.ClientCA, len(cfg.Clients))
	return a, nil
}

// devFaultsFile is dev mode's fault plan, D/faults.json: `gohsm faults set
// --dir D PLAN` writes it.
const devFaultsFile = "faults.json"

// startFaults applies the fault plan (docs/firmware.md, "Faults and
// latency"): `faults = FILE` (read now, every second and on SIGHUP), or
// D/faults.json in dev mode (now and every second). A plan that does not
// parse at start stops the start; later it is logged and the running plan
// stays. Faults wrap each
// connection's engine outside the audit decorator: the audit log records
// what reached the engine (an injected error never does; the session
// closes a token removal causes do), and the plan's latency is not
// counted as the engine's.
func (a *appliance) startFaults(sc *server.Config) error {
	path := a.cfg.Faults
	if path == "" && a.cfg.Dev {
		path = filepath.Join(a.cfg.Dir, devFaultsFile)
	}
	if path == "" {
		return nil
	}
	a.faults = faults.New(nil)
	a.faults.Logf = a.logger.Printf
	w, err := faults.Watch(path, a.faults, time.Second, a.logger.Printf)
	if err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	// SIGHUP reloads a configured plan at once. Dev mode, which runs in a
	// terminal, keeps SIGHUP's default (a closed terminal ends it) and
	// relies on the once-a-second read.
	hup := make(chan os.Signal, 1)
	if a.cfg.Faults != "" {
		signal.Notify(hup, syscall.SIGHUP)
	}
	go func() {
		for range hup {
			if err := w.Reload(); err != nil {
				a.logger.Printf("SIGHUP: %v (the running plan stays)", err)
			}
		}
	}()
	a.stopFaults = func() {
		signal.Stop(hup)
		close(hup)
		w.Stop()
		a.stopFaults = nil
	}
	inner := sc.WrapBackend
	sc.WrapBackend = func(identity string, be hsm.Backend) hsm.Backend {
		if inner != nil {
			be = inner(identity, be)
		}
		return faults.Wrap(be, a.faults)
	}
	return nil
}

// serverConfig is the server's defaults with the configured limits.
func (c *serveConfig) serverConfig() server.Config {
	sc := server.DefaultConfig()
	if c.MaxFrame > 0 {
		sc.MaxFrame = c.MaxFrame
	}
	if c.MaxCallsPerClient > 0 {
		sc.MaxCallsPerConn = c.MaxCallsPerClient
	}
	if c.MaxCalls > 0 {
		sc.MaxCallsTotal = c.MaxCalls
	}
	// The byte budgets must hold a frame of the largest size: an unset one
	// grows with max_frame (a set one that is too small is an error).
	sc.MaxBytesPerConn = max(sc.MaxBytesPerConn, sc.MaxFrame)
	if c.MaxBytesPerClient > 0 {
		sc.MaxBytesPerConn = c.MaxBytesPerClient
	}
	sc.MaxBytesTotal = max(sc.MaxBytesTotal, sc.MaxBytesPerConn)
	if c.MaxBytes > 0 {
		sc.MaxBytesTotal = c.MaxBytes
	}
	if c.CallTimeout > 0 {
		sc.CallTimeout = c.CallTimeout
	}
	if c.HandshakeTimeout > 0 {
		sc.HandshakeTimeout = c.HandshakeTimeout
	}
	if c.IdleTimeout > 0 {
		sc.IdleTimeout = c.IdleTimeout
	}
	if c.FrameTimeout > 0 {
		sc.FrameTimeout = c.FrameTimeout
	}
	if c.MaxConns > 0 {
		sc.MaxConns = c.MaxConns
	}
	if c.Name != "" {
		sc.Name = c.Name
	}
	return sc
}

// Addr is the address the appliance listens on.
func (a *appliance) Addr() net.Addr { return a.ln.Addr() }

// run serves until ctx ends (a signal) or the server fails, then shuts
// down; before, if not nil, stops what depends on the appliance first.
func (a *appliance) run(ctx context.Context, before func() error) error {
	var serveErr error
	select {
	case <-ctx.Done():
		a.logger.Printf("stopping: finishing in-flight calls (up to %s; a second Ctrl-C forces)", a.shutdownTimeout())
	case serveErr = <-a.served:
		a.logger.Printf("server stopped: %v", serveErr)
	}
	var berr error
	if before != nil {
		berr = before()
	}
	err := errors.Join(berr, a.shutdown())
	if serveErr != nil && !errors.Is(serveErr, net.ErrClosed) && !errors.Is(serveErr, server.ErrServerClosed) {
		return errors.Join(fmt.Errorf("serve: %w", serveErr), err)
	}
	return err
}

func (a *appliance) shutdownTimeout() time.Duration {
	if a.cfg.ShutdownTimeout > 0 {
		return a.cfg.ShutdownTimeout
	}
	return defaultShutdownTimeout
}

// shutdown stops the server (in-flight calls finish, engines and stores
// close), then closes the audit log.
func (a *appliance) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.shutdownTimeout())
	defer cancel()
	var errs []error
	if a.metrics != nil {
		if err := a.metrics.stop(); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
		a.metrics = nil
	}
	if a.stopFaults != nil {
		a.stopFaults()
	}
	defer a.stopDevice()
	if err := a.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		// What shutdown_timeout is for: not an error of the appliance.
		a.logger.Printf("WARNING: shutdown_timeout %s reached: calls still running were cut short", a.shutdownTimeout())
	} else if err != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	}
	if a.audit != nil {
		if err := a.audit.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit log: %w", err))
		}
		seq, head := a.audit.Head()
		a.logger.Printf("audit log closed: head seq %d hash %s", seq, head)
	}
	if err := errors.Join(errs...); err != nil {
		a.logger.Printf("stopped with errors: %v", err)
		return err
	}
	a.logger.Printf("stopped")
	return nil
}

// serverTLS loads the server certificate and the client CA. The server
// itself requires TLS 1.3 and a client certificate from the pool.
func serverTLS(cfg *serveConfig, logger *log.Logger, now time.Time) (*tls.Config, error) {
	if err := checkKeyFileMode(cfg.TLSKey, "tls_key"); err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls_cert %s, tls_key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls_cert %s: %w", cfg.TLSCert, err)
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("tls_cert %s expired on %s", cfg.TLSCert, leaf.NotAfter.Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("tls_cert %s is valid only from %s", cfg.TLSCert, leaf.NotBefore.Format(time.RFC3339))
	case leaf.NotAfter.Sub(now) < 30*24*time.Hour:
		logger.Printf("WARNING: tls_cert %s expires on %s", cfg.TLSCert, leaf.NotAfter.Format(time.DateOnly))
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil, fmt.Errorf("tls_cert %s is not for TLS servers (no serverAuth extended key usage)", cfg.TLSCert)
	}
	caPEM, err := os.ReadFile(cfg.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("client_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("client_ca %s: no PEM certificate", cfg.ClientCA)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// checkKeyFileMode refuses a secret file that every user of the machine can
// read.
func checkKeyFileMode(path, key string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return fmt.Errorf("%s %s is accessible to every user (mode %04o): chmod o-rwx %s", key, path, fi.Mode().Perm(), path)
	}
	return nil
}

// readSecretFile reads the audit HMAC key: the file's bytes, at least 32.
func readSecretFile(path, key string) ([]byte, error) {
	if err := checkKeyFileMode(path, key); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if len(b) < 32 {
		clear(b)
		return nil, fmt.Errorf("%s %s: %d bytes; the HMAC key needs at least 32 (head -c 32 /dev/urandom > %s)", key, path, len(b), path)
	}
	return b, nil
}

// allPartitions is the server's "every token" (client.CN = *).
var allPartitions = []string{"*"}

// engineOpener is the server's Open: for each identity an engine over its
// own handle on the store (server.StoreOpener), with the configured KDF
// cost, PIN tries, SM profile and policy, as the module in local mode
// builds one (pkcs11shim/engine.go).
func engineOpener(cfg *serveConfig) func(identity string) (hsm.Backend, error) {
	return engineOpenerKey(cfg, nil)
}

// engineOpenerKey is engineOpener with the device key (firmware-sim/device:
// hsm.Config.DeviceKey) in every engine; nil is none.
func engineOpenerKey(cfg *serveConfig, deviceKey []byte) func(identity string) (hsm.Backend, error) {
	policy, _ := hsm.ParsePolicy(cfg.Policy) // checked when the file was read
	configure := func(hc *hsm.Config) {
		hc.DeviceKey = deviceKey
		hc.Profile = cfg.Profile
		if cfg.KDFIterations > 0 {
			hc.KDFIterations = cfg.KDFIterations
		}
		if cfg.MaxPINTries > 0 {
			hc.MaxPINTries = cfg.MaxPINTries
		}
		hc.Policy = policy
	}
	if cfg.storage != nil {
		return storageOpener(cfg.storage, configure)
	}
	return server.StoreOpener(cfg.Dir, configure)
}

// storageOpener is server.StoreOpener over other storage (a cluster
// member's replicated store): an engine per identity over its own view,
// closed after Finalize.
func storageOpener(open func() (hsm.Storage, io.Closer, error), configure func(*hsm.Config)) func(identity string) (hsm.Backend, error) {
	return func(identity string) (hsm.Backend, error) {
		st, closer, err := open()
		if err != nil {
			return nil, err
		}
		hc := hsm.DefaultConfig(st)
		configure(&hc)
		m, err := hsm.New(hc)
		if err != nil {
			closer.Close()
			return nil, err
		}
		return &closingBackend{Module: m, closer: closer}, nil
	}
}

type closingBackend struct {
	*hsm.Module
	closer io.Closer
}

func (b *closingBackend) Close() error { return b.closer.Close() }

// openEngine is one engine of engineOpener; the caller Finalizes and
// Closes it.
func openEngine(cfg *serveConfig) (hsm.Backend, error) { return engineOpener(cfg)("") }

// storeLabels opens the store once at start: it must be usable before the
// appliance says it is up. It returns the labels of its tokens.
func storeLabels(cfg *serveConfig) ([]string, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("dir: %w", err)
	}
	be, err := openEngine(cfg)
	if err != nil {
		return nil, fmt.Errorf("dir %s: %w", cfg.Dir, err)
	}
	defer be.(io.Closer).Close()
	if err := be.Initialize(); err != nil {
		return nil, fmt.Errorf("dir %s: %w", cfg.Dir, err)
	}
	defer be.Finalize()
	slots, err := be.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("dir %s: %w", cfg.Dir, err)
	}
	var labels []string
	for _, s := range slots {
		info, err := be.GetTokenInfo(s)
		if err != nil {
			return nil, fmt.Errorf("dir %s: slot %d: %w", cfg.Dir, s, err)
		}
		if info.Flags&ck.CKF_TOKEN_INITIALIZED != 0 {
			labels = append(labels, info.Label)
		}
	}
	return labels, nil
}

func quotedList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return ": " + strings.Join(q, ", ")
}
