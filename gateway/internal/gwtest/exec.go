package gwtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Exec is the trivial Exec of the gateway's tests (gateway/pool is the
// real one): every call runs on a session of one token, sessions are
// reused, Replicate has nothing to copy to, and find searches the token
// each time (no handle cache, so a destroyed key is never found by a
// stale handle).
type Exec struct {
	tok token.Token

	mu   sync.Mutex
	free []token.Session
}

// NewExec is the Exec of tok.
func NewExec(tok token.Token) *Exec { return &Exec{tok: tok} }

func (x *Exec) session() (token.Session, error) {
	x.mu.Lock()
	if n := len(x.free); n > 0 {
		s := x.free[n-1]
		x.free = x.free[:n-1]
		x.mu.Unlock()
		return s, nil
	}
	x.mu.Unlock()
	return x.tok.OpenSession()
}

func (x *Exec) done(s token.Session, err error) {
	if token.DeviceFailure(err) {
		s.Close()
		return
	}
	x.mu.Lock()
	x.free = append(x.free, s)
	x.mu.Unlock()
}

// Do runs f on a session of the token.
func (x *Exec) Do(ctx context.Context, f func(s token.Session, find func(id []byte) (ck.ObjectHandle, error)) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := x.session()
	if err != nil {
		return err
	}
	find := func(id []byte) (ck.ObjectHandle, error) {
		hs, err := s.FindObjects([]ck.Attribute{{Type: ck.CKA_ID, Value: id}})
		if err != nil {
			return 0, err
		}
		if len(hs) != 1 {
			return 0, fmt.Errorf("%d objects with CKA_ID %q: %w", len(hs), id, ck.CKR_KEY_HANDLE_INVALID)
		}
		return hs[0], nil
	}
	err = f(s, find)
	x.done(s, err)
	return err
}

// Destroy destroys the objects with CKA_ID id on the token.
func (x *Exec) Destroy(ctx context.Context, id []byte) error {
	return x.Do(ctx, func(s token.Session, _ func([]byte) (ck.ObjectHandle, error)) error {
		hs, err := s.FindObjects([]ck.Attribute{{Type: ck.CKA_ID, Value: id}})
		if err != nil {
			return err
		}
		for _, h := range hs {
			if err := s.DestroyObject(h); err != nil && token.RV(err) != ck.CKR_OBJECT_HANDLE_INVALID {
				return err
			}
		}
		return nil
	})
}

// Replicate has no other token to copy to.
func (x *Exec) Replicate(ctx context.Context, id []byte) error { return ctx.Err() }

// Close closes the idle sessions (not the token).
func (x *Exec) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.free {
		s.Close()
	}
	x.free = nil
	return nil
}
