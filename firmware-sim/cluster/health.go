package cluster

import (
	"errors"

	"github.com/hashicorp/raft"
)

// What a member tells the appliance's clients about itself, so that they
// go to another member when this one cannot serve (docs/cluster.md, "The
// module"; firmware-sim/wire/spec.md, "Clusters"). cmd/gohsm wires these
// into server.Config (Unavailable, Serving) for a cluster member.

// Unavailable reports whether err, returned by a call on an engine over a
// member's Storage, means that this member could not reach its cluster's
// leader (no leader known, the leader unreachable, the read barrier or the
// write timed out, leadership lost, raft shut down): another member may
// serve the call. The error is CKR_DEVICE_ERROR either way; this is how the
// server tells it apart from a real device error (server.Config.Unavailable).
//
// A write that failed this way may or may not have been committed (Node.write);
// the client only sends again the calls that are safe to run twice.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	return retryable(err) || errors.Is(err, errTimeout) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrRaftShutdown)
}

// Serving reports whether the member can serve calls that need its cluster
// now: its copy is not broken and it knows a leader (raft clears the leader
// when a follower misses heartbeats, when it stands for election, and at
// shutdown, so a member cut off from the majority answers false within an
// election timeout). server.Config.Serving: WELCOME tells clients.
func (n *Node) Serving() bool {
	if n.fsm == nil || n.fsm.Broken() != nil || n.raft == nil {
		return false
	}
	addr, _ := n.raft.LeaderWithID()
	return addr != ""
}
