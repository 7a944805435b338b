package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A member started with neither Bootstrap nor Join waits: no leader, a
// joining member is told to wait (and does), until gohsm cluster init
// (Client.Init over the raft port) makes it a cluster of one; the joiner
// then gets in. Init again, on it or on the joined member, is refused and
// changes nothing.
func TestInitWaitingMember(t *testing.T) {
	ca := newCA(t, "cluster-ca")
	cfg0 := testConfig(t, ca, 0, t.TempDir())
	slowerRaft(&cfg0)
	n0, err := Start(cfg0)
	check(t, err)
	t.Cleanup(func() { n0.Close() })
	if n0.Initialised() {
		t.Fatal("a member started without bootstrap or join says it is initialised")
	}
	if err := n0.WaitLeader(time.Second); err == nil {
		t.Fatal("an uninitialised member found a leader")
	}
	if err := n0.Barrier(); err == nil {
		t.Fatal("an uninitialised member passed a read barrier")
	}

	// A joiner started before init waits for it.
	cfg1 := testConfig(t, ca, 1, t.TempDir())
	slowerRaft(&cfg1)
	cfg1.Join = n0.Addr()
	joined := make(chan error, 1)
	var n1 *Node
	go func() {
		var err error
		n1, err = Start(cfg1)
		joined <- err
	}()
	select {
	case err := <-joined:
		t.Fatalf("joined an uninitialised member: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}

	admin, err := Dial(n0.Addr(), ca.memberTLS(t, "admin"), 5*time.Second)
	check(t, err)
	defer admin.Close()
	st, err := admin.Init()
	check(t, err)
	// The joiner keeps asking, so it may already be in by the time the
	// status is read: m0 first, and at most m1 besides.
	if st.LeaderID != "m0" || len(st.Members) == 0 || len(st.Members) > 2 || st.Members[0].ID != "m0" ||
		(len(st.Members) == 2 && st.Members[1].ID != "m1") {
		t.Fatalf("after init: leader %q, members %+v", st.LeaderID, st.Members)
	}
	if err := <-joined; err != nil {
		t.Fatalf("join after init: %v", err)
	}
	t.Cleanup(func() { n1.Close() })
	tc := &testCluster{t: t, ca: ca, nodes: []*Node{n0, n1}}
	tc.waitMembers(2)
	initToken(t, n1) // the store works through the joiner
	if got := labels(t, engine(t, n0)); got != "replicated,(free)" {
		t.Fatalf("tokens on the initialised member: %s", got)
	}

	for _, n := range []*Node{n0, n1} {
		c, err := Dial(n.Addr(), ca.memberTLS(t, "admin"), 5*time.Second)
		check(t, err)
		_, err = c.Init()
		c.Close()
		if !errors.Is(err, ErrAlreadyInitialised) || !strings.Contains(err.Error(), "2 member(s)") {
			t.Fatalf("init on initialised member %s: %v", n.ID(), err)
		}
	}
	tc.waitMembers(2)

	// A member that bootstrapped itself at start refuses too.
	nb, err := Start(func() Config { c := testConfig(t, ca, 2, t.TempDir()); c.Bootstrap = true; return c }())
	check(t, err)
	defer nb.Close()
	check(t, nb.WaitLeader(10*time.Second))
	if err := nb.Init(time.Second); !errors.Is(err, ErrAlreadyInitialised) {
		t.Fatalf("init on a bootstrapped member: %v", err)
	}
}
