package cluster

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/testpki"
)

// The appliance's client on raft members (firmware-sim/client: members.go,
// rebalance.go): the server of each member is wired to the member's health
// as cmd/gohsm wires it (server.Config.Unavailable = Unavailable,
// Serving = Node.Serving).

// memberBackend is an engine over a member's replicated store, closing its
// Storage with it.
type memberBackend struct {
	*hsm.Module
	st *Storage
}

func (b *memberBackend) Close() error { return b.st.Close() }

// serveMember serves the appliance protocol over member n's store on
// loopback and returns its address.
func serveMember(t *testing.T, n *Node, ca *testpki.CA) string {
	t.Helper()
	addr, _ := serveMemberAt(t, n, ca, "127.0.0.1:0")
	return addr
}

// serveMemberAt is serveMember on a given address (a restarted member's).
func serveMemberAt(t *testing.T, n *Node, ca *testpki.CA, at string) (string, *server.Server) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Authorize = func(cert *x509.Certificate) (string, []string, bool, bool) {
		return cert.Subject.CommonName, []string{"*"}, false, true
	}
	cfg.Open = func(string) (hsm.Backend, error) {
		st, err := n.Storage()
		if err != nil {
			return nil, err
		}
		hc := hsm.DefaultConfig(st)
		hc.KDFIterations = 10
		m, err := hsm.New(hc)
		if err != nil {
			st.Close()
			return nil, err
		}
		return &memberBackend{Module: m, st: st}, nil
	}
	cfg.TLS = testpki.ServerTLS(ca.Issue("localhost", true, time.Time{}), ca)
	cfg.Unavailable = Unavailable
	cfg.Serving = n.Serving
	cfg.Name = n.ID()
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	for range 100 { // a restarted member's port may linger a moment
		if l, err = net.Listen("tcp", at); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), srv
}

// A member cut off from its leader (its raft stopped: it knows no leader,
// as a member on the minority side of a partition) fails reads after its
// ReadTimeout with CKR_DEVICE_ERROR marked TRY_ELSEWHERE: a client given
// the member list moves to another member and the call succeeds there, with
// its session handle and login; a client that has only that member's
// address gets CKR_DEVICE_ERROR. A probe of the cut member says it has no
// leader.
func TestClientLeavesMemberWithoutLeader(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.ReadTimeout = time.Second })
	initToken(t, tc.nodes[0])
	ca := testpki.NewCA("appliance CA")
	addrs := make([]string, len(tc.nodes))
	for i, n := range tc.nodes {
		addrs[i] = serveMember(t, n, ca)
	}
	cert := ca.Issue("app", false, time.Time{})
	newClient := func(address string) *client.Client {
		cfg := client.DefaultConfig()
		cfg.Address = address
		cfg.TLS = testpki.ClientTLS(&cert, ca)
		cfg.Rebalance = -1 // the move tested is the failover's
		c, err := client.New(cfg)
		check(t, err)
		check(t, c.Initialize())
		t.Cleanup(func() { c.Finalize() })
		return c
	}
	// Three clients given the list spread one per member (least loaded).
	var clients []*client.Client
	on := map[string]*client.Client{}
	for range 3 {
		c := newClient(strings.Join(addrs, ","))
		clients = append(clients, c)
		on[c.Member()] = c
	}
	if len(on) != 3 {
		t.Fatalf("three clients on %d members", len(on))
	}
	leader := tc.leader()
	cut := -1
	for i, n := range tc.nodes {
		if n != leader {
			cut = i
			break
		}
	}
	c := on[addrs[cut]]
	s, err := c.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, c.Login(s, ck.CKU_USER, []byte(userPIN)))
	_, priv, err := c.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}},
			{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}},
		[]ck.Attribute{{Type: ck.CKA_SIGN, Value: attr.Bool(true)}, {Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
			{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)}})
	check(t, err)
	sign := func(c *client.Client, s ck.SessionHandle) error {
		if err := c.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv); err != nil {
			return err
		}
		_, _, err := c.Sign(s, make([]byte, 32), 64)
		return err
	}
	check(t, sign(c, s))
	pinned := newClient(addrs[cut])
	ps, err := pinned.OpenSession(0, ck.CKF_SERIAL_SESSION)
	check(t, err)

	check(t, tc.nodes[cut].raft.Shutdown().Error())
	if tc.nodes[cut].Serving() {
		t.Fatal("a member whose raft stopped says it serves")
	}
	if err := sign(c, s); err != nil {
		t.Fatalf("sign through a member without a leader: %v", err)
	}
	if m := c.Member(); m == addrs[cut] || m == "" {
		t.Fatalf("client still on %q", m)
	}
	info, err := c.GetSessionInfo(s)
	check(t, err)
	if info.State != ck.CKS_RW_USER_FUNCTIONS {
		t.Fatalf("session state %v after the move, want CKS_RW_USER_FUNCTIONS", info.State)
	}
	if err := sign(pinned, ps); hsm.ToRV(err) != ck.CKR_DEVICE_ERROR {
		t.Fatalf("client pinned to the cut member: %v, want CKR_DEVICE_ERROR", err)
	}
	for _, o := range clients {
		if o != c && o.Member() == addrs[cut] {
			t.Fatal("another client moved onto the cut member")
		}
	}
}

// A member is killed (its appliance server and raft stop at once): its
// clients move to the others with their sessions and login. It restarts
// (rebuilding its copy from its log): clients return to it (rebalancing,
// every 300 ms here) with the session handles they had, still logged in;
// the client holding a session object stays where it is, its object intact.
func TestClientsReturnToRestartedMember(t *testing.T) {
	tc := startCluster(t, 3, func(c *Config) { c.ReadTimeout = time.Second })
	initToken(t, tc.nodes[0])
	ca := testpki.NewCA("appliance CA")
	addrs := make([]string, len(tc.nodes))
	srvs := make([]*server.Server, len(tc.nodes))
	for i, n := range tc.nodes {
		addrs[i], srvs[i] = serveMemberAt(t, n, ca, "127.0.0.1:0")
	}
	cert := ca.Issue("app", false, time.Time{})
	newClient := func() *client.Client {
		cfg := client.DefaultConfig()
		cfg.Address = strings.Join(addrs, ",")
		cfg.TLS = testpki.ClientTLS(&cert, ca)
		cfg.Rebalance = 300 * time.Millisecond
		c, err := client.New(cfg)
		check(t, err)
		check(t, c.Initialize())
		t.Cleanup(func() { c.Finalize() })
		return c
	}
	type app struct {
		c *client.Client
		s ck.SessionHandle
	}
	var apps []app
	var priv ck.ObjectHandle
	for i := range 6 {
		c := newClient()
		s, err := c.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		check(t, err)
		check(t, c.Login(s, ck.CKU_USER, []byte(userPIN)))
		if i == 0 {
			_, priv, err = c.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
				[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}},
					{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}},
				[]ck.Attribute{{Type: ck.CKA_SIGN, Value: attr.Bool(true)}, {Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
					{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)}})
			check(t, err)
		}
		apps = append(apps, app{c, s})
	}
	sign := func(c *client.Client, s ck.SessionHandle) error {
		if err := c.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv); err != nil {
			return err
		}
		_, _, err := c.Sign(s, make([]byte, 32), 64)
		return err
	}
	holder := newClient()
	hs, err := holder.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, holder.Login(hs, ck.CKU_USER, []byte(userPIN)))
	obj, err := holder.GenerateKey(hs, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)}, {Type: ck.CKA_TOKEN, Value: attr.Bool(false)}})
	check(t, err)
	home := holder.Member()
	stayed := func() {
		t.Helper()
		if got := holder.Member(); got != home {
			t.Fatalf("the client with a session object moved from %s to %s", home, got)
		}
		if _, err := holder.GetAttributeValue(hs, obj, []ck.AttributeRequest{{Type: ck.CKA_VALUE_LEN, Cap: 8}}); err != nil {
			t.Fatalf("session object gone: %v", err)
		}
	}
	leader := tc.leader()
	victim := -1
	for i, n := range tc.nodes {
		if n != leader && addrs[i] != home {
			victim = i
			break
		}
	}
	on := 0
	for _, a := range apps {
		if a.c.Member() == addrs[victim] {
			on++
		}
	}
	if on == 0 {
		t.Fatalf("no client on member %s before the kill (spread by load)", addrs[victim])
	}
	srvs[victim].Close()
	check(t, tc.nodes[victim].Close())
	waitFor(t, 15*time.Second, "clients off the killed member", func() error {
		for i, a := range apps {
			if err := sign(a.c, a.s); err != nil {
				return fmt.Errorf("client %d: %v", i, err)
			}
			if m := a.c.Member(); m == addrs[victim] || m == "" {
				return fmt.Errorf("client %d on %q", i, m)
			}
		}
		return nil
	})
	stayed()

	n := tc.restart(victim)
	check(t, n.WaitLeader(10*time.Second))
	serveMemberAt(t, n, ca, addrs[victim])
	var back []app
	waitFor(t, 15*time.Second, "a client back on the restarted member", func() error {
		stayed()
		back = back[:0]
		for _, a := range apps {
			if a.c.Member() == addrs[victim] {
				back = append(back, a)
			}
		}
		if len(back) == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	for _, a := range back {
		info, err := a.c.GetSessionInfo(a.s)
		check(t, err)
		if info.State != ck.CKS_RW_USER_FUNCTIONS {
			t.Fatalf("session state %v after returning, want CKS_RW_USER_FUNCTIONS", info.State)
		}
		check(t, sign(a.c, a.s))
	}
	stayed()
}

// waitFor retries f until it succeeds, or fails the test after within.
func waitFor(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
