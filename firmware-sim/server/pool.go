package server

import (
	"time"
)

// pool runs calls on reused goroutines. A goroutine that has run the
// engine has grown its stack to the depth the cryptography needs; a fresh
// goroutine per call would copy its stack up again every time (8% of the
// CPU in BenchmarkSignParallel). Workers are made when none is idle (so
// the number of calls running is bounded by the admission limits, never by
// the pool) and leave after idle time without work.
type pool struct {
	work chan func()
	idle time.Duration
}

func newPool(idle time.Duration) *pool { return &pool{work: make(chan func()), idle: idle} }

// run runs f on an idle worker, or on a new one.
func (p *pool) run(f func()) {
	select {
	case p.work <- f:
	default:
		go p.worker(f)
	}
}

func (p *pool) worker(f func()) {
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		f()
		f = nil
		t.Reset(p.idle)
		select {
		case f = <-p.work:
		case <-t.C:
			return
		}
	}
}
