package mech

import (
	"crypto/ecdh"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// ECDH key derivation (PKCS#11 3.0 mechanisms §2.3.15-16): CKM_ECDH1_DERIVE
// and CKM_ECDH1_COFACTOR_DERIVE on the NIST curves (cofactor 1, so both are
// the same computation) and on X25519/X448 keys (CKK_EC_MONTGOMERY, §2.3.5).
// The KDFs are CKD_NULL and the ANSI X9.63 KDFs CKD_SHA*_KDF.

func ecdhMechanisms() []Mechanism {
	info := ck.MechanismInfo{MinKeySize: 224, MaxKeySize: 521, Flags: ck.CKF_DERIVE | ck.CKF_EC_F_P | ck.CKF_EC_NAMEDCURVE | ck.CKF_EC_UNCOMPRESS}
	kts := []ck.KeyType{ck.CKK_EC, ck.CKK_EC_MONTGOMERY}
	return []Mechanism{
		{Type: ck.CKM_ECDH1_DERIVE, Info: info, KeyTypes: kts, Derive: ecdhDerive},
		{Type: ck.CKM_ECDH1_COFACTOR_DERIVE, Info: info, KeyTypes: kts, Derive: ecdhDerive},
	}
}

func ecdhDerive(base *Key, param any, t attr.Template) (attr.Template, error) {
	p, ok := paramAs[ck.ECDH1DeriveParams](param)
	if !ok {
		return nil, fmt.Errorf("ecdh: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	z, err := ecdhSecret(base, p.PublicData)
	if err != nil {
		return nil, err
	}
	defer zero(z)
	n, err := derivedLen(t)
	if err != nil {
		return nil, err
	}
	var v []byte
	if p.KDF == ck.CKD_NULL {
		// §2.3.15: with CKD_NULL there is no shared data and the secret is
		// used as is; a shorter key takes its leading bytes.
		if len(p.SharedData) != 0 {
			return nil, fmt.Errorf("ecdh: shared data with CKD_NULL: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
		if n == 0 {
			n = len(z)
		}
		if n > len(z) {
			return nil, fmt.Errorf("ecdh: %d-byte key from a %d-byte secret: %w", n, len(z), ck.CKR_TEMPLATE_INCONSISTENT)
		}
		v = append([]byte{}, z[:n]...)
	} else {
		h, ok := x963Hash(p.KDF)
		if !ok {
			return nil, fmt.Errorf("ecdh: KDF %d: %w", p.KDF, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		if n == 0 {
			n = h().Size()
		}
		v = x963KDF(h, z, p.SharedData, n)
	}
	return attr.Template{{Type: ck.CKA_VALUE, Value: v}}, nil
}

// derivedLen is the key length the template asks for: CKA_VALUE_LEN, or the
// fixed length of the key type, or 0 when the mechanism decides.
func derivedLen(t attr.Template) (int, error) {
	n, ok, err := t.ULong(ck.CKA_VALUE_LEN)
	if err != nil {
		return 0, err
	}
	kt, hasKT, err := t.ULong(ck.CKA_KEY_TYPE)
	if err != nil {
		return 0, err
	}
	switch {
	case ok && (n == 0 || n > 1<<16):
		return 0, fmt.Errorf("derive: CKA_VALUE_LEN %d: %w", n, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	case ok:
		return int(n), nil
	case hasKT && ck.KeyType(kt) == ck.CKK_DES3:
		return 24, nil
	case hasKT && ck.KeyType(kt) != ck.CKK_GENERIC_SECRET:
		return 0, fmt.Errorf("derive: %v key needs CKA_VALUE_LEN: %w", ck.KeyType(kt), ck.CKR_TEMPLATE_INCOMPLETE)
	}
	return 0, nil
}

// ecdhSecret computes Z with the base private key and the peer's public
// value, given raw or as a DER OCTET STRING (clients do both).
func ecdhSecret(base *Key, pub []byte) ([]byte, error) {
	if base.Class != ck.CKO_PRIVATE_KEY {
		return nil, fmt.Errorf("ecdh: base key is %v: %w", base.Class, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	var priv *ecdh.PrivateKey
	switch base.Type {
	case ck.CKK_EC:
		m, err := keyMaterial(base, parseEC)
		if err != nil {
			return nil, err
		}
		ek, ok := m.(*ecKey)
		if !ok || ek.priv == nil {
			return nil, fmt.Errorf("ecdh: secp256k1 keys sign only: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		if priv, err = ek.priv.ECDH(); err != nil {
			return nil, fmt.Errorf("ecdh: %v: %w", err, ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		raw, err := ecPointRaw(ek.curve, pub)
		if err != nil {
			return nil, fmt.Errorf("ecdh: peer point: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
		peer, err := priv.Curve().NewPublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("ecdh: peer point not on the curve: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
		z, err := priv.ECDH(peer)
		if err != nil {
			return nil, fmt.Errorf("ecdh: %v: %w", err, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		return z, nil
	case ck.CKK_EC_MONTGOMERY:
		return montgomeryECDH(base, pub)
	}
	return nil, fmt.Errorf("ecdh: key type %v: %w", base.Type, ck.CKR_KEY_TYPE_INCONSISTENT)
}

func x963Hash(kdf ck.EC_KDF) (func() hash.Hash, bool) {
	switch kdf {
	case ck.CKD_SHA1_KDF:
		return sha1.New, true
	case ck.CKD_SHA224_KDF:
		return sha256.New224, true
	case ck.CKD_SHA256_KDF:
		return sha256.New, true
	case ck.CKD_SHA384_KDF:
		return sha512.New384, true
	case ck.CKD_SHA512_KDF:
		return sha512.New, true
	}
	return nil, false
}

// x963KDF is ANSI X9.63 §3.6.1 (SEC 1 §3.6.1): Hash(Z || counter || info)
// for counter = 1, 2, ... until n bytes.
func x963KDF(h func() hash.Hash, z, info []byte, n int) []byte {
	out := make([]byte, 0, n+64)
	var ctr [4]byte
	for i := uint32(1); len(out) < n; i++ {
		d := h()
		binary.BigEndian.PutUint32(ctr[:], i)
		d.Write(z)
		d.Write(ctr[:])
		d.Write(info)
		out = d.Sum(out)
	}
	return out[:n]
}
