package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issue(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) memberTLS(t testing.TB, cn string) *tls.Config {
	t.Helper()
	c, err := MemberTLS(ca.pem, ca.issue(t, cn))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testCluster struct {
	t     testing.TB
	tune  func(*Config)
	ca    *testCA
	nodes []*Node
	dirs  []string
}

func testConfig(t testing.TB, ca *testCA, i int, dir string) Config {
	return Config{
		ID: fmt.Sprintf("m%d", i), Dir: dir, Listen: "127.0.0.1:0", TLS: ca.memberTLS(t, fmt.Sprintf("m%d", i)),
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		WriteTimeout: 5 * time.Second, ReadTimeout: 3 * time.Second,
		Logf: func(f string, a ...any) { t.Logf(f, a...) },
	}
}

// startCluster starts n members on loopback: m0 bootstraps, the others
// join through it.
func startCluster(t testing.TB, n int, tune ...func(*Config)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, ca: newCA(t, "cluster-ca")}
	if len(tune) > 0 {
		tc.tune = tune[0]
	}
	for i := range n {
		tc.add(i)
	}
	tc.waitMembers(n)
	return tc
}

func (tc *testCluster) add(i int) *Node {
	t := tc.t
	dir := t.TempDir()
	cfg := testConfig(t, tc.ca, i, dir)
	if tc.tune != nil {
		tc.tune(&cfg)
	}
	if i == 0 {
		cfg.Bootstrap = true
	} else {
		cfg.Join = tc.live().Addr()
	}
	nd, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if i == 0 {
		if err := nd.WaitLeader(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { nd.Close() })
	for len(tc.nodes) <= i {
		tc.nodes = append(tc.nodes, nil)
		tc.dirs = append(tc.dirs, "")
	}
	tc.nodes[i], tc.dirs[i] = nd, dir
	return nd
}

// restart starts member i again on its directory.
func (tc *testCluster) restart(i int) *Node {
	t := tc.t
	cfg := testConfig(t, tc.ca, i, tc.dirs[i])
	if tc.tune != nil {
		tc.tune(&cfg)
	}
	cfg.Listen = tc.nodes[i].Addr()
	nd, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	tc.nodes[i] = nd
	return nd
}

func (tc *testCluster) live() *Node {
	for _, n := range tc.nodes {
		if n != nil && n.raft.State().String() != "Shutdown" {
			return n
		}
	}
	tc.t.Fatal("no live member")
	return nil
}

func (tc *testCluster) leader() *Node {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range tc.nodes {
			if n != nil && n.IsLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatal("no leader")
	return nil
}

func (tc *testCluster) waitMembers(n int) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		l := tc.leader()
		f := l.raft.GetConfiguration()
		if f.Error() == nil && len(f.Configuration().Servers) == n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatalf("cluster did not reach %d members", n)
}

// engine opens an engine over member n's replicated store.
func engine(t testing.TB, n *Node) *hsm.Module {
	t.Helper()
	st, err := n.Storage()
	if err != nil {
		t.Fatal(err)
	}
	cfg := hsm.DefaultConfig(st)
	cfg.KDFIterations = 10
	m, err := hsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Finalize(); st.Close() })
	return m
}

const (
	soPIN   = "so-pin-1"
	userPIN = "user-pin-77"
)

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// initToken makes the token through an engine on n.
func initToken(t testing.TB, n *Node) {
	t.Helper()
	m := engine(t, n)
	check(t, m.InitToken(0, []byte(soPIN), "replicated"))
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, m.Login(s, ck.CKU_SO, []byte(soPIN)))
	check(t, m.InitPIN(s, []byte(userPIN)))
	check(t, m.CloseSession(s))
}

func userSession(t testing.TB, m *hsm.Module) ck.SessionHandle {
	t.Helper()
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	return s
}

func findLabel(t testing.TB, m *hsm.Module, s ck.SessionHandle, label string) []ck.ObjectHandle {
	t.Helper()
	check(t, m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(label)}}))
	hs, err := m.FindObjects(s, 100)
	check(t, err)
	check(t, m.FindObjectsFinal(s))
	return hs
}

func aesKeyTemplate(label string, value []byte) []ck.Attribute {
	return []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		{Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)},
		{Type: ck.CKA_EXTRACTABLE, Value: attr.Bool(false)},
		{Type: ck.CKA_LABEL, Value: []byte(label)},
		{Type: ck.CKA_VALUE, Value: value},
	}
}

var gcm = ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: make([]byte, 12), TagBits: 128}}
