package mech

import (
	"crypto"
	"crypto/rand"
	"crypto/sha3"
	"fmt"
	"hash"
	"io"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/gohsm/gohsm/hsm/ck"
)

// HashML-DSA (FIPS 204 §5.4, Algorithms 4 and 5) with the PKCS#11 3.2
// values, and the pre-hash encoding it shares with HashSLH-DSA
// (hashslhdsa.go).
//
//   - CKM_HASH_ML_DSA: the caller hashes; the data is PH(M) and the
//     parameter (a CK_HASH_SIGN_ADDITIONAL_CONTEXT, required) names the
//     digest mechanism in its hash field. The data length must be that
//     digest's (CKR_DATA_LEN_RANGE otherwise). Single-part only (3.2 table
//     "ML-DSA Mechanisms vs. Functions").
//   - CKM_HASH_ML_DSA_<hash>: the token hashes the message, so C_SignUpdate
//     and C_VerifyUpdate stream into the hash; the optional parameter is a
//     CK_SIGN_ADDITIONAL_CONTEXT (hedge variant and context).
//
// Both sign M' = 0x01 || |ctx| || ctx || OID(PH) || PH(M) with
// ML-DSA.Sign_internal (circl_internal.go), with rnd = 32 bytes from
// crypto/rand when hedged and 32 zero bytes for CKH_DETERMINISTIC_REQUIRED
// (FIPS 204 Algorithm 4 step 5 and its deterministic variant).
//
// SHAKE: CKM_HASH_*_SHAKE128/256 hash with SHAKE128 (256-bit output) and
// SHAKE256 (512-bit output) as FIPS 204 §5.4.1 lists them. 3.2 defines no
// digest mechanism for a SHAKE, so the hash field of CKM_HASH_ML_DSA /
// CKM_HASH_SLH_DSA cannot name one (OASIS pkcs11 issue #47, deferred to
// 3.3); any value outside the SHA-2 and SHA-3 digests is
// CKR_MECHANISM_PARAM_INVALID.

// preHash is one pre-hash function PH of FIPS 204 §5.4.1 / FIPS 205 §10.2.
type preHash struct {
	name   string
	digest ck.MechanismType // the 3.2 digest mechanism (0: none, SHAKE)
	ml     ck.MechanismType // CKM_HASH_ML_DSA_<hash> (0: none)
	slh    ck.MechanismType // CKM_HASH_SLH_DSA_<hash> (0: none)
	h      crypto.Hash      // SHA-2/SHA-3; 0 for the SHAKEs
	shake  int              // 128 or 256 for the SHAKEs
	oid    byte             // last arc of 2.16.840.1.101.3.4.2.x (NIST CSOR)
	size   int              // |PH(M)| in bytes
}

var preHashes = []preHash{
	{"SHA-224", ck.CKM_SHA224, ck.CKM_HASH_ML_DSA_SHA224, ck.CKM_HASH_SLH_DSA_SHA224, crypto.SHA224, 0, 0x04, 28},
	{"SHA-256", ck.CKM_SHA256, ck.CKM_HASH_ML_DSA_SHA256, ck.CKM_HASH_SLH_DSA_SHA256, crypto.SHA256, 0, 0x01, 32},
	{"SHA-384", ck.CKM_SHA384, ck.CKM_HASH_ML_DSA_SHA384, ck.CKM_HASH_SLH_DSA_SHA384, crypto.SHA384, 0, 0x02, 48},
	{"SHA-512", ck.CKM_SHA512, ck.CKM_HASH_ML_DSA_SHA512, ck.CKM_HASH_SLH_DSA_SHA512, crypto.SHA512, 0, 0x03, 64},
	{"SHA-512/224", ck.CKM_SHA512_224, 0, 0, crypto.SHA512_224, 0, 0x05, 28},
	{"SHA-512/256", ck.CKM_SHA512_256, 0, 0, crypto.SHA512_256, 0, 0x06, 32},
	{"SHA3-224", ck.CKM_SHA3_224, ck.CKM_HASH_ML_DSA_SHA3_224, ck.CKM_HASH_SLH_DSA_SHA3_224, crypto.SHA3_224, 0, 0x07, 28},
	{"SHA3-256", ck.CKM_SHA3_256, ck.CKM_HASH_ML_DSA_SHA3_256, ck.CKM_HASH_SLH_DSA_SHA3_256, crypto.SHA3_256, 0, 0x08, 32},
	{"SHA3-384", ck.CKM_SHA3_384, ck.CKM_HASH_ML_DSA_SHA3_384, ck.CKM_HASH_SLH_DSA_SHA3_384, crypto.SHA3_384, 0, 0x09, 48},
	{"SHA3-512", ck.CKM_SHA3_512, ck.CKM_HASH_ML_DSA_SHA3_512, ck.CKM_HASH_SLH_DSA_SHA3_512, crypto.SHA3_512, 0, 0x0A, 64},
	{"SHAKE-128", 0, ck.CKM_HASH_ML_DSA_SHAKE128, ck.CKM_HASH_SLH_DSA_SHAKE128, 0, 128, 0x0B, 32},
	{"SHAKE-256", 0, ck.CKM_HASH_ML_DSA_SHAKE256, ck.CKM_HASH_SLH_DSA_SHAKE256, 0, 256, 0x0C, 64},
}

// preHashByDigest finds PH from the hash field of a
// CK_HASH_SIGN_ADDITIONAL_CONTEXT.
func preHashByDigest(m ck.MechanismType) (*preHash, bool) {
	for i := range preHashes {
		if preHashes[i].digest != 0 && preHashes[i].digest == m {
			return &preHashes[i], true
		}
	}
	return nil, false
}

// preHashOf finds PH from a combined mechanism (CKM_HASH_ML_DSA_SHA256...).
func preHashOf(m ck.MechanismType) (*preHash, bool) {
	for i := range preHashes {
		if p := &preHashes[i]; (p.ml != 0 && p.ml == m) || (p.slh != 0 && p.slh == m) {
			return p, true
		}
	}
	return nil, false
}

// prehasher computes PH(M) over a message fed in parts.
type prehasher interface {
	io.Writer
	// digest returns PH(M); the prehasher is not used afterwards.
	digest() []byte
}

type hashPH struct{ hash.Hash }

func (h hashPH) digest() []byte { return h.Sum(nil) }

type shakePH struct {
	*sha3.SHAKE
	n int
}

func (s shakePH) digest() []byte {
	b := make([]byte, s.n)
	_, _ = s.Read(b) // a SHAKE never fails to read
	return b
}

func (p *preHash) new() prehasher {
	switch p.shake {
	case 128:
		return shakePH{sha3.NewSHAKE128(), p.size}
	case 256:
		return shakePH{sha3.NewSHAKE256(), p.size}
	}
	return hashPH{p.h.New()}
}

// hashMessagePrime is M' of FIPS 204 Algorithm 4 steps 10-22 and FIPS 205
// Algorithm 23 steps 8-24: 0x01 || IntegerToBytes(|ctx|, 1) || ctx ||
// OID || PH(M), where OID is the DER encoding (tag, length and value) of
// the hash's object identifier 2.16.840.1.101.3.4.2.x.
func hashMessagePrime(ctx []byte, p *preHash, digest []byte) []byte {
	oid := [...]byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, p.oid}
	m := make([]byte, 0, 2+len(ctx)+len(oid)+len(digest))
	m = append(m, 0x01, byte(len(ctx)))
	m = append(m, ctx...)
	m = append(m, oid[:]...)
	return append(m, digest...)
}

// hashSignParams decodes the parameter of a pre-hash mechanism m: for the
// generic CKM_HASH_ML_DSA / CKM_HASH_SLH_DSA (generic true) the required
// CK_HASH_SIGN_ADDITIONAL_CONTEXT, for CKM_HASH_*_<hash> the optional
// CK_SIGN_ADDITIONAL_CONTEXT.
func hashSignParams(m ck.MechanismType, generic bool, param any) (p *preHash, ctx []byte, randomized bool, err error) {
	if !generic {
		p, ok := preHashOf(m)
		if !ok {
			return nil, nil, false, fmt.Errorf("%v: %w", m, ck.CKR_MECHANISM_INVALID)
		}
		ctx, randomized, err := signContext(m, param)
		return p, ctx, randomized, err
	}
	hp, ok := paramAs[ck.HashSignAdditionalContext](param)
	if !ok {
		return nil, nil, false, fmt.Errorf("%v: parameter %T (want CK_HASH_SIGN_ADDITIONAL_CONTEXT): %w", m, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if p, ok = preHashByDigest(hp.Hash); !ok {
		return nil, nil, false, fmt.Errorf("%v: hash mechanism %v: %w", m, hp.Hash, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	ctx, randomized, err = signContext(m, &ck.SignAdditionalContext{Hedge: hp.Hedge, Context: hp.Context})
	return p, ctx, randomized, err
}

// hashSign is the state HashML-DSA and HashSLH-DSA operations share: PH,
// the context, and for CKM_HASH_*_<hash> the running hash of a multi-part
// message (nil for the generic, single-part mechanisms).
type hashSign struct {
	mech       ck.MechanismType
	ph         *preHash
	ctx        []byte
	randomized bool
	generic    bool
	part       prehasher
}

func newHashSign(m ck.MechanismType, generic bool, param any) (hashSign, error) {
	p, ctx, rnd, err := hashSignParams(m, generic, param)
	if err != nil {
		return hashSign{}, err
	}
	return hashSign{mech: m, ph: p, ctx: ctx, randomized: rnd, generic: generic}, nil
}

// update feeds a multi-part message.
func (h *hashSign) update(b []byte) error {
	if h.generic {
		// 3.2: CKM_HASH_ML_DSA and CKM_HASH_SLH_DSA are single-part.
		return fmt.Errorf("%v: multi-part: %w", h.mech, ck.CKR_FUNCTION_NOT_SUPPORTED)
	}
	if h.part == nil {
		h.part = h.ph.new()
	}
	_, _ = h.part.Write(b) // hashes never fail to write
	return nil
}

// finalDigest is PH(M) of the multi-part message.
func (h *hashSign) finalDigest() ([]byte, error) {
	if h.generic {
		return nil, fmt.Errorf("%v: multi-part: %w", h.mech, ck.CKR_FUNCTION_NOT_SUPPORTED)
	}
	if h.part == nil {
		h.part = h.ph.new()
	}
	d := h.part.digest()
	h.part = nil
	return d, nil
}

// oneShotDigest is PH(M) for single-part data: the data itself for the
// generic mechanisms (whose length must be PH's), else its hash.
func (h *hashSign) oneShotDigest(data []byte) ([]byte, error) {
	if h.generic {
		if len(data) != h.ph.size {
			return nil, fmt.Errorf("%v: %d-byte digest for %s (%d bytes): %w", h.mech, len(data), h.ph.name, h.ph.size, ck.CKR_DATA_LEN_RANGE)
		}
		return data, nil
	}
	w := h.ph.new()
	_, _ = w.Write(data)
	return w.digest(), nil
}

func (h *hashSign) messagePrime(digest []byte) []byte { return hashMessagePrime(h.ctx, h.ph, digest) }

// mldsaSignInternal and mldsaVerifyInternal dispatch to the parameter set's
// Sign_internal / Verify_internal.
func mldsaSignInternal(sk sign.PrivateKey, mp []byte, rnd [32]byte) ([]byte, error) {
	switch k := sk.(type) {
	case *mldsa44.PrivateKey:
		return mldsa44SignInternal(k, mp, rnd), nil
	case *mldsa65.PrivateKey:
		return mldsa65SignInternal(k, mp, rnd), nil
	case *mldsa87.PrivateKey:
		return mldsa87SignInternal(k, mp, rnd), nil
	}
	return nil, fmt.Errorf("ml-dsa: private key %T: %w", sk, ck.CKR_KEY_TYPE_INCONSISTENT)
}

func mldsaVerifyInternal(pk sign.PublicKey, mp, sig []byte) bool {
	switch k := pk.(type) {
	case *mldsa44.PublicKey:
		return mldsa44VerifyInternal(k, mp, sig)
	case *mldsa65.PublicKey:
		return mldsa65VerifyInternal(k, mp, sig)
	case *mldsa87.PublicKey:
		return mldsa87VerifyInternal(k, mp, sig)
	}
	return false
}

func hashMLDSAMechanisms() []Mechanism {
	info := ck.MechanismInfo{MinKeySize: mldsa44.PublicKeySize, MaxKeySize: mldsa87.PublicKeySize, Flags: ck.CKF_SIGN | ck.CKF_VERIFY}
	mk := func(m ck.MechanismType, generic bool) Mechanism {
		return Mechanism{
			Type: m, Info: info, KeyTypes: []ck.KeyType{ck.CKK_ML_DSA},
			Sign:   func(k *Key, param any) (Signer, error) { return newHashMLDSASigner(m, generic, k, param) },
			Verify: func(k *Key, param any) (Verifier, error) { return newHashMLDSAVerifier(m, generic, k, param) },
		}
	}
	out := []Mechanism{mk(ck.CKM_HASH_ML_DSA, true)}
	for _, p := range preHashes {
		if p.ml != 0 {
			out = append(out, mk(p.ml, false))
		}
	}
	return out
}

type hashMLDSASigner struct {
	key *mldsaKey
	hashSign
}

func newHashMLDSASigner(m ck.MechanismType, generic bool, k *Key, param any) (Signer, error) {
	mk, err := mldsaMaterial(k)
	if err != nil {
		return nil, err
	}
	if mk.priv == nil {
		return nil, fmt.Errorf("%v: signing needs a private key: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	hs, err := newHashSign(m, generic, param)
	if err != nil {
		return nil, err
	}
	return &hashMLDSASigner{key: mk, hashSign: hs}, nil
}

func (s *hashMLDSASigner) Len() int              { return s.key.set.sigLen }
func (s *hashMLDSASigner) Update(p []byte) error { return s.update(p) }

func (s *hashMLDSASigner) Final() ([]byte, error) {
	d, err := s.finalDigest()
	if err != nil {
		return nil, err
	}
	return s.sign(d)
}

func (s *hashMLDSASigner) Sign(data []byte) ([]byte, error) {
	d, err := s.oneShotDigest(data)
	if err != nil {
		return nil, err
	}
	return s.sign(d)
}

func (s *hashMLDSASigner) sign(digest []byte) ([]byte, error) {
	var rnd [32]byte // deterministic: rnd = {0}^32
	if s.randomized {
		if _, err := rand.Read(rnd[:]); err != nil {
			return nil, fmt.Errorf("%v: %v: %w", s.mech, err, ck.CKR_FUNCTION_FAILED)
		}
	}
	mp := s.messagePrime(digest)
	sig, err := mldsaSignInternal(s.key.priv, mp, rnd)
	zero(mp)
	clear(rnd[:])
	if err != nil {
		return nil, err
	}
	if len(sig) != s.key.set.sigLen {
		return nil, fmt.Errorf("%v: signature of %d bytes: %w", s.mech, len(sig), ck.CKR_FUNCTION_FAILED)
	}
	return sig, nil
}

type hashMLDSAVerifier struct {
	key *mldsaKey
	hashSign
}

func newHashMLDSAVerifier(m ck.MechanismType, generic bool, k *Key, param any) (Verifier, error) {
	mk, err := mldsaMaterial(k)
	if err != nil {
		return nil, err
	}
	// The hedge variant is ignored on verification (3.2), but a malformed
	// one is still a malformed parameter.
	hs, err := newHashSign(m, generic, param)
	if err != nil {
		return nil, err
	}
	return &hashMLDSAVerifier{key: mk, hashSign: hs}, nil
}

func (v *hashMLDSAVerifier) Update(p []byte) error { return v.update(p) }

func (v *hashMLDSAVerifier) Final(sig []byte) error {
	d, err := v.finalDigest()
	if err != nil {
		return err
	}
	return v.verify(d, sig)
}

func (v *hashMLDSAVerifier) Verify(data, sig []byte) error {
	d, err := v.oneShotDigest(data)
	if err != nil {
		return err
	}
	return v.verify(d, sig)
}

func (v *hashMLDSAVerifier) verify(digest, sig []byte) error {
	if len(sig) != v.key.set.sigLen {
		return fmt.Errorf("%v: signature of %d bytes: %w", v.mech, len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if !mldsaVerifyInternal(v.key.pub, v.messagePrime(digest), sig) {
		return fmt.Errorf("%v: %w", v.mech, ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}
