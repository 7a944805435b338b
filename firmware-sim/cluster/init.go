package cluster

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Explicit initialisation (gohsm cluster init). A member started without
// raft state, without Config.Bootstrap and without Config.Join runs raft
// with an empty configuration: it never elects itself and serves nothing,
// it waits. Init makes it a cluster of one (raft's BootstrapCluster on the
// running instance), after which the others join through it as usual. A
// member that already has raft state (it was initialised, or joined, or
// bootstrapped itself at start) refuses: initialising twice would make a
// second cluster beside the first.

const (
	notInitMsg     = "cluster: not initialised (gohsm cluster init)"
	alreadyInitMsg = "cluster: already initialised"
)

// ErrNotInitialised is what a member waiting for Init answers to a join or
// any call that needs a cluster; ErrAlreadyInitialised is Init's refusal.
var (
	ErrNotInitialised     = errors.New(notInitMsg)
	ErrAlreadyInitialised = errors.New(alreadyInitMsg)
)

// Initialised reports whether the member belongs to a cluster: it has a
// raft configuration (bootstrapped, initialised, or added by a leader) or
// any log.
func (n *Node) Initialised() bool {
	if n.raft.LastIndex() > 0 {
		return true
	}
	f := n.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// Init makes a new cluster of this one member and waits until it leads.
// It fails with ErrAlreadyInitialised if the member has raft state.
func (n *Node) Init(timeout time.Duration) error {
	if err := n.started(); err != nil {
		return err
	}
	if n.Initialised() {
		return n.alreadyInitialised()
	}
	conf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(n.cfg.ID), Address: raft.ServerAddress(n.addr)}}}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return n.alreadyInitialised()
		}
		return fmt.Errorf("cluster: init: %w", err)
	}
	n.cfg.Logf("cluster: initialised a new cluster: %s (%s), one member", n.cfg.ID, n.addr)
	return n.WaitLeader(timeout)
}

func (n *Node) alreadyInitialised() error {
	st := n.Status()
	return fmt.Errorf("%w: member %s is in a cluster of %d member(s), leader %q; nothing done (init makes a new cluster: only on a member started to wait for it)",
		ErrAlreadyInitialised, st.ID, len(st.Members), st.LeaderID)
}

// Init asks the member (gohsm cluster init) to initialise a new cluster
// and returns its status after.
func (c *Client) Init() (Status, error) {
	var st Status
	err := callTimeout(c.c, "Member.Init", struct{}{}, &st, 2*c.timeout)
	if err != nil {
		err = rpcErr(err)
	}
	return st, err
}

// Init is gohsm cluster init on this member.
func (m *memberRPC) Init(_ struct{}, st *Status) error {
	if err := m.n.started(); err != nil {
		return err
	}
	if err := m.n.Init(m.n.cfg.WriteTimeout); err != nil {
		return err
	}
	*st = m.n.Status()
	return nil
}

// rpcErr maps an RPC error's text (net/rpc carries only text) back to
// the errors callers test with errors.Is.
func rpcErr(err error) error {
	text := err.Error()
	for _, e := range []error{ErrDeviceMismatch, ErrAlreadyInitialised, ErrNotInitialised} {
		if i := strings.Index(text, e.Error()); i >= 0 {
			if errors.Is(err, e) {
				return err
			}
			return fmt.Errorf("%s%w%s", text[:i], e, text[i+len(e.Error()):])
		}
	}
	return err
}
