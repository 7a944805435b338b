// Package conf reads gohsm's configuration, shared by the C module and the
// CLI so both find the same token store. It is read once per C_Initialize;
// nothing here is global state.
package conf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Config is the module's configuration, read at every C_Initialize so a
// process can change it between C_Finalize and C_Initialize.
//
// The file is plain `key = value` lines; blank lines and lines starting with
// '#' are ignored, values may be quoted with double quotes, and an unknown
// key is an error so that a typo is not silently ignored:
//
//	# gohsm.conf
//	mode = local              # local | remote (the network appliance)
//	dir = /var/lib/gohsm      # token store directory (local mode)
//	profile = gohsm           # SM vendor code profile (ck.ProfileByName)
//	log = error               # off | error | info | debug
//	log_file = /tmp/gohsm.log # default: stderr
//	max_pin_tries = 10
//	kdf_iterations = 210000
//	policy = default          # default | strict (hsm.Policy: what strict refuses)
//	faults = plan.json        # a fault plan (firmware-sim/faults, docs/firmware.md)
//	fail_selftest = ML-DSA-44 # make a power-on self-test fail (docs/firmware.md); or $GOHSM_FAIL_SELFTEST
//
// Remote mode (mode = remote) reaches a gohsm appliance (gohsm serve) over
// TLS 1.3 with a client certificate, and needs address, ca, cert and key:
//
//	address = hsm.example:5696     # the appliance, host:port
//	ca = /etc/gohsm/ca.pem         # the appliance's CA (PEM)
//	cert = /etc/gohsm/client.pem   # this client's certificate (PEM)
//	key = /etc/gohsm/client-key.pem
//	server_name = hsm.example      # optional: the name in the appliance's certificate (default: address's host)
//	timeout = 5s                   # optional: how long a call may wait while the appliance is unreachable
//
// Relative ca, cert, key and faults paths are relative to the file's
// directory.
//
// Where the file is: $GOHSM_CONF if set (it must exist), else
// $XDG_CONFIG_HOME/gohsm/gohsm.conf (~/.config/gohsm/gohsm.conf), else
// /etc/gohsm/gohsm.conf, each only if present; with none, the defaults.
// $GOHSM_DIR, when set, overrides dir (tests use it to isolate stores). The
// default dir is $XDG_DATA_HOME/gohsm (~/.local/share/gohsm), created with
// mode 0700 on first use. $GOHSM_FAULTS, when set, overrides faults.
type Config struct {
	Mode          string
	Dir           string
	Profile       *ck.Profile
	Log           string // off | error | info | debug
	LogFile       string
	MaxPINTries   int // 0: the engine default
	KDFIterations int // 0: the engine default
	// Policy is the security profile: "default" or "strict" (hsm.Policy).
	Policy string
	// Source is the file the configuration came from, "" for defaults.
	Source string
	// Faults is a fault plan file (firmware-sim/faults): the module wraps
	// its backend, local or remote, in the plan. "" is none.
	Faults string
	// FailSelftest names a power-on self-test to fail on purpose
	// (firmware-sim/device/selftest, docs/firmware.md), to test the error
	// state; $GOHSM_FAIL_SELFTEST overrides it. "" fails none.
	FailSelftest string

	// Remote mode: the appliance's address (host:port), its CA, the client
	// certificate and key (PEM files), the name its certificate carries
	// ("" means the address's host), and the bound on a call while the
	// appliance is unreachable (0 means the client's default).
	Address    string
	CA         string
	Cert, Key  string
	ServerName string
	Timeout    time.Duration
}

// Modes.
const (
	ModeLocal  = "local"
	ModeRemote = "remote"
)

// LogLevels are the accepted values of log, quietest first.
var LogLevels = []string{"off", "error", "info", "debug"}

// Getenv is os.Getenv; tests substitute their own environment.
type Getenv func(string) string

// Load finds, reads and completes the configuration.
func Load(env Getenv) (*Config, error) {
	cfg := &Config{Mode: ModeLocal, Profile: ck.DefaultProfile, Log: "off"}
	path, err := configPath(env)
	if err != nil {
		return nil, err
	}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		if err := Parse(f, cfg); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		cfg.Source = path
	}
	if err := cfg.completeRemote(); err != nil {
		return nil, err
	}
	if d := env("GOHSM_DIR"); d != "" {
		cfg.Dir = d
	}
	if f := env("GOHSM_FAULTS"); f != "" {
		cfg.Faults = f
	}
	if f := env("GOHSM_FAIL_SELFTEST"); f != "" {
		cfg.FailSelftest = f
	}
	if cfg.Dir == "" {
		d, err := defaultDir(env)
		if err != nil {
			return nil, err
		}
		cfg.Dir = d
	}
	return cfg, nil
}

// completeRemote resolves the remote mode's files against the directory of
// the configuration file and checks that nothing it needs is missing, so
// that C_Initialize says which key is absent instead of failing later.
func (cfg *Config) completeRemote() error {
	if cfg.Source != "" {
		base := filepath.Dir(cfg.Source)
		for _, p := range []*string{&cfg.CA, &cfg.Cert, &cfg.Key, &cfg.Faults} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(base, *p)
			}
		}
	}
	if cfg.Mode != ModeRemote {
		return nil
	}
	var missing []string
	for _, k := range []struct{ name, v string }{{"address", cfg.Address}, {"ca", cfg.CA}, {"cert", cfg.Cert}, {"key", cfg.Key}} {
		if k.v == "" {
			missing = append(missing, k.name)
		}
	}
	if len(missing) > 0 {
		where := cfg.Source
		if where == "" {
			where = "the configuration"
		}
		return fmt.Errorf("config %s: mode remote needs %s", where, strings.Join(missing, ", "))
	}
	return nil
}

func configPath(env Getenv) (string, error) {
	if p := env("GOHSM_CONF"); p != "" {
		return p, nil
	}
	var candidates []string
	if x := env("XDG_CONFIG_HOME"); x != "" {
		candidates = append(candidates, filepath.Join(x, "gohsm", "gohsm.conf"))
	} else if h := env("HOME"); h != "" {
		candidates = append(candidates, filepath.Join(h, ".config", "gohsm", "gohsm.conf"))
	}
	candidates = append(candidates, "/etc/gohsm/gohsm.conf")
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("config %s: %w", c, err)
		}
	}
	return "", nil
}

func defaultDir(env Getenv) (string, error) {
	if x := env("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "gohsm"), nil
	}
	if h := env("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "gohsm"), nil
	}
	return "", errors.New("config: no dir, GOHSM_DIR, XDG_DATA_HOME or HOME to put the token store in")
}

// Parse applies the lines of r to cfg.
func Parse(r io.Reader, cfg *Config) error {
	sc := bufio.NewScanner(r)
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("line %d: want key = value", n)
		}
		key = strings.TrimSpace(key)
		val, err := configValue(strings.TrimSpace(val))
		if err != nil {
			return fmt.Errorf("line %d: %s: %w", n, key, err)
		}
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("line %d: %s already set on line %d", n, key, prev)
		}
		seen[key] = n
		if err := setConfig(cfg, key, val); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

// configValue strips a trailing comment and optional double quotes.
func configValue(v string) (string, error) {
	if strings.HasPrefix(v, `"`) {
		s, err := strconv.QuotedPrefix(v)
		if err != nil {
			return "", fmt.Errorf("bad quoted value")
		}
		rest := strings.TrimSpace(v[len(s):])
		if rest != "" && rest[0] != '#' {
			return "", fmt.Errorf("text after quoted value")
		}
		return strconv.Unquote(s)
	}
	if i := strings.Index(v, "#"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, nil
}

func setConfig(cfg *Config, key, val string) error {
	switch key {
	case "mode":
		if val != ModeLocal && val != ModeRemote {
			return fmt.Errorf("mode %q: want local or remote", val)
		}
		cfg.Mode = val
	case "dir":
		if val == "" {
			return errors.New("dir is empty")
		}
		cfg.Dir = val
	case "profile":
		p, ok := ck.ProfileByName(val)
		if !ok {
			return fmt.Errorf("unknown SM profile %q", val)
		}
		cfg.Profile = p
	case "log":
		if !slices.Contains(LogLevels, val) {
			return fmt.Errorf("log %q: want off, error, info or debug", val)
		}
		cfg.Log = val
	case "log_file":
		cfg.LogFile = val
	case "max_pin_tries":
		return positive(key, val, &cfg.MaxPINTries)
	case "kdf_iterations":
		return positive(key, val, &cfg.KDFIterations)
	case "policy":
		if val != "default" && val != "strict" {
			return fmt.Errorf("policy %q: want default or strict", val)
		}
		cfg.Policy = val
	case "address":
		// One appliance, or the members of a cluster: a:1,b:2,c:3
		// (docs/cluster.md); the client spreads and fails over.
		for _, a := range strings.Split(val, ",") {
			host, port, err := net.SplitHostPort(strings.TrimSpace(a))
			if err != nil || host == "" || port == "" {
				return fmt.Errorf("address %q: want host:port, or a list host:port,host:port,...", val)
			}
		}
		cfg.Address = val
	case "ca", "cert", "key":
		if val == "" {
			return fmt.Errorf("%s is empty", key)
		}
		*map[string]*string{"ca": &cfg.CA, "cert": &cfg.Cert, "key": &cfg.Key}[key] = val
	case "server_name":
		if val == "" {
			return errors.New("server_name is empty")
		}
		cfg.ServerName = val
	case "fail_selftest":
		if val == "" {
			return errors.New("fail_selftest is empty")
		}
		cfg.FailSelftest = val
	case "faults":
		if val == "" {
			return errors.New("faults is empty")
		}
		cfg.Faults = val
	case "timeout":
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 || d > time.Hour {
			return fmt.Errorf("timeout %q: want a duration such as 5s (at most 1h)", val)
		}
		cfg.Timeout = d
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}

func positive(key, val string, dst *int) error {
	n, err := strconv.Atoi(val)
	if err != nil || n <= 0 {
		return fmt.Errorf("%s %q: want a positive integer", key, val)
	}
	*dst = n
	return nil
}
