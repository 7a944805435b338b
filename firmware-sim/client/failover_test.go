package client

import (
	"strings"
	"testing"
	"time"

	"github.com/gohsm/gohsm/internal/testpki"
)

// Address lists (a cluster, docs/cluster.md): the client moves to another
// appliance when its own goes away, keeping its session and key handles.
// Two appliances on one store stand in for two members; each is stopped in
// turn, so the client must have changed appliance at least once.
func TestFailoverAddressList(t *testing.T) {
	dir := newStore(t, "tok")
	a1 := newAppliance(t, dir, identities{"c": {"*"}}, nil)
	a2 := newAppliance(t, dir, identities{"c": {"*"}}, nil)
	a2.ca = a1.ca
	a2.restart() // with a1's CA
	a1.listen()
	a2.listen()
	cert := a1.ca.Issue("c", false, time.Time{})
	cfg := testConfig()
	cfg.Address = a1.addr + ", " + a2.addr
	cfg.TLS = testpki.ClientTLS(&cert, a1.ca)
	c, err := New(cfg)
	must(t, err)
	must(t, c.Initialize())
	defer c.Finalize()
	s := userSession(t, c, 0)
	_, priv := ecKey(t, c, s)
	must(t, sign(c, s, priv))
	for round, down := range []*appliance{a1, a2, a1} {
		up := a2
		if down == a2 {
			up = a1
		}
		if round > 0 {
			up.start()
			up.listen()
		}
		down.stop()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := sign(c, s, priv)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no signature through the other appliance: %v", round, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestConfigAddressList(t *testing.T) {
	cfg := testConfig()
	cfg.Address = "127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3"
	if got := cfg.addresses(); strings.Join(got, "|") != "127.0.0.1:1|127.0.0.1:2|127.0.0.1:3" {
		t.Fatalf("addresses %q", got)
	}
	cfg.Address = "127.0.0.1:1,nohost"
	cfg.TLS = nil
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "nohost") {
		t.Fatalf("bad member accepted: %v", err)
	}
}
