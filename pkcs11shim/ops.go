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

// opInit is the C_*Init shape: a mechanism and a key. What a NULL
// pMechanism means depends on the interface the caller chose (ifaces.go):
// from 3.0 on it terminates the active operation of that kind (the effect
// of C_SessionCancel with the operation's flag); to a 2.40 caller it is a
// bad argument, and the operation goes on.
func opInit(iface C.int, h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE, cancel ck.Flags, f initFunc) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	if pMechanism == nil {
		if !rulesOf(iface).nullMechanismCancels {
			return ck.CKR_ARGUMENTS_BAD
		}
		return hsm.ToRV(be.SessionCancel(ck.SessionHandle(h), cancel))
	}
	m, r := inMechanism(pMechanism)
	if r != ck.CKR_OK {
		return r
	}
	if err := f(be, ck.SessionHandle(h), m, ck.ObjectHandle(hKey)); err != nil {
		return hsm.ToRV(err)
	}
	// A nonce the token made at init goes back to the caller.
	return writeOutParams(pMechanism, m)
}

// opInOut is the shape of C_EncryptUpdate, C_DigestEncryptUpdate...: input
// bytes and a caller-sized output buffer. The input is copied, because a
// multi-part operation may keep it (GCM buffers until Final).
func opInOut(h C.CK_SESSION_HANDLE, pIn C.CK_BYTE_PTR, inLen C.CK_ULONG, pOut C.CK_BYTE_PTR, pOutLen C.CK_ULONG_PTR, f inOutFunc) ck.RV {
	return inOut(h, pIn, inLen, pOut, pOutLen, f, bytesIn)
}

// opOneShot is the shape of C_Encrypt, C_Decrypt, C_Sign, C_Digest: the
// single-part calls. Their input is read in place for the length of the
// call, never kept (the engine's one-shot operations finish before they
// return), so a 1 MiB C_Digest is not copied twice, once for the size query
// and once for the work.
func opOneShot(h C.CK_SESSION_HANDLE, pIn C.CK_BYTE_PTR, inLen C.CK_ULONG, pOut C.CK_BYTE_PTR, pOutLen C.CK_ULONG_PTR, f inOutFunc) ck.RV {
	return inOut(h, pIn, inLen, pOut, pOutLen, f, bytesView)
}

func inOut(h C.CK_SESSION_HANDLE, pIn C.CK_BYTE_PTR, inLen C.CK_ULONG, pOut C.CK_BYTE_PTR, pOutLen C.CK_ULONG_PTR, f inOutFunc,
	read func(C.CK_BYTE_PTR, C.CK_ULONG) ([]byte, ck.RV)) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	if pOutLen == nil {
		return ck.CKR_ARGUMENTS_BAD
	}
	in, r := read(pIn, inLen)
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
