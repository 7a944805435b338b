package mech

import (
	"crypto"
	_ "crypto/md5" // registers crypto.MD5 for CKM_MD5
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha3" // registers crypto.SHA3_* for the SHA-3 family (sha3.go)
	_ "crypto/sha512"
	"fmt"
	"hash"

	"github.com/gohsm/gohsm/hsm/ck"
)

// This file holds the digest mechanisms, the CKM_/CKG_ to crypto.Hash maps
// the signature families share, and the hash-then-sign operation types.

var digestHashes = []struct {
	m ck.MechanismType
	h crypto.Hash
}{
	{ck.CKM_MD5, crypto.MD5},
	{ck.CKM_SHA_1, crypto.SHA1},
	{ck.CKM_SHA224, crypto.SHA224},
	{ck.CKM_SHA256, crypto.SHA256},
	{ck.CKM_SHA384, crypto.SHA384},
	{ck.CKM_SHA512, crypto.SHA512},
}

func digestMechanisms() []Mechanism {
	out := make([]Mechanism, 0, len(digestHashes))
	for _, d := range digestHashes {
		out = append(out, Mechanism{
			Type:       d.m,
			Info:       ck.MechanismInfo{Flags: ck.CKF_DIGEST},
			WeakDigest: d.h == crypto.MD5 || d.h == crypto.SHA1,
			Digest: func(param any) (hash.Hash, error) {
				if err := noParam(d.m, param); err != nil {
					return nil, err
				}
				return d.h.New(), nil
			},
		})
	}
	return out
}

// hashOf maps a digest mechanism (as used in CK_RSA_PKCS_PSS_PARAMS.hashAlg
// and CK_RSA_PKCS_OAEP_PARAMS.hashAlg) to its hash. MD5 is deliberately not
// accepted there.
func hashOf(m ck.MechanismType) (crypto.Hash, bool) {
	switch m {
	case ck.CKM_SHA_1:
		return crypto.SHA1, true
	case ck.CKM_SHA224:
		return crypto.SHA224, true
	case ck.CKM_SHA256:
		return crypto.SHA256, true
	case ck.CKM_SHA384:
		return crypto.SHA384, true
	case ck.CKM_SHA512:
		return crypto.SHA512, true
	}
	return sha3HashOf(m)
}

// mgfHash maps a CKG_MGF1_* value to the hash MGF1 uses.
func mgfHash(g ck.MGF) (crypto.Hash, bool) {
	switch g {
	case ck.CKG_MGF1_SHA1:
		return crypto.SHA1, true
	case ck.CKG_MGF1_SHA224:
		return crypto.SHA224, true
	case ck.CKG_MGF1_SHA256:
		return crypto.SHA256, true
	case ck.CKG_MGF1_SHA384:
		return crypto.SHA384, true
	case ck.CKG_MGF1_SHA512:
		return crypto.SHA512, true
	}
	return sha3MGFHash(g)
}

// hashSigner is the Signer of every hash-then-sign mechanism and, with
// h == 0, of the raw ones (CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_RSA_X_509,
// CKM_ECDSA). The mechanism-versus-function tables of the PKCS#11 2.40
// Current Mechanisms spec (§2.1 RSA, §2.3 elliptic curve) mark these
// "single-part operations only", so C_SignUpdate on them is
// CKR_FUNCTION_NOT_SUPPORTED and, as any update error, ends the operation.
type hashSigner struct {
	name string
	h    crypto.Hash
	mp   hash.Hash // multi-part state, nil for raw mechanisms
	n    int
	sign func(digest []byte) ([]byte, error)
}

func newHashSigner(name string, h crypto.Hash, n int, sign func([]byte) ([]byte, error)) *hashSigner {
	s := &hashSigner{name: name, h: h, n: n, sign: sign}
	if h != 0 {
		s.mp = h.New()
	}
	return s
}

func (s *hashSigner) Len() int { return s.n }

func (s *hashSigner) Update(p []byte) error {
	if s.mp == nil {
		return fmt.Errorf("%s: multi-part: %w", s.name, ck.CKR_FUNCTION_NOT_SUPPORTED)
	}
	s.mp.Write(p)
	return nil
}

func (s *hashSigner) Final() ([]byte, error) {
	if s.mp == nil {
		return nil, fmt.Errorf("%s: multi-part: %w", s.name, ck.CKR_FUNCTION_NOT_SUPPORTED)
	}
	return s.sign(s.mp.Sum(nil))
}

func (s *hashSigner) Sign(data []byte) ([]byte, error) {
	if s.h == 0 {
		return s.sign(data)
	}
	d := s.h.New()
	d.Write(data)
	return s.sign(d.Sum(nil))
}

// hashVerifier mirrors hashSigner.
type hashVerifier struct {
	name   string
	h      crypto.Hash
	mp     hash.Hash
	verify func(digest, sig []byte) error
}

func newHashVerifier(name string, h crypto.Hash, verify func(digest, sig []byte) error) *hashVerifier {
	v := &hashVerifier{name: name, h: h, verify: verify}
	if h != 0 {
		v.mp = h.New()
	}
	return v
}

func (v *hashVerifier) Update(p []byte) error {
	if v.mp == nil {
		return fmt.Errorf("%s: multi-part: %w", v.name, ck.CKR_FUNCTION_NOT_SUPPORTED)
	}
	v.mp.Write(p)
	return nil
}

func (v *hashVerifier) Final(sig []byte) error {
	if v.mp == nil {
		return fmt.Errorf("%s: multi-part: %w", v.name, ck.CKR_FUNCTION_NOT_SUPPORTED)
	}
	return v.verify(v.mp.Sum(nil), sig)
}

func (v *hashVerifier) Verify(data, sig []byte) error {
	if v.h == 0 {
		return v.verify(data, sig)
	}
	d := v.h.New()
	d.Write(data)
	return v.verify(d.Sum(nil), sig)
}
