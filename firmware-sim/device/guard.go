package device

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Guard is the hsm.Backend decorator that puts a backend under a device's
// state. In the operational state every call goes through to the engine.
// In any other state (error, sealed, zeroised) every call answers
// CKR_DEVICE_ERROR, with the reason in the error's text, except the four
// that describe the device: C_GetInfo (libraryDescription carries the
// reason), C_GetSlotList, C_GetSlotInfo and C_GetTokenInfo (manufacturerID
// carries the reason, model the state). Those keep the token's label, on
// purpose: the appliance filters slots by label (partitions), and an
// application that looks its token up by label must find it and read why it
// cannot use it, not conclude the token is missing. C_Initialize and
// C_Finalize always work.
//
// A module's guard has one engine for its life (NewModuleGuard). An
// appliance's guard (Device.Guard) makes its engine with the device key
// when the device is operational, and without one (it lists the tokens,
// labels and serials, and opens nothing) otherwise; when the device leaves
// the operational state its engines are finalised at once (sessions,
// logins and unsealed keys gone), and the next call after an unseal makes
// a new one.
type Guard struct {
	src  Source
	open func(key []byte) (hsm.Backend, error) // nil: the backend is fixed
	dev  *Device
	// boot runs at Initialize (a module's power-on self-tests).
	boot func()
	logf func(format string, args ...any)

	mu  sync.Mutex // serialises engine changes
	cur atomic.Pointer[guarded]

	bootTook time.Duration
}

type guarded struct {
	be    hsm.Backend
	epoch uint64
	keyed bool // made in the operational state
	init  bool
}

var _ hsm.Backend = (*Guard)(nil)

// Guard returns a guard over engines open makes: open(key) with the
// device key while operational, open(nil) otherwise. The server calls
// Initialize, then Finalize and Close.
func (d *Device) Guard(open func(key []byte) (hsm.Backend, error)) *Guard {
	g := &Guard{src: d, open: open, dev: d}
	d.mu.Lock()
	d.guards[g] = struct{}{}
	d.mu.Unlock()
	return g
}

// notOperational is the error every refused call returns.
func notOperational(call string, st Status) error {
	return fmt.Errorf("C_%s: device %s: %s: %w", call, st.State, st.Reason, ck.CKR_DEVICE_ERROR)
}

// enter returns the engine for a call, or the refusal.
func (g *Guard) enter(call string) (hsm.Backend, error) {
	st := g.src.Status()
	if st.State != Operational {
		return nil, notOperational(call, st)
	}
	if in := g.cur.Load(); in != nil && in.init && (g.open == nil || (in.keyed && in.epoch == st.Epoch)) {
		return in.be, nil
	}
	if g.open == nil {
		return nil, ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	return g.switchTo(st)
}

// switchTo makes the engine the state st calls for (keyed when
// operational), finalising the one it replaces.
func (g *Guard) switchTo(st Status) (hsm.Backend, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	keyed := st.State == Operational
	if in := g.cur.Load(); in != nil && in.init && in.keyed == keyed && (!keyed || in.epoch == st.Epoch) {
		return in.be, nil
	}
	if in := g.cur.Swap(nil); in != nil {
		finish(in)
	}
	var key []byte
	if keyed {
		key = st.Key
	}
	be, err := g.open(key)
	if err != nil {
		return nil, fmt.Errorf("device: open engine: %v: %w", err, ck.CKR_DEVICE_ERROR)
	}
	if err := be.Initialize(); err != nil {
		if c, ok := be.(io.Closer); ok {
			c.Close()
		}
		return nil, err
	}
	g.cur.Store(&guarded{be: be, epoch: st.Epoch, keyed: keyed, init: true})
	return be, nil
}

func finish(in *guarded) {
	if in.init {
		in.be.Finalize()
	}
	if c, ok := in.be.(io.Closer); ok {
		c.Close()
	}
}

// drop finalises a keyed engine when the device leaves the operational
// state.
func (g *Guard) drop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if in := g.cur.Load(); in != nil && in.keyed && g.open != nil {
		g.cur.Store(nil)
		finish(in)
	}
}

// info is the engine that answers the descriptive calls in any state.
func (g *Guard) info() (hsm.Backend, Status, error) {
	st := g.src.Status()
	if st.State == Operational {
		be, err := g.enter("GetInfo")
		return be, st, err
	}
	if in := g.cur.Load(); in != nil && in.init {
		return in.be, st, nil
	}
	if g.open == nil {
		return nil, st, ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	be, err := g.switchTo(st)
	return be, st, err
}

// Initialize is C_Initialize: a module's boot runs here (its power-on
// self-tests), and the engine is initialised in every state, so that the
// descriptive calls can answer.
func (g *Guard) Initialize() error {
	start := time.Now()
	if g.boot != nil {
		g.boot()
	}
	if g.open == nil {
		in := g.cur.Load()
		if in == nil {
			return ck.CKR_GENERAL_ERROR
		}
		if err := in.be.Initialize(); err != nil {
			return err
		}
		g.cur.Store(&guarded{be: in.be, epoch: in.epoch, keyed: true, init: true})
	} else if _, err := g.switchTo(g.src.Status()); err != nil {
		return err
	}
	g.bootTook = time.Since(start)
	if g.logf != nil {
		if st := g.src.Status(); st.State == Operational {
			g.logf("C_Initialize: power-on self-tests passed; operational in %.1f ms", float64(g.bootTook.Microseconds())/1000)
		} else {
			g.logf("C_Initialize: ERROR STATE (%s): every call but C_GetInfo, C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo answers CKR_DEVICE_ERROR", st.Reason)
		}
	}
	return nil
}

// BootTime is how long the last Initialize took: for a module, power-on
// (self-tests included) to operational.
func (g *Guard) BootTime() time.Duration { return g.bootTook }

// Finalize is C_Finalize.
func (g *Guard) Finalize() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	in := g.cur.Load()
	if in == nil || !in.init {
		return ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	err := in.be.Finalize()
	g.cur.Store(&guarded{be: in.be, epoch: in.epoch, keyed: in.keyed})
	return err
}

// Close closes the engine (an io.Closer's store handle) and forgets the
// guard.
func (g *Guard) Close() error {
	if g.dev != nil {
		g.dev.mu.Lock()
		delete(g.dev.guards, g)
		g.dev.mu.Unlock()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	in := g.cur.Swap(nil)
	if in == nil {
		return nil
	}
	if c, ok := in.be.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func fixed(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// GetInfo is C_GetInfo; outside the operational state libraryDescription
// is the reason.
func (g *Guard) GetInfo() (ck.Info, error) {
	be, st, err := g.info()
	if err != nil {
		return ck.Info{}, err
	}
	info, err := be.GetInfo()
	if err == nil && st.State != Operational {
		info.LibraryDescription = fixed(st.Reason, 32)
	}
	return info, err
}

// GetSlotList is C_GetSlotList, in every state.
func (g *Guard) GetSlotList(present bool) ([]ck.SlotID, error) {
	be, _, err := g.info()
	if err != nil {
		return nil, err
	}
	return be.GetSlotList(present)
}

// GetSlotInfo is C_GetSlotInfo, in every state.
func (g *Guard) GetSlotInfo(slot ck.SlotID) (ck.SlotInfo, error) {
	be, _, err := g.info()
	if err != nil {
		return ck.SlotInfo{}, err
	}
	return be.GetSlotInfo(slot)
}

// GetTokenInfo is C_GetTokenInfo; outside the operational state
// manufacturerID is the reason ("selftest FAIL: ML-DSA-44", "sealed:
// unseal 3 of 5", "device zeroised") and model the state in capitals.
func (g *Guard) GetTokenInfo(slot ck.SlotID) (ck.TokenInfo, error) {
	be, st, err := g.info()
	if err != nil {
		return ck.TokenInfo{}, err
	}
	info, err := be.GetTokenInfo(slot)
	if err == nil && st.State != Operational {
		info.ManufacturerID = fixed(st.Reason, 32)
		info.Model = fixed(strings.ToUpper(st.State.String()), 16)
	}
	return info, err
}

// soResult reports an SO PIN check's outcome to the source.
func (g *Guard) soResult(err error) {
	switch rv := hsm.ToRV(err); {
	case err == nil:
		g.src.SOLogin(false)
	case rv == ck.CKR_PIN_INCORRECT || rv == ck.CKR_PIN_LOCKED:
		g.src.SOLogin(true)
	}
}

// Login is C_Login; SO logins count towards the device's zeroisation
// policy.
func (g *Guard) Login(s ck.SessionHandle, user ck.UserType, pin []byte) error {
	be, err := g.enter("Login")
	if err != nil {
		return err
	}
	err = be.Login(s, user, pin)
	if user == ck.CKU_SO {
		g.soResult(err)
	}
	return err
}

// LoginUser is C_LoginUser, counted as Login.
func (g *Guard) LoginUser(s ck.SessionHandle, user ck.UserType, pin, username []byte) error {
	be, err := g.enter("LoginUser")
	if err != nil {
		return err
	}
	err = be.LoginUser(s, user, pin, username)
	if user == ck.CKU_SO {
		g.soResult(err)
	}
	return err
}

// InitToken is C_InitToken; re-initialising a token checks its SO PIN,
// which counts as an SO login.
func (g *Guard) InitToken(slot ck.SlotID, soPIN []byte, label string) error {
	be, err := g.enter("InitToken")
	if err != nil {
		return err
	}
	err = be.InitToken(slot, soPIN, label)
	g.soResult(err)
	return err
}
