package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Members compare device key fingerprints: a joiner with another device,
// or none, is refused with ErrDeviceMismatch and is not added; one with
// the same joins; a member restarted with another device fails
// CheckDevice against the leader.
func TestDeviceMismatchRefused(t *testing.T) {
	const fp = "dk1:00112233445566778899aabbccddeeff"
	tc := startCluster(t, 1, func(c *Config) { c.Device = fp; slowerRaft(c) })
	for i, dev := range []string{"dk1:ffeeddccbbaa99887766554433221100", ""} {
		cfg := testConfig(t, tc.ca, 5+i, t.TempDir())
		cfg.Device = dev
		slowerRaft(&cfg)
		cfg.Join = tc.nodes[0].Addr()
		n, err := Start(cfg)
		if err == nil {
			n.Close()
			t.Fatalf("a member with device %q joined a cluster with %q", dev, fp)
		}
		if !errors.Is(err, ErrDeviceMismatch) || !strings.Contains(err.Error(), "same device") {
			t.Fatalf("join with device %q: %v", dev, err)
		}
	}
	tc.add(1)
	tc.waitMembers(2)
	check(t, tc.nodes[1].CheckDevice(5*time.Second))
	if st := tc.leader().Status(); len(st.Members) != 2 || st.Device != fp {
		t.Fatalf("members %v, device %q", st.Members, st.Device)
	}

	// Member 1 comes back with another device.
	follower := tc.nodes[1]
	if follower.IsLeader() {
		follower = tc.nodes[0]
	}
	i := 0
	if follower == tc.nodes[1] {
		i = 1
	}
	check(t, follower.Close())
	tc.tune = func(c *Config) { c.Device = ""; slowerRaft(c) }
	n := tc.restart(i)
	err := n.CheckDevice(10 * time.Second)
	if !errors.Is(err, ErrDeviceMismatch) {
		t.Fatalf("restart with no device: %v", err)
	}
}
