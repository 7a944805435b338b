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

// Object management (§5.7).

//export goC_CreateObject
func goC_CreateObject(hSession C.CK_SESSION_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG, phObject C.CK_OBJECT_HANDLE_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_CreateObject", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if phObject == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	t, r := inTemplate(pTemplate, ulCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	h, err := be.CreateObject(ck.SessionHandle(hSession), t)
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*phObject = C.CK_OBJECT_HANDLE(h)
	return cRV(ck.CKR_OK)
}

//export goC_CopyObject
func goC_CopyObject(hSession C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG, phNewObject C.CK_OBJECT_HANDLE_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_CopyObject", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if phNewObject == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	t, r := inTemplate(pTemplate, ulCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	h, err := be.CopyObject(ck.SessionHandle(hSession), ck.ObjectHandle(hObject), t)
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*phNewObject = C.CK_OBJECT_HANDLE(h)
	return cRV(ck.CKR_OK)
}

//export goC_DestroyObject
func goC_DestroyObject(hSession C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_DestroyObject", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.DestroyObject(ck.SessionHandle(hSession), ck.ObjectHandle(hObject))))
}

//export goC_GetObjectSize
func goC_GetObjectSize(hSession C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE, pulSize C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GetObjectSize", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pulSize == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	n, err := be.GetObjectSize(ck.SessionHandle(hSession), ck.ObjectHandle(hObject))
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*pulSize = C.CK_ULONG(n)
	return cRV(ck.CKR_OK)
}

//export goC_GetAttributeValue
func goC_GetAttributeValue(hSession C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_GetAttributeValue", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(getAttributeValue(be, ck.SessionHandle(hSession), ck.ObjectHandle(hObject), pTemplate, ulCount))
}

//export goC_SetAttributeValue
func goC_SetAttributeValue(hSession C.CK_SESSION_HANDLE, hObject C.CK_OBJECT_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_SetAttributeValue", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	t, r := inTemplate(pTemplate, ulCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.SetAttributeValue(ck.SessionHandle(hSession), ck.ObjectHandle(hObject), t)))
}

//export goC_FindObjectsInit
func goC_FindObjectsInit(hSession C.CK_SESSION_HANDLE, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_FindObjectsInit", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	t, r := inTemplate(pTemplate, ulCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.FindObjectsInit(ck.SessionHandle(hSession), t)))
}

//export goC_FindObjects
func goC_FindObjects(hSession C.CK_SESSION_HANDLE, phObject C.CK_OBJECT_HANDLE_PTR, ulMaxObjectCount C.CK_ULONG, pulObjectCount C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_FindObjects", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if phObject == nil || pulObjectCount == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	max := capOf(ulMaxObjectCount)
	found, err := be.FindObjects(ck.SessionHandle(hSession), max)
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	if len(found) > max {
		return cRV(ck.CKR_GENERAL_ERROR)
	}
	dst := unsafe.Slice((*C.CK_OBJECT_HANDLE)(phObject), len(found))
	for i, h := range found {
		dst[i] = C.CK_OBJECT_HANDLE(h)
	}
	*pulObjectCount = C.CK_ULONG(len(found))
	return cRV(ck.CKR_OK)
}

//export goC_FindObjectsFinal
func goC_FindObjectsFinal(hSession C.CK_SESSION_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_FindObjectsFinal", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.FindObjectsFinal(ck.SessionHandle(hSession))))
}
