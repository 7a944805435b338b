package mech

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// CKM_PKCS5_PBKD2 (PKCS#11 3.0 mechanisms §2.36.4; PKCS #5 v2.1 PBKDF2)
// generates a secret key from a password. The key type is the template's
// (generic secret by default) and its length CKA_VALUE_LEN, or the fixed
// length of the type. The derivation is PBKDF2 (pbkdf2bytes.go), which keeps
// the password in the caller's byte slice.

// pbkdf2MaxIterations bounds the work one call may ask for: a caller with
// any session could otherwise name 2^40 iterations and hold a CPU for
// days. Ten million is far above what password-based key derivation uses
// (OWASP recommends 600,000 for PBKDF2-SHA256) and costs a few seconds.
const pbkdf2MaxIterations = 10_000_000

func pbkdf2Mechanisms() []Mechanism {
	return []Mechanism{{
		Type: ck.CKM_PKCS5_PBKD2,
		Info: ck.MechanismInfo{MinKeySize: 1, MaxKeySize: genericMaxBytes, Flags: ck.CKF_GENERATE},
		GenerateKeyParam: func(t attr.Template, param any) (attr.Template, error) {
			p, ok := paramAs[ck.PBKD2Params](param)
			if !ok {
				return nil, fmt.Errorf("pbkdf2: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
			}
			// The password is the caller's secret; the shim's copy dies here.
			defer zero(p.Password)
			if p.SaltSource != ck.CKZ_SALT_SPECIFIED || p.Iterations == 0 || p.Iterations > pbkdf2MaxIterations || len(p.PRFData) != 0 {
				return nil, fmt.Errorf("pbkdf2: salt source %d, %d iterations: %w", p.SaltSource, p.Iterations, ck.CKR_MECHANISM_PARAM_INVALID)
			}
			h, ok := pbkdf2PRF(p.PRF)
			if !ok {
				return nil, fmt.Errorf("pbkdf2: PRF %d: %w", p.PRF, ck.CKR_MECHANISM_PARAM_INVALID)
			}
			kt, hasKT, err := t.ULong(ck.CKA_KEY_TYPE)
			if err != nil {
				return nil, err
			}
			if !hasKT {
				kt = ck.ULong(ck.CKK_GENERIC_SECRET)
			}
			n, err := derivedLen(t)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, fmt.Errorf("pbkdf2: CKA_VALUE_LEN: %w", ck.CKR_TEMPLATE_INCOMPLETE)
			}
			if n > 1<<16 {
				return nil, fmt.Errorf("pbkdf2: %d bytes: %w", n, ck.CKR_KEY_SIZE_RANGE)
			}
			// The password is the caller's secret: no string copy of it.
			v := PBKDF2(h, p.Password, p.Salt, int(p.Iterations), n)
			return secretAttrs(ck.KeyType(kt), v), nil
		},
	}}
}

func pbkdf2PRF(prf ck.ULong) (func() hash.Hash, bool) {
	switch prf {
	case ck.CKP_PKCS5_PBKD2_HMAC_SHA1:
		return sha1.New, true
	case ck.CKP_PKCS5_PBKD2_HMAC_SHA224:
		return sha256.New224, true
	case ck.CKP_PKCS5_PBKD2_HMAC_SHA256:
		return sha256.New, true
	case ck.CKP_PKCS5_PBKD2_HMAC_SHA384:
		return sha512.New384, true
	case ck.CKP_PKCS5_PBKD2_HMAC_SHA512:
		return sha512.New, true
	case ck.CKP_PKCS5_PBKD2_HMAC_SHA512_224:
		return sha512.New512_224, true
	case ck.CKP_PKCS5_PBKD2_HMAC_SHA512_256:
		return sha512.New512_256, true
	}
	return nil, false
}
