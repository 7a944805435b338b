package client

import (
	"fmt"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Batch sends many calls at once: Run queues them together, so the writer
// packs them into BATCH frames (as many per frame as fit, up to the calls in
// flight the appliance allows) and they cost a few round trips instead of
// one each. Calls on one session run on the appliance in the order they
// were added, so a batch may hold C_SignInit, C_Sign, C_SignInit, C_Sign...;
// calls on different sessions run in parallel. Each call has its own
// result: one failing does not stop the others.
//
//	b := c.NewBatch()
//	for i := range msgs {
//		b.Add("SignInit", s, ck.Mechanism{Type: ck.CKM_ECDSA}, key)
//		sigs[i] = b.Add("Sign", s, msgs[i], 64)
//	}
//	b.Run()
//	sig, err := sigs[0].Bytes(0)
//
// A Batch is for one goroutine; Run may be called once.
type Batch struct {
	c     *Client
	items []*Pending
}

// Pending is one call of a batch.
type Pending struct {
	req  *request
	vals []any
	err  error
	done bool
}

// NewBatch starts a batch.
func (c *Client) NewBatch() *Batch { return &Batch{c: c} }

// Add adds a call to the Backend method name with its arguments, of the
// method's types.
func (b *Batch) Add(name string, args ...any) *Pending {
	p := &Pending{}
	b.items = append(b.items, p)
	call := wire.ByName(name)
	switch {
	case call == nil:
		p.err, p.done = fmt.Errorf("client: no call %s: %w", name, ck.CKR_FUNCTION_NOT_SUPPORTED), true
	case call.Adapted || call == callOpenSession || call == callCloseSession || call == callCloseAllSessions ||
		call == callLogin || call == callLoginUser || call == callLogout || call == callSetPIN ||
		call.Name == "Initialize" || call.Name == "Finalize":
		// These keep the client's own state: call the method.
		p.err, p.done = fmt.Errorf("client: %s cannot be batched: %w", name, ck.CKR_FUNCTION_NOT_SUPPORTED), true
	default:
		// What a batch does to operations is not followed (sizes.go):
		// the client forgets what it knew.
		b.c.mu.Lock()
		b.c.sizeGen++
		b.c.mu.Unlock()
		r, err := b.c.prepare(call, args)
		if err != nil {
			p.err, p.done = err, true
		} else {
			p.req = r
		}
	}
	return p
}

// Run sends the batch and waits for every answer.
func (b *Batch) Run() {
	var rs []*request
	for _, p := range b.items {
		if p.req != nil {
			rs = append(rs, p.req)
		}
	}
	b.c.enqueue(rs...)
	var t *time.Timer
	for _, p := range b.items {
		if p.done {
			continue
		}
		b.c.waitTimer(p.req, &t)
		p.vals, p.err = b.c.result(p.req)
		p.req, p.done = nil, true
	}
	if t != nil {
		t.Stop()
	}
}

// Result is the call's results and error, after Run.
func (p *Pending) Result() ([]any, error) { return p.vals, p.err }

// Err is the call's error, after Run.
func (p *Pending) Err() error { return p.err }

// Bytes is the i-th result as a byte string, with the call's error.
func (p *Pending) Bytes(i int) ([]byte, error) { return value[[]byte](p.vals, i), p.err }

// Handle is the i-th result as an object handle, with the call's error.
func (p *Pending) Handle(i int) (ck.ObjectHandle, error) {
	return value[ck.ObjectHandle](p.vals, i), p.err
}
