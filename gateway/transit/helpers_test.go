package transit

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/kv"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// fixture is one Engine on a real token (in-process engine over a token
// store on disk) with its metadata in memory.
type fixture struct {
	e   *Engine
	tok token.Token
	ex  *gwtest.Exec
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	dir := gwtest.Store(t, "gw")
	tok := gwtest.Token(t, dir, "gw")
	ex := gwtest.NewExec(tok)
	t.Cleanup(func() { ex.Close() })
	e, err := New("transit", ex, kv.NewMem(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{e: e, tok: tok, ex: ex}
}

var bg = context.Background()

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// mustOK(call())(t) is call's value, failing t on its error.
func mustOK[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantErr checks a request-level error's status and that its message
// holds want.
func wantErr(t testing.TB, err error, status int, want string) {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T), want *Error %d %q", err, err, status, want)
	}
	if te.Status != status || !strings.Contains(te.Msg, want) {
		t.Fatalf("error %d %q, want %d containing %q", te.Status, te.Msg, status, want)
	}
}

// objects lists the token's objects whose CKA_ID starts with prefix.
func objects(t testing.TB, tok token.Token, prefix string) map[string]ck.ObjectHandle {
	t.Helper()
	s, err := tok.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs, err := s.FindObjects(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ck.ObjectHandle{}
	for _, h := range hs {
		a, err := s.GetAttributes(h, ck.CKA_ID)
		if err != nil {
			t.Fatal(err)
		}
		if id := string(a[0]); strings.HasPrefix(id, prefix) {
			out[id] = h
		}
	}
	return out
}
