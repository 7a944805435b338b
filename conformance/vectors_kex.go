package conformance

import (
	"github.com/miekg/pkcs11"
)

// Key agreement and KEM vectors: X25519/X448 and P-256 ECDH through
// C_DeriveKey (CKM_ECDH1_DERIVE, CKD_NULL), ML-KEM through
// C_DecapsulateKey.

var (
	x448OID = []byte{0x06, 0x03, 0x2b, 0x65, 0x6f} // 1.3.101.111
)

type wpXDH struct {
	wpCase
	Public  string `json:"public"`
	Private string `json:"private"`
	Shared  string `json:"shared"`
}

// vecECDH runs one of x25519_test.json, x448_test.json and
// ecdh_secp256r1_ecpoint_test.json: the private key imported with
// CKA_EC_PARAMS + CKA_VALUE, the peer's public value (raw, as the vectors
// give it) in CK_ECDH1_DERIVE_PARAMS, the shared secret derived into an
// extractable, non-sensitive generic secret whose CKA_VALUE is compared.
func (t *T) vecECDH(family, file string, kt uint, params []byte, size int) {
	f := t.wycheproof(file)
	v := t.vecRun(family)
	for _, raw := range f.TestGroups {
		var g struct {
			Tests []wpXDH `json:"tests"`
		}
		t.wpGroup(raw, &g)
		for _, tc := range g.Tests {
			priv := t.hx(tc.Private)
			if kt == pkcs11.CKK_EC {
				priv = fixedBE(priv, size) // DER integers may carry a sign byte
			}
			v.judge(tc.wpCase, v.ecdh(kt, params, priv, t.hx(tc.Public), size), t.hx(tc.Shared), joinRV(refusePeer, refuseKey)...)
			v.cleanup()
		}
	}
	v.done()
}

func (v *vecRun) ecdh(kt uint, params, priv, peer []byte, size int) outcome {
	key, rv := v.create([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, kt),
		attr(pkcs11.CKA_EC_PARAMS, params), attr(pkcs11.CKA_VALUE, priv),
		attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_DERIVE, true),
	})
	if rv != 0 {
		return outcome{rv: rv, stage: "C_CreateObject(private key)"}
	}
	// CK_ECDH1_DERIVE_PARAMS {kdf, ulSharedDataLen, pSharedData,
	// ulPublicDataLen, pPublicData}, laid out here: miekg/pkcs11 cannot pass
	// the empty public value of some invalid vectors.
	var m cmem
	defer m.free()
	p := cat(ulong(ckdNull), ulong(0), ptr(nil), ulong(uint64(len(peer))), ptr(m.bytes(peer)))
	h, err := v.t.s.ctx.DeriveKey(v.sh, mech(pkcs11.CKM_ECDH1_DERIVE, p), key, derivedSecret(size))
	if err != nil {
		return outcome{rv: rvOf(err), stage: "C_DeriveKey(CKM_ECDH1_DERIVE)"}
	}
	v.track(h)
	val, rv := v.value(h)
	return outcome{rv: rv, stage: "C_DeriveKey + C_GetAttributeValue(CKA_VALUE)", got: val}
}

// fixedBE left-pads or strips leading zeros of a big-endian integer to n
// bytes (CKA_VALUE of an EC private key is the scalar, curr 2.3.4).
func fixedBE(b []byte, n int) []byte {
	for len(b) > n && b[0] == 0 {
		b = b[1:]
	}
	if len(b) < n {
		b = append(make([]byte, n-len(b)), b...)
	}
	return b
}

// vecMLKEM runs mlkem_test.json. MLKEMTest vectors import the private key
// from its 64-byte seed (CKA_SEED, 3.2) and decapsulate the vector's
// ciphertext through C_DecapsulateKey: the generic secret's CKA_VALUE must
// be K (for the strcmp vectors, the implicit-rejection secret).
// MLKEMEncapsTest vectors are encapsulation keys whose coefficients
// overflow the modulus: C_CreateObject must refuse them (FIPS 203 7.2), or
// at the latest C_EncapsulateKey.
func (t *T) vecMLKEM() {
	f := t.wycheproof("mlkem_test.json")
	t.needMechFlags(ckmMLKEM, ckfDecapsulate, "CKF_DECAPSULATE")
	ft := t.kemTable()
	v := t.vecRun("ML-KEM")
	sets := map[string]uint{"ML-KEM-512": 1, "ML-KEM-768": 2, "ML-KEM-1024": 3}
	secret := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
	}
	for _, raw := range f.TestGroups {
		var g struct {
			Type         string `json:"type"`
			ParameterSet string `json:"parameterSet"`
			Tests        []struct {
				wpCase
				Seed string `json:"seed"`
				Ek   string `json:"ek"`
				C    string `json:"c"`
				K    string `json:"K"`
			} `json:"tests"`
		}
		t.wpGroup(raw, &g)
		set, ok := sets[g.ParameterSet]
		if !ok {
			t.failf("mlkem_test.json: parameter set %q", g.ParameterSet)
		}
		for _, tc := range g.Tests {
			var m cmem
			var o outcome
			switch g.Type {
			case "MLKEMTest":
				o = v.decapsulate(&m, ft, set, t.hx(tc.Seed), t.hx(tc.C), secret)
				v.judge(tc.wpCase, o, t.hx(tc.K), refuseDecrypt...)
			case "MLKEMEncapsTest":
				o = v.encapsulate(&m, ft, set, t.hx(tc.Ek), secret)
				v.judge(tc.wpCase, o, nil, joinRV(refuseKey, []uint{pkcs11.CKR_KEY_HANDLE_INVALID})...)
			default:
				t.failf("mlkem_test.json: group type %q", g.Type)
			}
			m.free()
			v.cleanup()
		}
	}
	v.done()
}

func (v *vecRun) decapsulate(m *cmem, ft *cflist3, set uint, seed, ct []byte, secret []*pkcs11.Attribute) outcome {
	priv, rv := v.create([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLKEM),
		attr(ckaParameterSet, set), attr(ckaSeed, seed),
		attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), attr(ckaDecapsulate, true),
	})
	if rv != 0 {
		return outcome{rv: rv, stage: "C_CreateObject(ML-KEM private key from CKA_SEED)"}
	}
	k, rv := m.decapsulate(ft, uint(v.sh), m.mechanism(ckmMLKEM, nil), uint(priv), secret, ct)
	if rv != 0 {
		return outcome{rv: rv, stage: "C_DecapsulateKey"}
	}
	v.track(pkcs11.ObjectHandle(k))
	val, rv := v.value(pkcs11.ObjectHandle(k))
	return outcome{rv: rv, stage: "C_DecapsulateKey + C_GetAttributeValue(CKA_VALUE)", got: val}
}

func (v *vecRun) encapsulate(m *cmem, ft *cflist3, set uint, ek []byte, secret []*pkcs11.Attribute) outcome {
	pub, rv := v.create([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLKEM),
		attr(ckaParameterSet, set), attr(pkcs11.CKA_VALUE, ek), attr(ckaEncapsulate, true),
	})
	if rv != 0 {
		return outcome{rv: rv, stage: "C_CreateObject(ML-KEM public key)"}
	}
	_, _, k, rv := m.encapsulate(ft, uint(v.sh), m.mechanism(ckmMLKEM, nil), uint(pub), secret, 1568)
	if rv == 0 {
		v.track(pkcs11.ObjectHandle(k))
	}
	return outcome{rv: rv, stage: "C_EncapsulateKey"}
}

// CKA_SEED (3.2): the seed an ML-KEM or ML-DSA private key expands from.
const ckaSeed = 0x637

func vecKexChecks() []check {
	const spec = vecSpec + ecdhSpec
	return []check{
		{id: "vectors.x25519", spec: spec + " (x25519_test.json, CKD_NULL)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			t.vecECDH("x25519", "x25519_test.json", ckkECMontgomery, x25519OID, 32)
		}},
		{id: "vectors.x448", spec: spec + " (x448_test.json, CKD_NULL)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			t.vecECDH("x448", "x448_test.json", ckkECMontgomery, x448OID, 56)
		}},
		{id: "vectors.ecdh-p256", spec: spec + " (ecdh_secp256r1_ecpoint_test.json, CKD_NULL, raw peer point)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			t.vecECDH("ecdh-p256", "ecdh_secp256r1_ecpoint_test.json", pkcs11.CKK_EC, p256OID, 32)
		}},
	}
}
