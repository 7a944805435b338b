package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/hsm/ck"
)

const goodServeConf = `# a production appliance
listen = 0.0.0.0:7443
dir = store                     # relative: next to this file
tls_cert = "/etc/gohsm/server.pem"
tls_key = /etc/gohsm/server.key
client_ca = /etc/gohsm/ca.pem
audit_log = /var/log/gohsm/audit.log
audit_key_file = /etc/gohsm/audit.key
policy = strict
profile = tass
kdf_iterations = 300000
max_pin_tries = 5
max_frame = 4MiB
max_calls_per_client = 32
max_calls = 512
max_bytes_per_client = 8MiB
max_bytes = 100MiB
call_timeout = 10s
handshake_timeout = 5s
idle_timeout = 10m
shutdown_timeout = 45s
max_conns = 100
frame_timeout = 7s
name = "hsm-1 (rack 4)"

client.app1 = payments, "signing, 2"   # two tokens
pubkey.app1 = sha256:0000000000000000000000000000000000000000000000000000000000000001, SHA256:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:02
client."ops team" = *
admin."ops team" = true
admin.provisioner = yes-no-maybe
`

func parseServeConf(t *testing.T, text string) (*serveConfig, error) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "serve.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return loadServeConfig(p)
}

func TestServeConfigGood(t *testing.T) {
	text := strings.Replace(goodServeConf, "admin.provisioner = yes-no-maybe\n", "admin.provisioner = true\n", 1)
	c, err := parseServeConf(t, text)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:7443" || !filepath.IsAbs(c.Dir) || filepath.Base(c.Dir) != "store" ||
		c.TLSCert != "/etc/gohsm/server.pem" || c.TLSKey != "/etc/gohsm/server.key" || c.ClientCA != "/etc/gohsm/ca.pem" ||
		c.AuditLog != "/var/log/gohsm/audit.log" || c.AuditKeyFile != "/etc/gohsm/audit.key" {
		t.Errorf("paths: %+v", c)
	}
	if tass, _ := ck.ProfileByName("tass"); c.Policy != "strict" || c.Profile != tass || c.KDFIterations != 300000 || c.MaxPINTries != 5 {
		t.Errorf("engine: %+v", c)
	}
	if c.MaxFrame != 4<<20 || c.MaxCallsPerClient != 32 || c.MaxCalls != 512 || c.CallTimeout != 10*time.Second ||
		c.HandshakeTimeout != 5*time.Second || c.IdleTimeout != 10*time.Minute || c.ShutdownTimeout != 45*time.Second {
		t.Errorf("limits: %+v", c)
	}
	sc := c.serverConfig()
	if sc.MaxFrame != 4<<20 || sc.MaxCallsPerConn != 32 || sc.MaxCallsTotal != 512 || sc.MaxConns != 100 ||
		sc.MaxBytesPerConn != 8<<20 || sc.MaxBytesTotal != 100<<20 ||
		sc.CallTimeout != 10*time.Second || sc.HandshakeTimeout != 5*time.Second || sc.IdleTimeout != 10*time.Minute ||
		sc.FrameTimeout != 7*time.Second || sc.Name != "hsm-1 (rack 4)" {
		t.Errorf("server config: %+v", sc)
	}
	if def, empty := server.DefaultConfig(), newServeConfig().serverConfig(); def.MaxFrame != empty.MaxFrame ||
		def.MaxCallsPerConn != empty.MaxCallsPerConn || def.CallTimeout != empty.CallTimeout || def.Name != empty.Name {
		t.Errorf("an unset limit is not the server's default: %+v", empty)
	}
	// Unset byte budgets grow with a large max_frame, so that its frames fit.
	big := strings.NewReplacer("max_frame = 4MiB", "max_frame = 128MiB", "max_bytes_per_client = 8MiB\n", "",
		"max_bytes = 100MiB\n", "").Replace(text)
	if cb, err := parseServeConf(t, big); err != nil {
		t.Errorf("max_frame 128MiB alone: %v", err)
	} else if sc := cb.serverConfig(); sc.MaxBytesPerConn != 128<<20 || sc.MaxBytesTotal != 512<<20 {
		t.Errorf("max_frame 128MiB: byte budgets %d, %d", sc.MaxBytesPerConn, sc.MaxBytesTotal)
	}
	app1 := c.Clients["app1"]
	if app1 == nil || !slices.Equal(app1.Partitions, []string{"payments", "signing, 2"}) || app1.All || app1.Admin || len(app1.Pins) != 2 ||
		app1.Pins[0][31] != 1 || app1.Pins[1][31] != 2 {
		t.Errorf("app1: %+v", app1)
	}
	ops := c.Clients["ops team"]
	if ops == nil || !ops.All || !ops.Admin || len(ops.Partitions) != 0 {
		t.Errorf("ops team: %+v", ops)
	}
	if p := c.Clients["provisioner"]; p == nil || !p.Admin || p.All || len(p.Partitions) != 0 {
		t.Errorf("provisioner: %+v", p)
	}
}

// Each kind of bad line, with the words the error must contain.
func TestServeConfigBad(t *testing.T) {
	good := strings.Replace(goodServeConf, "admin.provisioner = yes-no-maybe\n", "", 1)
	if _, err := parseServeConf(t, good); err != nil {
		t.Fatalf("the base file: %v", err)
	}
	drop := func(key string) string {
		var out []string
		for _, l := range strings.Split(good, "\n") {
			if !strings.HasPrefix(l, key+" ") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", good + "lisen = :1\n", `unknown key "lisen"`},
		{"unknown key with a name", good + "partition.app1 = x\n", `unknown key "partition.app1"`},
		{"uppercase key", good + "Listen = :1\n", `unknown key "Listen"`},
		{"no equals", good + "listen\n", "want key = value"},
		{"duplicate", good + "policy = default\n", "policy already set on line 9"},
		{"duplicate client", good + "client.app1 = other\n", "client.app1 already set on line 26"},
		{"bad listen", strings.Replace(good, "0.0.0.0:7443", "7443", 1), "listen \"7443\": want HOST:PORT"},
		{"empty dir", strings.Replace(good, "dir = store", "dir = ", 1), "dir is empty"},
		{"bad quote", strings.Replace(good, `"/etc/gohsm/server.pem"`, `"/etc/gohsm/server.pem`, 1), "bad quoted value"},
		{"text after quote", strings.Replace(good, `"/etc/gohsm/server.pem"`, `"/etc/gohsm/server.pem" x`, 1), "text after quoted value"},
		{"policy", strings.Replace(good, "policy = strict", "policy = lax", 1), `policy "lax": want default or strict`},
		{"profile", strings.Replace(good, "profile = tass", "profile = acme", 1), `profile "acme"`},
		{"kdf", strings.Replace(good, "kdf_iterations = 300000", "kdf_iterations = -1", 1), "kdf_iterations \"-1\": want a positive integer"},
		{"frame", strings.Replace(good, "max_frame = 4MiB", "max_frame = 4GB", 1), "max_frame \"4GB\""},
		{"calls", strings.Replace(good, "max_calls = 512", "max_calls = 0", 1), "max_calls \"0\""},
		{"duration", strings.Replace(good, "call_timeout = 10s", "call_timeout = 10", 1), "call_timeout \"10\": want a positive duration"},
		{"client without name", good + "client = a\n", "client needs a client name"},
		{"client empty name", good + "client.\"\" = a\n", "empty client name"},
		{"client name needs quotes", good + "client.a,b = a\n", "quote a name"},
		{"client empty list", good + "client.x = \n", "empty item"},
		{"client empty item", good + "client.x = a,,b\n", "empty item"},
		{"client star and labels", good + "client.x = *, a\n", "* (every token) stands alone"},
		{"client label too long", good + "client.x = " + strings.Repeat("l", 33) + "\n", "longer than 32 bytes"},
		{"client label twice", good + "client.x = a, a\n", `token "a" twice`},
		{"client half-quoted", good + "client.x = a\"b\n", "quote the whole item"},
		{"admin not bool", goodServeConf, `admin.provisioner "yes-no-maybe": want true or false`},
		{"pubkey no prefix", good + "pubkey.app2 = 00\n", "want sha256:"},
		{"pubkey short", good + "pubkey.app2 = sha256:00\n", "want 64 hex digits"},
		{"client with nothing", good + "admin.idle = false\n", "client idle has neither tokens"},
		{"pin only", good + "pubkey.ghost = sha256:" + strings.Repeat("ab", 32) + "\n", "client ghost has neither tokens"},
		{"no audit log", drop("audit_log"), "audit_log is required: an appliance without an audit log does not start"},
		{"missing several", drop("listen") + "\n" + "", "listen is required"},
		{"no tls", drop("tls_key"), "tls_key is required"},
		{"no clients", strings.Join(strings.Split(good, "\n")[:25], "\n"), "no clients"},
		{"small frame", strings.Replace(good, "max_frame = 4MiB", "max_frame = 1024", 1), "max_frame 1024: at least 65536"},
		{"bytes under frame", strings.Replace(good, "max_bytes_per_client = 8MiB", "max_bytes_per_client = 1MiB", 1),
			"max_bytes_per_client 1048576: at least max_frame (4194304)"},
		{"total under per client", strings.Replace(good, "max_bytes = 100MiB", "max_bytes = 5MiB", 1),
			"max_bytes 5242880: at least max_bytes_per_client (8388608)"},
		{"bytes unit", strings.Replace(good, "max_bytes = 100MiB", "max_bytes = 100MB", 1), `max_bytes "100MB"`},
		{"long name", strings.Replace(good, `name = "hsm-1 (rack 4)"`, "name = "+strings.Repeat("n", 257), 1), "name: at most 256 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseServeConf(t, tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func testCert(t *testing.T, cn string) (*x509.Certificate, string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotAfter: time.Now().Add(time.Hour)}
	der, err := issue(tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, certFingerprint(c)
}

// Clients are named by CN; a pinned public key must match as well.
func TestServeConfigAuthorize(t *testing.T) {
	app1, fp1 := testCert(t, "app1")
	app1Other, _ := testCert(t, "app1") // same CN, another key pair: what a CA could issue to anyone
	ops, _ := testCert(t, "ops team")
	stranger, _ := testCert(t, "stranger")
	c, err := parseServeConf(t, strings.Join([]string{
		"listen = 127.0.0.1:1", "dir = d", "tls_cert = c", "tls_key = k", "client_ca = ca", "audit_log = a",
		"client.app1 = payments, signing",
		"pubkey.app1 = sha256:" + strings.Repeat("00", 32) + ", " + fp1,
		`client."ops team" = *`, `admin."ops team" = true`,
	}, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	id, parts, admin, ok := c.authorize(app1)
	if !ok || id != "app1" || admin || !slices.Equal(parts, []string{"payments", "signing"}) {
		t.Errorf("app1: %q %v %v %v", id, parts, admin, ok)
	}
	if _, _, _, ok := c.authorize(app1Other); ok {
		t.Error("app1's CN with another key was let in despite the pin")
	}
	id, parts, admin, ok = c.authorize(ops)
	if !ok || id != "ops team" || !admin || !slices.Equal(parts, allPartitions) {
		t.Errorf("ops: %q %v %v %v", id, parts, admin, ok)
	}
	if _, _, _, ok := c.authorize(stranger); ok {
		t.Error("a CN the configuration does not name was let in")
	}
	if _, _, _, ok := c.authorize(nil); ok {
		t.Error("no certificate was let in")
	}
}

// The cluster keys (docs/cluster.md): all or nothing beside raft.
func TestServeConfigCluster(t *testing.T) {
	base := strings.Replace(goodServeConf, "admin.provisioner = yes-no-maybe\n", "", 1)
	c := newServeConfig()
	if err := c.parse(strings.NewReader(base + "raft = 127.0.0.1:7451\nraft_join = 127.0.0.1:7450\ncluster_ca = c.pem\nmember_cert = m.pem\nmember_key = m.key\nnode_id = a\n")); err != nil {
		t.Fatal(err)
	}
	c.resolvePaths("/etc/gohsm")
	if c.Cluster.Raft != "127.0.0.1:7451" || c.Cluster.Join != "127.0.0.1:7450" || c.Cluster.CA != "/etc/gohsm/c.pem" || c.Cluster.NodeID != "a" {
		t.Fatalf("cluster %+v", c.Cluster)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	c = newServeConfig()
	if err := c.parse(strings.NewReader(base + "raft = 127.0.0.1:7451\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "member_cert is required") {
		t.Fatalf("raft without certificates: %v", err)
	}
	c = newServeConfig()
	if err := c.parse(strings.NewReader(base + "raft_join = 127.0.0.1:7451\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "need raft") {
		t.Fatalf("raft_join without raft: %v", err)
	}
	c = newServeConfig()
	if err := c.parse(strings.NewReader(base + "raft = nope\n")); err == nil {
		t.Fatal("bad raft address accepted")
	}
}
