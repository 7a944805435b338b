// Package gwtest makes token stores for the gateway's tests: real stores on
// disk (tokens.Open), initialised tokens, a cheap PIN KDF.
package gwtest

import (
	"testing"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// PINs of the tokens Store makes.
const (
	SOPIN   = "test-so-pin"
	UserPIN = "123456"
)

// Cheap is the engine configuration of the tests: a PIN KDF of 10
// iterations instead of 210,000.
func Cheap(c *hsm.Config) { c.KDFIterations = 10 }

// Store makes a token store in a temporary directory with one initialised
// token per label, and returns the directory.
func Store(t testing.TB, labels ...string) string {
	t.Helper()
	dir := t.TempDir()
	be, release, err := token.OpenEngine(dir, Cheap)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, l := range labels {
		if err := InitToken(be, l); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// InitToken initialises the free slot of be as a token labelled label with
// the PINs above.
func InitToken(be hsm.Backend, label string) error {
	slots, err := be.GetSlotList(false)
	if err != nil {
		return err
	}
	for _, s := range slots {
		info, err := be.GetTokenInfo(s)
		if err != nil {
			return err
		}
		if info.Flags&ck.CKF_TOKEN_INITIALIZED != 0 {
			continue
		}
		if err := be.InitToken(s, []byte(SOPIN), label); err != nil {
			return err
		}
		h, err := be.OpenSession(s, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		if err != nil {
			return err
		}
		defer be.CloseSession(h)
		if err := be.Login(h, ck.CKU_SO, []byte(SOPIN)); err != nil {
			return err
		}
		if err := be.InitPIN(h, []byte(UserPIN)); err != nil {
			return err
		}
		return be.Logout(h)
	}
	return nil
}

// Token opens the token labelled label in dir with an engine of its own.
func Token(t testing.TB, dir, label string) token.Token {
	t.Helper()
	tok, err := token.OpenEngineToken(dir, label, []byte(UserPIN), Cheap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}
