package mech

import (
	"bytes"
	"compress/bzip2"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/vectors"
)

// Shared helpers for the classic-family tests: everything goes through the
// Registry and the mech interfaces, as the engine will.

var classicReg = sync.OnceValue(func() *Registry { return New(ck.DefaultProfile) })

func regMech(t testing.TB, m ck.MechanismType) *Mechanism {
	t.Helper()
	mm, ok := classicReg().Mechanism(m)
	if !ok {
		t.Fatalf("mechanism %v not registered", m)
	}
	return mm
}

// keyOf builds a Key the way the engine does: KeyKind.Parse once.
func keyOf(t testing.TB, kt ck.KeyType, class ck.ObjectClass, a attr.Template) *Key {
	t.Helper()
	kk, ok := classicReg().KeyKind(kt)
	if !ok {
		t.Fatalf("key kind %v not registered", kt)
	}
	m, err := kk.Parse(class, a)
	if err != nil {
		t.Fatalf("parse %v key: %v", kt, err)
	}
	return &Key{Class: class, Type: kt, Material: m, Attrs: a}
}

func secretKeyOf(t testing.TB, kt ck.KeyType, v []byte) *Key {
	return keyOf(t, kt, ck.CKO_SECRET_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: v}})
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// isRV reports whether err carries rv.
func isRV(err error, rv ck.RV) bool { return errors.Is(err, rv) }

func expectRV(t testing.TB, err error, rv ck.RV, what string) {
	t.Helper()
	if !isRV(err, rv) {
		t.Fatalf("%s: got %v, want %v", what, err, rv)
	}
}

// ---- Wycheproof ----

type wpFile struct {
	Algorithm     string            `json:"algorithm"`
	NumberOfTests int               `json:"numberOfTests"`
	TestGroups    []json.RawMessage `json:"testGroups"`
}

type wpTest struct {
	TcID    int    `json:"tcId"`
	Comment string `json:"comment"`
	Result  string `json:"result"`
	Msg     string `json:"msg"`
	Sig     string `json:"sig"`
	Ct      string `json:"ct"`
	Key     string `json:"key"`
	Iv      string `json:"iv"`
	Aad     string `json:"aad"`
	Tag     string `json:"tag"`
	Label   string `json:"label"`
}

func wpLoad(t testing.TB, name string) wpFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors.WycheproofDir(t), "testvectors_v1", name))
	if err != nil {
		t.Fatalf("wycheproof %s: %v", name, err)
	}
	var f wpFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("wycheproof %s: %v", name, err)
	}
	if len(f.TestGroups) == 0 {
		t.Fatalf("wycheproof %s: no test groups", name)
	}
	return f
}

func wpGroup[G any](t testing.TB, raw json.RawMessage) G {
	t.Helper()
	var g G
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("wycheproof group: %v", err)
	}
	return g
}

// wpCheck applies Wycheproof's verdict: valid must pass, invalid must fail,
// acceptable may go either way.
func wpCheck(t testing.TB, file string, tc wpTest, err error) {
	t.Helper()
	switch tc.Result {
	case "valid":
		if err != nil {
			t.Errorf("%s #%d (%s): valid vector rejected: %v", file, tc.TcID, tc.Comment, err)
		}
	case "invalid":
		if err == nil {
			t.Errorf("%s #%d (%s): invalid vector accepted", file, tc.TcID, tc.Comment)
		}
	}
}

// ---- ACVP ----

type acvpSet struct {
	Algorithm  string            `json:"algorithm"`
	Mode       string            `json:"mode"`
	TestGroups []json.RawMessage `json:"testGroups"`
}

type acvpExpected struct {
	TestGroups []struct {
		TgID  int                          `json:"tgId"`
		Tests []map[string]json.RawMessage `json:"tests"`
	} `json:"testGroups"`
}

// acvpLoad reads a prompt file and its expected results (both bzip2 JSON
// arrays whose first element is session metadata) and returns the vector
// sets with, per set, a map from tcId to the expected fields.
func acvpLoad(t testing.TB, name string) ([]acvpSet, []map[int]map[string]json.RawMessage) {
	t.Helper()
	dir := vectors.ACVPDir(t)
	read := func(sub string, v any) {
		f, err := os.Open(filepath.Join(dir, sub, name+".bz2"))
		if err != nil {
			t.Fatalf("acvp %s: %v", name, err)
		}
		defer f.Close()
		if err := json.NewDecoder(bzip2.NewReader(f)).Decode(v); err != nil {
			t.Fatalf("acvp %s/%s: %v", sub, name, err)
		}
	}
	var prompts []json.RawMessage
	var answers []json.RawMessage
	read("vectors", &prompts)
	read("expected", &answers)
	if len(prompts) < 2 || len(prompts) != len(answers) {
		t.Fatalf("acvp %s: %d prompt sets, %d answer sets", name, len(prompts), len(answers))
	}
	var sets []acvpSet
	var exp []map[int]map[string]json.RawMessage
	for i := 1; i < len(prompts); i++ {
		var s acvpSet
		var e acvpExpected
		if err := json.Unmarshal(prompts[i], &s); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(answers[i], &e); err != nil {
			t.Fatal(err)
		}
		m := map[int]map[string]json.RawMessage{}
		for _, g := range e.TestGroups {
			for _, tc := range g.Tests {
				var id int
				if err := json.Unmarshal(tc["tcId"], &id); err != nil {
					t.Fatal(err)
				}
				m[id] = tc
			}
		}
		sets = append(sets, s)
		exp = append(exp, m)
	}
	return sets, exp
}

func acvpString(t testing.TB, m map[string]json.RawMessage, k string) (string, bool) {
	t.Helper()
	raw, ok := m[k]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("acvp field %s: %v", k, err)
	}
	return s, true
}

func acvpPassed(t testing.TB, m map[string]json.RawMessage) bool {
	t.Helper()
	var b bool
	if err := json.Unmarshal(m["testPassed"], &b); err != nil {
		t.Fatalf("acvp testPassed: %v", err)
	}
	return b
}

// wantCount fails a vector test that ran fewer vectors than the pinned
// sets hold: a suite that silently finds nothing must not pass.
func wantCount(t testing.TB, family string, got, want int) {
	t.Helper()
	t.Logf("%s: %d vectors", family, got)
	if got != want {
		t.Errorf("%s: ran %d vectors, want %d", family, got, want)
	}
}

// ---- generic secret ----

func TestGenericSecretKeyGen(t *testing.T) {
	m := regMech(t, ck.CKM_GENERIC_SECRET_KEY_GEN)
	a, err := m.GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(40)}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := a.Get(ck.CKA_VALUE)
	kt, _, _ := a.ULong(ck.CKA_KEY_TYPE)
	if len(v) != 40 || ck.KeyType(kt) != ck.CKK_GENERIC_SECRET || bytes.Equal(v, make([]byte, 40)) {
		t.Fatalf("generated %d bytes of type %v", len(v), ck.KeyType(kt))
	}
	// HMAC key types may be requested.
	a, err = m.GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_SHA256_HMAC))}})
	if err != nil {
		t.Fatal(err)
	}
	if kt, _, _ := a.ULong(ck.CKA_KEY_TYPE); ck.KeyType(kt) != ck.CKK_SHA256_HMAC {
		t.Fatalf("key type %v", ck.KeyType(kt))
	}
	_, err = m.GenerateKey(nil)
	expectRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "no CKA_VALUE_LEN")
	_, err = m.GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(0)}})
	expectRV(t, err, ck.CKR_KEY_SIZE_RANGE, "zero length")
	_, err = m.GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))}})
	expectRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "AES key type")

	kk, _ := classicReg().KeyKind(ck.CKK_GENERIC_SECRET)
	_, err = kk.Parse(ck.CKO_SECRET_KEY, nil)
	expectRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "parse without CKA_VALUE")
	d, _ := kk.Derived(ck.CKO_SECRET_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: make([]byte, 7)}}, nil)
	if n, _, _ := d.ULong(ck.CKA_VALUE_LEN); n != 7 {
		t.Fatalf("derived CKA_VALUE_LEN %d", n)
	}
}

// TestClassicRegistry checks that every classic mechanism is listed with
// coherent flags and operations.
func TestClassicRegistry(t *testing.T) {
	r := classicReg()
	fams := [][]Mechanism{rsaMechanisms(), ecMechanisms(), aesMechanisms(), des3Mechanisms(),
		digestMechanisms(), hmacMechanisms(), genericMechanisms()}
	n := 0
	for _, fam := range fams {
		for _, m := range fam {
			n++
			got, ok := r.Mechanism(m.Type)
			if !ok {
				t.Errorf("%v missing from registry", m.Type)
				continue
			}
			f := got.Info.Flags
			check := func(flag ck.Flags, has bool, what string) {
				if (f&flag != 0) != has {
					t.Errorf("%v: flag for %s is %v but function present is %v", m.Type, what, f&flag != 0, has)
				}
			}
			check(ck.CKF_ENCRYPT, got.Encrypt != nil, "encrypt")
			check(ck.CKF_DECRYPT, got.Decrypt != nil, "decrypt")
			check(ck.CKF_SIGN, got.Sign != nil, "sign")
			check(ck.CKF_VERIFY, got.Verify != nil, "verify")
			check(ck.CKF_DIGEST, got.Digest != nil, "digest")
			check(ck.CKF_GENERATE, got.GenerateKey != nil, "generate")
			check(ck.CKF_GENERATE_KEY_PAIR, got.GenerateKeyPair != nil, "generate key pair")
			if (got.Encrypt != nil || got.Sign != nil) && len(got.KeyTypes) == 0 {
				t.Errorf("%v: no key types", m.Type)
			}
			if got.Info.MinKeySize > got.Info.MaxKeySize {
				t.Errorf("%v: min key size above max", m.Type)
			}
		}
	}
	// RSA 15, EC 7, AES 6, DES3 4, digests 6, HMAC 10, generic 1.
	if n != 49 {
		t.Fatalf("%d classic mechanisms, want 49", n)
	}
	for _, kt := range []ck.KeyType{ck.CKK_RSA, ck.CKK_EC, ck.CKK_AES, ck.CKK_DES3, ck.CKK_GENERIC_SECRET, ck.CKK_SHA256_HMAC} {
		if _, ok := r.KeyKind(kt); !ok {
			t.Errorf("key kind %v missing", kt)
		}
	}
}

// vectorsDirList lists the Wycheproof v1 vector files.
func vectorsDirList(t testing.TB) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(vectors.WycheproofDir(t), "testvectors_v1"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
