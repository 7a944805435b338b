package main

/*
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Message-based encryption and decryption (3.0 §5.9-§5.12).
//
// The per-message parameter is a void pointer whose structure depends on
// the mechanism the process was started with, which the shim does not
// track. The structures gohsm supports have distinct sizes on LP64
// (CK_GCM_MESSAGE_PARAMS 48, CK_CCM_MESSAGE_PARAMS 56,
// CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS 24), so the length names the
// structure; any other length is passed on as bytes and the engine refuses
// it for the mechanism in use.
//
// This is the one place where the shim writes into a parameter structure:
// the caller's IV buffer (a generated IV) and tag buffer (the tag of an
// encryption), within the call that produced them. writeBack closes over
// the caller's pointers and is never kept past the export that made it.

// inMessageParam decodes a per-message parameter into Go memory. writeBack
// copies the IV and tag the engine left in the decoded value back into the
// caller's buffers; call it only after a successful encryption call.
func inMessageParam(p C.CK_VOID_PTR, n C.CK_ULONG) (param any, writeBack func(), rv ck.RV) {
	noop := func() {}
	if p == nil {
		if n != 0 {
			return nil, noop, ck.CKR_MECHANISM_PARAM_INVALID
		}
		return nil, noop, ck.CKR_OK
	}
	switch n {
	case C.CK_ULONG(unsafe.Sizeof(C.CK_GCM_MESSAGE_PARAMS{})):
		g := (*C.CK_GCM_MESSAGE_PARAMS)(p)
		v := &ck.GCMMessageParams{IVFixedBits: ck.ULong(g.ulIvFixedBits), IVGenerator: ck.GeneratorFunction(g.ivGenerator),
			TagBits: ck.ULong(g.ulTagBits)}
		var err ck.RV
		if v.IV, err = paramBytes(unsafe.Pointer(g.pIv), g.ulIvLen); err != ck.CKR_OK {
			return nil, noop, err
		}
		tagLen := C.CK_ULONG(g.ulTagBits / 8)
		if v.Tag, err = paramBytes(unsafe.Pointer(g.pTag), tagLen); err != ck.CKR_OK {
			return nil, noop, err
		}
		pIv, ivLen, pTag := g.pIv, int(g.ulIvLen), g.pTag
		return v, func() {
			if v.IVGenerator != ck.CKG_NO_GENERATE && len(v.IV) == ivLen {
				copy(unsafe.Slice((*byte)(unsafe.Pointer(pIv)), ivLen), v.IV)
			}
			if len(v.Tag) == int(tagLen) && tagLen > 0 {
				copy(unsafe.Slice((*byte)(unsafe.Pointer(pTag)), int(tagLen)), v.Tag)
			}
		}, ck.CKR_OK
	case C.CK_ULONG(unsafe.Sizeof(C.CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS{})):
		c := (*C.CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS)(p)
		const tagLen = 16
		if c.pTag == nil {
			return nil, noop, ck.CKR_MECHANISM_PARAM_INVALID
		}
		v := &ck.ChaCha20Poly1305MsgParams{}
		var err ck.RV
		if v.Nonce, err = paramBytes(unsafe.Pointer(c.pNonce), c.ulNonceLen); err != ck.CKR_OK {
			return nil, noop, err
		}
		v.Tag = C.GoBytes(unsafe.Pointer(c.pTag), tagLen)
		pTag := c.pTag
		return v, func() {
			if len(v.Tag) == tagLen {
				copy(unsafe.Slice((*byte)(unsafe.Pointer(pTag)), tagLen), v.Tag)
			}
		}, ck.CKR_OK
	}
	b, rv := inBytes(unsafe.Pointer(p), n)
	if rv != ck.CKR_OK {
		return nil, noop, ck.CKR_MECHANISM_PARAM_INVALID
	}
	return b, noop, ck.CKR_OK
}

// inMessageMechanism decodes the mechanism of C_Message*Init. Its
// parameter, when given, is a message parameter structure whose values
// gohsm takes per message, not at init: only its shape is passed on, and
// none of its pointers is read (a CK_GCM_PARAMS has the size of a
// CK_GCM_MESSAGE_PARAMS and different pointers).
func inMessageMechanism(p C.CK_MECHANISM_PTR) (ck.Mechanism, ck.RV) {
	m := ck.Mechanism{Type: ck.MechanismType(p.mechanism)}
	pp, n := p.pParameter, p.ulParameterLen
	switch {
	case pp == nil && n == 0:
	case pp == nil:
		return m, ck.CKR_MECHANISM_PARAM_INVALID
	case n == C.CK_ULONG(unsafe.Sizeof(C.CK_GCM_MESSAGE_PARAMS{})):
		m.Param = &ck.GCMMessageParams{}
	case n == C.CK_ULONG(unsafe.Sizeof(C.CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS{})):
		m.Param = &ck.ChaCha20Poly1305MsgParams{}
	default:
		b, rv := inBytes(unsafe.Pointer(pp), n)
		if rv != ck.CKR_OK {
			return m, ck.CKR_MECHANISM_PARAM_INVALID
		}
		m.Param = b
	}
	return m, ck.CKR_OK
}

// messageInit is C_MessageEncryptInit / C_MessageDecryptInit. A NULL
// mechanism ends the process (§5.9), which is C_SessionCancel with the
// process's flag.
func messageInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE, cancel ck.Flags,
	init func(hsm.Backend, ck.SessionHandle, ck.Mechanism, ck.ObjectHandle) error) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	if pMechanism == nil {
		return hsm.ToRV(be.SessionCancel(ck.SessionHandle(h), cancel))
	}
	m, r := inMessageMechanism(pMechanism)
	if r != ck.CKR_OK {
		return r
	}
	return hsm.ToRV(init(be, ck.SessionHandle(h), m, ck.ObjectHandle(hKey)))
}

type messageFunc func(be hsm.Backend, s ck.SessionHandle, param any, aad, in []byte, outCap int) ([]byte, int, error)

// oneMessage is C_EncryptMessage / C_DecryptMessage.
func oneMessage(h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAAD C.CK_BYTE_PTR, aadLen C.CK_ULONG,
	pIn C.CK_BYTE_PTR, inLen C.CK_ULONG, pOut C.CK_BYTE_PTR, pOutLen C.CK_ULONG_PTR, encrypt bool, f messageFunc) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	if pOutLen == nil {
		return ck.CKR_ARGUMENTS_BAD
	}
	param, writeBack, r := inMessageParam(pParameter, ulParameterLen)
	if r != ck.CKR_OK {
		return r
	}
	aad, r := bytesIn(pAAD, aadLen)
	if r != ck.CKR_OK {
		return r
	}
	in, r := bytesIn(pIn, inLen)
	if r != ck.CKR_OK {
		return r
	}
	r = outBytes(pOut, pOutLen, func(outCap int) ([]byte, int, error) {
		return f(be, ck.SessionHandle(h), param, aad, in, outCap)
	})
	if r == ck.CKR_OK && pOut != nil && encrypt {
		writeBack()
	}
	return r
}

func beginMessage(h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAAD C.CK_BYTE_PTR, aadLen C.CK_ULONG,
	encrypt bool, f func(hsm.Backend, ck.SessionHandle, any, []byte) error) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	param, writeBack, r := inMessageParam(pParameter, ulParameterLen)
	if r != ck.CKR_OK {
		return r
	}
	aad, r := bytesIn(pAAD, aadLen)
	if r != ck.CKR_OK {
		return r
	}
	r = hsm.ToRV(f(be, ck.SessionHandle(h), param, aad))
	if r == ck.CKR_OK && encrypt {
		writeBack()
	}
	return r
}

type nextFunc func(be hsm.Backend, s ck.SessionHandle, param any, in []byte, outCap int, flags ck.Flags) ([]byte, int, error)

func nextMessage(h C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pIn C.CK_BYTE_PTR, inLen C.CK_ULONG,
	pOut C.CK_BYTE_PTR, pOutLen C.CK_ULONG_PTR, flags C.CK_FLAGS, encrypt bool, f nextFunc) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	if pOutLen == nil {
		return ck.CKR_ARGUMENTS_BAD
	}
	param, writeBack, r := inMessageParam(pParameter, ulParameterLen)
	if r != ck.CKR_OK {
		return r
	}
	in, r := bytesIn(pIn, inLen)
	if r != ck.CKR_OK {
		return r
	}
	r = outBytes(pOut, pOutLen, func(outCap int) ([]byte, int, error) {
		return f(be, ck.SessionHandle(h), param, in, outCap, ck.Flags(flags))
	})
	if r == ck.CKR_OK && pOut != nil && encrypt && ck.Flags(flags)&ck.CKF_END_OF_MESSAGE != 0 {
		writeBack()
	}
	return r
}

func finalMessages(h C.CK_SESSION_HANDLE, f func(hsm.Backend, ck.SessionHandle) error) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	return hsm.ToRV(f(be, ck.SessionHandle(h)))
}

//export goC_MessageEncryptInit
func goC_MessageEncryptInit(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_MessageEncryptInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(messageInit(hSession, pMechanism, hKey, ck.CKF_MESSAGE_ENCRYPT, hsm.Backend.MessageEncryptInit))
}

//export goC_EncryptMessage
func goC_EncryptMessage(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAssociatedData C.CK_BYTE_PTR, ulAssociatedDataLen C.CK_ULONG,
	pPlaintext C.CK_BYTE_PTR, ulPlaintextLen C.CK_ULONG, pCiphertext C.CK_BYTE_PTR, pulCiphertextLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_EncryptMessage", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(oneMessage(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pPlaintext, ulPlaintextLen,
		pCiphertext, pulCiphertextLen, true, hsm.Backend.EncryptMessage))
}

//export goC_EncryptMessageBegin
func goC_EncryptMessageBegin(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAssociatedData C.CK_BYTE_PTR, ulAssociatedDataLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_EncryptMessageBegin", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(beginMessage(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, true, hsm.Backend.EncryptMessageBegin))
}

//export goC_EncryptMessageNext
func goC_EncryptMessageNext(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pPlaintextPart C.CK_BYTE_PTR, ulPlaintextPartLen C.CK_ULONG,
	pCiphertextPart C.CK_BYTE_PTR, pulCiphertextPartLen C.CK_ULONG_PTR, flags C.CK_FLAGS) (rv C.CK_RV) {
	enter()
	defer leave("C_EncryptMessageNext", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(nextMessage(hSession, pParameter, ulParameterLen, pPlaintextPart, ulPlaintextPartLen, pCiphertextPart, pulCiphertextPartLen,
		flags, true, hsm.Backend.EncryptMessageNext))
}

//export goC_MessageEncryptFinal
func goC_MessageEncryptFinal(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_MessageEncryptFinal", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(finalMessages(hSession, hsm.Backend.MessageEncryptFinal))
}

//export goC_MessageDecryptInit
func goC_MessageDecryptInit(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_MessageDecryptInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(messageInit(hSession, pMechanism, hKey, ck.CKF_MESSAGE_DECRYPT, hsm.Backend.MessageDecryptInit))
}

//export goC_DecryptMessage
func goC_DecryptMessage(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAssociatedData C.CK_BYTE_PTR, ulAssociatedDataLen C.CK_ULONG,
	pCiphertext C.CK_BYTE_PTR, ulCiphertextLen C.CK_ULONG, pPlaintext C.CK_BYTE_PTR, pulPlaintextLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DecryptMessage", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(oneMessage(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pCiphertext, ulCiphertextLen,
		pPlaintext, pulPlaintextLen, false, hsm.Backend.DecryptMessage))
}

//export goC_DecryptMessageBegin
func goC_DecryptMessageBegin(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pAssociatedData C.CK_BYTE_PTR, ulAssociatedDataLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_DecryptMessageBegin", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(beginMessage(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, false, hsm.Backend.DecryptMessageBegin))
}

//export goC_DecryptMessageNext
func goC_DecryptMessageNext(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pCiphertextPart C.CK_BYTE_PTR, ulCiphertextPartLen C.CK_ULONG,
	pPlaintextPart C.CK_BYTE_PTR, pulPlaintextPartLen C.CK_ULONG_PTR, flags C.CK_FLAGS) (rv C.CK_RV) {
	enter()
	defer leave("C_DecryptMessageNext", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(nextMessage(hSession, pParameter, ulParameterLen, pCiphertextPart, ulCiphertextPartLen, pPlaintextPart, pulPlaintextPartLen,
		flags, false, hsm.Backend.DecryptMessageNext))
}

//export goC_MessageDecryptFinal
func goC_MessageDecryptFinal(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_MessageDecryptFinal", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(finalMessages(hSession, hsm.Backend.MessageDecryptFinal))
}
