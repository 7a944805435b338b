package main

/*
#include "shim.h"
*/
import "C"

import (
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The shapes the cryptographic functions share, so each export is one line
// of conversion and the argument rules are written once.

type (
	initFunc  func(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	inOutFunc func(be hsm.Backend, s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	outFunc   func(be hsm.Backend, s ck.SessionHandle, outCap int) ([]byte, int, error)
	inFunc    func(be hsm.Backend, s ck.SessionHandle, in []byte) error
)

// opInit is the C_*Init shape: a mechanism and a key.
func opInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE, f initFunc) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	m, r := inMechanism(pMechanism)
	if r != ck.CKR_OK {
		return r
	}
	return hsm.ToRV(f(be, ck.SessionHandle(h), m, ck.ObjectHandle(hKey)))
}

// opInOut is the shape of C_Encrypt, C_EncryptUpdate, C_Sign...: input
// bytes and a caller-sized output buffer.
func opInOut(h C.CK_SESSION_HANDLE, pIn C.CK_BYTE_PTR, inLen C.CK_ULONG, pOut C.CK_BYTE_PTR, pOutLen C.CK_ULONG_PTR, f inOutFunc) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	if pOutLen == nil {
		return ck.CKR_ARGUMENTS_BAD
	}
	in, r := bytesIn(pIn, inLen)
	if r != ck.CKR_OK {
		return r
	}
	return outBytes(pOut, pOutLen, func(outCap int) ([]byte, int, error) {
		return f(be, ck.SessionHandle(h), in, outCap)
	})
}

// opOut is the C_*Final shape: output only.
func opOut(h C.CK_SESSION_HANDLE, pOut C.CK_BYTE_PTR, pOutLen C.CK_ULONG_PTR, f outFunc) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	return outBytes(pOut, pOutLen, func(outCap int) ([]byte, int, error) {
		return f(be, ck.SessionHandle(h), outCap)
	})
}

// opIn is the shape of C_DigestUpdate, C_SignUpdate, C_VerifyFinal...:
// input only.
func opIn(h C.CK_SESSION_HANDLE, pIn C.CK_BYTE_PTR, inLen C.CK_ULONG, f inFunc) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	in, r := bytesIn(pIn, inLen)
	if r != ck.CKR_OK {
		return r
	}
	return hsm.ToRV(f(be, ck.SessionHandle(h), in))
}
