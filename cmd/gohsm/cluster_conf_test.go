package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// raft_init and metrics (docs/cluster.md): raft_init is auto or wait and
// needs raft; metrics is HOST:PORT.
func TestServeConfigRaftInitMetrics(t *testing.T) {
	base := strings.Replace(goodServeConf, "admin.provisioner = yes-no-maybe\n", "", 1)
	member := "raft = 127.0.0.1:7451\ncluster_ca = c.pem\nmember_cert = m.pem\nmember_key = m.key\n"
	c := newServeConfig()
	if err := c.parse(strings.NewReader(base + member + "raft_init = wait\nmetrics = 127.0.0.1:9101\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	if c.Cluster.Init != raftInitWait || c.Metrics != "127.0.0.1:9101" {
		t.Fatalf("raft_init %q, metrics %q", c.Cluster.Init, c.Metrics)
	}
	for _, bad := range []string{"raft_init = later\n", "metrics = 9101\n"} {
		c := newServeConfig()
		if err := c.parse(strings.NewReader(base + member + bad)); err == nil {
			t.Errorf("%q accepted", strings.TrimSpace(bad))
		}
	}
	c = newServeConfig()
	if err := c.parse(strings.NewReader(base + "raft_init = wait\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "need raft") {
		t.Fatalf("raft_init without raft: %v", err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9101": true, "[::1]:9101": true, "localhost:9101": true,
		":9101": false, "0.0.0.0:9101": false, "10.1.2.3:9101": false,
	} {
		got, err := loopbackOnly(addr)
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", addr, got, err, want)
		}
	}
	if _, err := loopbackOnly("9101"); err == nil {
		t.Error("no host:port accepted")
	}
}

// Off loopback the metrics endpoint speaks TLS and wants a client
// certificate from client_ca: plain HTTP and a client without a
// certificate get nothing, the appliance's client certificate gets the
// metrics.
func TestMetricsOffLoopbackNeedsClientCert(t *testing.T) {
	p := pkiFiles{t.TempDir()}
	if err := pkiInit(p.dir, nil, devClientName, true); err != nil {
		t.Fatal(err)
	}
	cfg := newServeConfig()
	cfg.TLSCert, cfg.TLSKey, cfg.ClientCA = p.ServerCert(), p.ServerKey(), p.CACert()
	ms, err := startMetrics(cfg, "0.0.0.0:0", nil, nil, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.stop()
	_, port, _ := net.SplitHostPort(ms.Addr().String())
	addr := "127.0.0.1:" + port
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP off loopback answered the metrics")
		}
	}
	caPEM, err := os.ReadFile(p.CACert())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	get := func(certs []tls.Certificate) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: certs}}}
		return c.Get("https://" + addr + "/metrics")
	}
	if resp, err := get(nil); err == nil {
		resp.Body.Close()
		t.Fatalf("no client certificate: %s", resp.Status)
	}
	pair, err := tls.LoadX509KeyPair(p.ClientCert(), p.ClientKey())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := get([]tls.Certificate{pair})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if fams["go_goroutines"] == nil || fams["gohsm_cluster_leader"] != nil {
		t.Fatalf("an appliance that is no member: %d families, cluster series %v", len(fams), fams["gohsm_cluster_leader"] != nil)
	}
}
