package client

import (
	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Size queries answered by the client.
//
// Most applications ask for an output's length before they ask for the
// output (C_Sign with a NULL buffer, then C_Sign; miekg/pkcs11 and crypto11
// always do), so a remote signature is three round trips where two would
// do, and on a shared machine every round trip costs the calling thread a
// sleep and a wake-up (docs/bench-remote.md). The engine's answer to a
// size query of C_Sign, C_Encrypt and C_Decrypt is a function of the
// operation's key, its mechanism and parameter, and the input's length
// alone (hsm/ops.go: signer.Len, cipher.OneShotLen), never of the input's
// bytes, so the client remembers each answer the appliance gave and gives
// it again, without a round trip, to the same question: the same slot,
// key, mechanism, parameter and input length, on the same connection (an
// appliance restart may bring other keys under the same session-object
// handles: the memory is per epoch).
//
// It answers only for an operation it knows is live and not in multi-part
// mode: started by a C_*Init that succeeded on this connection, followed
// only by size queries or CKR_BUFFER_TOO_SMALL answers of the single-part
// call, and with nothing else called meanwhile that could end it — any
// call outside a small read-only list, on any session, makes the client
// forget what it knew (gen), so a C_Logout, C_SessionCancel,
// C_SetOperationState, C_CloseAllSessions or a batch goes back to asking.
// A size query claims the operation for single-part use (PKCS#11 3.0
// §5.2: an operation is single- or multi-part), which the appliance would
// have recorded; when the application then calls C_SignUpdate (or
// C_*Update, C_*Final) on it, the client first sends the size query it
// answered, so that the appliance ends the operation with
// CKR_OPERATION_ACTIVE exactly as the local engine does.

// sizeOps are the operations whose size queries are answered here, with
// their calls.
var sizeOps = []struct {
	op         wire.Op
	init, data *wire.Call
}{
	{wire.OpEncrypt, callEncryptInit, callEncrypt},
	{wire.OpDecrypt, callDecryptInit, callDecrypt},
	{wire.OpSign, callSignInit, callSign},
}

// sizeNeutral are the calls that cannot end another session's operation
// or change what a size query answers: reads.
var sizeNeutral = map[*wire.Call]bool{}

func init() {
	for _, n := range []string{"GetInfo", "GetSlotList", "GetSlotInfo", "GetTokenInfo", "GetMechanismList",
		"GetMechanismInfo", "GetSessionInfo", "GetObjectSize", "GetAttributeValue", "FindObjectsInit",
		"FindObjects", "FindObjectsFinal", "GenerateRandom", "DigestInit", "Digest", "DigestUpdate",
		"DigestFinal", "VerifyInit", "Verify", "VerifyUpdate", "VerifyFinal"} {
		sizeNeutral[wire.MustCall(n)] = true
	}
}

// opTrack is what the client knows of one operation of a session.
type opTrack struct {
	live  bool
	epoch uint64 // the connection its C_*Init ran on
	gen   uint64 // Client.sizeGen when the C_*Init was sent
	key   sizeKey
	// claimed: a size query answered here claimed the operation for
	// single-part use, and the appliance has not seen one yet.
	claimed bool
}

// sizeKey names one size question.
type sizeKey struct {
	epoch uint64
	slot  ck.SlotID
	key   ck.ObjectHandle
	op    wire.Op
	mech  string // the mechanism and its parameter, wire-encoded
	inLen int
}

// maxSizes bounds the memory: past it, it starts again.
const maxSizes = 4096

// sizeIndex is the index of op in sizeOps and session.track, or -1.
func sizeIndex(op wire.Op) int {
	for i, s := range sizeOps {
		if s.op == op {
			return i
		}
	}
	return -1
}

// sizeBefore runs before a call is prepared. It answers a size query it
// can (done), sends the size query it answered before a call that would
// have found the operation claimed, and forgets everything when the call
// is not neutral. gen is the generation the call was made in.
func (c *Client) sizeBefore(call *wire.Call, args []any) (vals []any, done bool, gen uint64) {
	c.mu.Lock()
	gen = c.sizeGen
	if call.Op == 0 || !call.Session {
		c.mu.Unlock()
		return nil, false, gen
	}
	s := c.sessions[args[0].(ck.SessionHandle)]
	if s == nil || s.closed {
		c.mu.Unlock()
		return nil, false, gen
	}
	var claimed []int
	for i, so := range sizeOps {
		t := &s.track[i]
		if call.Op&so.op == 0 || !t.live {
			continue
		}
		switch {
		case call == so.data && args[2].(int) < 0 && t.valid(c, s):
			k := t.key
			k.inLen = len(args[1].([]byte))
			if n, ok := c.sizes[k]; ok {
				t.claimed = true
				c.mu.Unlock()
				return []any{[]byte(nil), n}, true, gen
			}
		case call == so.data || call == so.init:
			// The appliance sees the single-part call itself, or a new
			// C_*Init (answered CKR_OPERATION_ACTIVE while one is live).
		default:
			// C_*Update, C_*Final, a dual-function call: multi-part.
			if t.claimed {
				claimed = append(claimed, i)
			}
			t.live = false
		}
	}
	c.mu.Unlock()
	for _, i := range claimed {
		// The claim the appliance did not see: it ends the operation with
		// CKR_OPERATION_ACTIVE at the call that follows, as the engine
		// would have. Its own answer was given already.
		c.callRaw(sizeOps[i].data, args[0], []byte(nil), -1)
	}
	return nil, false, gen
}

// sizeForget makes the client forget what it knew of every operation
// unless call is neutral or its bookkeeping is done here; c.mu is held
// (prepare, for every call).
func (c *Client) sizeForget(call *wire.Call) {
	if !sizeNeutral[call] && !sizeTracked(call) {
		c.sizeGen++
	}
}

// sizeTracked reports whether call is an Init or single-part call of a
// tracked operation.
func sizeTracked(call *wire.Call) bool {
	for _, so := range sizeOps {
		if call == so.init || call == so.data {
			return true
		}
	}
	return false
}

// valid reports whether what t knows still holds; c.mu is held.
func (t *opTrack) valid(c *Client, s *session) bool {
	return t.epoch == s.epoch && t.gen == c.sizeGen && s.epoch == c.epoch && !s.broken
}

// sizeAfter records what an answered call says about its operation.
func (c *Client) sizeAfter(call *wire.Call, args []any, r *request, gen uint64, vals []any, err error) {
	if r == nil || r.sess == nil {
		return
	}
	for i, so := range sizeOps {
		if call != so.init && call != so.data {
			continue
		}
		c.mu.Lock()
		s, t := r.sess, &r.sess.track[i]
		switch {
		case call == so.init && err == nil && r.epoch == s.epoch:
			m, _ := args[1].(ck.Mechanism)
			var e wire.Encoder
			wire.EncodeMechanism(&e, m)
			*t = opTrack{live: true, epoch: r.epoch, gen: gen,
				key: sizeKey{epoch: r.epoch, slot: s.slot, key: args[2].(ck.ObjectHandle), op: so.op, mech: string(e.B)}}
		case call == so.init:
			// Failed, or CKR_OPERATION_ACTIVE: what ran before, if
			// anything, is in an unknown state.
			t.live = false
		case call == so.data && args[2].(int) < 0 && err == nil && t.live && t.epoch == r.epoch && t.gen == gen:
			// Nothing that could have replaced the operation ran since its
			// C_*Init (gen): the answer is for t.key.
			t.claimed = false // the appliance claimed it itself
			k := t.key
			k.inLen = len(args[1].([]byte))
			if c.sizes == nil || len(c.sizes) >= maxSizes {
				c.sizes = map[sizeKey]int{}
			}
			c.sizes[k] = vals[1].(int)
		case call == so.data && args[2].(int) >= 0 && hsm.ToRV(err) == ck.CKR_BUFFER_TOO_SMALL:
			t.claimed = false
		case call == so.data:
			t.live = false // done, or ended by its error
		}
		c.mu.Unlock()
	}
}
