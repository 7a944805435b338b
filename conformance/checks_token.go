package conformance

import (
	"strings"

	"github.com/miekg/pkcs11"
)

func (t *T) tokenFlags() uint {
	ti, err := t.s.ctx.GetTokenInfo(t.s.slot)
	t.ok(err, "C_GetTokenInfo")
	return ti.Flags
}

// reinit re-initialises the token; with pin it also sets the user PIN.
func (t *T) reinit(pin bool) {
	if pin {
		if err := t.s.initToken(t.s.label); err != nil {
			t.failf("re-initialising the token: %v", err)
		}
		return
	}
	t.s.ctx.CloseAllSessions(t.s.slot)
	t.ok(t.s.ctx.InitToken(t.s.slot, t.s.opts.SOPIN, t.s.label), "C_InitToken")
	slot, err := t.s.slotByLabel(t.s.label)
	if err != nil {
		t.failf("%v", err)
	}
	t.s.slot = slot
}

// restore puts the token back to the group's state after a check that
// changed PINs or objects; a failure here is reported on the check.
func (t *T) restore() { t.reinit(true) }

func dataTemplate(token, private bool, label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, private),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("conformance data")),
	}
}

func (t *T) createData(sh pkcs11.SessionHandle, token, private bool, label string) pkcs11.ObjectHandle {
	h, err := t.s.ctx.CreateObject(sh, dataTemplate(token, private, label))
	t.ok(err, "C_CreateObject(CKO_DATA)")
	return h
}

// find returns the handles matching tmpl.
func (t *T) find(sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) []pkcs11.ObjectHandle {
	t.ok(t.s.ctx.FindObjectsInit(sh, tmpl), "C_FindObjectsInit")
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := t.s.ctx.FindObjects(sh, 16)
		t.ok(err, "C_FindObjects")
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	t.ok(t.s.ctx.FindObjectsFinal(sh), "C_FindObjectsFinal")
	return all
}

func (t *T) findLabel(sh pkcs11.SessionHandle, label string) []pkcs11.ObjectHandle {
	return t.find(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)})
}

func tokenChecks() []check {
	return []check{
		{id: "token.init.flags", spec: "base 5.5.7 C_InitToken, 5.5.8 C_InitPIN, 3.2 CK_TOKEN_INFO flags", fn: func(t *T) {
			f := t.tokenFlags()
			if f&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
				t.failf("CKF_TOKEN_INITIALIZED not set after C_InitToken")
			}
			if f&pkcs11.CKF_USER_PIN_INITIALIZED == 0 {
				t.failf("CKF_USER_PIN_INITIALIZED not set after C_InitPIN")
			}
		}},
		{id: "token.init.label", spec: "base 5.5.7 C_InitToken (pLabel, 32 blank-padded bytes)", fn: func(t *T) {
			ti, rv := t.s.raw.tokenInfo(t.s.slot)
			t.okRV(rv, "C_GetTokenInfo")
			want := t.s.label + strings.Repeat(" ", 32-len(t.s.label))
			if string(ti.label) != want {
				t.failf("label %q, want %q", ti.label, want)
			}
		}},
		{id: "token.init.session-exists", spec: "base 5.5.7 C_InitToken (CKR_SESSION_EXISTS)", fn: func(t *T) {
			t.open(false)
			t.expect(t.s.ctx.InitToken(t.s.slot, t.s.opts.SOPIN, t.s.label), "C_InitToken with a session open", pkcs11.CKR_SESSION_EXISTS)
		}},
		{id: "token.init.wrong-so-pin", spec: "base 5.5.7 C_InitToken (re-initialisation checks the SO PIN)", fn: func(t *T) {
			err := t.s.ctx.InitToken(t.s.slot, "99999999", t.s.label)
			if err == nil {
				t.restore() // the SO PIN may now be wrong for later groups
				t.failf("C_InitToken with a wrong SO PIN returned CKR_OK")
			}
			t.expect(err, "C_InitToken with a wrong SO PIN", pkcs11.CKR_PIN_INCORRECT)
			sh := t.open(true)
			t.loginSO(sh) // a correct login resets the SO retry counter
		}},
		{id: "token.reinit.destroys-objects", spec: "base 5.5.7 C_InitToken (all destroyable objects destroyed)", fn: func(t *T) {
			sh := t.open(true)
			t.loginUser(sh)
			t.createData(sh, true, false, "survivor?")
			t.s.ctx.CloseSession(sh)
			t.reinit(true)
			sh = t.open(false)
			if n := len(t.findLabel(sh, "survivor?")); n != 0 {
				t.failf("%d token objects survived C_InitToken", n)
			}
		}},
		{id: "token.reinit.user-pin-reset", spec: "base 5.5.7 C_InitToken (user access disabled until C_InitPIN)", fn: func(t *T) {
			t.reinit(false)
			defer t.restore()
			if t.tokenFlags()&pkcs11.CKF_USER_PIN_INITIALIZED != 0 {
				t.failf("CKF_USER_PIN_INITIALIZED still set after re-initialisation")
			}
		}},
		{id: "token.login.pin-not-initialized", spec: "base 5.6.8 C_Login (CKR_USER_PIN_NOT_INITIALIZED)", fn: func(t *T) {
			t.reinit(false)
			defer t.restore()
			sh := t.open(true)
			t.expect(t.s.ctx.Login(sh, pkcs11.CKU_USER, t.s.opts.UserPIN), "C_Login(CKU_USER) before C_InitPIN", pkcs11.CKR_USER_PIN_NOT_INITIALIZED)
		}},
		{id: "token.initpin.public-session", spec: "base 5.5.8 C_InitPIN (only in R/W SO Functions state)", fn: func(t *T) {
			sh := t.open(true)
			t.expect(t.s.ctx.InitPIN(sh, "11112222"), "C_InitPIN in a R/W public session", pkcs11.CKR_USER_NOT_LOGGED_IN)
		}},
		{id: "token.initpin.user-session", spec: "base 5.5.8 C_InitPIN (only in R/W SO Functions state)", fn: func(t *T) {
			sh := t.open(true)
			t.loginUser(sh)
			err := t.s.ctx.InitPIN(sh, "11112222")
			if err == nil {
				t.restore()
			}
			t.expect(err, "C_InitPIN as the user", pkcs11.CKR_USER_NOT_LOGGED_IN)
		}},
		{id: "token.initpin.len-range", spec: "base 5.5.8 C_InitPIN (CKR_PIN_LEN_RANGE)", fn: func(t *T) {
			ti, err := t.s.ctx.GetTokenInfo(t.s.slot)
			t.ok(err, "C_GetTokenInfo")
			if ti.MaxPinLen >= 4096 {
				t.skipf("ulMaxPinLen %d: no practical over-long PIN", ti.MaxPinLen)
			}
			sh := t.open(true)
			t.loginSO(sh)
			err = t.s.ctx.InitPIN(sh, strings.Repeat("7", int(ti.MaxPinLen)+1))
			if err == nil {
				t.restore()
			}
			t.expect(err, "C_InitPIN longer than ulMaxPinLen", pkcs11.CKR_PIN_LEN_RANGE)
		}},
		{id: "token.setpin.user", spec: "base 5.5.9 C_SetPIN", fn: func(t *T) {
			defer t.restore()
			sh := t.open(true)
			t.loginUser(sh)
			t.ok(t.s.ctx.SetPIN(sh, t.s.opts.UserPIN, "55556666"), "C_SetPIN as the user")
			t.ok(t.s.ctx.Logout(sh), "C_Logout")
			t.expect(t.s.ctx.Login(sh, pkcs11.CKU_USER, t.s.opts.UserPIN), "C_Login with the old PIN", pkcs11.CKR_PIN_INCORRECT)
			t.ok(t.s.ctx.Login(sh, pkcs11.CKU_USER, "55556666"), "C_Login with the new PIN")
		}},
		{id: "token.setpin.public-session", spec: "base 5.5.9 C_SetPIN (R/W public session changes the user PIN)", fn: func(t *T) {
			defer t.restore()
			sh := t.open(true)
			t.ok(t.s.ctx.SetPIN(sh, t.s.opts.UserPIN, "55556666"), "C_SetPIN in a R/W public session")
			t.ok(t.s.ctx.Login(sh, pkcs11.CKU_USER, "55556666"), "C_Login with the new PIN")
		}},
		{id: "token.setpin.so", spec: "base 5.5.9 C_SetPIN (R/W SO Functions changes the SO PIN)", fn: func(t *T) {
			sh := t.open(true)
			t.loginSO(sh)
			t.ok(t.s.ctx.SetPIN(sh, t.s.opts.SOPIN, "44443333"), "C_SetPIN as SO")
			t.ok(t.s.ctx.Logout(sh), "C_Logout")
			t.ok(t.s.ctx.Login(sh, pkcs11.CKU_SO, "44443333"), "C_Login(CKU_SO) with the new SO PIN")
			t.ok(t.s.ctx.SetPIN(sh, "44443333", t.s.opts.SOPIN), "C_SetPIN back to the suite's SO PIN")
		}},
		{id: "token.setpin.wrong-old", spec: "base 5.5.9 C_SetPIN (CKR_PIN_INCORRECT)", fn: func(t *T) {
			sh := t.open(true)
			t.loginUser(sh)
			err := t.s.ctx.SetPIN(sh, "00000001", "55556666")
			if err == nil {
				t.restore()
			}
			t.expect(err, "C_SetPIN with a wrong old PIN", pkcs11.CKR_PIN_INCORRECT)
		}},
		{id: "token.setpin.read-only", spec: "base 5.5.9 C_SetPIN (CKR_SESSION_READ_ONLY)", fn: func(t *T) {
			sh := t.open(false)
			err := t.s.ctx.SetPIN(sh, t.s.opts.UserPIN, "55556666")
			if err == nil {
				t.restore()
			}
			t.expect(err, "C_SetPIN in a R/O session", pkcs11.CKR_SESSION_READ_ONLY)
		}},
		{id: "token.setpin.len-range", spec: "base 5.5.9 C_SetPIN (CKR_PIN_LEN_RANGE)", fn: func(t *T) {
			ti, err := t.s.ctx.GetTokenInfo(t.s.slot)
			t.ok(err, "C_GetTokenInfo")
			if ti.MinPinLen < 2 {
				t.skipf("ulMinPinLen %d: no practical too-short PIN", ti.MinPinLen)
			}
			sh := t.open(true)
			t.loginUser(sh)
			err = t.s.ctx.SetPIN(sh, t.s.opts.UserPIN, strings.Repeat("1", int(ti.MinPinLen)-1))
			if err == nil {
				t.restore()
			}
			t.expect(err, "C_SetPIN to a PIN shorter than ulMinPinLen", pkcs11.CKR_PIN_LEN_RANGE)
		}},
	}
}

// wrongUserLogin makes one failed user login and returns its CK_RV.
func (t *T) wrongUserLogin(sh pkcs11.SessionHandle) uint {
	return rvOf(t.s.ctx.Login(sh, pkcs11.CKU_USER, "00000000"))
}

// lockUser enters wrong user PINs until the token answers CKR_PIN_LOCKED,
// at most 32 times. It reports whether CKF_USER_PIN_FINAL_TRY was shown
// before the last try and how many tries it took (0: never locked).
func (t *T) lockUser(sh pkcs11.SessionHandle) (finalTry bool, tries int) {
	for i := 1; i <= 32; i++ {
		rv := t.wrongUserLogin(sh)
		if rv == pkcs11.CKR_PIN_LOCKED {
			return finalTry, i
		}
		if rv != pkcs11.CKR_PIN_INCORRECT {
			t.failf("wrong PIN attempt %d: want CKR_PIN_INCORRECT or CKR_PIN_LOCKED, got %s", i, rvName(rv))
		}
		f := t.tokenFlags()
		if f&pkcs11.CKF_USER_PIN_LOCKED != 0 {
			return finalTry, i
		}
		if f&pkcs11.CKF_USER_PIN_FINAL_TRY != 0 {
			finalTry = true
		}
	}
	return finalTry, 0
}

// Base 3.2 (CK_TOKEN_INFO flags) and 5.6.8 (C_Login, CKR_PIN_LOCKED).
func pinChecks() []check {
	return []check{
		{id: "pin.user.count-low", spec: "base 3.2 CK_TOKEN_INFO (CKF_USER_PIN_COUNT_LOW)", fn: func(t *T) {
			sh := t.open(true)
			t.expectRV(t.wrongUserLogin(sh), "C_Login with a wrong user PIN", pkcs11.CKR_PIN_INCORRECT)
			if t.tokenFlags()&pkcs11.CKF_USER_PIN_COUNT_LOW == 0 {
				t.failf("CKF_USER_PIN_COUNT_LOW not set after a wrong user PIN")
			}
			t.loginUser(sh)
		}},
		{id: "pin.user.count-reset", spec: "base 3.2 CK_TOKEN_INFO (flags reset by a successful login)", fn: func(t *T) {
			sh := t.open(true)
			t.wrongUserLogin(sh)
			if t.tokenFlags()&pkcs11.CKF_USER_PIN_COUNT_LOW == 0 {
				t.failf("precondition: CKF_USER_PIN_COUNT_LOW never set after a wrong PIN (no retry counter)")
			}
			t.loginUser(sh)
			if f := t.tokenFlags(); f&(pkcs11.CKF_USER_PIN_COUNT_LOW|pkcs11.CKF_USER_PIN_FINAL_TRY) != 0 {
				t.failf("retry flags 0x%x still set after a successful login", f)
			}
		}},
		{id: "pin.user.final-try", spec: "base 3.2 CK_TOKEN_INFO (CKF_USER_PIN_FINAL_TRY)", fn: func(t *T) {
			defer t.restore()
			sh := t.open(true)
			final, tries := t.lockUser(sh)
			if tries == 0 {
				t.failf("32 wrong user PINs and the PIN never locked")
			}
			if !final {
				t.failf("locked after %d tries without ever showing CKF_USER_PIN_FINAL_TRY", tries)
			}
			t.note("locked after %d wrong PINs", tries)
		}},
		{id: "pin.user.locked", spec: "base 3.2 CK_TOKEN_INFO (CKF_USER_PIN_LOCKED), 5.6.8 C_Login (CKR_PIN_LOCKED)", fn: func(t *T) {
			defer t.restore()
			sh := t.open(true)
			if _, tries := t.lockUser(sh); tries == 0 {
				t.failf("32 wrong user PINs and the PIN never locked")
			}
			if t.tokenFlags()&pkcs11.CKF_USER_PIN_LOCKED == 0 {
				t.failf("CKF_USER_PIN_LOCKED not set once the PIN is locked")
			}
			t.expect(t.s.ctx.Login(sh, pkcs11.CKU_USER, t.s.opts.UserPIN), "C_Login with the correct PIN once locked", pkcs11.CKR_PIN_LOCKED)
		}},
		{id: "pin.user.initpin-unlocks", spec: "base 5.5.8 C_InitPIN (SO resets a locked user PIN)", fn: func(t *T) {
			defer t.restore()
			sh := t.open(true)
			if _, tries := t.lockUser(sh); tries == 0 {
				t.failf("precondition: 32 wrong user PINs and the PIN never locked")
			}
			t.loginSO(sh)
			t.ok(t.s.ctx.InitPIN(sh, t.s.opts.UserPIN), "C_InitPIN")
			t.ok(t.s.ctx.Logout(sh), "C_Logout")
			if t.tokenFlags()&pkcs11.CKF_USER_PIN_LOCKED != 0 {
				t.failf("CKF_USER_PIN_LOCKED still set after C_InitPIN")
			}
			t.loginUser(sh)
		}},
		{id: "pin.user.locked-persists", spec: "base 3.2 CK_TOKEN_INFO (lock survives sessions closing)", fn: func(t *T) {
			defer t.restore()
			sh := t.open(true)
			if _, tries := t.lockUser(sh); tries == 0 {
				t.failf("precondition: 32 wrong user PINs and the PIN never locked")
			}
			t.ok(t.s.ctx.CloseAllSessions(t.s.slot), "C_CloseAllSessions")
			sh2, err := t.s.ctx.OpenSession(t.s.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
			t.ok(err, "C_OpenSession")
			t.sessions = append(t.sessions, sh2)
			t.expect(t.s.ctx.Login(sh2, pkcs11.CKU_USER, t.s.opts.UserPIN), "C_Login in a new session", pkcs11.CKR_PIN_LOCKED)
		}},
		{id: "pin.so.count-low", spec: "base 3.2 CK_TOKEN_INFO (CKF_SO_PIN_COUNT_LOW)", fn: func(t *T) {
			sh := t.open(true)
			t.expect(t.s.ctx.Login(sh, pkcs11.CKU_SO, "00000000"), "C_Login(CKU_SO) with a wrong PIN", pkcs11.CKR_PIN_INCORRECT)
			low := t.tokenFlags()&pkcs11.CKF_SO_PIN_COUNT_LOW != 0
			t.loginSO(sh)
			if !low {
				t.failf("CKF_SO_PIN_COUNT_LOW not set after a wrong SO PIN")
			}
			if t.tokenFlags()&pkcs11.CKF_SO_PIN_COUNT_LOW != 0 {
				t.failf("CKF_SO_PIN_COUNT_LOW still set after a successful SO login")
			}
		}},
	}
}
