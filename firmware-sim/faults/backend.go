package faults

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Backend is the decorator: an hsm.Backend that runs every call through an
// Injector's plan before (and instead of, for an injected error) the
// wrapped backend. Wrap any backend: the local engine, the appliance's
// client, an appliance connection's engine.
type Backend struct {
	inner hsm.Backend
	inj   *Injector
	id    uint64 // tells Backends apart in the key-sync lag table

	// cursor is how much of st's event log this Backend has applied (its
	// sessions on a removed token closed); st is the state it belongs to.
	mu     sync.Mutex
	st     atomic.Pointer[state]
	cursor atomic.Int64
	// waitCursor and pending: the events C_WaitForSlotEvent has not yet
	// reported, one per slot, oldest first.
	waitCursor int
	pending    []ck.SlotID
	// slots resolves events that name a token by label.
	slots map[int]ck.SlotID
	// finalized closes at C_Finalize, ending blocked C_WaitForSlotEvent
	// calls.
	finalized chan struct{}
	// ops remembers the mechanism of each session's operations, by
	// opKey, when a rule needs it (state.trackOps).
	ops sync.Map
}

var _ hsm.Backend = (*Backend)(nil)

var backendIDs atomic.Uint64

// Wrap returns be with inj's plan applied to every call.
func Wrap(be hsm.Backend, inj *Injector) *Backend {
	if be == nil || inj == nil {
		panic("faults: Wrap needs a backend and an injector")
	}
	b := &Backend{inner: be, inj: inj, id: backendIDs.Add(1), finalized: make(chan struct{}), slots: map[int]ck.SlotID{}}
	// Events before the Backend existed are history: it has no session to
	// close and no application to tell (the slot's state still shows).
	st := inj.cur.Load()
	n := st.logLen.Load()
	b.st.Store(st)
	b.cursor.Store(n)
	b.waitCursor = int(n)
	return b
}

// Unwrap is the wrapped backend.
func (b *Backend) Unwrap() hsm.Backend { return b.inner }

// Fault is the error of an injected failure; hsm.ToRV finds its RV.
type Fault struct {
	RV       ck.RV
	Function string // the C name
	Rule     string // rules[i] or "profile NAME"
	N        uint64 // the call's number among the rule's matches
}

func (f *Fault) Error() string {
	return fmt.Sprintf("fault plan %s: %s (match %d): %s", f.Rule, f.Function, f.N, f.RV)
}

func (f *Fault) Unwrap() error { return f.RV }

// at is what pre needs to know of a call's arguments.
type at struct {
	s       ck.SessionHandle
	hasS    bool
	slot    ck.SlotID
	hasSlot bool
	m       ck.MechanismType
	hasM    bool
}

type opKey struct {
	s    ck.SessionHandle
	kind ck.Flags
}

// pre runs the plan for one call: it applies token events, counts the call
// against every rule that matches it, sleeps the picked latencies, answers
// for a removed token, and fails the call if a rule picked it. A nil
// error lets the call through to the wrapped backend.
func (b *Backend) pre(f fn, a at) error {
	st := b.inj.cur.Load()
	st.counted()
	b.apply(st)
	seed := st.plan.Seed
	cl := fnInfo(f)
	var mechs [2]ck.MechanismType
	nm := 0
	if a.hasM {
		mechs[0], nm = a.m, 1
	} else if cl.kinds != 0 && a.hasS && st.trackOps {
		for _, k := range []ck.Flags{ck.CKF_ENCRYPT, ck.CKF_DECRYPT, ck.CKF_DIGEST, ck.CKF_SIGN, ck.CKF_VERIFY,
			ck.CKF_SIGN_RECOVER, ck.CKF_VERIFY_RECOVER, ck.CKF_MESSAGE_ENCRYPT, ck.CKF_MESSAGE_DECRYPT,
			ck.CKF_MESSAGE_SIGN, ck.CKF_MESSAGE_VERIFY} {
			if cl.kinds&k != 0 && nm < len(mechs) {
				if v, ok := b.ops.Load(opKey{a.s, k}); ok {
					mechs[nm] = v.(ck.MechanismType)
					nm++
				}
			}
		}
	}
	var delay time.Duration
	var fault *Fault
	// One call takes its number in every rule at once, so that under
	// concurrency the Nth call still meets every rule's Nth draw together
	// (the first rule to fail it wins, as in a single thread).
	if len(st.byFn[f]) > 0 {
		st.countMu.Lock()
	}
	for _, i := range st.byFn[f] {
		r := &st.rules[i]
		if len(r.Mechanisms) > 0 && !slices.ContainsFunc(mechs[:nm], func(m ck.MechanismType) bool {
			return slices.Contains(r.Mechanisms, m)
		}) {
			continue
		}
		k := r.n.Add(1)
		if !r.picks(seed, i, k) {
			continue
		}
		if r.Latency != nil {
			delay += r.delay(seed, i, k)
		}
		if r.RV != 0 && fault == nil {
			fault = &Fault{RV: r.RV, Function: functionName(f), Rule: r.Source, N: k}
		}
	}
	if len(st.byFn[f]) > 0 {
		st.countMu.Unlock()
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if a.hasSlot && cl.needsToken && b.absent(st, a.slot) {
		return fmt.Errorf("fault plan: slot %d: the token is removed: %w", a.slot, ck.CKR_TOKEN_NOT_PRESENT)
	}
	if fault == nil {
		return nil
	}
	b.aftermath(f, a, fault.RV)
	return fault
}

// aftermath makes an injected error leave the session as a real one would:
// single-part, Update and Final errors end the operation (§5.2), a part of
// a message ends the message-based process (the decorator cannot end the
// message alone), and CKR_SESSION_CLOSED / CKR_SESSION_HANDLE_INVALID
// mean the session is gone, so it is closed.
func (b *Backend) aftermath(f fn, a at, rv ck.RV) {
	cl := fnInfo(f)
	if a.hasS && (cl.ends || cl.msgNext) {
		b.inner.SessionCancel(a.s, cl.kinds)
	}
	if a.hasS && f != fnCloseSession && (rv == ck.CKR_SESSION_CLOSED || rv == ck.CKR_SESSION_HANDLE_INVALID) {
		b.inner.CloseSession(a.s)
	}
}

// apply brings this Backend up to date with st's event log: each removal
// closes the sessions this Backend has on that token (the engine's
// C_CloseAllSessions, so its handles really die and its login ends, as
// when a token is pulled). It runs before every call, so no call can use
// a session of a removed token.
func (b *Backend) apply(st *state) {
	if b.st.Load() == st && b.cursor.Load() == st.logLen.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st.Load() != st {
		b.st.Store(st)
		b.waitCursor, b.pending = 0, nil
		b.cursor.Store(0)
		clear(b.slots)
		b.ops.Clear()
	}
	changes, _, _ := st.changes(int(b.cursor.Load()))
	for _, c := range changes {
		if !c.removed {
			continue
		}
		if slot, ok := b.eventSlotLocked(st, c.ev); ok {
			b.inner.CloseAllSessions(slot)
			b.ops.Clear()
		}
	}
	b.cursor.Add(int64(len(changes)))
}

// eventSlotLocked is the slot an event acts on (resolving a token label
// through the wrapped backend, once).
func (b *Backend) eventSlotLocked(st *state, i int) (ck.SlotID, bool) {
	ev := st.events[i].Event
	if ev.HasSlot {
		return ev.Slot, true
	}
	if s, ok := b.slots[i]; ok {
		return s, true
	}
	slots, err := b.inner.GetSlotList(true)
	if err != nil {
		return 0, false
	}
	for _, s := range slots {
		ti, err := b.inner.GetTokenInfo(s)
		if err == nil && trimLabel(ti.Label) == ev.Token {
			b.slots[i] = s
			return s, true
		}
	}
	return 0, false
}

func trimLabel(l string) string {
	for len(l) > 0 && (l[len(l)-1] == ' ' || l[len(l)-1] == 0) {
		l = l[:len(l)-1]
	}
	return l
}

// absent reports whether a removal event holds the token of slot out.
func (b *Backend) absent(st *state, slot ck.SlotID) bool {
	for i := range st.events {
		if !st.events[i].absent.Load() {
			continue
		}
		b.mu.Lock()
		s, ok := b.eventSlotLocked(st, i)
		b.mu.Unlock()
		if ok && s == slot {
			return true
		}
	}
	return false
}

// began remembers an operation's mechanism for rules that match its calls
// by mechanism.
func (b *Backend) began(f fn, s ck.SessionHandle, m ck.MechanismType) {
	if b.inj.cur.Load().trackOps {
		b.ops.Store(opKey{s, fnInfo(f).kinds}, m)
	}
}

// made starts the key-sync lag of new token objects.
func (b *Backend) made(s ck.SessionHandle, hs ...ck.ObjectHandle) {
	st := b.inj.cur.Load()
	if st.lagFor <= 0 {
		return
	}
	until := time.Now().Add(st.lagFor)
	for _, h := range hs {
		if h == 0 {
			continue
		}
		res, err := b.inner.GetAttributeValue(s, h, []ck.AttributeRequest{{Type: ck.CKA_TOKEN, Cap: 1}})
		if err != nil || len(res) != 1 || len(res[0].Value) != 1 || res[0].Value[0] == 0 {
			continue
		}
		st.lag.add(h, lagEntry{owner: b.id, session: s, until: until})
	}
}

// The methods written by hand: the ones whose answer the plan changes
// beyond failing or delaying them.

// Initialize is C_Initialize through the plan.
func (b *Backend) Initialize() error {
	b.mu.Lock()
	select {
	case <-b.finalized:
		b.finalized = make(chan struct{})
	default:
	}
	b.mu.Unlock()
	if err := b.pre(fnInitialize, at{}); err != nil {
		return err
	}
	return b.inner.Initialize()
}

// Finalize is C_Finalize through the plan. It ends blocked
// C_WaitForSlotEvent calls (CKR_CRYPTOKI_NOT_INITIALIZED) and finalizes
// the wrapped backend even when the plan fails the call: the application
// is done with the library either way.
func (b *Backend) Finalize() error {
	b.mu.Lock()
	select {
	case <-b.finalized:
	default:
		close(b.finalized)
	}
	b.mu.Unlock()
	ferr := b.pre(fnFinalize, at{})
	err := b.inner.Finalize()
	if ferr != nil {
		return ferr
	}
	return err
}

// GetSlotList is C_GetSlotList through the plan: a removed token's slot is
// missing from the list of slots with a token.
func (b *Backend) GetSlotList(tokenPresent bool) ([]ck.SlotID, error) {
	if err := b.pre(fnGetSlotList, at{}); err != nil {
		return nil, err
	}
	list, err := b.inner.GetSlotList(tokenPresent)
	if err != nil || !tokenPresent {
		return list, err
	}
	st := b.inj.cur.Load()
	return slices.DeleteFunc(list, func(s ck.SlotID) bool { return b.absent(st, s) }), nil
}

// GetSlotInfo is C_GetSlotInfo through the plan: a slot that a plan's
// event empties is a removable device (CKF_REMOVABLE_DEVICE), and while
// its token is out CKF_TOKEN_PRESENT is off.
func (b *Backend) GetSlotInfo(slot ck.SlotID) (ck.SlotInfo, error) {
	if err := b.pre(fnGetSlotInfo, at{slot: slot, hasSlot: true}); err != nil {
		return ck.SlotInfo{}, err
	}
	info, err := b.inner.GetSlotInfo(slot)
	if err != nil {
		return info, err
	}
	st := b.inj.cur.Load()
	for i := range st.events {
		b.mu.Lock()
		s, ok := b.eventSlotLocked(st, i)
		b.mu.Unlock()
		if ok && s == slot {
			info.Flags |= ck.CKF_REMOVABLE_DEVICE
		}
	}
	if b.absent(st, slot) {
		info.Flags &^= ck.CKF_TOKEN_PRESENT
	}
	return info, nil
}

// CloseSession is C_CloseSession through the plan.
func (b *Backend) CloseSession(s ck.SessionHandle) error {
	if err := b.pre(fnCloseSession, at{s: s, hasS: true}); err != nil {
		return err
	}
	err := b.inner.CloseSession(s)
	if err == nil && b.inj.cur.Load().trackOps {
		b.ops.Range(func(k, _ any) bool {
			if k.(opKey).s == s {
				b.ops.Delete(k)
			}
			return true
		})
	}
	return err
}

// CloseAllSessions is C_CloseAllSessions through the plan.
func (b *Backend) CloseAllSessions(slot ck.SlotID) error {
	if err := b.pre(fnCloseAllSessions, at{slot: slot, hasSlot: true}); err != nil {
		return err
	}
	err := b.inner.CloseAllSessions(slot)
	if err == nil {
		b.ops.Clear()
	}
	return err
}

// FindObjects is C_FindObjects through the plan: with a key-sync lag, a
// new token object is missing from the results of every session but the
// one that made it until the lag is over (a simulation of a cluster
// member that has not received the key yet; see docs/firmware.md).
func (b *Backend) FindObjects(s ck.SessionHandle, max int) ([]ck.ObjectHandle, error) {
	if err := b.pre(fnFindObjects, at{s: s, hasS: true}); err != nil {
		return nil, err
	}
	st := b.inj.cur.Load()
	if st.lagFor <= 0 || st.lag.empty() || max <= 0 {
		return b.inner.FindObjects(s, max)
	}
	var out []ck.ObjectHandle
	for len(out) < max {
		got, err := b.inner.FindObjects(s, max-len(out))
		if err != nil {
			return out, err
		}
		if len(got) == 0 {
			break
		}
		now := time.Now()
		for _, h := range got {
			if !st.lag.hidden(h, b.id, s, now) {
				out = append(out, h)
			}
		}
	}
	return out, nil
}

// WaitForSlotEvent is C_WaitForSlotEvent through the plan: it reports the
// slots whose token a plan event removed or put back, each slot once for
// however many changes it had since it was last reported (§5.5). With
// CKF_DONT_BLOCK it answers at once (the wrapped backend's answer when
// there is no event: CKR_NO_EVENT); without, it waits for an event or
// C_Finalize (CKR_CRYPTOKI_NOT_INITIALIZED). A plan without events leaves
// the call to the wrapped backend.
func (b *Backend) WaitForSlotEvent(flags ck.Flags) (ck.SlotID, error) {
	if err := b.pre(fnWaitForSlotEvent, at{}); err != nil {
		return 0, err
	}
	for {
		st := b.inj.cur.Load()
		b.apply(st)
		b.mu.Lock()
		changes, changed, stopped := st.changes(b.waitCursor)
		b.waitCursor += len(changes)
		for _, c := range changes {
			if s, ok := b.eventSlotLocked(st, c.ev); ok && !slices.Contains(b.pending, s) {
				b.pending = append(b.pending, s)
			}
		}
		if len(b.pending) > 0 {
			s := b.pending[0]
			b.pending = b.pending[1:]
			b.mu.Unlock()
			return s, nil
		}
		finalized := b.finalized
		b.mu.Unlock()
		if flags&ck.CKF_DONT_BLOCK != 0 || len(st.events) == 0 {
			return b.inner.WaitForSlotEvent(flags)
		}
		select {
		case <-finalized:
			return 0, ck.CKR_CRYPTOKI_NOT_INITIALIZED
		case <-changed:
		}
		if stopped {
			// The plan was replaced: look again under the new one.
			continue
		}
	}
}

// MessageSignMechanism is no PKCS#11 function (a transport's helper): it
// passes through untouched.
func (b *Backend) MessageSignMechanism(s ck.SessionHandle, verify bool) (ck.MechanismType, error) {
	return b.inner.MessageSignMechanism(s, verify)
}
