package cluster

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// Result is what applying one entry gave, the same on every member: the
// leader returns it to the writer (through the forwarding RPC when the
// writer is a follower). Conflict is hsm.ErrConflict: a version the change
// was decided on had moved, nothing was written.
type Result struct {
	Gen      uint64 // opCommit: the generation the Put records were stamped with
	First    uint64 // opReserveIDs: the first id reserved
	Slot     int    // opCreateToken: the new token's slot
	Conflict bool
	Err      string // any other failure (the entry wrote nothing)
	Index    uint64 // the entry's raft index
}

func (r *Result) err() error {
	switch {
	case r.Conflict:
		return fmt.Errorf("cluster: %s: %w", r.Err, hsm.ErrConflict)
	case r.Err != "":
		return fmt.Errorf("cluster: %s: %w", r.Err, errApply)
	}
	return nil
}

var errApply = errors.New("replicated write failed")

// fsm applies log entries to the member's copy of the token store (the
// tokens.Dir at its state directory). It is the only writer of that
// directory; the engines read it through their own handles (Storage).
//
// Apply, Snapshot and Restore are called by raft one at a time, on its FSM
// goroutine; mu guards stores for the readers of the slot list (Storage)
// and Persist, which raft runs concurrently with later Applies (it only
// writes bytes captured by Snapshot).
type fsm struct {
	dir  *tokens.Dir
	logf func(string, ...any)

	mu     sync.Mutex
	stores map[int]*tokens.Store
	// applied is the index of the last command entry applied (or of the
	// restored snapshot); cond is broadcast when it moves.
	applied uint64
	cond    *sync.Cond
	// broken is set when a local write failed in a way the other members'
	// did not (a full disk, I/O): this member's copy has diverged and it
	// must not serve it.
	broken error
}

func newFSM(dir *tokens.Dir, logf func(string, ...any)) (*fsm, error) {
	f := &fsm{dir: dir, logf: logf, stores: map[int]*tokens.Store{}}
	f.cond = sync.NewCond(&f.mu)
	slots, err := dir.Slots()
	if err != nil {
		return nil, err
	}
	for _, n := range slots {
		st, err := dir.OpenSlot(n)
		if err != nil {
			return nil, err
		}
		f.stores[n] = st
	}
	return f, nil
}

func (f *fsm) store(slot int) *tokens.Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stores[slot]
}

// Applied is the index of the last command applied here.
func (f *fsm) Applied() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *fsm) setApplied(i uint64) {
	f.mu.Lock()
	if i > f.applied {
		f.applied = i
	}
	f.mu.Unlock()
	f.cond.Broadcast()
}

func (f *fsm) Broken() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.broken
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	res := f.apply(l.Data)
	res.Index = l.Index
	f.setApplied(l.Index)
	return res
}

func (f *fsm) apply(data []byte) *Result {
	x, err := decodeEntry(data)
	if err != nil {
		// Every member decodes the same bytes the same way, so a bad
		// entry is refused everywhere alike.
		return &Result{Err: err.Error()}
	}
	if x.Op == opRestore {
		return f.applyRestore(x)
	}
	if x.Op == opCreateToken {
		st, err := f.dir.Create()
		if err != nil {
			return f.localFailure(x, err)
		}
		ts := st.(*tokens.Store)
		f.mu.Lock()
		f.stores[ts.Slot()] = ts
		f.mu.Unlock()
		return &Result{Slot: ts.Slot()}
	}
	st := f.store(x.Slot)
	if st == nil {
		return &Result{Err: fmt.Sprintf("%s: no token in slot %d", x.Op, x.Slot)}
	}
	res := &Result{}
	switch x.Op {
	case opReinit:
		err = st.Reinit(x.Token)
	case opSaveToken:
		err = st.SaveToken(x.Token)
	case opSaveTokenIf:
		err = st.SaveTokenIf(x.Gen, x.Token)
	case opCommit:
		err = st.Commit(x.Change)
		if err == nil && len(x.Change.Put) > 0 {
			res.Gen = x.Change.Put[0].Gen
		}
	case opReserveIDs:
		res.First, err = st.ReserveIDs(x.N)
	}
	if errors.Is(err, hsm.ErrConflict) {
		return &Result{Conflict: true, Err: fmt.Sprintf("%s slot %d: version conflict", x.Op, x.Slot)}
	}
	if errors.Is(err, ck.CKR_GENERAL_ERROR) {
		// The store refused the entry's content before writing (a bad
		// id, a bad shape): every member refuses it alike.
		return &Result{Err: fmt.Sprintf("%s slot %d: refused: %v", x.Op, x.Slot, err)}
	}
	if err != nil {
		return f.localFailure(x, err)
	}
	return res
}

// localFailure: the store failed to write what every member must write.
// Decoded entries are validated and every precondition failure is a
// Conflict, decided alike everywhere; anything else is this member's disk
// or file, and its copy no longer matches the others'. It stops serving
// (Broken) until an operator restarts it, which rebuilds the copy from a
// snapshot and the log.
func (f *fsm) localFailure(x *entry, err error) *Result {
	f.mu.Lock()
	if f.broken == nil {
		f.broken = fmt.Errorf("cluster: this member's token store failed to apply %s (slot %d): %v; restart it to rebuild its copy", x.Op, x.Slot, err)
	}
	f.mu.Unlock()
	f.logf("%v", f.broken)
	return &Result{Err: fmt.Sprintf("%s slot %d: %v", x.Op, x.Slot, err)}
}

// Snapshot implements raft.FSM: it exports every token (one read
// transaction each) before returning, so that the snapshot is exactly the
// state at the last applied index; Persist only writes the bytes.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	slots := f.Slots()
	applied := f.Applied()
	states := make([]slotState, 0, len(slots))
	for _, n := range slots {
		st, err := f.store(n).ExportState()
		if err != nil {
			return nil, fmt.Errorf("cluster: snapshot of slot %d: %w", n, err)
		}
		states = append(states, slotState{Slot: n, State: st})
	}
	return &snapshot{data: encodeSnapshot(applied, states)}, nil
}

type snapshot struct{ data []byte }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() { clear(s.data) }

// maxSnapshot bounds what Restore reads into memory.
const maxSnapshot = 8 << 30

// Restore implements raft.FSM: every token of the snapshot is made to hold
// exactly its state (tokens.Store.ReplaceState; missing tokens are created
// first, slots are numbered in creation order as on every member).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxSnapshot))
	if err != nil {
		return fmt.Errorf("cluster: restore: %w", err)
	}
	applied, states, err := decodeSnapshot(data)
	clear(data)
	if err != nil {
		return err
	}
	defer f.setApplied(applied)
	for _, s := range states {
		for f.store(s.Slot) == nil {
			st, err := f.dir.Create()
			if err != nil {
				return fmt.Errorf("cluster: restore: %w", err)
			}
			ts := st.(*tokens.Store)
			f.mu.Lock()
			f.stores[ts.Slot()] = ts
			f.mu.Unlock()
			if ts.Slot() > s.Slot {
				return fmt.Errorf("cluster: restore: slot %d is missing here and cannot be made", s.Slot)
			}
		}
		if err := f.store(s.Slot).ReplaceState(s.State); err != nil {
			return fmt.Errorf("cluster: restore: slot %d: %w", s.Slot, err)
		}
	}
	return nil
}

// Slots lists the tokens, in slot order.
func (f *fsm) Slots() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int, 0, len(f.stores))
	for n := range f.stores {
		out = append(out, n)
	}
	sortInts(out)
	return out
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// applyRestore installs a backup's tokens into a cluster that has none
// (a new cluster); every member decides alike from its slot list.
func (f *fsm) applyRestore(x *entry) *Result {
	if len(f.Slots()) > 0 {
		return &Result{Err: "restore: the cluster already has tokens; restore into a new cluster"}
	}
	_, states, err := decodeSnapshot(x.Snap)
	if err != nil {
		return &Result{Err: "restore: " + err.Error()}
	}
	for _, s := range states {
		for f.store(s.Slot) == nil {
			st, err := f.dir.Create()
			if err != nil {
				return f.localFailure(x, err)
			}
			ts := st.(*tokens.Store)
			f.mu.Lock()
			f.stores[ts.Slot()] = ts
			f.mu.Unlock()
		}
		if err := f.store(s.Slot).ReplaceState(s.State); err != nil {
			if errors.Is(err, ck.CKR_GENERAL_ERROR) {
				return &Result{Err: fmt.Sprintf("restore: slot %d: %v", s.Slot, err)}
			}
			return f.localFailure(x, err)
		}
	}
	return &Result{Slot: len(states)}
}

// export is the store's content now, as a snapshot (for a backup).
func (f *fsm) export() ([]byte, error) {
	applied := f.Applied()
	var states []slotState
	for _, n := range f.Slots() {
		st, err := f.store(n).ExportState()
		if err != nil {
			return nil, fmt.Errorf("cluster: backup of slot %d: %w", n, err)
		}
		states = append(states, slotState{Slot: n, State: st})
	}
	return encodeSnapshot(applied, states), nil
}
