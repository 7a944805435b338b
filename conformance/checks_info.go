package conformance

import (
	"fmt"

	"github.com/miekg/pkcs11"
)

const bogusSlot = 0x7A5A0F01

// padded reports why b is not a blank-padded PKCS#11 string (base 3.1:
// "must be padded with the blank character (' '). Should not be
// null-terminated"), or "".
func padded(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return fmt.Sprintf("NUL byte at %d in %q", i, b)
		}
	}
	return ""
}

// printable rejects control characters in a UTF-8 info string.
func printable(b []byte) string {
	if msg := padded(b); msg != "" {
		return msg
	}
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			return fmt.Sprintf("control byte 0x%02x at %d in %q", c, i, b)
		}
	}
	return ""
}

func (t *T) strField(name string, b []byte) {
	if msg := printable(b); msg != "" {
		t.failf("%s: %s", name, msg)
	}
}

// freeSlotID is the slot the suite will initialise, found before any token
// group runs.
func (t *T) freeSlotID() uint {
	id, err := t.s.freeSlot()
	if err != nil {
		t.failf("%v", err)
	}
	return id
}

func infoChecks() []check {
	return []check{
		{id: "info.cryptoki-version", spec: "base 3.1 CK_INFO, 5.4.3 C_GetInfo", fn: func(t *T) {
			i, rv := t.s.raw.getInfo()
			t.okRV(rv, "C_GetInfo")
			if i.cryptoki[0] != 2 && i.cryptoki[0] != 3 {
				t.failf("cryptokiVersion %d.%d, want 2.x or 3.x", i.cryptoki[0], i.cryptoki[1])
			}
			t.note("cryptokiVersion %d.%d", i.cryptoki[0], i.cryptoki[1])
		}},
		{id: "info.manufacturer-padded", spec: "base 3.1 CK_INFO (blank-padded, not NUL-terminated)", fn: func(t *T) {
			i, rv := t.s.raw.getInfo()
			t.okRV(rv, "C_GetInfo")
			t.strField("manufacturerID", i.manuf)
		}},
		{id: "info.description-padded", spec: "base 3.1 CK_INFO (blank-padded, not NUL-terminated)", fn: func(t *T) {
			i, rv := t.s.raw.getInfo()
			t.okRV(rv, "C_GetInfo")
			t.strField("libraryDescription", i.desc)
		}},
		{id: "info.flags-zero", spec: "base 3.1 CK_INFO (flags reserved, must be zero)", fn: func(t *T) {
			i, rv := t.s.raw.getInfo()
			t.okRV(rv, "C_GetInfo")
			if i.flags != 0 {
				t.failf("CK_INFO.flags = 0x%x", i.flags)
			}
		}},
		{id: "slots.list.null-count", spec: "base 5.5.1 C_GetSlotList", fn: func(t *T) {
			t.expectRV(t.s.raw.slotListNullCount(), "C_GetSlotList(pulCount NULL)", pkcs11.CKR_ARGUMENTS_BAD)
		}},
		{id: "slots.list.size-query", spec: "base 5.5.1 C_GetSlotList, 5.2", fn: func(t *T) {
			_, n, rv := t.s.raw.slotList(false, -1)
			t.okRV(rv, "C_GetSlotList(NULL list)")
			if n == 0 {
				t.failf("no slot at all")
			}
			list, n2, rv := t.s.raw.slotList(false, int(n))
			t.okRV(rv, "C_GetSlotList with the returned count")
			if n2 != n || len(list) != int(n) {
				t.failf("size query said %d slots, list call returned %d", n, n2)
			}
		}},
		{id: "slots.list.too-small", spec: "base 5.5.1 C_GetSlotList, 5.2 (CKR_BUFFER_TOO_SMALL)", fn: func(t *T) {
			_, n, rv := t.s.raw.slotList(false, -1)
			t.okRV(rv, "C_GetSlotList(NULL list)")
			_, n2, rv := t.s.raw.slotList(false, int(n)-1)
			t.expectRV(rv, fmt.Sprintf("C_GetSlotList with room for %d of %d", n-1, n), pkcs11.CKR_BUFFER_TOO_SMALL)
			if n2 != n {
				t.failf("CKR_BUFFER_TOO_SMALL must set *pulCount to %d, got %d", n, n2)
			}
		}},
		{id: "slots.list.present-subset", spec: "base 5.5.1 C_GetSlotList (tokenPresent)", fn: func(t *T) {
			all, _, rv := t.s.raw.slotList(false, 64)
			t.okRV(rv, "C_GetSlotList(FALSE)")
			present, _, rv := t.s.raw.slotList(true, 64)
			t.okRV(rv, "C_GetSlotList(TRUE)")
			in := map[uint]bool{}
			for _, s := range all {
				in[s] = true
			}
			for _, s := range present {
				if !in[s] {
					t.failf("slot %d listed with a token but missing from the full list %v", s, all)
				}
				si, rv := t.s.raw.slotInfo(s)
				t.okRV(rv, "C_GetSlotInfo")
				if si.flags&pkcs11.CKF_TOKEN_PRESENT == 0 {
					t.failf("slot %d listed with tokenPresent but lacks CKF_TOKEN_PRESENT", s)
				}
			}
		}},
		{id: "slots.info.invalid", spec: "base 5.5.2 C_GetSlotInfo", fn: func(t *T) {
			_, rv := t.s.raw.slotInfo(bogusSlot)
			t.expectRV(rv, "C_GetSlotInfo(bogus slot)", pkcs11.CKR_SLOT_ID_INVALID)
		}},
		{id: "slots.info.padded", spec: "base 3.2 CK_SLOT_INFO (blank-padded strings)", fn: func(t *T) {
			si, rv := t.s.raw.slotInfo(t.freeSlotID())
			t.okRV(rv, "C_GetSlotInfo")
			t.strField("slotDescription", si.desc)
			t.strField("manufacturerID", si.manuf)
		}},
		{id: "slots.tokeninfo.invalid", spec: "base 5.5.3 C_GetTokenInfo", fn: func(t *T) {
			_, rv := t.s.raw.tokenInfo(bogusSlot)
			t.expectRV(rv, "C_GetTokenInfo(bogus slot)", pkcs11.CKR_SLOT_ID_INVALID)
		}},
		{id: "slots.tokeninfo.padded", spec: "base 3.2 CK_TOKEN_INFO (blank-padded strings)", fn: func(t *T) {
			ti, rv := t.s.raw.tokenInfo(t.freeSlotID())
			t.okRV(rv, "C_GetTokenInfo")
			t.strField("label", ti.label)
			t.strField("manufacturerID", ti.manuf)
			t.strField("model", ti.model)
			t.strField("serialNumber", ti.serial)
		}},
		{id: "slots.tokeninfo.uninitialised-flags", spec: "base 3.2 CK_TOKEN_INFO flags", fn: func(t *T) {
			ti, rv := t.s.raw.tokenInfo(t.freeSlotID())
			t.okRV(rv, "C_GetTokenInfo")
			if ti.flags&pkcs11.CKF_USER_PIN_INITIALIZED != 0 {
				t.failf("uninitialised token has CKF_USER_PIN_INITIALIZED")
			}
		}},
		{id: "slots.tokeninfo.pin-lengths", spec: "base 3.2 CK_TOKEN_INFO (ulMinPinLen <= ulMaxPinLen)", fn: func(t *T) {
			ti, rv := t.s.raw.tokenInfo(t.freeSlotID())
			t.okRV(rv, "C_GetTokenInfo")
			if ti.minPin > ti.maxPin || ti.maxPin == 0 {
				t.failf("ulMinPinLen %d, ulMaxPinLen %d", ti.minPin, ti.maxPin)
			}
			t.note("PIN length %d..%d", ti.minPin, ti.maxPin)
		}},
		{id: "slots.tokeninfo.session-counts", spec: "base 3.2 CK_TOKEN_INFO (session counts)", fn: func(t *T) {
			ti, rv := t.s.raw.tokenInfo(t.freeSlotID())
			t.okRV(rv, "C_GetTokenInfo")
			special := func(v uint) bool { return v == pkcs11.CK_UNAVAILABLE_INFORMATION || v == 0 }
			if !special(ti.maxSess) && ti.sess != pkcs11.CK_UNAVAILABLE_INFORMATION && ti.sess > ti.maxSess {
				t.failf("ulSessionCount %d > ulMaxSessionCount %d", ti.sess, ti.maxSess)
			}
			if !special(ti.maxRW) && ti.rw != pkcs11.CK_UNAVAILABLE_INFORMATION && ti.rw > ti.maxRW {
				t.failf("ulRwSessionCount %d > ulMaxRwSessionCount %d", ti.rw, ti.maxRW)
			}
		}},
		{id: "slots.tokeninfo.utc-time", spec: "base 3.2 CK_TOKEN_INFO (utcTime when CKF_CLOCK_ON_TOKEN)", fn: func(t *T) {
			ti, rv := t.s.raw.tokenInfo(t.freeSlotID())
			t.okRV(rv, "C_GetTokenInfo")
			if ti.flags&pkcs11.CKF_CLOCK_ON_TOKEN == 0 {
				t.note("no clock on token; utcTime not used")
				return
			}
			for i, c := range ti.utc[:14] {
				if c < '0' || c > '9' {
					t.failf("utcTime %q: byte %d not a digit", ti.utc, i)
				}
			}
		}},
		{id: "slots.mechlist.invalid-slot", spec: "base 5.5.5 C_GetMechanismList", fn: func(t *T) {
			_, _, rv := t.s.raw.mechList(bogusSlot, -1)
			t.expectRV(rv, "C_GetMechanismList(bogus slot)", pkcs11.CKR_SLOT_ID_INVALID)
		}},
		{id: "slots.mechlist.too-small", spec: "base 5.5.5 C_GetMechanismList, 5.2", fn: func(t *T) {
			slot := t.freeSlotID()
			_, n, rv := t.s.raw.mechList(slot, -1)
			t.okRV(rv, "C_GetMechanismList(NULL)")
			if n == 0 {
				t.failf("empty mechanism list")
			}
			_, n2, rv := t.s.raw.mechList(slot, int(n)-1)
			t.expectRV(rv, "C_GetMechanismList with one entry too few", pkcs11.CKR_BUFFER_TOO_SMALL)
			if n2 != n {
				t.failf("*pulCount after CKR_BUFFER_TOO_SMALL = %d, want %d", n2, n)
			}
			list, _, rv := t.s.raw.mechList(slot, int(n))
			t.okRV(rv, "C_GetMechanismList")
			t.note("%d mechanisms", len(list))
		}},
		{id: "slots.mechinfo.invalid", spec: "base 5.5.6 C_GetMechanismInfo", fn: func(t *T) {
			_, err := t.s.ctx.GetMechanismInfo(t.freeSlotID(), []*pkcs11.Mechanism{pkcs11.NewMechanism(0x7ffffff0, nil)})
			t.expect(err, "C_GetMechanismInfo(unknown mechanism)", pkcs11.CKR_MECHANISM_INVALID)
		}},
		{id: "slots.mechinfo.key-sizes", spec: "base 3.5 CK_MECHANISM_INFO (ulMinKeySize <= ulMaxKeySize)", fn: func(t *T) {
			slot := t.freeSlotID()
			ms, err := t.s.ctx.GetMechanismList(slot)
			t.ok(err, "C_GetMechanismList")
			for _, m := range ms {
				mi, err := t.s.ctx.GetMechanismInfo(slot, []*pkcs11.Mechanism{m})
				t.ok(err, "C_GetMechanismInfo("+mechName(m.Mechanism)+")")
				if mi.MinKeySize > mi.MaxKeySize {
					t.failf("%s: ulMinKeySize %d > ulMaxKeySize %d", mechName(m.Mechanism), mi.MinKeySize, mi.MaxKeySize)
				}
			}
		}},
		{id: "slots.open.invalid-slot", spec: "base 5.6.1 C_OpenSession", fn: func(t *T) {
			_, err := t.s.ctx.OpenSession(bogusSlot, pkcs11.CKF_SERIAL_SESSION)
			t.expect(err, "C_OpenSession(bogus slot)", pkcs11.CKR_SLOT_ID_INVALID)
		}},
		{id: "slots.open.no-serial-flag", spec: "base 5.6.1 C_OpenSession (CKF_SERIAL_SESSION must be set)", fn: func(t *T) {
			sh, err := t.s.ctx.OpenSession(t.freeSlotID(), 0)
			if err == nil {
				t.s.ctx.CloseSession(sh)
			}
			t.expect(err, "C_OpenSession without CKF_SERIAL_SESSION", pkcs11.CKR_SESSION_PARALLEL_NOT_SUPPORTED)
		}},
		{id: "slots.initpin.uninitialised-token", spec: "base 5.5.7 C_InitToken (fresh token takes pPin as SO PIN)", fn: func(t *T) {
			ti, rv := t.s.raw.tokenInfo(t.freeSlotID())
			t.okRV(rv, "C_GetTokenInfo")
			if ti.flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
				t.failf("the free slot's token already has CKF_TOKEN_INITIALIZED")
			}
		}},
	}
}
