package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pki init writes a chain that verifies: server and client certificates
// against the CA, each for its own use only, ECDSA P-256, the promised
// names, validity and file modes.
func TestPKIInitChain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	var out bytes.Buffer
	if err := pkiInitCmd([]string{dir, "--host", "hsm.example.net", "--host", "10.1.2.3", "--client", "app1"}, &out); err != nil {
		t.Fatal(err)
	}
	p := pkiFiles{dir}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode: %v %v", fi.Mode(), err)
	}
	for _, k := range []string{p.CAKey(), p.ServerKey(), p.ClientKey()} {
		fi, err := os.Stat(k)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v", k, fi.Mode(), err)
		}
		b, _ := os.ReadFile(k)
		blk, _ := pem.Decode(b)
		key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if ek, ok := key.(*ecdsa.PrivateKey); !ok || ek.Curve != elliptic.P256() {
			t.Fatalf("%s: %T, want ECDSA P-256", k, key)
		}
	}
	ca, err := readCert(p.CACert())
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := readCert(p.ServerCert())
	cli, _ := readCert(p.ClientCert())
	now := time.Now()

	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero ||
		ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
		t.Errorf("CA constraints: isCA %v pathlen %d/%v usage %b", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if d := ca.NotAfter.Sub(now); d < 9*365*24*time.Hour || d > 11*365*24*time.Hour {
		t.Errorf("CA validity %v, want 10 years", d)
	}
	for _, c := range []*x509.Certificate{srv, cli} {
		if d := c.NotAfter.Sub(now); d < 364*24*time.Hour || d > 366*24*time.Hour {
			t.Errorf("%s validity %v, want 1 year", c.Subject.CommonName, d)
		}
		if c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature || len(c.ExtKeyUsage) != 1 {
			t.Errorf("%s: isCA %v usage %b ext %v", c.Subject.CommonName, c.IsCA, c.KeyUsage, c.ExtKeyUsage)
		}
		if c.PublicKeyAlgorithm != x509.ECDSA || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			t.Errorf("%s: %v signed %v", c.Subject.CommonName, c.PublicKeyAlgorithm, c.SignatureAlgorithm)
		}
		if !bytes.Equal(c.AuthorityKeyId, ca.SubjectKeyId) || len(c.SubjectKeyId) == 0 {
			t.Errorf("%s: key ids", c.Subject.CommonName)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	verify := func(c *x509.Certificate, name string, use x509.ExtKeyUsage) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{use}})
		return err
	}
	for _, n := range []string{"localhost", "127.0.0.1", "::1", "hsm.example.net", "10.1.2.3"} {
		if err := verify(srv, n, x509.ExtKeyUsageServerAuth); err != nil {
			t.Errorf("server certificate for %s: %v", n, err)
		}
	}
	if err := verify(srv, "other.example.net", x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("server certificate valid for a name it was not made for")
	}
	if !slices.ContainsFunc(srv.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("::1")) }) {
		t.Errorf("server IPs %v", srv.IPAddresses)
	}
	if err := verify(cli, "", x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if cli.Subject.CommonName != "app1" {
		t.Errorf("client CN %q", cli.Subject.CommonName)
	}
	// Each certificate is for its own side only.
	if verify(cli, "", x509.ExtKeyUsageServerAuth) == nil || verify(srv, "localhost", x509.ExtKeyUsageClientAuth) == nil {
		t.Error("a certificate is good for the other side too")
	}
	if err := pkiCheck(dir, now); err != nil {
		t.Errorf("pkiCheck: %v", err)
	}
	if err := pkiCheck(dir, now.Add(400*24*time.Hour)); err == nil {
		t.Error("pkiCheck passes a year and a month later")
	}
	fp := certFingerprint(cli)
	if !strings.Contains(out.String(), "pubkey.app1 = "+fp) || !strings.Contains(out.String(), "client.app1 = ") {
		t.Errorf("printed lines:\n%s", out.String())
	}
	if _, err := parseFingerprint(fp[len("sha256:"):]); err == nil {
		t.Error("fingerprint without sha256: accepted")
	}
	a, err1 := parseFingerprint(fp)
	b, err2 := parseFingerprint("SHA256:" + strings.ToUpper(fp[len("sha256:"):]))
	if err1 != nil || err2 != nil || a != b {
		t.Errorf("fingerprint forms: %v %v", err1, err2)
	}
}

// An existing PKI is kept unless --force; pki client issues from the kept
// CA; bad names are refused.
func TestPKIForceAndClient(t *testing.T) {
	dir := t.TempDir() // exists, mode 0700 from t.TempDir
	if err := pkiInit(dir, nil, "dev-client", false); err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err := pkiInit(dir, nil, "dev-client", false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second init without --force: %v", err)
	}
	if err := pkiInitCmd([]string{"--force", dir}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if bytes.Equal(ca1, ca2) {
		t.Fatal("--force kept the old CA")
	}

	var out bytes.Buffer
	if err := pkiClientCmd([]string{dir, "app2"}, &out); err != nil {
		t.Fatal(err)
	}
	c, err := readCert(filepath.Join(dir, "app2.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := readCert(filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || c.Subject.CommonName != "app2" {
		t.Fatalf("app2: CN %q, %v", c.Subject.CommonName, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "app2.key")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("app2.key mode %v", fi.Mode())
	}
	if err := pkiClientCmd([]string{dir, "app2"}, &out); err == nil {
		t.Fatal("app2 issued twice without --force")
	}
	if err := pkiClientCmd([]string{dir, "app2", "--force"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"ca", "server", "../x", "a/b", "", ".hidden", strings.Repeat("x", 65)} {
		if _, _, err := pkiIssueClient(dir, bad, true); err == nil {
			t.Errorf("client name %q accepted", bad)
		}
	}
	if _, _, err := pkiIssueClient(t.TempDir(), "x", false); err == nil {
		t.Error("issued without a CA")
	}
	if err := pkiInit(filepath.Join(t.TempDir(), "p"), []string{"bad host!"}, "c", false); err == nil {
		t.Error("--host 'bad host!' accepted")
	}
	var fpOut bytes.Buffer
	c2, _ := readCert(filepath.Join(dir, "app2.pem"))
	if err := pkiFingerprintCmd([]string{filepath.Join(dir, "app2.pem")}, &fpOut); err != nil || strings.TrimSpace(fpOut.String()) != certFingerprint(c2) {
		t.Errorf("fingerprint %q, %v", fpOut.String(), err)
	}
}
