package conformance

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"

	"github.com/miekg/pkcs11"
)

const ecdhSpec = "3.0 curr: Elliptic curve Diffie-Hellman key derivation (CKM_ECDH1_DERIVE, CK_ECDH1_DERIVE_PARAMS)"

var ecdhSharedInfo = []byte("conformance ECDH shared info")

// ecdhPair is a token key pair for key agreement and its public value.
type ecdhPair struct {
	priv pkcs11.ObjectHandle
	pub  *ecdh.PublicKey
}

// ecdhKey generates a P-256 (CKM_EC_KEY_PAIR_GEN) or X25519
// (CKM_EC_MONTGOMERY_KEY_PAIR_GEN) pair whose private key has CKA_DERIVE.
func (t *T) ecdhKey(sh pkcs11.SessionHandle, curve ecdh.Curve, derive bool) ecdhPair {
	m, params, size := uint(pkcs11.CKM_EC_KEY_PAIR_GEN), p256OID, 65
	if curve == ecdh.X25519() {
		m, params, size = ckmECMontgomeryKeyPairGen, x25519OID, 32
	}
	pub, priv := t.pair(sh, m, nil,
		[]*pkcs11.Attribute{attr(pkcs11.CKA_EC_PARAMS, params), attr(pkcs11.CKA_DERIVE, true)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_DERIVE, derive)})
	raw := t.octets(t.getAttr(sh, pub, pkcs11.CKA_EC_POINT, "CKA_EC_POINT"), size, "CKA_EC_POINT")
	pk, err := curve.NewPublicKey(raw)
	if err != nil {
		t.failf("CKA_EC_POINT %x is not a %v public key: %v", raw, curve, err)
	}
	return ecdhPair{priv: priv, pub: pk}
}

// derive runs CKM_ECDH1_DERIVE of priv with the peer's public value and
// returns the derived secret's value.
func (t *T) ecdhDerive(sh pkcs11.SessionHandle, priv pkcs11.ObjectHandle, kdf uint, shared, peer []byte, n int) []byte {
	p := pkcs11.NewECDH1DeriveParams(kdf, shared, peer)
	h, err := t.s.ctx.DeriveKey(sh, mech(pkcs11.CKM_ECDH1_DERIVE, p), priv, derivedSecret(n))
	t.ok(err, "C_DeriveKey(CKM_ECDH1_DERIVE)")
	return t.getAttr(sh, h, pkcs11.CKA_VALUE, "derived CKA_VALUE")
}

// x963KDF is the ANSI X9.63 KDF behind CKD_SHA256_KDF (CK_EC_KDF_TYPE):
// SHA-256(Z || counter || sharedInfo), counter from 1, big-endian.
func x963KDF(z, info []byte, n int) []byte {
	var out []byte
	for c := uint32(1); len(out) < n; c++ {
		h := sha256.New()
		h.Write(z)
		h.Write(binary.BigEndian.AppendUint32(nil, c))
		h.Write(info)
		out = h.Sum(out)
	}
	return out[:n]
}

func ecdhChecks() []check {
	return []check{
		{id: "ecdh.p256.agree", spec: ecdhSpec + " (CKD_NULL: both parties derive the same key)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			sh := t.open(true)
			a, b := t.ecdhKey(sh, ecdh.P256(), true), t.ecdhKey(sh, ecdh.P256(), true)
			ka := t.ecdhDerive(sh, a.priv, ckdNull, nil, b.pub.Bytes(), 32)
			kb := t.ecdhDerive(sh, b.priv, ckdNull, nil, a.pub.Bytes(), 32)
			t.sameBytes(kb, ka, "the second party's derived key")
		}},
		{id: "ecdh.p256.interop", spec: ecdhSpec + " (CKD_NULL result equals crypto/ecdh)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			sh := t.open(true)
			a := t.ecdhKey(sh, ecdh.P256(), true)
			g, _ := ecdh.P256().GenerateKey(rand.Reader)
			want, err := g.ECDH(a.pub)
			if err != nil {
				t.failf("crypto/ecdh: %v", err)
			}
			t.sameBytes(t.ecdhDerive(sh, a.priv, ckdNull, nil, g.PublicKey().Bytes(), 32), want, "CKD_NULL shared secret")
		}},
		{id: "ecdh.p256.sha256-kdf", spec: ecdhSpec + " (CKD_SHA256_KDF: ANSI X9.63 KDF with shared data)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			sh := t.open(true)
			a := t.ecdhKey(sh, ecdh.P256(), true)
			g, _ := ecdh.P256().GenerateKey(rand.Reader)
			z, err := g.ECDH(a.pub)
			if err != nil {
				t.failf("crypto/ecdh: %v", err)
			}
			got := t.ecdhDerive(sh, a.priv, ckdSHA256KDF, ecdhSharedInfo, g.PublicKey().Bytes(), 40)
			t.sameBytes(got, x963KDF(z, ecdhSharedInfo, 40), "CKD_SHA256_KDF output (40 bytes: two hash blocks)")
		}},
		{id: "ecdh.derive-not-permitted", spec: ecdhSpec + "; base 5.18.5 C_DeriveKey, 4.8 CKA_DERIVE (CKR_KEY_FUNCTION_NOT_PERMITTED)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			sh := t.open(true)
			a, b := t.ecdhKey(sh, ecdh.P256(), false), t.ecdhKey(sh, ecdh.P256(), true)
			_, err := t.s.ctx.DeriveKey(sh, mech(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(ckdNull, nil, b.pub.Bytes())), a.priv, derivedSecret(32))
			t.expect(err, "C_DeriveKey with CKA_DERIVE=FALSE", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)
		}},
		{id: "ecdh.null-kdf-shared-data", spec: ecdhSpec + " (CKD_NULL requires no shared data: CKR_MECHANISM_PARAM_INVALID)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			sh := t.open(true)
			a, b := t.ecdhKey(sh, ecdh.P256(), true), t.ecdhKey(sh, ecdh.P256(), true)
			_, err := t.s.ctx.DeriveKey(sh, mech(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(ckdNull, ecdhSharedInfo, b.pub.Bytes())), a.priv, derivedSecret(32))
			t.expect(err, "C_DeriveKey with CKD_NULL and shared data", pkcs11.CKR_MECHANISM_PARAM_INVALID)
		}},
		{id: "ecdh.x25519.interop", spec: "3.0 curr: Montgomery EC key pair generation (CKM_EC_MONTGOMERY_KEY_PAIR_GEN), CKM_ECDH1_DERIVE (X25519, RFC 7748; equals crypto/ecdh)", mech: ckmECMontgomeryKeyPairGen, fn: func(t *T) {
			if !t.s.mechs[pkcs11.CKM_ECDH1_DERIVE] {
				t.skipf("CKM_ECDH1_DERIVE not in C_GetMechanismList")
			}
			sh := t.open(true)
			a, b := t.ecdhKey(sh, ecdh.X25519(), true), t.ecdhKey(sh, ecdh.X25519(), true)
			ka := t.ecdhDerive(sh, a.priv, ckdNull, nil, b.pub.Bytes(), 32)
			t.sameBytes(t.ecdhDerive(sh, b.priv, ckdNull, nil, a.pub.Bytes(), 32), ka, "the second party's X25519 key")
			g, _ := ecdh.X25519().GenerateKey(rand.Reader)
			want, err := g.ECDH(a.pub)
			if err != nil {
				t.failf("crypto/ecdh: %v", err)
			}
			t.sameBytes(t.ecdhDerive(sh, a.priv, ckdNull, nil, g.PublicKey().Bytes(), 32), want, "X25519 shared secret")
		}},
	}
}
