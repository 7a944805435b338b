package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gwaudit "github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/quota"
)

// The crypto gateway in gohsm serve's configuration file (docs/gateway.md):
// the http_* keys start it beside the appliance, on the same store; with
// no listen key, alone (no appliance), on the tokens they name
// (gateway_remote.go).
//
//	http = 127.0.0.1:8200            the gateway's address (turns it on)
//	http_token = LABEL               the token whose objects hold the keys and the gateway's state
//	http_pin_file = FILE             that token's user PIN (the file's first line); every token of
//	                                 a pool logs in with it
//	http_remote = FILE               the tokens are on an appliance, not in dir's store: FILE is a
//	                                 module configuration as libgohsm.so reads it (mode = remote,
//	                                 address, ca, cert, key; server_name, timeout), and address may
//	                                 list a cluster's members a:1,b:2,c:3 (the client fails over)
//	http_pool = LABEL, ...           more tokens in the gateway's pool, where http_token is; keys
//	                                 are cloned between them under the pool transport key, which
//	                                 each must hold (and its SO trust): docs/gateway.md
//	http_pool_local = LABEL, ...     with http_remote: tokens of dir's store in the pool too
//	http_audit_log = FILE            the gateway's audit log (required: no gateway without one)
//	http_audit_key_file = FILE       its HMAC key, at least 32 bytes (made, 0600, if missing)
//	http_root_token_file = FILE      a new root token written at each start (the previous one revoked);
//	                                 leave it out once admin tokens and policies exist
//	http_audit_sync = always         fsync policy (gateway/audit): always (group commit, the
//	                                 default) | interval (every 100 ms) | none (the kernel's)
//	http_rate_limit = 500:1000       requests per second per token, and burst (429 with
//	                                 Retry-After beyond it); root tokens are exempt
//	http_tls_cert, http_tls_key      HTTPS (required unless http is a loopback address)
//	http_client_ca = FILE            accept client certificates from this CA (mTLS) ...
//	http_cert_policies = FILE        ... mapped to policies: JSON [{"name","fingerprint"|"common_name","policies"}]
type gatewayConf struct {
	HTTP, Token, PINFile, AuditLog, AuditKeyFile, RootTokenFile string
	TLSCert, TLSKey, ClientCA, CertPolicies, AuditSync          string
	RateLimit, Remote                                           string
	Pool, PoolLocal                                             []string
}

// empty reports whether no http* key is set.
func (g *gatewayConf) empty() bool {
	return g.HTTP == "" && g.Token == "" && g.PINFile == "" && g.AuditLog == "" && g.AuditKeyFile == "" &&
		g.RootTokenFile == "" && g.TLSCert == "" && g.TLSKey == "" && g.ClientCA == "" && g.CertPolicies == "" &&
		g.AuditSync == "" && g.RateLimit == "" && g.Remote == "" && len(g.Pool) == 0 && len(g.PoolLocal) == 0
}

var auditSyncModes = map[string]gwaudit.SyncMode{"": gwaudit.SyncAlways, "always": gwaudit.SyncAlways, "interval": gwaudit.SyncInterval, "none": gwaudit.SyncNone}

// set takes one http* key; false if key is not one of them.
func (g *gatewayConf) set(key, val string) (bool, error) {
	if lst := map[string]*[]string{"http_pool": &g.Pool, "http_pool_local": &g.PoolLocal}[key]; lst != nil {
		labels, err := listValue(val)
		if err != nil {
			return true, fmt.Errorf("%s: %w", key, err)
		}
		for _, l := range labels {
			if len(l) > maxLabelLen {
				return true, fmt.Errorf("%s: token label %q is longer than %d bytes", key, l, maxLabelLen)
			}
		}
		*lst = labels
		return true, nil
	}
	dst := map[string]*string{
		"http": &g.HTTP, "http_token": &g.Token, "http_pin_file": &g.PINFile, "http_audit_log": &g.AuditLog,
		"http_audit_key_file": &g.AuditKeyFile, "http_root_token_file": &g.RootTokenFile,
		"http_tls_cert": &g.TLSCert, "http_tls_key": &g.TLSKey, "http_client_ca": &g.ClientCA,
		"http_cert_policies": &g.CertPolicies, "http_audit_sync": &g.AuditSync, "http_rate_limit": &g.RateLimit,
		"http_remote": &g.Remote,
	}[key]
	if dst == nil {
		return false, nil
	}
	if val == "" {
		return true, fmt.Errorf("%s is empty", key)
	}
	if _, ok := auditSyncModes[val]; key == "http_audit_sync" && !ok {
		return true, fmt.Errorf("http_audit_sync %q: want always, interval or none", val)
	}
	if key == "http_rate_limit" {
		if _, err := parseRateLimit(val); err != nil {
			return true, err
		}
	}
	if key == "http" {
		if _, _, err := net.SplitHostPort(val); err != nil {
			return true, fmt.Errorf("http %q: want HOST:PORT (%v)", val, err)
		}
	}
	*dst = val
	return true, nil
}

// check reports what is missing, with paths made relative to base.
func (g *gatewayConf) check(base string) error {
	for _, p := range []*string{&g.PINFile, &g.AuditLog, &g.AuditKeyFile, &g.RootTokenFile, &g.TLSCert, &g.TLSKey, &g.ClientCA, &g.CertPolicies, &g.Remote} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	if g.HTTP == "" {
		if !g.empty() {
			return errors.New("http_* keys without http = ADDR")
		}
		return nil
	}
	var errs []error
	for k, v := range map[string]string{"http_token": g.Token, "http_pin_file": g.PINFile, "http_audit_log": g.AuditLog, "http_audit_key_file": g.AuditKeyFile} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required with http", k))
		}
	}
	if (g.TLSCert == "") != (g.TLSKey == "") {
		errs = append(errs, errors.New("http_tls_cert and http_tls_key go together"))
	}
	if g.TLSCert == "" && checkLoopback(g.HTTP) != nil {
		errs = append(errs, fmt.Errorf("http %s is not a loopback address: tokens would cross the network in clear; set http_tls_cert and http_tls_key", g.HTTP))
	}
	if g.ClientCA != "" && g.TLSCert == "" {
		errs = append(errs, errors.New("http_client_ca needs http_tls_cert and http_tls_key"))
	}
	if (g.CertPolicies == "") != (g.ClientCA == "") {
		errs = append(errs, errors.New("http_client_ca and http_cert_policies go together"))
	}
	if len(g.PoolLocal) > 0 && g.Remote == "" {
		errs = append(errs, errors.New("http_pool_local is for a pool of remote and local tokens (with http_remote); local tokens beside a local http_token go in http_pool"))
	}
	seen := map[string]bool{}
	for _, l := range append([]string{g.Token}, g.Pool...) {
		if seen[l] {
			errs = append(errs, fmt.Errorf("http_token, http_pool: token %q twice", l))
		}
		seen[l] = true
	}
	return errors.Join(errs...)
}

// parseRateLimit reads RATE[:BURST] (requests per second, at once).
func parseRateLimit(v string) (quota.Limit, error) {
	r, b, hasBurst := strings.Cut(v, ":")
	rate, err := strconv.ParseFloat(r, 64)
	if err != nil || !(rate > 0) || math.IsInf(rate, 0) {
		return quota.Limit{}, fmt.Errorf("http_rate_limit %q: want RATE[:BURST], a rate above 0 per second", v)
	}
	lim := quota.Limit{Rate: rate}
	if hasBurst {
		n, err := strconv.Atoi(b)
		if err != nil || n < 1 {
			return quota.Limit{}, fmt.Errorf("http_rate_limit %q: the burst must be a whole number of requests, at least 1", v)
		}
		lim.Burst = n
	}
	return lim, nil
}

// startConfiguredGateway starts the gateway the configuration asks for
// (nil stop when it asks for none).
func startConfiguredGateway(cfg *serveConfig, logger *log.Logger) (func() error, error) {
	_, stop, err := configuredGateway(cfg, logger)
	return stop, err
}

// configuredGateway is startConfiguredGateway with the running gateway
// (nil, nil stop when the configuration asks for none).
func configuredGateway(cfg *serveConfig, logger *log.Logger) (*gatewayRun, func() error, error) {
	g := cfg.Gateway
	if err := g.check(filepath.Dir(cfg.Source)); err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", cfg.Source, err)
	}
	if g.HTTP == "" {
		return nil, nil, nil
	}
	pin, err := os.ReadFile(g.PINFile)
	if err != nil {
		return nil, nil, fmt.Errorf("http_pin_file: %w", err)
	}
	pinLine, _, _ := strings.Cut(string(pin), "\n")
	clear(pin)
	openTokens, where, err := gatewayTokens(cfg, &g, strings.TrimSpace(pinLine), logger) // gateway_remote.go
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", cfg.Source, err)
	}
	sp := gatewaySpec{
		OpenTokens: openTokens,
		AuditLog:   g.AuditLog, AuditKeyFile: g.AuditKeyFile, TokenFile: g.RootTokenFile, Logger: logger,
		AuditSync: auditSyncModes[g.AuditSync],
	}
	if g.RateLimit != "" {
		lim, _ := parseRateLimit(g.RateLimit) // checked by set
		sp.Quota = quota.New(quota.Config{Default: lim, Exempt: []string{"root"}})
	}
	if g.TLSCert != "" {
		if err := checkKeyFileMode(g.TLSKey, "http_tls_key"); err != nil {
			return nil, nil, err
		}
		pair, err := tls.LoadX509KeyPair(g.TLSCert, g.TLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("http_tls_cert, http_tls_key: %w", err)
		}
		sp.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		if g.ClientCA != "" {
			b, err := os.ReadFile(g.ClientCA)
			if err != nil {
				return nil, nil, fmt.Errorf("http_client_ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return nil, nil, fmt.Errorf("http_client_ca %s: no PEM certificate", g.ClientCA)
			}
			sp.TLS.ClientCAs, sp.TLS.ClientAuth = pool, tls.VerifyClientCertIfGiven
			b, err = os.ReadFile(g.CertPolicies)
			if err != nil {
				return nil, nil, fmt.Errorf("http_cert_policies: %w", err)
			}
			if err := json.Unmarshal(b, &sp.Certs); err != nil {
				return nil, nil, fmt.Errorf("http_cert_policies %s: %w", g.CertPolicies, err)
			}
			for _, c := range sp.Certs {
				if c.Name == "" || (c.Fingerprint == "" && c.CommonName == "") || len(c.Policies) == 0 {
					return nil, nil, fmt.Errorf("http_cert_policies %s: each entry needs name, fingerprint or common_name, and policies", g.CertPolicies)
				}
			}
		}
	}
	ln, err := net.Listen("tcp", g.HTTP)
	if err != nil {
		return nil, nil, fmt.Errorf("http %s: %w", g.HTTP, err)
	}
	sp.Listener = ln
	run, err := startGateway(sp)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	scheme := "http"
	if sp.TLS != nil {
		scheme = "https"
	}
	pooled := ""
	if n := len(g.Pool) + len(g.PoolLocal); n > 0 {
		pooled = fmt.Sprintf(" and %d more in its pool", n)
	}
	logger.Printf("gateway: listening on %s://%s (token %q on %s%s, audit log %s)", scheme, ln.Addr(), g.Token, where, pooled, g.AuditLog)
	if g.RootTokenFile != "" {
		logger.Printf("gateway: a new root token is in %s", g.RootTokenFile)
	}
	return run, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeoutOrDefault())
		defer cancel()
		return run.stop(ctx)
	}, nil
}

func (c *serveConfig) shutdownTimeoutOrDefault() time.Duration {
	if c.ShutdownTimeout > 0 {
		return c.ShutdownTimeout
	}
	return defaultShutdownTimeout
}
