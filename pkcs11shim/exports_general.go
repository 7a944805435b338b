package main

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// General-purpose, slot and token functions (§5.4 - §5.6).

// cGetenv reads the host process's environment as it is now. os.Getenv
// would read this library's Go runtime's copy, taken when the library was
// loaded: a host that sets GOHSM_DIR (or GOHSM_CONF) afterwards, with
// setenv(3) or another Go runtime's os.Setenv, would be ignored.
func cGetenv(k string) string {
	ck := C.CString(k)
	defer C.free(unsafe.Pointer(ck))
	v := C.getenv(ck)
	if v == nil {
		return ""
	}
	return C.GoString(v)
}

//export goC_Initialize
func goC_Initialize(pInitArgs C.CK_VOID_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_Initialize", &rv)
	var a *initArgs
	if pInitArgs != nil {
		c := (*C.CK_C_INITIALIZE_ARGS)(pInitArgs)
		a = &initArgs{
			createMutex:  c.CreateMutex != nil,
			destroyMutex: c.DestroyMutex != nil,
			lockMutex:    c.LockMutex != nil,
			unlockMutex:  c.UnlockMutex != nil,
			flags:        ck.Flags(c.flags),
			reserved:     c.pReserved != nil,
		}
	}
	forgetSizedSlots()
	return cRV(initialize(a, cGetenv))
}

//export goC_Finalize
func goC_Finalize(pReserved C.CK_VOID_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_Finalize", &rv)
	if pReserved != nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	forgetSizedSlots()
	return cRV(finalize())
}

//export goC_GetInfo
func goC_GetInfo(pInfo C.CK_INFO_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetInfo", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pInfo == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	info, err := be.GetInfo()
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	pInfo.cryptokiVersion = cVersion(info.CryptokiVersion)
	padInto(field(pInfo.manufacturerID[:]), info.ManufacturerID)
	pInfo.flags = C.CK_FLAGS(info.Flags)
	padInto(field(pInfo.libraryDescription[:]), info.LibraryDescription)
	pInfo.libraryVersion = cVersion(info.LibraryVersion)
	return cRV(ck.CKR_OK)
}

//export goC_GetSlotList
func goC_GetSlotList(tokenPresent C.CK_BBOOL, pSlotList C.CK_SLOT_ID_PTR, pulCount C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetSlotList", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pulCount == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	slots, err := slotListFor(tokenPresent != 0, pSlotList == nil, be.GetSlotList)
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	return cRV(outList((*C.CK_ULONG)(pSlotList), pulCount, slots))
}

//export goC_GetSlotInfo
func goC_GetSlotInfo(slotID C.CK_SLOT_ID, pInfo C.CK_SLOT_INFO_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetSlotInfo", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pInfo == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	info, err := be.GetSlotInfo(ck.SlotID(slotID))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	padInto(field(pInfo.slotDescription[:]), info.SlotDescription)
	padInto(field(pInfo.manufacturerID[:]), info.ManufacturerID)
	pInfo.flags = C.CK_FLAGS(info.Flags)
	pInfo.hardwareVersion = cVersion(info.HardwareVersion)
	pInfo.firmwareVersion = cVersion(info.FirmwareVersion)
	return cRV(ck.CKR_OK)
}

//export goC_GetTokenInfo
func goC_GetTokenInfo(slotID C.CK_SLOT_ID, pInfo C.CK_TOKEN_INFO_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetTokenInfo", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pInfo == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	t, err := be.GetTokenInfo(ck.SlotID(slotID))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	padInto(field(pInfo.label[:]), t.Label)
	padInto(field(pInfo.manufacturerID[:]), t.ManufacturerID)
	padInto(field(pInfo.model[:]), t.Model)
	padInto(field(pInfo.serialNumber[:]), t.SerialNumber)
	pInfo.flags = C.CK_FLAGS(t.Flags)
	pInfo.ulMaxSessionCount = C.CK_ULONG(t.MaxSessionCount)
	pInfo.ulSessionCount = C.CK_ULONG(t.SessionCount)
	pInfo.ulMaxRwSessionCount = C.CK_ULONG(t.MaxRwSessionCount)
	pInfo.ulRwSessionCount = C.CK_ULONG(t.RwSessionCount)
	pInfo.ulMaxPinLen = C.CK_ULONG(t.MaxPinLen)
	pInfo.ulMinPinLen = C.CK_ULONG(t.MinPinLen)
	pInfo.ulTotalPublicMemory = C.CK_ULONG(t.TotalPublicMemory)
	pInfo.ulFreePublicMemory = C.CK_ULONG(t.FreePublicMemory)
	pInfo.ulTotalPrivateMemory = C.CK_ULONG(t.TotalPrivateMemory)
	pInfo.ulFreePrivateMemory = C.CK_ULONG(t.FreePrivateMemory)
	pInfo.hardwareVersion = cVersion(t.HardwareVersion)
	pInfo.firmwareVersion = cVersion(t.FirmwareVersion)
	padInto(field(pInfo.utcTime[:]), t.UTCTime)
	return cRV(ck.CKR_OK)
}

//export goC_GetMechanismList
func goC_GetMechanismList(slotID C.CK_SLOT_ID, pMechanismList C.CK_MECHANISM_TYPE_PTR, pulCount C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetMechanismList", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pulCount == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	list, err := be.GetMechanismList(ck.SlotID(slotID))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	return cRV(outList((*C.CK_ULONG)(pMechanismList), pulCount, list))
}

// goC_GetMechanismInfo reports only the flags the caller's interface
// defines (iface, a GOHSM_IFACE_* value; see ifaces.go).
//
//export goC_GetMechanismInfo
func goC_GetMechanismInfo(iface C.int, slotID C.CK_SLOT_ID, typ C.CK_MECHANISM_TYPE, pInfo C.CK_MECHANISM_INFO_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetMechanismInfo", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pInfo == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	info, err := be.GetMechanismInfo(ck.SlotID(slotID), ck.MechanismType(typ))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	pInfo.ulMinKeySize = C.CK_ULONG(info.MinKeySize)
	pInfo.ulMaxKeySize = C.CK_ULONG(info.MaxKeySize)
	pInfo.flags = C.CK_FLAGS(info.Flags & rulesOf(iface).mechFlags)
	return cRV(ck.CKR_OK)
}

//export goC_InitToken
func goC_InitToken(slotID C.CK_SLOT_ID, pPin C.CK_UTF8CHAR_PTR, ulPinLen C.CK_ULONG, pLabel C.CK_UTF8CHAR_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_InitToken", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pLabel == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	pin, r := inPIN(pPin, ulPinLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	defer wipe(pin)
	label := labelOf(C.GoBytes(unsafe.Pointer(pLabel), 32))
	return cRV(hsm.ToRV(be.InitToken(ck.SlotID(slotID), pin, label)))
}

//export goC_InitPIN
func goC_InitPIN(hSession C.CK_SESSION_HANDLE, pPin C.CK_UTF8CHAR_PTR, ulPinLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_InitPIN", &rv)
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
	return cRV(hsm.ToRV(be.InitPIN(ck.SessionHandle(hSession), pin)))
}

//export goC_SetPIN
func goC_SetPIN(hSession C.CK_SESSION_HANDLE, pOldPin C.CK_UTF8CHAR_PTR, ulOldLen C.CK_ULONG, pNewPin C.CK_UTF8CHAR_PTR, ulNewLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_SetPIN", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	oldPIN, r := inPIN(pOldPin, ulOldLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	defer wipe(oldPIN)
	newPIN, r := inPIN(pNewPin, ulNewLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	defer wipe(newPIN)
	return cRV(hsm.ToRV(be.SetPIN(ck.SessionHandle(hSession), oldPIN, newPIN)))
}

//export goC_WaitForSlotEvent
func goC_WaitForSlotEvent(flags C.CK_FLAGS, pSlot C.CK_SLOT_ID_PTR, pReserved C.CK_VOID_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_WaitForSlotEvent", &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pSlot == nil || pReserved != nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	slot, err := be.WaitForSlotEvent(ck.Flags(flags))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*pSlot = C.CK_SLOT_ID(slot)
	return cRV(ck.CKR_OK)
}
