package mech

import (
	"crypto/subtle"
	"encoding"
	"fmt"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// ML-DSA (FIPS 204) with the PKCS#11 3.2 values: CKM_ML_DSA_KEY_PAIR_GEN and
// CKM_ML_DSA (pure ML-DSA, with the optional CK_SIGN_ADDITIONAL_CONTEXT:
// context string and hedging), on github.com/cloudflare/circl.
//
// Keys (3.2 "ML-DSA public/private key objects"): CKA_PARAMETER_SET is
// CKP_ML_DSA_44/65/87. A public key's CKA_VALUE is pk (FIPS 204 pkEncode).
// A private key's CKA_VALUE is the expanded sk (skEncode, 2560/4032/4896
// bytes) and CKA_SEED the 32-byte seed ξ of ML-DSA.KeyGen; generation sets
// both. C_CreateObject needs at least one; with only the seed the token
// derives CKA_VALUE, and with both they must agree.
//
// CKM_HASH_ML_DSA and CKM_HASH_ML_DSA_<hash> (HashML-DSA) live in
// hashmldsa.go.
//
// Multi-part: 3.2 allows C_SignUpdate for CKM_ML_DSA (the message is
// buffered: ML-DSA hashes tr before M, so it cannot stream), while
// verification is single-part unless C_VerifySignature* is used (table
// "ML-DSA Mechanisms vs. Functions", footnote 1), so C_VerifyUpdate is
// CKR_FUNCTION_NOT_SUPPORTED.
//
// circl follows the reference implementation; the number of rejection-loop
// iterations shows in the timing, which FIPS 204 (§3.6.3) treats as
// harmless because it does not depend on the secret beyond what the
// signature itself reveals.

type mldsaSet struct {
	set    ck.ParameterSet
	name   string
	scheme sign.Scheme
	pkLen  int
	skLen  int
	sigLen int
	// signTo is the package's SignTo (randomized = hedged).
	signTo func(sk sign.PrivateKey, msg, ctx []byte, randomized bool, sig []byte) error
	verify func(pk sign.PublicKey, msg, ctx, sig []byte) bool
}

var mldsaSets = []mldsaSet{
	{ck.CKP_ML_DSA_44, "ML-DSA-44", mldsa44.Scheme(), mldsa44.PublicKeySize, mldsa44.PrivateKeySize, mldsa44.SignatureSize,
		func(sk sign.PrivateKey, m, c []byte, r bool, s []byte) error {
			return mldsa44.SignTo(sk.(*mldsa44.PrivateKey), m, c, r, s)
		},
		func(pk sign.PublicKey, m, c, s []byte) bool { return mldsa44.Verify(pk.(*mldsa44.PublicKey), m, c, s) }},
	{ck.CKP_ML_DSA_65, "ML-DSA-65", mldsa65.Scheme(), mldsa65.PublicKeySize, mldsa65.PrivateKeySize, mldsa65.SignatureSize,
		func(sk sign.PrivateKey, m, c []byte, r bool, s []byte) error {
			return mldsa65.SignTo(sk.(*mldsa65.PrivateKey), m, c, r, s)
		},
		func(pk sign.PublicKey, m, c, s []byte) bool { return mldsa65.Verify(pk.(*mldsa65.PublicKey), m, c, s) }},
	{ck.CKP_ML_DSA_87, "ML-DSA-87", mldsa87.Scheme(), mldsa87.PublicKeySize, mldsa87.PrivateKeySize, mldsa87.SignatureSize,
		func(sk sign.PrivateKey, m, c []byte, r bool, s []byte) error {
			return mldsa87.SignTo(sk.(*mldsa87.PrivateKey), m, c, r, s)
		},
		func(pk sign.PublicKey, m, c, s []byte) bool { return mldsa87.Verify(pk.(*mldsa87.PublicKey), m, c, s) }},
}

const mldsaSeedLen = 32

func mldsaSetOf(v ck.ULong) (*mldsaSet, bool) {
	return pqSetOf(mldsaSets, v, func(s *mldsaSet) ck.ParameterSet { return s.set })
}

// mldsaKey is the material of a CKK_ML_DSA object.
type mldsaKey struct {
	set  *mldsaSet
	pub  sign.PublicKey
	priv sign.PrivateKey // nil for public keys
}

func mldsaParamSet(a attr.Template) (*mldsaSet, error) {
	return pqParamSet("CKK_ML_DSA", a, mldsaSetOf)
}

func parseMLDSA(class ck.ObjectClass, a attr.Template) (any, error) {
	s, err := mldsaParamSet(a)
	if err != nil {
		return nil, err
	}
	switch class {
	case ck.CKO_PUBLIC_KEY:
		v, ok := a.Get(ck.CKA_VALUE)
		if !ok {
			return nil, fmt.Errorf("CKK_ML_DSA: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		if len(v) != s.pkLen {
			return nil, fmt.Errorf("CKK_ML_DSA: %s public key of %d bytes: %w", s.name, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		pk, err := s.scheme.UnmarshalBinaryPublicKey(v)
		if err != nil {
			return nil, fmt.Errorf("CKK_ML_DSA: CKA_VALUE: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return &mldsaKey{set: s, pub: pk}, nil
	case ck.CKO_PRIVATE_KEY:
		seed, hasSeed := a.Get(ck.CKA_SEED)
		v, hasValue := a.Get(ck.CKA_VALUE)
		var pk sign.PublicKey
		var sk sign.PrivateKey
		switch {
		case hasSeed:
			if len(seed) != mldsaSeedLen {
				return nil, fmt.Errorf("CKK_ML_DSA: CKA_SEED of %d bytes: %w", len(seed), ck.CKR_ATTRIBUTE_VALUE_INVALID)
			}
			pk, sk = s.scheme.DeriveKey(seed)
			if hasValue {
				b, _ := sk.MarshalBinary()
				same := subtle.ConstantTimeCompare(b, v)
				zero(b)
				if same != 1 {
					return nil, fmt.Errorf("CKK_ML_DSA: CKA_VALUE does not match CKA_SEED: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
				}
			}
		case hasValue:
			if len(v) != s.skLen {
				return nil, fmt.Errorf("CKK_ML_DSA: %s private key of %d bytes: %w", s.name, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
			}
			if sk, err = s.scheme.UnmarshalBinaryPrivateKey(v); err != nil {
				return nil, fmt.Errorf("CKK_ML_DSA: CKA_VALUE: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
			}
			pk = sk.Public().(sign.PublicKey)
		default:
			return nil, fmt.Errorf("CKK_ML_DSA: CKA_SEED or CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		return &mldsaKey{set: s, pub: pk, priv: sk}, nil
	}
	return nil, fmt.Errorf("CKK_ML_DSA: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
}

func mldsaKeyKinds() []KeyKind {
	return []KeyKind{{
		Type:  ck.CKK_ML_DSA,
		pct:   signPCT(ck.CKM_ML_DSA, nil),
		Parse: parseMLDSA,
		// A private key created from its seed alone gets its expanded form.
		Derived: expandedValue("CKK_ML_DSA", func(m any) (encoding.BinaryMarshaler, bool) {
			k, ok := m.(*mldsaKey)
			if !ok || k.priv == nil {
				return nil, false
			}
			return k.priv, true
		}),
		Secret: []ck.AttributeType{ck.CKA_VALUE, ck.CKA_SEED},
		// CK_MECHANISM_INFO sizes for ML-DSA are public key bytes (3.2).
		Size: func(a attr.Template, m any) ck.ULong {
			if k, ok := m.(*mldsaKey); ok {
				return ck.ULong(k.set.pkLen)
			}
			if s, err := mldsaParamSet(a); err == nil {
				return ck.ULong(s.pkLen)
			}
			return 0
		},
	}}
}

func mldsaMechanisms() []Mechanism {
	info := func(f ck.Flags) ck.MechanismInfo {
		return ck.MechanismInfo{MinKeySize: mldsa44.PublicKeySize, MaxKeySize: mldsa87.PublicKeySize, Flags: f}
	}
	return []Mechanism{{
		Type:            ck.CKM_ML_DSA_KEY_PAIR_GEN,
		Info:            info(ck.CKF_GENERATE_KEY_PAIR),
		GenerateKeyPair: generateMLDSA,
	}, {
		Type: ck.CKM_ML_DSA, Info: info(ck.CKF_SIGN | ck.CKF_VERIFY), KeyTypes: []ck.KeyType{ck.CKK_ML_DSA},
		Sign:   newMLDSASigner,
		Verify: newMLDSAVerifier,
	}}
}

func generateMLDSA(pubT, privT attr.Template) (attr.Template, attr.Template, error) {
	return pqGenerate("ml-dsa", ck.CKK_ML_DSA, pubT, privT, func(v ck.ULong) (int, pqDerive, bool) {
		s, ok := mldsaSetOf(v)
		if !ok {
			return 0, nil, false
		}
		return mldsaSeedLen, func(seed []byte) (encoding.BinaryMarshaler, encoding.BinaryMarshaler) {
			pk, sk := s.scheme.DeriveKey(seed)
			return pk, sk
		}, true
	})
}

// signContext decodes the optional CK_SIGN_ADDITIONAL_CONTEXT of the pure
// ML-DSA and SLH-DSA mechanisms; randomized reports whether to hedge.
func signContext(m ck.MechanismType, param any) (ctx []byte, randomized bool, err error) {
	if noParam(m, param) == nil {
		return nil, true, nil
	}
	p, ok := paramAs[ck.SignAdditionalContext](param)
	if !ok {
		return nil, false, fmt.Errorf("%v: parameter %T: %w", m, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if len(p.Context) > 255 {
		return nil, false, fmt.Errorf("%v: context of %d bytes: %w", m, len(p.Context), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	switch p.Hedge {
	case ck.CKH_HEDGE_PREFERRED, ck.CKH_HEDGE_REQUIRED:
		randomized = true
	case ck.CKH_DETERMINISTIC_REQUIRED:
	default:
		return nil, false, fmt.Errorf("%v: hedge variant %d: %w", m, p.Hedge, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return append([]byte(nil), p.Context...), randomized, nil
}

func mldsaMaterial(k *Key) (*mldsaKey, error) {
	m, err := keyMaterial(k, parseMLDSA)
	if err != nil {
		return nil, err
	}
	mk, ok := m.(*mldsaKey)
	if !ok {
		return nil, fmt.Errorf("CKM_ML_DSA: key material %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return mk, nil
}

type mldsaSigner struct {
	key        *mldsaKey
	ctx        []byte
	randomized bool
	buf        []byte
}

func newMLDSASigner(k *Key, param any) (Signer, error) {
	mk, err := mldsaMaterial(k)
	if err != nil {
		return nil, err
	}
	if mk.priv == nil {
		return nil, fmt.Errorf("CKM_ML_DSA: signing needs a private key: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	ctx, rnd, err := signContext(ck.CKM_ML_DSA, param)
	if err != nil {
		return nil, err
	}
	return &mldsaSigner{key: mk, ctx: ctx, randomized: rnd}, nil
}

func (s *mldsaSigner) Len() int              { return s.key.set.sigLen }
func (s *mldsaSigner) Update(p []byte) error { s.buf = append(s.buf, p...); return nil }
func (s *mldsaSigner) Final() ([]byte, error) {
	b := s.buf
	s.buf = nil
	defer zero(b)
	return s.Sign(b)
}

func (s *mldsaSigner) Sign(data []byte) ([]byte, error) {
	sig := make([]byte, s.key.set.sigLen)
	if err := s.key.set.signTo(s.key.priv, data, s.ctx, s.randomized, sig); err != nil {
		return nil, fmt.Errorf("CKM_ML_DSA: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	return sig, nil
}

type mldsaVerifier struct {
	key *mldsaKey
	ctx []byte
}

func newMLDSAVerifier(k *Key, param any) (Verifier, error) {
	mk, err := mldsaMaterial(k)
	if err != nil {
		return nil, err
	}
	ctx, _, err := signContext(ck.CKM_ML_DSA, param)
	if err != nil {
		return nil, err
	}
	return &mldsaVerifier{key: mk, ctx: ctx}, nil
}

func (v *mldsaVerifier) Update([]byte) error {
	return fmt.Errorf("CKM_ML_DSA: multi-part verification: %w", ck.CKR_FUNCTION_NOT_SUPPORTED)
}

func (v *mldsaVerifier) Final([]byte) error {
	return fmt.Errorf("CKM_ML_DSA: multi-part verification: %w", ck.CKR_FUNCTION_NOT_SUPPORTED)
}

func (v *mldsaVerifier) Verify(data, sig []byte) error {
	if len(sig) != v.key.set.sigLen {
		return fmt.Errorf("CKM_ML_DSA: signature of %d bytes: %w", len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	if !v.key.set.verify(v.key.pub, data, v.ctx, sig) {
		return fmt.Errorf("CKM_ML_DSA: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}
