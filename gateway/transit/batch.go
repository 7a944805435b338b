package transit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// itemFunc does item i's token work on s. It returns the item's error:
// a *Error (the item's own failure, which ends nothing else), or a token
// error. A device failure makes the whole run of items that shares the
// session go again on another token (Exec.Do's retry); other token errors
// become the item's error.
type itemFunc func(i int, s token.Session, find finder) error

// minRun is the fewest items one session takes before a batch is spread
// over another: below it, a goroutine and a session cost more than the
// items.
const minRun = 4

// run executes n items, in parallel runs on up to Config.Workers
// sessions, and returns each item's error (nil for success).
func (e *Engine) run(ctx context.Context, n int, f itemFunc) []*Error {
	errs := make([]*Error, n)
	if e.workers(n) <= 1 {
		e.runRun(ctx, 0, n, f, errs) // no closure to allocate
	} else {
		e.spread(n, func(lo, hi int) { e.runRun(ctx, lo, hi, f, errs) })
	}
	return errs
}

// workers is how many sessions n items are spread over.
func (e *Engine) workers(n int) int { return min(e.cfg.Workers, (n+minRun-1)/minRun) }

// spread cuts n items into runs, one per session, on up to
// Config.Workers sessions (each taking at least minRun items), and calls
// do for each run: the first on the caller's goroutine, the others on
// helpers; it returns when every run has.
func (e *Engine) spread(n int, do func(lo, hi int)) {
	workers := e.workers(n)
	if workers <= 1 {
		do(0, n)
		return
	}
	size := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := size; lo < n; lo += size {
		hi := min(lo+size, n)
		wg.Add(1)
		helpers.do(func() {
			defer wg.Done()
			do(lo, hi)
		})
	}
	do(0, size) // the first run on the caller's goroutine
	wg.Wait()
}

// helpers are the goroutines that run a batch's other runs. They stay
// for a while after their run (helperIdle), waiting for the next one: a
// new goroutine per run started on a small stack and grew it (copying)
// through the token call each time, 5% of the CPU at batch 100.
var helpers helperPool

const helperIdle = 10 * time.Second

type helperPool struct{ work chan func() }

func init() { helpers.work = make(chan func()) }

// do runs t on an idle helper, or on a new one.
func (h *helperPool) do(t func()) {
	select {
	case h.work <- t:
	default:
		go h.loop(t)
	}
}

func (h *helperPool) loop(t func()) {
	idle := time.NewTimer(helperIdle)
	defer idle.Stop()
	for {
		t()
		t = nil
		idle.Reset(helperIdle)
		select {
		case t = <-h.work:
		case <-idle.C:
			return
		}
	}
}

// runRun runs items [lo, hi) on one session.
func (e *Engine) runRun(ctx context.Context, lo, hi int, f itemFunc, errs []*Error) {
	done := lo
	err := e.ex.Do(ctx, func(s token.Session, find0 finder) error {
		find := memo(find0)
		for i := lo; i < hi; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			ierr, retry := itemErr(f(i, s, find))
			if retry != nil {
				return retry
			}
			errs[i] = ierr
			done = i + 1
		}
		return nil
	})
	if err != nil {
		failRun(err, errs[done:hi])
	}
}

// itemErr is what an item's error makes of it: its Error, or (retry) an
// error that says the token failed, which fails the run on this token so
// the pool runs it again on another.
func itemErr(ierr error) (_ *Error, retry error) {
	var te *Error
	switch {
	case ierr == nil:
		return nil, nil
	case errors.As(ierr, &te):
		return te, nil
	case retryable(ierr):
		return nil, ierr
	}
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("the token refused the operation (%v)", token.RV(ierr))}, nil
}

// failRun fails the items of a run that failed as a whole (no healthy
// token, or cancelled) with it.
func failRun(err error, errs []*Error) {
	fe := &Error{Status: http.StatusInternalServerError, Msg: internalMsg(err)}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		fe = &Error{Status: http.StatusServiceUnavailable, Msg: "request cancelled or timed out: " + err.Error()}
	}
	for i := range errs {
		errs[i] = fe
	}
}

// Items that are each one single-part token call run through runMany:
// plan makes item i's call (an error is the item's, and no call is made),
// the run's calls reach its session together (token.Many: one exchange
// with an appliance instead of a round trip or two per item), and done
// makes item i's result of its call's. With wipe, each call's In is the
// plan's copy of a secret, cleared once the call is made.
type (
	planFunc func(i int, find finder, c *token.Call) error
	doneFunc func(i int, c *token.Call) error
)

// runMany is run for items that are each one token call.
func (e *Engine) runMany(ctx context.Context, n int, plan planFunc, done doneFunc, wipe bool) []*Error {
	errs := make([]*Error, n)
	if e.workers(n) <= 1 {
		e.manyRun(ctx, 0, n, plan, done, wipe, errs)
	} else {
		e.spread(n, func(lo, hi int) { e.manyRun(ctx, lo, hi, plan, done, wipe, errs) })
	}
	return errs
}

// manyRun runs items [lo, hi) on one session: every plan, then their
// calls together, then every done. Tried again on another token (the
// pool), the run plans again from the request.
func (e *Engine) manyRun(ctx context.Context, lo, hi int, plan planFunc, done doneFunc, wipe bool, errs []*Error) {
	r := &manyRun{ctx: ctx, lo: lo, hi: hi, plan: plan, done: done, wipe: wipe, errs: errs}
	if hi-lo == 1 {
		r.calls = r.one[:0]
	} else {
		r.calls = make([]token.Call, 0, hi-lo)
	}
	if err := e.ex.Do(ctx, r.try); err != nil {
		failRun(err, errs[lo:hi])
	}
}

// manyRun is one run of runMany's, for the pool to try on a token.
type manyRun struct {
	ctx    context.Context
	lo, hi int
	plan   planFunc
	done   doneFunc
	wipe   bool
	errs   []*Error
	calls  []token.Call
	one    [1]token.Call // calls' room for a run of one
	// at is the item of each call once a plan has failed (until then,
	// call k is item lo+k).
	at []int
}

func (r *manyRun) try(s token.Session, find0 finder) error {
	find := memo(find0)
	r.calls, r.at = r.calls[:0], nil
	for i := r.lo; i < r.hi; i++ {
		r.calls = append(r.calls, token.Call{})
		if perr := r.plan(i, find, &r.calls[len(r.calls)-1]); perr != nil {
			r.calls = r.calls[:len(r.calls)-1]
			ierr, retry := itemErr(perr)
			if retry != nil {
				r.clean()
				return retry
			}
			r.errs[i] = ierr
			if r.at == nil {
				r.at = make([]int, len(r.calls), r.hi-r.lo)
				for k := range r.at {
					r.at[k] = r.lo + k
				}
			}
			continue
		}
		if r.at != nil {
			r.at = append(r.at, i)
		}
	}
	if err := r.ctx.Err(); err != nil {
		r.clean()
		return err
	}
	token.Many(s, r.calls)
	r.clean()
	var retry error
	for k := range r.calls {
		i := r.lo + k
		if r.at != nil {
			i = r.at[k]
		}
		ierr, again := itemErr(r.done(i, &r.calls[k]))
		if again != nil && retry == nil {
			retry = again
		}
		r.errs[i] = ierr
	}
	return retry
}

// clean clears the calls' inputs, the plans' copies of secrets (wipe).
func (r *manyRun) clean() {
	if r.wipe {
		for k := range r.calls {
			clear(r.calls[k].In)
		}
	}
}

// batchStatus is Vault's status rule for a batch (see Batch).
func batchStatus(errs []*Error, partial Int) Batch {
	b := Batch{Items: len(errs), BatchStatus: http.StatusOK}
	var user, internal bool
	for _, e := range errs {
		switch {
		case e == nil:
		case e.Status >= 500:
			internal = true
			b.Failed++
		default:
			user = true
			b.Failed++
		}
	}
	ok := b.Failed < b.Items
	switch {
	case user:
		b.BatchStatus = http.StatusBadRequest
	case internal:
		b.BatchStatus = http.StatusInternalServerError
	default:
		return b
	}
	if ok && partial >= 1 && partial <= 599 {
		b.BatchStatus = int(partial)
	}
	return b
}

// batchInput checks a request's batch_input: present (even empty) means
// a batch, which must hold 1..MaxBatch items.
func (e *Engine) batchLen(n int, present bool) (bool, *Error) {
	if !present {
		return false, nil
	}
	if n == 0 {
		return true, badRequest("missing batch input to process: batch_input is empty")
	}
	if n > e.cfg.MaxBatch {
		return true, badRequest("batch_input has %d items; the limit is %d", n, e.cfg.MaxBatch)
	}
	return true, nil
}

func errMsg(e *Error) string {
	if e == nil {
		return ""
	}
	return e.Msg
}

// memo remembers find's answers for one run on one session (handles are
// stable for that long): the items of a batch mostly use one version's
// key, so one lookup serves them all, whatever the Exec caches.
func memo(find finder) finder {
	type entry struct {
		id string
		h  ck.ObjectHandle
	}
	var seen [4]entry
	n, next := 0, 0
	return func(id []byte) (ck.ObjectHandle, error) {
		for _, e := range seen[:n] {
			if e.id == string(id) {
				return e.h, nil
			}
		}
		h, err := find(id)
		if err == nil {
			seen[next] = entry{string(id), h}
			next = (next + 1) % len(seen)
			n = min(n+1, len(seen))
		}
		return h, err
	}
}
