package main

/*
#include "shim.h"
*/
import "C"

import (
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Key management (§5.13).

//export goC_GenerateKey
func goC_GenerateKey(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, pTemplate C.CK_ATTRIBUTE_PTR, ulCount C.CK_ULONG, phKey C.CK_OBJECT_HANDLE_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GenerateKey", &rv)
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
	t, r := inTemplate(pTemplate, ulCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	h, err := be.GenerateKey(ck.SessionHandle(hSession), m, t)
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*phKey = C.CK_OBJECT_HANDLE(h)
	return cRV(ck.CKR_OK)
}

//export goC_GenerateKeyPair
func goC_GenerateKeyPair(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR,
	pPublicKeyTemplate C.CK_ATTRIBUTE_PTR, ulPublicKeyAttributeCount C.CK_ULONG,
	pPrivateKeyTemplate C.CK_ATTRIBUTE_PTR, ulPrivateKeyAttributeCount C.CK_ULONG,
	phPublicKey, phPrivateKey C.CK_OBJECT_HANDLE_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_GenerateKeyPair", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if phPublicKey == nil || phPrivateKey == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	m, r := inMechanism(pMechanism)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	pub, r := inTemplate(pPublicKeyTemplate, ulPublicKeyAttributeCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	priv, r := inTemplate(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	hPub, hPriv, err := be.GenerateKeyPair(ck.SessionHandle(hSession), m, pub, priv)
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*phPublicKey = C.CK_OBJECT_HANDLE(hPub)
	*phPrivateKey = C.CK_OBJECT_HANDLE(hPriv)
	return cRV(ck.CKR_OK)
}

//export goC_WrapKey
func goC_WrapKey(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hWrappingKey, hKey C.CK_OBJECT_HANDLE, pWrappedKey C.CK_BYTE_PTR, pulWrappedKeyLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_WrapKey", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if pulWrappedKeyLen == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	m, r := inMechanism(pMechanism)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	r = outBytes(pWrappedKey, pulWrappedKeyLen, func(outCap int) ([]byte, int, error) {
		return be.WrapKey(ck.SessionHandle(hSession), m, ck.ObjectHandle(hWrappingKey), ck.ObjectHandle(hKey), outCap)
	})
	// A nonce-based mechanism's IV is the token's (outparams.go): the
	// caller learns it with the wrapped key, and only then.
	if r == ck.CKR_OK && pWrappedKey != nil {
		r = writeOutParams(pMechanism, m)
	}
	return cRV(r)
}

//export goC_UnwrapKey
func goC_UnwrapKey(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hUnwrappingKey C.CK_OBJECT_HANDLE,
	pWrappedKey C.CK_BYTE_PTR, ulWrappedKeyLen C.CK_ULONG, pTemplate C.CK_ATTRIBUTE_PTR, ulAttributeCount C.CK_ULONG,
	phKey C.CK_OBJECT_HANDLE_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_UnwrapKey", &rv)
	defer sessionFirst(hSession, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	if phKey == nil || pWrappedKey == nil {
		return cRV(ck.CKR_ARGUMENTS_BAD)
	}
	m, r := inMechanism(pMechanism)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	wrapped, r := bytesIn(pWrappedKey, ulWrappedKeyLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	t, r := inTemplate(pTemplate, ulAttributeCount)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	h, err := be.UnwrapKey(ck.SessionHandle(hSession), m, ck.ObjectHandle(hUnwrappingKey), wrapped, t)
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*phKey = C.CK_OBJECT_HANDLE(h)
	return cRV(ck.CKR_OK)
}

//export goC_DeriveKey
func goC_DeriveKey(hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hBaseKey C.CK_OBJECT_HANDLE,
	pTemplate C.CK_ATTRIBUTE_PTR, ulAttributeCount C.CK_ULONG, phKey C.CK_OBJECT_HANDLE_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DeriveKey", &rv)
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
	h, err := be.DeriveKey(ck.SessionHandle(hSession), m, ck.ObjectHandle(hBaseKey), t)
	if err != nil {
		return cRV(hsm.ToRV(err))
	}
	*phKey = C.CK_OBJECT_HANDLE(h)
	return cRV(ck.CKR_OK)
}
