package main

/*
#include "shim.h"
*/
import "C"

import (
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Message-based signing and verification (3.0 §5.15, §5.17) and the 3.2
// signature-first verification and session validation flags.
//
// The per-message parameter of C_SignMessage and friends is a void pointer
// whose structure is the mechanism's own parameter type (see hsm/msgsign.go),
// and those structures cannot be told apart by size (CK_EDDSA_PARAMS,
// CK_SIGN_ADDITIONAL_CONTEXT and CK_RSA_PKCS_PSS_PARAMS are all 24 bytes on
// LP64). So the shim asks the backend which mechanism the session's process
// runs and decodes the parameter as inMechanism would decode that
// mechanism's; it keeps no session state of its own. A parameter of length
// 0 is no parameter.

// inSignParam decodes a per-message parameter into Go memory.
func inSignParam(be hsm.Backend, h C.CK_SESSION_HANDLE, verify bool, p C.CK_VOID_PTR, n C.CK_ULONG) (any, ck.RV) {
	if n == 0 {
		return nil, ck.CKR_OK
	}
	if p == nil {
		return nil, ck.CKR_MECHANISM_PARAM_INVALID
	}
	mt, err := be.MessageSignMechanism(ck.SessionHandle(h), verify)
	if err != nil {
		return nil, hsm.ToRV(err)
	}
	cm := C.CK_MECHANISM{mechanism: C.CK_MECHANISM_TYPE(mt), pParameter: p, ulParameterLen: n}
	m, rv := inMechanism(&cm)
	return m.Param, rv
}

// msgSignInit is C_MessageSignInit / C_MessageVerifyInit. A NULL mechanism
// ends the process (§5.15), which is what the process's Final does; with
// none active there is nothing to end.
func msgSignInit(h C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE, verify bool) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	s := ck.SessionHandle(h)
	if pMechanism == nil {
		final := be.MessageSignFinal
		if verify {
			final = be.MessageVerifyFinal
		}
		r = hsm.ToRV(final(s))
		if r == ck.CKR_OPERATION_NOT_INITIALIZED {
			r = ck.CKR_OK
		}
		return r
	}
	m, r := inMechanism(pMechanism)
	if r != ck.CKR_OK {
		return r
	}
	init := be.MessageSignInit
	if verify {
		init = be.MessageVerifyInit
	}
	return hsm.ToRV(init(s, m, ck.ObjectHandle(hKey)))
}

func msgSignFinal(h C.CK_SESSION_HANDLE, verify bool) ck.RV {
	be, r := backend()
	if r != ck.CKR_OK {
		return r
	}
	if verify {
		return hsm.ToRV(be.MessageVerifyFinal(ck.SessionHandle(h)))
	}
	return hsm.ToRV(be.MessageSignFinal(ck.SessionHandle(h)))
}

//export goC_MessageSignInit
func goC_MessageSignInit(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_MessageSignInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(msgSignInit(hSession, pMechanism, hKey, false))
}

//export goC_SignMessage
func goC_SignMessage(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG,
	pSignature C.CK_BYTE_PTR, pulSignatureLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_SignMessage", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pulSignatureLen == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	param, r := inSignParam(be, hSession, false, pParameter, ulParameterLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	data, r := bytesView(pData, ulDataLen) // one whole message: read in place
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(outBytes(pSignature, pulSignatureLen, func(outCap int) ([]byte, int, error) {
		return be.SignMessage(ck.SessionHandle(hSession), param, data, outCap)
	}))
}

//export goC_SignMessageBegin
func goC_SignMessageBegin(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_SignMessageBegin", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	param, r := inSignParam(be, hSession, false, pParameter, ulParameterLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.SignMessageBegin(ck.SessionHandle(hSession), param)))
}

// goC_SignMessageNext: a NULL pulSignatureLen means more parts follow
// (§5.15); a non-NULL one makes this the last part, with the output
// convention of §5.2 for the signature.
//
//export goC_SignMessageNext
func goC_SignMessageNext(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pDataPart C.CK_BYTE_PTR, ulDataPartLen C.CK_ULONG,
	pSignature C.CK_BYTE_PTR, pulSignatureLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_SignMessageNext", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	param, r := inSignParam(be, hSession, false, pParameter, ulParameterLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	part, r := bytesIn(pDataPart, ulDataPartLen) // a multi-part message may keep it
	if r != ck.CKR_OK {
		return cRV(r)
	}
	s := ck.SessionHandle(hSession)
	if pulSignatureLen == nil {
		_, _, err := be.SignMessageNext(s, param, part, false, 0)
		return cRV(hsm.ToRV(err))
	}
	return cRV(outBytes(pSignature, pulSignatureLen, func(outCap int) ([]byte, int, error) {
		return be.SignMessageNext(s, param, part, true, outCap)
	}))
}

//export goC_MessageSignFinal
func goC_MessageSignFinal(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_MessageSignFinal", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(msgSignFinal(hSession, false))
}

//export goC_MessageVerifyInit
func goC_MessageVerifyInit(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_MessageVerifyInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(msgSignInit(hSession, pMechanism, hKey, true))
}

//export goC_VerifyMessage
func goC_VerifyMessage(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG,
	pSignature C.CK_BYTE_PTR, ulSignatureLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifyMessage", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	param, r := inSignParam(be, hSession, true, pParameter, ulParameterLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	data, r := bytesView(pData, ulDataLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	sig, r := bytesView(pSignature, ulSignatureLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.VerifyMessage(ck.SessionHandle(hSession), param, data, sig)))
}

//export goC_VerifyMessageBegin
func goC_VerifyMessageBegin(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifyMessageBegin", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	param, r := inSignParam(be, hSession, true, pParameter, ulParameterLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.VerifyMessageBegin(ck.SessionHandle(hSession), param)))
}

// goC_VerifyMessageNext: a NULL pSignature means more parts follow
// (§5.17); a non-NULL one makes this the last part.
//
//export goC_VerifyMessageNext
func goC_VerifyMessageNext(hSession C.CK_SESSION_HANDLE, pParameter C.CK_VOID_PTR, ulParameterLen C.CK_ULONG, pDataPart C.CK_BYTE_PTR, ulDataPartLen C.CK_ULONG,
	pSignature C.CK_BYTE_PTR, ulSignatureLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifyMessageNext", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	param, r := inSignParam(be, hSession, true, pParameter, ulParameterLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	part, r := bytesIn(pDataPart, ulDataPartLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	last := pSignature != nil
	var sig []byte
	if last {
		if sig, r = bytesIn(pSignature, ulSignatureLen); r != ck.CKR_OK {
			return cRV(r)
		}
	}
	return cRV(hsm.ToRV(be.VerifyMessageNext(ck.SessionHandle(hSession), param, part, sig, last)))
}

//export goC_MessageVerifyFinal
func goC_MessageVerifyFinal(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_MessageVerifyFinal", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(msgSignFinal(hSession, true))
}

// goC_VerifySignatureInit (3.2, so only 3.2 callers reach it): a NULL
// mechanism ends the active verification operation, as for C_VerifyInit.
//
//export goC_VerifySignatureInit
func goC_VerifySignatureInit(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE, pSignature C.CK_BYTE_PTR, ulSignatureLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifySignatureInit", &rv)
	defer sessionFirst(hSession, &rv)
	if pMechanism == nil {
		return cRV(opInit(C.GOHSM_IFACE_3_2, hSession, nil, hKey, ck.CKF_VERIFY, nil))
	}
	if _, r := backend(); r != ck.CKR_OK {
		return cRV(r)
	}
	if pSignature == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	sig, r := bytesIn(pSignature, ulSignatureLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(opInit(C.GOHSM_IFACE_3_2, hSession, pMechanism, hKey, ck.CKF_VERIFY, func(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, k ck.ObjectHandle) error {
		return be.VerifySignatureInit(s, m, k, sig)
	}))
}

//export goC_VerifySignature
func goC_VerifySignature(hSession C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifySignature", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_VERIFY, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	data, r := bytesView(pData, ulDataLen) // single-part: read in place
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.VerifySignature(ck.SessionHandle(hSession), data)))
}

//export goC_VerifySignatureUpdate
func goC_VerifySignatureUpdate(hSession C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifySignatureUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_VERIFY, &rv)
	return cRV(opIn(hSession, pPart, ulPartLen, hsm.Backend.VerifySignatureUpdate))
}

//export goC_VerifySignatureFinal
func goC_VerifySignatureFinal(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifySignatureFinal", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.VerifySignatureFinal(ck.SessionHandle(hSession))))
}

//export goC_GetSessionValidationFlags
func goC_GetSessionValidationFlags(hSession C.CK_SESSION_HANDLE, flagsType C.CK_SESSION_VALIDATION_FLAGS_TYPE, pFlags C.CK_FLAGS_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetSessionValidationFlags", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pFlags == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	f, err := be.GetSessionValidationFlags(ck.SessionHandle(hSession), ck.ULong(flagsType))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*pFlags = C.CK_FLAGS(f)
	return cRV(ck.CKR_OK)
}
