package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
)

// The members of a cluster (Config.Address with several addresses).
//
// The unit spread over the members is the client's connection — one
// PKCS#11 application with all its sessions — never single sessions
// (objects.go says why). At every connection (the first, a reconnection,
// a move) the client probes the members: a TLS handshake and a HELLO with
// wire.HelloProbe, answered by WELCOME alone (no engine is made), which
// reports the member's load (connections + calls in flight) and whether it
// can reach its cluster's leader (spec.md, "Clusters"). It connects to the
// least loaded member that can serve, ties broken at random so that many
// clients starting together spread. Probes run in parallel, bounded by a
// third of the connection attempt's time; they are made at connect time
// and at each rebalancing check (rebalance.go), never per call.

// probeGrace is how long the probes wait for the slower members once one
// that can serve has answered: a hung member (SIGSTOPped: TCP accepts, TLS
// never answers) costs a reconnection this much, not the whole bound.
const probeGrace = 250 * time.Millisecond

// members is the address list and what the client learnt of each.
type members struct {
	addrs []string
	tcfg  *tls.Config
	name  string

	mu sync.Mutex
	// avoid: members that answered TRY_ELSEWHERE, skipped until then.
	avoid map[int]time.Time
}

func newMembers(addrs []string, tcfg *tls.Config, name string) *members {
	return &members{addrs: addrs, tcfg: tcfg, name: name, avoid: map[int]time.Time{}}
}

// probe is one member's answer.
type probe struct {
	idx int
	ok  bool
	w   wire.Welcome
	err error
}

// serving: answered, and can serve calls that need the cluster.
func (p probe) serving() bool { return p.ok && p.w.Status&wire.StatusNoLeader == 0 }

// loaded: the answer carries the load (version 2).
func (p probe) loaded() bool { return p.ok && p.w.Version >= 2 }

// avoided reports whether member i answered TRY_ELSEWHERE recently.
func (m *members) avoided(i int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.avoid[i]
	if ok && time.Now().After(t) {
		delete(m.avoid, i)
		return false
	}
	return ok
}

// avoidFor skips member i for d when choosing where to go.
func (m *members) avoidFor(i int, d time.Duration) {
	m.mu.Lock()
	m.avoid[i] = time.Now().Add(d)
	m.mu.Unlock()
}

// probeAll probes every member in parallel within timeout (and ctx).
func (m *members) probeAll(ctx context.Context, timeout time.Duration) []probe {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ch := make(chan probe, len(m.addrs))
	for i := range m.addrs {
		go func() { ch <- m.probeOne(ctx, i) }()
	}
	out := make([]probe, len(m.addrs))
	for i := range out {
		out[i] = probe{idx: i, err: errors.New("no answer in time")}
	}
	var grace <-chan time.Time
	for n := 0; n < len(m.addrs); n++ {
		select {
		case p := <-ch:
			out[p.idx] = p
			if grace == nil && p.serving() {
				t := time.NewTimer(probeGrace)
				defer t.Stop()
				grace = t.C
			}
		case <-grace:
			return out
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// probeOne asks member i for its WELCOME and hangs up.
func (m *members) probeOne(ctx context.Context, i int) probe {
	rwc, err := dialTLS(ctx, m.tcfg, m.addrs[i], false)
	if err != nil {
		return probe{idx: i, err: err}
	}
	defer rwc.Close()
	deadline, _ := ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { rwc.Close() })
	defer stop()
	w, err := handshakeFlags(rwc, m.name, deadline, wire.HelloProbe)
	if err != nil {
		return probe{idx: i, err: err}
	}
	return probe{idx: i, ok: true, w: w}
}

// order is the members to try, best first: those that can serve and
// report their load, least loaded first (ties at random); those that can
// serve without saying their load (version-1 appliances), at random; then
// those that cannot reach a leader or were avoided; then those that did not
// answer the probe (they may answer now). exclude (-1: none) goes last.
func (m *members) order(probes []probe, exclude int) []int {
	type cand struct {
		idx, tier int
		load      uint64
	}
	cands := make([]cand, 0, len(probes))
	for _, p := range probes {
		c := cand{idx: p.idx, tier: 3}
		switch {
		case p.idx == exclude:
			c.tier = 4
		case p.serving() && !m.avoided(p.idx) && p.loaded():
			c.tier, c.load = 0, p.w.Load()
		case p.serving() && !m.avoided(p.idx):
			c.tier = 1
		case p.ok:
			c.tier = 2
		}
		cands = append(cands, c)
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	slices.SortStableFunc(cands, func(a, b cand) int {
		if a.tier != b.tier {
			return a.tier - b.tier
		}
		if a.load < b.load {
			return -1
		}
		if a.load > b.load {
			return 1
		}
		return 0
	})
	out := make([]int, len(cands))
	for i, c := range cands {
		out[i] = c.idx
	}
	return out
}

// dial connects to a member: target first if it is one (a planned move),
// otherwise (or if it fails) the best by a probe of all. It returns the
// connection and the member's index.
func (m *members) dial(ctx context.Context, target int) (io.ReadWriteCloser, int, error) {
	var errs []error
	tried := -1
	if target >= 0 && target < len(m.addrs) {
		rwc, err := dialTLS(ctx, m.tcfg, m.addrs[target], true)
		if err == nil {
			return rwc, target, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.addrs[target], err))
		tried = target
	}
	budget := time.Second
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl) / 3
	}
	probes := m.probeAll(ctx, budget)
	for _, i := range m.order(probes, tried) {
		if ctx.Err() != nil {
			break
		}
		if i == tried {
			continue
		}
		rwc, err := dialTLS(ctx, m.tcfg, m.addrs[i], true)
		if err == nil {
			return rwc, i, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.addrs[i], err))
	}
	if len(errs) == 0 {
		errs = append(errs, ctx.Err())
	}
	return nil, -1, errors.Join(errs...)
}

// rebalanceMargin is how much the load of the client's member without the
// client itself (others) must exceed the best other member's before the
// client moves of its own accord: 1 at least — its member's load with the
// client then exceeds the other's by 2, which one move evens out, while a
// smaller difference would only swap which member is busier and bring the
// client straight back — plus a tenth of the load, so that large members do
// not trade clients over noise in their calls in flight.
func rebalanceMargin(others uint64) uint64 { return 1 + others/10 }

// pickMove decides a voluntary move from the probes: the member to go to,
// or -1. cur is the client's member; own is what the client itself adds to
// cur's load (its connection and its calls in flight). The client moves
// only from a member that is busier than the best other by the margin,
// and then only with probability (its member's excess over the mean) /
// (its member's load), so that of the clients of a crowded member about
// the excess leave at once rather than all of them (they all see the same
// loads); the others look again at their next check.
func pickMove(probes []probe, cur int, own uint64, avoided func(int) bool, coin func() float64) int {
	if cur < 0 || cur >= len(probes) || !probes[cur].loaded() {
		return -1
	}
	curLoad := probes[cur].w.Load()
	others := curLoad - min(own, curLoad)
	best, bestLoad, ties := -1, uint64(0), 0
	total, n := others+own, 1
	for _, p := range probes {
		if p.idx == cur || !p.serving() || !p.loaded() || avoided(p.idx) {
			continue
		}
		l := p.w.Load()
		total += l
		n++
		switch {
		case best < 0 || l < bestLoad:
			best, bestLoad, ties = p.idx, l, 1
		case l == bestLoad:
			ties++
			if coin() < 1/float64(ties) {
				best = p.idx
			}
		}
	}
	if !probes[cur].serving() && best >= 0 {
		return best // the member cannot reach its leader: any that can is better
	}
	if best < 0 || others < bestLoad+rebalanceMargin(others) {
		return -1
	}
	mine := float64(others + own)
	excess := mine - float64(total)/float64(n)
	if excess <= 0 || coin() >= excess/mine {
		return -1
	}
	return best
}
