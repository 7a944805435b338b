package mech

import (
	"crypto/hkdf"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"fmt"
	"hash"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// HKDF (RFC 5869) as PKCS#11 3.0 mechanisms §2.43 defines it:
// CKM_HKDF_DERIVE makes a secret key from a CKK_HKDF or generic secret base
// key with CK_HKDF_PARAMS (extract, expand, or both; the PRF names a hash
// mechanism), and CKM_HKDF_KEY_GEN makes CKK_HKDF keys. A salt given as a
// key (CKF_HKDF_SALT_KEY) is resolved to its value by the engine's gate
// before the mechanism runs (hkdfSaltKey). CKM_HKDF_DATA (§2.43.4) is the same computation with a
// CKO_DATA object as its result: its CKA_VALUE is the HKDF output.

func hkdfMechanisms() []Mechanism {
	kts := []ck.KeyType{ck.CKK_HKDF, ck.CKK_GENERIC_SECRET}
	return []Mechanism{
		{
			Type: ck.CKM_HKDF_DERIVE, KeyTypes: kts,
			Info:   ck.MechanismInfo{MinKeySize: 1, MaxKeySize: genericMaxBytes, Flags: ck.CKF_DERIVE},
			Derive: hkdfDerive, ParamKeys: hkdfSaltKey,
		},
		{
			Type: ck.CKM_HKDF_DATA, KeyTypes: kts,
			Info:   ck.MechanismInfo{MinKeySize: 1, MaxKeySize: genericMaxBytes, Flags: ck.CKF_DERIVE},
			Derive: hkdfDataDerive, DerivesData: true, ParamKeys: hkdfSaltKey,
		},
		{
			Type: ck.CKM_HKDF_KEY_GEN,
			Info: ck.MechanismInfo{MinKeySize: 1, MaxKeySize: genericMaxBytes, Flags: ck.CKF_GENERATE},
			GenerateKey: func(t attr.Template) (attr.Template, error) {
				kt, err := templateKeyType(t, ck.CKK_HKDF)
				if err != nil {
					return nil, err
				}
				n, err := requiredValueLen(t)
				if err != nil {
					return nil, err
				}
				if n < 1 || n > genericMaxBytes {
					return nil, fmt.Errorf("hkdf key gen: %d bytes: %w", n, ck.CKR_KEY_SIZE_RANGE)
				}
				return randomSecret(kt, int(n))
			},
		},
	}
}

func hkdfKeyKinds() []KeyKind { return []KeyKind{secretKeyKind(ck.CKK_HKDF)} }

// prfHash maps the PRF of CK_HKDF_PARAMS (a digest mechanism) to a hash.
func prfHash(m ck.MechanismType) (func() hash.Hash, bool) {
	switch m {
	case ck.CKM_SHA_1:
		return sha1.New, true
	case ck.CKM_SHA224:
		return sha256.New224, true
	case ck.CKM_SHA256:
		return sha256.New, true
	case ck.CKM_SHA384:
		return sha512.New384, true
	case ck.CKM_SHA512:
		return sha512.New, true
	case ck.CKM_SHA3_224:
		return func() hash.Hash { return sha3.New224() }, true
	case ck.CKM_SHA3_256:
		return func() hash.Hash { return sha3.New256() }, true
	case ck.CKM_SHA3_384:
		return func() hash.Hash { return sha3.New384() }, true
	case ck.CKM_SHA3_512:
		return func() hash.Hash { return sha3.New512() }, true
	}
	return nil, false
}

// hkdfSaltKey is the salt given as a key (CKF_HKDF_SALT_KEY). The salt is
// HMAC's key in HKDF-Extract, so deriving with it is keying HMAC with that
// key over data the caller chooses: it needs CKA_DERIVE and passes the
// gate like the base key (a key that may neither sign nor derive must not
// become an HMAC oracle through CKM_HKDF_DATA).
var hkdfSaltKey = &ParamKeys{
	Handles: func(param any) []ck.ObjectHandle {
		if p, ok := paramAs[ck.HKDFParams](param); ok && p.SaltType == ck.CKF_HKDF_SALT_KEY {
			return []ck.ObjectHandle{p.SaltKey}
		}
		return nil
	},
	Usage:    ck.CKA_DERIVE,
	KeyTypes: []ck.KeyType{ck.CKK_HKDF, ck.CKK_GENERIC_SECRET},
	Bind: func(param any, keys []*Key) (any, error) {
		p, ok := paramAs[ck.HKDFParams](param)
		if !ok || len(keys) != 1 {
			return nil, fmt.Errorf("hkdf: salt key: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
		v, err := secretBytes(keys[0])
		if err != nil {
			return nil, err
		}
		p.SaltType, p.Salt = ck.CKF_HKDF_SALT_DATA, v
		return &p, nil
	},
}

// hkdfParamsOf checks CK_HKDF_PARAMS (§2.43.2) and returns them with the
// PRF's hash.
func hkdfParamsOf(param any) (ck.HKDFParams, func() hash.Hash, error) {
	p, ok := paramAs[ck.HKDFParams](param)
	if !ok || (!p.Extract && !p.Expand) {
		return p, nil, fmt.Errorf("hkdf: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	h, ok := prfHash(p.PRF)
	if !ok {
		return p, nil, fmt.Errorf("hkdf: PRF %v: %w", p.PRF, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return p, h, nil
}

// hkdfDerive is CKM_HKDF_DERIVE (§2.43.3). CKA_VALUE_LEN is optional: a
// key type may imply the length, and expand defaults to HashLen.
func hkdfDerive(base *Key, param any, t attr.Template) (attr.Template, error) {
	p, h, err := hkdfParamsOf(param)
	if err != nil {
		return nil, err
	}
	n, err := derivedLen(t)
	if err != nil {
		return nil, err
	}
	v, err := hkdfRun(base, p, h, n)
	if err != nil {
		return nil, err
	}
	return attr.Template{{Type: ck.CKA_VALUE, Value: v}}, nil
}

// hkdfDataDerive is CKM_HKDF_DATA (§2.43.4): HKDF derive whose output is the
// CKA_VALUE of a CKO_DATA object. §2.43.3 says CKA_VALUE_LEN "should be
// set" when bExpand is true; a data object has no key type to imply a
// length, so here it must be (CKR_TEMPLATE_INCOMPLETE). Extract alone makes
// HashLen bytes and the length may be omitted. The token does not restrict
// pInfo (§2.43.4 lets a profile do so; none is defined).
func hkdfDataDerive(base *Key, param any, t attr.Template) (attr.Template, error) {
	p, h, err := hkdfParamsOf(param)
	if err != nil {
		return nil, err
	}
	n, ok, err := t.ULong(ck.CKA_VALUE_LEN)
	switch {
	case err != nil:
		return nil, err
	case !ok && p.Expand:
		return nil, fmt.Errorf("hkdf data: expand needs CKA_VALUE_LEN: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	case ok && n == 0:
		return nil, fmt.Errorf("hkdf data: CKA_VALUE_LEN 0: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	case ok && n > 255*ck.ULong(h().Size()):
		return nil, fmt.Errorf("hkdf data: %d bytes exceeds 255 blocks: %w", n, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	v, err := hkdfRun(base, p, h, int(n))
	if err != nil {
		return nil, err
	}
	return attr.Template{{Type: ck.CKA_VALUE, Value: v}}, nil
}

// hkdfRun computes RFC 5869 HKDF over the base key's value. n is the
// output length (0: HashLen); extract alone yields the PRK, so n, if given,
// must be HashLen.
func hkdfRun(base *Key, p ck.HKDFParams, h func() hash.Hash, n int) ([]byte, error) {
	ikm, err := secretBytes(base)
	if err != nil {
		return nil, err
	}
	size := h().Size()
	var salt []byte
	switch p.SaltType {
	case ck.CKF_HKDF_SALT_NULL:
		salt = make([]byte, size) // RFC 5869 §2.2: HashLen zeros
	case ck.CKF_HKDF_SALT_DATA:
		if len(p.Salt) == 0 {
			return nil, fmt.Errorf("hkdf: empty salt: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
		salt = p.Salt
	default:
		if p.Extract {
			return nil, fmt.Errorf("hkdf: salt type %#x: %w", p.SaltType, ck.CKR_MECHANISM_PARAM_INVALID)
		}
	}
	prk := ikm
	if p.Extract {
		if prk, err = hkdf.Extract(h, ikm, salt); err != nil {
			return nil, fmt.Errorf("hkdf extract: %v: %w", err, ck.CKR_FUNCTION_FAILED)
		}
		defer zero(prk)
		if !p.Expand {
			if n != 0 && n != size {
				return nil, fmt.Errorf("hkdf: extract makes %d bytes, not %d: %w", size, n, ck.CKR_TEMPLATE_INCONSISTENT)
			}
			return append([]byte{}, prk...), nil
		}
	}
	if n == 0 {
		n = size
	}
	if n > 255*size {
		return nil, fmt.Errorf("hkdf: %d bytes exceeds 255 blocks: %w", n, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	okm, err := hkdf.Expand(h, prk, string(p.Info), n)
	if err != nil {
		return nil, fmt.Errorf("hkdf expand: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	return okm, nil
}
