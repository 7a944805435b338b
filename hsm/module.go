package hsm

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// Version is the library and firmware version reported in CK_INFO and
// CK_TOKEN_INFO.
var Version = ck.Version{Major: 0, Minor: 1}

const (
	manufacturer = "gohsm"
	model        = "gohsm soft token"
)

// Module is the engine. One Module serves any number of sessions
// concurrently; see the package doc for the locking model.
type Module struct {
	cfg Config
	reg *mech.Registry
	// ecLike are the profile's vendor key types that use the EC attribute
	// rows (ecLikeKeyTypes), looked up once: every object made asks.
	ecLike []ck.KeyType

	mu    sync.RWMutex // guards slots; taken to change init
	slots []*Token
	// init is written under mu but read without it by checkInit, the
	// first check of every call: a read lock there made every call on
	// every thread write one shared cache line.
	init atomic.Bool

	sessions   sync.Map // ck.SessionHandle -> *Session
	nextSess   atomic.Uint64
	nextObject atomic.Uint64
}

// New builds a Module; nothing is loaded until Initialize.
func New(cfg Config) (*Module, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DeviceKey != nil {
		cfg.Storage = deviceStorage{Storage: cfg.Storage, key: bytes.Clone(cfg.DeviceKey)}
	}
	m := &Module{cfg: cfg, reg: mech.New(cfg.Profile)}
	if k, ok := cfg.Profile.KeyType("CKK_SM2"); ok {
		m.ecLike = []ck.KeyType{k}
	}
	return m, nil
}

// Registry exposes the mechanism registry (for tools and tests).
func (m *Module) Registry() *mech.Registry { return m.reg }

// Object handles. A token object's handle is its store id, so it is the
// same in every process and across restarts: an application (or the
// appliance's client, re-opening its sessions after the appliance
// restarted) keeps using the handles it found. Ids are never reused
// (destroyed ones are tombstoned), so neither are handles. Session objects
// take handles from a counter above every store id (sessionHandleBase);
// handles are looked up per token, so two tokens may hold the same one.
const sessionHandleBase = 1 << 40

// maxStoreID is the largest store id that stays clear of session handles.
const maxStoreID = sessionHandleBase - 1

func (m *Module) newObjectHandle() ck.ObjectHandle {
	return ck.ObjectHandle(sessionHandleBase + m.nextObject.Add(1))
}

// tokenObjectHandle is the handle of the token object with store id id.
func tokenObjectHandle(id uint64) ck.ObjectHandle { return ck.ObjectHandle(id) }

// Initialize loads every token from storage and adds the free slot.
func (m *Module) Initialize() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.init.Load() {
		return ck.CKR_CRYPTOKI_ALREADY_INITIALIZED
	}
	stores, err := m.cfg.Storage.Stores()
	if err != nil {
		return fmt.Errorf("open storage: %w", deviceError(err))
	}
	m.slots = nil
	for _, st := range stores {
		t := newToken(m, ck.SlotID(len(m.slots)), st)
		if err := t.load(); err != nil {
			return fmt.Errorf("load token: %w", deviceError(err))
		}
		m.slots = append(m.slots, t)
	}
	m.addFreeSlot()
	m.init.Store(true)
	return nil
}

// addFreeSlot keeps one uninitialised slot so a new token can always be
// made, as SoftHSMv2 does. The caller holds m.mu.
func (m *Module) addFreeSlot() {
	for _, t := range m.slots {
		if !t.initialized() {
			return
		}
	}
	m.slots = append(m.slots, newToken(m, ck.SlotID(len(m.slots)), nil))
}

// Finalize closes every session and store.
func (m *Module) Finalize() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.init.Load() {
		return ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	m.sessions.Range(func(k, v any) bool {
		m.sessions.Delete(k)
		return true
	})
	var firstErr error
	for _, t := range m.slots {
		t.mu.Lock()
		t.logout()
		// Every secret this process holds goes now, public objects' and
		// session objects' too: nothing may use them after C_Finalize.
		t.objects.each(func(o *Object) { o.forget() })
		t.sessions = map[ck.SessionHandle]*Session{}
		if t.store != nil {
			if err := t.store.Close(); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		t.mu.Unlock()
	}
	m.slots = nil
	m.init.Store(false)
	if firstErr != nil {
		return fmt.Errorf("close store: %w", deviceError(firstErr))
	}
	return nil
}

func (m *Module) checkInit() error {
	if !m.init.Load() {
		return ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	return nil
}

// token returns the token in slot.
func (m *Module) token(slot ck.SlotID) (*Token, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.init.Load() {
		return nil, ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	if uint64(slot) >= uint64(len(m.slots)) {
		return nil, ck.CKR_SLOT_ID_INVALID
	}
	return m.slots[slot], nil
}

// GetInfo is C_GetInfo.
func (m *Module) GetInfo() (ck.Info, error) {
	if err := m.checkInit(); err != nil {
		return ck.Info{}, err
	}
	return ck.Info{
		CryptokiVersion:    ck.Version{Major: 3, Minor: 0},
		ManufacturerID:     manufacturer,
		LibraryDescription: "gohsm PKCS#11 module",
		LibraryVersion:     Version,
	}, nil
}

// GetSlotList is C_GetSlotList. Every slot holds a token (the free one an
// uninitialised token), so tokenPresent does not filter. Tokens others
// made since C_Initialize join the list first (newtokens.go).
func (m *Module) GetSlotList(tokenPresent bool) ([]ck.SlotID, error) {
	if err := m.adoptNewTokens(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.init.Load() {
		return nil, ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	out := make([]ck.SlotID, len(m.slots))
	for i := range m.slots {
		out[i] = ck.SlotID(i)
	}
	return out, nil
}

// GetSlotInfo is C_GetSlotInfo.
func (m *Module) GetSlotInfo(slot ck.SlotID) (ck.SlotInfo, error) {
	if _, err := m.token(slot); err != nil {
		return ck.SlotInfo{}, err
	}
	return ck.SlotInfo{
		SlotDescription: fmt.Sprintf("gohsm slot %d", slot),
		ManufacturerID:  manufacturer,
		Flags:           ck.CKF_TOKEN_PRESENT,
		HardwareVersion: Version,
		FirmwareVersion: Version,
	}, nil
}

// GetTokenInfo is C_GetTokenInfo.
func (m *Module) GetTokenInfo(slot ck.SlotID) (ck.TokenInfo, error) {
	t, err := m.token(slot)
	if err != nil {
		return ck.TokenInfo{}, err
	}
	if err := t.sync(); err != nil {
		return ck.TokenInfo{}, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	info := ck.TokenInfo{
		ManufacturerID:     manufacturer,
		Model:              model,
		Flags:              ck.CKF_RNG | ck.CKF_LOGIN_REQUIRED,
		MaxSessionCount:    ck.CK_EFFECTIVELY_INFINITE,
		MaxRwSessionCount:  ck.CK_EFFECTIVELY_INFINITE,
		MaxPinLen:          ck.ULong(m.cfg.MaxPINLen),
		MinPinLen:          ck.ULong(m.cfg.MinPINLen),
		TotalPublicMemory:  ck.CK_UNAVAILABLE_INFORMATION,
		FreePublicMemory:   ck.CK_UNAVAILABLE_INFORMATION,
		TotalPrivateMemory: ck.CK_UNAVAILABLE_INFORMATION,
		FreePrivateMemory:  ck.CK_UNAVAILABLE_INFORMATION,
		HardwareVersion:    Version,
		FirmwareVersion:    Version,
		UTCTime:            time.Now().UTC().Format("20060102150405") + "00",
	}
	for _, s := range t.sessions {
		info.SessionCount++
		if s.rw {
			info.RwSessionCount++
		}
	}
	if t.rec != nil {
		info.Label = t.rec.Label
		info.SerialNumber = t.rec.Serial
		info.Flags |= ck.CKF_TOKEN_INITIALIZED | ck.CKF_CLOCK_ON_TOKEN | t.pinFlags()
		if t.rec.UserPINSet {
			info.Flags |= ck.CKF_USER_PIN_INITIALIZED
		}
	} else {
		info.Flags |= ck.CKF_CLOCK_ON_TOKEN
	}
	return info, nil
}

// GetMechanismList is C_GetMechanismList.
func (m *Module) GetMechanismList(slot ck.SlotID) ([]ck.MechanismType, error) {
	if _, err := m.token(slot); err != nil {
		return nil, err
	}
	return append([]ck.MechanismType(nil), m.reg.List()...), nil
}

// GetMechanismInfo is C_GetMechanismInfo.
func (m *Module) GetMechanismInfo(slot ck.SlotID, t ck.MechanismType) (ck.MechanismInfo, error) {
	if _, err := m.token(slot); err != nil {
		return ck.MechanismInfo{}, err
	}
	mm, ok := m.reg.Mechanism(t)
	if !ok {
		return ck.MechanismInfo{}, ck.CKR_MECHANISM_INVALID
	}
	return mm.Info, nil
}

// WaitForSlotEvent is C_WaitForSlotEvent: slots never change by themselves.
func (m *Module) WaitForSlotEvent(flags ck.Flags) (ck.SlotID, error) {
	if err := m.checkInit(); err != nil {
		return 0, err
	}
	if flags&ck.CKF_DONT_BLOCK != 0 {
		return 0, ck.CKR_NO_EVENT
	}
	return 0, ck.CKR_FUNCTION_NOT_SUPPORTED
}

var _ Backend = (*Module)(nil)
