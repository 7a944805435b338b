package conformance

import (
	"fmt"

	"github.com/miekg/pkcs11"
)

// Signature verification vectors: EdDSA (Wycheproof ed25519/ed448) and
// ML-DSA (mldsa_{44,65,87}_verify), public keys imported with C_CreateObject
// and every signature checked with C_VerifyInit + C_Verify.

const vecSpec = "Wycheproof vectors through the C ABI; "

// verifyVector runs C_VerifyInit + C_Verify of one signature.
func (v *vecRun) verify(m uint, param any, key pkcs11.ObjectHandle, msg, sig []byte) outcome {
	if err := v.t.s.ctx.VerifyInit(v.sh, mech(m, param), key); err != nil {
		return outcome{rv: rvOf(err), stage: "C_VerifyInit"}
	}
	return outcome{rv: rvOf(v.t.s.ctx.Verify(v.sh, msg, sig)), stage: "C_Verify"}
}

// vecEdDSA runs ed25519_test.json or ed448_test.json: the public key as
// CKA_EC_PARAMS (the curve OID, RFC 8410) and CKA_EC_POINT (DER OCTET
// STRING of the RFC 8032 encoding), pure EdDSA (CKM_EDDSA, no parameter).
func (t *T) vecEdDSA(family, file string, oid []byte) {
	f := t.wycheproof(file)
	v := t.vecRun(family)
	for _, raw := range f.TestGroups {
		var g struct {
			PublicKey struct{ Pk string } `json:"publicKey"`
			Tests     []struct {
				wpCase
				Msg string `json:"msg"`
				Sig string `json:"sig"`
			} `json:"tests"`
		}
		t.wpGroup(raw, &g)
		key, rv := v.create([]*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
			attr(pkcs11.CKA_EC_PARAMS, oid), attr(pkcs11.CKA_EC_POINT, derOctets(t.hx(g.PublicKey.Pk))),
			attr(pkcs11.CKA_VERIFY, true),
		})
		for _, tc := range g.Tests {
			o := outcome{rv: rv, stage: "C_CreateObject(public key)"}
			if rv == 0 {
				o = v.verify(ckmEdDSA, nil, key, t.hx(tc.Msg), t.hx(tc.Sig))
			}
			v.judge(tc.wpCase, o, nil, refuseSig...)
		}
		v.cleanup()
	}
	v.done()
}

// vecMLDSA runs mldsa_<lvl>_verify_test.json: the public key as
// CKA_PARAMETER_SET + CKA_VALUE (3.2 ML-DSA public key objects), the
// vector's context in CK_SIGN_ADDITIONAL_CONTEXT.
func (t *T) vecMLDSA(lvl string, set uint) {
	file := fmt.Sprintf("mldsa_%s_verify_test.json", lvl)
	f := t.wycheproof(file)
	v := t.vecRun("ML-DSA-" + lvl)
	var m cmem
	defer m.free()
	for _, raw := range f.TestGroups {
		var g struct {
			PublicKey string `json:"publicKey"`
			Tests     []struct {
				wpCase
				Msg string `json:"msg"`
				Sig string `json:"sig"`
				Ctx string `json:"ctx"`
			} `json:"tests"`
		}
		t.wpGroup(raw, &g)
		key, rv := v.create([]*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLDSA),
			attr(ckaParameterSet, set), attr(pkcs11.CKA_VALUE, t.hx(g.PublicKey)), attr(pkcs11.CKA_VERIFY, true),
		})
		for _, tc := range g.Tests {
			o := outcome{rv: rv, stage: "C_CreateObject(public key)"}
			if rv == 0 {
				var param any
				if ctx := t.hx(tc.Ctx); len(ctx) > 0 {
					param = signCtxParams(&m, ctx)
				}
				o = v.verify(ckmMLDSA, param, key, t.hx(tc.Msg), t.hx(tc.Sig))
			}
			// A context over 255 bytes (FIPS 204) is a bad parameter.
			v.judge(tc.wpCase, o, nil, joinRV(refuseSig, refuseKey, []uint{pkcs11.CKR_MECHANISM_PARAM_INVALID})...)
		}
		v.cleanup()
	}
	v.done()
}

func vecSigChecks() []check {
	return []check{
		{id: "vectors.ed25519", spec: vecSpec + eddsaSpec + " (ed25519_test.json, C_Verify)", mech: ckmEdDSA, fn: func(t *T) {
			t.vecEdDSA("ed25519", "ed25519_test.json", ed25519OID)
		}},
		{id: "vectors.ed448", spec: vecSpec + eddsaSpec + " (ed448_test.json, C_Verify)", mech: ckmEdDSA, fn: func(t *T) {
			t.vecEdDSA("ed448", "ed448_test.json", ed448OID)
		}},
	}
}

func vecPQCChecks() []check {
	return []check{
		{id: "vectors.mldsa-44", spec: vecSpec + mldsaSpec + " (mldsa_44_verify_test.json, C_Verify)", mech: ckmMLDSA, fn: func(t *T) { t.vecMLDSA("44", 1) }},
		{id: "vectors.mldsa-65", spec: vecSpec + mldsaSpec + " (mldsa_65_verify_test.json, C_Verify)", mech: ckmMLDSA, fn: func(t *T) { t.vecMLDSA("65", 2) }},
		{id: "vectors.mldsa-87", spec: vecSpec + mldsaSpec + " (mldsa_87_verify_test.json, C_Verify)", mech: ckmMLDSA, fn: func(t *T) { t.vecMLDSA("87", 3) }},
		{id: "vectors.mlkem", spec: vecSpec + mlkemSpec + " (mlkem_test.json: decapsulation from CKA_SEED, invalid encapsulation keys)", mech: ckmMLKEM, fn: func(t *T) { t.vecMLKEM() }},
	}
}
