package mech

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Private keys travel through C_WrapKey / C_UnwrapKey as PKCS#8
// PrivateKeyInfo (RFC 5208; PKCS#11 3.0 §5.14 leaves the format to the
// mechanism, and PKCS#8 is what every client and SoftHSMv2 use). The DER is
// written here with encoding/asn1 rather than crypto/x509, which would pull
// the net package into the engine; the registry attaches the codecs to the
// key kinds they serve.

var (
	oidRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidEC     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidX25519 = asn1.ObjectIdentifier{1, 3, 101, 110}
)

// pkcs8 is PrivateKeyInfo (RFC 5208 §5).
type pkcs8 struct {
	Version    int
	Algo       pkixAlgorithm
	PrivateKey []byte
}

type pkixAlgorithm struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

// rsaPrivateKey is RSAPrivateKey (RFC 8017 A.1.2), two primes.
type rsaPrivateKey struct {
	Version               int
	N                     *big.Int
	E                     int
	D, P, Q, Dp, Dq, Qinv *big.Int
}

// ecPrivateKey is ECPrivateKey (RFC 5915 §3).
type ecPrivateKey struct {
	Version    int
	PrivateKey []byte
	Params     asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

func marshalPKCS8(algo asn1.ObjectIdentifier, params any, inner []byte) ([]byte, error) {
	a := pkixAlgorithm{Algorithm: algo}
	if params != nil {
		p, err := asn1.Marshal(params)
		if err != nil {
			return nil, err
		}
		a.Parameters = asn1.RawValue{FullBytes: p}
	}
	return asn1.Marshal(pkcs8{Algo: a, PrivateKey: inner})
}

// parsePKCS8 returns the algorithm, its raw parameters and the inner key.
func parsePKCS8(der []byte) (asn1.ObjectIdentifier, []byte, []byte, error) {
	var p pkcs8
	rest, err := asn1.Unmarshal(der, &p)
	if err != nil || len(rest) != 0 || p.Version != 0 {
		return nil, nil, nil, fmt.Errorf("pkcs8: not a PrivateKeyInfo: %w", ck.CKR_WRAPPED_KEY_INVALID)
	}
	return p.Algo.Algorithm, p.Algo.Parameters.FullBytes, p.PrivateKey, nil
}

type keyCodec struct {
	encode func(k *Key) ([]byte, error)
	decode func(der []byte) (attr.Template, error)
}

func pkcs8Codecs() map[ck.KeyType]keyCodec {
	return map[ck.KeyType]keyCodec{
		ck.CKK_RSA:           {encodePKCS8, decodeRSAPKCS8},
		ck.CKK_EC:            {encodePKCS8, decodeECPKCS8},
		ck.CKK_EC_MONTGOMERY: {encodePKCS8, decodeX25519PKCS8},
	}
}

func encodePKCS8(k *Key) ([]byte, error) {
	var der []byte
	var err error
	switch m := k.Material.(type) {
	case *rsa.PrivateKey:
		if len(m.Primes) != 2 {
			return nil, fmt.Errorf("RSA key without two primes: %w", ck.CKR_KEY_NOT_WRAPPABLE)
		}
		m.Precompute()
		var inner []byte
		inner, err = asn1.Marshal(rsaPrivateKey{N: m.N, E: m.E, D: m.D, P: m.Primes[0], Q: m.Primes[1],
			Dp: m.Precomputed.Dp, Dq: m.Precomputed.Dq, Qinv: m.Precomputed.Qinv})
		if err == nil {
			der, err = marshalPKCS8(oidRSA, asn1.NullRawValue, inner)
			zero(inner)
		}
	case *ecKey:
		if m.priv == nil {
			return nil, fmt.Errorf("EC key: %w", ck.CKR_KEY_NOT_WRAPPABLE)
		}
		var d, inner []byte
		if d, err = m.priv.Bytes(); err == nil {
			pub, _ := m.priv.PublicKey.Bytes()
			inner, err = asn1.Marshal(ecPrivateKey{Version: 1, PrivateKey: d,
				PublicKey: asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}})
			zero(d)
		}
		if err == nil {
			der, err = marshalPKCS8(oidEC, m.curve.oid, inner)
			zero(inner)
		}
	case *montKey:
		if m.priv == nil || m.curve.size != 32 {
			return nil, fmt.Errorf("%s keys cannot be wrapped: %w", m.curve.name, ck.CKR_KEY_NOT_WRAPPABLE)
		}
		var inner []byte
		if inner, err = asn1.Marshal(m.priv); err == nil {
			der, err = marshalPKCS8(oidX25519, nil, inner)
		}
	default:
		return nil, fmt.Errorf("key material %T: %w", k.Material, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs8: %v: %w", err, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	return der, nil
}

func decodeRSAPKCS8(der []byte) (attr.Template, error) {
	algo, _, inner, err := parsePKCS8(der)
	if err != nil {
		return nil, err
	}
	if !algo.Equal(oidRSA) {
		return nil, fmt.Errorf("pkcs8: algorithm %v is not RSA: %w", algo, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	var r rsaPrivateKey
	if rest, err := asn1.Unmarshal(inner, &r); err != nil || len(rest) != 0 || r.Version != 0 || r.N == nil {
		return nil, fmt.Errorf("pkcs8: not a two-prime RSAPrivateKey: %w", ck.CKR_WRAPPED_KEY_INVALID)
	}
	return attr.Template{
		{Type: ck.CKA_MODULUS, Value: r.N.Bytes()},
		{Type: ck.CKA_PUBLIC_EXPONENT, Value: bigBytes(int64(r.E))},
		{Type: ck.CKA_PRIVATE_EXPONENT, Value: r.D.Bytes()},
		{Type: ck.CKA_PRIME_1, Value: r.P.Bytes()},
		{Type: ck.CKA_PRIME_2, Value: r.Q.Bytes()},
		{Type: ck.CKA_EXPONENT_1, Value: r.Dp.Bytes()},
		{Type: ck.CKA_EXPONENT_2, Value: r.Dq.Bytes()},
		{Type: ck.CKA_COEFFICIENT, Value: r.Qinv.Bytes()},
	}, nil
}

func bigBytes(v int64) []byte {
	var out []byte
	for ; v > 0; v >>= 8 {
		out = append([]byte{byte(v)}, out...)
	}
	return out
}

func decodeECPKCS8(der []byte) (attr.Template, error) {
	algo, params, inner, err := parsePKCS8(der)
	if err != nil {
		return nil, err
	}
	if !algo.Equal(oidEC) {
		return nil, fmt.Errorf("pkcs8: algorithm %v is not EC: %w", algo, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	var e ecPrivateKey
	if rest, err := asn1.Unmarshal(inner, &e); err != nil || len(rest) != 0 || e.Version != 1 {
		return nil, fmt.Errorf("pkcs8: not an ECPrivateKey: %w", ck.CKR_WRAPPED_KEY_INVALID)
	}
	c, err := curveOf(params)
	if err != nil {
		return nil, err
	}
	if c.curve == nil || len(e.PrivateKey) != c.size {
		return nil, fmt.Errorf("pkcs8: EC key on %v: %w", c.oid, ck.CKR_WRAPPED_KEY_INVALID)
	}
	if _, err := ecdsa.ParseRawPrivateKey(c.curve, e.PrivateKey); err != nil {
		return nil, fmt.Errorf("pkcs8: %v: %w", err, ck.CKR_WRAPPED_KEY_INVALID)
	}
	return attr.Template{{Type: ck.CKA_EC_PARAMS, Value: append([]byte{}, params...)}, {Type: ck.CKA_VALUE, Value: e.PrivateKey}}, nil
}

func decodeX25519PKCS8(der []byte) (attr.Template, error) {
	algo, _, inner, err := parsePKCS8(der)
	if err != nil {
		return nil, err
	}
	if !algo.Equal(oidX25519) {
		return nil, fmt.Errorf("pkcs8: algorithm %v is not X25519: %w", algo, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	var d []byte
	if rest, err := asn1.Unmarshal(inner, &d); err != nil || len(rest) != 0 || len(d) != 32 {
		return nil, fmt.Errorf("pkcs8: not a CurvePrivateKey: %w", ck.CKR_WRAPPED_KEY_INVALID)
	}
	if _, err := ecdh.X25519().NewPrivateKey(d); err != nil {
		return nil, fmt.Errorf("pkcs8: %v: %w", err, ck.CKR_WRAPPED_KEY_INVALID)
	}
	oid, _ := asn1.Marshal(oidX25519)
	return attr.Template{{Type: ck.CKA_EC_PARAMS, Value: oid}, {Type: ck.CKA_VALUE, Value: d}}, nil
}
