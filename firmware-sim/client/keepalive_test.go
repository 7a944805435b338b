package client

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm/ck"
)

// slowPings makes every write that is a lone PING frame take a while, as a
// write does on a loaded machine or a congested link.
type slowPings struct {
	io.ReadWriteCloser
	d time.Duration
}

func (s slowPings) Write(p []byte) (int, error) {
	if len(p) == wire.HeaderSize && wire.FrameType(p[4]) == wire.FramePing {
		time.Sleep(s.d)
	}
	return s.ReadWriteCloser.Write(p)
}

// TestCallDuringPing: a call made while the keepalive writer holds the
// write lock is sent when the PING is written, not left in the queue until
// its deadline (a caller that finds the lock taken leaves its call to the
// lock's holder).
func TestCallDuringPing(t *testing.T) {
	dir := newStore(t, "alpha")
	a := newAppliance(t, dir, identities{"app": {"alpha"}}, nil)
	cert := a.ca.Issue("app", false, time.Time{})
	cfg := testConfig()
	cfg.KeepAlive = 10 * time.Millisecond
	c, err := NewWithDialer(cfg, func(ctx context.Context) (io.ReadWriteCloser, error) {
		x, y := net.Pipe()
		go a.server().ServeConn(y, cert.Leaf)
		return slowPings{x, 30 * time.Millisecond}, nil
	})
	must(t, err)
	must(t, c.Initialize())
	defer c.Finalize()
	s := userSession(t, c, 0)
	for i := range 40 {
		// Quiet for longer than the PING interval: a PING is being
		// written when the call comes, most times.
		time.Sleep(15 * time.Millisecond)
		start := time.Now()
		info, err := c.GetSessionInfo(s)
		if err != nil || info.State != ck.CKS_RW_USER_FUNCTIONS {
			t.Fatalf("call %d after %v: %v", i, time.Since(start), err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("call %d took %v", i, d)
		}
	}
}
