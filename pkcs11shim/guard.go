package main

/*
#include "shim.h"
*/
import "C"

import (
	"runtime/debug"

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
