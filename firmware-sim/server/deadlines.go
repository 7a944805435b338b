package server

import (
	"sync"
	"time"
)

// deadlines enforces CallTimeout for one connection's calls with one timer,
// not one per call: a timer per call (time.AfterFunc) cost an allocation
// and the runtime's timer-heap work twice (start, stop) per call, a few per
// cent of the CPU of a batch of small calls (BenchmarkSignBatch). The calls
// in flight are an intrusive list (no allocation; O(1) removal when a call
// is answered), and the timer is set for the earliest deadline in it. The
// timer may fire early (the call it was set for was answered): it then
// looks at the list and sets itself for the next deadline. It never fires
// late, so a call that passes its deadline is answered as before: busy
// with FlagNotRun if it never started, CKR_DEVICE_ERROR if it is running
// (conn.timeout).
//
// A connection's calls all get CallTimeout, so the list is in deadline
// order in practice; expire scans the whole list anyway (at most the calls
// in flight, MaxCallsPerConn, once per CallTimeout at most), so nothing
// depends on that.
type deadlines struct {
	mu         sync.Mutex
	head, tail *item
	timer      *time.Timer
	at         time.Time // when the timer is set to fire; zero: not set
	stopped    bool
	fire       func(*item) // called, without mu, for each call past its deadline
}

// add lists it with its deadline.
func (d *deadlines) add(it *item, deadline time.Time) {
	d.mu.Lock()
	it.deadline = deadline
	it.prev, it.next = d.tail, nil
	if d.tail != nil {
		d.tail.next = it
	} else {
		d.head = it
	}
	d.tail = it
	it.listed = true
	if !d.stopped && (d.at.IsZero() || deadline.Before(d.at)) {
		d.arm(deadline)
	}
	d.mu.Unlock()
}

// remove takes it off the list (a call answered); the timer stays as it
// is and, if it was set for this call, finds nothing due when it fires.
func (d *deadlines) remove(it *item) {
	d.mu.Lock()
	d.unlink(it)
	d.mu.Unlock()
}

// stop ends the timer (the connection is closed).
func (d *deadlines) stop() {
	d.mu.Lock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
}

// arm sets the timer for at; mu is held.
func (d *deadlines) arm(at time.Time) {
	d.at = at
	if d.timer == nil {
		d.timer = time.AfterFunc(time.Until(at), d.expire)
		return
	}
	d.timer.Reset(time.Until(at))
}

func (d *deadlines) unlink(it *item) {
	if !it.listed {
		return
	}
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		d.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		d.tail = it.prev
	}
	it.prev, it.next, it.listed = nil, nil, false
}

// expire is the timer's function: it takes the calls past their deadline
// off the list, sets the timer for the earliest remaining one, and answers
// the late ones.
func (d *deadlines) expire() {
	now := time.Now()
	var due []*item
	var next time.Time
	d.mu.Lock()
	d.at = time.Time{}
	for it := d.head; it != nil; {
		n := it.next
		if !it.deadline.After(now) {
			d.unlink(it)
			due = append(due, it)
		} else if next.IsZero() || it.deadline.Before(next) {
			next = it.deadline
		}
		it = n
	}
	if !next.IsZero() && !d.stopped {
		d.arm(next)
	}
	d.mu.Unlock()
	for _, it := range due {
		d.fire(it)
	}
}
