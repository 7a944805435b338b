package conformance

import (
	"github.com/miekg/pkcs11"
)

// ACVP ML-DSA (FIPS 204) and ML-KEM (FIPS 203) through the C ABI.
//
// What PKCS#11 3.2 cannot express is counted, not run: the "internal"
// signature interface and externalMu (CKM_ML_DSA signs M' = 0||len(ctx)||
// ctx||M itself, there is no mechanism taking μ), hedged sigGen (the
// vector's rnd cannot be handed to the token) and ML-KEM encapsulation
// (the vector's m likewise).

var (
	acvpMLDSASets = map[string]uint{"ML-DSA-44": 1, "ML-DSA-65": 2, "ML-DSA-87": 3}
	acvpMLKEMSets = map[string]uint{"ML-KEM-512": 1, "ML-KEM-768": 2, "ML-KEM-1024": 3}
)

// acvpMLDSAGroup is the union of the keyGen, sigGen and sigVer groups.
type acvpMLDSAGroup struct {
	TgID               int    `json:"tgId"`
	ParameterSet       string `json:"parameterSet"`
	SignatureInterface string `json:"signatureInterface"`
	PreHash            string `json:"preHash"`
	ExternalMu         bool   `json:"externalMu"`
	Deterministic      bool   `json:"deterministic"`
	Tests              []struct {
		acvpCase
		Seed      string `json:"seed"`
		Sk        string `json:"sk"`
		Pk        string `json:"pk"`
		Message   string `json:"message"`
		Context   string `json:"context"`
		Signature string `json:"signature"`
	} `json:"tests"`
}

// vecACVPMLDSA runs ACVP ML-DSA keyGen, sigGen and sigVer:
//   - keyGen: the private key imported from its seed ξ (CKA_SEED) as a
//     non-sensitive key; its derived CKA_VALUE must be the vector's sk, and
//     a signature it makes must verify under the vector's pk imported as a
//     public key (the private key object has no readable public value).
//   - sigGen (deterministic, external, pure): the private key imported from
//     sk (CKA_VALUE); C_Sign with CKH_DETERMINISTIC_REQUIRED and the
//     vector's context must return the vector's signature byte for byte.
//   - sigVer (external, pure): C_Verify under the vector's context; the
//     answer's testPassed is the verdict.
func (t *T) vecACVPMLDSA() {
	sets := t.acvp("ML-DSA")
	v := t.vecRun("ACVP ML-DSA")
	var m cmem
	defer m.free()
	for i := range sets {
		s := &sets[i]
		for _, raw := range s.TestGroups {
			var g acvpMLDSAGroup
			s.group(t, raw, &g)
			set, ok := acvpMLDSASets[g.ParameterSet]
			if !ok {
				t.failf("ACVP ML-DSA %s: parameter set %q", s.Mode, g.ParameterSet)
			}
			for _, tc := range g.Tests {
				where := func(what string, valid bool) wpCase {
					return acvpWP(tc.TcID, valid, "%s %s tgId %d", g.ParameterSet, what, g.TgID)
				}
				switch {
				case s.Mode == "keyGen":
					var want struct{ Pk, Sk string }
					s.answer(t, tc.TcID, &want)
					v.mldsaKeyGen(&m, where("keyGen", true), set, t.ahx(tc.Seed), t.ahx(want.Sk), t.ahx(want.Pk))
				case g.SignatureInterface != "external" || g.ExternalMu:
					v.skip("internal-interface/externalMu cases (no PKCS#11 mechanism signs μ)")
				case g.PreHash != "pure":
					v.skip("preHash cases (HashML-DSA: CKM_HASH_ML_DSA_*, not in this set)")
				case s.Mode == "sigGen" && !g.Deterministic:
					v.skip("hedged sigGen cases (the vector's rnd cannot be passed to the token)")
				case s.Mode == "sigGen":
					var want struct{ Signature string }
					s.answer(t, tc.TcID, &want)
					o := v.mldsaSign(&m, set, t.ahx(tc.Sk), t.ahx(tc.Message), t.ahx(tc.Context))
					v.judge(where("sigGen deterministic", true), o, t.ahx(want.Signature))
				case s.Mode == "sigVer":
					ok := s.passed(t, tc.TcID)
					key, rv := v.create([]*pkcs11.Attribute{
						attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLDSA),
						attr(ckaParameterSet, set), attr(pkcs11.CKA_VALUE, t.ahx(tc.Pk)), attr(pkcs11.CKA_VERIFY, true),
					})
					o := outcome{rv: rv, stage: "C_CreateObject(ML-DSA public key)"}
					if rv == 0 {
						o = v.verify(ckmMLDSA, hashCtxParams(&m, 0, t.ahx(tc.Context)), key, t.ahx(tc.Message), t.ahx(tc.Signature))
					}
					v.judge(where("sigVer", ok), o, nil, refuseSig...)
				default:
					t.failf("ACVP ML-DSA: mode %q", s.Mode)
				}
				v.cleanup()
			}
		}
	}
	v.done()
}

// mldsaKeyGen imports a private key from its seed and checks it against
// the vector's sk and pk.
func (v *vecRun) mldsaKeyGen(m *cmem, tc wpCase, set uint, seed, sk, pk []byte) {
	priv, rv := v.create([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLDSA),
		attr(ckaParameterSet, set), attr(ckaSeed, seed), attr(pkcs11.CKA_SIGN, true),
		attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
	})
	if rv != 0 {
		v.judge(tc, outcome{rv: rv, stage: "C_CreateObject(ML-DSA private key from CKA_SEED)"}, sk)
		return
	}
	got, rv := v.value(priv)
	v.judge(tc, outcome{rv: rv, stage: "C_CreateObject(CKA_SEED) + C_GetAttributeValue(CKA_VALUE)", got: got}, sk)
	if rv != 0 {
		return
	}
	pub, rv := v.create([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLDSA),
		attr(ckaParameterSet, set), attr(pkcs11.CKA_VALUE, pk), attr(pkcs11.CKA_VERIFY, true),
	})
	if rv != 0 {
		v.badf("tcId %d (%s): C_CreateObject of the vector's public key: %s", tc.TcID, tc.Comment, rvName(rv))
		return
	}
	msg := []byte("ACVP keyGen: the seed's key signs, the vector's pk verifies")
	if err := v.t.s.ctx.SignInit(v.sh, mech(ckmMLDSA, nil), priv); err != nil {
		v.badf("tcId %d (%s): C_SignInit: %s", tc.TcID, tc.Comment, rvName(rvOf(err)))
		return
	}
	sig, err := v.t.s.ctx.Sign(v.sh, msg)
	if err != nil {
		v.badf("tcId %d (%s): C_Sign: %s", tc.TcID, tc.Comment, rvName(rvOf(err)))
		return
	}
	if o := v.verify(ckmMLDSA, nil, pub, msg, sig); o.rv != 0 {
		v.badf("tcId %d (%s): the seed's key signs, the vector's pk refuses it: %s %s", tc.TcID, tc.Comment, o.stage, rvName(o.rv))
	}
}

// mldsaSign imports sk and signs deterministically under ctx.
func (v *vecRun) mldsaSign(m *cmem, set uint, sk, msg, ctx []byte) outcome {
	priv, rv := v.create([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLDSA),
		attr(ckaParameterSet, set), attr(pkcs11.CKA_VALUE, sk),
		attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_SIGN, true),
	})
	if rv != 0 {
		return outcome{rv: rv, stage: "C_CreateObject(ML-DSA private key from CKA_VALUE sk)"}
	}
	if err := v.t.s.ctx.SignInit(v.sh, mech(ckmMLDSA, hashCtxParams(m, ckhDeterministicRequired, ctx)), priv); err != nil {
		return outcome{rv: rvOf(err), stage: "C_SignInit(CKM_ML_DSA, CKH_DETERMINISTIC_REQUIRED)"}
	}
	sig, err := v.t.s.ctx.Sign(v.sh, msg)
	return outcome{rv: rvOf(err), stage: "C_Sign(CKM_ML_DSA, CKH_DETERMINISTIC_REQUIRED)", got: sig}
}

// acvpKEMSecret is the template of a decapsulated shared secret: a
// generic secret the suite can read back.
var acvpKEMSecret = []*pkcs11.Attribute{
	attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
	attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_TOKEN, false),
	attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
}

// vecACVPMLKEM runs ACVP ML-KEM keyGen and the decapsulation groups of
// encapDecap:
//   - keyGen: the private key imported from d||z (CKA_SEED) as a
//     non-sensitive key; its derived CKA_VALUE must be the vector's dk, and
//     a secret encapsulated to the vector's ek (imported as a public key)
//     must decapsulate to the same value with it.
//   - decapsulation (VAL): dk imported as CKA_VALUE (FIPS 203 7.3 checks
//     apply), C_DecapsulateKey of c into a generic secret whose CKA_VALUE
//     must be the answer's k (the implicit-rejection secret included).
func (t *T) vecACVPMLKEM() {
	sets := t.acvp("ML-KEM")
	t.needMechFlags(ckmMLKEM, ckfDecapsulate, "CKF_DECAPSULATE")
	ft := t.kemTable()
	v := t.vecRun("ACVP ML-KEM")
	for i := range sets {
		s := &sets[i]
		for _, raw := range s.TestGroups {
			var g struct {
				TgID         int    `json:"tgId"`
				ParameterSet string `json:"parameterSet"`
				Function     string `json:"function"`
				Tests        []struct {
					acvpCase
					D, Z, Dk, C string
				} `json:"tests"`
			}
			s.group(t, raw, &g)
			set, ok := acvpMLKEMSets[g.ParameterSet]
			if !ok {
				t.failf("ACVP ML-KEM %s: parameter set %q", s.Mode, g.ParameterSet)
			}
			for _, tc := range g.Tests {
				var m cmem
				c := acvpWP(tc.TcID, true, "%s %s %s tgId %d", g.ParameterSet, s.Mode, g.Function, g.TgID)
				switch {
				case s.Mode == "keyGen":
					var want struct{ Ek, Dk string }
					s.answer(t, tc.TcID, &want)
					v.mlkemKeyGen(&m, ft, c, set, append(t.ahx(tc.D), t.ahx(tc.Z)...), t.ahx(want.Dk), t.ahx(want.Ek))
				case s.Mode == "encapDecap" && g.Function == "encapsulation":
					v.skip("encapsulation cases (the vector's m cannot be passed to the token)")
				case s.Mode == "encapDecap" && g.Function == "decapsulation":
					var want struct{ K string }
					s.answer(t, tc.TcID, &want)
					v.judge(c, v.decapsulateDK(&m, ft, set, t.ahx(tc.Dk), t.ahx(tc.C)), t.ahx(want.K))
				default:
					t.failf("ACVP ML-KEM: mode %q function %q", s.Mode, g.Function)
				}
				m.free()
				v.cleanup()
			}
		}
	}
	v.done()
}

func (v *vecRun) mlkemKeyGen(m *cmem, ft *cflist3, tc wpCase, set uint, seed, dk, ek []byte) {
	priv, rv := v.create([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLKEM),
		attr(ckaParameterSet, set), attr(ckaSeed, seed), attr(ckaDecapsulate, true),
		attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
	})
	if rv != 0 {
		v.judge(tc, outcome{rv: rv, stage: "C_CreateObject(ML-KEM private key from CKA_SEED)"}, dk)
		return
	}
	got, rv := v.value(priv)
	v.judge(tc, outcome{rv: rv, stage: "C_CreateObject(CKA_SEED) + C_GetAttributeValue(CKA_VALUE)", got: got}, dk)
	if rv != 0 {
		return
	}
	pub, rv := v.create([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLKEM),
		attr(ckaParameterSet, set), attr(pkcs11.CKA_VALUE, ek), attr(ckaEncapsulate, true),
	})
	if rv != 0 {
		v.badf("tcId %d (%s): C_CreateObject of the vector's ek: %s", tc.TcID, tc.Comment, rvName(rv))
		return
	}
	mc := m.mechanism(ckmMLKEM, nil)
	ct, _, k1, rv := m.encapsulate(ft, uint(v.sh), mc, uint(pub), acvpKEMSecret, 1568)
	if rv != 0 {
		v.badf("tcId %d (%s): C_EncapsulateKey to the vector's ek: %s", tc.TcID, tc.Comment, rvName(rv))
		return
	}
	v.track(pkcs11.ObjectHandle(k1))
	k2, rv := m.decapsulate(ft, uint(v.sh), mc, uint(priv), acvpKEMSecret, ct)
	if rv != 0 {
		v.badf("tcId %d (%s): C_DecapsulateKey with the seed's key: %s", tc.TcID, tc.Comment, rvName(rv))
		return
	}
	v.track(pkcs11.ObjectHandle(k2))
	s1, rv1 := v.value(pkcs11.ObjectHandle(k1))
	s2, rv2 := v.value(pkcs11.ObjectHandle(k2))
	if rv1 != 0 || rv2 != 0 || len(s1) != 32 || string(s1) != string(s2) {
		v.badf("tcId %d (%s): encapsulated (%s, %x) and decapsulated (%s, %x) secrets differ", tc.TcID, tc.Comment, rvName(rv1), s1, rvName(rv2), s2)
	}
}

// decapsulateDK is decapsulate with the private key imported from its
// expanded dk (CKA_VALUE) instead of its seed.
func (v *vecRun) decapsulateDK(m *cmem, ft *cflist3, set uint, dk, ct []byte) outcome {
	priv, rv := v.create([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLKEM),
		attr(ckaParameterSet, set), attr(pkcs11.CKA_VALUE, dk),
		attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), attr(ckaDecapsulate, true),
	})
	if rv != 0 {
		return outcome{rv: rv, stage: "C_CreateObject(ML-KEM private key from CKA_VALUE dk)"}
	}
	k, rv := m.decapsulate(ft, uint(v.sh), m.mechanism(ckmMLKEM, nil), uint(priv), acvpKEMSecret, ct)
	if rv != 0 {
		return outcome{rv: rv, stage: "C_DecapsulateKey"}
	}
	v.track(pkcs11.ObjectHandle(k))
	val, rv := v.value(pkcs11.ObjectHandle(k))
	return outcome{rv: rv, stage: "C_DecapsulateKey + C_GetAttributeValue(CKA_VALUE)", got: val}
}

func acvpPQCChecks() []check {
	return []check{
		{id: "vectors.acvp.ml-dsa", spec: acvpSpec + mldsaSpec + " (ACVP ML-DSA keyGen from CKA_SEED, deterministic sigGen, sigVer)", mech: ckmMLDSA, fn: func(t *T) {
			t.vecACVPMLDSA()
		}},
		{id: "vectors.acvp.ml-kem", spec: acvpSpec + mlkemSpec + " (ACVP ML-KEM keyGen from CKA_SEED, decapsulation from dk)", mech: ckmMLKEM, fn: func(t *T) {
			t.vecACVPMLKEM()
		}},
	}
}
