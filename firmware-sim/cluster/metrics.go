package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metrics of one member (gohsm serve's metrics endpoint):
// its own view, read from raft and the state machine at each scrape, so
// each member is its own scrape target (as Prometheus expects) and a
// scrape costs no network round trip. The names and the member label are
// those of gohsm cluster metrics, which prints every member's line by
// asking each one.
//
//	gohsm_cluster_leader{member}               1 if this member leads
//	gohsm_cluster_has_leader{member}           1 if it knows a leader
//	gohsm_cluster_term{member}                 raft term
//	gohsm_cluster_last_log_index{member}       last index in its log
//	gohsm_cluster_commit_index{member}         commit index it knows
//	gohsm_cluster_applied_index{member}        raft's applied index
//	gohsm_cluster_store_applied_index{member}  last write applied to its store
//	gohsm_cluster_lag{member}                  commit index - applied index (as it knows the commit index)
//	gohsm_cluster_members{member}              servers in the configuration
//	gohsm_cluster_member{member,peer,addr,suffrage}  1 per server of the configuration
//	gohsm_cluster_tokens{member}               tokens in the replicated store
//	gohsm_cluster_broken{member}               1 if its store copy failed (cluster status: BROKEN)
//	gohsm_cluster_initialised{member}          0 while it waits for gohsm cluster init
//
// On a follower, the commit index is the leader's as of its last
// AppendEntries (every heartbeat), so lag is how far its store is behind
// what it has heard of.
type collector struct{ n *Node }

var (
	mLeader      = desc("leader", "1 if this member is the raft leader.")
	mHasLeader   = desc("has_leader", "1 if this member knows a leader.")
	mTerm        = desc("term", "The raft term.")
	mLastLog     = desc("last_log_index", "The last index in this member's raft log.")
	mCommit      = desc("commit_index", "The raft commit index this member knows.")
	mApplied     = desc("applied_index", "Raft's applied index on this member.")
	mStore       = desc("store_applied_index", "The index of the last write applied to this member's store.")
	mLag         = desc("lag", "Commit index minus applied index on this member.")
	mMembers     = desc("members", "Servers in the raft configuration.")
	mTokens      = desc("tokens", "Tokens in the replicated store.")
	mBroken      = desc("broken", "1 if this member's store copy failed to apply a write (it serves nothing until restarted).")
	mInitialised = desc("initialised", "0 while the member waits for gohsm cluster init.")
	mMember      = prometheus.NewDesc("gohsm_cluster_member", "1 for each server of the raft configuration, as this member sees it.",
		[]string{"member", "peer", "addr", "suffrage"}, nil)
)

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("gohsm_cluster_"+name, help, []string{"member"}, nil)
}

// Collector is the member's metrics for a prometheus.Registry.
func (n *Node) Collector() prometheus.Collector { return collector{n} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mLeader, mHasLeader, mTerm, mLastLog, mCommit, mApplied, mStore, mLag, mMembers, mTokens, mBroken, mInitialised, mMember} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.n.Status()
	id := st.ID
	g := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, id)
	}
	g(mLeader, b2f(st.State == "Leader"))
	g(mHasLeader, b2f(st.Leader != ""))
	g(mTerm, float64(st.Term))
	g(mLastLog, float64(st.LastLogIndex))
	g(mCommit, float64(st.CommitIndex))
	g(mApplied, float64(st.AppliedIndex))
	g(mStore, float64(st.StoreApplied))
	var lag uint64
	if st.CommitIndex > st.AppliedIndex {
		lag = st.CommitIndex - st.AppliedIndex
	}
	g(mLag, float64(lag))
	g(mMembers, float64(len(st.Members)))
	g(mTokens, float64(st.Tokens))
	g(mBroken, b2f(st.Broken != ""))
	g(mInitialised, b2f(c.n.Initialised()))
	for _, m := range st.Members {
		ch <- prometheus.MustNewConstMetric(mMember, prometheus.GaugeValue, 1, id, m.ID, m.Addr, m.Suffrage)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
