package faults

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gohsm/gohsm/hsm/ck"
)

// An Injector runs a plan: the call counters, the seeded choices, the
// token events and the key-sync lag. One Injector serves every Backend that
// should count together (a module process, or all of an appliance's
// connections), which is how "the Nth call in the process" is counted.
// SetPlan swaps in a new plan at run time: counters, events and hidden keys
// start afresh, and every Backend follows at its next call.
type Injector struct {
	cur atomic.Pointer[state]
	// Logf, if set, is told about events (token removed and re-inserted).
	// Set it before the Injector is used.
	Logf func(format string, args ...any)
}

// New makes an Injector running p (nil: the empty plan).
func New(p *Plan) *Injector {
	inj := &Injector{}
	inj.SetPlan(p)
	return inj
}

// SetPlan replaces the running plan.
func (inj *Injector) SetPlan(p *Plan) {
	if p == nil {
		p = &Plan{}
	}
	st := newState(inj, p)
	if old := inj.cur.Swap(st); old != nil {
		old.stop()
	}
	st.startTimers()
}

// Plan is the running plan.
func (inj *Injector) Plan() *Plan { return inj.cur.Load().plan }

// Calls is how many calls the running plan has seen (all functions).
func (inj *Injector) Calls() uint64 { return inj.cur.Load().calls.Load() }

func (inj *Injector) logf(format string, args ...any) {
	if inj.Logf != nil {
		inj.Logf(format, args...)
	}
}

// state is one plan's run.
type state struct {
	inj   *Injector
	plan  *Plan
	start time.Time
	calls atomic.Uint64
	rules []ruleState
	byFn  [][]int // per fn, the rules that can match it
	// countMu makes a call's numbering in all its rules one step.
	countMu sync.Mutex
	// trackOps: some rule matches an operation's calls by the mechanism
	// its C_*Init was given, so Backends remember them.
	trackOps bool
	lagFor   time.Duration

	events []eventState
	// mu guards log, changed, timers and stopped; logLen mirrors len(log)
	// for the lock-free check at every call.
	mu      sync.Mutex
	log     []slotChange
	logLen  atomic.Int64
	changed chan struct{} // closed and replaced when log grows, or at stop
	timers  []*time.Timer
	stopped bool

	lag lagTable
}

type ruleState struct {
	*Rule
	n atomic.Uint64 // matching calls so far
}

type eventState struct {
	*Event
	fired  atomic.Bool
	absent atomic.Bool
}

// slotChange is one entry of the event log: event ev removed (or put back)
// its token.
type slotChange struct {
	ev      int
	removed bool
}

func newState(inj *Injector, p *Plan) *state {
	st := &state{inj: inj, plan: p, start: time.Now(), changed: make(chan struct{})}
	st.lagFor = time.Duration(p.KeySyncLagMS * float64(time.Millisecond))
	st.rules = make([]ruleState, len(p.Rules))
	st.byFn = make([][]int, len(backendMethods()))
	for i := range p.Rules {
		r := &p.Rules[i]
		st.rules[i].Rule = r
		for f := range st.byFn {
			if st.matchesFn(r, fn(f)) {
				st.byFn[f] = append(st.byFn[f], i)
				if len(r.Mechanisms) > 0 && !fnInfo(fn(f)).hasMech {
					st.trackOps = true
				}
			}
		}
	}
	st.events = make([]eventState, len(p.Events))
	for i := range p.Events {
		st.events[i].Event = &p.Events[i]
	}
	st.lag.m = map[ck.ObjectHandle]lagEntry{}
	return st
}

// matchesFn: a rule names functions, or (with a mechanism) matches every
// function with a mechanism argument, or (with neither) every function.
func (st *state) matchesFn(r *Rule, f fn) bool {
	if slices.Contains(notCFunctions, backendMethods()[f]) {
		return false
	}
	switch {
	case len(r.Functions) > 0:
		return slices.Contains(r.Functions, f)
	case len(r.Mechanisms) > 0:
		return fnInfo(f).hasMech
	}
	return true
}

func (st *state) startTimers() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range st.events {
		ev := &st.events[i]
		if ev.ByTime {
			st.timers = append(st.timers, time.AfterFunc(msDuration(ev.AfterMS), func() { st.remove(i) }))
		}
	}
}

func (st *state) stop() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return
	}
	st.stopped = true
	for _, t := range st.timers {
		t.Stop()
	}
	close(st.changed)
}

// counted records a call and fires the events due by count: the first
// after_calls calls run with the token in; it is removed before the next.
func (st *state) counted() {
	n := st.calls.Add(1)
	for i := range st.events {
		ev := &st.events[i]
		if !ev.ByTime && n > ev.AfterCalls && !ev.fired.Load() {
			st.remove(i)
		}
	}
}

func (st *state) remove(i int) {
	ev := &st.events[i]
	if !ev.fired.CompareAndSwap(false, true) {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return
	}
	ev.absent.Store(true)
	st.appendLocked(slotChange{ev: i, removed: true})
	st.inj.logf("fault plan: %s: token %s removed", ev.Source, ev.target())
	if ev.ForMS >= 0 {
		st.timers = append(st.timers, time.AfterFunc(msDuration(ev.ForMS), func() { st.insert(i) }))
	}
}

func (st *state) insert(i int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return
	}
	ev := &st.events[i]
	ev.absent.Store(false)
	st.appendLocked(slotChange{ev: i})
	st.inj.logf("fault plan: %s: token %s re-inserted", ev.Source, ev.target())
}

func (st *state) appendLocked(c slotChange) {
	st.log = append(st.log, c)
	st.logLen.Store(int64(len(st.log)))
	close(st.changed)
	st.changed = make(chan struct{})
}

// changes returns the log from i on and the channel that closes at the
// next change.
func (st *state) changes(i int) ([]slotChange, <-chan struct{}, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []slotChange
	if i < len(st.log) {
		out = slices.Clone(st.log[i:])
	}
	return out, st.changed, st.stopped
}

func (e *Event) target() string {
	if e.HasSlot {
		return "in slot " + strconv.FormatUint(uint64(e.Slot), 10)
	}
	return "\"" + e.Token + "\""
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// picks decides whether the rule's kth match is picked.
func (r *ruleState) picks(seed uint64, stream int, k uint64) bool {
	if r.Nth > 0 {
		if k < r.Nth || (r.Count > 0 && k >= r.Nth+r.Count) {
			return false
		}
	}
	if r.Probability >= 0 {
		return uniform(seed, uint64(stream)*3, k) < r.Probability
	}
	return true
}

func (r *ruleState) delay(seed uint64, stream int, k uint64) time.Duration {
	return r.Latency.sample(uniform(seed, uint64(stream)*3+1, k), uniform(seed, uint64(stream)*3+2, k))
}

// The key-sync lag: new token objects by handle (a token object's handle
// is its store id, the same in every engine on the store), with who made
// them and until when others cannot find them.
type lagTable struct {
	mu sync.Mutex
	m  map[ck.ObjectHandle]lagEntry
}

type lagEntry struct {
	owner   uint64 // Backend.id
	session ck.SessionHandle
	until   time.Time
}

func (t *lagTable) add(h ck.ObjectHandle, e lagEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[h] = e
}

// hidden reports whether h is still syncing for a search by owner's
// session s; it forgets entries whose time is over.
func (t *lagTable) hidden(h ck.ObjectHandle, owner uint64, s ck.SessionHandle, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[h]
	if !ok {
		return false
	}
	if !now.Before(e.until) {
		delete(t.m, h)
		return false
	}
	return e.owner != owner || e.session != s
}

func (t *lagTable) empty() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m) == 0
}

// The module's process-wide injectors, by plan file: a C_Finalize and
// C_Initialize with the same file keep counting ("the Nth call in the
// process"); a changed file starts afresh.
var shared struct {
	sync.Mutex
	m map[string]*sharedEntry
}

type sharedEntry struct {
	inj  *Injector
	data []byte
}

// Shared returns the process's Injector for the plan file at path, reading
// the file again: if it changed since the last call the new plan replaces
// the old one (counters from zero), else the running one keeps its counts.
func Shared(path string) (*Injector, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.m == nil {
		shared.m = map[string]*sharedEntry{}
	}
	if e, ok := shared.m[path]; ok && bytes.Equal(e.data, data) {
		return e.inj, nil
	}
	p, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if e, ok := shared.m[path]; ok {
		e.inj.SetPlan(p)
		e.data = data
		return e.inj, nil
	}
	inj := New(p)
	shared.m[path] = &sharedEntry{inj: inj, data: data}
	return inj, nil
}
