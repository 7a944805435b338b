package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm/ck"
)

func envOf(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func TestParseConfig(t *testing.T) {
	var cfg Config
	err := Parse(strings.NewReader(`
# comment
mode = local
dir = "/var/lib/my gohsm"   # quoted, with a comment
profile = gohsm
log = debug
log_file = /tmp/x.log
max_pin_tries = 3
kdf_iterations=1000
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != "local" || cfg.Dir != "/var/lib/my gohsm" || cfg.Profile != ck.DefaultProfile ||
		cfg.Log != "debug" || cfg.LogFile != "/tmp/x.log" || cfg.MaxPINTries != 3 || cfg.KDFIterations != 1000 {
		t.Fatalf("parsed %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, in := range []string{
		"mode = cloud",
		"dir =",
		"profile = nosuchvendor",
		"log = loud",
		"max_pin_tries = 0",
		"kdf_iterations = many",
		"colour = blue",
		"just words",
		"mode = local\nmode = remote",
		"address = nohostport",
		"address = :5696",
		"address = 127.0.0.1:1,nohostport",
		"address = 127.0.0.1:1,",
		"ca =",
		"timeout = 5",
		"timeout = -1s",
		"timeout = 2h",
		"server_name =",
		`dir = "unterminated`,
		`dir = "a" b`,
	} {
		if err := Parse(strings.NewReader(in), &Config{}); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	tmp := t.TempDir()
	conf := filepath.Join(tmp, "gohsm.conf")
	if err := os.WriteFile(conf, []byte("dir = /from/file\nlog = info\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(envOf(map[string]string{"GOHSM_CONF": conf, "HOME": tmp}))
	if err != nil || cfg.Dir != "/from/file" || cfg.Source != conf || cfg.Log != "info" {
		t.Fatalf("file: %+v %v", cfg, err)
	}
	cfg, err = Load(envOf(map[string]string{"GOHSM_CONF": conf, "GOHSM_DIR": "/from/env"}))
	if err != nil || cfg.Dir != "/from/env" {
		t.Fatalf("GOHSM_DIR must override: %+v %v", cfg, err)
	}
	cfg, err = Load(envOf(map[string]string{"HOME": tmp}))
	if err != nil || cfg.Dir != filepath.Join(tmp, ".local", "share", "gohsm") || cfg.Source != "" || cfg.Log != "off" {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = Load(envOf(map[string]string{"HOME": tmp, "XDG_DATA_HOME": "/xdg"}))
	if err != nil || cfg.Dir != "/xdg/gohsm" {
		t.Fatalf("XDG_DATA_HOME: %+v %v", cfg, err)
	}
	// The per-user config file is found without GOHSM_CONF.
	user := filepath.Join(tmp, "xdgconf", "gohsm", "gohsm.conf")
	os.MkdirAll(filepath.Dir(user), 0o700)
	os.WriteFile(user, []byte("mode = remote\naddress = h:1\nca = ca.pem\ncert = c.pem\nkey = k.pem\n"), 0o600)
	cfg, err = Load(envOf(map[string]string{"HOME": tmp, "XDG_CONFIG_HOME": filepath.Join(tmp, "xdgconf")}))
	if err != nil || cfg.Mode != ModeRemote || cfg.Source != user {
		t.Fatalf("user config: %+v %v", cfg, err)
	}
	if _, err := Load(envOf(map[string]string{"GOHSM_CONF": filepath.Join(tmp, "missing")})); err == nil {
		t.Fatal("a missing GOHSM_CONF file must be an error")
	}
}

func TestRemoteConfig(t *testing.T) {
	tmp := t.TempDir()
	conf := filepath.Join(tmp, "remote.conf")
	// What gohsm serve --dev writes, with relative files.
	os.WriteFile(conf, []byte(`mode = remote
address = 127.0.0.1:5696
ca = pki/ca.pem
cert = /abs/client.pem
key = "pki/client key.pem"
timeout = 1500ms
server_name = localhost
`), 0o600)
	cfg, err := Load(envOf(map[string]string{"GOHSM_CONF": conf, "HOME": tmp}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeRemote || cfg.Address != "127.0.0.1:5696" || cfg.CA != filepath.Join(tmp, "pki", "ca.pem") ||
		cfg.Cert != "/abs/client.pem" || cfg.Key != filepath.Join(tmp, "pki", "client key.pem") ||
		cfg.Timeout != 1500*time.Millisecond || cfg.ServerName != "localhost" {
		t.Fatalf("parsed %+v", cfg)
	}
	// Remote mode without its keys names what is missing.
	os.WriteFile(conf, []byte("mode = remote\naddress = [::1]:5696\nca = ca.pem\n"), 0o600)
	_, err = Load(envOf(map[string]string{"GOHSM_CONF": conf, "HOME": tmp}))
	if err == nil || !strings.Contains(err.Error(), "cert, key") {
		t.Fatalf("incomplete remote config: %v", err)
	}
	// The remote keys are harmless in local mode.
	os.WriteFile(conf, []byte("mode = local\naddress = h:1\n"), 0o600)
	if _, err := Load(envOf(map[string]string{"GOHSM_CONF": conf, "HOME": tmp})); err != nil {
		t.Fatal(err)
	}
}

// faults names a fault plan: relative to the file's directory, and
// GOHSM_FAULTS overrides it (the module's two ways to name a plan).
func TestFaultsConfig(t *testing.T) {
	tmp := t.TempDir()
	conf := filepath.Join(tmp, "gohsm.conf")
	os.WriteFile(conf, []byte("faults = plans/flaky.json # a plan\n"), 0o600)
	cfg, err := Load(envOf(map[string]string{"GOHSM_CONF": conf, "HOME": tmp}))
	if err != nil || cfg.Faults != filepath.Join(tmp, "plans", "flaky.json") {
		t.Fatalf("faults from the file: %+v %v", cfg, err)
	}
	os.WriteFile(conf, []byte("faults = /abs/plan.json\n"), 0o600)
	cfg, err = Load(envOf(map[string]string{"GOHSM_CONF": conf, "HOME": tmp}))
	if err != nil || cfg.Faults != "/abs/plan.json" {
		t.Fatalf("absolute faults: %+v %v", cfg, err)
	}
	cfg, err = Load(envOf(map[string]string{"GOHSM_CONF": conf, "HOME": tmp, "GOHSM_FAULTS": "/env/plan.json"}))
	if err != nil || cfg.Faults != "/env/plan.json" {
		t.Fatalf("GOHSM_FAULTS must override: %+v %v", cfg, err)
	}
	cfg, err = Load(envOf(map[string]string{"HOME": tmp, "GOHSM_FAULTS": "rel.json"}))
	if err != nil || cfg.Faults != "rel.json" {
		t.Fatalf("GOHSM_FAULTS without a file: %+v %v", cfg, err)
	}
	cfg, err = Load(envOf(map[string]string{"HOME": tmp}))
	if err != nil || cfg.Faults != "" {
		t.Fatalf("no plan by default: %+v %v", cfg, err)
	}
	for _, in := range []string{"faults =", "faults = a\nfaults = b", `faults = "x" y`} {
		if err := Parse(strings.NewReader(in), &Config{}); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// A cluster: the members' addresses as one list (docs/cluster.md).
func TestAddressList(t *testing.T) {
	var cfg Config
	if err := Parse(strings.NewReader("address = 127.0.0.1:7441, 127.0.0.1:7442,[::1]:7443\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Address != "127.0.0.1:7441, 127.0.0.1:7442,[::1]:7443" {
		t.Fatalf("address %q", cfg.Address)
	}
}
