package mech

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func mldsaSetByName(t testing.TB, name string) *mldsaSet {
	t.Helper()
	for i := range mldsaSets {
		if mldsaSets[i].name == name {
			return &mldsaSets[i]
		}
	}
	t.Fatalf("parameter set %q", name)
	return nil
}

func mldsaTemplate(s *mldsaSet, a ...ck.Attribute) attr.Template {
	return append(attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(ck.ULong(s.set))}}, a...)
}

// mldsaParse is KeyKind.Parse for ML-DSA, returning the error rather than
// failing, for vectors whose keys are meant to be rejected.
func mldsaParse(t testing.TB, class ck.ObjectClass, a attr.Template) (*Key, error) {
	kk, _ := classicReg().KeyKind(ck.CKK_ML_DSA)
	m, err := kk.Parse(class, a)
	if err != nil {
		return nil, err
	}
	return &Key{Class: class, Type: ck.CKK_ML_DSA, Material: m, Attrs: a}, nil
}

type wpMLDSATest struct {
	wpTest
	Ctx string `json:"ctx"`
}

func ctxParam(ctx []byte, hedge ck.HedgeType) any {
	return &ck.SignAdditionalContext{Hedge: hedge, Context: ctx}
}

func TestWycheproofMLDSA(t *testing.T) {
	t.Parallel()
	n := 0
	for _, s := range mldsaSets {
		lvl := strings.TrimPrefix(s.name, "ML-DSA-")
		// Verification.
		file := fmt.Sprintf("mldsa_%s_verify_test.json", lvl)
		for _, raw := range wpLoad(t, file).TestGroups {
			g := wpGroup[struct {
				PublicKey string
				Tests     []wpMLDSATest
			}](t, raw)
			k, kerr := mldsaParse(t, ck.CKO_PUBLIC_KEY, mldsaTemplate(&s, ck.Attribute{Type: ck.CKA_VALUE, Value: mustHex(t, g.PublicKey)}))
			for _, tc := range g.Tests {
				n++
				err := kerr
				if err == nil {
					err = sigVerify(t, ck.CKM_ML_DSA, ctxParam(mustHex(t, tc.Ctx), ck.CKH_HEDGE_PREFERRED), k, mustHex(t, tc.Msg), mustHex(t, tc.Sig))
				}
				wpCheck(t, file, tc.wpTest, err)
			}
		}
		// Deterministic signing from the seed and from the expanded key.
		for _, kind := range []string{"seed", "noseed"} {
			file := fmt.Sprintf("mldsa_%s_sign_%s_test.json", lvl, kind)
			for _, raw := range wpLoad(t, file).TestGroups {
				g := wpGroup[struct {
					PrivateSeed, PrivateKey string
					Tests                   []wpMLDSATest
				}](t, raw)
				a := mldsaTemplate(&s)
				if kind == "seed" {
					a = append(a, ck.Attribute{Type: ck.CKA_SEED, Value: mustHex(t, g.PrivateSeed)})
				} else {
					a = append(a, ck.Attribute{Type: ck.CKA_VALUE, Value: mustHex(t, g.PrivateKey)})
				}
				k, kerr := mldsaParse(t, ck.CKO_PRIVATE_KEY, a)
				for _, tc := range g.Tests {
					n++
					err := kerr
					var sig []byte
					if err == nil {
						var sg Signer
						if sg, err = regMech(t, ck.CKM_ML_DSA).Sign(k, ctxParam(mustHex(t, tc.Ctx), ck.CKH_DETERMINISTIC_REQUIRED)); err == nil {
							sig, err = sg.Sign(mustHex(t, tc.Msg))
						}
					}
					if err == nil && !bytes.Equal(sig, mustHex(t, tc.Sig)) {
						err = fmt.Errorf("signature differs")
					}
					wpCheck(t, file, tc.wpTest, err)
				}
			}
		}
	}
	wantCount(t, "Wycheproof ML-DSA", n, 605)
}

func TestACVPMLDSA(t *testing.T) {
	t.Parallel()
	sets, exp := acvpLoad(t, "ML-DSA")
	n := 0
	for si, s := range sets {
		for _, raw := range s.TestGroups {
			var g struct {
				ParameterSet, SignatureInterface, PreHash string
				Deterministic                             bool
				Tests                                     []struct {
					TcID                                      int
					Seed, Sk, Pk, Message, Context, Signature string
				}
			}
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatal(err)
			}
			set := mldsaSetByName(t, g.ParameterSet)
			for _, tc := range g.Tests {
				want := exp[si][tc.TcID]
				switch {
				case s.Mode == "keyGen":
					n++
					k, err := mldsaParse(t, ck.CKO_PRIVATE_KEY, mldsaTemplate(set, ck.Attribute{Type: ck.CKA_SEED, Value: mustHex(t, tc.Seed)}))
					if err != nil {
						t.Fatal(err)
					}
					kk, _ := classicReg().KeyKind(ck.CKK_ML_DSA)
					d, _ := kk.Derived(ck.CKO_PRIVATE_KEY, k.Attrs, k.Material)
					sk, _ := d.Get(ck.CKA_VALUE)
					pk, _ := k.Material.(*mldsaKey).pub.MarshalBinary()
					wsk, _ := acvpString(t, want, "sk")
					wpk, _ := acvpString(t, want, "pk")
					if !bytes.Equal(sk, mustHex(t, wsk)) || !bytes.Equal(pk, mustHex(t, wpk)) {
						t.Errorf("ML-DSA keyGen #%d: keys differ", tc.TcID)
					}
				case s.Mode == "sigGen" && g.SignatureInterface == "external" && g.PreHash == "pure" && g.Deterministic:
					n++
					k, err := mldsaParse(t, ck.CKO_PRIVATE_KEY, mldsaTemplate(set, ck.Attribute{Type: ck.CKA_VALUE, Value: mustHex(t, tc.Sk)}))
					if err != nil {
						t.Fatal(err)
					}
					sg, err := regMech(t, ck.CKM_ML_DSA).Sign(k, ctxParam(mustHex(t, tc.Context), ck.CKH_DETERMINISTIC_REQUIRED))
					if err != nil {
						t.Fatal(err)
					}
					sig, err := sg.Sign(mustHex(t, tc.Message))
					wsig, _ := acvpString(t, want, "signature")
					if err != nil || !bytes.Equal(sig, mustHex(t, wsig)) {
						t.Errorf("ML-DSA sigGen #%d: %v", tc.TcID, err)
					}
				case s.Mode == "sigVer" && g.SignatureInterface == "external" && g.PreHash == "pure":
					n++
					k, err := mldsaParse(t, ck.CKO_PUBLIC_KEY, mldsaTemplate(set, ck.Attribute{Type: ck.CKA_VALUE, Value: mustHex(t, tc.Pk)}))
					if err != nil {
						t.Fatal(err)
					}
					err = sigVerify(t, ck.CKM_ML_DSA, ctxParam(mustHex(t, tc.Context), ck.CKH_HEDGE_PREFERRED), k, mustHex(t, tc.Message), mustHex(t, tc.Signature))
					if ok := acvpPassed(t, want); ok != (err == nil) {
						t.Errorf("ML-DSA sigVer #%d: got %v, want pass=%v", tc.TcID, err, ok)
					}
				}
			}
		}
	}
	// keyGen 3, deterministic external pure sigGen 3, external pure sigVer 3.
	wantCount(t, "ACVP ML-DSA", n, 9)
}

func genMLDSA(t testing.TB, set ck.ParameterSet) (pub, priv *Key) {
	t.Helper()
	pa, pr, err := regMech(t, ck.CKM_ML_DSA_KEY_PAIR_GEN).GenerateKeyPair(
		attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(ck.ULong(set))}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return keyOf(t, ck.CKK_ML_DSA, ck.CKO_PUBLIC_KEY, pa), keyOf(t, ck.CKK_ML_DSA, ck.CKO_PRIVATE_KEY, pr)
}

func TestMLDSAKeyGenSignVerify(t *testing.T) {
	msg := bytes.Repeat([]byte("lattice "), 40)
	kk, _ := classicReg().KeyKind(ck.CKK_ML_DSA)
	for _, s := range mldsaSets {
		pub, priv := genMLDSA(t, s.set)
		seed, _ := priv.Attrs.Get(ck.CKA_SEED)
		sk, _ := priv.Attrs.Get(ck.CKA_VALUE)
		pk, _ := pub.Attrs.Get(ck.CKA_VALUE)
		if len(seed) != 32 || len(sk) != s.skLen || len(pk) != s.pkLen {
			t.Fatalf("%s: seed %d sk %d pk %d bytes", s.name, len(seed), len(sk), len(pk))
		}
		if kk.Size(pub.Attrs, pub.Material) != ck.ULong(s.pkLen) {
			t.Fatal("size")
		}
		// Hedged signatures differ and verify; deterministic ones repeat.
		sg, _ := regMech(t, ck.CKM_ML_DSA).Sign(priv, nil)
		a, _ := sg.Sign(msg)
		b, _ := sg.Sign(msg)
		if bytes.Equal(a, b) || len(a) != s.sigLen || sg.Len() != s.sigLen {
			t.Fatalf("%s: hedged signatures equal or wrong length", s.name)
		}
		for _, sig := range [][]byte{a, b} {
			if err := sigVerify(t, ck.CKM_ML_DSA, nil, pub, msg, sig); err != nil {
				t.Fatal(err)
			}
		}
		det := ctxParam([]byte("app"), ck.CKH_DETERMINISTIC_REQUIRED)
		sd, _ := regMech(t, ck.CKM_ML_DSA).Sign(priv, det)
		c, _ := sd.Sign(msg)
		sd.Update(msg[:5])
		sd.Update(msg[5:])
		d, err := sd.Final()
		if err != nil || !bytes.Equal(c, d) {
			t.Fatalf("%s: deterministic one-shot and multi-part differ: %v", s.name, err)
		}
		if err := sigVerify(t, ck.CKM_ML_DSA, det, pub, msg, c); err != nil {
			t.Fatal(err)
		}
		// The context binds: no context, or another one, fails.
		expectRV(t, sigVerify(t, ck.CKM_ML_DSA, nil, pub, msg, c), ck.CKR_SIGNATURE_INVALID, "missing context")
		expectRV(t, sigVerify(t, ck.CKM_ML_DSA, ctxParam([]byte("other"), 0), pub, msg, c), ck.CKR_SIGNATURE_INVALID, "other context")
		v, _ := regMech(t, ck.CKM_ML_DSA).Verify(pub, det)
		expectRV(t, v.Update(msg), ck.CKR_FUNCTION_NOT_SUPPORTED, "multi-part verify")
		expectRV(t, v.Verify(msg, c[1:]), ck.CKR_SIGNATURE_LEN_RANGE, "short signature")

		// A private key made from the seed alone gets its expanded form,
		// and seed and value must agree when both are given.
		k2, err := mldsaParse(t, ck.CKO_PRIVATE_KEY, mldsaTemplate(&s, ck.Attribute{Type: ck.CKA_SEED, Value: seed}))
		if err != nil {
			t.Fatal(err)
		}
		dv, _ := kk.Derived(ck.CKO_PRIVATE_KEY, k2.Attrs, k2.Material)
		if got, _ := dv.Get(ck.CKA_VALUE); !bytes.Equal(got, sk) {
			t.Fatalf("%s: derived CKA_VALUE differs from the generated one", s.name)
		}
		if dv, _ := kk.Derived(ck.CKO_PRIVATE_KEY, priv.Attrs, priv.Material); len(dv) != 0 {
			t.Fatal("derived a value the object already has")
		}
		bad := append([]byte(nil), seed...)
		bad[0] ^= 1
		_, err = mldsaParse(t, ck.CKO_PRIVATE_KEY, mldsaTemplate(&s, ck.Attribute{Type: ck.CKA_SEED, Value: bad}, ck.Attribute{Type: ck.CKA_VALUE, Value: sk}))
		expectRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "seed and value disagree")
	}
}

func TestMLDSAErrors(t *testing.T) {
	s := &mldsaSets[0]
	pub, priv := genMLDSA(t, s.set)
	pk, _ := pub.Attrs.Get(ck.CKA_VALUE)
	for _, c := range []struct {
		class ck.ObjectClass
		a     attr.Template
		rv    ck.RV
		what  string
	}{
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: pk}}, ck.CKR_TEMPLATE_INCOMPLETE, "no parameter set"},
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(9)}, {Type: ck.CKA_VALUE, Value: pk}}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "unknown parameter set"},
		{ck.CKO_PUBLIC_KEY, mldsaTemplate(&mldsaSets[1], ck.Attribute{Type: ck.CKA_VALUE, Value: pk}), ck.CKR_ATTRIBUTE_VALUE_INVALID, "44 key as 65"},
		{ck.CKO_PUBLIC_KEY, mldsaTemplate(s), ck.CKR_TEMPLATE_INCOMPLETE, "no value"},
		{ck.CKO_PRIVATE_KEY, mldsaTemplate(s), ck.CKR_TEMPLATE_INCOMPLETE, "neither seed nor value"},
		{ck.CKO_PRIVATE_KEY, mldsaTemplate(s, ck.Attribute{Type: ck.CKA_SEED, Value: make([]byte, 31)}), ck.CKR_ATTRIBUTE_VALUE_INVALID, "short seed"},
		{ck.CKO_PRIVATE_KEY, mldsaTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: pk}), ck.CKR_ATTRIBUTE_VALUE_INVALID, "public bytes as private"},
		{ck.CKO_SECRET_KEY, mldsaTemplate(s), ck.CKR_TEMPLATE_INCONSISTENT, "secret class"},
	} {
		_, err := mldsaParse(t, c.class, c.a)
		expectRV(t, err, c.rv, c.what)
	}
	m := regMech(t, ck.CKM_ML_DSA)
	_, err := m.Sign(pub, nil)
	expectRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT, "sign with public key")
	_, err = m.Sign(priv, ctxParam(make([]byte, 256), 0))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "256-byte context")
	_, err = m.Sign(priv, ctxParam(nil, 7))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "unknown hedge")
	_, err = m.Sign(priv, ck.EDDSAParams{})
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "wrong parameter type")
	gen := regMech(t, ck.CKM_ML_DSA_KEY_PAIR_GEN)
	_, _, err = gen.GenerateKeyPair(nil, nil)
	expectRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "keygen without parameter set")
	_, _, err = gen.GenerateKeyPair(attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(4)}}, nil)
	expectRV(t, err, ck.CKR_PARAMETER_SET_NOT_SUPPORTED, "keygen with unknown parameter set")
	_, _, err = gen.GenerateKeyPair(mldsaTemplate(s), attr.Template{{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_EC))}})
	expectRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "keygen with EC key type")
}

func BenchmarkMLDSA65Sign(b *testing.B) {
	_, priv := genMLDSA(b, ck.CKP_ML_DSA_65)
	s, err := regMech(b, ck.CKM_ML_DSA).Sign(priv, nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}
