package mech

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding"
	"fmt"

	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
	"github.com/cloudflare/circl/kem/mlkem/mlkem768"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// ML-KEM (FIPS 203) with the PKCS#11 3.2 values: CKM_ML_KEM_KEY_PAIR_GEN and
// CKM_ML_KEM for C_EncapsulateKey / C_DecapsulateKey, on
// github.com/cloudflare/circl (measured 2.6x faster here than crypto/mlkem).
//
// Keys (3.2 "ML-KEM public/private key objects"): CKA_PARAMETER_SET is
// CKP_ML_KEM_512/768/1024. A public key's CKA_VALUE is the encapsulation key
// ek. A private key's CKA_VALUE is the expanded decapsulation key dk
// (1632/2400/3168 bytes) and its CKA_SEED the 64-byte d||z of
// ML-KEM.KeyGen; generation sets both, as the spec says the mechanism
// contributes. C_CreateObject needs at least one: with only the seed the
// token derives CKA_VALUE, with both they must agree, and a dk alone must
// pass the FIPS 203 §7.3 hash check. A public ek must pass the §7.2 modulus
// check (circl's unpacking enforces both).
//
// Decapsulation of a forged ciphertext is not an error: FIPS 203 implicit
// rejection returns J(z||c), a secret the other side cannot share, so the
// mismatch shows only when the keys are used.

type mlkemSet struct {
	set    ck.ParameterSet
	name   string
	scheme kem.Scheme
}

var mlkemSets = []mlkemSet{
	{ck.CKP_ML_KEM_512, "ML-KEM-512", mlkem512.Scheme()},
	{ck.CKP_ML_KEM_768, "ML-KEM-768", mlkem768.Scheme()},
	{ck.CKP_ML_KEM_1024, "ML-KEM-1024", mlkem1024.Scheme()},
}

// mlkemSeedLen is |d||z|.
const mlkemSeedLen = 64

func mlkemSetOf(v ck.ULong) (*mlkemSet, bool) {
	return pqSetOf(mlkemSets, v, func(s *mlkemSet) ck.ParameterSet { return s.set })
}

// mlkemKey is the material of a CKK_ML_KEM object.
type mlkemKey struct {
	set  *mlkemSet
	pub  kem.PublicKey
	priv kem.PrivateKey // nil for public keys
}

func mlkemParamSet(a attr.Template) (*mlkemSet, error) {
	return pqParamSet("CKK_ML_KEM", a, mlkemSetOf)
}

func parseMLKEM(class ck.ObjectClass, a attr.Template) (any, error) {
	s, err := mlkemParamSet(a)
	if err != nil {
		return nil, err
	}
	switch class {
	case ck.CKO_PUBLIC_KEY:
		v, ok := a.Get(ck.CKA_VALUE)
		if !ok {
			return nil, fmt.Errorf("CKK_ML_KEM: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		if len(v) != s.scheme.PublicKeySize() {
			return nil, fmt.Errorf("CKK_ML_KEM: %s public key of %d bytes: %w", s.name, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		pk, err := s.scheme.UnmarshalBinaryPublicKey(v)
		if err != nil {
			return nil, fmt.Errorf("CKK_ML_KEM: CKA_VALUE: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return &mlkemKey{set: s, pub: pk}, nil
	case ck.CKO_PRIVATE_KEY:
		seed, hasSeed := a.Get(ck.CKA_SEED)
		v, hasValue := a.Get(ck.CKA_VALUE)
		var pk kem.PublicKey
		var sk kem.PrivateKey
		switch {
		case hasSeed:
			if len(seed) != mlkemSeedLen {
				return nil, fmt.Errorf("CKK_ML_KEM: CKA_SEED of %d bytes: %w", len(seed), ck.CKR_ATTRIBUTE_VALUE_INVALID)
			}
			pk, sk = s.scheme.DeriveKeyPair(seed)
			if hasValue {
				b, err := sk.MarshalBinary()
				if err != nil {
					return nil, fmt.Errorf("CKK_ML_KEM: %v: %w", err, ck.CKR_FUNCTION_FAILED)
				}
				same := subtle.ConstantTimeCompare(b, v)
				zero(b)
				if same != 1 {
					return nil, fmt.Errorf("CKK_ML_KEM: CKA_VALUE does not match CKA_SEED: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
				}
			}
		case hasValue:
			if len(v) != s.scheme.PrivateKeySize() {
				return nil, fmt.Errorf("CKK_ML_KEM: %s private key of %d bytes: %w", s.name, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
			}
			var err error
			if sk, err = s.scheme.UnmarshalBinaryPrivateKey(v); err != nil {
				return nil, fmt.Errorf("CKK_ML_KEM: CKA_VALUE: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
			}
			pk = sk.Public()
		default:
			return nil, fmt.Errorf("CKK_ML_KEM: CKA_SEED or CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		return &mlkemKey{set: s, pub: pk, priv: sk}, nil
	}
	return nil, fmt.Errorf("CKK_ML_KEM: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
}

func mlkemKeyKinds() []KeyKind {
	return []KeyKind{{
		Type:  ck.CKK_ML_KEM,
		pct:   kemPCT(ck.CKM_ML_KEM),
		Parse: parseMLKEM,
		// A private key created from its seed alone gets its expanded form.
		Derived: expandedValue("CKK_ML_KEM", func(m any) (encoding.BinaryMarshaler, bool) {
			k, ok := m.(*mlkemKey)
			if !ok || k.priv == nil {
				return nil, false
			}
			return k.priv, true
		}),
		Secret: []ck.AttributeType{ck.CKA_VALUE, ck.CKA_SEED},
		// CK_MECHANISM_INFO sizes for ML-KEM are public key bytes (3.2).
		Size: func(a attr.Template, m any) ck.ULong {
			if k, ok := m.(*mlkemKey); ok {
				return ck.ULong(k.set.scheme.PublicKeySize())
			}
			if s, err := mlkemParamSet(a); err == nil {
				return ck.ULong(s.scheme.PublicKeySize())
			}
			return 0
		},
	}}
}

func mlkemMechanisms() []Mechanism {
	info := func(f ck.Flags) ck.MechanismInfo {
		return ck.MechanismInfo{MinKeySize: mlkem512.PublicKeySize, MaxKeySize: mlkem1024.PublicKeySize, Flags: f}
	}
	return []Mechanism{{
		Type:            ck.CKM_ML_KEM_KEY_PAIR_GEN,
		Info:            info(ck.CKF_GENERATE_KEY_PAIR),
		GenerateKeyPair: generateMLKEM,
	}, {
		Type: ck.CKM_ML_KEM, Info: info(ck.CKF_ENCAPSULATE | ck.CKF_DECAPSULATE), KeyTypes: []ck.KeyType{ck.CKK_ML_KEM},
		Encapsulate:   mlkemEncapsulate,
		Decapsulate:   mlkemDecapsulate,
		CiphertextLen: mlkemCiphertextLen,
	}}
}

func generateMLKEM(pubT, privT attr.Template) (attr.Template, attr.Template, error) {
	return pqGenerate("ml-kem", ck.CKK_ML_KEM, pubT, privT, func(v ck.ULong) (int, pqDerive, bool) {
		s, ok := mlkemSetOf(v)
		if !ok {
			return 0, nil, false
		}
		return mlkemSeedLen, func(seed []byte) (encoding.BinaryMarshaler, encoding.BinaryMarshaler) {
			pk, sk := s.scheme.DeriveKeyPair(seed)
			return pk, sk
		}, true
	})
}

func mlkemMaterial(k *Key) (*mlkemKey, error) {
	m, err := keyMaterial(k, parseMLKEM)
	if err != nil {
		return nil, err
	}
	mk, ok := m.(*mlkemKey)
	if !ok {
		return nil, fmt.Errorf("CKM_ML_KEM: key material %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return mk, nil
}

func mlkemCiphertextLen(pub *Key) (int, error) {
	mk, err := mlkemMaterial(pub)
	if err != nil {
		return 0, err
	}
	return mk.set.scheme.CiphertextSize(), nil
}

// mlkemEncapsulate is ML-KEM.Encaps (FIPS 203 Algorithm 20), the 32-byte
// m drawn from crypto/rand here (circl would allocate it) and the
// ciphertext written where the caller wants it.
func mlkemEncapsulate(pub *Key, param any, ct []byte) ([]byte, error) {
	if err := noParam(ck.CKM_ML_KEM, param); err != nil {
		return nil, err
	}
	mk, err := mlkemMaterial(pub)
	if err != nil {
		return nil, err
	}
	if n := mk.set.scheme.CiphertextSize(); len(ct) != n {
		return nil, fmt.Errorf("CKM_ML_KEM: %d-byte ciphertext buffer for %d bytes: %w", len(ct), n, ck.CKR_BUFFER_TOO_SMALL)
	}
	var m [32]byte
	defer clear(m[:])
	if _, err := rand.Read(m[:]); err != nil {
		return nil, fmt.Errorf("CKM_ML_KEM: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	ss := make([]byte, mk.set.scheme.SharedKeySize())
	// Concrete calls, so that m stays on the stack.
	switch pk := mk.pub.(type) {
	case *mlkem512.PublicKey:
		pk.EncapsulateTo(ct, ss, m[:])
	case *mlkem768.PublicKey:
		pk.EncapsulateTo(ct, ss, m[:])
	case *mlkem1024.PublicKey:
		pk.EncapsulateTo(ct, ss, m[:])
	default:
		return nil, fmt.Errorf("CKM_ML_KEM: public key %T: %w", mk.pub, ck.CKR_FUNCTION_FAILED)
	}
	return ss, nil
}

// mlkemDecapsulate is ML-KEM.Decaps (FIPS 203 Algorithm 21). Only the
// ciphertext length is checked (§7.3 input check); a wrong ciphertext of the
// right length gives the implicit-rejection secret.
func mlkemDecapsulate(priv *Key, param any, ct []byte) ([]byte, error) {
	if err := noParam(ck.CKM_ML_KEM, param); err != nil {
		return nil, err
	}
	mk, err := mlkemMaterial(priv)
	if err != nil {
		return nil, err
	}
	if mk.priv == nil {
		return nil, fmt.Errorf("CKM_ML_KEM: decapsulation needs a private key: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	if len(ct) != mk.set.scheme.CiphertextSize() {
		return nil, fmt.Errorf("CKM_ML_KEM: %s ciphertext of %d bytes: %w", mk.set.name, len(ct), ck.CKR_WRAPPED_KEY_LEN_RANGE)
	}
	ss, err := mk.set.scheme.Decapsulate(mk.priv, ct)
	if err != nil {
		return nil, fmt.Errorf("CKM_ML_KEM: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	return ss, nil
}
