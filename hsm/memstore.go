package hsm

import (
	"errors"
	"fmt"
	"sync"
)

// ErrNoToken is UpdateToken's error on a store that has no record yet.
var ErrNoToken = errors.New("token not initialised")

// MemoryStorage keeps tokens in process memory: for tests, and for
// deployments that want nothing on disk. It deep-copies records so callers
// cannot alias its state.
type MemoryStorage struct {
	mu     sync.Mutex
	stores []*memStore
}

// NewMemoryStorage returns an empty storage.
func NewMemoryStorage() *MemoryStorage { return &MemoryStorage{} }

func (ms *MemoryStorage) Stores() ([]Store, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := make([]Store, len(ms.stores))
	for i, s := range ms.stores {
		out[i] = s
	}
	return out, nil
}

func (ms *MemoryStorage) Create() (Store, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	s := &memStore{objects: map[uint64]*ObjectRecord{}, tombstones: map[uint64]bool{}}
	ms.stores = append(ms.stores, s)
	return s, nil
}

// memStore keeps the same contract as the disk store (tokens.Store): one
// process, but the engine relies on Commit's versions all the same. Every
// Commit stamps its writes with the next generation; deleted ids (by Commit
// or Reinit) are remembered in tombstones and never stored again.
type memStore struct {
	mu         sync.Mutex
	rec        *TokenRecord
	objects    map[uint64]*ObjectRecord // each with Gen set
	tombstones map[uint64]bool
	generation uint64
	nextID     uint64
}

func copyToken(r *TokenRecord) *TokenRecord {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// copyObject copies r down to the attribute values (in one buffer, each
// value capped so that an append reallocates).
func copyObject(r *ObjectRecord) *ObjectRecord {
	c := *r
	n := 0
	for _, a := range r.Attrs {
		n += len(a.Value)
	}
	buf := make([]byte, 0, n)
	c.Attrs = append(c.Attrs[:0:0], r.Attrs...)
	for i, a := range c.Attrs {
		if a.Value != nil {
			start := len(buf)
			buf = append(buf, a.Value...)
			c.Attrs[i].Value = buf[start:len(buf):len(buf)]
		}
	}
	c.Sealed = append([]byte(nil), r.Sealed...)
	return &c
}

func (s *memStore) LoadToken() (*TokenRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyToken(s.rec), nil
}

func (s *memStore) SaveToken(r *TokenRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec = copyToken(r)
	return nil
}

func (s *memStore) UpdateToken(fn func(*TokenRecord) error) (*TokenRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec == nil {
		return nil, ErrNoToken
	}
	r := copyToken(s.rec)
	if err := fn(r); err != nil {
		return nil, err
	}
	s.rec = r
	return copyToken(r), nil
}

func (s *memStore) Reinit(r *TokenRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec = copyToken(r)
	for id := range s.objects {
		s.tombstones[id] = true
	}
	s.objects = map[uint64]*ObjectRecord{}
	s.generation++
	return nil
}

func (s *memStore) Objects(fn func(*ObjectRecord) error) error {
	s.mu.Lock()
	recs := make([]*ObjectRecord, 0, len(s.objects))
	for _, r := range s.objects {
		recs = append(recs, copyObject(r))
	}
	s.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Commit checks every version first and then writes, all under s.mu: all
// of the change or none of it, with the disk store's rules (see
// tokens.Store.Commit).
func (s *memStore) Commit(ch *Change) error {
	if ch == nil {
		return nil
	}
	if err := ch.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := ch.Check(func(id uint64) (bool, uint64, bool, error) {
		if o := s.objects[id]; o != nil {
			return true, o.Gen, s.tombstones[id], nil
		}
		return false, 0, s.tombstones[id], nil
	})
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if !ch.Writes() {
		return nil
	}
	s.generation++
	gen := s.generation
	for _, o := range ch.Put {
		c := copyObject(o)
		c.Gen = gen
		s.objects[o.ID] = c
		// An id not from NewObjectID must never be handed out later.
		s.nextID = max(s.nextID, o.ID)
	}
	for _, v := range ch.Delete {
		delete(s.objects, v.ID)
		s.tombstones[v.ID] = true
	}
	for _, o := range ch.Put {
		o.Gen = gen
	}
	return nil
}

func (s *memStore) NewObjectID() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return s.nextID, nil
}

func (s *memStore) Close() error { return nil }
