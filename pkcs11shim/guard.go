package main

/*
#include "shim.h"
*/
import "C"

import (
	"runtime/debug"

	"github.com/gohsm/gohsm/hsm"

	"github.com/gohsm/gohsm/hsm/ck"
)

// enter prepares a wrapper call: a fault on a bad C pointer while Go reads
// or writes it becomes a panic that leave recovers, instead of killing the
// host process. It is per goroutine, so every entry sets it.
func enter() { debug.SetPanicOnFault(true) }

// leave is deferred by every wrapper. A panic anywhere below (a backend
// bug, a bad C pointer) becomes CKR_GENERAL_ERROR: a PKCS#11 module must
// never take its host process down.
func leave(fn string, rv *C.CK_RV) {
	if r := recover(); r != nil {
		logPanic(fn, r)
		*rv = C.CK_RV(ck.CKR_GENERAL_ERROR)
		return
	}
	logCall(fn, ck.RV(*rv))
}

// cRV converts a Go return value to C.
func cRV(rv ck.RV) C.CK_RV { return C.CK_RV(rv) }

// sessionFirst gives an invalid session handle precedence over a bad
// argument: §5.1.7 ranks the session codes of §5.1.2 above the "all other"
// codes of §5.1.6 such as CKR_ARGUMENTS_BAD and CKR_MECHANISM_PARAM_INVALID. The wrappers check pointers
// before they ask the backend anything, so only on that error path is the
// session looked up, and the hot path pays nothing.
func sessionFirst(h C.CK_SESSION_HANDLE, rv *C.CK_RV) {
	if r := ck.RV(*rv); r != ck.CKR_ARGUMENTS_BAD && r != ck.CKR_MECHANISM_PARAM_INVALID {
		return
	}
	be, r := backend()
	if r != ck.CKR_OK {
		return
	}
	if _, err := be.GetSessionInfo(ck.SessionHandle(h)); hsm.ToRV(err) == ck.CKR_SESSION_HANDLE_INVALID {
		*rv = C.CK_RV(ck.CKR_SESSION_HANDLE_INVALID)
	}
}

// endOnBadArgs ends the operation a single- or multi-part call belongs to
// when its arguments are bad: §5.2 says any error but CKR_BUFFER_TOO_SMALL
// terminates the operation, and a rejected call must not leave it running.
func endOnBadArgs(h C.CK_SESSION_HANDLE, op ck.Flags, rv *C.CK_RV) {
	if ck.RV(*rv) != ck.CKR_ARGUMENTS_BAD {
		return
	}
	if be, r := backend(); r == ck.CKR_OK {
		_ = be.SessionCancel(ck.SessionHandle(h), op)
	}
}
