package selftest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/vectors"
)

func TestAllPass(t *testing.T) {
	for _, p := range []*ck.Profile{nil, ck.DefaultProfile} {
		rep := Run(Options{Profile: p})
		for _, r := range rep.Results {
			t.Logf("%-18s %10s %v %s", r.Name, r.Took, r.Err, r.Note)
		}
		if !rep.OK() {
			t.Fatalf("self-tests failed: %s: %v", rep.Reason(), rep.Failed().Err)
		}
		if len(rep.Results) != len(Names()) {
			t.Fatalf("%d results for %d tests", len(rep.Results), len(Names()))
		}
		t.Logf("total %s", rep.Took)
	}
}

// TestEachFailsByName: each test, named, fails alone, through its real
// comparison; the name is matched without case.
func TestEachFailsByName(t *testing.T) {
	for _, n := range Names() {
		rep := Run(Options{Fail: strings.ToLower(n)})
		f := rep.Failed()
		if f == nil || f.Name != n {
			t.Fatalf("Fail=%s: failed %+v", n, f)
		}
		if rep.Reason() != "selftest FAIL: "+n {
			t.Fatalf("reason %q", rep.Reason())
		}
		for _, r := range rep.Results {
			if r.Name != n && r.Err != nil {
				t.Fatalf("Fail=%s also failed %s: %v", n, r.Name, r.Err)
			}
		}
		t.Logf("%s: %v", n, f.Err)
	}
}

func TestUnknownNameFails(t *testing.T) {
	rep := Run(Options{Fail: "AES-EBC"})
	if rep.OK() || !errors.Is(rep.Failed().Err, ErrUnknownTest) {
		t.Fatalf("a misspelt name passed: %+v", rep.Failed())
	}
}

func TestIntegrityHook(t *testing.T) {
	rep := Run(Options{Integrity: func(corrupt func([]byte) []byte) (string, error) {
		d := []byte{1, 2, 3}
		if !bytes.Equal(corrupt(d), d) {
			return "", errors.New("digest mismatch")
		}
		return "image 9.9", nil
	}})
	last := rep.Results[len(rep.Results)-1]
	if !rep.OK() || last.Name != IntegrityName || last.Note != "image 9.9" {
		t.Fatalf("%+v", last)
	}
	rep = Run(Options{Fail: IntegrityName, Integrity: func(corrupt func([]byte) []byte) (string, error) {
		d := []byte{1, 2, 3}
		if !bytes.Equal(corrupt(d), d) {
			return "", errors.New("digest mismatch")
		}
		return "", nil
	}})
	if rep.OK() || rep.Failed().Name != IntegrityName {
		t.Fatal("integrity not failed by name")
	}
}

// TestVectorsArePublished checks every entry of vectors.json against the
// published file it names (the pinned Wycheproof release, and the ACVP
// sample vectors in circl's module at go.mod's version), field by field.
func TestVectorsArePublished(t *testing.T) {
	var m map[string]map[string]any
	if err := json.Unmarshal(vectorsJSON, &m); err != nil {
		t.Fatal(err)
	}
	wp := filepath.Join(vectors.WycheproofDir(t), "testvectors_v1")
	load := func(name string) map[string]any {
		b, err := os.ReadFile(filepath.Join(wp, name))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// find returns the group and test of tcId in a Wycheproof file.
	find := func(file string, id int) (map[string]any, map[string]any) {
		for _, g := range load(file)["testGroups"].([]any) {
			gm := g.(map[string]any)
			for _, tc := range gm["tests"].([]any) {
				tm := tc.(map[string]any)
				if n, _ := tm["tcId"].(float64); int(n) == id {
					return gm, tm
				}
			}
		}
		t.Fatalf("%s: no tcId %d", file, id)
		return nil, nil
	}
	id := func(k string) int { return int(m[k]["tcId"].(float64)) }
	same := func(k, field string, want any) {
		t.Helper()
		if got := m[k][field]; !strings.EqualFold(got.(string), want.(string)) {
			t.Errorf("%s.%s differs from its source", k, field)
		}
	}
	g, tc := find("rsa_pkcs1_2048_sig_gen_test.json", id("rsa_sign"))
	same("rsa_sign", "pkcs8", g["privateKeyPkcs8"])
	same("rsa_sign", "msg", tc["msg"])
	same("rsa_sign", "sig", tc["sig"])
	if g["sha"] != "SHA-256" || tc["result"] != "valid" {
		t.Error("rsa_sign: not a valid SHA-256 vector")
	}
	g, tc = find("rsa_oaep_2048_sha256_mgf1sha256_test.json", id("rsa_oaep"))
	same("rsa_oaep", "pkcs8", g["privateKeyPkcs8"])
	same("rsa_oaep", "msg", tc["msg"])
	same("rsa_oaep", "ct", tc["ct"])
	g, tc = find("ecdsa_secp256r1_sha256_test.json", id("ecdsa_verify"))
	same("ecdsa_verify", "point", g["publicKey"].(map[string]any)["uncompressed"])
	same("ecdsa_verify", "msg", tc["msg"])
	if tc["result"] != "valid" {
		t.Error("ecdsa_verify: not a valid vector")
	}
	g, tc = find("mldsa_44_verify_test.json", id("mldsa_verify"))
	same("mldsa_verify", "pk", g["publicKey"])
	same("mldsa_verify", "sig", tc["sig"])
	same("mldsa_verify", "msg", tc["msg"])
	g, tc = find("mldsa_44_sign_seed_test.json", id("mldsa_sign"))
	same("mldsa_sign", "seed", g["privateSeed"])
	same("mldsa_sign", "sig", tc["sig"])
	same("mldsa_sign", "msg", tc["msg"])
	for _, gr := range load("mlkem_test.json")["testGroups"].([]any) {
		gm := gr.(map[string]any)
		if gm["type"] != "MLKEMTest" || gm["parameterSet"] != "ML-KEM-768" {
			continue
		}
		for _, tcr := range gm["tests"].([]any) {
			tm := tcr.(map[string]any)
			if n, _ := tm["tcId"].(float64); int(n) == id("mlkem") {
				for _, f := range []string{"seed", "ek", "c"} {
					same("mlkem", f, tm[f])
				}
				same("mlkem", "K", tm["K"])
			}
		}
	}
	// SLH-DSA: circl's copy of the ACVP sample vectors.
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/cloudflare/circl").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(vectors.Dir(t, "github.com/cloudflare/circl", strings.TrimSpace(string(out))), "sign", "slhdsa", "testdata")
	gz := func(name string) map[string]any {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.NewDecoder(z).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	passed := map[int]bool{}
	for _, gr := range gz("verify_results.json.gz")["testGroups"].([]any) {
		for _, tcr := range gr.(map[string]any)["tests"].([]any) {
			tm := tcr.(map[string]any)
			passed[int(tm["tcId"].(float64))], _ = tm["testPassed"].(bool)
		}
	}
	found := false
	for _, gr := range gz("verify_prompt.json.gz")["testGroups"].([]any) {
		gm := gr.(map[string]any)
		for _, tcr := range gm["tests"].([]any) {
			tm := tcr.(map[string]any)
			if int(tm["tcId"].(float64)) != id("slhdsa_verify") {
				continue
			}
			found = true
			if gm["parameterSet"] != "SLH-DSA-SHA2-128s" || gm["preHash"] != "pure" || !passed[id("slhdsa_verify")] {
				t.Error("slhdsa_verify: not a passing pure SLH-DSA-SHA2-128s vector")
			}
			same("slhdsa_verify", "pk", tm["pk"])
			same("slhdsa_verify", "msg", tm["message"])
			same("slhdsa_verify", "ctx", tm["context"])
			same("slhdsa_verify", "sig", tm["signature"])
		}
	}
	if !found {
		t.Error("slhdsa_verify: tcId not in circl's testdata")
	}
}

func BenchmarkRun(b *testing.B) {
	for b.Loop() {
		if rep := Run(Options{}); !rep.OK() {
			b.Fatal(rep.Reason())
		}
	}
}
