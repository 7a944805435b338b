package mech

import (
	"crypto"
	"fmt"
	"hash"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// SHA-3 (FIPS 202) across the families: the digests, HMAC with SHA-3
// (PKCS#11 3.0 Current Mechanisms §2.x "SHA3-224".."SHA3-512"), ECDSA with
// SHA-3 (§2.3.x, CKM_ECDSA_SHA3_*), and RSA PKCS #1 v1.5 and PSS with SHA-3
// (CKM_SHA3_*_RSA_PKCS(_PSS); PSS parameters name CKM_SHA3_* and
// CKG_MGF1_SHA3_*). OAEP accepts SHA-3 through hashOf/mgfHash, which defer
// to this file; CKM_SHA3_*_KEY_GEN make CKK_SHA3_*_HMAC keys (3.0 renumbered
// those key types, see ck/v3.go). crypto/sha3 (Go 1.24+) is the implementation.

var sha3Set = []struct {
	digest, hmac, general, keyGen, ecdsa, rsa, pss ck.MechanismType
	mgf                                            ck.MGF
	kt                                             ck.KeyType
	h                                              crypto.Hash
}{
	{ck.CKM_SHA3_224, ck.CKM_SHA3_224_HMAC, ck.CKM_SHA3_224_HMAC_GENERAL, ck.CKM_SHA3_224_KEY_GEN, ck.CKM_ECDSA_SHA3_224,
		ck.CKM_SHA3_224_RSA_PKCS, ck.CKM_SHA3_224_RSA_PKCS_PSS, ck.CKG_MGF1_SHA3_224, ck.CKK_SHA3_224_HMAC, crypto.SHA3_224},
	{ck.CKM_SHA3_256, ck.CKM_SHA3_256_HMAC, ck.CKM_SHA3_256_HMAC_GENERAL, ck.CKM_SHA3_256_KEY_GEN, ck.CKM_ECDSA_SHA3_256,
		ck.CKM_SHA3_256_RSA_PKCS, ck.CKM_SHA3_256_RSA_PKCS_PSS, ck.CKG_MGF1_SHA3_256, ck.CKK_SHA3_256_HMAC, crypto.SHA3_256},
	{ck.CKM_SHA3_384, ck.CKM_SHA3_384_HMAC, ck.CKM_SHA3_384_HMAC_GENERAL, ck.CKM_SHA3_384_KEY_GEN, ck.CKM_ECDSA_SHA3_384,
		ck.CKM_SHA3_384_RSA_PKCS, ck.CKM_SHA3_384_RSA_PKCS_PSS, ck.CKG_MGF1_SHA3_384, ck.CKK_SHA3_384_HMAC, crypto.SHA3_384},
	{ck.CKM_SHA3_512, ck.CKM_SHA3_512_HMAC, ck.CKM_SHA3_512_HMAC_GENERAL, ck.CKM_SHA3_512_KEY_GEN, ck.CKM_ECDSA_SHA3_512,
		ck.CKM_SHA3_512_RSA_PKCS, ck.CKM_SHA3_512_RSA_PKCS_PSS, ck.CKG_MGF1_SHA3_512, ck.CKK_SHA3_512_HMAC, crypto.SHA3_512},
}

func sha3HashOf(m ck.MechanismType) (crypto.Hash, bool) {
	for _, e := range sha3Set {
		if e.digest == m {
			return e.h, true
		}
	}
	return 0, false
}

func sha3MGFHash(g ck.MGF) (crypto.Hash, bool) {
	for _, e := range sha3Set {
		if e.mgf == g {
			return e.h, true
		}
	}
	return 0, false
}

func sha3Mechanisms() []Mechanism {
	var out []Mechanism
	sigInfo := func(min, max ck.ULong, f ck.Flags) ck.MechanismInfo {
		return ck.MechanismInfo{MinKeySize: min, MaxKeySize: max, Flags: f}
	}
	const ecFlags = ck.CKF_EC_F_P | ck.CKF_EC_NAMEDCURVE | ck.CKF_EC_UNCOMPRESS
	for _, e := range sha3Set {
		out = append(out, Mechanism{
			Type: e.digest, Info: ck.MechanismInfo{Flags: ck.CKF_DIGEST},
			Digest: func(param any) (hash.Hash, error) {
				if err := noParam(e.digest, param); err != nil {
					return nil, err
				}
				return e.h.New(), nil
			},
		})
		out = append(out, Mechanism{
			Type: e.keyGen, Info: ck.MechanismInfo{MinKeySize: genericMinBytes, MaxKeySize: genericMaxBytes, Flags: ck.CKF_GENERATE},
			GenerateKey: func(t attr.Template) (attr.Template, error) {
				if _, err := templateKeyType(t, e.kt); err != nil {
					return nil, err
				}
				n, err := requiredValueLen(t)
				if err != nil {
					return nil, err
				}
				if n < genericMinBytes || n > genericMaxBytes {
					return nil, fmt.Errorf("%v: %d bytes: %w", e.keyGen, n, ck.CKR_KEY_SIZE_RANGE)
				}
				return randomSecret(e.kt, int(n))
			},
		})
		kts := []ck.KeyType{ck.CKK_GENERIC_SECRET, e.kt}
		hinfo := sigInfo(genericMinBytes, genericMaxBytes, ck.CKF_SIGN|ck.CKF_VERIFY)
		for _, general := range []bool{false, true} {
			m := e.hmac
			if general {
				m = e.general
			}
			out = append(out, Mechanism{
				Type: m, Info: hinfo, KeyTypes: kts,
				Sign: func(k *Key, param any) (Signer, error) {
					o, err := newHMAC(m, e.h, general, k, param)
					if err != nil {
						return nil, err
					}
					return hmacSigner{o}, nil
				},
				Verify: func(k *Key, param any) (Verifier, error) {
					o, err := newHMAC(m, e.h, general, k, param)
					if err != nil {
						return nil, err
					}
					return hmacVerifier{o}, nil
				},
			})
		}
		out = append(out, Mechanism{
			Type: e.ecdsa, Info: sigInfo(224, 521, ck.CKF_SIGN|ck.CKF_VERIFY|ecFlags), KeyTypes: []ck.KeyType{ck.CKK_EC},
			Sign:   func(k *Key, p any) (Signer, error) { return ecdsaSigner(e.ecdsa, e.h, k, p) },
			Verify: func(k *Key, p any) (Verifier, error) { return ecdsaVerifier(e.ecdsa, e.h, k, p) },
		}, Mechanism{
			Type: e.rsa, Info: sigInfo(rsaMinBits, rsaMaxBits, ck.CKF_SIGN|ck.CKF_VERIFY), KeyTypes: []ck.KeyType{ck.CKK_RSA},
			Sign:   func(k *Key, p any) (Signer, error) { return rsaPKCSSigner(e.rsa, e.h, k, p) },
			Verify: func(k *Key, p any) (Verifier, error) { return rsaPKCSVerifier(e.rsa, e.h, k, p) },
		}, Mechanism{
			Type: e.pss, Info: sigInfo(rsaMinBits, rsaMaxBits, ck.CKF_SIGN|ck.CKF_VERIFY), KeyTypes: []ck.KeyType{ck.CKK_RSA},
			Sign:   func(k *Key, p any) (Signer, error) { return rsaPSSSigner(e.pss, e.h, k, p) },
			Verify: func(k *Key, p any) (Verifier, error) { return rsaPSSVerifier(e.pss, e.h, k, p) },
		})
	}
	return out
}
