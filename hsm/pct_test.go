package hsm

import (
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// pctCase is one key-pair kind with the smallest template that makes it.
type pctCase struct {
	name string
	gen  ck.MechanismType
	kt   ck.KeyType
	pub  []ck.Attribute
}

func pctCases(t testing.TB) []pctCase {
	oid := func(ids ...int) []byte {
		b, err := asn1.Marshal(asn1.ObjectIdentifier(ids))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ps := func(v ck.ParameterSet) []ck.Attribute {
		return []ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(v))}}
	}
	ec := func(b []byte) []ck.Attribute { return []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: b}} }
	sm2, _ := ck.DefaultProfile.KeyType("CKK_SM2")
	return []pctCase{
		{"RSA-2048", ck.CKM_RSA_PKCS_KEY_PAIR_GEN, ck.CKK_RSA, []ck.Attribute{{Type: ck.CKA_MODULUS_BITS, Value: ul(2048)}}},
		{"ECDSA-P256", ck.CKM_EC_KEY_PAIR_GEN, ck.CKK_EC, ec(oid(1, 2, 840, 10045, 3, 1, 7))},
		{"ECDSA-P384", ck.CKM_EC_KEY_PAIR_GEN, ck.CKK_EC, ec(oid(1, 3, 132, 0, 34))},
		{"Ed25519", ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, ck.CKK_EC_EDWARDS, ec(oid(1, 3, 101, 112))},
		{"X25519", ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN, ck.CKK_EC_MONTGOMERY, ec(oid(1, 3, 101, 110))},
		{"SM2", smMech(t, "CKM_SM2_KEY_PAIR_GEN"), sm2, ec(oid(1, 2, 156, 10197, 1, 301))},
		{"ML-KEM-768", ck.CKM_ML_KEM_KEY_PAIR_GEN, ck.CKK_ML_KEM, ps(ck.CKP_ML_KEM_768)},
		{"ML-DSA-65", ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKK_ML_DSA, ps(ck.CKP_ML_DSA_65)},
		{"SLH-DSA-SHA2-128F", ck.CKM_SLH_DSA_KEY_PAIR_GEN, ck.CKK_SLH_DSA, ps(ck.CKP_SLH_DSA_SHA2_128F)},
		{"SLH-DSA-SHA2-128S", ck.CKM_SLH_DSA_KEY_PAIR_GEN, ck.CKK_SLH_DSA, ps(ck.CKP_SLH_DSA_SHA2_128S)},
	}
}

// TestPCTDeclared: every key-pair generation mechanism makes a kind that
// declares a pairwise consistency test, and the test passes on a fresh
// pair.
func TestPCTDeclared(t *testing.T) {
	m, s := userSession(t)
	for _, c := range pctCases(t) {
		kk, ok := m.reg.KeyKind(c.kt)
		if !ok || kk.PCT == nil {
			t.Fatalf("%s: key kind %v has no PCT", c.name, c.kt)
		}
		genPair(t, m, s, c.gen, c.pub)
	}
}

// TestPCTFailureCommitsNothing: a pair whose test fails is CKR_DEVICE_ERROR
// and neither half is stored, as a token object or a session object.
func TestPCTFailureCommitsNothing(t *testing.T) {
	m, s := userSession(t)
	for _, c := range pctCases(t)[:2] {
		kk, _ := m.reg.KeyKind(c.kt)
		saved := kk.PCT
		var ran bool
		kk.PCT = func(pub, priv *mech.Key) error {
			ran = true
			if pub.Class != ck.CKO_PUBLIC_KEY || priv.Class != ck.CKO_PRIVATE_KEY {
				t.Errorf("%s: PCT got classes %v, %v", c.name, pub.Class, priv.Class)
			}
			return errors.New("injected PCT failure")
		}
		for _, token := range []bool{false, true} {
			tmpl := append([]ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(token)}}, c.pub...)
			_, _, err := m.GenerateKeyPair(s, ck.Mechanism{Type: c.gen}, tmpl, []ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(token)}})
			wantRV(t, err, ck.CKR_DEVICE_ERROR)
		}
		kk.PCT = saved
		if !ran {
			t.Fatalf("%s: PCT not run", c.name)
		}
		must(t, m.FindObjectsInit(s, nil))
		objs, err := m.FindObjects(s, 100)
		must(t, err)
		must(t, m.FindObjectsFinal(s))
		if len(objs) != 0 {
			t.Fatalf("%s: a failed PCT left %d object(s)", c.name, len(objs))
		}
	}
}

// BenchmarkPCT measures each kind's pairwise consistency test alone, and
// the key pair generation it is part of (C_GenerateKeyPair of a session
// pair, PCT included), so the PCT's share of generation is known:
//
//	go test -run '^$' -bench 'PCT' ./hsm
func BenchmarkPCT(b *testing.B) {
	m, s := userSession(b)
	for _, c := range pctCases(b) {
		kk, _ := m.reg.KeyKind(c.kt)
		pub, priv := genPair(b, m, s, c.gen, c.pub)
		pk, err := m.keyForBench(s, pub)
		must(b, err)
		sk, err := m.keyForBench(s, priv)
		must(b, err)
		b.Run(c.name+"/pct", func(b *testing.B) {
			for b.Loop() {
				if err := kk.PCT(pk, sk); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/keygen", func(b *testing.B) {
			for b.Loop() {
				p, k := genPair(b, m, s, c.gen, c.pub)
				m.DestroyObject(s, p)
				m.DestroyObject(s, k)
			}
		})
	}
}

// keyForBench is the parsed key of a session's object.
func (m *Module) keyForBench(h ck.SessionHandle, oh ck.ObjectHandle) (*mech.Key, error) {
	sess, err := m.session(h)
	if err != nil {
		return nil, err
	}
	o, err := sess.tok.visible(oh)
	if err != nil {
		return nil, err
	}
	return o.key(m.reg)
}
