package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
)

// The crypto gateway as a dev-mode face: `gohsm serve --dev --dir D
// [--http ADDR]` starts it beside the appliance on the same store, as
// `vault server -dev` starts Vault: plain HTTP on loopback, a transit
// mount at transit/, a root token printed and written to D/token.
//
//	--http ADDR          the gateway's address, loopback only (default
//	                     127.0.0.1:8200, Vault's port; if that is taken, any
//	                     free port, and the printed lines say which); "off":
//	                     no gateway
//	D/token              the root token (a new one each start; the previous
//	                     one is revoked)
//	D/gateway-audit.log  the gateway's audit log (gohsm audit verify)
//	D/gateway-audit.key  its HMAC key (made once, 0600)
//	--http-audit-sync M  its fsync policy: always (default), interval, none

const (
	devHTTP            = "127.0.0.1:8200"
	devTokenFile       = "token"
	devGatewayAudit    = "gateway-audit.log"
	devGatewayAuditKey = "gateway-audit.key"
)

func init() { devFaces = append(devFaces, func() devFace { return &gatewayFace{} }) }

type gatewayFace struct {
	http string
	sync string
	fs   *flag.FlagSet
	run  *gatewayRun
	addr string
}

func (g *gatewayFace) Flags(fs *flag.FlagSet) {
	g.fs = fs
	fs.StringVar(&g.http, "http", devHTTP, `dev mode: the crypto gateway's address (Vault's HTTP API, plain HTTP), loopback only; "off": none`)
	fs.StringVar(&g.sync, "http-audit-sync", "always", "dev mode: the gateway audit log's fsync policy: always (group commit) | interval (every 100 ms) | none")
}

func (g *gatewayFace) Enabled() bool { return g.http != "" && g.http != "off" }

func (g *gatewayFace) Start(env *devEnv) (func(context.Context) error, error) {
	if err := checkLoopback(g.http); err != nil {
		return nil, fmt.Errorf("--http: %s", strings.TrimPrefix(err.Error(), "--listen "))
	}
	mode, ok := auditSyncModes[g.sync]
	if !ok {
		return nil, fmt.Errorf("--http-audit-sync %q: want always, interval or none", g.sync)
	}
	explicit := false
	g.fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "http" })
	ln, err := listenGateway(g.http, !explicit, env.Logger)
	if err != nil {
		return nil, err
	}
	run, err := startGateway(gatewaySpec{
		Open: env.Open, Label: env.Token.Label, PIN: env.Token.UserPIN, Listener: ln,
		AuditLog:     filepath.Join(env.Dir, devGatewayAudit),
		AuditKeyFile: filepath.Join(env.Dir, devGatewayAuditKey),
		TokenFile:    filepath.Join(env.Dir, devTokenFile),
		AuditSync:    mode,
		Logger:       env.Logger,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	g.run, g.addr = run, ln.Addr().String()
	env.Logger.Printf("gateway: listening on http://%s (Vault's HTTP API; transit/ mounted)", g.addr)
	return run.stop, nil
}

func (g *gatewayFace) Usage(env *devEnv) string { return gatewayUsage(env.Dir, g.addr, g.run.root) }

// gatewayUsage is the printed block: lines that work when pasted.
func gatewayUsage(dir, addr, root string) string {
	url := "http://" + addr
	tokFile := filepath.Join(dir, devTokenFile)
	return fmt.Sprintf(`Crypto gateway (Vault's HTTP API, transit/ mounted): %s
Root token:  %s  (also in %s)
Audit log:   %s  (gohsm audit verify %s)

  export VAULT_ADDR=%s VAULT_TOKEN=$(cat %s)
  curl -s -H "X-Vault-Token: $VAULT_TOKEN" -X POST -d '{"plaintext":"aGVsbG8gZ29oc20="}' $VAULT_ADDR/v1/transit/encrypt/demo
  /usr/bin/python3 - <<'EOF'
import base64, hvac
c = hvac.Client(url=%q, token=open(%q).read().strip())
ct = c.secrets.transit.encrypt_data(name="demo", plaintext=base64.b64encode(b"hello gohsm").decode())["data"]["ciphertext"]
print(ct, base64.b64decode(c.secrets.transit.decrypt_data(name="demo", ciphertext=ct)["data"]["plaintext"]).decode())
EOF
`, url, root, tokFile, filepath.Join(dir, devGatewayAudit), filepath.Join(dir, devGatewayAudit), url, tokFile, url, tokFile)
}
