package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gohsm/gohsm/gateway/auth"
	"github.com/gohsm/gohsm/gateway/kv"
)

func makeCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) (*x509.Certificate, *ecdsa.PrivateKey, tls.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}
}

// TestClientCertificates: a verified client certificate mapped to policies
// stands in for a token; an unmapped one is refused like no token.
func TestClientCertificates(t *testing.T) {
	ca, caKey, _ := makeCert(t, "test ca", nil, nil, true)
	_, _, srvPair := makeCert(t, "localhost", ca, caKey, false)
	_, _, svcPair := makeCert(t, "svc", ca, caKey, false)
	_, _, otherPair := makeCert(t, "other", ca, caKey, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	g := newGW(t, gwOpts{configure: func(c *Config) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{srvPair}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS13}
		c.Tokens = auth.NewStore(c.KV, auth.Options{NotFound: kv.ErrNotFound, Certificates: []auth.CertIdentity{{Name: "svc", CommonName: "svc", Policies: []string{"enc"}}}})
	}})
	if _, err := g.s.cfg.Policies.Put("enc", `path "transit/encrypt/*" { capabilities = ["create", "update"] }`); err != nil {
		t.Fatal(err)
	}
	addr := strings.Replace(g.addr, "http://127.0.0.1", "https://localhost", 1)
	call := func(pair *tls.Certificate) (int, string) {
		tc := &tls.Config{RootCAs: pool}
		if pair != nil {
			tc.Certificates = []tls.Certificate{*pair}
		}
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := cl.Post(addr+"/v1/transit/encrypt/k", "application/json", strings.NewReader(`{"plaintext":"aGk="}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := call(&svcPair); st != 200 || !strings.Contains(body, "vault:v1:") {
		t.Fatalf("mapped certificate: %d %s", st, body)
	}
	if st, _ := call(&otherPair); st != 403 {
		t.Fatalf("unmapped certificate: %d", st)
	}
	if st, _ := call(nil); st != 403 {
		t.Fatalf("no certificate: %d", st)
	}
}
