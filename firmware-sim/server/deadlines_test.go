package server

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// The deadline list answers exactly the calls past their deadline, once
// each, never one already answered, and keeps its timer set for the
// earliest deadline left. The test moves deadlines into the past by hand
// and runs expire itself, so no clock decides its outcome.
func TestDeadlines(t *testing.T) {
	var mu sync.Mutex
	var fired []uint64
	d := &deadlines{fire: func(it *item) {
		mu.Lock()
		fired = append(fired, it.id)
		mu.Unlock()
	}}
	defer d.stop()
	far := time.Now().Add(time.Hour)
	items := make([]*item, 5)
	for i := range items {
		items[i] = &item{id: uint64(i + 1)}
		d.add(items[i], far.Add(time.Duration(i)*time.Second))
	}
	if !d.at.Equal(far) {
		t.Fatalf("timer set for %v, want the earliest deadline %v", d.at, far)
	}
	// Calls 1, 3 and 4 pass their deadline; 4 was answered meanwhile.
	d.mu.Lock()
	past := time.Now().Add(-time.Second)
	items[0].deadline, items[2].deadline, items[3].deadline = past, past, past
	d.mu.Unlock()
	d.remove(items[3])
	d.expire()
	mu.Lock()
	got := slices.Clone(fired)
	mu.Unlock()
	if !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("answered %v past their deadline, want [1 3]", got)
	}
	if want := items[1].deadline; !d.at.Equal(want) {
		t.Fatalf("timer set for %v, want call 2's deadline %v", d.at, want)
	}
	var left []uint64
	for it := d.head; it != nil; it = it.next {
		left = append(left, it.id)
	}
	if !slices.Equal(left, []uint64{2, 5}) {
		t.Fatalf("calls in flight %v, want [2 5]", left)
	}
	// Answered calls leave the list; a timer that fires with nothing due
	// answers nothing and is not set again.
	d.remove(items[1])
	d.remove(items[4])
	d.remove(items[4]) // twice is harmless
	d.expire()
	mu.Lock()
	n := len(fired)
	mu.Unlock()
	if n != 2 || d.head != nil || d.tail != nil || !d.at.IsZero() {
		t.Fatalf("after all answered: %d answered, head %v, tail %v, timer at %v", n, d.head, d.tail, d.at)
	}
}
