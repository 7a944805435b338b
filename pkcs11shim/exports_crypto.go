package main

/*
#include "shim.h"
*/
import "C"

import (
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Encryption, decryption, digests, signatures and the dual-function
// updates (§5.8 - §5.12). Each wrapper names its shape from ops.go. The
// C_XxxInit wrappers take the interface the caller reached them through
// (iface, a GOHSM_IFACE_* value; see ifaces.go).

//export goC_EncryptInit
func goC_EncryptInit(iface C.int, hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_EncryptInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInit(iface, hSession, pMechanism, hKey, ck.CKF_ENCRYPT, func(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, k ck.ObjectHandle) error {
		return be.EncryptInit(s, m, k)
	}))
}

//export goC_DecryptInit
func goC_DecryptInit(iface C.int, hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_DecryptInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInit(iface, hSession, pMechanism, hKey, ck.CKF_DECRYPT, func(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, k ck.ObjectHandle) error {
		return be.DecryptInit(s, m, k)
	}))
}

//export goC_SignInit
func goC_SignInit(iface C.int, hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_SignInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInit(iface, hSession, pMechanism, hKey, ck.CKF_SIGN, func(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, k ck.ObjectHandle) error {
		return be.SignInit(s, m, k)
	}))
}

//export goC_SignRecoverInit
func goC_SignRecoverInit(iface C.int, hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_SignRecoverInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInit(iface, hSession, pMechanism, hKey, ck.CKF_SIGN_RECOVER, func(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, k ck.ObjectHandle) error {
		return be.SignRecoverInit(s, m, k)
	}))
}

//export goC_VerifyInit
func goC_VerifyInit(iface C.int, hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifyInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInit(iface, hSession, pMechanism, hKey, ck.CKF_VERIFY, func(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, k ck.ObjectHandle) error {
		return be.VerifyInit(s, m, k)
	}))
}

//export goC_VerifyRecoverInit
func goC_VerifyRecoverInit(iface C.int, hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifyRecoverInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInit(iface, hSession, pMechanism, hKey, ck.CKF_VERIFY_RECOVER, func(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, k ck.ObjectHandle) error {
		return be.VerifyRecoverInit(s, m, k)
	}))
}

//export goC_Encrypt
func goC_Encrypt(hSession C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pEncryptedData C.CK_BYTE_PTR, pulEncryptedDataLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_Encrypt", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_ENCRYPT, &rv)
	return cRV(opOneShot(hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen, hsm.Backend.Encrypt))
}

//export goC_EncryptUpdate
func goC_EncryptUpdate(hSession C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG, pEncryptedPart C.CK_BYTE_PTR, pulEncryptedPartLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_EncryptUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_ENCRYPT, &rv)
	return cRV(opInOut(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen, hsm.Backend.EncryptUpdate))
}

//export goC_Decrypt
func goC_Decrypt(hSession C.CK_SESSION_HANDLE, pEncryptedData C.CK_BYTE_PTR, ulEncryptedDataLen C.CK_ULONG, pData C.CK_BYTE_PTR, pulDataLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_Decrypt", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_DECRYPT, &rv)
	return cRV(opOneShot(hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen, hsm.Backend.Decrypt))
}

//export goC_DecryptUpdate
func goC_DecryptUpdate(hSession C.CK_SESSION_HANDLE, pEncryptedPart C.CK_BYTE_PTR, ulEncryptedPartLen C.CK_ULONG, pPart C.CK_BYTE_PTR, pulPartLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DecryptUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_DECRYPT, &rv)
	return cRV(opInOut(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen, hsm.Backend.DecryptUpdate))
}

//export goC_Digest
func goC_Digest(hSession C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pDigest C.CK_BYTE_PTR, pulDigestLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_Digest", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_DIGEST, &rv)
	return cRV(opOneShot(hSession, pData, ulDataLen, pDigest, pulDigestLen, hsm.Backend.Digest))
}

//export goC_Sign
func goC_Sign(hSession C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pSignature C.CK_BYTE_PTR, pulSignatureLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_Sign", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_SIGN, &rv)
	return cRV(opOneShot(hSession, pData, ulDataLen, pSignature, pulSignatureLen, hsm.Backend.Sign))
}

//export goC_SignRecover
func goC_SignRecover(hSession C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pSignature C.CK_BYTE_PTR, pulSignatureLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_SignRecover", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInOut(hSession, pData, ulDataLen, pSignature, pulSignatureLen, hsm.Backend.SignRecover))
}

//export goC_VerifyRecover
func goC_VerifyRecover(hSession C.CK_SESSION_HANDLE, pSignature C.CK_BYTE_PTR, ulSignatureLen C.CK_ULONG, pData C.CK_BYTE_PTR, pulDataLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifyRecover", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInOut(hSession, pSignature, ulSignatureLen, pData, pulDataLen, hsm.Backend.VerifyRecover))
}

//export goC_DigestEncryptUpdate
func goC_DigestEncryptUpdate(hSession C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG, pEncryptedPart C.CK_BYTE_PTR, pulEncryptedPartLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DigestEncryptUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInOut(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen, hsm.Backend.DigestEncryptUpdate))
}

//export goC_DecryptDigestUpdate
func goC_DecryptDigestUpdate(hSession C.CK_SESSION_HANDLE, pEncryptedPart C.CK_BYTE_PTR, ulEncryptedPartLen C.CK_ULONG, pPart C.CK_BYTE_PTR, pulPartLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DecryptDigestUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInOut(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen, hsm.Backend.DecryptDigestUpdate))
}

//export goC_SignEncryptUpdate
func goC_SignEncryptUpdate(hSession C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG, pEncryptedPart C.CK_BYTE_PTR, pulEncryptedPartLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_SignEncryptUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInOut(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen, hsm.Backend.SignEncryptUpdate))
}

//export goC_DecryptVerifyUpdate
func goC_DecryptVerifyUpdate(hSession C.CK_SESSION_HANDLE, pEncryptedPart C.CK_BYTE_PTR, ulEncryptedPartLen C.CK_ULONG, pPart C.CK_BYTE_PTR, pulPartLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DecryptVerifyUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInOut(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen, hsm.Backend.DecryptVerifyUpdate))
}

//export goC_EncryptFinal
func goC_EncryptFinal(hSession C.CK_SESSION_HANDLE, pLastEncryptedPart C.CK_BYTE_PTR, pulLastEncryptedPartLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_EncryptFinal", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_ENCRYPT, &rv)
	return cRV(opOut(hSession, pLastEncryptedPart, pulLastEncryptedPartLen, hsm.Backend.EncryptFinal))
}

//export goC_DecryptFinal
func goC_DecryptFinal(hSession C.CK_SESSION_HANDLE, pLastPart C.CK_BYTE_PTR, pulLastPartLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DecryptFinal", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_DECRYPT, &rv)
	return cRV(opOut(hSession, pLastPart, pulLastPartLen, hsm.Backend.DecryptFinal))
}

//export goC_DigestFinal
func goC_DigestFinal(hSession C.CK_SESSION_HANDLE, pDigest C.CK_BYTE_PTR, pulDigestLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DigestFinal", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_DIGEST, &rv)
	return cRV(opOut(hSession, pDigest, pulDigestLen, hsm.Backend.DigestFinal))
}

//export goC_SignFinal
func goC_SignFinal(hSession C.CK_SESSION_HANDLE, pSignature C.CK_BYTE_PTR, pulSignatureLen C.CK_ULONG_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_SignFinal", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_SIGN, &rv)
	return cRV(opOut(hSession, pSignature, pulSignatureLen, hsm.Backend.SignFinal))
}

//export goC_DigestUpdate
func goC_DigestUpdate(hSession C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_DigestUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_DIGEST, &rv)
	return cRV(opIn(hSession, pPart, ulPartLen, hsm.Backend.DigestUpdate))
}

//export goC_SignUpdate
func goC_SignUpdate(hSession C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_SignUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_SIGN, &rv)
	return cRV(opIn(hSession, pPart, ulPartLen, hsm.Backend.SignUpdate))
}

//export goC_VerifyUpdate
func goC_VerifyUpdate(hSession C.CK_SESSION_HANDLE, pPart C.CK_BYTE_PTR, ulPartLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifyUpdate", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_VERIFY, &rv)
	return cRV(opIn(hSession, pPart, ulPartLen, hsm.Backend.VerifyUpdate))
}

//export goC_VerifyFinal
func goC_VerifyFinal(hSession C.CK_SESSION_HANDLE, pSignature C.CK_BYTE_PTR, ulSignatureLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_VerifyFinal", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_VERIFY, &rv)
	return cRV(opIn(hSession, pSignature, ulSignatureLen, hsm.Backend.VerifyFinal))
}

//export goC_DigestInit
func goC_DigestInit(iface C.int, hSession C.CK_SESSION_HANDLE, pMechanism C.CK_MECHANISM_PTR) (rv C.CK_RV) {
	enter()
	defer leave("C_DigestInit", &rv)
	defer sessionFirst(hSession, &rv)
	return cRV(opInit(iface, hSession, pMechanism, 0, ck.CKF_DIGEST, func(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, _ ck.ObjectHandle) error {
		return be.DigestInit(s, m)
	}))
}

//export goC_DigestKey
func goC_DigestKey(hSession C.CK_SESSION_HANDLE, hKey C.CK_OBJECT_HANDLE) (rv C.CK_RV) {
	enter()
	defer leave("C_DigestKey", &rv)
	defer sessionFirst(hSession, &rv)
	defer endOnBadArgs(hSession, ck.CKF_DIGEST, &rv)
	be, r := backend()
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.DigestKey(ck.SessionHandle(hSession), ck.ObjectHandle(hKey))))
}

//export goC_Verify
func goC_Verify(hSession C.CK_SESSION_HANDLE, pData C.CK_BYTE_PTR, ulDataLen C.CK_ULONG, pSignature C.CK_BYTE_PTR, ulSignatureLen C.CK_ULONG) (rv C.CK_RV) {
	enter()
	defer leave("C_Verify", &rv)
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
	sig, r := bytesView(pSignature, ulSignatureLen)
	if r != ck.CKR_OK {
		return cRV(r)
	}
	return cRV(hsm.ToRV(be.Verify(ck.SessionHandle(hSession), data, sig)))
}
