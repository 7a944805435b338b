package cluster

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// Storage is an engine's view of the replicated token store (hsm.Storage):
// reads from this member's copy through the engine's own handles, every
// write through the leader (Node.write), and a read barrier before the
// engine looks for other writers' changes (Store.Changed). Each engine
// gets its own Storage, as each gets its own tokens.Dir on one machine.
type Storage struct {
	n   *Node
	dir *tokens.Dir

	// mu guards handed: the slots this view gave its engine (Stores,
	// Create, NewStores), so that NewStores gives each token once.
	mu     sync.Mutex
	handed map[int]bool
}

// Storage returns a new view for one engine; Close releases it.
func (n *Node) Storage() (*Storage, error) {
	d, err := tokens.Open(n.stateDir)
	if err != nil {
		return nil, err
	}
	return &Storage{n: n, dir: d, handed: map[int]bool{}}, nil
}

// Close closes the view's handles.
func (s *Storage) Close() error { return s.dir.Close() }

// Stores opens every token of the member's copy, in slot order, after a
// read barrier when the cluster has a leader (an engine that starts on a
// member cut off from the leader starts from what it has, and its first
// read barrier fails until the leader is back).
func (s *Storage) Stores() ([]hsm.Store, error) {
	if err := s.n.Barrier(); err != nil {
		s.n.cfg.Logf("cluster: engine start without a read barrier: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.handed)
	var out []hsm.Store
	for _, slot := range s.n.fsm.Slots() {
		st, err := s.dir.OpenSlot(slot)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		s.handed[slot] = true
		out = append(out, &Store{n: s.n, slot: slot, local: st})
	}
	return out, nil
}

// NewStores returns the initialised tokens this view has not given its
// engine yet (hsm.GrowingStorage): tokens made through other members, or
// other engines of this one, since the engine started. It looks after a
// read barrier, so a token whose C_InitToken returned anywhere before the
// call is among them. A member that knows no leader answers at once from
// its own copy, and one whose barrier fails answers from it after the
// barrier's timeout: a token list that may lack the newest token shows
// nothing stale (every use of a token still passes the barrier), and
// C_GetSlotList keeps working on a member cut off from its cluster.
func (s *Storage) NewStores() ([]hsm.Store, error) {
	if _, _, err := s.n.leader(); err == nil {
		if err := s.n.Barrier(); err != nil {
			s.n.cfg.Logf("cluster: token list without a read barrier: %v", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []hsm.Store
	for _, slot := range s.n.fsm.Slots() {
		if s.handed[slot] {
			continue
		}
		// A token is made (opCreateToken) and then initialised
		// (opReinit) by two entries: one without its record yet is not
		// offered, or the engine would show it as a second free slot.
		fst := s.n.fsm.store(slot)
		if fst == nil {
			continue
		}
		rec, err := fst.LoadToken()
		if err != nil {
			return closeAll(out, err)
		}
		if rec == nil {
			continue
		}
		st, err := s.dir.OpenSlot(slot)
		if err != nil {
			return closeAll(out, err)
		}
		s.handed[slot] = true
		out = append(out, &Store{n: s.n, slot: slot, local: st})
	}
	return out, nil
}

func closeAll(sts []hsm.Store, err error) ([]hsm.Store, error) {
	for _, st := range sts {
		st.Close()
	}
	return nil, err
}

// Create makes a new token in the next slot, on every member.
func (s *Storage) Create() (hsm.Store, error) {
	// Under mu: the new slot is marked given before NewStores can see it.
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.n.write(&entry{Op: opCreateToken})
	if err != nil {
		return nil, err
	}
	st, err := s.dir.OpenSlot(res.Slot)
	if err != nil {
		return nil, err
	}
	s.handed[res.Slot] = true
	return &Store{n: s.n, slot: res.Slot, local: st}, nil
}

var _ hsm.GrowingStorage = (*Storage)(nil)

// Store is one replicated token (hsm.SharedStore). Its methods are safe for
// concurrent use: reads go to the local handle, writes are raft entries.
type Store struct {
	n     *Node
	slot  int
	local *tokens.Store

	idmu          sync.Mutex
	idNext, idEnd uint64
}

var _ hsm.SharedStore = (*Store)(nil)

// idBlock is how many ids one opReserveIDs entry reserves for a Store.
const idBlock = 64

// Slot is the token's slot number.
func (s *Store) Slot() int { return s.slot }

func (s *Store) LoadToken() (*hsm.TokenRecord, error) { return s.local.LoadToken() }

func (s *Store) SaveToken(r *hsm.TokenRecord) error {
	_, err := s.n.write(&entry{Op: opSaveToken, Slot: s.slot, Token: r})
	return err
}

// UpdateToken is a compare-and-set loop: read the record after a read
// barrier, let fn change a copy, write it if the record did not move
// meanwhile (opSaveTokenIf), else read again. fn may run more than once;
// the engine's fns (PIN counters) only derive the new record from the one
// they get.
func (s *Store) UpdateToken(fn func(*hsm.TokenRecord) error) (*hsm.TokenRecord, error) {
	for range 100 {
		if err := s.n.Barrier(); err != nil {
			return nil, err
		}
		rec, gen, err := s.local.LoadTokenVersion()
		if err != nil {
			return nil, err
		}
		if rec == nil {
			return nil, fmt.Errorf("update token: %w", hsm.ErrNoToken)
		}
		if err := fn(rec); err != nil {
			return nil, err
		}
		_, err = s.n.write(&entry{Op: opSaveTokenIf, Slot: s.slot, Gen: gen, Token: rec})
		if err == nil {
			return rec, nil
		}
		if !isConflict(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("update token: too much contention: %w", ck.CKR_DEVICE_ERROR)
}

func (s *Store) Reinit(r *hsm.TokenRecord) error {
	_, err := s.n.write(&entry{Op: opReinit, Slot: s.slot, Token: r})
	return err
}

func (s *Store) Objects(fn func(*hsm.ObjectRecord) error) error { return s.local.Objects(fn) }

// Commit is tokens.Store.Commit through the raft log: decided on by the
// engine against the versions it read, checked and applied by every
// member's store in log order, so a stale member's change conflicts
// exactly as a stale process's does on one machine.
func (s *Store) Commit(ch *hsm.Change) error {
	if ch == nil {
		return nil
	}
	if err := ch.Validate(); err != nil {
		return err
	}
	if len(ch.Put) == 0 && len(ch.Delete) == 0 && len(ch.Require) == 0 {
		return nil
	}
	res, err := s.n.write(&entry{Op: opCommit, Slot: s.slot, Change: ch})
	if err != nil {
		return err
	}
	for _, p := range ch.Put {
		p.Gen = res.Gen
	}
	return nil
}

func (s *Store) NewObjectID() (uint64, error) {
	s.idmu.Lock()
	defer s.idmu.Unlock()
	if s.idNext < s.idEnd {
		id := s.idNext
		s.idNext++
		return id, nil
	}
	res, err := s.n.write(&entry{Op: opReserveIDs, Slot: s.slot, N: idBlock})
	if err != nil {
		return 0, err
	}
	s.idNext, s.idEnd = res.First+1, res.First+idBlock
	return res.First, nil
}

func (s *Store) Close() error { return s.local.Close() }

// Changed waits for the read barrier, then asks the local copy: anything
// committed anywhere before the call is then visible to the engine.
func (s *Store) Changed() (bool, error) {
	if err := s.n.Barrier(); err != nil {
		return false, err
	}
	return s.local.Changed()
}

func (s *Store) ObjectsSince(since uint64, put func(*hsm.ObjectRecord) error, del func(id uint64) error) (hsm.Delta, error) {
	return s.local.ObjectsSince(since, put, del)
}

func isConflict(err error) bool { return errors.Is(err, hsm.ErrConflict) }
