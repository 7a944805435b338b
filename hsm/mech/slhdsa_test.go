package mech

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/vectors"
)

// SLH-DSA vectors: neither the pinned ACVP module (geomys/acvp-testdata,
// Go's FIPS 140-3 set) nor the pinned Wycheproof release has SLH-DSA, so
// the NIST ACVP-Server sample vectors (vsId 53, FIPS205) come from the
// testdata that circl ships in its module, at the version go.mod pins.

const circlModule = "github.com/cloudflare/circl"

// circlTestdata is circl's sign/slhdsa/testdata at the version go.mod
// requires (asked of `go list -m`, run in this package's directory, which
// reads go.mod and does not change it).
func circlTestdata(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", circlModule).Output()
	version := strings.TrimSpace(string(out))
	if err != nil || version == "" {
		t.Fatalf("go list -m %s: %v (%q)", circlModule, err, out)
	}
	return filepath.Join(vectors.Dir(t, circlModule, version), "sign", "slhdsa", "testdata")
}

// slhdsaACVP reads a gzipped ACVP JSON file (prompt or result) of circl's
// testdata and returns its test groups.
func slhdsaACVP(t testing.TB, dir, name string) []json.RawMessage {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name+".json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Algorithm  string            `json:"algorithm"`
		TestGroups []json.RawMessage `json:"testGroups"`
	}
	if err := json.NewDecoder(z).Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if v.Algorithm != "SLH-DSA" || len(v.TestGroups) == 0 {
		t.Fatalf("%s: algorithm %q, %d groups", name, v.Algorithm, len(v.TestGroups))
	}
	return v.TestGroups
}

// slhdsaResults maps tcId to the expected fields of a result file.
func slhdsaResults(t testing.TB, dir, name string) map[int]map[string]json.RawMessage {
	t.Helper()
	m := map[int]map[string]json.RawMessage{}
	for _, raw := range slhdsaACVP(t, dir, name) {
		var g struct{ Tests []map[string]json.RawMessage }
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		for _, tc := range g.Tests {
			var id int
			if err := json.Unmarshal(tc["tcId"], &id); err != nil {
				t.Fatal(err)
			}
			m[id] = tc
		}
	}
	return m
}

func slhdsaSetByName(t testing.TB, name string) *slhdsaSet {
	t.Helper()
	for i := range slhdsaSets {
		if slhdsaSets[i].name == name {
			return &slhdsaSets[i]
		}
	}
	t.Fatalf("parameter set %q", name)
	return nil
}

// slhdsaFast reports whether s is an "f" set. The "s" sets are an order of
// magnitude slower to generate and sign (about 0.25 s and 1 s per vector),
// so they run only without -short, and then only the first few vectors of
// each group: all of them would take a minute.
func slhdsaFast(s *slhdsaSet) bool { return strings.HasSuffix(s.name, "f") }

// slhdsaRun reports whether to run vector i (from 0) of a group of set s,
// taking at most slow vectors of a group of an "s" set.
func slhdsaRun(s *slhdsaSet, i, slow int) bool {
	if slhdsaFast(s) {
		return true
	}
	return !testing.Short() && i < slow
}

func slhdsaTemplate(s *slhdsaSet, a ...ck.Attribute) attr.Template {
	return append(attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(ck.ULong(s.set))}}, a...)
}

func slhdsaParse(t testing.TB, class ck.ObjectClass, a attr.Template) (*Key, error) {
	kk, _ := classicReg().KeyKind(ck.CKK_SLH_DSA)
	m, err := kk.Parse(class, a)
	if err != nil {
		return nil, err
	}
	return &Key{Class: class, Type: ck.CKK_SLH_DSA, Material: m, Attrs: a}, nil
}

func hexField(t testing.TB, m map[string]json.RawMessage, k string) []byte {
	t.Helper()
	s, ok := acvpString(t, m, k)
	if !ok {
		t.Fatalf("acvp field %s missing", k)
	}
	return mustHex(t, s)
}

func TestACVPSLHDSAKeyGen(t *testing.T) {
	t.Parallel()
	dir := circlTestdata(t)
	want := slhdsaResults(t, dir, "keyGen_results")
	n := 0
	for _, raw := range slhdsaACVP(t, dir, "keyGen_prompt") {
		var g struct {
			ParameterSet string
			Tests        []map[string]json.RawMessage
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		s := slhdsaSetByName(t, g.ParameterSet)
		for i, tc := range g.Tests {
			if !slhdsaRun(s, i, 2) {
				continue
			}
			n++
			var id int
			json.Unmarshal(tc["tcId"], &id)
			seeds := append(append(hexField(t, tc, "skSeed"), hexField(t, tc, "skPrf")...), hexField(t, tc, "pkSeed")...)
			pk, sk, err := slhdsaFromSeeds(s, seeds)
			if err != nil {
				t.Fatal(err)
			}
			pkb, _ := pk.MarshalBinary()
			skb, _ := sk.MarshalBinary()
			wpk, wsk := hexField(t, want[id], "pk"), hexField(t, want[id], "sk")
			if !bytes.Equal(pkb, wpk) || !bytes.Equal(skb, wsk) {
				t.Errorf("%s keyGen #%d: keys differ", s.name, id)
			}
			// The expected private key is accepted as an object value, and
			// one with a flipped root bit is not.
			if _, err := slhdsaParse(t, ck.CKO_PRIVATE_KEY, slhdsaTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: wsk})); err != nil {
				t.Errorf("%s keyGen #%d: %v", s.name, id, err)
			}
			wsk[len(wsk)-1] ^= 1
			_, err = slhdsaParse(t, ck.CKO_PRIVATE_KEY, slhdsaTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: wsk}))
			expectRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "private key with a wrong PK.root")
		}
	}
	// 10 per set: all of the 6 "f" sets, 2 of each "s" set without -short.
	if testing.Short() {
		wantCount(t, "ACVP SLH-DSA keyGen (f sets)", n, 60)
	} else {
		wantCount(t, "ACVP SLH-DSA keyGen", n, 60+6*2)
	}
}

func TestACVPSLHDSASigGen(t *testing.T) {
	t.Parallel()
	dir := circlTestdata(t)
	want := slhdsaResults(t, dir, "sigGen_results")
	n := 0
	for _, raw := range slhdsaACVP(t, dir, "sigGen_prompt") {
		var g struct {
			ParameterSet, SignatureInterface, PreHash string
			Deterministic                             bool
			Tests                                     []map[string]json.RawMessage
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		// CKM_SLH_DSA is the external, pure interface. Hedged vectors fix
		// opt_rand, which a token draws itself, so only the deterministic
		// ones can be reproduced.
		if g.SignatureInterface != "external" || g.PreHash != "pure" || !g.Deterministic {
			continue
		}
		s := slhdsaSetByName(t, g.ParameterSet)
		for i, tc := range g.Tests {
			if !slhdsaRun(s, i, 1) {
				continue
			}
			n++
			var id int
			json.Unmarshal(tc["tcId"], &id)
			k, err := slhdsaParse(t, ck.CKO_PRIVATE_KEY, slhdsaTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: hexField(t, tc, "sk")}))
			if err != nil {
				t.Fatalf("%s sigGen #%d: %v", s.name, id, err)
			}
			sg, err := regMech(t, ck.CKM_SLH_DSA).Sign(k, ctxParam(hexField(t, tc, "context"), ck.CKH_DETERMINISTIC_REQUIRED))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := sg.Sign(hexField(t, tc, "message"))
			if err != nil || !bytes.Equal(sig, hexField(t, want[id], "signature")) {
				t.Errorf("%s sigGen #%d: signature differs (%v)", s.name, id, err)
			}
		}
	}
	// 7 per set: all of the 6 "f" sets, 1 of each "s" set without -short.
	if testing.Short() {
		wantCount(t, "ACVP SLH-DSA sigGen (f sets)", n, 42)
	} else {
		wantCount(t, "ACVP SLH-DSA sigGen", n, 42+6)
	}
}

func TestACVPSLHDSASigVer(t *testing.T) {
	t.Parallel()
	dir := circlTestdata(t)
	want := slhdsaResults(t, dir, "verify_results")
	n, pass := 0, 0
	for _, raw := range slhdsaACVP(t, dir, "verify_prompt") {
		var g struct {
			ParameterSet, SignatureInterface, PreHash string
			Tests                                     []map[string]json.RawMessage
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		if g.SignatureInterface != "external" || g.PreHash != "pure" {
			continue
		}
		s := slhdsaSetByName(t, g.ParameterSet)
		for _, tc := range g.Tests {
			n++
			var id int
			json.Unmarshal(tc["tcId"], &id)
			k, err := slhdsaParse(t, ck.CKO_PUBLIC_KEY, slhdsaTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: hexField(t, tc, "pk")}))
			if err != nil {
				t.Fatalf("%s sigVer #%d: %v", s.name, id, err)
			}
			err = sigVerify(t, ck.CKM_SLH_DSA, ctxParam(hexField(t, tc, "context"), ck.CKH_HEDGE_PREFERRED), k,
				hexField(t, tc, "message"), hexField(t, tc, "signature"))
			ok := acvpPassed(t, want[id])
			if ok != (err == nil) {
				t.Errorf("%s sigVer #%d: got %v, want pass=%v", s.name, id, err, ok)
			}
			if ok {
				pass++
			}
		}
	}
	// 14 per set for all 12 sets (verification is fast for every set).
	wantCount(t, "ACVP SLH-DSA sigVer", n, 168)
	if pass == 0 || pass == n {
		t.Errorf("sigVer: %d of %d pass; the set must hold both verdicts", pass, n)
	}
}

func genSLHDSA(t testing.TB, set ck.ParameterSet) (pub, priv *Key) {
	t.Helper()
	pa, pr, err := regMech(t, ck.CKM_SLH_DSA_KEY_PAIR_GEN).GenerateKeyPair(
		attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(ck.ULong(set))}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return keyOf(t, ck.CKK_SLH_DSA, ck.CKO_PUBLIC_KEY, pa), keyOf(t, ck.CKK_SLH_DSA, ck.CKO_PRIVATE_KEY, pr)
}

func TestSLHDSAKeyGenSignVerify(t *testing.T) {
	t.Parallel()
	msg := bytes.Repeat([]byte("hash-based "), 30)
	kk, _ := classicReg().KeyKind(ck.CKK_SLH_DSA)
	for _, s := range slhdsaSets {
		// Of the slow sets, the smallest and the largest without -short.
		if !slhdsaFast(&s) && (testing.Short() || (s.set != ck.CKP_SLH_DSA_SHA2_128S && s.set != ck.CKP_SLH_DSA_SHAKE_256S)) {
			continue
		}
		pub, priv := genSLHDSA(t, s.set)
		sk, _ := priv.Attrs.Get(ck.CKA_VALUE)
		pk, _ := pub.Attrs.Get(ck.CKA_VALUE)
		if len(sk) != s.skLen() || len(pk) != s.pkLen() || !bytes.Equal(sk[2*s.n:], pk) {
			t.Fatalf("%s: sk %d pk %d bytes, or sk does not end with pk", s.name, len(sk), len(pk))
		}
		if _, has := priv.Attrs.Get(ck.CKA_SEED); has {
			t.Fatalf("%s: SLH-DSA private key has CKA_SEED", s.name)
		}
		if ps, _, _ := priv.Attrs.ULong(ck.CKA_PARAMETER_SET); ps != ck.ULong(s.set) {
			t.Fatalf("%s: private CKA_PARAMETER_SET %d", s.name, ps)
		}
		if kk.Size(pub.Attrs, pub.Material) != ck.ULong(s.pkLen()) {
			t.Fatal("size")
		}
		// Hedged (the default) signatures differ and verify.
		sg, _ := regMech(t, ck.CKM_SLH_DSA).Sign(priv, nil)
		a, err := sg.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != s.sigLen || sg.Len() != s.sigLen {
			t.Fatalf("%s: signature %d bytes, Len %d, want %d", s.name, len(a), sg.Len(), s.sigLen)
		}
		if err := sigVerify(t, ck.CKM_SLH_DSA, nil, pub, msg, a); err != nil {
			t.Fatal(err)
		}
		if !slhdsaFast(&s) {
			continue // one round trip is enough for the slow sets
		}
		b, _ := sg.Sign(msg)
		if bytes.Equal(a, b) {
			t.Fatalf("%s: hedged signatures equal", s.name)
		}
		// Deterministic: one-shot and multi-part agree, and repeat.
		det := ctxParam([]byte("app"), ck.CKH_DETERMINISTIC_REQUIRED)
		sd, _ := regMech(t, ck.CKM_SLH_DSA).Sign(priv, det)
		c, _ := sd.Sign(msg)
		sd.Update(msg[:7])
		sd.Update(msg[7:])
		d, err := sd.Final()
		if err != nil || !bytes.Equal(c, d) {
			t.Fatalf("%s: deterministic one-shot and multi-part differ: %v", s.name, err)
		}
		if err := sigVerify(t, ck.CKM_SLH_DSA, det, pub, msg, c); err != nil {
			t.Fatal(err)
		}
		// The context binds; a tampered message or signature fails.
		expectRV(t, sigVerify(t, ck.CKM_SLH_DSA, nil, pub, msg, c), ck.CKR_SIGNATURE_INVALID, "missing context")
		expectRV(t, sigVerify(t, ck.CKM_SLH_DSA, ctxParam([]byte("apq"), 0), pub, msg, c), ck.CKR_SIGNATURE_INVALID, "other context")
		bad := append([]byte(nil), c...)
		bad[len(bad)/2] ^= 0x10
		expectRV(t, sigVerify(t, ck.CKM_SLH_DSA, det, pub, msg, bad), ck.CKR_SIGNATURE_INVALID, "tampered signature")
		expectRV(t, sigVerify(t, ck.CKM_SLH_DSA, det, pub, msg[1:], c), ck.CKR_SIGNATURE_INVALID, "tampered message")
		v, _ := regMech(t, ck.CKM_SLH_DSA).Verify(pub, det)
		expectRV(t, v.Update(msg), ck.CKR_FUNCTION_NOT_SUPPORTED, "multi-part verify")
		expectRV(t, v.Verify(msg, c[1:]), ck.CKR_SIGNATURE_LEN_RANGE, "short signature")
		// The private key re-created from its CKA_VALUE signs identically.
		k2, err := slhdsaParse(t, ck.CKO_PRIVATE_KEY, slhdsaTemplate(&s, ck.Attribute{Type: ck.CKA_VALUE, Value: sk}))
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := regMech(t, ck.CKM_SLH_DSA).Sign(k2, det)
		if e, _ := s2.Sign(msg); !bytes.Equal(e, c) {
			t.Fatalf("%s: re-created key signs differently", s.name)
		}
	}
}

func TestSLHDSAErrors(t *testing.T) {
	s := slhdsaSetByName(t, "SLH-DSA-SHAKE-128f")
	pub, priv := genSLHDSA(t, s.set)
	pk, _ := pub.Attrs.Get(ck.CKA_VALUE)
	sk, _ := priv.Attrs.Get(ck.CKA_VALUE)
	other := slhdsaSetByName(t, "SLH-DSA-SHA2-128f") // same sizes, other hash
	for _, c := range []struct {
		class ck.ObjectClass
		a     attr.Template
		rv    ck.RV
		what  string
	}{
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: pk}}, ck.CKR_TEMPLATE_INCOMPLETE, "no parameter set"},
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(13)}, {Type: ck.CKA_VALUE, Value: pk}}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "unknown parameter set"},
		{ck.CKO_PUBLIC_KEY, slhdsaTemplate(slhdsaSetByName(t, "SLH-DSA-SHAKE-192f"), ck.Attribute{Type: ck.CKA_VALUE, Value: pk}), ck.CKR_ATTRIBUTE_VALUE_INVALID, "128 key as 192"},
		{ck.CKO_PUBLIC_KEY, slhdsaTemplate(s), ck.CKR_TEMPLATE_INCOMPLETE, "no value"},
		{ck.CKO_PRIVATE_KEY, slhdsaTemplate(s), ck.CKR_TEMPLATE_INCOMPLETE, "no private value"},
		{ck.CKO_PRIVATE_KEY, slhdsaTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: pk}), ck.CKR_ATTRIBUTE_VALUE_INVALID, "public bytes as private"},
		{ck.CKO_PRIVATE_KEY, slhdsaTemplate(other, ck.Attribute{Type: ck.CKA_VALUE, Value: sk}), ck.CKR_ATTRIBUTE_VALUE_INVALID, "SHAKE key as SHA2"},
		{ck.CKO_SECRET_KEY, slhdsaTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: pk}), ck.CKR_TEMPLATE_INCONSISTENT, "secret class"},
	} {
		_, err := slhdsaParse(t, c.class, c.a)
		expectRV(t, err, c.rv, c.what)
	}
	m := regMech(t, ck.CKM_SLH_DSA)
	_, err := m.Sign(pub, nil)
	expectRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT, "sign with public key")
	_, err = m.Sign(priv, ctxParam(make([]byte, 256), 0))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "256-byte context")
	_, err = m.Verify(pub, ctxParam(make([]byte, 256), 0))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "256-byte context on verify")
	_, err = m.Sign(priv, ctxParam(nil, 7))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "unknown hedge")
	_, err = m.Sign(priv, ck.EDDSAParams{})
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "wrong parameter type")
	// A 255-byte context is the longest allowed.
	sg, err := m.Sign(priv, ctxParam(make([]byte, 255), ck.CKH_HEDGE_REQUIRED))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sg.Sign([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sigVerify(t, ck.CKM_SLH_DSA, ctxParam(make([]byte, 255), 0), pub, []byte("x"), sig); err != nil {
		t.Fatal(err)
	}
	gen := regMech(t, ck.CKM_SLH_DSA_KEY_PAIR_GEN)
	_, _, err = gen.GenerateKeyPair(nil, nil)
	expectRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "keygen without parameter set")
	_, _, err = gen.GenerateKeyPair(attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(0)}}, nil)
	expectRV(t, err, ck.CKR_PARAMETER_SET_NOT_SUPPORTED, "keygen with parameter set 0")
	_, _, err = gen.GenerateKeyPair(attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(13)}}, nil)
	expectRV(t, err, ck.CKR_PARAMETER_SET_NOT_SUPPORTED, "keygen with unknown parameter set")
	_, _, err = gen.GenerateKeyPair(slhdsaTemplate(s), attr.Template{{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_ML_DSA))}})
	expectRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "keygen with ML-DSA key type")
}

func benchSLHDSA(b *testing.B, set ck.ParameterSet, verify bool) {
	pub, priv := genSLHDSA(b, set)
	s, err := regMech(b, ck.CKM_SLH_DSA).Sign(priv, nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 64)
	sig, err := s.Sign(msg)
	if err != nil {
		b.Fatal(err)
	}
	v, err := regMech(b, ck.CKM_SLH_DSA).Verify(pub, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if verify {
			err = v.Verify(msg, sig)
		} else {
			_, err = s.Sign(msg)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSLHDSASHA2128fSign(b *testing.B)   { benchSLHDSA(b, ck.CKP_SLH_DSA_SHA2_128F, false) }
func BenchmarkSLHDSASHA2128fVerify(b *testing.B) { benchSLHDSA(b, ck.CKP_SLH_DSA_SHA2_128F, true) }
func BenchmarkSLHDSASHA2128sSign(b *testing.B)   { benchSLHDSA(b, ck.CKP_SLH_DSA_SHA2_128S, false) }
func BenchmarkSLHDSASHA2128sVerify(b *testing.B) { benchSLHDSA(b, ck.CKP_SLH_DSA_SHA2_128S, true) }

// BenchmarkSLHDSAParsePrivate is the once-per-object cost of checking an
// imported private key's PK.root.
func BenchmarkSLHDSAParsePrivate(b *testing.B) {
	for _, name := range []string{"SLH-DSA-SHA2-128f", "SLH-DSA-SHA2-128s", "SLH-DSA-SHAKE-256s"} {
		b.Run(name, func(b *testing.B) {
			s := slhdsaSetByName(b, name)
			_, priv := genSLHDSA(b, s.set)
			for b.Loop() {
				if _, err := parseSLHDSA(ck.CKO_PRIVATE_KEY, priv.Attrs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
