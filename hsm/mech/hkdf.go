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
// key (CKF_HKDF_SALT_KEY) is resolved to its value by the engine before the
// mechanism runs. CKM_HKDF_DATA, which makes data objects, is not offered.

func hkdfMechanisms() []Mechanism {
	kts := []ck.KeyType{ck.CKK_HKDF, ck.CKK_GENERIC_SECRET}
	return []Mechanism{
		{
			Type: ck.CKM_HKDF_DERIVE, KeyTypes: kts,
			Info:   ck.MechanismInfo{MinKeySize: 1, MaxKeySize: genericMaxBytes, Flags: ck.CKF_DERIVE},
			Derive: hkdfDerive,
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

func hkdfDerive(base *Key, param any, t attr.Template) (attr.Template, error) {
	p, ok := paramAs[ck.HKDFParams](param)
	if !ok || (!p.Extract && !p.Expand) {
		return nil, fmt.Errorf("hkdf: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	h, ok := prfHash(p.PRF)
	if !ok {
		return nil, fmt.Errorf("hkdf: PRF %v: %w", p.PRF, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	ikm, err := secretBytes(base)
	if err != nil {
		return nil, err
	}
	n, err := derivedLen(t)
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
			return attr.Template{{Type: ck.CKA_VALUE, Value: append([]byte{}, prk...)}}, nil
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
	return attr.Template{{Type: ck.CKA_VALUE, Value: okm}}, nil
}
