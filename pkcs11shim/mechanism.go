package main

/*
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/gohsm/gohsm/hsm/ck"
)

// inMechanism decodes a CK_MECHANISM and its parameter into Go memory, by
// the parameter kind ck.ParamKindOf names. A NULL pParameter with a length,
// a length that is not the structure's size, or a NULL pointer inside the
// structure with a length is CKR_MECHANISM_PARAM_INVALID. A NULL parameter
// of length 0 gives Param nil and the mechanism decides (EdDSA's parameter
// is optional; GCM's is not).
//
// Structures are passed as pointers (*ck.GCMParams, ...); a byte-string
// parameter as []byte; CK_MAC_GENERAL_PARAMS as ck.MACGeneralParams.
func inMechanism(p C.CK_MECHANISM_PTR) (ck.Mechanism, ck.RV) {
	if p == nil {
		return ck.Mechanism{}, ck.CKR_ARGUMENTS_BAD
	}
	m := ck.Mechanism{Type: ck.MechanismType(p.mechanism)}
	pp, n := p.pParameter, p.ulParameterLen
	if pp == nil {
		if n != 0 {
			return m, ck.CKR_MECHANISM_PARAM_INVALID
		}
		return m, ck.CKR_OK
	}
	bad := ck.CKR_MECHANISM_PARAM_INVALID
	var err ck.RV
	switch ck.ParamKindOf(m.Type) {
	case ck.ParamGCM:
		switch n {
		case C.CK_ULONG(unsafe.Sizeof(C.CK_GCM_PARAMS{})):
			g := (*C.CK_GCM_PARAMS)(pp)
			v := &ck.GCMParams{IVBits: ck.ULong(g.ulIvBits), TagBits: ck.ULong(g.ulTagBits)}
			if v.IV, err = paramBytes(unsafe.Pointer(g.pIv), g.ulIvLen); err != ck.CKR_OK {
				return m, err
			}
			if v.AAD, err = paramBytes(unsafe.Pointer(g.pAAD), g.ulAADLen); err != ck.CKR_OK {
				return m, err
			}
			m.Param = v
		case C.CK_ULONG(unsafe.Sizeof(C.gohsm_gcm_params_240{})):
			g := (*C.gohsm_gcm_params_240)(pp)
			v := &ck.GCMParams{IVBits: ck.ULong(g.ulIvLen) * 8, TagBits: ck.ULong(g.ulTagBits)}
			if v.IV, err = paramBytes(unsafe.Pointer(g.pIv), g.ulIvLen); err != ck.CKR_OK {
				return m, err
			}
			if v.AAD, err = paramBytes(unsafe.Pointer(g.pAAD), g.ulAADLen); err != ck.CKR_OK {
				return m, err
			}
			m.Param = v
		default:
			return m, bad
		}
	case ck.ParamCCM:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_CCM_PARAMS{})) {
			return m, bad
		}
		c := (*C.CK_CCM_PARAMS)(pp)
		v := &ck.CCMParams{DataLen: ck.ULong(c.ulDataLen), MACLen: ck.ULong(c.ulMACLen)}
		if v.Nonce, err = paramBytes(unsafe.Pointer(c.pNonce), c.ulNonceLen); err != ck.CKR_OK {
			return m, err
		}
		if v.AAD, err = paramBytes(unsafe.Pointer(c.pAAD), c.ulAADLen); err != ck.CKR_OK {
			return m, err
		}
		m.Param = v
	case ck.ParamCTR:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_AES_CTR_PARAMS{})) {
			return m, bad
		}
		c := (*C.CK_AES_CTR_PARAMS)(pp)
		v := &ck.CTRParams{CounterBits: ck.ULong(c.ulCounterBits)}
		copy(v.CB[:], field(c.cb[:]))
		m.Param = v
	case ck.ParamRSAOAEP:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_RSA_PKCS_OAEP_PARAMS{})) {
			return m, bad
		}
		o := (*C.CK_RSA_PKCS_OAEP_PARAMS)(pp)
		v := &ck.RSAOAEPParams{HashAlg: ck.MechanismType(o.hashAlg), MGF: ck.MGF(o.mgf), Source: ck.ULong(o.source)}
		if v.SourceData, err = paramBytes(unsafe.Pointer(o.pSourceData), o.ulSourceDataLen); err != ck.CKR_OK {
			return m, err
		}
		m.Param = v
	case ck.ParamRSAPSS:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_RSA_PKCS_PSS_PARAMS{})) {
			return m, bad
		}
		s := (*C.CK_RSA_PKCS_PSS_PARAMS)(pp)
		m.Param = &ck.RSAPSSParams{HashAlg: ck.MechanismType(s.hashAlg), MGF: ck.MGF(s.mgf), SaltLen: ck.ULong(s.sLen)}
	case ck.ParamECDH1:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_ECDH1_DERIVE_PARAMS{})) {
			return m, bad
		}
		e := (*C.CK_ECDH1_DERIVE_PARAMS)(pp)
		v := &ck.ECDH1DeriveParams{KDF: ck.EC_KDF(e.kdf)}
		if v.SharedData, err = paramBytes(unsafe.Pointer(e.pSharedData), e.ulSharedDataLen); err != ck.CKR_OK {
			return m, err
		}
		if v.PublicData, err = paramBytes(unsafe.Pointer(e.pPublicData), e.ulPublicDataLen); err != ck.CKR_OK {
			return m, err
		}
		m.Param = v
	case ck.ParamEDDSA:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_EDDSA_PARAMS{})) {
			return m, bad
		}
		e := (*C.CK_EDDSA_PARAMS)(pp)
		v := &ck.EDDSAParams{PHFlag: e.phFlag != 0}
		if v.ContextData, err = paramBytes(unsafe.Pointer(e.pContextData), e.ulContextDataLen); err != ck.CKR_OK {
			return m, err
		}
		m.Param = v
	case ck.ParamChaCha20Poly1305:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_SALSA20_CHACHA20_POLY1305_PARAMS{})) {
			return m, bad
		}
		c := (*C.CK_SALSA20_CHACHA20_POLY1305_PARAMS)(pp)
		v := &ck.ChaCha20Poly1305Params{}
		if v.Nonce, err = paramBytes(unsafe.Pointer(c.pNonce), c.ulNonceLen); err != ck.CKR_OK {
			return m, err
		}
		if v.AAD, err = paramBytes(unsafe.Pointer(c.pAAD), c.ulAADLen); err != ck.CKR_OK {
			return m, err
		}
		m.Param = v
	case ck.ParamHKDF:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_HKDF_PARAMS{})) {
			return m, bad
		}
		k := (*C.CK_HKDF_PARAMS)(pp)
		v := &ck.HKDFParams{Extract: k.bExtract != 0, Expand: k.bExpand != 0, PRF: ck.MechanismType(k.prfHashMechanism),
			SaltType: ck.Flags(k.ulSaltType), SaltKey: ck.ObjectHandle(k.hSaltKey)}
		if v.Salt, err = paramBytes(unsafe.Pointer(k.pSalt), k.ulSaltLen); err != ck.CKR_OK {
			return m, err
		}
		if v.Info, err = paramBytes(unsafe.Pointer(k.pInfo), k.ulInfoLen); err != ck.CKR_OK {
			return m, err
		}
		m.Param = v
	case ck.ParamPBKD2:
		// The 3.0 PARAMS2 layout (the password length by value). The 2.40
		// CK_PKCS5_PBKD2_PARAMS has the same size with a pointer there, so
		// the two cannot be told apart; 3.0 callers use PARAMS2.
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_PKCS5_PBKD2_PARAMS2{})) {
			return m, bad
		}
		k := (*C.CK_PKCS5_PBKD2_PARAMS2)(pp)
		v := &ck.PBKD2Params{SaltSource: ck.ULong(k.saltSource), Iterations: ck.ULong(k.iterations), PRF: ck.ULong(k.prf)}
		if v.Salt, err = paramBytes(unsafe.Pointer(k.pSaltSourceData), k.ulSaltSourceDataLen); err != ck.CKR_OK {
			return m, err
		}
		if v.PRFData, err = paramBytes(unsafe.Pointer(k.pPrfData), k.ulPrfDataLen); err != ck.CKR_OK {
			return m, err
		}
		if v.Password, err = paramBytes(unsafe.Pointer(k.pPassword), k.ulPasswordLen); err != ck.CKR_OK {
			return m, err
		}
		m.Param = v
	case ck.ParamSignContext:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_SIGN_ADDITIONAL_CONTEXT{})) {
			return m, bad
		}
		c := (*C.CK_SIGN_ADDITIONAL_CONTEXT)(pp)
		v := &ck.SignAdditionalContext{Hedge: ck.HedgeType(c.hedgeVariant)}
		if v.Context, err = paramBytes(unsafe.Pointer(c.pContext), c.ulContextLen); err != ck.CKR_OK {
			return m, err
		}
		m.Param = v
	case ck.ParamHashSignContext:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_HASH_SIGN_ADDITIONAL_CONTEXT{})) {
			return m, bad
		}
		c := (*C.CK_HASH_SIGN_ADDITIONAL_CONTEXT)(pp)
		v := &ck.HashSignAdditionalContext{Hedge: ck.HedgeType(c.hedgeVariant), Hash: ck.MechanismType(c.hash)}
		if v.Context, err = paramBytes(unsafe.Pointer(c.pContext), c.ulContextLen); err != ck.CKR_OK {
			return m, err
		}
		m.Param = v
	case ck.ParamULong:
		if n != C.CK_ULONG(unsafe.Sizeof(C.CK_MAC_GENERAL_PARAMS(0))) {
			return m, bad
		}
		m.Param = ck.MACGeneralParams(*(*C.CK_MAC_GENERAL_PARAMS)(pp))
	default: // ck.ParamBytes: an IV or other opaque string
		b, rv := inBytes(unsafe.Pointer(pp), n)
		if rv != ck.CKR_OK {
			return m, bad
		}
		m.Param = b
	}
	return m, ck.CKR_OK
}

// paramBytes copies a buffer a mechanism parameter points to; the errors
// are the parameter's, not the call's.
func paramBytes(p unsafe.Pointer, n C.CK_ULONG) ([]byte, ck.RV) {
	b, rv := inBytes(p, n)
	if rv != ck.CKR_OK {
		return nil, ck.CKR_MECHANISM_PARAM_INVALID
	}
	return b, ck.CKR_OK
}
