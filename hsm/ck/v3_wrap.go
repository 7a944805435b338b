package ck

// Key wrap mechanisms PKCS#11 3.0 added (OASIS PKCS#11 3.0 pkcs11t.h). The
// 2.40 value CKM_AES_KEY_WRAP_PAD (0x210A) is RFC 3394 over PKCS#7-padded
// input; RFC 5649 is CKM_AES_KEY_WRAP_KWP (SoftHSMv2 2.6 implements RFC
// 5649 under 0x210A: softhsmv2 issue #726).
const (
	CKM_AES_KEY_WRAP_KWP   MechanismType = 0x0000210B
	CKM_AES_KEY_WRAP_PKCS7 MechanismType = 0x0000210C
)
