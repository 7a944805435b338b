package ck

// nCipher (Entrust nShield) has no CKM_*_KEY_GEN for the CKK_SHA*_HMAC key
// types in PKCS#11, so it defines its own. Applications written for nShield
// (crypto11 among them: its hmac.go lists these values) generate HMAC keys
// with them; gohsm accepts them as aliases of CKM_GENERIC_SECRET_KEY_GEN
// bound to the matching key type.
const (
	CKM_NCIPHER                MechanismType = CKM_VENDOR_DEFINED | 0x5e436972
	CKM_NC_MD5_HMAC_KEY_GEN    MechanismType = CKM_NCIPHER + 0x6
	CKM_NC_SHA_1_HMAC_KEY_GEN  MechanismType = CKM_NCIPHER + 0x3
	CKM_NC_SHA224_HMAC_KEY_GEN MechanismType = CKM_NCIPHER + 0x24
	CKM_NC_SHA256_HMAC_KEY_GEN MechanismType = CKM_NCIPHER + 0x25
	CKM_NC_SHA384_HMAC_KEY_GEN MechanismType = CKM_NCIPHER + 0x26
	CKM_NC_SHA512_HMAC_KEY_GEN MechanismType = CKM_NCIPHER + 0x27
)
