package conformance

import "github.com/miekg/pkcs11"

// uninit brings the library to the not-initialised state, whatever the
// previous check left.
func (t *T) uninit() { t.s.raw.finalize(false) }

// Checks of base 5.4 (general-purpose functions), run through the raw
// helper before the rest of the suite initialises the library.
func initChecks() []check {
	const notInit = pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED
	return []check{
		{id: "init.getfunctionlist.null", spec: "base 5.4.4 C_GetFunctionList", fn: func(t *T) {
			t.expectRV(t.s.raw.getFunctionListNull(), "C_GetFunctionList(NULL)", pkcs11.CKR_ARGUMENTS_BAD)
		}},
		{id: "init.getfunctionlist.version", spec: "base 3.6 CK_FUNCTION_LIST, 5.4.4", fn: func(t *T) {
			maj, min := t.s.raw.version()
			if maj != 2 {
				t.failf("CK_FUNCTION_LIST version %d.%d: C_GetFunctionList must return the 2.x table (3.x tables come from C_GetInterface)", maj, min)
			}
			t.note("version %d.%d", maj, min)
		}},
		{id: "init.before.getinfo", spec: "base 5.4.3 C_GetInfo, 5.1.1", fn: func(t *T) {
			t.uninit()
			_, rv := t.s.raw.getInfo()
			t.expectRV(rv, "C_GetInfo before C_Initialize", notInit)
		}},
		{id: "init.before.getslotlist", spec: "base 5.5.1 C_GetSlotList, 5.1.1", fn: func(t *T) {
			t.uninit()
			_, _, rv := t.s.raw.slotList(false, -1)
			t.expectRV(rv, "C_GetSlotList before C_Initialize", notInit)
		}},
		{id: "init.before.finalize", spec: "base 5.4.2 C_Finalize", fn: func(t *T) {
			t.uninit()
			t.expectRV(t.s.raw.finalize(false), "C_Finalize before C_Initialize", notInit)
		}},
		{id: "init.null-args", spec: "base 5.4.1 C_Initialize", fn: func(t *T) {
			t.uninit()
			t.okRV(t.s.raw.initialize(0), "C_Initialize(NULL)")
		}},
		{id: "init.twice", spec: "base 5.4.1 C_Initialize", fn: func(t *T) {
			t.uninit()
			t.okRV(t.s.raw.initialize(0), "C_Initialize(NULL)")
			t.expectRV(t.s.raw.initialize(0), "second C_Initialize", pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)
		}},
		{id: "init.reserved-set", spec: "base 5.4.1 C_Initialize, 3.7 CK_C_INITIALIZE_ARGS", fn: func(t *T) {
			t.uninit()
			t.expectRV(t.s.raw.initialize(2), "C_Initialize with pReserved != NULL", pkcs11.CKR_ARGUMENTS_BAD)
		}},
		{id: "init.partial-mutex-functions", spec: "base 5.4.1 C_Initialize, 3.7 CK_C_INITIALIZE_ARGS", fn: func(t *T) {
			t.uninit()
			t.expectRV(t.s.raw.initialize(3), "C_Initialize with 2 of 4 mutex functions", pkcs11.CKR_ARGUMENTS_BAD)
		}},
		{id: "init.os-locking", spec: "base 5.4.1 C_Initialize (CKF_OS_LOCKING_OK)", fn: func(t *T) {
			t.uninit()
			t.okRV(t.s.raw.initialize(1), "C_Initialize(CKF_OS_LOCKING_OK)")
		}},
		{id: "init.app-mutexes", spec: "base 5.4.1 C_Initialize (application mutexes)", fn: func(t *T) {
			t.uninit()
			t.expectRV(t.s.raw.initialize(4), "C_Initialize with 4 mutex functions", pkcs11.CKR_OK, pkcs11.CKR_CANT_LOCK)
		}},
		{id: "init.cant-create-threads", spec: "base 5.4.1 C_Initialize (CKF_LIBRARY_CANT_CREATE_OS_THREADS)", fn: func(t *T) {
			t.uninit()
			t.expectRV(t.s.raw.initialize(5), "C_Initialize(CKF_LIBRARY_CANT_CREATE_OS_THREADS)", pkcs11.CKR_OK, pkcs11.CKR_NEED_TO_CREATE_THREADS)
		}},
		{id: "init.getinfo.null", spec: "base 5.4.3 C_GetInfo", fn: func(t *T) {
			t.uninit()
			t.okRV(t.s.raw.initialize(1), "C_Initialize")
			t.expectRV(t.s.raw.getInfoNull(), "C_GetInfo(NULL)", pkcs11.CKR_ARGUMENTS_BAD)
		}},
		{id: "init.finalize.reserved-set", spec: "base 5.4.2 C_Finalize", fn: func(t *T) {
			t.uninit()
			t.okRV(t.s.raw.initialize(1), "C_Initialize")
			t.expectRV(t.s.raw.finalize(true), "C_Finalize(pReserved != NULL)", pkcs11.CKR_ARGUMENTS_BAD)
		}},
		{id: "init.finalize.twice", spec: "base 5.4.2 C_Finalize", fn: func(t *T) {
			t.uninit()
			t.okRV(t.s.raw.initialize(1), "C_Initialize")
			t.okRV(t.s.raw.finalize(false), "C_Finalize")
			t.expectRV(t.s.raw.finalize(false), "second C_Finalize", notInit)
		}},
		{id: "init.finalize.then-getinfo", spec: "base 5.4.2 C_Finalize", fn: func(t *T) {
			t.uninit()
			t.okRV(t.s.raw.initialize(1), "C_Initialize")
			t.okRV(t.s.raw.finalize(false), "C_Finalize")
			_, rv := t.s.raw.getInfo()
			t.expectRV(rv, "C_GetInfo after C_Finalize", notInit)
		}},
		{id: "init.reinitialize-cycles", spec: "base 5.4.1, 5.4.2 (C_Finalize then C_Initialize in one process)", fn: func(t *T) {
			t.uninit()
			for i := 0; i < 3; i++ {
				t.okRV(t.s.raw.initialize(1), "C_Initialize")
				_, rv := t.s.raw.getInfo()
				t.okRV(rv, "C_GetInfo")
				t.okRV(t.s.raw.finalize(false), "C_Finalize")
			}
		}},
		{id: "init.interface.list", spec: "base 5.4.5 C_GetInterfaceList", fn: func(t *T) {
			t.uninit()
			if !t.s.raw.hasInterface() {
				t.skipf("module exports no C_GetInterfaceList (a 2.x module)")
			}
			list, rv := t.s.raw.interfaceList()
			t.okRV(rv, "C_GetInterfaceList before C_Initialize")
			for _, i := range list {
				if i.name == "PKCS 11" && i.hasTable && i.major == 3 {
					t.note("%d interfaces, PKCS 11 %d.%d present", len(list), i.major, i.minor)
					return
				}
			}
			t.failf("no \"PKCS 11\" interface with a 3.x function table among %+v", list)
		}},
		{id: "init.interface.default", spec: "base 5.4.6 C_GetInterface", fn: func(t *T) {
			if !t.s.raw.hasInterface() {
				t.skipf("module exports no C_GetInterface (a 2.x module)")
			}
			i, rv := t.s.raw.getInterface("", -1, 0)
			t.okRV(rv, "C_GetInterface(NULL, NULL)")
			if i.name != "PKCS 11" || !i.hasTable {
				t.failf("default interface %+v, want \"PKCS 11\" with a function table", i)
			}
		}},
		{id: "init.interface.by-version", spec: "base 5.4.6 C_GetInterface", fn: func(t *T) {
			if !t.s.raw.hasInterface() {
				t.skipf("module exports no C_GetInterface (a 2.x module)")
			}
			i, rv := t.s.raw.getInterface("PKCS 11", 3, 0)
			t.okRV(rv, "C_GetInterface(\"PKCS 11\", 3.0)")
			if i.major != 3 || i.minor != 0 {
				t.failf("asked for 3.0, got function table version %d.%d", i.major, i.minor)
			}
		}},
		{id: "init.interface.unknown", spec: "base 5.4.6 C_GetInterface", fn: func(t *T) {
			if !t.s.raw.hasInterface() {
				t.skipf("module exports no C_GetInterface (a 2.x module)")
			}
			_, rv := t.s.raw.getInterface("No Such Interface", -1, 0)
			if rv == 0 {
				t.failf("C_GetInterface(\"No Such Interface\") returned CKR_OK")
			}
			t.note("refused with %s", rvName(rv))
		}},
	}
}
