package hsm

import (
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Tokens made by other writers while the engine runs. An engine loads its
// slots at C_Initialize; a token another process (or another member of an
// appliance cluster, or another connection of the appliance) makes later
// would stay invisible until the next C_Initialize. A Storage that can say
// which tokens appeared implements GrowingStorage, and C_GetSlotList, the
// call PKCS#11 applications make to discover tokens, adopts them.
//
// Slot ids stay stable (PKCS#11: a slot id means the same slot for the life
// of the C_Initialize): the first new token takes the free slot — as if
// someone had initialised the token in it, which is what happened — and
// any further ones are appended, then a new free slot is added after them.
// So an engine that saw tokens appear one at a time numbers its slots as a
// fresh engine does. An application that called C_InitToken on the free
// slot after another writer's token took it gets what a shared device
// gives when two administrators race for one slot: the slot holds an
// initialised token, and its SO PIN is asked.

// GrowingStorage is a Storage whose set of tokens others may grow while
// an engine uses it.
type GrowingStorage interface {
	Storage
	// NewStores returns the stores of the initialised tokens that this
	// Storage has not returned before (through Stores, Create or
	// NewStores), in slot order. A token whose record is not written yet
	// (made, not yet initialised) is left for a later call.
	NewStores() ([]Store, error)
}

// adoptNewTokens gives the engine the tokens others made since it loaded
// its slots (GrowingStorage).
func (m *Module) adoptNewTokens() error {
	gs, ok := m.cfg.Storage.(GrowingStorage)
	if !ok || !m.init.Load() {
		return nil
	}
	stores, err := gs.NewStores()
	if err != nil {
		return fmt.Errorf("new tokens: %w", deviceError(err))
	}
	if len(stores) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.init.Load() {
		for _, st := range stores {
			st.Close()
		}
		return ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	for i, st := range stores {
		if err := m.adoptLocked(st); err != nil {
			for _, rest := range stores[i+1:] {
				rest.Close()
			}
			m.addFreeSlot()
			return fmt.Errorf("new token: %w", deviceError(err))
		}
	}
	m.addFreeSlot()
	return nil
}

// adoptLocked puts st in the free slot if there is one, else in a new
// slot at the end. The caller holds m.mu for writing; each Token.mu is
// taken inside it, the package's lock order.
func (m *Module) adoptLocked(st Store) error {
	for _, t := range m.slots {
		t.mu.Lock()
		if t.store == nil && !t.initialized() {
			t.store = st
			err := t.load()
			if err != nil {
				t.store, t.rec = nil, nil
				st.Close()
			}
			t.mu.Unlock()
			return err
		}
		t.mu.Unlock()
	}
	t := newToken(m, ck.SlotID(len(m.slots)), st)
	if err := t.load(); err != nil {
		st.Close()
		return err
	}
	m.slots = append(m.slots, t)
	return nil
}

// NewStores passes GrowingStorage through the device key's wrapper.
func (d deviceStorage) NewStores() ([]Store, error) {
	gs, ok := d.Storage.(GrowingStorage)
	if !ok {
		return nil, nil
	}
	sts, err := gs.NewStores()
	if err != nil {
		return nil, err
	}
	for i, st := range sts {
		sts[i] = wrapDeviceStore(st, d.key)
	}
	return sts, nil
}
