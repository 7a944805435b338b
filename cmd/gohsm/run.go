package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
	"github.com/gohsm/gohsm/tokens"
)

// The demo token's PINs are printed on purpose: it exists so that the
// lines `make run` prints work when pasted. Real tokens are made with
// C_InitToken (pkcs11-tool --init-token) and PINs of the user's choosing.
const (
	demoLabel   = "gohsm-demo"
	demoSOPIN   = "demo-so-pin"
	demoUserPIN = "123456"
)

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	module := fs.String("module", "", "path of libgohsm.so to print in the usage lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := conf.Load(os.Getenv)
	if err != nil {
		return err
	}
	if *module == "" {
		exe, _ := os.Executable()
		*module = filepath.Join(filepath.Dir(exe), "libgohsm.so")
	}
	if _, err := os.Stat(*module); err != nil {
		return fmt.Errorf("module %s: %w (run `make build` first)", *module, err)
	}
	made, err := ensureDemoToken(cfg)
	if err != nil {
		return err
	}
	state := "found"
	if made {
		state = "created"
	}
	sslConf, err := writeOpenSSLConf(cfg.Dir, *module)
	if err != nil {
		return err
	}
	fmt.Printf(`gohsm %s — a software HSM with real PKCS#11 semantics

Token store:  %s  (GOHSM_DIR or GOHSM_CONF choose another)
Demo token:   %s, label %q, user PIN %s, SO PIN %s
Module:       %s

Paste these lines to use it:

`, version, cfg.Dir, state, demoLabel, demoUserPIN, demoSOPIN, *module)
	fmt.Print(localUsage(cfg.Dir, *module, sslConf, demoToken))
	fmt.Println()
	return nil
}

// knownToken is a token whose PINs gohsm printed because it made it: the
// demo token of `gohsm run` and the dev token of `gohsm serve --dev`.
type knownToken struct{ Label, SOPIN, UserPIN string }

var demoToken = knownToken{demoLabel, demoSOPIN, demoUserPIN}

// writeOpenSSLConf writes dir/openssl-pkcs11.cnf for module.
func writeOpenSSLConf(dir, module string) (string, error) {
	sslConf := filepath.Join(dir, "openssl-pkcs11.cnf")
	return sslConf, os.WriteFile(sslConf, []byte(opensslConf(module)), 0o600)
}

// localUsage is the pkcs11-tool and OpenSSL lines for the module in local
// mode on the store dir, with token tok.
func localUsage(dir, module, sslConf string, tok knownToken) string {
	return fmt.Sprintf(`  export GOHSM_DIR=%s
  M=%s
  pkcs11-tool --module $M --list-token-slots
  pkcs11-tool --module $M --token-label %s --login --pin %s --keypairgen --key-type EC:prime256v1 --label demo-ec --id 01
  echo hello > /tmp/gohsm-msg
  pkcs11-tool --module $M --token-label %s --login --pin %s --sign -m ECDSA-SHA256 --label demo-ec -i /tmp/gohsm-msg -o /tmp/gohsm-msg.sig
  pkcs11-tool --module $M --token-label %s --verify -m ECDSA-SHA256 --label demo-ec -i /tmp/gohsm-msg --signature-file /tmp/gohsm-msg.sig

  # OpenSSL 3 through the pkcs11 engine (Debian: libengine-pkcs11-openssl)
  export OPENSSL_CONF=%s
  openssl dgst -engine pkcs11 -keyform engine -sha256 -sign 'pkcs11:token=%s;object=demo-ec;type=private;pin-value=%s' -out /tmp/gohsm-msg.der-sig /tmp/gohsm-msg
  pkcs11-tool --module $M --token-label %s --read-object --type pubkey --label demo-ec -o /tmp/demo-ec.der
  openssl dgst -sha256 -verify <(openssl pkey -pubin -inform DER -in /tmp/demo-ec.der) -signature /tmp/gohsm-msg.der-sig /tmp/gohsm-msg
`, dir, module,
		tok.Label, tok.UserPIN, tok.Label, tok.UserPIN, tok.Label,
		sslConf, tok.Label, tok.UserPIN, tok.Label)
}

// ensureDemoToken initialises the demo token in the store if no token with
// its label exists; it reports whether it made one.
func ensureDemoToken(cfg *conf.Config) (bool, error) {
	_, made, err := ensureKnownToken(cfg, demoToken)
	return made, err
}

// ensureKnownToken returns the first of want and also whose label a token
// of the store has; with none, it initialises want in the free slot (label,
// SO PIN, user PIN) and reports that it made it.
func ensureKnownToken(cfg *conf.Config, want knownToken, also ...knownToken) (knownToken, bool, error) {
	st, err := tokens.Open(cfg.Dir)
	if err != nil {
		return knownToken{}, false, err
	}
	defer st.Close()
	return ensureKnownTokenIn(st, cfg, want, also...)
}

// ensureKnownTokenIn is ensureKnownToken on any storage (a cluster
// member's replicated store: cmd/gohsm/cluster.go).
func ensureKnownTokenIn(st hsm.Storage, cfg *conf.Config, want knownToken, also ...knownToken) (knownToken, bool, error) {
	hc := hsm.DefaultConfig(st)
	hc.Profile = cfg.Profile
	if cfg.KDFIterations > 0 {
		hc.KDFIterations = cfg.KDFIterations
	}
	m, err := hsm.New(hc)
	if err != nil {
		return knownToken{}, false, err
	}
	if err := m.Initialize(); err != nil {
		return knownToken{}, false, err
	}
	defer m.Finalize()
	slots, err := m.GetSlotList(true)
	if err != nil {
		return knownToken{}, false, err
	}
	free := ck.SlotID(^uint64(0))
	labels := map[string]bool{}
	for _, s := range slots {
		info, err := m.GetTokenInfo(s)
		if err != nil {
			return knownToken{}, false, err
		}
		if info.Flags&ck.CKF_TOKEN_INITIALIZED == 0 {
			free = s
			continue
		}
		labels[info.Label] = true
	}
	for _, k := range append([]knownToken{want}, also...) {
		if labels[k.Label] {
			return k, false, nil
		}
	}
	if free == ck.SlotID(^uint64(0)) {
		return knownToken{}, false, errors.New("no free slot")
	}
	if err := m.InitToken(free, []byte(want.SOPIN), want.Label); err != nil {
		return knownToken{}, false, fmt.Errorf("init token %q: %w", want.Label, err)
	}
	s, err := m.OpenSession(free, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return knownToken{}, false, err
	}
	if err := m.Login(s, ck.CKU_SO, []byte(want.SOPIN)); err != nil {
		return knownToken{}, false, err
	}
	if err := m.InitPIN(s, []byte(want.UserPIN)); err != nil {
		return knownToken{}, false, err
	}
	return want, true, m.CloseSession(s)
}

// opensslConf points OpenSSL 3's pkcs11 engine at the module.
func opensslConf(module string) string {
	return `openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
dynamic_path = /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
MODULE_PATH = ` + module + `
init = 0
`
}
