package client

import (
	"sync/atomic"
	"testing"

	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// countingBackend counts the size queries of C_Sign the appliance's engine
// answers.
type countingBackend struct {
	hsm.Backend
	queries *atomic.Int64
}

func (b countingBackend) Sign(h ck.SessionHandle, in []byte, outCap int) ([]byte, int, error) {
	if outCap < 0 {
		b.queries.Add(1)
	}
	return b.Backend.Sign(h, in, outCap)
}

// TestSizeQueriesAnsweredHere: the client answers a size query it has seen
// answered, and asks again after anything that may have changed the
// answer or ended the operation (sizes.go).
func TestSizeQueriesAnsweredHere(t *testing.T) {
	var queries atomic.Int64
	dir := newStore(t, "alpha")
	a := newAppliance(t, dir, identities{"app": {"alpha"}}, func(c *server.Config) {
		open := c.Open
		c.Open = func(id string) (hsm.Backend, error) {
			be, err := open(id)
			if err != nil {
				return nil, err
			}
			return countingBackend{be, &queries}, nil
		}
	})
	c := a.pipeClient("app")
	s := userSession(t, c, 0)
	_, priv, err := c.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256OID}},
		// Token objects: the key survives the appliance's restart.
		[]ck.Attribute{{Type: ck.CKA_SIGN, Value: attr.Bool(true)}, {Type: ck.CKA_TOKEN, Value: attr.Bool(true)}})
	must(t, err)
	sign := func(digestLen int) {
		t.Helper()
		must(t, c.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv))
		_, n, err := c.Sign(s, make([]byte, digestLen), -1)
		must(t, err)
		if n != 64 {
			t.Fatalf("size %d", n)
		}
		sig, _, err := c.Sign(s, make([]byte, digestLen), n)
		must(t, err)
		if len(sig) != 64 {
			t.Fatalf("signature of %d bytes", len(sig))
		}
	}
	want := func(n int64, what string) {
		t.Helper()
		if got := queries.Load(); got != n {
			t.Fatalf("%s: the appliance answered %d size queries, want %d", what, got, n)
		}
	}
	for range 10 {
		sign(32)
	}
	want(1, "ten signatures")
	sign(48) // another input length: another question
	want(2, "another length")
	sign(32)
	want(2, "the first length again")
	// A call that is not a read, between C_SignInit and the query: the
	// client no longer knows the operation is the one it started.
	must(t, c.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv))
	must(t, c.SetAttributeValue(s, priv, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("k")}}))
	_, n, err := c.Sign(s, make([]byte, 32), -1)
	must(t, err)
	if n != 64 {
		t.Fatalf("size %d", n)
	}
	want(3, "C_SetAttributeValue between")
	_, _, err = c.Sign(s, make([]byte, 32), n)
	must(t, err)
	// What the appliance answered for a key still holds after it.
	sign(32)
	want(3, "the next signature")
	// An operation the appliance's restart ended: reported, not answered.
	must(t, c.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv))
	a.restart()
	// The client may not have seen the drop yet: then its answer to the
	// size query is as if the drop came just after it, and the signature
	// itself reports the loss.
	_, _, err = c.Sign(s, make([]byte, 32), -1)
	if err == nil {
		_, _, err = c.Sign(s, make([]byte, 32), 64)
	}
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	want(3, "an operation lost in a restart")
	// A new connection: asked again.
	sign(32)
	want(4, "after the appliance restarted")
	// A batch between C_SignInit and the query: the client does not follow
	// what a batch does to operations.
	must(t, c.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv))
	b := c.NewBatch()
	b.Add("GetSessionInfo", s)
	b.Run()
	_, _, err = c.Sign(s, make([]byte, 32), -1)
	must(t, err)
	want(5, "a batch between")
}
