package hsm

import (
	"errors"
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
	s := &memStore{objects: map[uint64]*ObjectRecord{}}
	ms.stores = append(ms.stores, s)
	return s, nil
}

type memStore struct {
	mu      sync.Mutex
	rec     *TokenRecord
	objects map[uint64]*ObjectRecord
	nextID  uint64
}

func copyToken(r *TokenRecord) *TokenRecord {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

func copyObject(r *ObjectRecord) *ObjectRecord {
	c := *r
	c.Attrs = append(c.Attrs[:0:0], r.Attrs...)
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
	s.objects = map[uint64]*ObjectRecord{}
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

func (s *memStore) PutObject(r *ObjectRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[r.ID] = copyObject(r)
	return nil
}

func (s *memStore) DeleteObject(id uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, id)
	return nil
}

func (s *memStore) NewObjectID() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return s.nextID, nil
}

func (s *memStore) Close() error { return nil }
