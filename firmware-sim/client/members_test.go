package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/testpki"
)

// Clients of a cluster (members.go, rebalance.go). Three appliances on one
// token store stand in for three members: token objects and their handles
// are the same through each, as in a cluster; the cluster's own tests
// (firmware-sim/cluster/failover_client_test.go) run the same client on
// raft members.

// members3 starts three appliances on one store with one CA, listening on
// loopback; mod, if set, adjusts member i's server configuration.
func members3(t *testing.T, mod func(i int, c *server.Config)) []*appliance {
	t.Helper()
	dir := newStore(t, "tok")
	ids := identities{"c": {"*"}, "p": {"*"}}
	var as []*appliance
	for i := range 3 {
		var m func(*server.Config)
		if mod != nil {
			m = func(c *server.Config) { mod(i, c) }
		}
		a := newAppliance(t, dir, ids, m)
		if i > 0 {
			a.ca = as[0].ca
			a.restart()
		}
		a.listen()
		as = append(as, a)
	}
	return as
}

// listClient is an initialised client given every member's address.
func listClient(t *testing.T, as []*appliance, mod ...func(*Config)) *Client {
	t.Helper()
	cert := as[0].ca.Issue("c", false, time.Time{})
	cfg := testConfig()
	var addrs []string
	for _, a := range as {
		addrs = append(addrs, a.addr)
	}
	cfg.Address = strings.Join(addrs, ",")
	cfg.TLS = testpki.ClientTLS(&cert, as[0].ca)
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	must(t, err)
	must(t, c.Initialize())
	t.Cleanup(func() { c.Finalize() })
	return c
}

func noRebalance(c *Config) { c.Rebalance = -1 }

// (a) Each client connects to the least loaded member: with two clients
// pinned to member 0 and one to member 1, the first client given the list
// goes to member 2, and six more fill the members evenly (3 each with the
// pinned ones). Rebalancing is off: this is the choice at connect time.
func TestSpreadByLoad(t *testing.T) {
	as := members3(t, nil)
	perMember := map[string]int{}
	for _, i := range []int{0, 0, 1} {
		as[i].tlsClient("p", noRebalance)
		perMember[as[i].addr]++
	}
	first := listClient(t, as, noRebalance)
	if got := first.Member(); got != as[2].addr {
		t.Fatalf("first list client on %s, want the idle member %s", got, as[2].addr)
	}
	perMember[first.Member()]++
	for range 5 {
		c := listClient(t, as, noRebalance)
		perMember[c.Member()]++
	}
	for _, a := range as {
		if perMember[a.addr] != 3 {
			t.Fatalf("clients per member %v, want 3 on each", perMember)
		}
	}
}

// (b) A member dies: its clients move to the others, sessions and login
// intact. It comes back: clients without session objects return to it
// (rebalancing) with the same session handles, still logged in; the client
// holding a session object never moves.
func TestReturnToRecoveredMember(t *testing.T) {
	as := members3(t, nil)
	fast := func(c *Config) { c.Rebalance = 300 * time.Millisecond }
	type app struct {
		c *Client
		s ck.SessionHandle
	}
	var apps []app
	var priv ck.ObjectHandle
	for i := range 6 {
		c := listClient(t, as, fast)
		s := userSession(t, c, 0)
		if i == 0 {
			_, priv = ecKey(t, c, s)
		}
		apps = append(apps, app{c, s})
	}
	holder := listClient(t, as, fast)
	hs := userSession(t, holder, 0)
	obj, err := holder.GenerateKey(hs, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)}, {Type: ck.CKA_TOKEN, Value: tFalse}, {Type: ck.CKA_ENCRYPT, Value: tTrue}})
	must(t, err)
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
	if why := holderWhy(holder); why != "session objects alive" {
		t.Fatalf("holder movable: %q", why)
	}

	var victim *appliance
	for _, a := range as {
		if a.addr != home {
			victim = a
			break
		}
	}
	dist := func(when string) {
		m := map[string]int{}
		for _, a := range apps {
			m[a.c.Member()]++
		}
		t.Logf("%s: clients per member %v (holder on %s, victim %s)", when, m, home, victim.addr)
	}
	dist("before the kill")
	on := 0
	for _, a := range apps {
		if a.c.Member() == victim.addr {
			on++
		}
	}
	if on == 0 {
		t.Fatal("no client on the member to kill (spread by load)")
	}
	victim.server().Close() // as a crash looks to clients: no GOAWAY
	eventually(t, 10*time.Second, "clients off the dead member", func() error {
		for i, a := range apps {
			if err := sign(a.c, a.s, priv); err != nil {
				return fmt.Errorf("client %d: %v", i, err)
			}
			if m := a.c.Member(); m == victim.addr || m == "" {
				return fmt.Errorf("client %d on %q", i, m)
			}
		}
		return nil
	})
	stayed()
	dist("after the kill")

	victim.start()
	victim.listen()
	var back []app
	eventually(t, 15*time.Second, "a client back on the recovered member", func() error {
		stayed()
		back = back[:0]
		for _, a := range apps {
			if a.c.Member() == victim.addr {
				back = append(back, a)
			}
		}
		if len(back) == 0 {
			return errors.New("none")
		}
		return nil
	})
	dist("after the restart")
	for _, a := range back {
		// The session handle the application had, and its login: a
		// private key signs only in a user session.
		info, err := a.c.GetSessionInfo(a.s)
		must(t, err)
		if info.State != ck.CKS_RW_USER_FUNCTIONS {
			t.Fatalf("session state %v after the move, want CKS_RW_USER_FUNCTIONS", info.State)
		}
		must(t, sign(a.c, a.s, priv))
	}
	stayed()
	// The holder would move if it could: a deliberate check says why not.
	if moved, why := holder.rebalanceOnce(context.Background()); moved || why != "session objects alive" {
		t.Fatalf("holder: moved %v (%q)", moved, why)
	}
	must(t, holder.DestroyObject(hs, obj))
	if why := holderWhy(holder); why != "" {
		t.Fatalf("holder still unmovable after destroying its session object: %q", why)
	}
}

func holderWhy(c *Client) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unmovable()
}

// eventually retries f until it succeeds or within fails the test.
func eventually(t *testing.T, within time.Duration, what string, f func() error) {
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

// errCut stands for the cluster's "no leader" error.
var errCut = errors.New("test: cut off from the leader")

// cutBackend fails C_SignInit (and, with cutCreate, C_CreateObject) as a
// member without a leader does.
type cutBackend struct {
	hsm.Backend
	cut, cutCreate *atomic.Bool
}

func (b cutBackend) CreateObject(s ck.SessionHandle, t []ck.Attribute) (ck.ObjectHandle, error) {
	if b.cutCreate.Load() {
		return 0, fmt.Errorf("create: %w: %w", errCut, ck.CKR_DEVICE_ERROR)
	}
	return b.Backend.CreateObject(s, t)
}

func (b cutBackend) SignInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error {
	if b.cut.Load() {
		return fmt.Errorf("sign init: %w: %w", errCut, ck.CKR_DEVICE_ERROR)
	}
	return b.Backend.SignInit(s, m, key)
}

// (c) A member that cannot reach its leader answers CKR_DEVICE_ERROR with
// TRY_ELSEWHERE: the client moves to another member and the call (C_SignInit:
// safe to send again) succeeds there; the application sees no error. An
// unsafe call (C_CreateObject) so answered returns CKR_DEVICE_ERROR (it may
// have been committed) and the client moves all the same. A client with
// nowhere to go sees the plain CKR_DEVICE_ERROR.
func TestTryElsewhere(t *testing.T) {
	var cut, cutCreate atomic.Bool
	as := members3(t, func(i int, c *server.Config) {
		if i != 1 {
			return
		}
		c.WrapBackend = func(_ string, be hsm.Backend) hsm.Backend { return cutBackend{be, &cut, &cutCreate} }
		c.Unavailable = func(err error) bool { return errors.Is(err, errCut) }
		c.Serving = func() bool { return !cut.Load() }
	})
	for _, i := range []int{0, 0, 2, 2} { // member 1 is the least loaded
		as[i].tlsClient("p", noRebalance)
	}
	c := listClient(t, as, noRebalance)
	if c.Member() != as[1].addr {
		t.Fatalf("client on %s, want %s", c.Member(), as[1].addr)
	}
	s := userSession(t, c, 0)
	_, priv := ecKey(t, c, s)
	must(t, sign(c, s, priv))
	// An unsafe call: its error comes back, and the client leaves.
	c2 := listClient(t, as, noRebalance)
	if c2.Member() != as[1].addr {
		t.Fatalf("second client on %s, want %s", c2.Member(), as[1].addr)
	}
	s2, err := c2.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	cutCreate.Store(true)
	_, err = c2.CreateObject(s2, []ck.Attribute{{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_DATA))},
		{Type: ck.CKA_TOKEN, Value: tTrue}, {Type: ck.CKA_LABEL, Value: []byte("maybe")}})
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	eventually(t, 5*time.Second, "second client off the member", func() error {
		if m := c2.Member(); m == as[1].addr || m == "" {
			return fmt.Errorf("on %q", m)
		}
		return nil
	})
	if _, err := c2.GetSessionInfo(s2); err != nil {
		t.Fatalf("session after the move: %v", err)
	}
	cutCreate.Store(false)
	// A client pinned to member 1 (one address: nowhere to go) gets the
	// error itself.
	pinned := as[1].tlsClient("p", noRebalance)
	ps := userSession(t, pinned, 0)

	cut.Store(true)
	if err := sign(c, s, priv); err != nil {
		t.Fatalf("sign after the member lost its leader: %v", err)
	}
	if m := c.Member(); m == as[1].addr || m == "" {
		t.Fatalf("client still on %q", m)
	}
	info, err := c.GetSessionInfo(s)
	must(t, err)
	if info.State != ck.CKS_RW_USER_FUNCTIONS {
		t.Fatalf("session state %v after the move", info.State)
	}
	wantRV(t, sign(pinned, ps, priv), ck.CKR_DEVICE_ERROR)

	// A probe of member 1 says it cannot serve; the others can.
	probes := c.members.probeAll(context.Background(), time.Second)
	for i, p := range probes {
		if !p.ok || p.w.Version != wire.Version || p.serving() == (i == 1) {
			t.Fatalf("probe of member %d: %+v", i, p)
		}
	}
}

// pickMove: hysteresis, the member without a leader, avoided members.
func TestPickMove(t *testing.T) {
	mk := func(loads ...int) []probe {
		var ps []probe
		for i, l := range loads {
			p := probe{idx: i, ok: l >= 0, w: wire.Welcome{Version: 2, Conns: uint32(max(l, 0))}}
			ps = append(ps, p)
		}
		return ps
	}
	always := func() float64 { return 0 }
	never := func(int) bool { return false }
	for _, tc := range []struct {
		name  string
		ps    []probe
		cur   int
		avoid func(int) bool
		want  int
	}{
		{"balanced", mk(3, 3, 3), 0, never, -1},
		{"one apart: a move would only swap", mk(3, 2, 3), 0, never, -1},
		{"recovered member", mk(4, 3, 0), 0, never, 2},
		{"two on one member, one empty: one leaves", mk(2, 0, -1), 0, never, 1},
		{"one each: stay", mk(1, 1, 0), 0, never, -1},
		{"dead member is no target", mk(4, 3, -1), 0, never, -1},
		{"avoided member is no target", mk(4, 3, 0), 0, func(i int) bool { return i == 2 }, -1},
		{"margin grows with load", mk(40, 37, 37), 0, never, -1},
		{"clear margin at high load", mk(40, 20, 37), 0, never, 1},
	} {
		got := pickMove(tc.ps, tc.cur, 1, tc.avoid, always)
		if got != tc.want {
			t.Errorf("%s: move to %d, want %d", tc.name, got, tc.want)
		}
	}
	ps := mk(1, 5, 5)
	ps[0].w.Status = wire.StatusNoLeader
	if got := pickMove(ps, 0, 1, never, always); got != 1 && got != 2 {
		t.Errorf("member without a leader: move to %d", got)
	}
	// The coin: of a crowded member's clients, about the excess leave.
	moved := 0
	for k := range 1000 {
		coin := func() float64 { return float64(k%100) / 100 }
		if pickMove(mk(6, 6, 0), 0, 1, never, coin) >= 0 {
			moved++
		}
	}
	if moved != 340 { // excess 2 of 6: a third (coins 0.00 to 0.33)
		t.Errorf("moved %d of 1000, want 340", moved)
	}
}

// Session objects and open operations (objects.go): what keeps a client
// from moving, followed through the calls that make and end them.
func TestMovableTracking(t *testing.T) {
	a := newAppliance(t, newStore(t, "tok"), identities{"c": {"*"}}, nil)
	c := a.pipeClient("c")
	s := userSession(t, c, 0)
	why := func(want string) {
		t.Helper()
		if got := holderWhy(c); got != want {
			t.Fatalf("unmovable %q, want %q", got, want)
		}
	}
	why("")
	aes := func(token bool) []ck.Attribute {
		return []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)}, {Type: ck.CKA_TOKEN, Value: attr.Bool(token)},
			{Type: ck.CKA_ENCRYPT, Value: tTrue}}
	}
	tok, err := c.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aes(true))
	must(t, err)
	why("")
	// A copy of a token object without CKA_TOKEN is a token object; with
	// CKA_TOKEN false, a session object.
	cp, err := c.CopyObject(s, tok, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("copy")}})
	must(t, err)
	why("")
	sess, err := c.CopyObject(s, tok, []ck.Attribute{{Type: ck.CKA_TOKEN, Value: tFalse}})
	must(t, err)
	why("session objects alive")
	// A copy of that session object inherits CKA_TOKEN false.
	sess2, err := c.CopyObject(s, sess, nil)
	must(t, err)
	must(t, c.DestroyObject(s, sess))
	why("session objects alive")
	must(t, c.DestroyObject(s, sess2))
	why("")
	// A key pair with a session public key: no template CKA_TOKEN is false.
	pub, _, err := c.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256OID}, {Type: ck.CKA_VERIFY, Value: tTrue}},
		[]ck.Attribute{{Type: ck.CKA_SIGN, Value: tTrue}, {Type: ck.CKA_TOKEN, Value: tTrue}})
	must(t, err)
	why("session objects alive")
	// Another session of the application destroys it (it sees it).
	s2 := userSession(t, c, 0)
	must(t, c.DestroyObject(s2, pub))
	why("")
	// A session object goes with its session.
	_, err = c.GenerateKey(s2, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aes(false))
	must(t, err)
	why("session objects alive")
	must(t, c.CloseSession(s2))
	why("")

	// Operations: open from C_*Init to the end; a size query keeps them.
	gcm := ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	must(t, c.EncryptInit(s, gcm, cp))
	why("operation in progress")
	_, n, err := c.Encrypt(s, []byte("x"), -1)
	must(t, err)
	why("operation in progress")
	_, _, err = c.Encrypt(s, []byte("x"), n)
	must(t, err)
	why("")
	must(t, c.FindObjectsInit(s, nil))
	why("operation in progress")
	_, err = c.FindObjects(s, 10)
	must(t, err)
	why("operation in progress")
	must(t, c.FindObjectsFinal(s))
	why("")
	must(t, c.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	why("operation in progress")
	must(t, c.SessionCancel(s, ck.CKF_DIGEST))
	why("")
	must(t, c.DestroyObject(s, cp))
	must(t, c.DestroyObject(s, tok))
}
