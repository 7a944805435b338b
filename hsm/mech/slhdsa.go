package mech

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding"
	"fmt"

	"github.com/cloudflare/circl/sign/slhdsa"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// SLH-DSA (FIPS 205) with the PKCS#11 3.2 values: CKM_SLH_DSA_KEY_PAIR_GEN
// and CKM_SLH_DSA (pure SLH-DSA, Algorithms 22 and 24, with the optional
// CK_SIGN_ADDITIONAL_CONTEXT), on github.com/cloudflare/circl, for all
// twelve parameter sets.
//
// Keys (3.2 "SLH-DSA public/private key objects"): CKA_PARAMETER_SET is a
// CKP_SLH_DSA_* value. A public key's CKA_VALUE is PK.seed || PK.root (2n
// bytes) and a private key's CKA_VALUE is SK.seed || SK.prf || PK.seed ||
// PK.root (4n bytes), the FIPS 205 §9.1 encodings. Unlike ML-DSA there is
// no CKA_SEED: the three n-byte seeds of slh_keygen (Algorithm 21) are
// part of the private key already.
//
// CKM_HASH_SLH_DSA and CKM_HASH_SLH_DSA_<hash> (HashSLH-DSA) live in
// hashslhdsa.go.
//
// Multi-part: 3.2 allows C_SignUpdate for CKM_SLH_DSA (the message is
// buffered: PRF_msg and H_msg both need the whole of M, after R), while
// verification is single-part unless C_VerifySignature* is used (table
// "SLH-DSA Mechanisms vs. Functions", footnote 1), so C_VerifyUpdate is
// CKR_FUNCTION_NOT_SUPPORTED.
//
// Signing is slow (milliseconds for the "f" sets, hundreds of them for
// the "s" sets, see BenchmarkSLHDSA*), which is the nature of the
// algorithm, not of this code.

type slhdsaSet struct {
	set    ck.ParameterSet
	id     slhdsa.ID
	name   string
	n      int // security parameter: seeds and hashes are n bytes
	sigLen int
}

func (s *slhdsaSet) pkLen() int { return 2 * s.n }
func (s *slhdsaSet) skLen() int { return 4 * s.n }

// slhdsaSets maps the 3.2 codes to circl's identifiers; the two
// enumerations happen to agree, but the table does not rely on it.
var slhdsaSets = func() []slhdsaSet {
	pairs := []struct {
		set ck.ParameterSet
		id  slhdsa.ID
	}{
		{ck.CKP_SLH_DSA_SHA2_128S, slhdsa.SHA2_128s},
		{ck.CKP_SLH_DSA_SHAKE_128S, slhdsa.SHAKE_128s},
		{ck.CKP_SLH_DSA_SHA2_128F, slhdsa.SHA2_128f},
		{ck.CKP_SLH_DSA_SHAKE_128F, slhdsa.SHAKE_128f},
		{ck.CKP_SLH_DSA_SHA2_192S, slhdsa.SHA2_192s},
		{ck.CKP_SLH_DSA_SHAKE_192S, slhdsa.SHAKE_192s},
		{ck.CKP_SLH_DSA_SHA2_192F, slhdsa.SHA2_192f},
		{ck.CKP_SLH_DSA_SHAKE_192F, slhdsa.SHAKE_192f},
		{ck.CKP_SLH_DSA_SHA2_256S, slhdsa.SHA2_256s},
		{ck.CKP_SLH_DSA_SHAKE_256S, slhdsa.SHAKE_256s},
		{ck.CKP_SLH_DSA_SHA2_256F, slhdsa.SHA2_256f},
		{ck.CKP_SLH_DSA_SHAKE_256F, slhdsa.SHAKE_256f},
	}
	sets := make([]slhdsaSet, len(pairs))
	for i, p := range pairs {
		sc := p.id.Scheme()
		sets[i] = slhdsaSet{set: p.set, id: p.id, name: sc.Name(), n: sc.PublicKeySize() / 2, sigLen: sc.SignatureSize()}
	}
	return sets
}()

func slhdsaSetOf(v ck.ULong) (*slhdsaSet, bool) {
	return pqSetOf(slhdsaSets, v, func(s *slhdsaSet) ck.ParameterSet { return s.set })
}

// slhdsaKey is the material of a CKK_SLH_DSA object.
type slhdsaKey struct {
	set  *slhdsaSet
	pub  *slhdsa.PublicKey
	priv *slhdsa.PrivateKey // nil for public keys
}

func slhdsaParamSet(a attr.Template) (*slhdsaSet, error) {
	return pqParamSet("CKK_SLH_DSA", a, slhdsaSetOf)
}

// slhdsaFromSeeds runs slh_keygen_internal on SK.seed || SK.prf || PK.seed
// (3n bytes): circl's GenerateKey reads exactly those three seeds, in that
// order, from its random source.
func slhdsaFromSeeds(s *slhdsaSet, seeds []byte) (*slhdsa.PublicKey, *slhdsa.PrivateKey, error) {
	if len(seeds) != 3*s.n {
		return nil, nil, fmt.Errorf("CKK_SLH_DSA: %d seed bytes for %s: %w", len(seeds), s.name, ck.CKR_FUNCTION_FAILED)
	}
	pk, sk, err := slhdsa.GenerateKey(bytes.NewReader(seeds), s.id)
	if err != nil {
		return nil, nil, fmt.Errorf("CKK_SLH_DSA: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	return &pk, &sk, nil
}

func parseSLHDSA(class ck.ObjectClass, a attr.Template) (any, error) {
	s, err := slhdsaParamSet(a)
	if err != nil {
		return nil, err
	}
	v, ok := a.Get(ck.CKA_VALUE)
	if !ok {
		return nil, fmt.Errorf("CKK_SLH_DSA: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	switch class {
	case ck.CKO_PUBLIC_KEY:
		if len(v) != s.pkLen() {
			return nil, fmt.Errorf("CKK_SLH_DSA: %s public key of %d bytes: %w", s.name, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		pk := &slhdsa.PublicKey{ID: s.id}
		if err := pk.UnmarshalBinary(v); err != nil {
			return nil, fmt.Errorf("CKK_SLH_DSA: CKA_VALUE: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return &slhdsaKey{set: s, pub: pk}, nil
	case ck.CKO_PRIVATE_KEY:
		if len(v) != s.skLen() {
			return nil, fmt.Errorf("CKK_SLH_DSA: %s private key of %d bytes: %w", s.name, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		// PK.root is a function of SK.seed and PK.seed; a key whose root
		// does not match signs garbage that no verifier accepts, so it is
		// rejected here, once per object, by recomputing the root (one
		// top-layer XMSS tree: about a key generation's time).
		seeds := append([]byte(nil), v[:3*s.n]...)
		pk, sk, err := slhdsaFromSeeds(s, seeds)
		zero(seeds)
		if err != nil {
			return nil, err
		}
		pkb, _ := pk.MarshalBinary()
		if subtle.ConstantTimeCompare(pkb, v[2*s.n:]) != 1 {
			return nil, fmt.Errorf("CKK_SLH_DSA: PK.root does not match SK.seed and PK.seed: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return &slhdsaKey{set: s, pub: pk, priv: sk}, nil
	}
	return nil, fmt.Errorf("CKK_SLH_DSA: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
}

func slhdsaKeyKinds() []KeyKind {
	return []KeyKind{{
		Type:   ck.CKK_SLH_DSA,
		pct:    signPCT(ck.CKM_SLH_DSA, nil),
		Parse:  parseSLHDSA,
		Secret: []ck.AttributeType{ck.CKA_VALUE},
		// CK_MECHANISM_INFO sizes for SLH-DSA are public key bytes (3.2).
		Size: func(a attr.Template, m any) ck.ULong {
			if k, ok := m.(*slhdsaKey); ok {
				return ck.ULong(k.set.pkLen())
			}
			if s, err := slhdsaParamSet(a); err == nil {
				return ck.ULong(s.pkLen())
			}
			return 0
		},
	}}
}

func slhdsaMechanisms() []Mechanism {
	info := func(f ck.Flags) ck.MechanismInfo {
		return ck.MechanismInfo{MinKeySize: 32, MaxKeySize: 64, Flags: f}
	}
	return []Mechanism{{
		Type:            ck.CKM_SLH_DSA_KEY_PAIR_GEN,
		Info:            info(ck.CKF_GENERATE_KEY_PAIR),
		GenerateKeyPair: generateSLHDSA,
	}, {
		Type: ck.CKM_SLH_DSA, Info: info(ck.CKF_SIGN | ck.CKF_VERIFY), KeyTypes: []ck.KeyType{ck.CKK_SLH_DSA},
		Sign:   newSLHDSASigner,
		Verify: newSLHDSAVerifier,
	}}
}

// generateSLHDSA is slh_keygen (FIPS 205 Algorithm 21): 3n fresh random
// bytes are SK.seed, SK.prf and PK.seed, and PK.root follows from them.
// 3.2 gives the private key CKA_PARAMETER_SET and CKA_VALUE, no seed.
func generateSLHDSA(pubT, privT attr.Template) (attr.Template, attr.Template, error) {
	return pqGenerateKeys("slh-dsa", ck.CKK_SLH_DSA, pubT, privT, func(v ck.ULong) (int, pqDerive, bool) {
		s, ok := slhdsaSetOf(v)
		if !ok {
			return 0, nil, false
		}
		return 3 * s.n, func(seeds []byte) (encoding.BinaryMarshaler, encoding.BinaryMarshaler) {
			// The length is right by construction, and a bytes.Reader
			// cannot fail, so slhdsaFromSeeds cannot either.
			pk, sk, err := slhdsaFromSeeds(s, seeds)
			if err != nil {
				panic(err)
			}
			return pk, sk
		}, true
	}, false)
}

func slhdsaMaterial(k *Key) (*slhdsaKey, error) {
	m, err := keyMaterial(k, parseSLHDSA)
	if err != nil {
		return nil, err
	}
	sk, ok := m.(*slhdsaKey)
	if !ok {
		return nil, fmt.Errorf("CKM_SLH_DSA: key material %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return sk, nil
}

type slhdsaSigner struct {
	key        *slhdsaKey
	ctx        []byte
	randomized bool
	buf        []byte
}

func newSLHDSASigner(k *Key, param any) (Signer, error) {
	sk, err := slhdsaMaterial(k)
	if err != nil {
		return nil, err
	}
	if sk.priv == nil {
		return nil, fmt.Errorf("CKM_SLH_DSA: signing needs a private key: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	ctx, rnd, err := signContext(ck.CKM_SLH_DSA, param)
	if err != nil {
		return nil, err
	}
	return &slhdsaSigner{key: sk, ctx: ctx, randomized: rnd}, nil
}

func (s *slhdsaSigner) Len() int              { return s.key.set.sigLen }
func (s *slhdsaSigner) Update(p []byte) error { s.buf = append(s.buf, p...); return nil }
func (s *slhdsaSigner) Final() ([]byte, error) {
	b := s.buf
	s.buf = nil
	defer zero(b)
	return s.Sign(b)
}

// Sign is slh_sign (Algorithm 22): hedged with n bytes of opt_rand from
// crypto/rand, or deterministic (opt_rand = PK.seed) when the caller asked
// for CKH_DETERMINISTIC_REQUIRED.
func (s *slhdsaSigner) Sign(data []byte) ([]byte, error) {
	var sig []byte
	var err error
	if s.randomized {
		sig, err = slhdsa.SignRandomized(s.key.priv, rand.Reader, slhdsa.NewMessage(data), s.ctx)
	} else {
		sig, err = slhdsa.SignDeterministic(s.key.priv, slhdsa.NewMessage(data), s.ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("CKM_SLH_DSA: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	if len(sig) != s.key.set.sigLen {
		return nil, fmt.Errorf("CKM_SLH_DSA: signature of %d bytes: %w", len(sig), ck.CKR_FUNCTION_FAILED)
	}
	return sig, nil
}

type slhdsaVerifier struct {
	key *slhdsaKey
	ctx []byte
}

func newSLHDSAVerifier(k *Key, param any) (Verifier, error) {
	sk, err := slhdsaMaterial(k)
	if err != nil {
		return nil, err
	}
	// The hedge variant is ignored on verification (3.2 "SLH-DSA
	// Signature"), but a malformed one is still a malformed parameter.
	ctx, _, err := signContext(ck.CKM_SLH_DSA, param)
	if err != nil {
		return nil, err
	}
	return &slhdsaVerifier{key: sk, ctx: ctx}, nil
}

func (v *slhdsaVerifier) Update([]byte) error {
	return fmt.Errorf("CKM_SLH_DSA: multi-part verification: %w", ck.CKR_FUNCTION_NOT_SUPPORTED)
}

func (v *slhdsaVerifier) Final([]byte) error {
	return fmt.Errorf("CKM_SLH_DSA: multi-part verification: %w", ck.CKR_FUNCTION_NOT_SUPPORTED)
}

// Verify is slh_verify (Algorithm 24).
func (v *slhdsaVerifier) Verify(data, sig []byte) error {
	if len(sig) != v.key.set.sigLen {
		return fmt.Errorf("CKM_SLH_DSA: signature of %d bytes: %w", len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if !slhdsa.Verify(v.key.pub, slhdsa.NewMessage(data), sig, v.ctx) {
		return fmt.Errorf("CKM_SLH_DSA: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}
