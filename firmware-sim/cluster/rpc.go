package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/rpc"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// memberRPC is the member-to-member RPC on the raft port (net/rpc, gob, one
// multiplexed connection per peer), reachable only with a cluster
// certificate (transport.go).
type memberRPC struct{ n *Node }

// JoinRequest asks the leader to add a voter. Device is the joiner's
// device key fingerprint (Config.Device).
type JoinRequest struct{ ID, Addr, Device string }

// Apply appends a forwarded write (the entry's bytes) on the leader and
// returns its result once committed and applied on the leader. A member
// that is not the leader refuses it without touching the log, and the
// forwarder retries with the new leader.
func (m *memberRPC) Apply(data []byte, res *Result) error {
	if err := m.n.started(); err != nil {
		return err
	}
	if m.n.raft.State() != raft.Leader {
		return errors.New(notLeaderMsg)
	}
	if _, err := decodeEntry(data); err != nil {
		return err
	}
	r, err := m.n.applyLocal(data, m.n.cfg.WriteTimeout)
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout) {
			// Not appended to the log: the forwarder may send it again.
			return fmt.Errorf("%s: %v", notLeaderMsg, err)
		}
		return err
	}
	*res = *r
	return nil
}

// ReadIndex returns the leader's applied index after a barrier (see
// Node.Barrier); the argument is the caller's timeout.
func (m *memberRPC) ReadIndex(timeout time.Duration, idx *uint64) error {
	if err := m.n.started(); err != nil {
		return err
	}
	if m.n.raft.State() != raft.Leader {
		return errors.New(notLeaderMsg)
	}
	if timeout <= 0 || timeout > m.n.cfg.ReadTimeout {
		timeout = m.n.cfg.ReadTimeout
	}
	i, err := m.n.reads.do(timeout)
	if err != nil {
		// A read index changes nothing: whatever failed, the caller may
		// ask again (the new leader).
		return fmt.Errorf("%s: %v", notLeaderMsg, err)
	}
	*idx = i
	return nil
}

// Join adds a voter (forwarded to the leader by a follower).
func (m *memberRPC) Join(req JoinRequest, _ *struct{}) error {
	if err := m.n.started(); err != nil {
		return err
	}
	if !m.n.Initialised() {
		return ErrNotInitialised
	}
	if err := m.n.sameDevice(req.ID, req.Device); err != nil {
		return err
	}
	return m.n.forwardMembership("Member.Join", req, func() error {
		return m.n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.Addr), 0, m.n.cfg.WriteTimeout).Error()
	})
}

// Remove removes a member (gohsm cluster leave; a dead member).
func (m *memberRPC) Remove(id string, _ *struct{}) error {
	if err := m.n.started(); err != nil {
		return err
	}
	return m.n.forwardMembership("Member.Remove", id, func() error {
		return m.n.raft.RemoveServer(raft.ServerID(id), 0, m.n.cfg.WriteTimeout).Error()
	})
}

// Backup returns the store's content (a snapshot, sealed records only)
// after a read barrier; the administrator's side encrypts it.
func (m *memberRPC) Backup(_ struct{}, snap *[]byte) error {
	if err := m.n.started(); err != nil {
		return err
	}
	b, err := m.n.Backup()
	*snap = b
	return err
}

// Restore installs a snapshot into a cluster without tokens (through the
// leader, as a log entry).
func (m *memberRPC) Restore(snap []byte, tokens *int) error {
	if err := m.n.started(); err != nil {
		return err
	}
	n, err := m.n.Restore(snap)
	*tokens = n
	return err
}

// Status reports this member's view (gohsm cluster status).
func (m *memberRPC) Status(_ struct{}, st *Status) error {
	if err := m.n.started(); err != nil {
		return err
	}
	*st = m.n.Status()
	return nil
}

// forwardMembership runs a configuration change on the leader.
func (n *Node) forwardMembership(method string, args any, local func() error) error {
	addr, self, err := n.leader()
	if err != nil {
		return err
	}
	if self {
		return local()
	}
	c, err := n.client(addr)
	if err != nil {
		return err
	}
	return callTimeout(c, method, args, &struct{}{}, n.cfg.WriteTimeout)
}

// Remove takes a member out of the configuration (through the leader).
func (n *Node) Remove(id string) error {
	return n.forwardMembership("Member.Remove", id, func() error {
		return n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.WriteTimeout).Error()
	})
}

// Status is one member's view of the cluster.
type Status struct {
	ID, Addr, State  string
	Leader, LeaderID string
	Term             uint64
	LastLogIndex     uint64
	CommitIndex      uint64
	AppliedIndex     uint64 // raft's
	StoreApplied     uint64 // the last write applied to this member's store
	Members          []MemberInfo
	Tokens           int
	Broken           string
	Device           string // Config.Device
}

// MemberInfo is one server of the raft configuration.
type MemberInfo struct{ ID, Addr, Suffrage string }

// Status reports this member's view.
func (n *Node) Status() Status {
	a, id := n.raft.LeaderWithID()
	st := Status{ID: n.cfg.ID, Addr: n.addr, State: n.raft.State().String(), Leader: string(a), LeaderID: string(id),
		LastLogIndex: n.raft.LastIndex(), CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(),
		StoreApplied: n.fsm.Applied(), Tokens: len(n.fsm.Slots()), Device: n.cfg.Device}
	fmt.Sscan(n.raft.Stats()["term"], &st.Term)
	if err := n.fsm.Broken(); err != nil {
		st.Broken = err.Error()
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Members = append(st.Members, MemberInfo{ID: string(s.ID), Addr: string(s.Address), Suffrage: s.Suffrage.String()})
		}
	}
	return st
}

// batcher coalesces concurrent read-index requests. A caller joins the
// next round that starts after it arrived (never one already in flight,
// whose answer may predate a write the caller saw complete), so one round
// trip serves every caller that queued while the previous one ran.
type batcher struct {
	fetch func(time.Duration) (uint64, error)

	mu      sync.Mutex
	next    *round
	running bool
}

type round struct {
	done    chan struct{}
	idx     uint64
	err     error
	timeout time.Duration
}

func newBatcher(fetch func(time.Duration) (uint64, error)) *batcher { return &batcher{fetch: fetch} }

func (b *batcher) do(timeout time.Duration) (uint64, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = &round{done: make(chan struct{}), timeout: timeout}
	}
	r := b.next
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.done:
		return r.idx, r.err
	case <-t.C:
		return 0, errTimeout
	}
}

func (b *batcher) run() {
	for {
		b.mu.Lock()
		r := b.next
		b.next = nil
		if r == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		r.idx, r.err = b.fetch(r.timeout)
		close(r.done)
	}
}

// waitApplied waits until the store has applied index idx.
func (f *fsm) waitApplied(idx uint64, d time.Duration) bool {
	if d <= 0 {
		return f.Applied() >= idx
	}
	deadline := time.Now().Add(d)
	t := time.AfterFunc(d, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer t.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.applied < idx {
		if !time.Now().Before(deadline) {
			return false
		}
		f.cond.Wait()
	}
	return true
}

// Client is an administrator's connection to a member's RPC (gohsm
// cluster status|join|leave), with a cluster certificate.
type Client struct {
	c       *rpc.Client
	timeout time.Duration
}

// Dial connects to the member at addr (its raft port).
func Dial(addr string, conf *tls.Config, timeout time.Duration) (*Client, error) {
	conn, err := dialMember(addr, conf, muxRPC, timeout)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", addr, err)
	}
	return &Client{c: rpc.NewClient(conn), timeout: timeout}, nil
}

// Status is the member's view.
func (c *Client) Status() (Status, error) {
	var st Status
	err := callTimeout(c.c, "Member.Status", struct{}{}, &st, c.timeout)
	return st, err
}

// Join adds the member id at raft address addr as a voter; device is its
// device key fingerprint ("" without a device).
func (c *Client) Join(id, addr, device string) error {
	err := callTimeout(c.c, "Member.Join", JoinRequest{ID: id, Addr: addr, Device: device}, &struct{}{}, c.timeout)
	if err != nil {
		err = rpcErr(err)
	}
	return err
}

// Remove removes the member id from the configuration.
func (c *Client) Remove(id string) error {
	return callTimeout(c.c, "Member.Remove", id, &struct{}{}, c.timeout)
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Backup is the store's content as a snapshot, after a read barrier.
func (n *Node) Backup() ([]byte, error) {
	if err := n.Barrier(); err != nil {
		return nil, err
	}
	return n.fsm.export()
}

// Restore writes a backup's tokens into this cluster, which must have
// none; it returns how many tokens it installed.
func (n *Node) Restore(snap []byte) (int, error) {
	if _, _, err := decodeSnapshot(snap); err != nil {
		return 0, err
	}
	res, err := n.write(&entry{Op: opRestore, Snap: snap})
	if err != nil {
		return 0, err
	}
	return res.Slot, nil
}

// Backup fetches the member's store content (gohsm cluster backup).
func (c *Client) Backup() ([]byte, error) {
	var b []byte
	err := callTimeout(c.c, "Member.Backup", struct{}{}, &b, 10*c.timeout)
	return b, err
}

// Restore installs a backup into a new cluster (gohsm cluster restore).
func (c *Client) Restore(snap []byte) (int, error) {
	var n int
	err := callTimeout(c.c, "Member.Restore", snap, &n, 10*c.timeout)
	return n, err
}

// started fails while the member is still starting: the raft port (and
// so this RPC) is up before raft itself is (raft's transport needs it).
func (n *Node) started() error {
	select {
	case <-n.up:
		return nil
	default:
		return errors.New(notLeaderMsg + ": this member is starting")
	}
}
