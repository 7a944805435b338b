package mech

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// ECDSA over the NIST prime curves P-256, P-384 and P-521 (PKCS#11 2.40
// Current Mechanisms, "Elliptic Curve"). Sizes are in bits. crypto/ecdsa's
// arithmetic for these curves is constant time, and its keys are safe for
// concurrent use, so the parsed key is the object's material.

type ecCurve struct {
	curve elliptic.Curve
	oid   asn1.ObjectIdentifier
	names []string // PrintableString spellings accepted in CKA_EC_PARAMS
	bits  int
	size  int // bytes of a coordinate or scalar
}

var ecCurves = []ecCurve{
	{elliptic.P256(), asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, []string{"prime256v1", "secp256r1", "P-256"}, 256, 32},
	{elliptic.P384(), asn1.ObjectIdentifier{1, 3, 132, 0, 34}, []string{"secp384r1", "P-384"}, 384, 48},
	{elliptic.P521(), asn1.ObjectIdentifier{1, 3, 132, 0, 35}, []string{"secp521r1", "P-521"}, 521, 66},
	// secp256k1 has no crypto/elliptic curve (nil here): secp256k1.go
	// implements its keys and signatures.
	{nil, asn1.ObjectIdentifier{1, 3, 132, 0, 10}, []string{"secp256k1"}, 256, 32},
	{elliptic.P224(), asn1.ObjectIdentifier{1, 3, 132, 0, 33}, []string{"secp224r1", "P-224"}, 224, 28},
}

// curveOf decodes CKA_EC_PARAMS: a DER OBJECT IDENTIFIER (namedCurve) or,
// as some clients send, a DER PrintableString with the curve's name.
// Malformed DER is CKR_ATTRIBUTE_VALUE_INVALID (CKR_DOMAIN_PARAMS_INVALID
// at generation); a well-formed but unknown curve CKR_CURVE_NOT_SUPPORTED.
func curveOf(params []byte) (*ecCurve, error) {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(params, &raw)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("CKA_EC_PARAMS: not one DER value: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	switch {
	case raw.Class == asn1.ClassUniversal && raw.Tag == asn1.TagOID:
		var oid asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(params, &oid); err != nil {
			return nil, fmt.Errorf("CKA_EC_PARAMS: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		for i := range ecCurves {
			if ecCurves[i].oid.Equal(oid) {
				return &ecCurves[i], nil
			}
		}
		return nil, fmt.Errorf("CKA_EC_PARAMS: curve %v: %w", oid, ck.CKR_CURVE_NOT_SUPPORTED)
	case raw.Class == asn1.ClassUniversal && raw.Tag == asn1.TagPrintableString:
		name := string(raw.Bytes)
		for i := range ecCurves {
			for _, n := range ecCurves[i].names {
				if n == name {
					return &ecCurves[i], nil
				}
			}
		}
		return nil, fmt.Errorf("CKA_EC_PARAMS: curve %q: %w", name, ck.CKR_CURVE_NOT_SUPPORTED)
	}
	// Explicit ECParameters and implicitlyCA are not supported
	// (CKF_EC_NAMEDCURVE only).
	return nil, fmt.Errorf("CKA_EC_PARAMS: only named curves: %w", ck.CKR_CURVE_NOT_SUPPORTED)
}

// ecPointDER wraps an uncompressed point as the DER OCTET STRING that
// CKA_EC_POINT holds (PKCS#11 2.40 "EC public key objects": "DER-encoding
// of ANSI X9.62 ECPoint value Q").
func ecPointDER(p []byte) []byte {
	b, _ := asn1.Marshal(p)
	return b
}

// ecPointRaw accepts CKA_EC_POINT both as the spec's DER OCTET STRING and as
// the bare uncompressed point that some clients (older OpenSC, several Java
// providers) send. The two cannot be confused: for every curve here the
// DER form is longer than 1+2*size bytes.
func ecPointRaw(c *ecCurve, v []byte) ([]byte, error) {
	if len(v) == 1+2*c.size && v[0] == 4 {
		return v, nil
	}
	var p []byte
	rest, err := asn1.Unmarshal(v, &p)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("CKA_EC_POINT: neither DER OCTET STRING nor raw point: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return p, nil
}

func ecMechanisms() []Mechanism {
	const ecFlags = ck.CKF_EC_F_P | ck.CKF_EC_NAMEDCURVE | ck.CKF_EC_UNCOMPRESS
	info := func(f ck.Flags) ck.MechanismInfo {
		return ck.MechanismInfo{MinKeySize: 224, MaxKeySize: 521, Flags: f | ecFlags}
	}
	kts := []ck.KeyType{ck.CKK_EC}
	ms := []Mechanism{{
		Type:            ck.CKM_EC_KEY_PAIR_GEN,
		Info:            info(ck.CKF_GENERATE_KEY_PAIR),
		GenerateKeyPair: generateEC,
	}}
	for _, e := range []struct {
		m ck.MechanismType
		h crypto.Hash
	}{
		{ck.CKM_ECDSA, 0}, {ck.CKM_ECDSA_SHA1, crypto.SHA1}, {ck.CKM_ECDSA_SHA224, crypto.SHA224},
		{ck.CKM_ECDSA_SHA256, crypto.SHA256}, {ck.CKM_ECDSA_SHA384, crypto.SHA384}, {ck.CKM_ECDSA_SHA512, crypto.SHA512},
	} {
		ms = append(ms, Mechanism{
			Type: e.m, Info: info(ck.CKF_SIGN | ck.CKF_VERIFY), KeyTypes: kts,
			Sign:   func(k *Key, param any) (Signer, error) { return ecdsaSigner(e.m, e.h, k, param) },
			Verify: func(k *Key, param any) (Verifier, error) { return ecdsaVerifier(e.m, e.h, k, param) },
		})
	}
	return ms
}

// ecdsaSigner builds the Signer of an ECDSA mechanism hashing with h (0
// for CKM_ECDSA) on any supported curve; the SHA-3 family shares it.
func ecdsaSigner(m ck.MechanismType, h crypto.Hash, k *Key, param any) (Signer, error) {
	if err := noParam(m, param); err != nil {
		return nil, err
	}
	mat, err := keyMaterial(k, parseEC)
	if err != nil {
		return nil, err
	}
	if ek, ok := mat.(*ecKey); ok && ek.k1 != nil {
		if ek.k1.priv == nil {
			return nil, fmt.Errorf("ecdsa: signing needs a private EC key: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		return newHashSigner(m.String(), h, 64, ek.k1.sign), nil
	}
	priv, c, err := ecPrivate(k)
	if err != nil {
		return nil, err
	}
	return newHashSigner(m.String(), h, 2*c.size, func(digest []byte) ([]byte, error) {
		return ecdsaSign(priv, c, digest)
	}), nil
}

func ecdsaVerifier(m ck.MechanismType, h crypto.Hash, k *Key, param any) (Verifier, error) {
	if err := noParam(m, param); err != nil {
		return nil, err
	}
	mat, err := keyMaterial(k, parseEC)
	if err != nil {
		return nil, err
	}
	if ek, ok := mat.(*ecKey); ok && ek.k1 != nil {
		return newHashVerifier(m.String(), h, ek.k1.verify), nil
	}
	pub, c, err := ecPublic(k)
	if err != nil {
		return nil, err
	}
	return newHashVerifier(m.String(), h, func(digest, sig []byte) error {
		return ecdsaVerify(pub, c, digest, sig)
	}), nil
}

// ecdsaSign signs a hash (truncated to the order's length by crypto/ecdsa,
// as FIPS 186-4 §6.4 requires) and returns r||s, each ceil(bits/8) bytes
// (PKCS#11 2.40 "ECDSA": the signature is r and s as octet strings of
// equal length).
func ecdsaSign(priv *ecdsa.PrivateKey, c *ecCurve, digest []byte) ([]byte, error) {
	r, s, err := ecdsa.Sign(rand.Reader, priv, digest)
	if err != nil {
		return nil, fmt.Errorf("ecdsa sign: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	sig := make([]byte, 2*c.size)
	r.FillBytes(sig[:c.size])
	s.FillBytes(sig[c.size:])
	return sig, nil
}

func ecdsaVerify(pub *ecdsa.PublicKey, c *ecCurve, digest, sig []byte) error {
	if len(sig) != 2*c.size {
		return fmt.Errorf("ecdsa verify: signature of %d bytes: %w", len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	r := new(big.Int).SetBytes(sig[:c.size])
	s := new(big.Int).SetBytes(sig[c.size:])
	if !ecdsa.Verify(pub, digest, r, s) {
		return fmt.Errorf("ecdsa verify: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

// ecKey is the material of an EC key object.
type ecKey struct {
	curve *ecCurve
	priv  *ecdsa.PrivateKey // nil for public keys
	pub   *ecdsa.PublicKey
	k1    *k1Key // secp256k1 keys only; priv and pub are then nil
}

func ecPrivate(k *Key) (*ecdsa.PrivateKey, *ecCurve, error) {
	m, err := keyMaterial(k, parseEC)
	if err != nil {
		return nil, nil, err
	}
	ek, ok := m.(*ecKey)
	if !ok || ek.priv == nil {
		return nil, nil, fmt.Errorf("ecdsa: signing needs a private EC key: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return ek.priv, ek.curve, nil
}

func ecPublic(k *Key) (*ecdsa.PublicKey, *ecCurve, error) {
	m, err := keyMaterial(k, parseEC)
	if err != nil {
		return nil, nil, err
	}
	ek, ok := m.(*ecKey)
	if !ok {
		return nil, nil, fmt.Errorf("ecdsa: key material %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return ek.pub, ek.curve, nil
}

func ecKeyKinds() []KeyKind {
	return []KeyKind{{
		Type:   ck.CKK_EC,
		pct:    signPCT(ck.CKM_ECDSA, nil), // pctMessage is 32 bytes: a digest
		Parse:  parseEC,
		Secret: []ck.AttributeType{ck.CKA_VALUE},
		Size: func(a attr.Template, m any) ck.ULong {
			if ek, ok := m.(*ecKey); ok {
				return ck.ULong(ek.curve.bits)
			}
			p, _ := a.Get(ck.CKA_EC_PARAMS)
			if c, err := curveOf(p); err == nil {
				return ck.ULong(c.bits)
			}
			return 0
		},
	}}
}

// parseEC builds an *ecKey: public keys from CKA_EC_PARAMS and CKA_EC_POINT,
// private keys from CKA_EC_PARAMS and the big-endian scalar CKA_VALUE.
func parseEC(class ck.ObjectClass, a attr.Template) (any, error) {
	params, ok := a.Get(ck.CKA_EC_PARAMS)
	if !ok {
		return nil, fmt.Errorf("CKK_EC: CKA_EC_PARAMS: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	c, err := curveOf(params)
	if err != nil {
		return nil, err
	}
	if c.curve == nil {
		return parseK1(class, c, a)
	}
	switch class {
	case ck.CKO_PUBLIC_KEY:
		v, ok := a.Get(ck.CKA_EC_POINT)
		if !ok {
			return nil, fmt.Errorf("CKK_EC: CKA_EC_POINT: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		p, err := ecPointRaw(c, v)
		if err != nil {
			return nil, err
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(c.curve, p)
		if err != nil {
			return nil, fmt.Errorf("CKK_EC: CKA_EC_POINT: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return &ecKey{curve: c, pub: pub}, nil
	case ck.CKO_PRIVATE_KEY:
		v, ok := a.Get(ck.CKA_VALUE)
		if !ok {
			return nil, fmt.Errorf("CKK_EC: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		// Big integers may arrive without leading zeros, or with extras.
		v = bytes.TrimLeft(v, "\x00")
		if len(v) > c.size {
			return nil, fmt.Errorf("CKK_EC: CKA_VALUE too long: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		d := make([]byte, c.size)
		copy(d[c.size-len(v):], v)
		priv, err := ecdsa.ParseRawPrivateKey(c.curve, d)
		zero(d)
		if err != nil {
			return nil, fmt.Errorf("CKK_EC: CKA_VALUE: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return &ecKey{curve: c, priv: priv, pub: &priv.PublicKey}, nil
	}
	return nil, fmt.Errorf("CKK_EC: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
}

// ecGenerateRaw makes a key on c: the big-endian scalar and the
// uncompressed point.
func ecGenerateRaw(c *ecCurve) (d, q []byte, err error) {
	if c.curve == nil {
		return generateK1()
	}
	priv, err := ecdsa.GenerateKey(c.curve, rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ec key gen: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	if d, err = priv.Bytes(); err != nil {
		return nil, nil, fmt.Errorf("ec key gen: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	if q, err = priv.PublicKey.Bytes(); err != nil {
		return nil, nil, fmt.Errorf("ec key gen: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	return d, q, nil
}

// generateEC implements CKM_EC_KEY_PAIR_GEN. CKA_EC_PARAMS comes from the
// public template and is stored on both keys exactly as the caller gave it.
func generateEC(pubT, privT attr.Template) (attr.Template, attr.Template, error) {
	params, ok := pubT.Get(ck.CKA_EC_PARAMS)
	if !ok {
		if params, ok = privT.Get(ck.CKA_EC_PARAMS); !ok {
			return nil, nil, fmt.Errorf("ec key gen: CKA_EC_PARAMS: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
	}
	c, err := curveOf(params)
	if err != nil {
		if errors.Is(err, ck.CKR_ATTRIBUTE_VALUE_INVALID) {
			return nil, nil, fmt.Errorf("ec key gen: %v: %w", err, ck.CKR_DOMAIN_PARAMS_INVALID)
		}
		return nil, nil, err
	}
	for _, t := range []attr.Template{pubT, privT} {
		if _, err := templateKeyType(t, ck.CKK_EC); err != nil {
			return nil, nil, err
		}
	}
	d, q, err := ecGenerateRaw(c)
	if err != nil {
		return nil, nil, err
	}
	kt := attr.ULong(ck.ULong(ck.CKK_EC))
	p := append([]byte(nil), params...)
	return attr.Template{
			{Type: ck.CKA_KEY_TYPE, Value: kt},
			{Type: ck.CKA_EC_PARAMS, Value: p},
			{Type: ck.CKA_EC_POINT, Value: ecPointDER(q)},
		}, attr.Template{
			{Type: ck.CKA_KEY_TYPE, Value: kt},
			{Type: ck.CKA_EC_PARAMS, Value: append([]byte(nil), p...)},
			{Type: ck.CKA_VALUE, Value: d},
		}, nil
}
