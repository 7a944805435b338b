package mech

import (
	"crypto"
	"crypto/hmac"
	"crypto/subtle"
	"fmt"
	"hash"

	"github.com/gohsm/gohsm/hsm/ck"
)

// HMAC (the SHA-n sections of the PKCS#11 2.40 Current Mechanisms spec): CKM_SHA*_HMAC gives the
// full output, the _GENERAL variants a caller-chosen prefix of it
// (CK_MAC_GENERAL_PARAMS, 1..output bytes).

var hmacKeyTypes = []ck.KeyType{ck.CKK_SHA_1_HMAC, ck.CKK_SHA224_HMAC, ck.CKK_SHA256_HMAC, ck.CKK_SHA384_HMAC, ck.CKK_SHA512_HMAC,
	ck.CKK_SHA3_224_HMAC, ck.CKK_SHA3_256_HMAC, ck.CKK_SHA3_384_HMAC, ck.CKK_SHA3_512_HMAC}

var hmacs = []struct {
	mac, general ck.MechanismType
	h            crypto.Hash
	kt           ck.KeyType
}{
	{ck.CKM_SHA_1_HMAC, ck.CKM_SHA_1_HMAC_GENERAL, crypto.SHA1, ck.CKK_SHA_1_HMAC},
	{ck.CKM_SHA224_HMAC, ck.CKM_SHA224_HMAC_GENERAL, crypto.SHA224, ck.CKK_SHA224_HMAC},
	{ck.CKM_SHA256_HMAC, ck.CKM_SHA256_HMAC_GENERAL, crypto.SHA256, ck.CKK_SHA256_HMAC},
	{ck.CKM_SHA384_HMAC, ck.CKM_SHA384_HMAC_GENERAL, crypto.SHA384, ck.CKK_SHA384_HMAC},
	{ck.CKM_SHA512_HMAC, ck.CKM_SHA512_HMAC_GENERAL, crypto.SHA512, ck.CKK_SHA512_HMAC},
}

func hmacMechanisms() []Mechanism {
	var out []Mechanism
	for _, e := range hmacs {
		info := ck.MechanismInfo{MinKeySize: genericMinBytes, MaxKeySize: genericMaxBytes, Flags: ck.CKF_SIGN | ck.CKF_VERIFY}
		kts := []ck.KeyType{ck.CKK_GENERIC_SECRET, e.kt}
		for _, general := range []bool{false, true} {
			m := e.mac
			if general {
				m = e.general
			}
			out = append(out, Mechanism{
				Type: m, Info: info, KeyTypes: kts,
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
	}
	return out
}

// hmacOp holds the keyed state; hmacSigner and hmacVerifier wrap it.
// Verification recomputes the MAC and compares in constant time.
type hmacOp struct {
	m   ck.MechanismType
	mp  hash.Hash // multi-part state
	one hash.Hash // reset before each single-part call
	n   int
}

func newHMAC(m ck.MechanismType, h crypto.Hash, general bool, k *Key, param any) (*hmacOp, error) {
	n := h.Size()
	if general {
		l, ok := paramAs[ck.MACGeneralParams](param)
		if !ok {
			// The shim may hand a CK_ULONG parameter over as ck.ULong.
			var u ck.ULong
			if u, ok = paramAs[ck.ULong](param); ok {
				l = ck.MACGeneralParams(u)
			}
		}
		if !ok || l < 1 || l > ck.MACGeneralParams(n) {
			return nil, fmt.Errorf("%v: MAC length %v: %w", m, param, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		n = int(l)
	} else if err := noParam(m, param); err != nil {
		return nil, err
	}
	key, err := secretBytes(k)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", m, err)
	}
	return &hmacOp{m: m, mp: hmac.New(h.New, key), one: hmac.New(h.New, key), n: n}, nil
}

func (o *hmacOp) Update(p []byte) error { o.mp.Write(p); return nil }

func (o *hmacOp) multi() []byte { return o.mp.Sum(nil)[:o.n] }

func (o *hmacOp) single(data []byte) []byte {
	o.one.Reset()
	o.one.Write(data)
	return o.one.Sum(nil)[:o.n]
}

func (o *hmacOp) check(mac, sig []byte) error {
	if len(sig) != o.n {
		return fmt.Errorf("%v: MAC of %d bytes, want %d: %w", o.m, len(sig), o.n, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if subtle.ConstantTimeCompare(mac, sig) != 1 {
		return fmt.Errorf("%v: %w", o.m, ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

type hmacSigner struct{ *hmacOp }

func (s hmacSigner) Len() int                         { return s.n }
func (s hmacSigner) Final() ([]byte, error)           { return s.multi(), nil }
func (s hmacSigner) Sign(data []byte) ([]byte, error) { return s.single(data), nil }

type hmacVerifier struct{ *hmacOp }

func (v hmacVerifier) Final(sig []byte) error        { return v.check(v.multi(), sig) }
func (v hmacVerifier) Verify(data, sig []byte) error { return v.check(v.single(data), sig) }
