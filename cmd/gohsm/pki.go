package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// A development PKI for the appliance: one CA, one server certificate and
// client certificates, ECDSA P-256 throughout. It is for trials and tests
// (gohsm serve --dev makes one in D/pki); a production appliance takes its
// certificates from the organisation's own CA.
//
//	DIR/ca.pem      ca.key      the CA (10 years), kept to issue more clients
//	DIR/server.pem  server.key  localhost, 127.0.0.1, ::1 and every --host (1 year)
//	DIR/client.pem  client.key  CN from --client, default dev-client (1 year)
//	DIR/NAME.pem    NAME.key    gohsm pki client DIR NAME (1 year)
const (
	pkiCAValidity   = 10 * 365 * 24 * time.Hour
	pkiLeafValidity = 365 * 24 * time.Hour
	// pkiBackdate covers clocks a little behind the one that issued.
	pkiBackdate = 5 * time.Minute

	defaultClientName = "dev-client"
)

// pkiFiles are the paths of a PKI directory.
type pkiFiles struct{ dir string }

func (p pkiFiles) path(name string) string { return filepath.Join(p.dir, name) }
func (p pkiFiles) CACert() string          { return p.path("ca.pem") }
func (p pkiFiles) CAKey() string           { return p.path("ca.key") }
func (p pkiFiles) ServerCert() string      { return p.path("server.pem") }
func (p pkiFiles) ServerKey() string       { return p.path("server.key") }
func (p pkiFiles) ClientCert() string      { return p.path("client.pem") }
func (p pkiFiles) ClientKey() string       { return p.path("client.key") }
func (p pkiFiles) all() []string {
	return []string{p.CACert(), p.CAKey(), p.ServerCert(), p.ServerKey(), p.ClientCert(), p.ClientKey()}
}

func pkiCmd(args []string) error {
	err := pkiMain(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func pkiMain(args []string) error {
	if len(args) == 0 {
		pkiUsage(os.Stderr)
		return errors.New("want a subcommand: init, client or fingerprint")
	}
	switch args[0] {
	case "init":
		return pkiInitCmd(args[1:], os.Stdout)
	case "client":
		return pkiClientCmd(args[1:], os.Stdout)
	case "fingerprint":
		return pkiFingerprintCmd(args[1:], os.Stdout)
	case "help", "-h", "--help":
		pkiUsage(os.Stdout)
		return nil
	}
	pkiUsage(os.Stderr)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func pkiUsage(w io.Writer) {
	fmt.Fprint(w, `usage:
  gohsm pki init DIR [--host NAME]... [--client NAME] [--force]
        a development CA, server and client certificate (ECDSA P-256) in DIR
  gohsm pki client DIR NAME [--force]
        one more client certificate (CN NAME) from DIR's CA: DIR/NAME.pem, DIR/NAME.key
  gohsm pki fingerprint CERT.pem
        the SHA-256 of the certificate's public key, for pubkey.NAME in gohsm serve's config

For development and tests only: production appliances use certificates from
their organisation's CA (docs/appliance.md).
`)
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (`gohsm pki init DIR --host h`), which flag.Parse alone
// stops at; `--` ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func pkiInitCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pki init", flag.ContinueOnError)
	var hosts stringList
	fs.Var(&hosts, "host", "another DNS name or IP address of the appliance for the server certificate (repeatable)")
	client := fs.String("client", defaultClientName, "the client certificate's subject CN")
	force := fs.Bool("force", false, "replace an existing PKI in DIR")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: gohsm pki init DIR [--host NAME]... [--client NAME] [--force]")
	}
	p := pkiFiles{pos[0]}
	if err := pkiInit(p.dir, hosts, *client, *force); err != nil {
		return err
	}
	fp, err := certFingerprintFile(p.ClientCert())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, `development PKI in %s (ECDSA P-256; for development and tests only)
  CA:      %s, %s (10 years; keep ca.key to issue more clients: gohsm pki client %s NAME)
  server:  %s, %s (1 year; %s)
  client:  %s, %s (1 year; CN %s)

for gohsm serve's configuration:
  tls_cert = %s
  tls_key = %s
  client_ca = %s
  client.%s = TOKEN-LABEL, ...
  pubkey.%s = %s
`, p.dir, p.CACert(), p.CAKey(), p.dir,
		p.ServerCert(), p.ServerKey(), strings.Join(serverNames(hosts), ", "),
		p.ClientCert(), p.ClientKey(), *client,
		abs(p.ServerCert()), abs(p.ServerKey()), abs(p.CACert()),
		configName(*client), configName(*client), fp)
	return nil
}

func pkiClientCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pki client", flag.ContinueOnError)
	force := fs.Bool("force", false, "replace an existing DIR/NAME.pem and DIR/NAME.key")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("usage: gohsm pki client DIR NAME [--force]")
	}
	certPath, keyPath, err := pkiIssueClient(pos[0], pos[1], *force)
	if err != nil {
		return err
	}
	fp, err := certFingerprintFile(certPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, `client certificate for CN %s (1 year, from %s):
  %s
  %s

for gohsm serve's configuration:
  client.%s = TOKEN-LABEL, ...
  pubkey.%s = %s
`, pos[1], pkiFiles{pos[0]}.CACert(), certPath, keyPath, configName(pos[1]), configName(pos[1]), fp)
	return nil
}

func pkiFingerprintCmd(args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: gohsm pki fingerprint CERT.pem")
	}
	fp, err := certFingerprintFile(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintln(out, fp)
	return nil
}

// configName is how a CN is written after client. in a serve config.
func configName(cn string) string {
	if bareName.MatchString(cn) {
		return cn
	}
	return fmt.Sprintf("%q", cn)
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// serverNames are the server certificate's SANs.
func serverNames(hosts []string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	for _, h := range hosts {
		dup := false
		for _, n := range names {
			dup = dup || strings.EqualFold(n, h)
		}
		if !dup {
			names = append(names, h)
		}
	}
	return names
}

// dnsName is a host name as a certificate SAN may hold it (a leading "*."
// for a wildcard).
var dnsName = regexp.MustCompile(`^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

// fileName is what pki client accepts as NAME: it becomes DIR/NAME.pem.
var fileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// pkiInit writes a new PKI into dir, refusing to replace one unless force.
func pkiInit(dir string, hosts []string, client string, force bool) error {
	p := pkiFiles{dir}
	if err := checkClientName(client); err != nil {
		return err
	}
	for _, h := range hosts {
		if net.ParseIP(h) == nil && (!dnsName.MatchString(h) || len(h) > 253) {
			return fmt.Errorf("--host %q: not an IP address or DNS name", h)
		}
	}
	if !force {
		for _, f := range p.all() {
			if _, err := os.Lstat(f); err == nil {
				return fmt.Errorf("%s exists: %s already holds a PKI (--force replaces it, and every certificate its CA issued stops being trusted)", f, dir)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if err := ensurePrivateDir(dir); err != nil {
		return err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		Subject: pkix.Name{
			CommonName:   "gohsm development CA",
			Organization: []string{"gohsm development (not for production)"},
		},
		NotBefore:             now.Add(-pkiBackdate),
		NotAfter:              now.Add(pkiCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := issue(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "gohsm appliance", Organization: []string{"gohsm development (not for production)"}},
		NotBefore:   now.Add(-pkiBackdate),
		NotAfter:    now.Add(pkiLeafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range serverNames(hosts) {
		if ip := net.ParseIP(n); ip != nil {
			srvTmpl.IPAddresses = append(srvTmpl.IPAddresses, ip)
		} else {
			srvTmpl.DNSNames = append(srvTmpl.DNSNames, n)
		}
	}
	srvDER, err := issue(srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	cliKey, cliDER, err := issueClient(ca, caKey, client, now)
	if err != nil {
		return err
	}
	// The CA last: until it is written, a crash leaves no PKI that looks
	// complete (pkiComplete checks ca.pem).
	for _, w := range []struct {
		cert, key string
		der       []byte
		priv      crypto.Signer
	}{
		{p.ServerCert(), p.ServerKey(), srvDER, srvKey},
		{p.ClientCert(), p.ClientKey(), cliDER, cliKey},
		{p.CACert(), p.CAKey(), caDER, caKey},
	} {
		if err := writeKeyPair(w.cert, w.key, w.der, w.priv); err != nil {
			return err
		}
	}
	return nil
}

// pkiIssueClient issues a client certificate with subject CN name from the
// CA in dir, into dir/name.pem and dir/name.key.
func pkiIssueClient(dir, name string, force bool) (certPath, keyPath string, err error) {
	p := pkiFiles{dir}
	if err := checkClientName(name); err != nil {
		return "", "", err
	}
	if !fileName.MatchString(name) || strings.HasSuffix(name, ".") {
		return "", "", fmt.Errorf("client name %q: for a file name it must be letters, digits, '.', '_', '@' or '-' (up to 64)", name)
	}
	if name == "ca" || name == "server" {
		return "", "", fmt.Errorf("client name %q: would replace the PKI's own %s.pem", name, name)
	}
	certPath, keyPath = p.path(name+".pem"), p.path(name+".key")
	if !force {
		for _, f := range []string{certPath, keyPath} {
			if _, err := os.Lstat(f); err == nil {
				return "", "", fmt.Errorf("%s exists (--force replaces it)", f)
			}
		}
	}
	ca, caKey, err := loadCA(p)
	if err != nil {
		return "", "", err
	}
	key, der, err := issueClient(ca, caKey, name, time.Now())
	if err != nil {
		return "", "", err
	}
	return certPath, keyPath, writeKeyPair(certPath, keyPath, der, key)
}

func checkClientName(name string) error {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "\x00\n\r") {
		return fmt.Errorf("client name %q: want 1 to 64 characters (it becomes the certificate's CN)", name)
	}
	return nil
}

func issueClient(ca *x509.Certificate, caKey crypto.Signer, cn string, now time.Time) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   now.Add(-pkiBackdate),
		NotAfter:    now.Add(pkiLeafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := issue(tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("client certificate %s: %w", cn, err)
	}
	return key, der, nil
}

// issue signs tmpl with a random 128-bit serial and a subject key id.
func issue(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	ski := sha256.Sum256(spki)
	tmpl.SubjectKeyId = ski[:20]
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

func loadCA(p pkiFiles) (*x509.Certificate, crypto.Signer, error) {
	ca, err := readCert(p.CACert())
	if err != nil {
		return nil, nil, err
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", p.CACert())
	}
	kb, err := os.ReadFile(p.CAKey())
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w (a PKI made by gohsm pki init keeps it)", err)
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", p.CAKey())
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.CAKey(), err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok || !publicKeysEqual(signer.Public(), ca.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not belong to %s", p.CAKey(), p.CACert())
	}
	return ca, signer, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// readCert reads the first certificate of a PEM file.
func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM certificate", path)
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return c, nil
		}
	}
}

// certFingerprint is the SHA-256 of the certificate's SubjectPublicKeyInfo,
// as pubkey.NAME in a serve config names it: "sha256:" and 64 hex digits.
// It is the same as
//
//	openssl x509 -in CERT -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum
func certFingerprint(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(h[:])
}

func certFingerprintFile(path string) (string, error) {
	c, err := readCert(path)
	if err != nil {
		return "", err
	}
	return certFingerprint(c), nil
}

// writeKeyPair writes the certificate (0644) and the PKCS#8 key (0600).
func writeKeyPair(certPath, keyPath string, der []byte, key crypto.Signer) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	kpem := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	clear(kder)
	defer clear(kpem)
	if err := writeFileAtomic(keyPath, kpem, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFileAtomic replaces path with data: a crash leaves the old file or
// the new one, never half of one. The mode is set before any byte is
// written.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, a no-op
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ensurePrivateDir creates dir 0700, or checks that an existing one is not
// open to others.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// pkiComplete reports whether dir holds a PKI gohsm pki init made.
func pkiComplete(dir string) bool {
	for _, f := range (pkiFiles{dir}).all() {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	return true
}

// pkiCheck verifies the server and client certificates of dir against its
// CA at time now, for their uses.
func pkiCheck(dir string, now time.Time) error {
	p := pkiFiles{dir}
	ca, err := readCert(p.CACert())
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, c := range []struct {
		path string
		use  x509.ExtKeyUsage
	}{{p.ServerCert(), x509.ExtKeyUsageServerAuth}, {p.ClientCert(), x509.ExtKeyUsageClientAuth}} {
		cert, err := readCert(c.path)
		if err != nil {
			return err
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{c.use}}); err != nil {
			return fmt.Errorf("%s: %w", c.path, err)
		}
	}
	return nil
}
