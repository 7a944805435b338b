package conformance

import (
	"crypto"
	"crypto/sha256"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/slhdsa"
	"github.com/miekg/pkcs11"
)

// Pre-hash ML-DSA and SLH-DSA (PKCS#11 3.2 "HashML-DSA" and "HashSLH-DSA";
// FIPS 204 §5.4, FIPS 205 §10.2) through the C ABI: the combined
// mechanisms with CK_SIGN_ADDITIONAL_CONTEXT, single- and multi-part, and
// the digest-taking CKM_HASH_ML_DSA / CKM_HASH_SLH_DSA with
// CK_HASH_SIGN_ADDITIONAL_CONTEXT {hedgeVariant, pContext, ulContextLen,
// hash}. HashSLH-DSA signatures are checked with circl's own pre-hash
// verifier; circl has no public HashML-DSA, so HashML-DSA is checked for
// agreement between the two mechanisms and against pure ML-DSA.

const (
	hashMLDSASpec  = "3.2: HashML-DSA (CKM_HASH_ML_DSA*, FIPS 204 §5.4)"
	hashSLHDSASpec = "3.2: HashSLH-DSA (CKM_HASH_SLH_DSA*, FIPS 205 §10.2)"

	ckmHashMLDSA        = 0x1F
	ckmHashMLDSASHA256  = 0x24
	ckmSLHDSAKeyPairGen = 0x2D
	ckmSLHDSA           = 0x2E
	ckmHashSLHDSA       = 0x34
	ckmHashSLHDSASHA256 = 0x37

	ckkSLHDSA          = 0x4B
	ckpSLHDSASHA2_128F = 3

	ckhDeterministicRequired = 2
)

var hashSignMsg = []byte("PKCS#11 conformance: the token hashes this message before signing it")

// hashCtxParams lays out CK_SIGN_ADDITIONAL_CONTEXT with a hedge variant.
func hashCtxParams(m *cmem, hedge uint64, ctx []byte) []byte {
	return cat(ulong(hedge), ptr(m.bytes(ctx)), ulong(uint64(len(ctx))))
}

// hashSignParams lays out CK_HASH_SIGN_ADDITIONAL_CONTEXT {hedgeVariant,
// pContext, ulContextLen, hash} (3.2).
func hashSignParams(m *cmem, hedge uint64, ctx []byte, hash uint) []byte {
	return cat(ulong(hedge), ptr(m.bytes(ctx)), ulong(uint64(len(ctx))), ulong(uint64(hash)))
}

func (t *T) signWith(sh pkcs11.SessionHandle, mt uint, param []byte, key pkcs11.ObjectHandle, data []byte, what string) []byte {
	t.ok(t.s.ctx.SignInit(sh, mech(mt, param), key), "C_SignInit("+what+")")
	sig, err := t.s.ctx.Sign(sh, data)
	t.ok(err, "C_Sign("+what+")")
	return sig
}

func (t *T) signParts(sh pkcs11.SessionHandle, mt uint, param []byte, key pkcs11.ObjectHandle, data []byte, what string) []byte {
	t.ok(t.s.ctx.SignInit(sh, mech(mt, param), key), "C_SignInit("+what+")")
	t.ok(t.s.ctx.SignUpdate(sh, data[:11]), "C_SignUpdate("+what+")")
	t.ok(t.s.ctx.SignUpdate(sh, data[11:]), "C_SignUpdate("+what+")")
	sig, err := t.s.ctx.SignFinal(sh)
	t.ok(err, "C_SignFinal("+what+")")
	return sig
}

func (t *T) verifyWith(sh pkcs11.SessionHandle, mt uint, param []byte, key pkcs11.ObjectHandle, data, sig []byte, what string) error {
	t.ok(t.s.ctx.VerifyInit(sh, mech(mt, param), key), "C_VerifyInit("+what+")")
	return t.s.ctx.Verify(sh, data, sig)
}

func (t *T) slhdsaPair(sh pkcs11.SessionHandle) (pub, priv pkcs11.ObjectHandle, pk *slhdsa.PublicKey) {
	pub, priv = t.pair(sh, ckmSLHDSAKeyPairGen, nil,
		[]*pkcs11.Attribute{attr(ckaParameterSet, ckpSLHDSASHA2_128F), attr(pkcs11.CKA_VERIFY, true)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_SIGN, true)})
	if kt := t.getULong(sh, pub, pkcs11.CKA_KEY_TYPE, "CKA_KEY_TYPE"); kt != ckkSLHDSA {
		t.failf("CKA_KEY_TYPE 0x%x, want CKK_SLH_DSA (0x4B)", kt)
	}
	v := t.getAttr(sh, pub, pkcs11.CKA_VALUE, "SLH-DSA public CKA_VALUE")
	pk = &slhdsa.PublicKey{ID: slhdsa.SHA2_128f}
	if err := pk.UnmarshalBinary(v); err != nil {
		t.failf("public CKA_VALUE of %d bytes is no SLH-DSA-SHA2-128f public key: %v", len(v), err)
	}
	return pub, priv, pk
}

// circlHashSLHDSAVerify is HashSLH-DSA-SHA256 verification by circl.
func circlHashSLHDSAVerify(pk *slhdsa.PublicKey, msg, sig, ctx []byte) bool {
	ph, err := slhdsa.NewPreHashWithHash(crypto.SHA256)
	if err != nil {
		return false
	}
	ph.Write(msg)
	m, err := ph.BuildMessage()
	return err == nil && slhdsa.Verify(pk, m, sig, ctx)
}

func hashSignChecks() []check {
	digest := sha256.Sum256(hashSignMsg)
	ctx := []byte("conformance pre-hash context")
	return []check{
		{id: "hashmldsa.65.sha256", spec: hashMLDSASpec + ": CKM_HASH_ML_DSA_SHA256 single- and multi-part agree (deterministic), verify, context binds", mech: ckmHashMLDSASHA256, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			k := t.mldsa(sh)
			det := hashCtxParams(&m, ckhDeterministicRequired, ctx)
			sig := t.signWith(sh, ckmHashMLDSASHA256, det, k.priv, hashSignMsg, "CKM_HASH_ML_DSA_SHA256")
			if len(sig) != mldsa65.SignatureSize {
				t.failf("signature of %d bytes, want %d", len(sig), mldsa65.SignatureSize)
			}
			t.sameBytes(t.signParts(sh, ckmHashMLDSASHA256, det, k.priv, hashSignMsg, "CKM_HASH_ML_DSA_SHA256 multi-part"), sig, "multi-part deterministic signature")
			t.ok(t.verifyWith(sh, ckmHashMLDSASHA256, det, k.pub, hashSignMsg, sig, "CKM_HASH_ML_DSA_SHA256"), "C_Verify(CKM_HASH_ML_DSA_SHA256)")
			t.ok(t.s.ctx.VerifyInit(sh, mech(ckmHashMLDSASHA256, det), k.pub), "C_VerifyInit")
			t.ok(t.s.ctx.VerifyUpdate(sh, hashSignMsg[:5]), "C_VerifyUpdate")
			t.ok(t.s.ctx.VerifyUpdate(sh, hashSignMsg[5:]), "C_VerifyUpdate")
			t.ok(t.s.ctx.VerifyFinal(sh, sig), "C_VerifyFinal(CKM_HASH_ML_DSA_SHA256)")
			t.expect(t.verifyWith(sh, ckmHashMLDSASHA256, nil, k.pub, hashSignMsg, sig, "no context"),
				"C_Verify without the signing context", pkcs11.CKR_SIGNATURE_INVALID)
			// HashML-DSA is not pure ML-DSA: neither the module nor circl
			// may accept it as a pure signature of the message or digest.
			if mldsa65.Verify(k.pk, hashSignMsg, ctx, sig) || mldsa65.Verify(k.pk, digest[:], ctx, sig) {
				t.failf("circl accepts the HashML-DSA signature as pure ML-DSA")
			}
			t.expect(t.verifyWith(sh, ckmMLDSA, hashCtxParams(&m, ckhHedgePreferred, ctx), k.pub, hashSignMsg, sig, "CKM_ML_DSA"),
				"C_Verify(CKM_ML_DSA) of a HashML-DSA signature", pkcs11.CKR_SIGNATURE_INVALID)
		}},
		{id: "hashmldsa.65.digest", spec: hashMLDSASpec + ": CKM_HASH_ML_DSA with CK_HASH_SIGN_ADDITIONAL_CONTEXT (hash CKM_SHA256) equals CKM_HASH_ML_DSA_SHA256; digest length checked", mech: ckmHashMLDSA, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			k := t.mldsa(sh)
			gen := hashSignParams(&m, ckhDeterministicRequired, ctx, pkcs11.CKM_SHA256)
			sig := t.signWith(sh, ckmHashMLDSA, gen, k.priv, digest[:], "CKM_HASH_ML_DSA")
			want := t.signWith(sh, ckmHashMLDSASHA256, hashCtxParams(&m, ckhDeterministicRequired, ctx), k.priv, hashSignMsg, "CKM_HASH_ML_DSA_SHA256")
			t.sameBytes(sig, want, "CKM_HASH_ML_DSA signature of SHA-256(M)")
			t.ok(t.verifyWith(sh, ckmHashMLDSA, gen, k.pub, digest[:], sig, "CKM_HASH_ML_DSA"), "C_Verify(CKM_HASH_ML_DSA)")
			t.ok(t.s.ctx.SignInit(sh, mech(ckmHashMLDSA, gen), k.priv), "C_SignInit(CKM_HASH_ML_DSA)")
			_, err := t.s.ctx.Sign(sh, digest[:31])
			t.expect(err, "C_Sign(CKM_HASH_ML_DSA) of a 31-byte SHA-256 digest", pkcs11.CKR_DATA_LEN_RANGE)
		}},
		{id: "hashslhdsa.128f.sha256", spec: hashSLHDSASpec + ": CKM_HASH_SLH_DSA_SHA256 with context, single- and multi-part (verified with circl's pre-hash SLH-DSA)", mech: ckmHashSLHDSASHA256, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			pub, priv, pk := t.slhdsaPair(sh)
			hedged := hashCtxParams(&m, ckhHedgePreferred, ctx)
			sig := t.signWith(sh, ckmHashSLHDSASHA256, hedged, priv, hashSignMsg, "CKM_HASH_SLH_DSA_SHA256")
			if !circlHashSLHDSAVerify(pk, hashSignMsg, sig, ctx) {
				t.failf("circl rejects the module's HashSLH-DSA-SHA256 signature (%d bytes)", len(sig))
			}
			multi := t.signParts(sh, ckmHashSLHDSASHA256, hedged, priv, hashSignMsg, "CKM_HASH_SLH_DSA_SHA256 multi-part")
			if !circlHashSLHDSAVerify(pk, hashSignMsg, multi, ctx) {
				t.failf("circl rejects the module's multi-part HashSLH-DSA-SHA256 signature")
			}
			t.ok(t.verifyWith(sh, ckmHashSLHDSASHA256, hedged, pub, hashSignMsg, sig, "CKM_HASH_SLH_DSA_SHA256"), "C_Verify(CKM_HASH_SLH_DSA_SHA256)")
			t.expect(t.verifyWith(sh, ckmSLHDSA, hedged, pub, hashSignMsg, sig, "CKM_SLH_DSA"),
				"C_Verify(CKM_SLH_DSA) of a HashSLH-DSA signature", pkcs11.CKR_SIGNATURE_INVALID)
			sig[40] ^= 0x10
			t.expect(t.verifyWith(sh, ckmHashSLHDSASHA256, hedged, pub, hashSignMsg, sig, "tampered"),
				"C_Verify of a corrupted signature", pkcs11.CKR_SIGNATURE_INVALID)
		}},
		{id: "hashslhdsa.128f.digest", spec: hashSLHDSASpec + ": CKM_HASH_SLH_DSA with CK_HASH_SIGN_ADDITIONAL_CONTEXT (hash CKM_SHA256; verified with circl); digest length checked", mech: ckmHashSLHDSA, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			pub, priv, pk := t.slhdsaPair(sh)
			gen := hashSignParams(&m, ckhDeterministicRequired, ctx, pkcs11.CKM_SHA256)
			sig := t.signWith(sh, ckmHashSLHDSA, gen, priv, digest[:], "CKM_HASH_SLH_DSA")
			if !circlHashSLHDSAVerify(pk, hashSignMsg, sig, ctx) {
				t.failf("circl rejects the module's CKM_HASH_SLH_DSA signature of SHA-256(M)")
			}
			want := t.signWith(sh, ckmHashSLHDSASHA256, hashCtxParams(&m, ckhDeterministicRequired, ctx), priv, hashSignMsg, "CKM_HASH_SLH_DSA_SHA256")
			t.sameBytes(sig, want, "deterministic CKM_HASH_SLH_DSA signature")
			t.ok(t.verifyWith(sh, ckmHashSLHDSA, gen, pub, digest[:], sig, "CKM_HASH_SLH_DSA"), "C_Verify(CKM_HASH_SLH_DSA)")
			t.ok(t.s.ctx.SignInit(sh, mech(ckmHashSLHDSA, gen), priv), "C_SignInit(CKM_HASH_SLH_DSA)")
			_, err := t.s.ctx.Sign(sh, hashSignMsg)
			t.expect(err, "C_Sign(CKM_HASH_SLH_DSA) of a message instead of a SHA-256 digest", pkcs11.CKR_DATA_LEN_RANGE)
		}},
	}
}
