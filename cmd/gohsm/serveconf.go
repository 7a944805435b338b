package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/cluster"
	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// serveConfig is gohsm serve's configuration file (docs/appliance.md,
// "Configuration"). The format is the module's (internal/conf): `key =
// value` lines, '#' comments, values optionally in double quotes, every key
// at most once, an unknown key is an error. Client lines name a certificate
// subject CN after a dot, bare or quoted:
//
//	listen = 0.0.0.0:7443
//	dir = /var/lib/gohsm
//	tls_cert = /etc/gohsm/server.pem
//	tls_key = /etc/gohsm/server.key
//	client_ca = /etc/gohsm/ca.pem
//	audit_log = /var/log/gohsm/audit.log
//	client.app1 = payments, "signing key 2"   # token labels app1 may see
//	pubkey.app1 = sha256:5f0c...               # and only with this key pair
//	client."ops team" = *                      # every token
//	admin."ops team" = true                    # and the free slot, C_InitToken
//
// Relative paths are relative to the file's directory.
type serveConfig struct {
	Listen            string
	Dir               string
	TLSCert, TLSKey   string
	ClientCA          string
	AuditLog          string
	AuditKeyFile      string
	Policy            string // default | strict
	Profile           *ck.Profile
	KDFIterations     int // 0: the engine's default
	MaxPINTries       int // 0: the engine's default
	MaxFrame          int // 0: the server's default; the rest likewise
	MaxCallsPerClient int
	MaxCalls          int
	MaxBytesPerClient int
	MaxBytes          int
	MaxConns          int
	FrameTimeout      time.Duration
	Name              string // the appliance's name in the protocol's WELCOME
	CallTimeout       time.Duration
	HandshakeTimeout  time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration // 0: defaultShutdownTimeout
	Faults            string        // a fault plan file (firmware-sim/faults); dev mode: D/faults.json
	Metrics           string        // the Prometheus endpoint's HOST:PORT (cluster_metrics.go); "" none
	Clients           map[string]*clientEntry
	Source            string // the file, "" in dev mode
	Dev               bool   // dev mode: no audit log required
	clientOrder       []string
	// Cluster: raft, raft_join, cluster_ca, member_cert, member_key,
	// node_id (docs/cluster.md); Raft "" is no cluster.
	Cluster clusterConf
	// storage, if set, gives each engine its storage instead of Dir's
	// token files (a cluster member's replicated store: cluster.go).
	storage func() (hsm.Storage, io.Closer, error)
	// member is the cluster member whose store storage is (nil: none):
	// the server tells clients when it cannot serve (server.Config
	// Unavailable, Serving; firmware-sim/cluster health.go).
	member *cluster.Node
	// Gateway: the crypto gateway's http* keys (serve_gateway_conf.go).
	Gateway gatewayConf
}

const defaultShutdownTimeout = 30 * time.Second

// clientEntry is what one certificate subject CN may do.
type clientEntry struct {
	CN         string
	Partitions []string // token labels, in the order written
	All        bool     // `*`: every token, also ones made later
	Admin      bool
	Pins       [][sha256.Size]byte // SHA-256 of the SubjectPublicKeyInfo; empty: any key
	line       int                 // of its first line, for messages
}

// Token labels are CK_TOKEN_INFO.label: 32 bytes, blank-padded.
const maxLabelLen = 32

// bareName is a CN written without quotes after client., admin. or pubkey.
var bareName = regexp.MustCompile(`^[A-Za-z0-9._@:/+-]+$`)

func newServeConfig() *serveConfig {
	return &serveConfig{Profile: ck.DefaultProfile, Policy: "default", Clients: map[string]*clientEntry{}}
}

// loadServeConfig reads and checks the file at path.
func loadServeConfig(path string) (*serveConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg := newServeConfig()
	cfg.Source = path
	if err := cfg.parse(f); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.resolvePaths(filepath.Dir(path))
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// parse applies the lines of r.
func (c *serveConfig) parse(r io.Reader) error {
	sc := bufio.NewScanner(r)
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, name, raw, err := splitConfigLine(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		id := key
		if isClientKey(key) {
			id = key + "." + strconv.Quote(name)
		}
		if prev, dup := seen[id]; dup {
			return fmt.Errorf("line %d: %s already set on line %d", n, displayKey(key, name), prev)
		}
		seen[id] = n
		if err := c.set(key, name, raw, n); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

func isClientKey(k string) bool { return k == "client" || k == "admin" || k == "pubkey" }

func displayKey(key, name string) string {
	if isClientKey(key) {
		return key + "." + configName(name)
	}
	return key
}

// splitConfigLine splits `key = value` and `key.NAME = value` (NAME bare or
// double-quoted) into the key, the name and the raw value after '='.
func splitConfigLine(line string) (key, name, raw string, err error) {
	i := strings.IndexAny(line, ". \t=")
	if i <= 0 {
		return "", "", "", fmt.Errorf("%q: want key = value", line)
	}
	key, rest := line[:i], line[i:]
	if !strings.Contains(line, "=") {
		return "", "", "", fmt.Errorf("%q: want key = value", line)
	}
	if strings.Trim(key, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return "", "", "", fmt.Errorf("unknown key %q", key)
	}
	if rest[0] == '.' {
		if !isClientKey(key) {
			return "", "", "", fmt.Errorf("unknown key %q (only client., admin. and pubkey. take a name)", strings.TrimSpace(strings.SplitN(line, "=", 2)[0]))
		}
		rest = rest[1:]
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return "", "", "", fmt.Errorf("%s.: bad quoted name", key)
			}
			name, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			j := strings.IndexAny(rest, " \t=")
			if j < 0 {
				return "", "", "", fmt.Errorf("%s.%s: want = value", key, rest)
			}
			name, rest = rest[:j], rest[j:]
			if !bareName.MatchString(name) {
				return "", "", "", fmt.Errorf("%s.%s: quote a name with characters other than letters, digits and ._@:/+- (%s.%q)", key, name, key, name)
			}
		}
		if name == "" {
			return "", "", "", fmt.Errorf("%s.: empty client name", key)
		}
		if len(name) > 64 || strings.ContainsAny(name, "\x00\n\r") {
			return "", "", "", fmt.Errorf("%s.%s: a certificate CN is 1 to 64 characters", key, configName(name))
		}
	} else if isClientKey(key) {
		return "", "", "", fmt.Errorf("%s needs a client name: %s.NAME = ...", key, key)
	}
	rest = strings.TrimLeft(rest, " \t")
	if !strings.HasPrefix(rest, "=") {
		return "", "", "", fmt.Errorf("%s: want key = value", displayKey(key, name))
	}
	return key, name, strings.TrimSpace(rest[1:]), nil
}

// scalarValue strips a trailing comment and optional double quotes, as
// internal/conf does.
func scalarValue(v string) (string, error) {
	if strings.HasPrefix(v, `"`) {
		s, err := strconv.QuotedPrefix(v)
		if err != nil {
			return "", errors.New("bad quoted value")
		}
		rest := strings.TrimSpace(v[len(s):])
		if rest != "" && rest[0] != '#' {
			return "", errors.New("text after quoted value")
		}
		return strconv.Unquote(s)
	}
	if i := strings.Index(v, "#"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, nil
}

// listValue reads `a, "b, c", d # comment`: items bare or quoted, separated
// by commas.
func listValue(v string) ([]string, error) {
	var out []string
	for {
		v = strings.TrimLeft(v, " \t")
		var item string
		if strings.HasPrefix(v, `"`) {
			q, err := strconv.QuotedPrefix(v)
			if err != nil {
				return nil, errors.New("bad quoted item")
			}
			item, _ = strconv.Unquote(q)
			v = strings.TrimLeft(v[len(q):], " \t")
		} else {
			j := strings.IndexAny(v, ",#")
			if j < 0 {
				j = len(v)
			}
			item, v = strings.TrimSpace(v[:j]), v[j:]
			if strings.Contains(item, `"`) {
				return nil, fmt.Errorf("item %q: quote the whole item", item)
			}
		}
		if item == "" {
			return nil, errors.New("empty item in list")
		}
		out = append(out, item)
		switch {
		case v == "" || v[0] == '#':
			return out, nil
		case v[0] == ',':
			v = v[1:]
		default:
			return nil, fmt.Errorf("after %q: want ',' or end of line", item)
		}
	}
}

func (c *serveConfig) client(cn string, line int) *clientEntry {
	e, ok := c.Clients[cn]
	if !ok {
		e = &clientEntry{CN: cn, line: line}
		c.Clients[cn] = e
		c.clientOrder = append(c.clientOrder, cn)
	}
	return e
}

func (c *serveConfig) set(key, name, raw string, line int) error {
	if isClientKey(key) {
		return c.setClient(key, name, raw, line)
	}
	val, err := scalarValue(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	nonEmpty := func(dst *string) error {
		if val == "" {
			return fmt.Errorf("%s is empty", key)
		}
		*dst = val
		return nil
	}
	switch key {
	case "listen":
		if _, _, err := net.SplitHostPort(val); err != nil {
			return fmt.Errorf("listen %q: want HOST:PORT (%v)", val, err)
		}
		c.Listen = val
	case "dir":
		return nonEmpty(&c.Dir)
	case "tls_cert":
		return nonEmpty(&c.TLSCert)
	case "tls_key":
		return nonEmpty(&c.TLSKey)
	case "client_ca":
		return nonEmpty(&c.ClientCA)
	case "audit_log":
		return nonEmpty(&c.AuditLog)
	case "audit_key_file":
		return nonEmpty(&c.AuditKeyFile)
	case "policy":
		if _, err := hsm.ParsePolicy(val); err != nil || val == "" {
			return fmt.Errorf("policy %q: want default or strict", val)
		}
		c.Policy = val
	case "profile":
		p, ok := ck.ProfileByName(val)
		if !ok {
			return fmt.Errorf("profile %q: unknown SM vendor profile (docs/sm-codes.md)", val)
		}
		c.Profile = p
	case "kdf_iterations":
		return positiveInt(key, val, &c.KDFIterations)
	case "max_pin_tries":
		return positiveInt(key, val, &c.MaxPINTries)
	case "max_frame":
		return sizeValue(key, val, &c.MaxFrame)
	case "max_calls_per_client":
		return positiveInt(key, val, &c.MaxCallsPerClient)
	case "max_calls":
		return positiveInt(key, val, &c.MaxCalls)
	case "max_bytes_per_client":
		return sizeValue(key, val, &c.MaxBytesPerClient)
	case "max_bytes":
		return sizeValue(key, val, &c.MaxBytes)
	case "max_conns":
		return positiveInt(key, val, &c.MaxConns)
	case "frame_timeout":
		return durationValue(key, val, &c.FrameTimeout)
	case "name":
		return nonEmpty(&c.Name)
	case "call_timeout":
		return durationValue(key, val, &c.CallTimeout)
	case "handshake_timeout":
		return durationValue(key, val, &c.HandshakeTimeout)
	case "idle_timeout":
		return durationValue(key, val, &c.IdleTimeout)
	case "shutdown_timeout":
		return durationValue(key, val, &c.ShutdownTimeout)
	case "faults":
		return nonEmpty(&c.Faults)
	case "metrics":
		if _, _, err := net.SplitHostPort(val); err != nil {
			return fmt.Errorf("metrics %q: want HOST:PORT (%v)", val, err)
		}
		c.Metrics = val
	case "raft", "raft_join", "raft_init", "cluster_ca", "member_cert", "member_key", "node_id":
		return c.Cluster.set(key, val)
	default:
		if ok, err := c.Gateway.set(key, val); ok {
			return err
		}
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}

func (c *serveConfig) setClient(key, cn, raw string, line int) error {
	dk := displayKey(key, cn)
	switch key {
	case "client":
		items, err := listValue(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", dk, err)
		}
		e := c.client(cn, line)
		for _, it := range items {
			if it == "*" {
				if len(items) > 1 {
					return fmt.Errorf("%s: * (every token) stands alone", dk)
				}
				e.All = true
				continue
			}
			if len(it) > maxLabelLen {
				return fmt.Errorf("%s: token label %q is longer than %d bytes", dk, it, maxLabelLen)
			}
			if slices.Contains(e.Partitions, it) {
				return fmt.Errorf("%s: token %q twice", dk, it)
			}
			e.Partitions = append(e.Partitions, it)
		}
	case "admin":
		val, err := scalarValue(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", dk, err)
		}
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("%s %q: want true or false", dk, val)
		}
		c.client(cn, line).Admin = b
	case "pubkey":
		items, err := listValue(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", dk, err)
		}
		e := c.client(cn, line)
		for _, it := range items {
			fp, err := parseFingerprint(it)
			if err != nil {
				return fmt.Errorf("%s: %w", dk, err)
			}
			e.Pins = append(e.Pins, fp)
		}
	}
	return nil
}

// parseFingerprint reads "sha256:" and 64 hex digits (colons between bytes
// allowed, either case), as gohsm pki fingerprint prints it.
func parseFingerprint(s string) ([sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	h, ok := strings.CutPrefix(strings.ToLower(s), "sha256:")
	if !ok {
		return fp, fmt.Errorf("%q: want sha256: and the hex SHA-256 of the certificate's public key (gohsm pki fingerprint CERT)", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
	if err != nil || len(b) != sha256.Size {
		return fp, fmt.Errorf("%q: want 64 hex digits after sha256:", s)
	}
	copy(fp[:], b)
	return fp, nil
}

func positiveInt(key, val string, dst *int) error {
	n, err := strconv.Atoi(val)
	if err != nil || n <= 0 {
		return fmt.Errorf("%s %q: want a positive integer", key, val)
	}
	*dst = n
	return nil
}

func durationValue(key, val string, dst *time.Duration) error {
	d, err := time.ParseDuration(val)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s %q: want a positive duration such as 500ms, 30s or 5m", key, val)
	}
	*dst = d
	return nil
}

// sizeValue reads bytes, optionally with KiB or MiB.
func sizeValue(key, val string, dst *int) error {
	mult, num := 1, val
	for _, u := range []struct {
		suffix string
		m      int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}} {
		if n, ok := strings.CutSuffix(val, u.suffix); ok {
			mult, num = u.m, strings.TrimSpace(n)
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > (1<<30)/mult {
		return fmt.Errorf("%s %q: want a size in bytes (or KiB, MiB), at most 1 GiB", key, val)
	}
	*dst = n * mult
	return nil
}

func (c *serveConfig) resolvePaths(base string) {
	for _, p := range []*string{&c.Dir, &c.TLSCert, &c.TLSKey, &c.ClientCA, &c.AuditLog, &c.AuditKeyFile, &c.Faults,
		&c.Cluster.CA, &c.Cluster.Cert, &c.Cluster.Key} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
}

// check reports what is missing or contradictory, all at once.
func (c *serveConfig) check() error {
	if c.Listen == "" && c.Gateway.HTTP != "" && !c.Dev {
		return c.checkGatewayAlone() // the gateway alone: gateway_remote.go
	}
	var errs []error
	req := func(key, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", key))
		}
	}
	req("listen", c.Listen)
	req("dir", c.Dir)
	req("tls_cert", c.TLSCert)
	req("tls_key", c.TLSKey)
	req("client_ca", c.ClientCA)
	if c.AuditLog == "" && !c.Dev {
		errs = append(errs, errors.New("audit_log is required: an appliance without an audit log does not start"))
	}
	if c.MaxFrame > 0 && c.MaxFrame < wire.MinMaxFrame {
		errs = append(errs, fmt.Errorf("max_frame %d: at least %d (64KiB)", c.MaxFrame, wire.MinMaxFrame))
	}
	if sc := c.serverConfig(); sc.MaxBytesPerConn < sc.MaxFrame {
		errs = append(errs, fmt.Errorf("max_bytes_per_client %d: at least max_frame (%d): a call of any size accepted must fit",
			sc.MaxBytesPerConn, sc.MaxFrame))
	} else if sc.MaxBytesTotal < sc.MaxBytesPerConn {
		errs = append(errs, fmt.Errorf("max_bytes %d: at least max_bytes_per_client (%d)", sc.MaxBytesTotal, sc.MaxBytesPerConn))
	}
	if len(c.Name) > wire.MaxName {
		errs = append(errs, fmt.Errorf("name: at most %d bytes", wire.MaxName))
	}
	if c.AuditKeyFile != "" && c.AuditLog == "" {
		errs = append(errs, errors.New("audit_key_file without audit_log"))
	}
	errs = append(errs, c.Cluster.check(c.Dev)...)
	usable := 0
	for _, cn := range c.clientOrder {
		e := c.Clients[cn]
		switch {
		case !e.All && len(e.Partitions) == 0 && !e.Admin:
			errs = append(errs, fmt.Errorf("line %d: client %s has neither tokens (client.%s = LABEL, ...) nor admin.%s = true", e.line, configName(cn), configName(cn), configName(cn)))
		default:
			usable++
		}
	}
	if usable == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no clients: add client.CN = TOKEN-LABEL, ... for each client certificate's subject CN"))
	}
	return errors.Join(errs...)
}

// authorize is the server's Authorize: the certificate's subject CN names
// the client; if the configuration pins public keys for it, the
// certificate's key must be one of them. The TLS layer has already checked
// the chain to client_ca.
func (c *serveConfig) authorize(cert *x509.Certificate) (identity string, partitions []string, admin, ok bool) {
	if cert == nil {
		return "", nil, false, false
	}
	e, found := c.Clients[cert.Subject.CommonName]
	if !found {
		return "", nil, false, false
	}
	if len(e.Pins) > 0 {
		h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		match := 0
		for _, p := range e.Pins {
			match |= subtle.ConstantTimeCompare(h[:], p[:])
		}
		if match == 0 {
			return "", nil, false, false
		}
	}
	if e.All {
		return e.CN, allPartitions, e.Admin, true
	}
	return e.CN, slices.Clone(e.Partitions), e.Admin, true
}
