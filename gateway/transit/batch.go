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
	workers := min(e.cfg.Workers, (n+minRun-1)/minRun)
	if workers <= 1 {
		e.runRun(ctx, 0, n, f, errs)
		return errs
	}
	size := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := size; lo < n; lo += size {
		hi := min(lo+size, n)
		wg.Add(1)
		helpers.do(func() {
			defer wg.Done()
			e.runRun(ctx, lo, hi, f, errs)
		})
	}
	e.runRun(ctx, 0, size, f, errs) // the first run on the caller's goroutine
	wg.Wait()
	return errs
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
			ierr := f(i, s, find)
			var te *Error
			switch {
			case ierr == nil:
				errs[i] = nil
			case errors.As(ierr, &te):
				errs[i] = te
			case retryable(ierr):
				return ierr
			default:
				errs[i] = &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("the token refused the operation (%v)", token.RV(ierr))}
			}
			done = i + 1
		}
		return nil
	})
	if err != nil {
		// The run failed as a whole (no healthy token, or cancelled):
		// every item not done has failed with it.
		fe := &Error{Status: http.StatusInternalServerError, Msg: internalMsg(err)}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			fe = &Error{Status: http.StatusServiceUnavailable, Msg: "request cancelled or timed out: " + err.Error()}
		}
		for i := done; i < hi; i++ {
			errs[i] = fe
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
