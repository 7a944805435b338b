package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/gateway/pool"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/internal/conf"
)

// The gateway's tokens, and the gateway alone (docs/gateway.md, "The
// gateway alone, on remote tokens").
//
// Where the tokens are: the local store (dir), as beside the appliance; or,
// with http_remote, an appliance or a cluster reached through its Go client
// (firmware-sim/client), which fails over between a cluster's members by
// itself. Several tokens (http_pool, http_pool_local) make a pool: keys are
// cloned between them under the pool transport key (gateway/pool), so the
// gateway refuses to start a pool whose tokens lack that key rather than
// fail at the first key it makes.
//
// Without `listen`, gohsm serve runs the gateway alone: no appliance, no
// appliance keys (a key that only the appliance reads is refused, not
// ignored), and `dir` only if a token is local.

// gatewayAloneKeys are the appliance's keys, refused without listen.
func (c *serveConfig) gatewayAloneKeys() []string {
	var set []string
	for _, k := range []struct {
		key string
		on  bool
	}{
		{"tls_cert", c.TLSCert != ""}, {"tls_key", c.TLSKey != ""}, {"client_ca", c.ClientCA != ""},
		{"audit_log", c.AuditLog != ""}, {"audit_key_file", c.AuditKeyFile != ""},
		{"max_frame", c.MaxFrame != 0}, {"max_calls_per_client", c.MaxCallsPerClient != 0},
		{"max_calls", c.MaxCalls != 0}, {"max_bytes_per_client", c.MaxBytesPerClient != 0}, {"max_bytes", c.MaxBytes != 0},
		{"max_conns", c.MaxConns != 0}, {"frame_timeout", c.FrameTimeout != 0},
		{"name", c.Name != ""}, {"call_timeout", c.CallTimeout != 0}, {"handshake_timeout", c.HandshakeTimeout != 0},
		{"idle_timeout", c.IdleTimeout != 0}, {"faults", c.Faults != ""}, {"metrics", c.Metrics != ""}, {"client.*, admin.*, pubkey.*", len(c.Clients) > 0},
		{"raft, raft_join, raft_init, cluster_ca, member_cert, member_key, node_id", c.Cluster != (clusterConf{})},
	} {
		if k.on {
			set = append(set, k.key)
		}
	}
	return set
}

// checkGatewayAlone is serveConfig.check for a configuration with http and
// no listen.
func (c *serveConfig) checkGatewayAlone() error {
	var errs []error
	if keys := c.gatewayAloneKeys(); len(keys) > 0 {
		errs = append(errs, fmt.Errorf("no listen: gohsm serve runs the crypto gateway alone, and these keys are the appliance's%s (add listen = ADDR to serve the appliance too)", quotedList(keys)))
	}
	g := &c.Gateway
	if c.Dir == "" && (g.Remote == "" || len(g.PoolLocal) > 0) {
		errs = append(errs, errors.New("dir is required for the gateway's local tokens (or http_remote = FILE to reach them on an appliance)"))
	}
	return errors.Join(errs...)
}

// serveGatewayAlone runs the configured gateway until ctx ends or its
// server fails; sio.ready, if set, is called (with no appliance) once it
// serves.
func serveGatewayAlone(ctx context.Context, cfg *serveConfig, logger *log.Logger, sio serveIO) error {
	run, stop, err := configuredGateway(cfg, logger)
	if err != nil {
		return err
	}
	logger.Printf("the crypto gateway alone (no appliance: the configuration has no listen)")
	if sio.ready != nil {
		sio.ready(nil)
	}
	var serveErr error
	select {
	case <-ctx.Done():
		logger.Printf("stopping: finishing in-flight requests (up to %s; a second Ctrl-C forces)", cfg.shutdownTimeoutOrDefault())
	case serveErr = <-run.served:
		logger.Printf("gateway server stopped: %v", serveErr)
	}
	err = stop()
	if serveErr != nil && !errors.Is(serveErr, net.ErrClosed) {
		err = errors.Join(fmt.Errorf("gateway: %w", serveErr), err)
	}
	if err != nil {
		logger.Printf("stopped with errors: %v", err)
		return err
	}
	logger.Printf("stopped")
	return nil
}

// gatewayTokens returns the opener of g's tokens (g checked, its paths
// resolved): http_token first (it holds the gateway's state), then
// http_pool's, then http_pool_local's, all logged in with pin; and where
// http_token is, for the log.
func gatewayTokens(cfg *serveConfig, g *gatewayConf, pin string, logger *log.Logger) (func() ([]token.Token, error), string, error) {
	type spec struct {
		label string
		open  func(label string) (token.Token, error)
	}
	local := func(label string) (token.Token, error) {
		sp := gatewaySpec{Open: func() (hsm.Backend, error) { return openEngine(cfg) }, Label: label, PIN: pin}
		toks, err := sp.openEngineToken()
		if err != nil {
			return nil, err
		}
		return toks[0], nil
	}
	primary, where := local, "store "+cfg.Dir
	if g.Remote != "" {
		cc, err := remoteClientConfig(g.Remote, logger)
		if err != nil {
			return nil, "", fmt.Errorf("http_remote %s: %w", g.Remote, err)
		}
		// One client per token: its own connection, so the tokens of a
		// pool may land on different members of a cluster.
		primary = func(label string) (token.Token, error) { return token.OpenRemoteToken(cc, label, []byte(pin)) }
		where = "appliance " + cc.Address
	}
	specs := []spec{{g.Token, primary}}
	for _, l := range g.Pool {
		specs = append(specs, spec{l, primary})
	}
	for _, l := range g.PoolLocal {
		specs = append(specs, spec{l, local})
	}
	open := func() (_ []token.Token, err error) {
		var toks []token.Token
		defer func() {
			if err != nil {
				for _, t := range toks {
					t.Close()
				}
			}
		}()
		for _, s := range specs {
			t, err := s.open(s.label)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
		}
		if len(toks) > 1 {
			for _, t := range toks {
				if err := hasTransportKey(t); err != nil {
					return nil, err
				}
			}
		}
		return toks, nil
	}
	return open, where, nil
}

// hasTransportKey reports a pool token without exactly one pool transport
// key: without it no key can be cloned onto or off the token, and with
// two the pool will not choose.
func hasTransportKey(t token.Token) error {
	if err := pool.CheckTransport(t, []byte(pool.DefaultTransportID)); err != nil {
		return fmt.Errorf("%w (a pool clones keys between its tokens under it; install it once on every token of the pool and have each token's SO trust it: docs/gateway.md)", err)
	}
	return nil
}

// remoteClientConfig reads a module configuration in remote mode (as
// libgohsm.so reads GOHSM_CONF: internal/conf) into the appliance client's
// configuration. The gateway takes address, ca, cert, key, server_name and
// timeout from it; a fault plan there is refused rather than ignored.
func remoteClientConfig(path string, logger *log.Logger) (client.Config, error) {
	mc, err := conf.Load(func(k string) string {
		switch k {
		case "GOHSM_CONF":
			return path
		case "GOHSM_DIR":
			// Remote mode has no store; set so that Load does not look
			// for the default one.
			return filepath.Dir(path)
		}
		return ""
	})
	if err != nil {
		return client.Config{}, err
	}
	if mc.Mode != conf.ModeRemote {
		return client.Config{}, fmt.Errorf("mode %s: want mode = remote, with address, ca, cert and key", mc.Mode)
	}
	if mc.Faults != "" || mc.FailSelftest != "" {
		return client.Config{}, errors.New("faults and fail_selftest are the module's, not the gateway's")
	}
	tcfg, err := client.LoadTLS(mc.CA, mc.Cert, mc.Key, mc.ServerName, mc.Address)
	if err != nil {
		return client.Config{}, err
	}
	cc := client.DefaultConfig()
	cc.Address, cc.TLS = mc.Address, tcfg
	if mc.Timeout > 0 {
		cc.Timeout = mc.Timeout
	}
	cc.Name = fmt.Sprintf("gohsm gateway (pid %d)", os.Getpid())
	// Connection events (lost, reconnected, which member) are what an
	// operator needs; they never carry a PIN or data.
	cc.Logf = func(format string, args ...any) { logger.Printf("gateway: remote: "+format, args...) }
	return cc, cc.Validate()
}
