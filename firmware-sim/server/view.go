package server

import (
	"slices"
	"strings"

	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The per-identity view. The engine behind a connection is the
// connection's own (one PKCS#11 application per connection); on top of it,
// a connection sees:
//   - slots: only its partitions' tokens exist (GetSlotList filters, any
//     other slot id is CKR_SLOT_ID_INVALID); the free uninitialised slot
//     exists only for an administrator, and only an administrator may
//     C_InitToken (others get CKR_TOKEN_WRITE_PROTECTED on their own tokens);
//   - sessions: only the ones it opened (dispatch refuses others with
//     CKR_SESSION_HANDLE_INVALID); C_CloseAllSessions and C_Finalize close
//     only those, and so does a dropped connection.
// C_Initialize is answered CKR_OK without reaching the engine, which the
// server initialised and which other connections share.

var (
	callInitialize       = wire.MustCall("Initialize")
	callFinalize         = wire.MustCall("Finalize")
	callGetSlotList      = wire.MustCall("GetSlotList")
	callOpenSession      = wire.MustCall("OpenSession")
	callCloseSession     = wire.MustCall("CloseSession")
	callCloseAllSessions = wire.MustCall("CloseAllSessions")
	callInitToken        = wire.MustCall("InitToken")
	callWaitForSlotEvent = wire.MustCall("WaitForSlotEvent")
)

// visible reports whether slot exists for this connection. An error other
// than CKR_SLOT_ID_INVALID (the engine is finalised) is returned as is.
func (c *conn) visible(slot ck.SlotID) (bool, error) {
	// Asked of the engine itself, not through WrapBackend's decorators: a
	// fault plan that removed the token must not hide the slot (it shows
	// CKF_TOKEN_PRESENT off), and the view's own questions are neither
	// audited nor counted as calls.
	be := c.be
	if c.eng != nil {
		be = c.eng.raw
	}
	info, err := be.GetTokenInfo(slot)
	if err != nil {
		if hsm.ToRV(err) == ck.CKR_SLOT_ID_INVALID {
			return false, nil
		}
		return false, err
	}
	if info.Flags&ck.CKF_TOKEN_INITIALIZED == 0 {
		return c.admin, nil
	}
	return c.all || slices.Contains(c.parts, strings.TrimRight(info.Label, " ")), nil
}

// invoke runs a decoded call through the view.
func (c *conn) invoke(d wire.Decoded) ([]any, error) {
	call, args := d.Call, d.Args
	if call.Slot {
		ok, err := c.visible(args[0].(ck.SlotID))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ck.CKR_SLOT_ID_INVALID
		}
	}
	switch call {
	case callInitialize:
		return nil, nil
	case callFinalize:
		c.closeSessions(func(ck.SlotID) bool { return true })
		return nil, nil
	case callGetSlotList:
		list, err := c.be.GetSlotList(args[0].(bool))
		if err != nil {
			return []any{list}, err
		}
		out := list[:0:0]
		for _, s := range list {
			ok, err := c.visible(s)
			if err != nil {
				return []any{[]ck.SlotID(nil)}, err
			}
			if ok {
				out = append(out, s)
			}
		}
		return []any{out}, nil
	case callOpenSession:
		slot := args[0].(ck.SlotID)
		c.smu.Lock()
		n := len(c.sessions)
		c.smu.Unlock()
		if n >= c.srv.cfg.MaxSessionsPerConn {
			return []any{ck.SessionHandle(0)}, ck.CKR_SESSION_COUNT
		}
		h, err := c.be.OpenSession(slot, args[1].(ck.Flags))
		if err == nil {
			c.smu.Lock()
			c.sessions[h] = &sessq{slot: slot}
			c.smu.Unlock()
			select {
			case <-c.closed:
				// The connection closed while the session was opened; its
				// sessions are being closed and this one must be too.
				c.closeSessions(func(ck.SlotID) bool { return true })
			default:
			}
		}
		return []any{h}, err
	case callCloseSession:
		h := args[0].(ck.SessionHandle)
		err := c.be.CloseSession(h)
		if err == nil || hsm.ToRV(err) == ck.CKR_SESSION_HANDLE_INVALID {
			c.smu.Lock()
			delete(c.sessions, h)
			c.smu.Unlock()
		}
		return nil, err
	case callCloseAllSessions:
		slot := args[0].(ck.SlotID)
		c.closeSessions(func(s ck.SlotID) bool { return s == slot })
		return nil, nil
	case callInitToken:
		if !c.admin {
			return nil, ck.CKR_TOKEN_WRITE_PROTECTED
		}
	case callWaitForSlotEvent:
		slot, err := c.be.WaitForSlotEvent(args[0].(ck.Flags))
		if err == nil {
			if ok, _ := c.visible(slot); !ok {
				return []any{ck.SlotID(0)}, ck.CKR_NO_EVENT
			}
		}
		return []any{slot}, err
	}
	return call.Invoke(c.be, args)
}
