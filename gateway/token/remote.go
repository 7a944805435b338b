package token

import (
	"fmt"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// OpenRemote connects the appliance's network client (firmware-sim/client)
// with cfg and initialises it: the tokens of one appliance, or of a
// cluster when cfg.Address lists its members (a:1,b:2,c:3), as an
// hsm.Backend for FromBackend. The returned release finalises the client;
// pass it to FromBackend.
func OpenRemote(cfg client.Config) (hsm.Backend, func() error, error) {
	c, err := client.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Initialize(); err != nil {
		return nil, nil, fmt.Errorf("appliance %s: %w", cfg.Address, err)
	}
	return c, c.Finalize, nil
}

// OpenRemoteToken is the token labelled label on the appliance (or
// cluster) of cfg, logged in with pin, owning its client: FromBackend over
// OpenRemote, with the sessions made to ride out a failover.
//
// The client already moves to another member when its own fails, re-opens
// and re-logs in the sessions there, and token object handles are the same
// on every member. What it cannot hide it reports as CKR_DEVICE_ERROR, at
// once: an operation begun before the reconnection (the message-based
// AES-GCM operation a session keeps initialised, an Init whose call had
// not come), and a call in flight at the drop that would not be safe to
// send twice. For the session calls that change nothing on the token
// (encrypt, decrypt, sign, verify, random, find, read attributes, wrap) the
// operation is simply begun again, once, on the same session; a call that
// creates, changes or destroys an object is never run twice, and its error
// goes to the pool. A CKR_DEVICE_ERROR that took the client's whole
// Timeout (no member reachable) is not tried again: that would only double
// the wait.
func OpenRemoteToken(cfg client.Config, label string, pin []byte) (Token, error) {
	be, release, err := OpenRemote(cfg)
	if err != nil {
		return nil, err
	}
	t, err := FromBackend(be, label, pin, release)
	if err != nil {
		release()
		return nil, fmt.Errorf("appliance %s: %w", cfg.Address, err)
	}
	return &remoteToken{backendToken: t.(*backendToken), timeout: cfg.Timeout}, nil
}

// remoteToken is a backendToken over the client whose sessions retry.
type remoteToken struct {
	*backendToken
	timeout time.Duration
}

// OpenSession opens a session; opening one twice only leaves a session on
// a member that is gone.
func (t *remoteToken) OpenSession() (Session, error) {
	start := time.Now()
	s, err := t.backendToken.OpenSession()
	if err != nil && lostAtFailover(start, t.timeout, err) {
		s, err = t.backendToken.OpenSession()
	}
	if err != nil {
		return nil, err
	}
	return &remoteSession{backendSession: s.(*backendSession), timeout: t.timeout}, nil
}

// lostAtFailover reports whether err, from a call begun at start, is the
// client's report of an operation a reconnection ended rather than of an
// appliance it could not reach within timeout.
func lostAtFailover(start time.Time, timeout time.Duration, err error) bool {
	return RV(err) == ck.CKR_DEVICE_ERROR && time.Since(start) < timeout
}

// remoteSession is a backendSession whose read-only calls are begun again
// once when a failover ended their operation.
type remoteSession struct {
	*backendSession
	timeout time.Duration
}

// retry runs call, and once more after a failover ended its operation;
// the message-based operations the session kept are dropped first, since
// the reconnection ended them too.
func retry[T any](s *remoteSession, call func() (T, error)) (T, error) {
	start := time.Now()
	v, err := call()
	if err != nil && lostAtFailover(start, s.timeout, err) {
		s.Forget()
		v, err = call()
	}
	return v, err
}

func (s *remoteSession) Seal(dst []byte, mech ck.MechanismType, key ck.ObjectHandle, aad, plaintext []byte) ([]byte, error) {
	n := len(dst)
	return retry(s, func() ([]byte, error) { return s.backendSession.Seal(dst[:n], mech, key, aad, plaintext) })
}

func (s *remoteSession) Open(dst []byte, mech ck.MechanismType, key ck.ObjectHandle, aad, sealed []byte) ([]byte, error) {
	n := len(dst)
	return retry(s, func() ([]byte, error) { return s.backendSession.Open(dst[:n], mech, key, aad, sealed) })
}

func (s *remoteSession) Encrypt(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	return retry(s, func() ([]byte, error) { return s.backendSession.Encrypt(m, key, in) })
}

func (s *remoteSession) Decrypt(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	return retry(s, func() ([]byte, error) { return s.backendSession.Decrypt(m, key, in) })
}

// Sign goes through Many: one exchange (a C_SignMessage in the signing
// process the session keeps, or C_SignInit and C_Sign sent together),
// where the single-part path is three calls (init, size query, sign).
func (s *remoteSession) Sign(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	calls := [1]Call{{Kind: CallSign, Mech: m, Key: key, In: in}}
	s.Many(calls[:])
	return calls[0].Out, calls[0].Err
}

// singles is a remote session making its single-part calls, as Many
// makes a call the batch did not take: its Sign is the single-part one
// (the session's own goes through Many).
type singles struct{ *remoteSession }

func (s singles) Sign(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	return retry(s.remoteSession, func() ([]byte, error) { return s.backendSession.Sign(m, key, in) })
}

func (s *remoteSession) Verify(m ck.Mechanism, key ck.ObjectHandle, in, sig []byte) error {
	_, err := retry(s, func() (struct{}, error) { return struct{}{}, s.backendSession.Verify(m, key, in, sig) })
	return err
}

func (s *remoteSession) WrapKey(m ck.Mechanism, wrapping, key ck.ObjectHandle) ([]byte, error) {
	return retry(s, func() ([]byte, error) { return s.backendSession.WrapKey(m, wrapping, key) })
}

func (s *remoteSession) Random(n int) ([]byte, error) {
	return retry(s, func() ([]byte, error) { return s.backendSession.Random(n) })
}

func (s *remoteSession) FindObjects(t []ck.Attribute) ([]ck.ObjectHandle, error) {
	return retry(s, func() ([]ck.ObjectHandle, error) { return s.backendSession.FindObjects(t) })
}

func (s *remoteSession) GetAttributes(h ck.ObjectHandle, types ...ck.AttributeType) ([][]byte, error) {
	return retry(s, func() ([][]byte, error) { return s.backendSession.GetAttributes(h, types...) })
}

// maxOut is the output room a batched call asks for: more than any
// signature or ciphertext of a transit key type (ML-DSA-87's signature is
// 4,627 bytes), so that no call of a batch ends CKR_BUFFER_TOO_SMALL, which
// would leave its operation active and refuse the next call's init.
const maxOut = 1 << 16

// Many makes the calls in one exchange with the appliance (client.Batch).
// The signatures with the first signing key and a mechanism without a
// parameter are C_SignMessage calls in the message-based signing process
// the session keeps for that key (PKCS#11 3.0 §5.15: one call per
// signature, not a C_SignInit and a C_Sign); other signatures are a
// C_SignInit and a C_Sign each; each RSA encryption a C_EncryptInit and a
// C_Encrypt; the AES-GCM seals of one key are C_EncryptMessage calls on
// the message operation the session keeps (a kept process is begun first,
// a round trip, when the session has none for the key; seals under
// another key, and other AEADs, are made one by one after). Calls on one
// session run on the appliance in the order they were added. A call that
// a failover ended is made again, alone, as a single call would be.
func (s *remoteSession) Many(calls []Call) {
	c, ok := s.be.(*client.Client)
	if !ok {
		for i := range calls {
			calls[i].do(singles{s})
		}
		return
	}
	start := time.Now()
	alone := s.batch(c, calls)
	for i := range calls {
		cl := &calls[i]
		if alone[i] || (cl.Err != nil && lostAtFailover(start, s.timeout, cl.Err)) {
			if !alone[i] {
				s.Forget()
			}
			cl.do(singles{s})
		}
	}
}

// batch adds what it can of calls to one client.Batch and runs it; the
// calls it left out, or that found the kept signing process gone, are
// marked in the result, for Many to make alone.
func (s *remoteSession) batch(c *client.Client, calls []Call) (alone []bool) {
	alone = make([]bool, len(calls))
	type pending struct {
		init, call *client.Pending
		gcm        *ck.GCMMessageParams
		buf        []byte
		msgSign    bool
	}
	ps := make([]pending, len(calls))
	b := c.NewBatch()
	var sealKey, signKey ck.ObjectHandle
	msgSign := true // false once the appliance refused a signing process
	for i := range calls {
		cl := &calls[i]
		cl.Out, cl.Err = nil, nil
		switch {
		case cl.Kind == CallSign && msgSign && cl.Mech.Param == nil &&
			(signKey == 0 || signKey == cl.Key && s.signMech == cl.Mech.Type):
			if signKey == 0 {
				if s.signKey != cl.Key || s.signMech != cl.Mech.Type {
					if err := s.initMessageSign(cl.Mech, cl.Key); err != nil {
						// No process (a token without message-based
						// signing, a key it refuses): single-part calls.
						msgSign = false
						ps[i].init = b.Add("SignInit", s.h, cl.Mech, cl.Key)
						ps[i].call = b.Add("Sign", s.h, cl.In, maxOut)
						continue
					}
				}
				signKey = cl.Key
			}
			ps[i].msgSign = true
			ps[i].call = b.Add("SignMessage", s.h, nil, cl.In, maxOut)
		case cl.Kind == CallSign:
			ps[i].init = b.Add("SignInit", s.h, cl.Mech, cl.Key)
			ps[i].call = b.Add("Sign", s.h, cl.In, maxOut)
		case cl.Kind == CallEncrypt:
			ps[i].init = b.Add("EncryptInit", s.h, cl.Mech, cl.Key)
			ps[i].call = b.Add("Encrypt", s.h, cl.In, maxOut)
		case cl.Kind == CallSeal && cl.Mech.Type == ck.CKM_AES_GCM && (sealKey == 0 || sealKey == cl.Key):
			if sealKey == 0 {
				// The message operation is begun before the batch (a
				// round trip, once per key and session), so every seal
				// of the batch finds it.
				if s.encKey != cl.Key || s.encMech != ck.CKM_AES_GCM {
					if err := s.initMessage(true, ck.CKM_AES_GCM, cl.Key); err != nil {
						cl.Err = err
						continue
					}
				}
				sealKey = cl.Key
			}
			// One buffer for nonce || ciphertext || tag, as Seal's.
			buf := make([]byte, NonceSize+len(cl.In)+TagSize)
			p := &ck.GCMMessageParams{IV: buf[:NonceSize:NonceSize], IVGenerator: ck.CKG_GENERATE_RANDOM,
				Tag: buf[len(buf)-TagSize : len(buf) : len(buf)], TagBits: TagSize * 8}
			ps[i].gcm, ps[i].buf = p, buf
			ps[i].call = b.Add("EncryptMessage", s.h, p, cl.AAD, cl.In, len(cl.In))
		default:
			alone[i] = true
		}
	}
	b.Run()
	for i := range calls {
		cl, p := &calls[i], &ps[i]
		if p.call == nil {
			continue
		}
		if p.init != nil {
			if err := p.init.Err(); err != nil {
				cl.Err = err
				continue
			}
		}
		out, err := p.call.Bytes(0)
		switch {
		case err != nil:
			if p.gcm != nil && RV(err) == ck.CKR_KEY_EXHAUSTED {
				s.encKey = 0 // 2^32 messages under one init: the next seal begins another
			}
			if p.msgSign && RV(err) == ck.CKR_OPERATION_NOT_INITIALIZED {
				// The process ended under the session (a logout): the
				// next batch begins another, and this call goes alone.
				s.signKey = 0
				alone[i] = true
			}
			cl.Err = err
		case p.gcm == nil:
			cl.Out = out
		case len(p.gcm.IV) != NonceSize || len(p.gcm.Tag) != TagSize || len(out) != len(cl.In):
			cl.Err = fmt.Errorf("token returned IV %d bytes, tag %d, ciphertext %d for %d: %w", len(p.gcm.IV), len(p.gcm.Tag), len(out), len(cl.In), ck.CKR_DEVICE_ERROR)
		default:
			copy(p.buf[:NonceSize], p.gcm.IV)
			copy(p.buf[NonceSize:], out)
			copy(p.buf[NonceSize+len(cl.In):], p.gcm.Tag)
			cl.Out = p.buf
		}
	}
	return alone
}
