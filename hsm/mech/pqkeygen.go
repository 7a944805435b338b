package mech

import (
	"crypto/rand"
	"encoding"
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The PKCS#11 3.2 post-quantum key pairs (ML-DSA, ML-KEM, SLH-DSA) are made
// the same way: the parameter set comes from the public template's
// CKA_PARAMETER_SET, the pair is derived from a fresh seed, the public key
// holds CKA_VALUE and the private key the expanded CKA_VALUE and, for
// ML-DSA and ML-KEM, CKA_SEED (3.2 §6.67.3, §6.68.3). An SLH-DSA private
// key has no CKA_SEED: its three seeds are the key itself.

// pqDerive derives a key pair from a seed of the set's length.
type pqDerive func(seed []byte) (pub, priv encoding.BinaryMarshaler)

// pqGenerate is the shared CKM_*_KEY_PAIR_GEN body; lookup maps a
// CKA_PARAMETER_SET value to the seed length and derivation of that set.
// The private key gets the seed as CKA_SEED.
func pqGenerate(name string, kt ck.KeyType, pubT, privT attr.Template, lookup func(ck.ULong) (int, pqDerive, bool)) (attr.Template, attr.Template, error) {
	return pqGenerateKeys(name, kt, pubT, privT, lookup, true)
}

// pqGenerateKeys is pqGenerate; keepSeed false leaves CKA_SEED out and
// wipes the seed once the pair is derived.
func pqGenerateKeys(name string, kt ck.KeyType, pubT, privT attr.Template, lookup func(ck.ULong) (int, pqDerive, bool), keepSeed bool) (attr.Template, attr.Template, error) {
	for _, t := range []attr.Template{pubT, privT} {
		if _, err := templateKeyType(t, kt); err != nil {
			return nil, nil, err
		}
	}
	v, ok, err := pubT.ULong(ck.CKA_PARAMETER_SET)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("%s key gen: CKA_PARAMETER_SET: %w", name, ck.CKR_TEMPLATE_INCOMPLETE)
	}
	seedLen, derive, ok := lookup(v)
	if !ok {
		return nil, nil, fmt.Errorf("%s key gen: parameter set %d: %w", name, v, ck.CKR_PARAMETER_SET_NOT_SUPPORTED)
	}
	seed := make([]byte, seedLen)
	if _, err := rand.Read(seed); err != nil {
		return nil, nil, fmt.Errorf("%s key gen: %v: %w", name, err, ck.CKR_FUNCTION_FAILED)
	}
	pk, sk := derive(seed)
	if !keepSeed {
		defer zero(seed)
	}
	pkb, err := pk.MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("%s key gen: %v: %w", name, err, ck.CKR_FUNCTION_FAILED)
	}
	skb, err := sk.MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("%s key gen: %v: %w", name, err, ck.CKR_FUNCTION_FAILED)
	}
	ps := attr.ULong(v)
	priv := attr.Template{
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(kt))},
		{Type: ck.CKA_PARAMETER_SET, Value: append([]byte(nil), ps...)},
	}
	if keepSeed {
		priv = append(priv, ck.Attribute{Type: ck.CKA_SEED, Value: seed})
	}
	return attr.Template{
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(kt))},
		{Type: ck.CKA_PARAMETER_SET, Value: ps},
		{Type: ck.CKA_VALUE, Value: pkb},
	}, append(priv, ck.Attribute{Type: ck.CKA_VALUE, Value: skb}), nil
}

// pqParamSet reads a post-quantum key's CKA_PARAMETER_SET and looks it up
// (kt names the key type in errors).
func pqParamSet[S any](kt string, a attr.Template, lookup func(ck.ULong) (*S, bool)) (*S, error) {
	v, ok, err := a.ULong(ck.CKA_PARAMETER_SET)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: CKA_PARAMETER_SET: %w", kt, ck.CKR_TEMPLATE_INCOMPLETE)
	}
	s, ok := lookup(v)
	if !ok {
		return nil, fmt.Errorf("%s: parameter set %d: %w", kt, v, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return s, nil
}

// pqSetOf finds the parameter set whose CKA_PARAMETER_SET value is v.
func pqSetOf[S any](sets []S, v ck.ULong, id func(*S) ck.ParameterSet) (*S, bool) {
	for i := range sets {
		if ck.ULong(id(&sets[i])) == v {
			return &sets[i], true
		}
	}
	return nil, false
}

// expandedValue is the Derived of the key kinds whose private key may be
// created from its seed alone (CKA_SEED, 3.2): such a key gets its expanded
// form as CKA_VALUE. priv returns the parsed private key, if m is one.
func expandedValue(kind string, priv func(m any) (encoding.BinaryMarshaler, bool)) func(ck.ObjectClass, attr.Template, any) (attr.Template, error) {
	return func(class ck.ObjectClass, a attr.Template, m any) (attr.Template, error) {
		k, ok := priv(m)
		if !ok || class != ck.CKO_PRIVATE_KEY {
			return nil, nil
		}
		if _, has := a.Get(ck.CKA_VALUE); has {
			return nil, nil
		}
		b, err := k.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", kind, err, ck.CKR_FUNCTION_FAILED)
		}
		return attr.Template{{Type: ck.CKA_VALUE, Value: b}}, nil
	}
}
