package conformance

import "github.com/miekg/pkcs11"

const bogusHandle = 0x5EED0001

func (t *T) state(sh pkcs11.SessionHandle) pkcs11.SessionInfo {
	si, err := t.s.ctx.GetSessionInfo(sh)
	t.ok(err, "C_GetSessionInfo")
	return si
}

func (t *T) wantState(sh pkcs11.SessionHandle, want uint, what string) {
	if st := t.state(sh).State; st != want {
		t.failf("%s: session state %s, want %s", what, stateName(st), stateName(want))
	}
}

func stateName(s uint) string {
	switch s {
	case pkcs11.CKS_RO_PUBLIC_SESSION:
		return "CKS_RO_PUBLIC_SESSION"
	case pkcs11.CKS_RO_USER_FUNCTIONS:
		return "CKS_RO_USER_FUNCTIONS"
	case pkcs11.CKS_RW_PUBLIC_SESSION:
		return "CKS_RW_PUBLIC_SESSION"
	case pkcs11.CKS_RW_USER_FUNCTIONS:
		return "CKS_RW_USER_FUNCTIONS"
	case pkcs11.CKS_RW_SO_FUNCTIONS:
		return "CKS_RW_SO_FUNCTIONS"
	}
	return "unknown state"
}

// Base 5.6 (session management) and the session states of base 3.3 CK_STATE
// (the state tables of PKCS#11 v2.20 section 6.7).
func sessionChecks() []check {
	return []check{
		{id: "session.state.ro-public", spec: "base 3.3 CK_STATE, 5.6.4 C_GetSessionInfo", fn: func(t *T) {
			sh := t.open(false)
			si := t.state(sh)
			if si.State != pkcs11.CKS_RO_PUBLIC_SESSION {
				t.failf("state %s", stateName(si.State))
			}
			if si.Flags != pkcs11.CKF_SERIAL_SESSION {
				t.failf("flags 0x%x, want CKF_SERIAL_SESSION only", si.Flags)
			}
		}},
		{id: "session.state.rw-public", spec: "base 3.3 CK_STATE, 5.6.4 C_GetSessionInfo", fn: func(t *T) {
			sh := t.open(true)
			si := t.state(sh)
			if si.State != pkcs11.CKS_RW_PUBLIC_SESSION {
				t.failf("state %s", stateName(si.State))
			}
			if si.Flags != pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION {
				t.failf("flags 0x%x, want CKF_SERIAL_SESSION|CKF_RW_SESSION", si.Flags)
			}
		}},
		{id: "session.state.ro-user", spec: "base 3.3 CK_STATE, 5.6.8 C_Login", fn: func(t *T) {
			sh := t.open(false)
			t.loginUser(sh)
			t.wantState(sh, pkcs11.CKS_RO_USER_FUNCTIONS, "R/O session after user login")
		}},
		{id: "session.state.rw-user", spec: "base 3.3 CK_STATE, 5.6.8 C_Login", fn: func(t *T) {
			sh := t.open(true)
			t.loginUser(sh)
			t.wantState(sh, pkcs11.CKS_RW_USER_FUNCTIONS, "R/W session after user login")
		}},
		{id: "session.state.rw-so", spec: "base 3.3 CK_STATE, 5.6.8 C_Login", fn: func(t *T) {
			sh := t.open(true)
			t.loginSO(sh)
			t.wantState(sh, pkcs11.CKS_RW_SO_FUNCTIONS, "R/W session after SO login")
		}},
		{id: "session.info.slot-id", spec: "base 3.3 CK_SESSION_INFO, 5.6.4", fn: func(t *T) {
			sh := t.open(false)
			if si := t.state(sh); si.SlotID != t.s.slot {
				t.failf("slotID %d, want %d", si.SlotID, t.s.slot)
			}
		}},
		{id: "session.info.null", spec: "base 5.6.4 C_GetSessionInfo (pInfo NULL)", fn: func(t *T) {
			sh := t.open(false)
			t.expectRV(t.s.raw.sessionInfoNull(uint(sh)), "C_GetSessionInfo(NULL)", pkcs11.CKR_ARGUMENTS_BAD)
		}},
		{id: "session.info.invalid-handle", spec: "base 5.6.4 C_GetSessionInfo, 5.1.2 (CKR_SESSION_HANDLE_INVALID)", fn: func(t *T) {
			_, err := t.s.ctx.GetSessionInfo(bogusHandle)
			t.expect(err, "C_GetSessionInfo(bogus handle)", pkcs11.CKR_SESSION_HANDLE_INVALID)
		}},
		{id: "session.login.applies-to-all", spec: "base 5.6.8 C_Login (all sessions of the application)", fn: func(t *T) {
			a, b := t.open(true), t.open(false)
			t.loginUser(a)
			t.wantState(b, pkcs11.CKS_RO_USER_FUNCTIONS, "other R/O session after user login")
		}},
		{id: "session.login.new-session-inherits", spec: "base 5.6.1 C_OpenSession (opens in the logged-in state)", fn: func(t *T) {
			a := t.open(true)
			t.loginUser(a)
			t.wantState(t.open(true), pkcs11.CKS_RW_USER_FUNCTIONS, "R/W session opened after user login")
		}},
		{id: "session.close.invalid-handle", spec: "base 5.6.2 C_CloseSession", fn: func(t *T) {
			t.expect(t.s.ctx.CloseSession(bogusHandle), "C_CloseSession(bogus handle)", pkcs11.CKR_SESSION_HANDLE_INVALID)
		}},
		{id: "session.close.handle-dead", spec: "base 5.6.2 C_CloseSession", fn: func(t *T) {
			sh, err := t.s.ctx.OpenSession(t.s.slot, pkcs11.CKF_SERIAL_SESSION)
			t.ok(err, "C_OpenSession")
			t.ok(t.s.ctx.CloseSession(sh), "C_CloseSession")
			_, err = t.s.ctx.GetSessionInfo(sh)
			t.expect(err, "C_GetSessionInfo on a closed session", pkcs11.CKR_SESSION_HANDLE_INVALID)
		}},
		{id: "session.close.last-logs-out", spec: "base 5.6.2 C_CloseSession (closing the last session logs out)", fn: func(t *T) {
			sh, err := t.s.ctx.OpenSession(t.s.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
			t.ok(err, "C_OpenSession")
			t.ok(t.s.ctx.Login(sh, pkcs11.CKU_USER, t.s.opts.UserPIN), "C_Login")
			t.ok(t.s.ctx.CloseSession(sh), "C_CloseSession")
			t.wantState(t.open(true), pkcs11.CKS_RW_PUBLIC_SESSION, "new session after the last one closed")
		}},
		{id: "session.closeall.logs-out", spec: "base 5.6.3 C_CloseAllSessions", fn: func(t *T) {
			a := t.open(true)
			t.open(false)
			t.loginUser(a)
			t.ok(t.s.ctx.CloseAllSessions(t.s.slot), "C_CloseAllSessions")
			_, err := t.s.ctx.GetSessionInfo(a)
			t.expect(err, "C_GetSessionInfo after C_CloseAllSessions", pkcs11.CKR_SESSION_HANDLE_INVALID)
			t.wantState(t.open(false), pkcs11.CKS_RO_PUBLIC_SESSION, "new session after C_CloseAllSessions")
		}},
		{id: "session.closeall.invalid-slot", spec: "base 5.6.3 C_CloseAllSessions", fn: func(t *T) {
			t.expect(t.s.ctx.CloseAllSessions(bogusSlot), "C_CloseAllSessions(bogus slot)", pkcs11.CKR_SLOT_ID_INVALID)
		}},
		{id: "session.object.dies-with-session", spec: "base 4.4 (session objects live as long as their session), 5.6.2", fn: func(t *T) {
			a, b := t.open(true), t.open(true)
			h := t.createData(a, false, false, "ephemeral")
			t.ok(t.s.ctx.CloseSession(a), "C_CloseSession")
			_, err := t.s.ctx.GetAttributeValue(b, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
			t.expect(err, "C_GetAttributeValue on a session object of a closed session", pkcs11.CKR_OBJECT_HANDLE_INVALID)
		}},
		{id: "session.object.shared", spec: "base 4.4 (session objects visible to all sessions of the application)", fn: func(t *T) {
			a, b := t.open(true), t.open(false)
			t.createData(a, false, false, "shared-obj")
			if n := len(t.findLabel(b, "shared-obj")); n != 1 {
				t.failf("other session finds %d copies of a public session object, want 1", n)
			}
		}},
		{id: "session.finalize-drops-sessions", spec: "base 5.4.2 C_Finalize (sessions do not survive), 5.6.1", fn: func(t *T) {
			sh := t.open(false)
			t.okRV(t.s.raw.finalize(false), "C_Finalize")
			t.okRV(t.s.raw.initialize(1), "C_Initialize")
			// Slot ids may be renumbered by a new C_Initialize (SoftHSMv2 does).
			slot, err := t.s.slotByLabel(t.s.label)
			if err != nil {
				t.failf("%v", err)
			}
			t.s.slot = slot
			_, err = t.s.ctx.GetSessionInfo(sh)
			t.expect(err, "C_GetSessionInfo on a session opened before C_Finalize", pkcs11.CKR_SESSION_HANDLE_INVALID)
		}},
		{id: "session.ro-while-so", spec: "base 5.6.1 C_OpenSession (CKR_SESSION_READ_WRITE_SO_EXISTS)", fn: func(t *T) {
			a := t.open(true)
			t.loginSO(a)
			sh, err := t.s.ctx.OpenSession(t.s.slot, pkcs11.CKF_SERIAL_SESSION)
			if err == nil {
				t.sessions = append(t.sessions, sh)
			}
			t.expect(err, "R/O C_OpenSession while SO is logged in", pkcs11.CKR_SESSION_READ_WRITE_SO_EXISTS)
		}},
		{id: "session.so-while-ro", spec: "base 5.6.8 C_Login (CKR_SESSION_READ_ONLY_EXISTS)", fn: func(t *T) {
			t.open(false)
			a := t.open(true)
			t.expect(t.s.ctx.Login(a, pkcs11.CKU_SO, t.s.opts.SOPIN), "SO C_Login while a R/O session exists", pkcs11.CKR_SESSION_READ_ONLY_EXISTS)
		}},
	}
}

// Base 5.6.8 C_Login, 5.6.10 C_Logout and the object access table
// (base 4.4 CKA_PRIVATE; PKCS#11 v2.20 table 6 "Access to different types of
// objects by different types of sessions").
func loginChecks() []check {
	priv := func(label string) []*pkcs11.Attribute { return dataTemplate(true, true, label) }
	return []check{
		{id: "login.wrong-pin", spec: "base 5.6.8 C_Login (CKR_PIN_INCORRECT)", fn: func(t *T) {
			sh := t.open(true)
			t.expect(t.s.ctx.Login(sh, pkcs11.CKU_USER, "00000000"), "C_Login with a wrong PIN", pkcs11.CKR_PIN_INCORRECT)
			t.loginUser(sh)
		}},
		{id: "login.user-twice", spec: "base 5.6.8 C_Login (CKR_USER_ALREADY_LOGGED_IN)", fn: func(t *T) {
			sh := t.open(true)
			t.loginUser(sh)
			t.expect(t.s.ctx.Login(t.open(true), pkcs11.CKU_USER, t.s.opts.UserPIN), "second user C_Login", pkcs11.CKR_USER_ALREADY_LOGGED_IN)
		}},
		{id: "login.so-twice", spec: "base 5.6.8 C_Login (CKR_USER_ALREADY_LOGGED_IN)", fn: func(t *T) {
			sh := t.open(true)
			t.loginSO(sh)
			t.expect(t.s.ctx.Login(sh, pkcs11.CKU_SO, t.s.opts.SOPIN), "second SO C_Login", pkcs11.CKR_USER_ALREADY_LOGGED_IN)
		}},
		{id: "login.so-while-user", spec: "base 5.6.8 C_Login (CKR_USER_ANOTHER_ALREADY_LOGGED_IN)", fn: func(t *T) {
			sh := t.open(true)
			t.loginUser(sh)
			t.expect(t.s.ctx.Login(sh, pkcs11.CKU_SO, t.s.opts.SOPIN), "SO C_Login while the user is logged in", pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
		}},
		{id: "login.user-while-so", spec: "base 5.6.8 C_Login (CKR_USER_ANOTHER_ALREADY_LOGGED_IN)", fn: func(t *T) {
			sh := t.open(true)
			t.loginSO(sh)
			t.expect(t.s.ctx.Login(sh, pkcs11.CKU_USER, t.s.opts.UserPIN), "user C_Login while SO is logged in", pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
		}},
		{id: "login.bad-user-type", spec: "base 5.6.8 C_Login (CKR_USER_TYPE_INVALID)", fn: func(t *T) {
			sh := t.open(true)
			t.expect(t.s.ctx.Login(sh, 77, t.s.opts.UserPIN), "C_Login(userType 77)", pkcs11.CKR_USER_TYPE_INVALID)
		}},
		{id: "login.context-specific-no-operation", spec: "base 5.6.8 C_Login (CKU_CONTEXT_SPECIFIC)", fn: func(t *T) {
			sh := t.open(true)
			t.loginUser(sh)
			err := t.s.ctx.Login(sh, pkcs11.CKU_CONTEXT_SPECIFIC, t.s.opts.UserPIN)
			t.expect(err, "C_Login(CKU_CONTEXT_SPECIFIC) with no operation", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		}},
		{id: "login.logout-twice", spec: "base 5.6.10 C_Logout (CKR_USER_NOT_LOGGED_IN)", fn: func(t *T) {
			sh := t.open(true)
			t.loginUser(sh)
			t.ok(t.s.ctx.Logout(sh), "C_Logout")
			t.expect(t.s.ctx.Logout(sh), "second C_Logout", pkcs11.CKR_USER_NOT_LOGGED_IN)
		}},
		{id: "login.logout-never-logged-in", spec: "base 5.6.10 C_Logout (CKR_USER_NOT_LOGGED_IN)", fn: func(t *T) {
			t.expect(t.s.ctx.Logout(t.open(false)), "C_Logout without C_Login", pkcs11.CKR_USER_NOT_LOGGED_IN)
		}},
		{id: "login.logout-applies-to-all", spec: "base 5.6.10 C_Logout (all sessions return to public)", fn: func(t *T) {
			a, b := t.open(true), t.open(false)
			t.loginUser(a)
			t.ok(t.s.ctx.Logout(a), "C_Logout")
			t.wantState(b, pkcs11.CKS_RO_PUBLIC_SESSION, "other session after C_Logout")
		}},
		{id: "login.private-hidden-before-login", spec: "base 4.4 CKA_PRIVATE (private objects need a user login)", fn: func(t *T) {
			a := t.open(true)
			t.loginUser(a)
			h := t.createData(a, true, true, "secret-data")
			t.ok(t.s.ctx.Logout(a), "C_Logout")
			if n := len(t.findLabel(a, "secret-data")); n != 0 {
				t.failf("public session finds %d private token objects", n)
			}
			_, err := t.s.ctx.GetAttributeValue(a, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			t.refused(err, "C_GetAttributeValue on a private object without login")
		}},
		{id: "login.logout-destroys-private-session-objects", spec: "base 5.6.10 C_Logout (private session objects are destroyed)", fn: func(t *T) {
			a := t.open(true)
			t.loginUser(a)
			h := t.createData(a, false, true, "private-session-data")
			t.createData(a, false, false, "public-session-data")
			t.ok(t.s.ctx.Logout(a), "C_Logout")
			t.loginUser(a)
			if n := len(t.findLabel(a, "private-session-data")); n != 0 {
				t.failf("after C_Logout and a new C_Login, %d private session objects are still there", n)
			}
			if n := len(t.findLabel(a, "public-session-data")); n != 1 {
				t.failf("after C_Logout, %d public session objects, want 1", n)
			}
			_, err := t.s.ctx.GetAttributeValue(a, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
			t.refused(err, "C_GetAttributeValue on the destroyed object's handle")
		}},
		{id: "login.private-visible-after-login", spec: "base 4.4 CKA_PRIVATE", fn: func(t *T) {
			a := t.open(true)
			t.loginUser(a)
			t.createData(a, true, true, "secret-data-2")
			if n := len(t.findLabel(t.open(false), "secret-data-2")); n != 1 {
				t.failf("logged-in R/O session finds %d private token objects, want 1", n)
			}
		}},
		{id: "login.so-cannot-see-private", spec: "base 4.4 CKA_PRIVATE (R/W SO Functions: public objects only)", fn: func(t *T) {
			a := t.open(true)
			t.loginUser(a)
			t.createData(a, true, true, "user-only")
			t.ok(t.s.ctx.Logout(a), "C_Logout")
			t.loginSO(a)
			if n := len(t.findLabel(a, "user-only")); n != 0 {
				t.failf("SO session finds %d private objects", n)
			}
		}},
		{id: "login.so-cannot-create-private", spec: "base 4.4 CKA_PRIVATE (R/W SO Functions: public objects only)", fn: func(t *T) {
			a := t.open(true)
			t.loginSO(a)
			_, err := t.s.ctx.CreateObject(a, priv("so-private"))
			t.refused(err, "SO C_CreateObject(CKA_PRIVATE=TRUE)")
		}},
		{id: "login.so-creates-public-token", spec: "base 4.4 (R/W SO Functions: R/W access to public token objects)", fn: func(t *T) {
			a := t.open(true)
			t.loginSO(a)
			t.createData(a, true, false, "so-public")
		}},
		{id: "login.public-cannot-create-private", spec: "base 4.4 CKA_PRIVATE, 5.7.1 C_CreateObject (CKR_USER_NOT_LOGGED_IN)", fn: func(t *T) {
			a := t.open(true)
			_, err := t.s.ctx.CreateObject(a, dataTemplate(false, true, "pub-private"))
			t.expect(err, "C_CreateObject(private session object) without login", pkcs11.CKR_USER_NOT_LOGGED_IN)
		}},
		{id: "login.ro-cannot-create-token", spec: "base 5.7.1 C_CreateObject (CKR_SESSION_READ_ONLY)", fn: func(t *T) {
			a := t.open(false)
			_, err := t.s.ctx.CreateObject(a, dataTemplate(true, false, "ro-token"))
			t.expect(err, "C_CreateObject(token object) in a R/O session", pkcs11.CKR_SESSION_READ_ONLY)
		}},
		{id: "login.ro-user-cannot-create-token", spec: "base 5.7.1 C_CreateObject (R/O User Functions)", fn: func(t *T) {
			a := t.open(false)
			t.loginUser(a)
			_, err := t.s.ctx.CreateObject(a, dataTemplate(true, true, "ro-user-token"))
			t.expect(err, "C_CreateObject(token object) in a R/O user session", pkcs11.CKR_SESSION_READ_ONLY)
		}},
		{id: "login.ro-creates-session-object", spec: "base 4.4 (R/O sessions have R/W access to session objects)", fn: func(t *T) {
			t.createData(t.open(false), false, false, "ro-session-obj")
		}},
		{id: "login.ro-cannot-destroy-token", spec: "base 5.7.3 C_DestroyObject (CKR_SESSION_READ_ONLY)", fn: func(t *T) {
			h := t.createData(t.open(true), true, false, "keep-me")
			t.expect(t.s.ctx.DestroyObject(t.open(false), h), "C_DestroyObject(token object) in a R/O session", pkcs11.CKR_SESSION_READ_ONLY)
		}},
		{id: "login.ro-cannot-modify-token", spec: "base 5.7.6 C_SetAttributeValue (CKR_SESSION_READ_ONLY)", fn: func(t *T) {
			h := t.createData(t.open(true), true, false, "keep-me-too")
			err := t.s.ctx.SetAttributeValue(t.open(false), h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "changed")})
			t.expect(err, "C_SetAttributeValue(token object) in a R/O session", pkcs11.CKR_SESSION_READ_ONLY)
		}},
		{id: "login.public-token-visible", spec: "base 4.4 (public token objects readable without login)", fn: func(t *T) {
			a := t.open(true)
			t.createData(a, true, false, "public-token")
			if n := len(t.findLabel(t.open(false), "public-token")); n != 1 {
				t.failf("R/O public session finds %d public token objects, want 1", n)
			}
		}},
		{id: "login.token-object-persists", spec: "base 4.4 CKA_TOKEN (token objects outlive sessions)", fn: func(t *T) {
			a := t.open(true)
			t.createData(a, true, false, "persistent")
			t.ok(t.s.ctx.CloseAllSessions(t.s.slot), "C_CloseAllSessions")
			if n := len(t.findLabel(t.open(false), "persistent")); n != 1 {
				t.failf("after all sessions closed, %d token objects found, want 1", n)
			}
		}},
		{id: "login.generate-token-key-ro", spec: "base 5.18.1 C_GenerateKey (CKR_SESSION_READ_ONLY)", mech: pkcs11.CKM_AES_KEY_GEN, fn: func(t *T) {
			a := t.open(false)
			t.loginUser(a)
			_, err := t.s.ctx.GenerateKey(a, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16),
			})
			t.expect(err, "C_GenerateKey(token key) in a R/O session", pkcs11.CKR_SESSION_READ_ONLY)
		}},
	}
}
