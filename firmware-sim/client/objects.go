package client

import (
	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm/ck"
)

// What a move to another member would lose, followed so that the client
// moves voluntarily (rebalance.go) only when it loses nothing.
//
// Session objects. PKCS#11 (Base Specification 3.0, §2.4 "Objects": a
// session object is destroyed when the session that made it closes and is
// visible only to the application that made it; §2.6 "Sessions": every
// session of an application sees that application's session objects)
// makes a session object a property of the whole application, not of one
// session: that is why the unit the client spreads over a cluster is its
// connection (one application), never single sessions, and why it does not
// move while any session object lives — the appliance keeps a session
// object only on the member whose session made it, and reconnecting
// elsewhere would destroy it. A call below whose template does not set
// CKA_TOKEN to true makes a session object (CKA_TOKEN defaults to false);
// C_CopyObject without CKA_TOKEN in its template copies the source's
// (session if the source is one of ours). The object lives until
// C_DestroyObject, until its session closes, or until a reconnection ends
// its session on the appliance.
//
// Operations. An operation in progress (a C_*Init answered CKR_OK and not
// yet ended) is not carried over by the reconnection's restore (spec.md,
// "Retry rules"): the client does not move voluntarily while one is open.
// It ends, as PKCS#11 says, with the single-part call or the C_*Final
// (unless it only asked for the output's length or was answered
// CKR_BUFFER_TOO_SMALL), with an error from a C_*Update or C_DigestKey
// (§5.8–5.13: "a call ... which results in an error terminates the
// current operation"), and with C_SessionCancel; C_FindObjects and the
// message-based calls end theirs only at their C_*Final. Wherever the
// rules are unclear the operation is kept open: a client that stays is
// only less evenly spread, one that moves loses the operation.

// objectMaker says where a call's new objects are: the template argument
// that decides CKA_TOKEN and the result with the handle, for each object.
type objectMaker struct {
	tmpl, res int
	// src: C_CopyObject's source handle argument (inherits its CKA_TOKEN).
	src int
}

var callSetOperationSt = wire.MustCall("SetOperationState")

// objectMakers are the calls that make objects (the call table's every
// C_ function with an OBJECT_HANDLE result: TestObjectMakersComplete).
var objectMakers = map[*wire.Call][]objectMaker{
	callCreateObject:                 {{tmpl: 1, res: 0, src: -1}},
	callCopyObject:                   {{tmpl: 2, res: 0, src: 1}},
	wire.MustCall("GenerateKey"):     {{tmpl: 2, res: 0, src: -1}},
	wire.MustCall("GenerateKeyPair"): {{tmpl: 2, res: 0, src: -1}, {tmpl: 3, res: 1, src: -1}},
	wire.MustCall("UnwrapKey"):       {{tmpl: 4, res: 0, src: -1}},
	wire.MustCall("DeriveKey"):       {{tmpl: 3, res: 0, src: -1}},
	callEncapsulateKey:               {{tmpl: 3, res: 1, src: -1}},
	wire.MustCall("DecapsulateKey"):  {{tmpl: 3, res: 0, src: -1}},
}

// terminal are the calls that end the operation they continue (with the
// exceptions above); continuing calls not listed end it only on an error
// (endsOnError) or never.
var terminal = map[*wire.Call]bool{}

// endsOnError are the operations a failed continuing call ends.
const endsOnError = wire.OpEncrypt | wire.OpDecrypt | wire.OpDigest | wire.OpSign | wire.OpVerify |
	wire.OpSignRecover | wire.OpVerifyRecover

// cancelOps maps C_SessionCancel's flags to the operations they end.
var cancelOps = []struct {
	flag ck.Flags
	op   wire.Op
}{
	{ck.CKF_ENCRYPT, wire.OpEncrypt}, {ck.CKF_DECRYPT, wire.OpDecrypt}, {ck.CKF_DIGEST, wire.OpDigest},
	{ck.CKF_SIGN, wire.OpSign}, {ck.CKF_VERIFY, wire.OpVerify}, {ck.CKF_SIGN_RECOVER, wire.OpSignRecover},
	{ck.CKF_VERIFY_RECOVER, wire.OpVerifyRecover}, {ck.CKF_FIND_OBJECTS, wire.OpFind},
	{ck.CKF_MESSAGE_ENCRYPT, wire.OpMessageEncrypt}, {ck.CKF_MESSAGE_DECRYPT, wire.OpMessageDecrypt},
	{ck.CKF_MESSAGE_SIGN, wire.OpMessageSign}, {ck.CKF_MESSAGE_VERIFY, wire.OpMessageVerify},
}

func init() {
	for _, n := range []string{"Encrypt", "Decrypt", "Digest", "Sign", "SignRecover", "Verify", "VerifyRecover",
		"VerifySignature", "EncryptFinal", "DecryptFinal", "DigestFinal", "SignFinal", "VerifyFinal",
		"VerifySignatureFinal", "FindObjectsFinal", "MessageEncryptFinal", "MessageDecryptFinal",
		"MessageSignFinal", "MessageVerifyFinal"} {
		terminal[wire.MustCall(n)] = true
	}
}

// sessionObject reports whether a template makes a session object:
// CKA_TOKEN absent or false.
func sessionObject(t []ck.Attribute) bool {
	for _, a := range t {
		if a.Type == ck.CKA_TOKEN {
			for _, b := range a.Value {
				if b != 0 {
					return false
				}
			}
			return true
		}
	}
	return true
}

// hasToken reports whether a template sets CKA_TOKEN at all.
func hasToken(t []ck.Attribute) bool {
	for _, a := range t {
		if a.Type == ck.CKA_TOKEN {
			return true
		}
	}
	return false
}

// sizeQuery reports whether a call only asked for its output's length: an
// INT capacity argument of -1 (a NULL buffer).
func sizeQuery(call *wire.Call, args []any) bool {
	for i, t := range call.Args {
		if t.Name == "INT" && i < len(args) {
			if v, ok := args[i].(int); ok && v < 0 {
				return true
			}
		}
	}
	return false
}

// track follows session objects and open operations after an answer the
// appliance gave (r ran there). Only answers from the session's current
// connection count: what an earlier connection made is gone with it.
func (c *Client) track(r *request, vals []any, rv ck.RV) {
	s := r.sess
	if s == nil {
		return
	}
	call := r.call
	makers, makes := objectMakers[call]
	if !makes && call != callDestroyObject && call.Op == 0 && call != callSessionCancel && call != callSetOperationSt {
		return
	}
	if call.Op != 0 && !call.Init && !terminal[call] && (rv == ck.CKR_OK || rv == ck.CKR_BUFFER_TOO_SMALL) {
		return // an update that went through changes nothing here: no lock on the hot path
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.epoch != r.epoch || s.closed {
		return
	}
	switch {
	case makes:
		if rv != ck.CKR_OK {
			return
		}
		for _, m := range makers {
			t, _ := r.args[m.tmpl].([]ck.Attribute)
			h := value[ck.ObjectHandle](vals, m.res)
			if h == 0 {
				continue
			}
			session := sessionObject(t)
			if m.src >= 0 && !hasToken(t) {
				src, _ := r.args[m.src].(ck.ObjectHandle)
				session = c.sessionObjectOwner(src) != nil
			}
			if session {
				if s.objects == nil {
					s.objects = map[ck.ObjectHandle]bool{}
				}
				s.objects[h] = true
			}
		}
	case call == callDestroyObject:
		if rv == ck.CKR_OK || rv == ck.CKR_OBJECT_HANDLE_INVALID {
			h, _ := r.args[1].(ck.ObjectHandle)
			if o := c.sessionObjectOwner(h); o != nil {
				delete(o.objects, h)
			}
		}
	case call == callSessionCancel:
		if rv == ck.CKR_OK {
			f, _ := r.args[1].(ck.Flags)
			for _, x := range cancelOps {
				if f&x.flag != 0 {
					s.open &^= x.op
				}
			}
		}
	case call == callSetOperationSt:
		if rv == ck.CKR_OK {
			s.open |= endsOnError // some operation was restored: which, the client cannot tell
		}
	case call.Init:
		if rv == ck.CKR_OK {
			s.open |= call.Op
		}
	case terminal[call]:
		if rv == ck.CKR_BUFFER_TOO_SMALL || (rv == ck.CKR_OK && sizeQuery(call, r.args)) {
			return
		}
		s.open &^= call.Op
	default:
		if rv != ck.CKR_OK && rv != ck.CKR_BUFFER_TOO_SMALL {
			s.open &^= call.Op & endsOnError
		}
	}
}

// sessionObjectOwner is the session that made session object h, or nil;
// c.mu is held.
func (c *Client) sessionObjectOwner(h ck.ObjectHandle) *session {
	for _, s := range c.sessions {
		if s.objects[h] {
			return s
		}
	}
	return nil
}

// unmovable says why the connection must not be moved voluntarily now, or
// ""; c.mu is held.
func (c *Client) unmovable() string {
	for _, s := range c.sessions {
		if s.closed {
			continue
		}
		if len(s.objects) > 0 {
			return "session objects alive"
		}
		if s.open != 0 {
			return "operation in progress"
		}
	}
	return ""
}
