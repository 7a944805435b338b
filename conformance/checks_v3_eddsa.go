package conformance

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/miekg/pkcs11"
)

const eddsaSpec = "3.0 curr 2.3.14 CKM_EDDSA"

var eddsaMsg = []byte("PKCS#11 conformance: EdDSA signs the message itself (RFC 8032)")

// edPair is an Edwards key pair and its raw public key.
type edPair struct {
	pub, priv pkcs11.ObjectHandle
	raw       []byte
}

// edwards generates an Edwards key pair on the curve named by params
// (3.0 curr CKM_EC_EDWARDS_KEY_PAIR_GEN) and reads its public key.
func (t *T) edwards(sh pkcs11.SessionHandle, params []byte, size int) edPair {
	pub, priv := t.pair(sh, ckmECEdwardsKeyPairGen, nil,
		[]*pkcs11.Attribute{attr(pkcs11.CKA_EC_PARAMS, params), attr(pkcs11.CKA_VERIFY, true)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_SIGN, true)})
	for _, h := range []pkcs11.ObjectHandle{pub, priv} {
		if kt := t.getULong(sh, h, pkcs11.CKA_KEY_TYPE, "CKA_KEY_TYPE"); kt != ckkECEdwards {
			t.failf("CKA_KEY_TYPE 0x%x, want CKK_EC_EDWARDS (0x40)", kt)
		}
	}
	raw := t.octets(t.getAttr(sh, pub, pkcs11.CKA_EC_POINT, "CKA_EC_POINT"), size, "CKA_EC_POINT")
	return edPair{pub: pub, priv: priv, raw: raw}
}

// eddsaParams lays out CK_EDDSA_PARAMS {phFlag, ulContextDataLen,
// pContextData} (3.0 curr 2.3.14).
func eddsaParams(m *cmem, ph bool, ctx []byte) []byte {
	return cat(bbool8(ph), ulong(uint64(len(ctx))), ptr(m.bytes(ctx)))
}

func (t *T) edSign(sh pkcs11.SessionHandle, k edPair, param any, msg []byte) []byte {
	t.ok(t.s.ctx.SignInit(sh, mech(ckmEdDSA, param), k.priv), "C_SignInit(CKM_EDDSA)")
	sig, err := t.s.ctx.Sign(sh, msg)
	t.ok(err, "C_Sign(CKM_EDDSA)")
	return sig
}

func (t *T) edVerify(sh pkcs11.SessionHandle, k edPair, param any, msg, sig []byte) error {
	t.ok(t.s.ctx.VerifyInit(sh, mech(ckmEdDSA, param), k.pub), "C_VerifyInit(CKM_EDDSA)")
	return t.s.ctx.Verify(sh, msg, sig)
}

// goVerify25519 checks an Ed25519 (pure, ctx or ph) signature with Go.
func (t *T) goVerify25519(k edPair, msg, sig []byte, opts *ed25519.Options) {
	if len(sig) != ed25519.SignatureSize {
		t.failf("Ed25519 signature of %d bytes, want 64", len(sig))
	}
	in := msg
	if opts.Hash == crypto.SHA512 {
		h := sha512.Sum512(msg)
		in = h[:]
	}
	if err := ed25519.VerifyWithOptions(ed25519.PublicKey(k.raw), in, sig, opts); err != nil {
		t.failf("crypto/ed25519 rejects the module's signature (hash %v, context %q): %v", opts.Hash, opts.Context, err)
	}
}

func eddsaChecks() []check {
	ctx := []byte("conformance")
	return []check{
		{id: "eddsa.ed25519.keygen-oid", spec: "3.0 curr: Edwards EC key pair generation (CKM_EC_EDWARDS_KEY_PAIR_GEN), CKA_EC_PARAMS as the id-Ed25519 OID", mech: ckmECEdwardsKeyPairGen, fn: func(t *T) {
			sh := t.open(true)
			k := t.edwards(sh, ed25519OID, ed25519.PublicKeySize)
			// The private key carries the curve too; either encoding
			// (OID or curve name) names it.
			if p := t.getAttr(sh, k.priv, pkcs11.CKA_EC_PARAMS, "private CKA_EC_PARAMS"); !bytes.Equal(p, ed25519OID) && !bytes.Equal(p, edwards25519Name) {
				t.failf("private key CKA_EC_PARAMS %x names no Ed25519 curve (want %x or %x)", p, ed25519OID, edwards25519Name)
			}
		}},
		{id: "eddsa.ed25519.keygen-curve-name", spec: "3.0 curr: Edwards EC key pair generation, CKA_EC_PARAMS as PrintableString \"edwards25519\"", mech: ckmECEdwardsKeyPairGen, fn: func(t *T) {
			sh := t.open(true)
			k := t.edwards(sh, edwards25519Name, ed25519.PublicKeySize)
			t.goVerify25519(k, eddsaMsg, t.edSign(sh, k, nil, eddsaMsg), &ed25519.Options{})
		}},
		{id: "eddsa.ed25519.interop", spec: eddsaSpec + " (pure Ed25519, no parameter; verified with crypto/ed25519)", mech: ckmEdDSA, fn: func(t *T) {
			sh := t.open(true)
			k := t.edwards(sh, ed25519OID, ed25519.PublicKeySize)
			t.goVerify25519(k, eddsaMsg, t.edSign(sh, k, nil, eddsaMsg), &ed25519.Options{})
		}},
		{id: "eddsa.ed25519.roundtrip", spec: eddsaSpec + "; base 5.15.2 C_Verify", mech: ckmEdDSA, fn: func(t *T) {
			sh := t.open(true)
			k := t.edwards(sh, ed25519OID, ed25519.PublicKeySize)
			t.ok(t.edVerify(sh, k, nil, eddsaMsg, t.edSign(sh, k, nil, eddsaMsg)), "C_Verify of the module's own signature")
		}},
		{id: "eddsa.ed25519.deterministic", spec: eddsaSpec + " (RFC 8032 5.1.6: signing is deterministic)", mech: ckmEdDSA, fn: func(t *T) {
			sh := t.open(true)
			k := t.edwards(sh, ed25519OID, ed25519.PublicKeySize)
			a, b := t.edSign(sh, k, nil, eddsaMsg), t.edSign(sh, k, nil, eddsaMsg)
			t.sameBytes(b, a, "second Ed25519 signature of the same message")
		}},
		{id: "eddsa.ed25519.tampered", spec: eddsaSpec + "; base 5.15.2 C_Verify (CKR_SIGNATURE_INVALID)", mech: ckmEdDSA, fn: func(t *T) {
			sh := t.open(true)
			k := t.edwards(sh, ed25519OID, ed25519.PublicKeySize)
			sig := t.edSign(sh, k, nil, eddsaMsg)
			sig[10] ^= 0x01
			t.expect(t.edVerify(sh, k, nil, eddsaMsg, sig), "C_Verify of a corrupted Ed25519 signature", pkcs11.CKR_SIGNATURE_INVALID)
		}},
		{id: "eddsa.ed25519.wrong-message", spec: eddsaSpec + "; base 5.15.2 C_Verify (CKR_SIGNATURE_INVALID)", mech: ckmEdDSA, fn: func(t *T) {
			sh := t.open(true)
			k := t.edwards(sh, ed25519OID, ed25519.PublicKeySize)
			sig := t.edSign(sh, k, nil, eddsaMsg)
			t.expect(t.edVerify(sh, k, nil, append([]byte("x"), eddsaMsg...), sig), "C_Verify against another message", pkcs11.CKR_SIGNATURE_INVALID)
		}},
		{id: "eddsa.ed25519ph.interop", spec: eddsaSpec + " (CK_EDDSA_PARAMS phFlag=TRUE with context: Ed25519ph, RFC 8032 5.1)", mech: ckmEdDSA, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			k := t.edwards(sh, ed25519OID, ed25519.PublicKeySize)
			p := eddsaParams(&m, true, ctx)
			sig := t.edSign(sh, k, p, eddsaMsg)
			t.goVerify25519(k, eddsaMsg, sig, &ed25519.Options{Hash: crypto.SHA512, Context: string(ctx)})
			t.ok(t.edVerify(sh, k, p, eddsaMsg, sig), "C_Verify(Ed25519ph)")
		}},
		{id: "eddsa.ed25519ctx.interop", spec: eddsaSpec + " (CK_EDDSA_PARAMS phFlag=FALSE with context: Ed25519ctx, RFC 8032 5.1)", mech: ckmEdDSA, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			k := t.edwards(sh, ed25519OID, ed25519.PublicKeySize)
			p := eddsaParams(&m, false, ctx)
			sig := t.edSign(sh, k, p, eddsaMsg)
			t.goVerify25519(k, eddsaMsg, sig, &ed25519.Options{Context: string(ctx)})
			t.expect(t.edVerify(sh, k, nil, eddsaMsg, sig), "C_Verify of an Ed25519ctx signature as pure Ed25519", pkcs11.CKR_SIGNATURE_INVALID)
		}},
		{id: "eddsa.ed448.interop", spec: eddsaSpec + " (Ed448 with an empty context; verified with circl ed448)", mech: ckmEdDSA, fn: func(t *T) {
			sh := t.open(true)
			k := t.edwards(sh, ed448OID, ed448.PublicKeySize)
			sig := t.edSign(sh, k, nil, eddsaMsg)
			if len(sig) != ed448.SignatureSize || !ed448.Verify(ed448.PublicKey(k.raw), eddsaMsg, sig, "") {
				t.failf("circl ed448 rejects the module's %d-byte signature", len(sig))
			}
			t.ok(t.edVerify(sh, k, nil, eddsaMsg, sig), "C_Verify(Ed448)")
			sig[0] ^= 0x80
			t.expect(t.edVerify(sh, k, nil, eddsaMsg, sig), "C_Verify of a corrupted Ed448 signature", pkcs11.CKR_SIGNATURE_INVALID)
		}},
	}
}
