package mech

import (
	"crypto/hmac"
	"crypto/subtle"
	"fmt"
	"hash"

	"github.com/emmansun/gmsm/sm3"

	"github.com/gohsm/gohsm/hsm/ck"
)

// SM3 (GB/T 32905) digest and HMAC-SM3. The codes come from the SM vendor
// profile; a profile that lacks a name simply does not offer it.
//
// Sharing: HMAC keys are the generic-secret []byte material, read-only; each
// operation builds its own hmac state.

// sm3HMACMaxKey bounds HMAC-SM3 keys (bytes); any non-empty key is valid
// HMAC, the cap only keeps CK_MECHANISM_INFO honest.
const sm3HMACMaxKey = 1 << 16

func sm3Mechanisms(p *ck.Profile) []Mechanism {
	p = smProfile(p)
	var out []Mechanism
	if t, ok := p.Mechanism("CKM_SM3"); ok {
		out = append(out, Mechanism{
			Type: t,
			Info: ck.MechanismInfo{Flags: ck.CKF_DIGEST},
			Digest: func(param any) (hash.Hash, error) {
				if err := noParam(t, param); err != nil {
					return nil, err
				}
				return sm3.New(), nil
			},
		})
	}
	for _, general := range []bool{false, true} {
		name := "CKM_SM3_HMAC"
		if general {
			name = "CKM_SM3_HMAC_GENERAL"
		}
		t, ok := p.Mechanism(name)
		if !ok {
			continue
		}
		general := general
		out = append(out, Mechanism{
			Type:     t,
			Info:     ck.MechanismInfo{MinKeySize: 1, MaxKeySize: sm3HMACMaxKey, Flags: ck.CKF_SIGN | ck.CKF_VERIFY},
			KeyTypes: []ck.KeyType{ck.CKK_GENERIC_SECRET},
			Sign: func(k *Key, param any) (Signer, error) {
				return newSM3HMAC(t, general, k, param)
			},
			Verify: func(k *Key, param any) (Verifier, error) {
				m, err := newSM3HMAC(t, general, k, param)
				if err != nil {
					return nil, err
				}
				return smMACVerifier{m}, nil
			},
		})
	}
	return out
}

// smProfile treats a nil profile as the default, so tests and callers that
// do not care about vendors need not name one.
func smProfile(p *ck.Profile) *ck.Profile {
	if p == nil {
		return ck.DefaultProfile
	}
	return p
}

// smMACLen decodes CK_MAC_GENERAL_PARAMS for a MAC of at most max bytes
// (PKCS#11 3.0 §2.1: the requested length, 1..full size).
func smMACLen(m ck.MechanismType, param any, max int) (int, error) {
	v, ok := paramAs[ck.MACGeneralParams](param)
	if !ok {
		u, ok2 := paramAs[ck.ULong](param)
		if !ok2 {
			return 0, fmt.Errorf("%v: want CK_MAC_GENERAL_PARAMS: %w", m, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		v = ck.MACGeneralParams(u)
	}
	if v < 1 || v > ck.MACGeneralParams(max) {
		return 0, fmt.Errorf("%v: MAC length %d of 1..%d: %w", m, v, max, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return int(v), nil
}

func newSM3HMAC(m ck.MechanismType, general bool, k *Key, param any) (*smMAC, error) {
	n := sm3.Size
	if general {
		var err error
		if n, err = smMACLen(m, param, sm3.Size); err != nil {
			return nil, err
		}
	} else if err := noParam(m, param); err != nil {
		return nil, err
	}
	key, err := secretBytes(k)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%v: empty key: %w", m, ck.CKR_KEY_SIZE_RANGE)
	}
	// hmac.New copies (or hashes) the key into its pads, so the shared
	// material is never written.
	return newSMMAC(n, func() hash.Hash { return hmac.New(sm3.New, key) }), nil
}

// smMAC is a Signer and Verifier over any keyed hash.Hash, truncated to n
// bytes. It is one session's operation, so it keeps a running state for the
// multi-part path and builds a fresh one for the single-part calls.
type smMAC struct {
	newMAC func() hash.Hash
	mp     hash.Hash
	n      int
}

func newSMMAC(n int, newMAC func() hash.Hash) *smMAC {
	return &smMAC{newMAC: newMAC, mp: newMAC(), n: n}
}

func (o *smMAC) Len() int { return o.n }

func (o *smMAC) Update(p []byte) error { o.mp.Write(p); return nil }

func (o *smMAC) Final() ([]byte, error) { return o.mp.Sum(nil)[:o.n], nil }

func (o *smMAC) Sign(data []byte) ([]byte, error) {
	h := o.newMAC()
	h.Write(data)
	return h.Sum(nil)[:o.n], nil
}

// check compares in constant time; the length is public.
func (o *smMAC) check(mac, sig []byte) error {
	if len(sig) != o.n {
		return fmt.Errorf("MAC of %d bytes, want %d: %w", len(sig), o.n, ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if subtle.ConstantTimeCompare(mac[:o.n], sig) != 1 {
		return fmt.Errorf("MAC mismatch: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

// smMACVerifier adapts smMAC to the Verifier interface, whose Final takes the
// signature.
type smMACVerifier struct{ *smMAC }

func (v smMACVerifier) Final(sig []byte) error { return v.check(v.mp.Sum(nil), sig) }

func (v smMACVerifier) Verify(data, sig []byte) error {
	h := v.newMAC()
	h.Write(data)
	return v.check(h.Sum(nil), sig)
}
