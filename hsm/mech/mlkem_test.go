package mech

import (
	"bytes"
	"compress/bzip2"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/vectors"
)

func mlkemSetByName(t testing.TB, name string) *mlkemSet {
	t.Helper()
	for i := range mlkemSets {
		if mlkemSets[i].name == name {
			return &mlkemSets[i]
		}
	}
	t.Fatalf("no ML-KEM set %q", name)
	return nil
}

func mlkemTemplate(s *mlkemSet, attrs ...ck.Attribute) attr.Template {
	return append(attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(ck.ULong(s.set))}}, attrs...)
}

func hexOf(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// acvpMLKEM reads the ML-KEM prompt and expected files of the pinned ACVP
// set. Its tcIds are strings in some groups and numbers in others, so it
// does not go through acvpLoad.
func acvpMLKEM(t *testing.T) (prompts, answers []map[string]json.RawMessage) {
	dir := vectors.ACVPDir(t)
	read := func(sub string) []map[string]json.RawMessage {
		f, err := os.Open(filepath.Join(dir, sub, "ML-KEM.bz2"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var v []map[string]json.RawMessage
		if err := json.NewDecoder(bzip2.NewReader(f)).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v[1:]
	}
	return read("vectors"), read("expected")
}

type acvpMLKEMGroup struct {
	TgID         json.RawMessage     `json:"tgId"`
	TestType     string              `json:"testType"`
	ParameterSet string              `json:"parameterSet"`
	Function     string              `json:"function"`
	Tests        []map[string]string `json:"-"`
	RawTests     []json.RawMessage   `json:"tests"`
}

// tcFields decodes a test case whose values are hex strings and whose tcId
// may be a string or a number.
func tcFields(t *testing.T, raw json.RawMessage) (string, map[string]string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	id := ""
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) != nil {
			var n int
			if err := json.Unmarshal(v, &n); err != nil {
				continue
			}
			s = strconv.Itoa(n)
		}
		if k == "tcId" {
			id = s
		} else {
			out[k] = s
		}
	}
	return id, out
}

func groupsOf(t *testing.T, set map[string]json.RawMessage) []acvpMLKEMGroup {
	var gs []acvpMLKEMGroup
	if err := json.Unmarshal(set["testGroups"], &gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

// TestACVPMLKEM runs NIST's ACVP keyGen (AFT), encapsulation (AFT) and
// decapsulation (VAL) vectors through the key kind's Parse and the
// mechanism's KEM functions.
func TestACVPMLKEM(t *testing.T) {
	prompts, answers := acvpMLKEM(t)
	ran := map[string]int{}
	for i, set := range prompts {
		var mode string
		_ = json.Unmarshal(set["mode"], &mode)
		expected := map[string]map[string]string{}
		for _, g := range groupsOf(t, answers[i]) {
			for _, raw := range g.RawTests {
				id, f := tcFields(t, raw)
				expected[string(g.TgID)+"/"+id] = f
			}
		}
		for _, g := range groupsOf(t, set) {
			s := mlkemSetByName(t, g.ParameterSet)
			for _, raw := range g.RawTests {
				id, in := tcFields(t, raw)
				want, ok := expected[string(g.TgID)+"/"+id]
				if !ok {
					t.Fatalf("%s tc %s: no expected result", mode, id)
				}
				name := mode + "/" + g.ParameterSet + "/" + id
				switch {
				case mode == "keyGen":
					seed := append(hexOf(t, in["d"]), hexOf(t, in["z"])...)
					mat, err := parseMLKEM(ck.CKO_PRIVATE_KEY, mlkemTemplate(s, ck.Attribute{Type: ck.CKA_SEED, Value: seed}))
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					k := mat.(*mlkemKey)
					ek, _ := k.pub.MarshalBinary()
					dk, _ := k.priv.MarshalBinary()
					if !bytes.Equal(ek, hexOf(t, want["ek"])) || !bytes.Equal(dk, hexOf(t, want["dk"])) {
						t.Errorf("%s: ek/dk differ", name)
					}
					// The expanded form alone parses to the same key.
					mat2, err := parseMLKEM(ck.CKO_PRIVATE_KEY, mlkemTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: dk}))
					if err != nil || !mat2.(*mlkemKey).priv.Equal(k.priv) {
						t.Errorf("%s: dk alone: %v", name, err)
					}
				case g.Function == "encapsulation":
					mat, err := parseMLKEM(ck.CKO_PUBLIC_KEY, mlkemTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: hexOf(t, in["ek"])}))
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					k := mat.(*mlkemKey)
					ct, ss, err := s.scheme.EncapsulateDeterministically(k.pub, hexOf(t, in["m"]))
					if err != nil || !bytes.Equal(ct, hexOf(t, want["c"])) || !bytes.Equal(ss, hexOf(t, want["k"])) {
						t.Errorf("%s: encapsulation differs (%v)", name, err)
					}
				case g.Function == "decapsulation":
					key := &Key{Class: ck.CKO_PRIVATE_KEY, Type: ck.CKK_ML_KEM,
						Attrs: mlkemTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: hexOf(t, in["dk"])})}
					ss, err := mlkemDecapsulate(key, nil, hexOf(t, in["c"]))
					if err != nil || !bytes.Equal(ss, hexOf(t, want["k"])) {
						t.Errorf("%s: decapsulation differs (%v)", name, err)
					}
				default:
					t.Fatalf("%s: unknown group", name)
				}
				ran[mode+"/"+g.Function]++
			}
		}
	}
	if ran["keyGen/"] == 0 || ran["encapDecap/encapsulation"] == 0 || ran["encapDecap/decapsulation"] == 0 {
		t.Fatalf("vector groups missing: %v", ran)
	}
	t.Logf("ACVP ML-KEM: %v", ran)
}

// TestWycheproofMLKEM: the strcmp vectors (implicit rejection of a
// ciphertext starting with a zero byte) must decapsulate to the expected
// rejection secret; the modulus-overflow encapsulation keys must be refused
// at object creation (FIPS 203 §7.2).
func TestWycheproofMLKEM(t *testing.T) {
	f := wpLoad(t, "mlkem_test.json")
	n := 0
	for _, raw := range f.TestGroups {
		var g struct {
			Type         string `json:"type"`
			ParameterSet string `json:"parameterSet"`
			Tests        []struct {
				TcID   int    `json:"tcId"`
				Seed   string `json:"seed"`
				Ek     string `json:"ek"`
				C      string `json:"c"`
				K      string `json:"K"`
				Result string `json:"result"`
			} `json:"tests"`
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		s := mlkemSetByName(t, g.ParameterSet)
		for _, tc := range g.Tests {
			n++
			switch g.Type {
			case "MLKEMTest":
				key := &Key{Class: ck.CKO_PRIVATE_KEY, Type: ck.CKK_ML_KEM,
					Attrs: mlkemTemplate(s, ck.Attribute{Type: ck.CKA_SEED, Value: hexOf(t, tc.Seed)})}
				pub, err := parseMLKEM(ck.CKO_PUBLIC_KEY, mlkemTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: hexOf(t, tc.Ek)}))
				if err != nil {
					t.Fatalf("#%d: ek: %v", tc.TcID, err)
				}
				mat, _ := parseMLKEM(ck.CKO_PRIVATE_KEY, key.Attrs)
				if !mat.(*mlkemKey).pub.Equal(pub.(*mlkemKey).pub) {
					t.Errorf("#%d: seed does not give ek", tc.TcID)
				}
				ss, err := mlkemDecapsulate(key, nil, hexOf(t, tc.C))
				if err != nil || !bytes.Equal(ss, hexOf(t, tc.K)) {
					t.Errorf("#%d (%s): decapsulation %x, %v", tc.TcID, tc.Result, ss, err)
				}
			case "MLKEMEncapsTest":
				_, err := parseMLKEM(ck.CKO_PUBLIC_KEY, mlkemTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: hexOf(t, tc.Ek)}))
				if tc.Result == "invalid" && !errors.Is(err, ck.CKR_ATTRIBUTE_VALUE_INVALID) {
					t.Errorf("#%d: bad ek accepted (%v)", tc.TcID, err)
				}
			default:
				t.Fatalf("group type %q", g.Type)
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d vectors", n)
	}
}

func TestMLKEMKeys(t *testing.T) {
	r := New(ck.DefaultProfile)
	gen, _ := r.Mechanism(ck.CKM_ML_KEM_KEY_PAIR_GEN)
	kem, _ := r.Mechanism(ck.CKM_ML_KEM)
	for _, s := range mlkemSets {
		pubT, privT, err := gen.GenerateKeyPair(mlkemTemplate(&s), nil)
		if err != nil {
			t.Fatal(err)
		}
		pub := &Key{Class: ck.CKO_PUBLIC_KEY, Type: ck.CKK_ML_KEM, Attrs: pubT}
		priv := &Key{Class: ck.CKO_PRIVATE_KEY, Type: ck.CKK_ML_KEM, Attrs: privT}
		n, err := kem.CiphertextLen(pub)
		if err != nil || n != s.scheme.CiphertextSize() {
			t.Fatalf("%s: CiphertextLen %d, %v", s.name, n, err)
		}
		if _, err := kem.Encapsulate(pub, nil, make([]byte, n-1)); !errors.Is(err, ck.CKR_BUFFER_TOO_SMALL) {
			t.Fatalf("%s: short ciphertext buffer: %v", s.name, err)
		}
		ct := make([]byte, n)
		ss, err := kem.Encapsulate(pub, nil, ct)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) != 32 || bytes.Equal(ct, make([]byte, n)) {
			t.Fatalf("%s: secret %d bytes, ciphertext written: %v", s.name, len(ss), !bytes.Equal(ct, make([]byte, n)))
		}
		ss2, err := kem.Decapsulate(priv, nil, ct)
		if err != nil || !bytes.Equal(ss, ss2) {
			t.Fatalf("%s: round trip: %v", s.name, err)
		}
		// Implicit rejection: a changed ciphertext gives another secret,
		// not an error.
		ct[5] ^= 1
		ss3, err := kem.Decapsulate(priv, nil, ct)
		if err != nil || bytes.Equal(ss3, ss) || len(ss3) != 32 {
			t.Fatalf("%s: tampered ciphertext: %v", s.name, err)
		}
		if _, err := kem.Decapsulate(priv, nil, ct[1:]); !errors.Is(err, ck.CKR_WRAPPED_KEY_LEN_RANGE) {
			t.Fatalf("%s: short ciphertext: %v", s.name, err)
		}
		if _, err := kem.Decapsulate(pub, nil, ct); !errors.Is(err, ck.CKR_KEY_TYPE_INCONSISTENT) {
			t.Fatalf("%s: decapsulate with the public key: %v", s.name, err)
		}
		if _, err := kem.Encapsulate(pub, []byte{1}, ct); !errors.Is(err, ck.CKR_MECHANISM_PARAM_INVALID) {
			t.Fatalf("%s: parameter accepted: %v", s.name, err)
		}
		// Seed and value must agree.
		seed, _ := privT.Get(ck.CKA_SEED)
		other := append([]byte(nil), seed...)
		other[0] ^= 1
		dk, _ := privT.Get(ck.CKA_VALUE)
		_, err = parseMLKEM(ck.CKO_PRIVATE_KEY, mlkemTemplate(&s, ck.Attribute{Type: ck.CKA_SEED, Value: other}, ck.Attribute{Type: ck.CKA_VALUE, Value: dk}))
		if !errors.Is(err, ck.CKR_ATTRIBUTE_VALUE_INVALID) {
			t.Fatalf("%s: mismatched seed and value: %v", s.name, err)
		}
		// A dk whose H(ek) field is wrong fails the §7.3 check.
		bad := append([]byte(nil), dk...)
		bad[len(bad)-40] ^= 1
		if _, err := parseMLKEM(ck.CKO_PRIVATE_KEY, mlkemTemplate(&s, ck.Attribute{Type: ck.CKA_VALUE, Value: bad})); !errors.Is(err, ck.CKR_ATTRIBUTE_VALUE_INVALID) {
			t.Fatalf("%s: corrupt dk: %v", s.name, err)
		}
	}
	if _, _, err := gen.GenerateKeyPair(attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(9)}}, nil); !errors.Is(err, ck.CKR_PARAMETER_SET_NOT_SUPPORTED) {
		t.Fatalf("unknown parameter set: %v", err)
	}
}

func BenchmarkMLKEM768EncapsulateMech(b *testing.B) {
	r := New(ck.DefaultProfile)
	gen, _ := r.Mechanism(ck.CKM_ML_KEM_KEY_PAIR_GEN)
	kem, _ := r.Mechanism(ck.CKM_ML_KEM)
	s := mlkemSetByName(b, "ML-KEM-768")
	pubT, _, err := gen.GenerateKeyPair(mlkemTemplate(s), nil)
	if err != nil {
		b.Fatal(err)
	}
	mat, err := parseMLKEM(ck.CKO_PUBLIC_KEY, pubT)
	if err != nil {
		b.Fatal(err)
	}
	pub := &Key{Class: ck.CKO_PUBLIC_KEY, Type: ck.CKK_ML_KEM, Attrs: pubT, Material: mat}
	ct := make([]byte, s.scheme.CiphertextSize())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kem.Encapsulate(pub, nil, ct); err != nil {
			b.Fatal(err)
		}
	}
}
