package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/server"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// plainRWC hides a pipe's deadlines: both ends then bound their reads with
// timers that close the connection, the path for any io.ReadWriteCloser.
type plainRWC struct{ io.ReadWriteCloser }

func TestSmokePipe(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) { smoke(t, plain) })
	}
}

func smoke(t *testing.T, plain bool) {
	dir := newStore(t, "alpha")
	a := newAppliance(t, dir, identities{"app": {"alpha"}}, func(c *server.Config) { c.IdleTimeout = 2 * time.Second })
	// A generous call bound and frequent PINGs against a 2 s idle limit:
	// under a loaded make test (other packages' tests and appliance
	// processes on the same two cores) a call once waited out a 2 s bound
	// here. What is checked is that PINGs keep a quiet connection, not
	// how fast.
	slack := func(cfg *Config) { cfg.Timeout, cfg.KeepAlive = 10*time.Second, 100*time.Millisecond }
	c := a.pipeClient("app", slack)
	if plain {
		cert := a.ca.Issue("app", false, time.Time{})
		var err error
		cfg := testConfig()
		slack(&cfg)
		c, err = NewWithDialer(cfg, func(ctx context.Context) (io.ReadWriteCloser, error) {
			x, y := net.Pipe()
			go a.server().ServeConn(plainRWC{y}, cert.Leaf)
			return plainRWC{x}, nil
		})
		must(t, err)
		must(t, c.Initialize())
		defer c.Finalize()
	}
	slots, err := c.GetSlotList(true)
	must(t, err)
	if len(slots) != 1 || slots[0] != 0 {
		t.Fatalf("slots %v", slots)
	}
	s := userSession(t, c, 0)
	pub, priv, err := c.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256OID}, {Type: ck.CKA_VERIFY, Value: attr.Bool(true)}},
		[]ck.Attribute{{Type: ck.CKA_SIGN, Value: attr.Bool(true)}})
	must(t, err)
	must(t, c.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv))
	sig, _, err := c.Sign(s, make([]byte, 32), 64)
	must(t, err)
	must(t, c.VerifyInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, pub))
	must(t, c.Verify(s, make([]byte, 32), sig))
	// Quiet for longer than the server's idle timeout: the client's PINGs
	// keep the connection (and the session) alive: no reconnection.
	epoch := func() uint64 { c.mu.Lock(); defer c.mu.Unlock(); return c.epoch }
	before := epoch()
	time.Sleep(2500 * time.Millisecond)
	info, err := c.GetSessionInfo(s)
	must(t, err)
	if info.State != ck.CKS_RW_USER_FUNCTIONS {
		t.Fatalf("state %v after a quiet second", info.State)
	}
	if epoch() != before {
		t.Fatal("the idle connection was dropped despite keepalives")
	}
}

var p256OID = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
