package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Moving the connection to another member of a cluster.
//
// Two things move it besides a dead connection (which the manager
// replaces, conn.go):
//
//   - Rebalancing, every Config.Rebalance (jittered): the client probes
//     the members (members.go) and moves when its member cannot reach its
//     leader, or when it is busier than the least loaded member by a clear
//     margin (pickMove: hysteresis, and a coin so that the clients of one
//     crowded member do not all leave at once). A member that restarts has
//     no load, so clients come back to it this way. The move is voluntary:
//     it happens only when it loses nothing — no session object alive and
//     no operation in progress on any session (objects.go), and no call in
//     flight (the connection is paused, its calls answered, and the check
//     made again before it is dropped) — so the reconnection's restore
//     (sessions re-opened, logged back in, handles unchanged) gives the
//     application exactly what it had.
//   - A TRY_ELSEWHERE answer (spec.md, "Clusters"): the member could not
//     reach its leader. The client pauses the connection, probes the
//     others, and if one can serve, lets the calls in flight finish (within
//     Timeout) and moves there, whatever it loses (the member is as good as
//     dead for it; session objects and operations are lost as in any
//     failover, and reported as such). The answered call is sent again on
//     the new connection if it is safe to run twice (wire.Safe), else the
//     application gets its CKR_DEVICE_ERROR. If no other member can serve,
//     the client stays.
//
// Either way the move is kill + reconnect with Client.target set: the
// manager's next connection goes to the chosen member.

// errMoving ends a connection the client leaves on purpose.
var errMoving = errors.New("moving to another member of the cluster")

// rebalanceLoop checks every interval (±25%) until ctx ends.
func (c *Client) rebalanceLoop(ctx context.Context, every time.Duration) {
	for {
		d := every*3/4 + rand.N(every/2+1)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		if moved, why := c.rebalanceOnce(ctx); moved {
			c.logf("appliance %s: moving to a less busy member", c.cfg.Address)
		} else if why != "" {
			c.logf("appliance %s: rebalance: staying (%s)", c.cfg.Address, why)
		}
	}
}

// rebalanceOnce is one check: it reports whether the client moved, and
// otherwise why not when a move was wanted or not possible to consider
// ("" when the member is the right one).
func (c *Client) rebalanceOnce(ctx context.Context) (bool, string) {
	c.mu.Lock()
	cn := c.cur
	why := c.unmovable()
	c.mu.Unlock()
	if cn == nil || cn.member < 0 {
		return false, "no connection"
	}
	if why != "" {
		return false, why // not worth a probe
	}
	probes := c.members.probeAll(ctx, c.cfg.Timeout/3)
	cn.mu.Lock()
	own := uint64(1 + len(cn.pending))
	cn.mu.Unlock()
	to := pickMove(probes, cn.member, own, c.members.avoided, rand.Float64)
	if to < 0 {
		return false, ""
	}
	return c.move(cn, to, false)
}

// tryElsewhere starts leaving cn after a TRY_ELSEWHERE answer: it pauses
// the connection at once (so that a call put back in the queue is not sent
// to the same member again) and decides on another goroutine. At most one
// such decision per Timeout/2: a member without a leader answers every call
// so, and one look around is enough. It reports whether cn is being left
// or replaced (so a safe call may wait for the next connection), false
// when the client stays on it (one address, or it looked around just now).
func (c *Client) tryElsewhere(cn *conn) bool {
	if c.members == nil || cn.member < 0 {
		return false
	}
	c.mu.Lock()
	if cn.moving || c.cur != cn {
		c.mu.Unlock()
		return true // a move is being decided, or the connection is going
	}
	if time.Since(c.lastLeave) < c.cfg.Timeout/2 {
		c.mu.Unlock()
		return false
	}
	c.lastLeave = time.Now()
	cn.moving = true
	c.cur = nil
	ctx := c.ctx
	c.mu.Unlock()
	c.members.avoidFor(cn.member, max(c.cfg.rebalanceEvery(), 2*c.cfg.Timeout))
	go func() {
		probes := c.members.probeAll(ctx, c.cfg.Timeout/3)
		to := -1
		for _, i := range c.members.order(probes, cn.member) {
			if i != cn.member && probes[i].serving() && !c.members.avoided(i) {
				to = i
				break
			}
		}
		if to < 0 {
			c.logf("appliance %s: member %s cannot reach its leader, and no other member can serve; staying",
				c.cfg.Address, c.members.addrs[cn.member])
			c.resume(cn)
			return
		}
		c.logf("appliance %s: member %s cannot reach its leader; moving to %s",
			c.cfg.Address, c.members.addrs[cn.member], c.members.addrs[to])
		c.leave(ctx, cn, to, true)
	}()
	return true
}

// move pauses cn and leaves it for member to once its calls in flight are
// answered, if it then loses nothing (or forced). It reports whether it
// left, and otherwise why not.
func (c *Client) move(cn *conn, to int, forced bool) (bool, string) {
	c.mu.Lock()
	if c.cur != cn || cn.moving || cn.draining.Load() {
		c.mu.Unlock()
		return false, "connection changing"
	}
	cn.moving = true
	c.cur = nil // pause: new calls wait in the queue
	ctx := c.ctx
	c.mu.Unlock()
	return c.leave(ctx, cn, to, forced)
}

// leave waits (within Timeout/2, or Timeout when forced) for the paused
// cn's calls in flight, then drops it for member to, or resumes it.
func (c *Client) leave(ctx context.Context, cn *conn, to int, forced bool) (bool, string) {
	wait := c.cfg.Timeout / 2
	if forced {
		wait = c.cfg.Timeout
	}
	deadline := time.Now().Add(wait)
	for {
		cn.mu.Lock()
		n, dead := len(cn.pending), cn.dead
		cn.mu.Unlock()
		if dead {
			return false, "connection lost"
		}
		if n == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case <-cn.done:
		case <-ctx.Done():
			c.resume(cn)
			return false, "finalized"
		}
	}
	c.mu.Lock()
	cn.mu.Lock()
	busy := len(cn.pending) > 0
	cn.mu.Unlock()
	why := ""
	switch {
	case !c.running:
		why = "finalized"
	case forced:
	case busy:
		why = "calls in flight"
	default:
		why = c.unmovable()
	}
	if why != "" {
		c.mu.Unlock()
		c.resume(cn)
		return false, why
	}
	c.target = to
	c.mu.Unlock()
	c.kill(cn, errMoving)
	return true, ""
}

// resume puts a paused connection back in service (unless it died or is
// going away meanwhile).
func (c *Client) resume(cn *conn) {
	c.mu.Lock()
	cn.moving = false
	ok := c.cur == nil && c.running && !cn.draining.Load()
	if ok {
		cn.mu.Lock()
		ok = !cn.dead
		cn.mu.Unlock()
	}
	if ok {
		c.cur = cn
	}
	c.mu.Unlock()
	if ok {
		cn.signal()
	}
}

// Member is the address (from Config.Address) of the cluster member the
// client is connected to now, or "" with one address, a Dialer, or no
// connection: for logs and tests.
func (c *Client) Member() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.member < 0 || c.members == nil {
		return ""
	}
	return c.members.addrs[c.cur.member]
}
