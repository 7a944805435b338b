package mech

import (
	"bytes"
	"crypto/rand"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// secp256k1 (SEC 2 §2.4.1, OID 1.3.132.0.10) for the ECDSA mechanisms, as
// used by blockchain custody applications. Go's standard library has no
// such curve; github.com/decred/dcrd/dcrec/secp256k1/v4 is the maintained
// pure-Go implementation (also under btcec).
//
// Side channels: decred's field and scalar arithmetic is constant time,
// but its signing computes k·G with ScalarBaseMultNonConst and k⁻¹ with
// InverseValNonConst, both variable time in the nonce. Nonces are
// deterministic (RFC 6979), which removes RNG failures but not timing
// leakage; a local attacker able to time many signatures could mount a
// lattice attack on partial nonce leaks. The NIST curves stay on the
// constant-time crypto/ecdsa; prefer them where the curve is a choice.
//
// Signatures are r||s (32 bytes each). Signing yields low-S signatures
// (BIP 62), which every verifier accepts; verification accepts any s in
// [1, N-1], as ECDSA does.

// k1Key is the material of a secp256k1 key object.
type k1Key struct {
	priv *secp256k1.PrivateKey // nil for public keys
	pub  *secp256k1.PublicKey
}

func parseK1(class ck.ObjectClass, c *ecCurve, a attr.Template) (any, error) {
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
		// Uncompressed points only, as for the other curves
		// (CKF_EC_UNCOMPRESS); ParsePubKey checks the point is on the curve.
		if len(p) != 65 || p[0] != 4 {
			return nil, fmt.Errorf("CKK_EC: secp256k1 CKA_EC_POINT not an uncompressed point: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		pub, err := secp256k1.ParsePubKey(p)
		if err != nil {
			return nil, fmt.Errorf("CKK_EC: CKA_EC_POINT: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return &ecKey{curve: c, k1: &k1Key{pub: pub}}, nil
	case ck.CKO_PRIVATE_KEY:
		v, ok := a.Get(ck.CKA_VALUE)
		if !ok {
			return nil, fmt.Errorf("CKK_EC: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		v = bytes.TrimLeft(v, "\x00")
		if len(v) > 32 {
			return nil, fmt.Errorf("CKK_EC: CKA_VALUE too long: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		var d secp256k1.ModNScalar
		// SetByteSlice reduces mod N; a scalar that overflowed, or zero,
		// is not a private key.
		if overflow := d.SetByteSlice(v); overflow || d.IsZero() {
			return nil, fmt.Errorf("CKK_EC: secp256k1 CKA_VALUE out of range: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		priv := secp256k1.NewPrivateKey(&d)
		d.Zero()
		return &ecKey{curve: c, k1: &k1Key{priv: priv, pub: priv.PubKey()}}, nil
	}
	return nil, fmt.Errorf("CKK_EC: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
}

func generateK1() (d, q []byte, err error) {
	priv, err := secp256k1.GeneratePrivateKeyFromRand(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ec key gen: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	d = priv.Serialize()
	q = priv.PubKey().SerializeUncompressed()
	priv.Zero()
	return d, q, nil
}

// sign is ECDSA over a digest; decred truncates it to 256 bits as FIPS
// 186-4 §6.4 requires.
func (k *k1Key) sign(digest []byte) ([]byte, error) {
	sig := k1ecdsa.Sign(k.priv, digest)
	r, s := sig.R(), sig.S()
	out := make([]byte, 64)
	r.PutBytesUnchecked(out[:32])
	s.PutBytesUnchecked(out[32:])
	return out, nil
}

func (k *k1Key) verify(digest, sig []byte) error {
	if len(sig) != 64 {
		return fmt.Errorf("ecdsa verify: signature of %d bytes: %w", len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	var r, s secp256k1.ModNScalar
	if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) || r.IsZero() || s.IsZero() {
		return fmt.Errorf("ecdsa verify: r or s out of range: %w", ck.CKR_SIGNATURE_INVALID)
	}
	if !k1ecdsa.NewSignature(&r, &s).Verify(digest, k.pub) {
		return fmt.Errorf("ecdsa verify: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}
