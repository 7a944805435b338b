package token

import (
	"github.com/gohsm/gohsm/hsm/ck"
)

// CallKind is the single-part operation a Call makes.
type CallKind uint8

const (
	CallSeal    CallKind = iota + 1 // Session.Seal: Mech.Type is the AEAD, In the plaintext, AAD bound
	CallEncrypt                     // Session.Encrypt
	CallSign                        // Session.Sign
)

// Call is one single-part operation of a run of many (Many): what to do,
// and, after Many, its result.
type Call struct {
	Kind CallKind
	Mech ck.Mechanism
	Key  ck.ObjectHandle
	In   []byte
	AAD  []byte // CallSeal only

	Out []byte
	Err error
}

// do makes c on s alone.
func (c *Call) do(s Session) {
	switch c.Kind {
	case CallSeal:
		c.Out, c.Err = s.Seal(nil, c.Mech.Type, c.Key, c.AAD, c.In)
	case CallEncrypt:
		c.Out, c.Err = s.Encrypt(c.Mech, c.Key, c.In)
	case CallSign:
		c.Out, c.Err = s.Sign(c.Mech, c.Key, c.In)
	default:
		c.Out, c.Err = nil, ck.CKR_FUNCTION_NOT_SUPPORTED
	}
}

// Batcher is a Session that makes many calls in one exchange with its
// token: the appliance's client, which sends them together in BATCH
// frames, so that a batch's run of items costs a round trip or two
// instead of one or two each. Each call has its own result; one failing
// does not stop the others.
type Batcher interface {
	Many(calls []Call)
}

// Many makes calls on s, in order: in one exchange where s is a Batcher,
// else one after another (an in-process token has no round trip to save).
func Many(s Session, calls []Call) {
	if b, ok := s.(Batcher); ok {
		b.Many(calls)
		return
	}
	for i := range calls {
		calls[i].do(s)
	}
}
