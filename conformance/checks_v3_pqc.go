package conformance

import (
	"crypto/mlkem"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/miekg/pkcs11"
)

const (
	mldsaSpec = "3.2: ML-DSA (CKM_ML_DSA, FIPS 204)"
	mlkemSpec = "3.2: ML-KEM (CKM_ML_KEM, FIPS 203); C_EncapsulateKey/C_DecapsulateKey"
)

var mldsaMsg = []byte("PKCS#11 conformance: ML-DSA-65 signs the message itself")

type mldsaPair struct {
	pub, priv pkcs11.ObjectHandle
	pk        *mldsa65.PublicKey
}

// mldsa generates an ML-DSA-65 pair (CKA_PARAMETER_SET in the public
// template, 3.2 ML-DSA key pair generation) and decodes its public key.
func (t *T) mldsa(sh pkcs11.SessionHandle) mldsaPair {
	pub, priv := t.pair(sh, ckmMLDSAKeyPairGen, nil,
		[]*pkcs11.Attribute{attr(ckaParameterSet, ckpMLDSA65), attr(pkcs11.CKA_VERIFY, true)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_SIGN, true)})
	v := t.getAttr(sh, pub, pkcs11.CKA_VALUE, "ML-DSA public CKA_VALUE")
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(v); err != nil {
		t.failf("public CKA_VALUE of %d bytes is no ML-DSA-65 public key (want %d): %v", len(v), mldsa65.PublicKeySize, err)
	}
	return mldsaPair{pub: pub, priv: priv, pk: &pk}
}

// signCtxParams lays out CK_SIGN_ADDITIONAL_CONTEXT {hedgeVariant,
// pContext, ulContextLen} (3.2).
func signCtxParams(m *cmem, ctx []byte) []byte {
	return cat(ulong(ckhHedgePreferred), ptr(m.bytes(ctx)), ulong(uint64(len(ctx))))
}

func (t *T) mldsaSign(sh pkcs11.SessionHandle, k mldsaPair, param any) []byte {
	t.ok(t.s.ctx.SignInit(sh, mech(ckmMLDSA, param), k.priv), "C_SignInit(CKM_ML_DSA)")
	sig, err := t.s.ctx.Sign(sh, mldsaMsg)
	t.ok(err, "C_Sign(CKM_ML_DSA)")
	return sig
}

// kemTable is the 3.2 function table; a module that lists CKM_ML_KEM must
// offer it, since C_EncapsulateKey exists nowhere else.
func (t *T) kemTable() *cflist3 {
	f := t.s.raw.table3("PKCS 11", 3, 2)
	if f == nil {
		t.failf("CKM_ML_KEM is listed but C_GetInterface(\"PKCS 11\", {3,2}) yields no function table")
	}
	return f
}

var kemSecretTemplate = []*pkcs11.Attribute{
	attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
	attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_TOKEN, false),
	attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_ENCRYPT, true),
}

func (t *T) mlkem(sh pkcs11.SessionHandle) (pub, priv pkcs11.ObjectHandle, ek []byte) {
	pub, priv = t.pair(sh, ckmMLKEMKeyPairGen, nil,
		[]*pkcs11.Attribute{attr(ckaParameterSet, ckpMLKEM768), attr(ckaEncapsulate, true)},
		[]*pkcs11.Attribute{attr(ckaDecapsulate, true)})
	for _, h := range []pkcs11.ObjectHandle{pub, priv} {
		if kt := t.getULong(sh, h, pkcs11.CKA_KEY_TYPE, "CKA_KEY_TYPE"); kt != ckkMLKEM {
			t.failf("CKA_KEY_TYPE 0x%x, want CKK_ML_KEM (0x49)", kt)
		}
	}
	return pub, priv, t.getAttr(sh, pub, pkcs11.CKA_VALUE, "ML-KEM public CKA_VALUE")
}

func pqcChecks() []check {
	return []check{
		{id: "mldsa.65.keygen", spec: mldsaSpec + " key pair generation (CKA_PARAMETER_SET CKP_ML_DSA_65, CKK_ML_DSA)", mech: ckmMLDSAKeyPairGen, fn: func(t *T) {
			sh := t.open(true)
			k := t.mldsa(sh)
			for _, h := range []pkcs11.ObjectHandle{k.pub, k.priv} {
				if kt := t.getULong(sh, h, pkcs11.CKA_KEY_TYPE, "CKA_KEY_TYPE"); kt != ckkMLDSA {
					t.failf("CKA_KEY_TYPE 0x%x, want CKK_ML_DSA (0x4A)", kt)
				}
				if ps := t.getULong(sh, h, ckaParameterSet, "CKA_PARAMETER_SET"); ps != ckpMLDSA65 {
					t.failf("CKA_PARAMETER_SET %d, want CKP_ML_DSA_65 (2)", ps)
				}
			}
		}},
		{id: "mldsa.65.interop", spec: mldsaSpec + " (pure ML-DSA, empty context; verified with circl mldsa65)", mech: ckmMLDSA, fn: func(t *T) {
			sh := t.open(true)
			k := t.mldsa(sh)
			sig := t.mldsaSign(sh, k, nil)
			if len(sig) != mldsa65.SignatureSize || !mldsa65.Verify(k.pk, mldsaMsg, nil, sig) {
				t.failf("circl mldsa65 rejects the module's %d-byte signature", len(sig))
			}
		}},
		{id: "mldsa.65.context", spec: mldsaSpec + " with CK_SIGN_ADDITIONAL_CONTEXT (context string; verified with circl)", mech: ckmMLDSA, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			k := t.mldsa(sh)
			ctx := []byte("conformance context")
			p := signCtxParams(&m, ctx)
			sig := t.mldsaSign(sh, k, p)
			if !mldsa65.Verify(k.pk, mldsaMsg, ctx, sig) {
				t.failf("circl mldsa65 rejects the signature under context %q", ctx)
			}
			t.ok(t.s.ctx.VerifyInit(sh, mech(ckmMLDSA, p), k.pub), "C_VerifyInit with the context")
			t.ok(t.s.ctx.Verify(sh, mldsaMsg, sig), "C_Verify with the context")
			t.ok(t.s.ctx.VerifyInit(sh, mech(ckmMLDSA, nil), k.pub), "C_VerifyInit without context")
			t.expect(t.s.ctx.Verify(sh, mldsaMsg, sig), "C_Verify without the signing context", pkcs11.CKR_SIGNATURE_INVALID)
		}},
		{id: "mldsa.65.tampered", spec: mldsaSpec + "; base 5.15.2 C_Verify (CKR_SIGNATURE_INVALID)", mech: ckmMLDSA, fn: func(t *T) {
			sh := t.open(true)
			k := t.mldsa(sh)
			sig := t.mldsaSign(sh, k, nil)
			t.ok(t.s.ctx.VerifyInit(sh, mech(ckmMLDSA, nil), k.pub), "C_VerifyInit")
			t.ok(t.s.ctx.Verify(sh, mldsaMsg, sig), "C_Verify of the module's own signature")
			sig[100] ^= 0x04
			t.ok(t.s.ctx.VerifyInit(sh, mech(ckmMLDSA, nil), k.pub), "C_VerifyInit")
			t.expect(t.s.ctx.Verify(sh, mldsaMsg, sig), "C_Verify of a corrupted signature", pkcs11.CKR_SIGNATURE_INVALID)
		}},
		{id: "mlkem.768.roundtrip", spec: mlkemSpec + " (both sides get the same AES key)", mech: ckmMLKEM, fn: func(t *T) {
			t.needMechFlags(ckmMLKEM, ckfEncapsulate|ckfDecapsulate, "CKF_ENCAPSULATE|CKF_DECAPSULATE")
			f := t.kemTable()
			var m cmem
			defer m.free()
			sh := t.open(true)
			pub, priv, _ := t.mlkem(sh)
			mc := m.mechanism(ckmMLKEM, nil)
			_, n, _, rv := m.encapsulate(f, uint(sh), mc, uint(pub), kemSecretTemplate, -1)
			t.okRV(rv, "C_EncapsulateKey(NULL ciphertext)")
			if n != 1088 {
				t.failf("C_EncapsulateKey size query: %d bytes, want 1088 (ML-KEM-768)", n)
			}
			ct, _, k1, rv := m.encapsulate(f, uint(sh), mc, uint(pub), kemSecretTemplate, int(n))
			t.okRV(rv, "C_EncapsulateKey")
			k2, rv := m.decapsulate(f, uint(sh), mc, uint(priv), kemSecretTemplate, ct)
			t.okRV(rv, "C_DecapsulateKey")
			v1 := t.getAttr(sh, pkcs11.ObjectHandle(k1), pkcs11.CKA_VALUE, "encapsulated key CKA_VALUE")
			if len(v1) != 32 {
				t.failf("encapsulated AES key of %d bytes, want 32", len(v1))
			}
			t.sameBytes(t.getAttr(sh, pkcs11.ObjectHandle(k2), pkcs11.CKA_VALUE, "decapsulated key CKA_VALUE"), v1, "decapsulated key")
		}},
		{id: "mlkem.768.interop", spec: mlkemSpec + " (decapsulates a ciphertext made by crypto/mlkem to the token's key)", mech: ckmMLKEM, fn: func(t *T) {
			t.needMechFlags(ckmMLKEM, ckfDecapsulate, "CKF_DECAPSULATE")
			f := t.kemTable()
			var m cmem
			defer m.free()
			sh := t.open(true)
			_, priv, ekBytes := t.mlkem(sh)
			ek, err := mlkem.NewEncapsulationKey768(ekBytes)
			if err != nil {
				t.failf("public CKA_VALUE (%d bytes) is no ML-KEM-768 encapsulation key: %v", len(ekBytes), err)
			}
			shared, ct := ek.Encapsulate()
			k, rv := m.decapsulate(f, uint(sh), m.mechanism(ckmMLKEM, nil), uint(priv), kemSecretTemplate, ct)
			t.okRV(rv, "C_DecapsulateKey")
			t.sameBytes(t.getAttr(sh, pkcs11.ObjectHandle(k), pkcs11.CKA_VALUE, "decapsulated key CKA_VALUE"), shared, "shared secret")
			bad := append([]byte{}, ct...)
			bad[7] ^= 1
			k, rv = m.decapsulate(f, uint(sh), m.mechanism(ckmMLKEM, nil), uint(priv), kemSecretTemplate, bad)
			t.okRV(rv, "C_DecapsulateKey of a modified ciphertext (FIPS 203 implicit rejection)")
			if v := t.getAttr(sh, pkcs11.ObjectHandle(k), pkcs11.CKA_VALUE, "CKA_VALUE"); string(v) == string(shared) {
				t.failf("a modified ciphertext decapsulated to the same shared secret")
			}
		}},
	}
}
