package ck

// Mechanism parameter structures (PKCS#11 3.0 mechanisms spec). Each mirrors
// its C struct field for field, so the shim and the wire codec convert them
// mechanically.

// GCMParams is CK_GCM_PARAMS (§2.12.3). IVBits is carried but, as in most
// tokens, only the byte string IV is used.
type GCMParams struct {
	IV      []byte
	IVBits  ULong
	AAD     []byte
	TagBits ULong
}

// CCMParams is CK_CCM_PARAMS.
type CCMParams struct {
	DataLen ULong
	Nonce   []byte
	AAD     []byte
	MACLen  ULong
}

// CTRParams is CK_AES_CTR_PARAMS (also used for SM4-CTR by vendors).
type CTRParams struct {
	CounterBits ULong
	CB          [16]byte
}

// RSAOAEPParams is CK_RSA_PKCS_OAEP_PARAMS. Source is CKZ_DATA_SPECIFIED or 0.
type RSAOAEPParams struct {
	HashAlg    MechanismType
	MGF        MGF
	Source     ULong
	SourceData []byte
}

// RSAPSSParams is CK_RSA_PKCS_PSS_PARAMS.
type RSAPSSParams struct {
	HashAlg MechanismType
	MGF     MGF
	SaltLen ULong
}

// ECDH1DeriveParams is CK_ECDH1_DERIVE_PARAMS.
type ECDH1DeriveParams struct {
	KDF        EC_KDF
	SharedData []byte
	PublicData []byte
}

// EDDSAParams is CK_EDDSA_PARAMS.
type EDDSAParams struct {
	PHFlag      bool
	ContextData []byte
}

// SignAdditionalContext is CK_SIGN_ADDITIONAL_CONTEXT (3.2): the optional
// parameter of CKM_ML_DSA, CKM_SLH_DSA and their CKM_HASH_*_<hash> forms.
// A nil parameter means CKH_HEDGE_PREFERRED with an empty context.
type SignAdditionalContext struct {
	Hedge   HedgeType
	Context []byte
}

// HashSignAdditionalContext is CK_HASH_SIGN_ADDITIONAL_CONTEXT (3.2), the
// parameter of CKM_HASH_ML_DSA and CKM_HASH_SLH_DSA: Hash names the digest
// mechanism the caller already applied.
type HashSignAdditionalContext struct {
	Hedge   HedgeType
	Context []byte
	Hash    MechanismType
}

// GCMMessageParams is CK_GCM_MESSAGE_PARAMS (3.0 current mechanisms
// §2.12.5): the per-message parameter of CKM_AES_GCM in the message-based
// functions. It is in and out: when IVGenerator asks for it, encryption
// fills the non-fixed part of IV (leaving IVFixedBits leading bits as the
// caller gave them), and encryption always fills Tag (TagBits/8 bytes);
// decryption reads both. The engine updates the struct it is given, and
// the boundary that decoded it copies IV and Tag back to its caller.
type GCMMessageParams struct {
	IV          []byte
	IVFixedBits ULong
	IVGenerator GeneratorFunction
	Tag         []byte
	TagBits     ULong
}

// ChaCha20Poly1305Params is CK_SALSA20_CHACHA20_POLY1305_PARAMS, the
// parameter of CKM_CHACHA20_POLY1305 in C_Encrypt/C_Decrypt.
type ChaCha20Poly1305Params struct {
	Nonce []byte
	AAD   []byte
}

// ChaCha20Poly1305MsgParams is CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS,
// the per-message parameter of CKM_CHACHA20_POLY1305 in the message-based
// functions. The C struct has no tag length: the tag is always 16 bytes.
// Encryption fills Tag; decryption reads it.
type ChaCha20Poly1305MsgParams struct {
	Nonce []byte
	Tag   []byte
}

// MACGeneralParams is CK_MAC_GENERAL_PARAMS: the requested MAC length.
type MACGeneralParams ULong

// PBKD2Params is CK_PKCS5_PBKD2_PARAMS2 (PKCS#11 3.0 mechanisms §2.36.4):
// SaltSource is CKZ_SALT_SPECIFIED and PRF one of the CKP_PKCS5_PBKD2_HMAC_
// values. The password is a secret of the caller's; the engine wipes its
// copy after use.
type PBKD2Params struct {
	SaltSource ULong
	Salt       []byte
	Iterations ULong
	PRF        ULong
	PRFData    []byte
	Password   []byte
}

// HKDFParams is CK_HKDF_PARAMS (PKCS#11 3.0 mechanisms §2.43.2). SaltType
// is CKF_HKDF_SALT_NULL, _DATA or _KEY; SaltKey is the handle of a key whose
// value is the salt (CKF_HKDF_SALT_KEY).
type HKDFParams struct {
	Extract, Expand bool
	PRF             MechanismType
	SaltType        Flags
	Salt            []byte
	SaltKey         ObjectHandle
	Info            []byte
}

// ParamKind names the C structure a mechanism's parameter has, so both the
// shim and the wire codec decode it the same way.
type ParamKind int

const (
	ParamBytes ParamKind = iota // opaque byte string (or none)
	ParamGCM
	ParamCCM
	ParamCTR
	ParamRSAOAEP
	ParamRSAPSS
	ParamECDH1
	ParamEDDSA
	ParamULong
	ParamSignContext      // CK_SIGN_ADDITIONAL_CONTEXT
	ParamHashSignContext  // CK_HASH_SIGN_ADDITIONAL_CONTEXT
	ParamChaCha20Poly1305 // CK_SALSA20_CHACHA20_POLY1305_PARAMS
	ParamHKDF             // CK_HKDF_PARAMS
	ParamPBKD2            // CK_PKCS5_PBKD2_PARAMS2 (or the 2.40 CK_PKCS5_PBKD2_PARAMS)
)

// ParamKindOf reports the parameter structure of m. Mechanisms not listed
// take an opaque byte string (IV) or nothing; vendor SM mechanisms follow
// that rule except SM4-GCM/CTR, which the vendor table maps explicitly.
func ParamKindOf(m MechanismType) ParamKind {
	switch m {
	case CKM_AES_GCM:
		return ParamGCM
	case CKM_AES_CCM:
		return ParamCCM
	case CKM_CHACHA20_POLY1305:
		return ParamChaCha20Poly1305
	case CKM_AES_CTR:
		return ParamCTR
	case CKM_RSA_PKCS_OAEP:
		return ParamRSAOAEP
	case CKM_RSA_PKCS_PSS, CKM_SHA1_RSA_PKCS_PSS, CKM_SHA224_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS,
		CKM_SHA384_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS_PSS, CKM_SHA3_224_RSA_PKCS_PSS,
		CKM_SHA3_256_RSA_PKCS_PSS, CKM_SHA3_384_RSA_PKCS_PSS, CKM_SHA3_512_RSA_PKCS_PSS:
		return ParamRSAPSS
	case CKM_ECDH1_DERIVE, CKM_ECDH1_COFACTOR_DERIVE:
		return ParamECDH1
	case CKM_EDDSA:
		return ParamEDDSA
	case CKM_SHA_1_HMAC_GENERAL, CKM_SHA224_HMAC_GENERAL, CKM_SHA256_HMAC_GENERAL,
		CKM_SHA384_HMAC_GENERAL, CKM_SHA512_HMAC_GENERAL, CKM_AES_CMAC_GENERAL, CKM_AES_MAC_GENERAL,
		CKM_SHA3_224_HMAC_GENERAL, CKM_SHA3_256_HMAC_GENERAL, CKM_SHA3_384_HMAC_GENERAL, CKM_SHA3_512_HMAC_GENERAL:
		return ParamULong
	case CKM_ML_DSA, CKM_HASH_ML_DSA_SHA224, CKM_HASH_ML_DSA_SHA256, CKM_HASH_ML_DSA_SHA384, CKM_HASH_ML_DSA_SHA512,
		CKM_HASH_ML_DSA_SHA3_224, CKM_HASH_ML_DSA_SHA3_256, CKM_HASH_ML_DSA_SHA3_384, CKM_HASH_ML_DSA_SHA3_512,
		CKM_HASH_ML_DSA_SHAKE128, CKM_HASH_ML_DSA_SHAKE256,
		CKM_SLH_DSA, CKM_HASH_SLH_DSA_SHA224, CKM_HASH_SLH_DSA_SHA256, CKM_HASH_SLH_DSA_SHA384, CKM_HASH_SLH_DSA_SHA512,
		CKM_HASH_SLH_DSA_SHA3_224, CKM_HASH_SLH_DSA_SHA3_256, CKM_HASH_SLH_DSA_SHA3_384, CKM_HASH_SLH_DSA_SHA3_512,
		CKM_HASH_SLH_DSA_SHAKE128, CKM_HASH_SLH_DSA_SHAKE256:
		return ParamSignContext
	case CKM_HASH_ML_DSA, CKM_HASH_SLH_DSA:
		return ParamHashSignContext
	case CKM_HKDF_DERIVE, CKM_HKDF_DATA:
		return ParamHKDF
	case CKM_PKCS5_PBKD2:
		return ParamPBKD2
	}
	if k, ok := vendorParamKind(m); ok {
		return k
	}
	return ParamBytes
}
