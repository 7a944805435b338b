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

// Session management, login, operation state and random numbers
// (§5.6, §5.13 - §5.15, 3.0 C_LoginUser and C_SessionCancel).

//export goC_OpenSession
func goC_OpenSession(slotID C.CK_SLOT_ID, flags C.CK_FLAGS, pApplication C.CK_VOID_PTR, notify C.CK_NOTIFY, phSession C.CK_SESSION_HANDLE_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_OpenSession", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if phSession == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	// Notify callbacks are never made (§5.6.1 lets a library skip them);
	// pApplication is only ever passed back to Notify.
	h, err := be.OpenSession(ck.SlotID(slotID), ck.Flags(flags))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*phSession = C.CK_SESSION_HANDLE(h)
	return cRV(ck.CKR_OK)
}

//export goC_CloseSession
func goC_CloseSession(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_CloseSession", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.CloseSession(ck.SessionHandle(hSession))))
}

//export goC_CloseAllSessions
func goC_CloseAllSessions(slotID C.CK_SLOT_ID) (rv C.CK_RV) {
	enter()
	defer leave("C_CloseAllSessions", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.CloseAllSessions(ck.SlotID(slotID))))
}

//export goC_GetSessionInfo
func goC_GetSessionInfo(hSession C.CK_SESSION_HANDLE, pInfo C.CK_SESSION_INFO_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetSessionInfo", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pInfo == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	info, err := be.GetSessionInfo(ck.SessionHandle(hSession))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	pInfo.slotID = C.CK_SLOT_ID(info.SlotID)
	pInfo.state = C.CK_STATE(info.State)
	pInfo.flags = C.CK_FLAGS(info.Flags)
	pInfo.ulDeviceError = C.CK_ULONG(info.DeviceError)
	return cRV(ck.CKR_OK)
}

//export goC_GetOperationState
func goC_GetOperationState(hSession C.CK_SESSION_HANDLE, pOperationState C.CK_BYTE_PTR, pulOperationStateLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetOperationState", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(outBytes(pOperationState, pulOperationStateLen, func(outCap int) ([]byte, int, error) {
		return be.GetOperationState(ck.SessionHandle(hSession), outCap)
	}))
}

//export goC_SetOperationState
func goC_SetOperationState(hSession C.CK_SESSION_HANDLE, pOperationState C.CK_BYTE_PTR, ulOperationStateLen C.CK_ULONG, hEncryptionKey, hAuthenticationKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_SetOperationState", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pOperationState == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	state, r := bytesIn(pOperationState, ulOperationStateLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.SetOperationState(ck.SessionHandle(hSession), state, ck.ObjectHandle(hEncryptionKey), ck.ObjectHandle(hAuthenticationKey))))
}

//export goC_Login
func goC_Login(hSession C.CK_SESSION_HANDLE, userType C.CK_USER_TYPE, pPin C.CK_UTF8CHAR_PTR, ulPinLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_Login", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	pin, r := inPIN(pPin, ulPinLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	defer wipe(pin)
	return cRV(hsm.ToRV(be.Login(ck.SessionHandle(hSession), ck.UserType(userType), pin)))
}

//export goC_LoginUser
func goC_LoginUser(hSession C.CK_SESSION_HANDLE, userType C.CK_USER_TYPE, pPin C.CK_UTF8CHAR_PTR, ulPinLen C.CK_ULONG, pUsername C.CK_UTF8CHAR_PTR, ulUsernameLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_LoginUser", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	pin, r := inPIN(pPin, ulPinLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	defer wipe(pin)
	user, r := inBytes(unsafe.Pointer(pUsername), ulUsernameLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.LoginUser(ck.SessionHandle(hSession), ck.UserType(userType), pin, user)))
}

//export goC_Logout
func goC_Logout(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_Logout", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.Logout(ck.SessionHandle(hSession))))
}

//export goC_SessionCancel
func goC_SessionCancel(hSession C.CK_SESSION_HANDLE, flags C.CK_FLAGS) (rv C.CK_RV) {
	enter()
	defer leave("C_SessionCancel", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.SessionCancel(ck.SessionHandle(hSession), ck.Flags(flags))))
}

//export goC_SeedRandom
func goC_SeedRandom(hSession C.CK_SESSION_HANDLE, pSeed C.CK_BYTE_PTR, ulSeedLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_SeedRandom", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	seed, r := bytesIn(pSeed, ulSeedLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.SeedRandom(ck.SessionHandle(hSession), seed)))
}

//export goC_GenerateRandom
func goC_GenerateRandom(hSession C.CK_SESSION_HANDLE, pRandom C.CK_BYTE_PTR, ulRandomLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_GenerateRandom", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if (pRandom == nil && ulRandomLen != 0) || uint64(ulRandomLen) > maxIn {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	out, err := be.GenerateRandom(ck.SessionHandle(hSession), int(ulRandomLen))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	if len(out) != int(ulRandomLen) {
		return cRV(ck.CKR_GENERAL_ERROR)
	}
	if len(out) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(pRandom)), len(out)), out)
		wipe(out)
	}
	return cRV(ck.CKR_OK)
}

//export goC_GetFunctionStatus
func goC_GetFunctionStatus(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_GetFunctionStatus", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.GetFunctionStatus(ck.SessionHandle(hSession))))
}

//export goC_CancelFunction
func goC_CancelFunction(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_CancelFunction", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.CancelFunction(ck.SessionHandle(hSession))))
}
