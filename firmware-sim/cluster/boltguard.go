package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// guardedStore is raft's log and stable store, closed safely. raft's
// Shutdown stops raft's own goroutines but not the transport's connection
// handlers, and a handler answers a heartbeat itself (raft's fast path:
// processHeartbeat), which may write the term to the stable store; raft
// panics when that write fails ("failed to save current term: database not
// open"). So Close waits for the calls in progress, and a call that comes
// after it never returns: its goroutine is a handler of a member that is
// going away, and an answer made without the store (or an error, on which
// raft panics) would be worse than none.
type guardedStore struct {
	mu     sync.RWMutex
	closed bool
	s      *raftboltdb.BoltStore
}

var (
	_ raft.LogStore    = (*guardedStore)(nil)
	_ raft.StableStore = (*guardedStore)(nil)
)

// enter holds off Close for one call, or parks a call that comes after it.
func (g *guardedStore) enter() {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		select {} // see the type's comment
	}
}

func (g *guardedStore) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.s.Close()
}

func (g *guardedStore) FirstIndex() (uint64, error) {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.FirstIndex()
}

func (g *guardedStore) LastIndex() (uint64, error) {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.LastIndex()
}

func (g *guardedStore) GetLog(idx uint64, log *raft.Log) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.GetLog(idx, log)
}

func (g *guardedStore) StoreLog(log *raft.Log) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.StoreLog(log)
}

func (g *guardedStore) StoreLogs(logs []*raft.Log) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.StoreLogs(logs)
}

func (g *guardedStore) DeleteRange(min, max uint64) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.DeleteRange(min, max)
}

func (g *guardedStore) Set(k, v []byte) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.Set(k, v)
}

func (g *guardedStore) Get(k []byte) ([]byte, error) {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.Get(k)
}

func (g *guardedStore) SetUint64(k []byte, v uint64) error {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.SetUint64(k, v)
}

func (g *guardedStore) GetUint64(k []byte) (uint64, error) {
	g.enter()
	defer g.mu.RUnlock()
	return g.s.GetUint64(k)
}
