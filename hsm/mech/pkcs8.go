package mech

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Private keys travel through C_WrapKey / C_UnwrapKey as PKCS#8
// PrivateKeyInfo (RFC 5208; PKCS#11 3.0 §5.14 leaves the format to the
// mechanism, and PKCS#8 is what every client and SoftHSMv2 use). The codecs
// are crypto/x509's; the registry attaches them to the key kinds they serve.

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
	var key any
	switch m := k.Material.(type) {
	case *rsa.PrivateKey:
		if len(m.Primes) < 2 {
			return nil, fmt.Errorf("RSA key without its primes: %w", ck.CKR_KEY_NOT_WRAPPABLE)
		}
		key = m
	case *ecKey:
		if m.priv == nil {
			return nil, fmt.Errorf("EC key: %w", ck.CKR_KEY_NOT_WRAPPABLE)
		}
		key = m.priv
	case *montKey:
		if m.priv == nil || m.curve.size != 32 {
			return nil, fmt.Errorf("%s keys cannot be wrapped: %w", m.curve.name, ck.CKR_KEY_NOT_WRAPPABLE)
		}
		sk, err := ecdh.X25519().NewPrivateKey(m.priv)
		if err != nil {
			return nil, fmt.Errorf("X25519: %v: %w", err, ck.CKR_KEY_NOT_WRAPPABLE)
		}
		key = sk
	default:
		return nil, fmt.Errorf("key material %T: %w", k.Material, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pkcs8: %v: %w", err, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	return der, nil
}

func decodeRSAPKCS8(der []byte) (attr.Template, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("pkcs8: %v: %w", err, ck.CKR_WRAPPED_KEY_INVALID)
	}
	r, ok := k.(*rsa.PrivateKey)
	if !ok || len(r.Primes) != 2 {
		return nil, fmt.Errorf("pkcs8: %T is not a two-prime RSA key: %w", k, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	r.Precompute()
	return attr.Template{
		{Type: ck.CKA_MODULUS, Value: r.N.Bytes()},
		{Type: ck.CKA_PUBLIC_EXPONENT, Value: bigBytes(int64(r.E))},
		{Type: ck.CKA_PRIVATE_EXPONENT, Value: r.D.Bytes()},
		{Type: ck.CKA_PRIME_1, Value: r.Primes[0].Bytes()},
		{Type: ck.CKA_PRIME_2, Value: r.Primes[1].Bytes()},
		{Type: ck.CKA_EXPONENT_1, Value: r.Precomputed.Dp.Bytes()},
		{Type: ck.CKA_EXPONENT_2, Value: r.Precomputed.Dq.Bytes()},
		{Type: ck.CKA_COEFFICIENT, Value: r.Precomputed.Qinv.Bytes()},
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
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("pkcs8: %v: %w", err, ck.CKR_WRAPPED_KEY_INVALID)
	}
	e, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pkcs8: %T is not an EC key: %w", k, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	for i := range ecCurves {
		c := &ecCurves[i]
		if c.curve != nil && c.curve == e.Curve {
			oid, _ := asn1.Marshal(c.oid)
			d, err := e.Bytes()
			if err != nil {
				return nil, fmt.Errorf("pkcs8: %v: %w", err, ck.CKR_WRAPPED_KEY_INVALID)
			}
			return attr.Template{{Type: ck.CKA_EC_PARAMS, Value: oid}, {Type: ck.CKA_VALUE, Value: d}}, nil
		}
	}
	return nil, fmt.Errorf("pkcs8: curve %s: %w", e.Curve.Params().Name, ck.CKR_CURVE_NOT_SUPPORTED)
}

func decodeX25519PKCS8(der []byte) (attr.Template, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("pkcs8: %v: %w", err, ck.CKR_WRAPPED_KEY_INVALID)
	}
	x, ok := k.(*ecdh.PrivateKey)
	if !ok || x.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("pkcs8: %T is not an X25519 key: %w", k, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	oid, _ := asn1.Marshal(montCurves[0].oid)
	return attr.Template{{Type: ck.CKA_EC_PARAMS, Value: oid}, {Type: ck.CKA_VALUE, Value: x.Bytes()}}, nil
}
