package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// Config starts a member.
type Config struct {
	// ID names the member in the raft configuration; unique in the cluster
	// and stable across its restarts.
	ID string
	// Dir holds the member's raft data: Dir/raft.db (log and stable
	// store, bbolt), Dir/snapshots, and Dir/state, its copy of the token
	// store, which the member rebuilds at every start from the latest
	// snapshot and the log (so a crash at any point never leaves a copy
	// that disagrees with the log).
	Dir string
	// Listen is the raft port's address; Advertise, if set, is the address
	// the other members dial (default: the listener's).
	Listen, Advertise string
	// TLS is MemberTLS's configuration (cluster CA, member certificate).
	TLS *tls.Config
	// Bootstrap makes a new cluster of this one member when Dir has no
	// raft state (serve --raft without --join).
	Bootstrap bool
	// Join is a member's raft address to ask for admission when Dir has no
	// raft state; the member forwards the request to the leader. With
	// neither Bootstrap nor Join, a member without raft state waits for
	// Init (gohsm cluster init; init.go).
	Join string
	// WriteTimeout bounds a write (from the engine's call to its commit
	// and local apply); ReadTimeout bounds the read barrier that a read
	// waits for. Past either the call fails with CKR_DEVICE_ERROR.
	WriteTimeout, ReadTimeout time.Duration
	// HeartbeatTimeout and ElectionTimeout are raft's (defaults tuned for
	// a LAN: 500 ms each; a leader's loss is noticed and replaced in about
	// one to two seconds).
	HeartbeatTimeout, ElectionTimeout time.Duration
	// SnapshotThreshold and TrailingLogs are raft's (0: 1024 and 2048).
	SnapshotThreshold, TrailingLogs uint64
	// Device is the fingerprint of the member's device key
	// (firmware-sim/device KeyFingerprint; "" without a device). Records
	// are sealed under the device key, so every member must have the same
	// one: a member refuses to admit one whose Device differs (device.go).
	Device string
	// DeviceRecord, if set, gives the member's device record (its state
	// and secret S) to another member asking over the raft port
	// (gohsm cluster device-copy; device.go).
	DeviceRecord func() (*DeviceRecord, error)
	// Logf gets the member's own messages; RaftLog, if set, raft's.
	Logf    func(format string, args ...any)
	RaftLog io.Writer
}

// Node is a running member.
type Node struct {
	cfg      Config
	raft     *raft.Raft
	fsm      *fsm
	mux      *mux
	trans    *raft.NetworkTransport
	bolt     *guardedStore // raft's log and stable store (boltguard.go)
	stateDir string
	addr     string

	reads *batcher

	// lmu guards epoch (one more at every change of leadership) and ready
	// (the barrier of this epoch's leadership is done; leaderReadIndex).
	lmu   sync.Mutex
	epoch uint64
	ready bool
	done  chan struct{}
	// up is closed once raft runs: the RPC serves nothing before (it
	// listens earlier, for raft's transport).
	up chan struct{}

	cmu     sync.Mutex
	clients map[string]*rpc.Client

	closeOnce sync.Once
	closeErr  error
}

const (
	defaultWriteTimeout = 5 * time.Second
	defaultReadTimeout  = 2 * time.Second
)

// Start starts a member: it opens (or makes) its raft data, rebuilds its
// copy of the store, listens on the raft port, and bootstraps or joins when
// it has no raft state yet.
func Start(cfg Config) (*Node, error) {
	if cfg.ID == "" || cfg.Dir == "" || cfg.Listen == "" || cfg.TLS == nil {
		return nil, errors.New("cluster: Config needs ID, Dir, Listen and TLS")
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = defaultWriteTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = defaultReadTimeout
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 500 * time.Millisecond
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = 500 * time.Millisecond
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = 1024
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = 2048
	}
	raftLog := cfg.RaftLog
	if raftLog == nil {
		raftLog = io.Discard
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: raftLog, Level: hclog.Info})

	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n := &Node{cfg: cfg, stateDir: filepath.Join(cfg.Dir, "state"), clients: map[string]*rpc.Client{}, up: make(chan struct{})}
	n.reads = newBatcher(n.fetchReadIndex)
	// The copy of the store is derived from raft alone: rebuilt from the
	// snapshot raft restores and the log it replays.
	if err := os.RemoveAll(n.stateDir); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	dir, err := tokens.Open(n.stateDir)
	if err != nil {
		return nil, err
	}
	if n.fsm, err = newFSM(dir, cfg.Logf); err != nil {
		dir.Close()
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(cfg.Dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("cluster: raft log: %w", err)
	}
	n.bolt = &guardedStore{s: bolt}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, logger)
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshots: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen %s: %w", cfg.Listen, err)
	}
	var adv net.Addr = ln.Addr()
	if cfg.Advertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", cfg.Advertise); err != nil {
			ln.Close()
			return nil, fmt.Errorf("cluster: advertise %s: %w", cfg.Advertise, err)
		}
	}
	n.addr = adv.String()
	srv := rpc.NewServer()
	if err := srv.RegisterName("Member", &memberRPC{n: n}); err != nil {
		ln.Close()
		return nil, err
	}
	n.mux = newMux(ln, cfg.TLS, adv, func(c net.Conn) { go srv.ServeConn(c) }, cfg.Logf)
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: streamLayer{n.mux}, MaxPool: 3, Timeout: 10 * time.Second, Logger: logger})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = logger
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout / 2
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.SnapshotInterval = 30 * time.Second
	notify := make(chan bool, 16)
	rc.NotifyCh = notify
	n.done = make(chan struct{})
	go n.watchLeadership(notify, n.done)

	has, err := raft.HasExistingState(n.bolt, n.bolt, snaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if !has && cfg.Bootstrap {
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(n.addr)}}}
		if err := raft.BootstrapCluster(rc, n.bolt, n.bolt, snaps, n.trans, conf); err != nil {
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.bolt, n.bolt, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	close(n.up)
	if !has && !cfg.Bootstrap && cfg.Join != "" {
		if err := n.askToJoin(cfg.Join); err != nil {
			return nil, err
		}
	}
	ok = true
	return n, nil
}

// askToJoin asks the member at addr (which forwards to the leader) to add
// this one as a voter, retrying for WriteTimeout*4 — or for up to
// initWait while addr answers that it waits for gohsm cluster init, so
// that the members of a new cluster may start in any order.
func (n *Node) askToJoin(addr string) error {
	start := time.Now()
	deadline := start.Add(4 * n.cfg.WriteTimeout)
	var err error
	var logged time.Time
	for time.Now().Before(deadline) {
		var c *rpc.Client
		if c, err = n.client(addr); err == nil {
			err = callTimeout(c, "Member.Join", JoinRequest{ID: n.cfg.ID, Addr: n.addr, Device: n.cfg.Device}, &struct{}{}, n.cfg.WriteTimeout)
			if err == nil {
				n.cfg.Logf("cluster: joined through %s as %s (%s)", addr, n.cfg.ID, n.addr)
				return nil
			}
			if err = rpcErr(err); errors.Is(err, ErrDeviceMismatch) {
				return fmt.Errorf("cluster: join through %s: %w", addr, err)
			} else if errors.Is(err, ErrNotInitialised) {
				deadline = start.Add(initWait)
				if time.Since(logged) > 10*time.Second {
					n.cfg.Logf("cluster: %s waits for gohsm cluster init; asking again (up to %s in all)", addr, initWait)
					logged = time.Now()
				}
			} else {
				n.dropClient(addr, c)
			}
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-n.done:
			return fmt.Errorf("cluster: join through %s: stopped", addr)
		}
	}
	return fmt.Errorf("cluster: join through %s: %w", addr, err)
}

// initWait bounds how long a joining member waits for the member it asks
// to be initialised.
const initWait = 10 * time.Minute

// ID and Addr are the member's id and advertised raft address.
func (n *Node) ID() string   { return n.cfg.ID }
func (n *Node) Addr() string { return n.addr }

// Raft is the member's raft instance (tests, status).
func (n *Node) Raft() *raft.Raft { return n.raft }

// IsLeader reports whether this member is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// WaitLeader waits until the cluster has a leader this member knows of.
func (n *Node) WaitLeader(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if a, _ := n.raft.LeaderWithID(); a != "" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("cluster: no leader")
}

// Close stops the member: raft (without leaving the configuration), the
// raft port, the log, and its copy of the store.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		if n.done != nil {
			defer close(n.done)
		}
		var errs []error
		if n.raft != nil {
			errs = append(errs, n.raft.Shutdown().Error())
		}
		if n.trans != nil {
			errs = append(errs, n.trans.Close())
		}
		if n.mux != nil {
			n.mux.close()
		}
		n.cmu.Lock()
		for a, c := range n.clients {
			c.Close()
			delete(n.clients, a)
		}
		n.cmu.Unlock()
		if n.bolt != nil {
			errs = append(errs, n.bolt.Close())
		}
		if n.fsm != nil {
			errs = append(errs, n.fsm.dir.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Errors that say a request was not carried out at all, so it may be sent
// again (to the new leader): nothing was appended to the log.
const notLeaderMsg = "cluster: not the leader"

func retryable(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout) || errors.Is(err, rpc.ErrShutdown) ||
		errors.Is(err, errNoLeader) || errors.Is(err, errDial) || strings.Contains(err.Error(), notLeaderMsg)
}

var (
	errNoLeader = errors.New("cluster: no leader")
	errDial     = errors.New("cluster: cannot reach the leader")
	errTimeout  = errors.New("cluster: timed out")
)

// leader returns the leader's address, or errNoLeader.
func (n *Node) leader() (string, bool, error) {
	a, id := n.raft.LeaderWithID()
	if a == "" {
		return "", false, errNoLeader
	}
	return string(a), string(id) == n.cfg.ID, nil
}

// write applies one entry through the leader and returns once it is
// committed and applied here too (so this member's readers see it), or
// fails after WriteTimeout. A write that fails with errTimeout or
// "leadership lost" may or may not have been committed.
func (n *Node) write(x *entry) (*Result, error) {
	if err := n.fsm.Broken(); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ck.CKR_DEVICE_ERROR)
	}
	data := encodeEntry(x)
	deadline := time.Now().Add(n.cfg.WriteTimeout)
	for {
		res, err := n.applyOnce(data, time.Until(deadline))
		if err == nil {
			if !n.fsm.waitApplied(res.Index, time.Until(deadline)) {
				return nil, fmt.Errorf("cluster: %s committed at %d but not applied here in time: %w", x.Op, res.Index, ck.CKR_DEVICE_ERROR)
			}
			if rerr := res.err(); rerr != nil {
				return res, rerr
			}
			return res, nil
		}
		if !retryable(err) || time.Until(deadline) < 20*time.Millisecond {
			n.cfg.Logf("cluster: %s failed (outcome unknown unless refused before the log): %v", x.Op, err)
			return nil, fmt.Errorf("cluster: %s: %w: %w", x.Op, err, ck.CKR_DEVICE_ERROR)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *Node) applyOnce(data []byte, timeout time.Duration) (*Result, error) {
	addr, self, err := n.leader()
	if err != nil {
		return nil, err
	}
	if self {
		return n.applyLocal(data, timeout)
	}
	c, err := n.client(addr)
	if err != nil {
		return nil, err
	}
	var res Result
	if err := callTimeout(c, "Member.Apply", data, &res, timeout); err != nil {
		if errors.Is(err, rpc.ErrShutdown) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			n.dropClient(addr, c)
		}
		return nil, err
	}
	return &res, nil
}

func (n *Node) applyLocal(data []byte, timeout time.Duration) (*Result, error) {
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return nil, err
	}
	res, ok := f.Response().(*Result)
	if !ok {
		return nil, errors.New("cluster: no result from the state machine")
	}
	return res, nil
}

// Barrier makes this member's copy at least as new as every write that
// was committed before it was called (linearizable reads): it learns the
// leader's read index (leaderReadIndex) and waits until this member has
// applied it.
// Concurrent callers share one round trip (batcher). Past ReadTimeout it
// fails with CKR_DEVICE_ERROR: a member cut off from the leader serves no
// reads that might be stale.
func (n *Node) Barrier() error {
	if err := n.fsm.Broken(); err != nil {
		return fmt.Errorf("%w: %w", err, ck.CKR_DEVICE_ERROR)
	}
	deadline := time.Now().Add(n.cfg.ReadTimeout)
	idx, err := n.reads.do(n.cfg.ReadTimeout)
	if err != nil {
		n.cfg.Logf("cluster: read barrier failed: %v", err)
		return fmt.Errorf("cluster: read barrier: %w: %w", err, ck.CKR_DEVICE_ERROR)
	}
	if !n.fsm.waitApplied(idx, time.Until(deadline)) {
		return fmt.Errorf("cluster: read barrier: index %d not applied here in time: %w", idx, ck.CKR_DEVICE_ERROR)
	}
	return nil
}

// fetchReadIndex is one read-index round: on the leader
// leaderReadIndex, elsewhere an RPC to the leader (which batches too). A
// read index changes nothing, so any failure is retried (against whoever
// leads then) until the deadline.
func (n *Node) fetchReadIndex(timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	for {
		idx, err := n.readIndexOnce(time.Until(deadline))
		if err == nil {
			return idx, nil
		}
		if time.Until(deadline) < 20*time.Millisecond {
			return 0, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *Node) readIndexOnce(timeout time.Duration) (uint64, error) {
	addr, self, err := n.leader()
	if err != nil {
		return 0, err
	}
	if self {
		return n.leaderReadIndex(timeout)
	}
	c, err := n.client(addr)
	if err != nil {
		return 0, err
	}
	var idx uint64
	if err := callTimeout(c, "Member.ReadIndex", timeout, &idx, timeout); err != nil {
		if errors.Is(err, rpc.ErrShutdown) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			n.dropClient(addr, c)
			// A read index changes nothing: asking again is safe.
			return 0, fmt.Errorf("%w: %v", errDial, err)
		}
		return 0, err
	}
	return idx, nil
}

// leaderReadIndex is the read index on the leader. A write the leader
// acknowledged (directly or for a follower) returned only after the
// leader's state machine applied it, so once the leader has applied what
// earlier terms committed (one raft barrier per term of leadership: it
// commits the new leader's no-op and everything before it), its applied
// index covers every write completed before the read began — as long as it
// still leads, which VerifyLeader checks with one heartbeat round to a
// majority (no disk write, unlike a barrier per read).
func (n *Node) leaderReadIndex(timeout time.Duration) (uint64, error) {
	n.lmu.Lock()
	epoch, ready := n.epoch, n.ready
	n.lmu.Unlock()
	if !ready {
		if err := n.raft.Barrier(timeout).Error(); err != nil {
			return 0, err
		}
		n.lmu.Lock()
		if n.epoch == epoch {
			n.ready = true
		}
		n.lmu.Unlock()
	}
	idx := n.fsm.Applied()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, err
	}
	n.lmu.Lock()
	same := n.epoch == epoch
	n.lmu.Unlock()
	if !same {
		return 0, raft.ErrNotLeader // leadership changed meanwhile: ask again
	}
	return idx, nil
}

// watchLeadership resets the per-term barrier on every change of
// leadership.
func (n *Node) watchLeadership(ch <-chan bool, done <-chan struct{}) {
	for {
		select {
		case <-ch:
			n.lmu.Lock()
			n.epoch++
			n.ready = false
			n.lmu.Unlock()
		case <-done:
			return
		}
	}
}

// client returns the RPC client for a member, dialing it if needed.
func (n *Node) client(addr string) (*rpc.Client, error) {
	n.cmu.Lock()
	c := n.clients[addr]
	n.cmu.Unlock()
	if c != nil {
		return c, nil
	}
	conn, err := dialMember(addr, n.cfg.TLS, muxRPC, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", errDial, addr, err)
	}
	c = rpc.NewClient(conn)
	n.cmu.Lock()
	if old := n.clients[addr]; old != nil {
		n.cmu.Unlock()
		c.Close()
		return old, nil
	}
	n.clients[addr] = c
	n.cmu.Unlock()
	return c, nil
}

func (n *Node) dropClient(addr string, c *rpc.Client) {
	n.cmu.Lock()
	if n.clients[addr] == c {
		delete(n.clients, addr)
	}
	n.cmu.Unlock()
	c.Close()
}

// callTimeout is c.Call bounded by timeout. A call that times out may
// still complete at the server.
func callTimeout(c *rpc.Client, method string, args, reply any, timeout time.Duration) error {
	call := c.Go(method, args, reply, make(chan *rpc.Call, 1))
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-call.Done:
		return call.Error
	case <-t.C:
		return fmt.Errorf("%s: %w", method, errTimeout)
	}
}
