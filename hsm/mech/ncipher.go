package mech

import (
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// ncipherMechanisms are nShield's HMAC key generation codes (see
// hsm/ck/vendor_ncipher.go): generic secret generation bound to one
// CKK_SHA*_HMAC key type, so nShield applications run unchanged.
func ncipherMechanisms() []Mechanism {
	var ms []Mechanism
	for _, e := range []struct {
		m  ck.MechanismType
		kt ck.KeyType
	}{
		{ck.CKM_NC_SHA_1_HMAC_KEY_GEN, ck.CKK_SHA_1_HMAC},
		{ck.CKM_NC_SHA224_HMAC_KEY_GEN, ck.CKK_SHA224_HMAC},
		{ck.CKM_NC_SHA256_HMAC_KEY_GEN, ck.CKK_SHA256_HMAC},
		{ck.CKM_NC_SHA384_HMAC_KEY_GEN, ck.CKK_SHA384_HMAC},
		{ck.CKM_NC_SHA512_HMAC_KEY_GEN, ck.CKK_SHA512_HMAC},
	} {
		ms = append(ms, Mechanism{
			Type: e.m,
			Info: ck.MechanismInfo{MinKeySize: genericMinBytes, MaxKeySize: genericMaxBytes, Flags: ck.CKF_GENERATE},
			GenerateKey: func(t attr.Template) (attr.Template, error) {
				kt, err := templateKeyType(t, e.kt)
				if err != nil {
					return nil, err
				}
				n, err := requiredValueLen(t)
				if err != nil {
					return nil, err
				}
				if n < genericMinBytes || n > genericMaxBytes {
					return nil, fmt.Errorf("%v: %d bytes: %w", e.m, n, ck.CKR_KEY_SIZE_RANGE)
				}
				return randomSecret(kt, int(n))
			},
		})
	}
	return ms
}
