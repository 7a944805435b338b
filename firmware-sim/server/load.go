package server

import (
	"math"

	"github.com/gohsm/gohsm/firmware-sim/wire"
)

// fillLoad writes the appliance's load and status into a version-2
// WELCOME (spec.md, "Handshake"): the connections it serves other than the
// one being welcomed (engaged: those past WELCOME, so probes and
// handshakes do not count), the calls in flight over all of them, and
// whether, as a cluster member, it can serve calls that need its cluster.
// Clients of a cluster connect to the least loaded member; the two
// counts are what a member spends its CPU on (each connection is one
// engine and its keepalives, each call in flight a worker).
func (s *Server) fillLoad(w *wire.Welcome) {
	if w.Version < 2 {
		return
	}
	w.Conns = clampU32(s.engaged.Load())
	w.Calls = clampU32(s.total.Load())
	if s.cfg.Serving != nil && !s.cfg.Serving() {
		w.Status |= wire.StatusNoLeader
	}
}

func clampU32(v int64) uint32 {
	return uint32(min(max(v, 0), math.MaxUint32))
}

// Stats is what the appliance is doing, for its metrics endpoint.
type Stats struct {
	Conns int64  // connections with an engine (past WELCOME)
	Calls int64  // calls in flight over all connections
	Busy  uint64 // calls answered busy since the start
}

// Stats reads the counters (each atomically; together, nearly at once).
func (s *Server) Stats() Stats {
	return Stats{Conns: s.engaged.Load(), Calls: s.total.Load(), Busy: s.busy.Load()}
}
