/*
 * The exported C_* entry points. Each one checks for a fork in C first and
 * then calls its Go wrapper (go<name>, exports_*.go), which does the C <-> Go
 * conversion. The 3.2 asynchronous and authenticated-wrapping functions are
 * not offered: they return CKR_FUNCTION_NOT_SUPPORTED (§5.1) without
 * entering Go.
 *
 * The exported functions behave as PKCS#11 3.2 (GOHSM_IFACE_3_2) where
 * versions differ; the 2.40 and 3.0 tables reach the same Go code through
 * the gohsm_<version>_* entry points at the end of this file.
 */
#include "shim.h"
#include "_cgo_export.h"

CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
	if (gohsm_forked)
		return GOHSM_CHILD_INIT_RV;
	return goC_Initialize(pInitArgs);
}

CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_Finalize(pReserved);
}

CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetInfo(pInfo);
}

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetSlotList(tokenPresent, pSlotList, pulCount);
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetSlotInfo(slotID, pInfo);
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetTokenInfo(slotID, pInfo);
}

CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetMechanismList(slotID, pMechanismList, pulCount);
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetMechanismInfo(GOHSM_IFACE_3_2, slotID, type, pInfo);
}

CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_InitToken(slotID, pPin, ulPinLen, pLabel);
}

CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_InitPIN(hSession, pPin, ulPinLen);
}

CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SetPIN(hSession, pOldPin, ulOldLen, pNewPin, ulNewLen);
}

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_OpenSession(slotID, flags, pApplication, Notify, phSession);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_CloseSession(hSession);
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_CloseAllSessions(slotID);
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetSessionInfo(hSession, pInfo);
}

CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG_PTR pulOperationStateLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetOperationState(hSession, pOperationState, pulOperationStateLen);
}

CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey, CK_OBJECT_HANDLE hAuthenticationKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SetOperationState(hSession, pOperationState, ulOperationStateLen, hEncryptionKey, hAuthenticationKey);
}

CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_Login(hSession, userType, pPin, ulPinLen);
}

CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_Logout(hSession);
}

CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_CreateObject(hSession, pTemplate, ulCount, phObject);
}

CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_CopyObject(hSession, hObject, pTemplate, ulCount, phNewObject);
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DestroyObject(hSession, hObject);
}

CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetObjectSize(hSession, hObject, pulSize);
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetAttributeValue(hSession, hObject, pTemplate, ulCount);
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SetAttributeValue(hSession, hObject, pTemplate, ulCount);
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_FindObjectsInit(hSession, pTemplate, ulCount);
}

CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_FindObjects(hSession, phObject, ulMaxObjectCount, pulObjectCount);
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_FindObjectsFinal(hSession);
}

CK_RV C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_EncryptInit(GOHSM_IFACE_3_2, hSession, pMechanism, hKey);
}

CK_RV C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_Encrypt(hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen);
}

CK_RV C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_EncryptUpdate(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

CK_RV C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart, CK_ULONG_PTR pulLastEncryptedPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_EncryptFinal(hSession, pLastEncryptedPart, pulLastEncryptedPartLen);
}

CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecryptInit(GOHSM_IFACE_3_2, hSession, pMechanism, hKey);
}

CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_Decrypt(hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen);
}

CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecryptUpdate(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecryptFinal(hSession, pLastPart, pulLastPartLen);
}

CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DigestInit(GOHSM_IFACE_3_2, hSession, pMechanism);
}

CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_Digest(hSession, pData, ulDataLen, pDigest, pulDigestLen);
}

CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DigestUpdate(hSession, pPart, ulPartLen);
}

CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DigestKey(hSession, hKey);
}

CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DigestFinal(hSession, pDigest, pulDigestLen);
}

CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignInit(GOHSM_IFACE_3_2, hSession, pMechanism, hKey);
}

CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_Sign(hSession, pData, ulDataLen, pSignature, pulSignatureLen);
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignUpdate(hSession, pPart, ulPartLen);
}

CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignFinal(hSession, pSignature, pulSignatureLen);
}

CK_RV C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignRecoverInit(GOHSM_IFACE_3_2, hSession, pMechanism, hKey);
}

CK_RV C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignRecover(hSession, pData, ulDataLen, pSignature, pulSignatureLen);
}

CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyInit(GOHSM_IFACE_3_2, hSession, pMechanism, hKey);
}

CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_Verify(hSession, pData, ulDataLen, pSignature, ulSignatureLen);
}

CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyUpdate(hSession, pPart, ulPartLen);
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyFinal(hSession, pSignature, ulSignatureLen);
}

CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyRecoverInit(GOHSM_IFACE_3_2, hSession, pMechanism, hKey);
}

CK_RV C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyRecover(hSession, pSignature, ulSignatureLen, pData, pulDataLen);
}

CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DigestEncryptUpdate(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecryptDigestUpdate(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignEncryptUpdate(hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecryptVerifyUpdate(hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GenerateKey(hSession, pMechanism, pTemplate, ulCount, phKey);
}

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount, CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount, CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GenerateKeyPair(hSession, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount, pPrivateKeyTemplate, ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey);
}

CK_RV C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_WrapKey(hSession, pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen);
}

CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_UnwrapKey(hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate, ulAttributeCount, phKey);
}

CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DeriveKey(hSession, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey);
}

CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SeedRandom(hSession, pSeed, ulSeedLen);
}

CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GenerateRandom(hSession, RandomData, ulRandomLen);
}

CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetFunctionStatus(hSession);
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_CancelFunction(hSession);
}

CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_WaitForSlotEvent(flags, pSlot, pReserved);
}

CK_RV C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_LoginUser(hSession, userType, pPin, ulPinLen, pUsername, ulUsernameLen);
}

CK_RV C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SessionCancel(hSession, flags);
}

CK_RV C_MessageEncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_MessageEncryptInit(hSession, pMechanism, hKey);
}

CK_RV C_EncryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext, CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_EncryptMessage(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pPlaintext, ulPlaintextLen, pCiphertext, pulCiphertextLen);
}

CK_RV C_EncryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_EncryptMessageBegin(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen);
}

CK_RV C_EncryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pPlaintextPart, CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart, CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_EncryptMessageNext(hSession, pParameter, ulParameterLen, pPlaintextPart, ulPlaintextPartLen, pCiphertextPart, pulCiphertextPartLen, flags);
}

CK_RV C_MessageEncryptFinal(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_MessageEncryptFinal(hSession);
}

CK_RV C_MessageDecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_MessageDecryptInit(hSession, pMechanism, hKey);
}

CK_RV C_DecryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext, CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext, CK_ULONG_PTR pulPlaintextLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecryptMessage(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pCiphertext, ulCiphertextLen, pPlaintext, pulPlaintextLen);
}

CK_RV C_DecryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecryptMessageBegin(hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen);
}

CK_RV C_DecryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pCiphertextPart, CK_ULONG ulCiphertextPartLen, CK_BYTE_PTR pPlaintextPart, CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecryptMessageNext(hSession, pParameter, ulParameterLen, pCiphertextPart, ulCiphertextPartLen, pPlaintextPart, pulPlaintextPartLen, flags);
}

CK_RV C_MessageDecryptFinal(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_MessageDecryptFinal(hSession);
}

CK_RV C_MessageSignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_MessageSignInit(hSession, pMechanism, hKey);
}

CK_RV C_SignMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignMessage(hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, pulSignatureLen);
}

CK_RV C_SignMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignMessageBegin(hSession, pParameter, ulParameterLen);
}

CK_RV C_SignMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignMessageNext(hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, pulSignatureLen);
}

CK_RV C_MessageSignFinal(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_MessageSignFinal(hSession);
}

CK_RV C_MessageVerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_MessageVerifyInit(hSession, pMechanism, hKey);
}

CK_RV C_VerifyMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyMessage(hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, ulSignatureLen);
}

CK_RV C_VerifyMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyMessageBegin(hSession, pParameter, ulParameterLen);
}

CK_RV C_VerifyMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyMessageNext(hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, ulSignatureLen);
}

CK_RV C_MessageVerifyFinal(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_MessageVerifyFinal(hSession);
}

/* PKCS#11 3.2. */

CK_RV C_EncapsulateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPublicKey, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_EncapsulateKey(hSession, pMechanism, hPublicKey, pTemplate, ulAttributeCount, pCiphertext, pulCiphertextLen, phKey);
}

CK_RV C_DecapsulateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPrivateKey, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext, CK_ULONG ulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecapsulateKey(hSession, pMechanism, hPrivateKey, pTemplate, ulAttributeCount, pCiphertext, ulCiphertextLen, phKey);
}

/* Verification with the signature first, and the validation flags (3.2). */
CK_RV C_VerifySignatureInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifySignatureInit(hSession, pMechanism, hKey, pSignature, ulSignatureLen);
}

CK_RV C_VerifySignature(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifySignature(hSession, pData, ulDataLen);
}

CK_RV C_VerifySignatureUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifySignatureUpdate(hSession, pPart, ulPartLen);
}

CK_RV C_VerifySignatureFinal(CK_SESSION_HANDLE hSession)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifySignatureFinal(hSession);
}

CK_RV C_GetSessionValidationFlags(CK_SESSION_HANDLE hSession, CK_SESSION_VALIDATION_FLAGS_TYPE type, CK_FLAGS_PTR pFlags)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetSessionValidationFlags(hSession, type, pFlags);
}

/*
 * Not offered (§5.1: CKR_FUNCTION_NOT_SUPPORTED, without entering Go): the
 * 3.2 asynchronous functions C_AsyncComplete, C_AsyncGetID, C_AsyncJoin
 * (gohsm never answers CKR_PENDING, so there is nothing to complete or
 * join) and authenticated key wrapping, C_WrapKeyAuthenticated /
 * C_UnwrapKeyAuthenticated (no registered mechanism wraps with associated
 * data).
 */
CK_RV C_AsyncComplete(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ASYNC_DATA *pResult)
{
	return GOHSM_CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV C_AsyncGetID(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG_PTR pulID)
{
	return GOHSM_CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV C_AsyncJoin(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG ulID, CK_BYTE_PTR pData, CK_ULONG ulData)
{
	return GOHSM_CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV C_WrapKeyAuthenticated(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
	return GOHSM_CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV C_UnwrapKeyAuthenticated(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_OBJECT_HANDLE_PTR phKey)
{
	return GOHSM_CKR_FUNCTION_NOT_SUPPORTED;
}

/*
 * The entries of the older interfaces' tables (GOHSM_VERSIONED_* in
 * shim.h): the exported function's Go wrapper, told which interface the
 * caller chose. A 2.40 caller (every application that uses
 * C_GetFunctionList) gets CKR_ARGUMENTS_BAD for a NULL pMechanism instead of
 * 3.0's "terminate the operation", and neither 2.40 nor 3.0 callers see
 * mechanism flags their version does not define.
 */
CK_RV gohsm_2_40_C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetMechanismInfo(GOHSM_IFACE_2_40, slotID, type, pInfo);
}

CK_RV gohsm_3_0_C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_GetMechanismInfo(GOHSM_IFACE_3_0, slotID, type, pInfo);
}

CK_RV gohsm_2_40_C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_EncryptInit(GOHSM_IFACE_2_40, hSession, pMechanism, hKey);
}

CK_RV gohsm_2_40_C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DecryptInit(GOHSM_IFACE_2_40, hSession, pMechanism, hKey);
}

CK_RV gohsm_2_40_C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_DigestInit(GOHSM_IFACE_2_40, hSession, pMechanism);
}

CK_RV gohsm_2_40_C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignInit(GOHSM_IFACE_2_40, hSession, pMechanism, hKey);
}

CK_RV gohsm_2_40_C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_SignRecoverInit(GOHSM_IFACE_2_40, hSession, pMechanism, hKey);
}

CK_RV gohsm_2_40_C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyInit(GOHSM_IFACE_2_40, hSession, pMechanism, hKey);
}

CK_RV gohsm_2_40_C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	if (gohsm_forked)
		return GOHSM_CHILD_RV;
	return goC_VerifyRecoverInit(GOHSM_IFACE_2_40, hSession, pMechanism, hKey);
}
