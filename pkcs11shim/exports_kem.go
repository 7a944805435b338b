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

// Key encapsulation (3.2 §5.18: C_EncapsulateKey, C_DecapsulateKey).

//export goC_EncapsulateKey
func goC_EncapsulateKey(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hPublicKey C.CK_OBJECT_HANDLE,
	pTemplate C.CK_ATTRIBUTE_PTR, ulAttributeCount C.CK_ULONG, pCiphertext C.CK_BYTE_PTR, pulCiphertextLen C.CK_ULONG_PTR,
	phKey C.CK_OBJECT_HANDLE_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_EncapsulateKey", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	// phKey is only written when a key is made, so a length query
	// (pCiphertext NULL) may leave it NULL.
	if pulCiphertextLen == nil || (pCiphertext != nil && phKey == nil) {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	m, r := inMechanism(pMechanism)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	t, r := inTemplate(pTemplate, ulAttributeCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	// The ciphertext is written straight into the caller's buffer (it is
	// not kept past the call); NULL asks for its length. A non-NULL buffer
	// of length 0 is a non-nil empty slice: too small, not a query.
	var ct []byte
	if pCiphertext != nil {
		ct = unsafe.Slice((*byte)(unsafe.Pointer(pCiphertext)), capOf(*pulCiphertextLen))
	}
	n, h, err := be.EncapsulateKey(ck.SessionHandle(hSession), m, ck.ObjectHandle(hPublicKey), t, ct)
	r = hsm.ToRV(err)
	switch {
	case n < 0 || (r == ck.CKR_OK && ct != nil && n > len(ct)):
		return cRV(ck.CKR_GENERAL_ERROR)
	case r == ck.CKR_OK && ct != nil:
		*phKey = C.CK_OBJECT_HANDLE(h)
		fallthrough
	case r == ck.CKR_OK || r == ck.CKR_BUFFER_TOO_SMALL:
		*pulCiphertextLen = C.CK_ULONG(n)
	}
	return cRV(r)
}

//export goC_DecapsulateKey
func goC_DecapsulateKey(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hPrivateKey C.CK_OBJECT_HANDLE,
	pTemplate C.CK_ATTRIBUTE_PTR, ulAttributeCount C.CK_ULONG, pCiphertext C.CK_BYTE_PTR, ulCiphertextLen C.CK_ULONG,
	phKey C.CK_OBJECT_HANDLE_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DecapsulateKey", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if phKey == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	m, r := inMechanism(pMechanism)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	t, r := inTemplate(pTemplate, ulAttributeCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	ct, r := bytesIn(pCiphertext, ulCiphertextLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	h, err := be.DecapsulateKey(ck.SessionHandle(hSession), m, ck.ObjectHandle(hPrivateKey), t, ct)
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*phKey = C.CK_OBJECT_HANDLE(h)
	return cRV(ck.CKR_OK)
}
