package mech

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/asn1"
	"fmt"

	"github.com/cloudflare/circl/dh/x448"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Montgomery curves X25519 and X448 (RFC 7748) for key agreement:
// CKM_EC_MONTGOMERY_KEY_PAIR_GEN and CKK_EC_MONTGOMERY (PKCS#11 3.0
// mechanisms §2.3.5, §2.3.7), used with CKM_ECDH1_DERIVE (ecdh.go).
// CKA_EC_PARAMS is the curve's OID (RFC 8410) or its printable name;
// CKA_EC_POINT the DER OCTET STRING of the u-coordinate (a raw one is
// accepted too); a private key's CKA_VALUE is the RFC 7748 scalar. X25519 is
// Go's crypto/ecdh; X448 is github.com/cloudflare/circl/dh/x448.

type montCurve struct {
	name  string
	oid   asn1.ObjectIdentifier
	names []string
	size  int
	bits  ck.ULong
}

var montCurves = []montCurve{
	{"X25519", asn1.ObjectIdentifier{1, 3, 101, 110}, []string{"curve25519", "X25519"}, 32, 255},
	{"X448", asn1.ObjectIdentifier{1, 3, 101, 111}, []string{"curve448", "X448"}, 56, 448},
}

// montKey is the material of a CKK_EC_MONTGOMERY key.
type montKey struct {
	curve *montCurve
	priv  []byte // nil for public keys
	pub   []byte
}

func montCurveOf(params []byte) (*montCurve, error) {
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params, &oid); err == nil && len(rest) == 0 {
		for i := range montCurves {
			if montCurves[i].oid.Equal(oid) {
				return &montCurves[i], nil
			}
		}
		return nil, fmt.Errorf("CKA_EC_PARAMS %v: %w", oid, ck.CKR_CURVE_NOT_SUPPORTED)
	}
	var name string
	if rest, err := asn1.Unmarshal(params, &name); err == nil && len(rest) == 0 {
		for i := range montCurves {
			for _, n := range montCurves[i].names {
				if n == name {
					return &montCurves[i], nil
				}
			}
		}
		return nil, fmt.Errorf("CKA_EC_PARAMS %q: %w", name, ck.CKR_CURVE_NOT_SUPPORTED)
	}
	return nil, fmt.Errorf("CKA_EC_PARAMS: not one DER value: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

// montPublic computes the public u-coordinate of a private scalar.
func montPublic(c *montCurve, priv []byte) ([]byte, error) {
	if c.size == 32 {
		k, err := ecdh.X25519().NewPrivateKey(priv)
		if err != nil {
			return nil, err
		}
		return k.PublicKey().Bytes(), nil
	}
	var pub, sk x448.Key
	copy(sk[:], priv)
	x448.KeyGen(&pub, &sk)
	return append([]byte{}, pub[:]...), nil
}

func parseMontgomery(class ck.ObjectClass, a attr.Template) (any, error) {
	params, ok := a.Get(ck.CKA_EC_PARAMS)
	if !ok {
		return nil, fmt.Errorf("CKK_EC_MONTGOMERY: CKA_EC_PARAMS: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	c, err := montCurveOf(params)
	if err != nil {
		return nil, err
	}
	switch class {
	case ck.CKO_PUBLIC_KEY:
		v, ok := a.Get(ck.CKA_EC_POINT)
		if !ok {
			return nil, fmt.Errorf("CKK_EC_MONTGOMERY: CKA_EC_POINT: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		u, err := montPoint(c, v)
		if err != nil {
			return nil, err
		}
		return &montKey{curve: c, pub: u}, nil
	case ck.CKO_PRIVATE_KEY:
		v, ok := a.Get(ck.CKA_VALUE)
		if !ok {
			return nil, fmt.Errorf("CKK_EC_MONTGOMERY: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		if len(v) != c.size {
			return nil, fmt.Errorf("CKK_EC_MONTGOMERY: CKA_VALUE of %d bytes: %w", len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		pub, err := montPublic(c, v)
		if err != nil {
			return nil, fmt.Errorf("CKK_EC_MONTGOMERY: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return &montKey{curve: c, priv: append([]byte{}, v...), pub: pub}, nil
	}
	return nil, fmt.Errorf("CKK_EC_MONTGOMERY: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
}

// montPoint accepts the u-coordinate raw or as a DER OCTET STRING.
func montPoint(c *montCurve, v []byte) ([]byte, error) {
	if len(v) == c.size {
		return append([]byte{}, v...), nil
	}
	var u []byte
	if rest, err := asn1.Unmarshal(v, &u); err == nil && len(rest) == 0 && len(u) == c.size {
		return u, nil
	}
	return nil, fmt.Errorf("CKK_EC_MONTGOMERY: point of %d bytes: %w", len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

func montgomeryKeyKinds() []KeyKind {
	return []KeyKind{{
		Type:   ck.CKK_EC_MONTGOMERY,
		pct:    publicPCT(montPublicOf),
		Parse:  parseMontgomery,
		Secret: []ck.AttributeType{ck.CKA_VALUE},
		Size: func(a attr.Template, m any) ck.ULong {
			if k, ok := m.(*montKey); ok {
				return k.curve.bits
			}
			return 0
		},
	}}
}

func montgomeryMechanisms() []Mechanism {
	return []Mechanism{{
		Type: ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
		Info: ck.MechanismInfo{MinKeySize: 255, MaxKeySize: 448, Flags: ck.CKF_GENERATE_KEY_PAIR},
		GenerateKeyPair: func(pubT, privT attr.Template) (attr.Template, attr.Template, error) {
			for _, t := range []attr.Template{pubT, privT} {
				if _, err := templateKeyType(t, ck.CKK_EC_MONTGOMERY); err != nil {
					return nil, nil, err
				}
			}
			params, ok := pubT.Get(ck.CKA_EC_PARAMS)
			if !ok {
				return nil, nil, fmt.Errorf("montgomery key gen: CKA_EC_PARAMS: %w", ck.CKR_TEMPLATE_INCOMPLETE)
			}
			c, err := montCurveOf(params)
			if err != nil {
				return nil, nil, err
			}
			priv := make([]byte, c.size)
			if _, err := rand.Read(priv); err != nil {
				return nil, nil, fmt.Errorf("montgomery key gen: %v: %w", err, ck.CKR_FUNCTION_FAILED)
			}
			pub, err := montPublic(c, priv)
			if err != nil {
				return nil, nil, fmt.Errorf("montgomery key gen: %v: %w", err, ck.CKR_FUNCTION_FAILED)
			}
			point, _ := asn1.Marshal(pub)
			kt := attr.ULong(ck.ULong(ck.CKK_EC_MONTGOMERY))
			return attr.Template{
					{Type: ck.CKA_KEY_TYPE, Value: kt},
					{Type: ck.CKA_EC_POINT, Value: point},
				}, attr.Template{
					{Type: ck.CKA_KEY_TYPE, Value: kt},
					{Type: ck.CKA_EC_PARAMS, Value: append([]byte{}, params...)},
					{Type: ck.CKA_VALUE, Value: priv},
				}, nil
		},
	}}
}

// montgomeryECDH is X25519/X448 with the peer's u-coordinate. An all-zero
// result (a low-order peer point) is refused, as RFC 7748 §6 advises.
func montgomeryECDH(base *Key, peer []byte) ([]byte, error) {
	m, err := keyMaterial(base, parseMontgomery)
	if err != nil {
		return nil, err
	}
	k, ok := m.(*montKey)
	if !ok || k.priv == nil {
		return nil, fmt.Errorf("ecdh: montgomery private key needed: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	u, err := montPoint(k.curve, peer)
	if err != nil {
		return nil, fmt.Errorf("ecdh: peer value: %w", ck.CKR_MECHANISM_PARAM_INVALID)
	}
	var z []byte
	if k.curve.size == 32 {
		sk, err := ecdh.X25519().NewPrivateKey(k.priv)
		if err != nil {
			return nil, fmt.Errorf("ecdh: %v: %w", err, ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		pk, err := ecdh.X25519().NewPublicKey(u)
		if err != nil {
			return nil, fmt.Errorf("ecdh: peer value: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
		if z, err = sk.ECDH(pk); err != nil {
			return nil, fmt.Errorf("ecdh: low-order peer value: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
		return z, nil
	}
	var out, sk, pk x448.Key
	copy(sk[:], k.priv)
	copy(pk[:], u)
	if !x448.Shared(&out, &sk, &pk) || bytes.Equal(out[:], make([]byte, 56)) {
		return nil, fmt.Errorf("ecdh: low-order peer value: %w", ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return append([]byte{}, out[:]...), nil
}

// montPublicOf is the u-coordinate a parsed key holds; a private key's was
// recomputed from its scalar when it was parsed (parseMontgomery).
func montPublicOf(k *Key) ([]byte, bool) {
	m, ok := k.Material.(*montKey)
	if !ok {
		return nil, false
	}
	return m.pub, true
}
