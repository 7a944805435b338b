package bench

// PKCS#11 3.x values miekg/pkcs11 v1.1.2 lacks (it follows the 2.40
// header). They are copied from the 3.0 and 3.2 headers (pkcs11t.h) rather
// than imported from hsm/ck: the harness must not depend on the engine it
// measures.
const (
	ckkECEdwards = 0x00000040 // CKK_EC_EDWARDS (3.0)
	ckkMLKEM     = 0x00000049 // CKK_ML_KEM (3.2)
	ckkMLDSA     = 0x0000004A // CKK_ML_DSA (3.2)

	ckmECEdwardsKeyPairGen = 0x00001055 // CKM_EC_EDWARDS_KEY_PAIR_GEN (3.0)
	ckmEdDSA               = 0x00001057 // CKM_EDDSA (3.0)
	ckmMLKEMKeyPairGen     = 0x0000000F // CKM_ML_KEM_KEY_PAIR_GEN (3.2)
	ckmMLKEM               = 0x00000017 // CKM_ML_KEM (3.2)
	ckmMLDSAKeyPairGen     = 0x0000001C // CKM_ML_DSA_KEY_PAIR_GEN (3.2)
	ckmMLDSA               = 0x0000001D // CKM_ML_DSA (3.2)

	ckaParameterSet = 0x0000061D // CKA_PARAMETER_SET (3.2)
	ckaEncapsulate  = 0x00000633 // CKA_ENCAPSULATE (3.2)
	ckaDecapsulate  = 0x00000634 // CKA_DECAPSULATE (3.2)

	ckpMLKEM768 = 0x00000002 // CKP_ML_KEM_768 (3.2)
	ckpMLDSA65  = 0x00000002 // CKP_ML_DSA_65 (3.2)
)
