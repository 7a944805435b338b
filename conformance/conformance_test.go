package conformance

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/internal/vectors"
)

var moduleFlag = flag.String("conformance.module", "", "PKCS#11 module to test (default $GOHSM_CONFORMANCE_MODULE, then ../build/libgohsm.so)")

const softhsm = "/usr/lib/softhsm/libsofthsm2.so"

// modulePath resolves the module under test. A missing module fails the
// test (a conformance run that silently passes would hide a broken build)
// unless -short is given, where it skips.
func modulePath(t *testing.T) string {
	p := *moduleFlag
	if p == "" {
		p = os.Getenv("GOHSM_CONFORMANCE_MODULE")
	}
	if p == "" {
		p = filepath.Join("..", "build", "libgohsm.so")
	}
	if _, err := os.Stat(p); err != nil {
		msg := "module " + p + " not found: run `make build`, or set GOHSM_CONFORMANCE_MODULE / -conformance.module"
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	abs, _ := filepath.Abs(p)
	return abs
}

// expectedFailures reads testdata/<name>.xfail: one check id per line, then
// the reason; '#' starts a comment.
func expectedFailures(t *testing.T, name string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(filepath.Join("testdata", name+".xfail"))
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, why, _ := strings.Cut(line, " ")
		out[id] = strings.TrimSpace(why)
	}
	return out
}

// judge fails the test on every failure not listed as expected, and on
// every expected failure that now passes (so the list cannot rot).
func judge(t *testing.T, name string, rs []Result) {
	xfail := expectedFailures(t, name)
	p, f, s := Totals(rs)
	t.Logf("%s: %d checks, %d pass, %d fail, %d skip", name, len(rs), p, f, s)
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.ID] = true
		_, expected := xfail[r.ID]
		switch {
		case r.Result == Fail && !expected:
			t.Errorf("%s [%s]: %s", r.ID, r.Spec, r.Detail)
		case r.Result != Fail && expected:
			t.Errorf("%s is listed in testdata/%s.xfail but now %s: remove it", r.ID, name, r.Result)
		}
	}
	for id := range xfail {
		if !seen[id] {
			t.Errorf("testdata/%s.xfail names unknown check %s", name, id)
		}
	}
}

// TestConformance runs the suite against our module (or the one named by
// GOHSM_CONFORMANCE_MODULE / -conformance.module); with
// GOHSM_CONFORMANCE_APPLIANCE (a gohsm binary) in remote mode, through an
// appliance on loopback (with GOHSM_CONFORMANCE_MEMBERS=3, a cluster of
// three members). GOHSM_CONFORMANCE_RESULTS names a file for the
// results' JSON (make test compares the local and the remote run's).
func TestConformance(t *testing.T) {
	path := modulePath(t)
	opts := Options{TokenDir: t.TempDir(), Logf: t.Logf, Appliance: os.Getenv("GOHSM_CONFORMANCE_APPLIANCE")}
	if d := os.Getenv("GOHSM_CONFORMANCE_DIR"); d != "" {
		opts.TokenDir = d // kept: the store and the appliance's logs, for a failure's post-mortem
	}
	if n := os.Getenv("GOHSM_CONFORMANCE_MEMBERS"); n != "" {
		var err error
		if opts.Members, err = strconv.Atoi(n); err != nil || opts.Members < 1 {
			t.Fatalf("GOHSM_CONFORMANCE_MEMBERS=%q: want a member count", n)
		}
	}
	gohsm := ModuleName(path) == "gohsm"
	if opts.Appliance != "" {
		if !gohsm {
			t.Fatalf("GOHSM_CONFORMANCE_APPLIANCE: remote mode is libgohsm.so's, not %s's", path)
		}
		t.Logf("remote mode: through %s serve", opts.Appliance)
	}
	if gohsm {
		// Our module runs the published vectors too; the set is fetched
		// through the module proxy, and a failed fetch fails the test.
		opts.WycheproofDir = vectors.WycheproofDir(t)
		opts.ACVPDir = vectors.ACVPDir(t)
	}
	rs, err := Run(path, opts)
	if err != nil {
		if rs == nil {
			t.Fatal(err)
		}
		t.Error(err)
	}
	if out := os.Getenv("GOHSM_CONFORMANCE_RESULTS"); out != "" {
		if err := WriteJSON(out, rs); err != nil {
			t.Error(err)
		}
	}
	if len(rs) < 300 {
		t.Fatalf("only %d checks ran", len(rs))
	}
	judge(t, ModuleName(path), rs)
	if gohsm {
		wantVectorCounts(t, rs)
	}
}

// minVectors is, per vectors check, the number of Wycheproof vectors the
// pinned set holds (internal/vectors.WycheproofVersion): a loader that
// silently finds fewer fails here even though its check passed.
var minVectors = map[string]int{
	"vectors.ed25519": 150, "vectors.ed448": 86,
	"vectors.x25519": 518, "vectors.x448": 510, "vectors.ecdh-p256": 355,
	"vectors.aes-wrap": 165, "vectors.aes-kwp": 254,
	"vectors.aes-cmac": 311, "vectors.hmac-sm3": 174, "vectors.hkdf-sha256": 86,
	"vectors.mldsa-44": 80, "vectors.mldsa-65": 83, "vectors.mldsa-87": 76, "vectors.mlkem": 39,
	"vectors.rsa-oaep-2048-sha256": 37, "vectors.sm4-gcm": 104,
	"vectors.rsa-pkcs1-sig-gen-1024": 33, "vectors.rsa-pkcs1-sig-gen-1536": 32, "vectors.rsa-pkcs1-sig-gen-2048": 43,
	"vectors.rsa-pkcs1-sig-gen-3072": 26, "vectors.rsa-pkcs1-sig-gen-4096": 24,
	"vectors.rsa-oaep-2048-sha1": 36, "vectors.rsa-oaep-2048-sha512": 33, "vectors.rsa-oaep-3072-sha256": 37,
	"vectors.rsa-oaep-4096-sha256": 37, "vectors.rsa-oaep-4096-sha512": 36, "vectors.rsa-oaep-misc": 395,
	// NIST ACVP (internal/vectors.ACVPVersion): every case of the files,
	// those PKCS#11 cannot express included.
	"vectors.acvp.ml-dsa": 21, "vectors.acvp.ml-kem": 6, "vectors.acvp.eddsa": 3,
	"vectors.acvp.cmac-aes": 12, "vectors.acvp.kda-hkdf": 400,
}

// minJudged is, per ACVP check, how many of those cases gohsm must run
// and pass (the verdict counts of the detail): the ACVP files mix in many
// cases PKCS#11 cannot express, so "N vectors" alone would let a check
// that skips everything through. ML-DSA: keyGen 3, deterministic sigGen
// 3, external sigVer 3; ML-KEM: keyGen 2, decapsulation 2; EDDSA: sigVer
// 2 (the keyVer key gohsm accepts is counted apart); KDA: HKDF with every
// PRF but SHA-512/224 and SHA-512/256, which gohsm does not offer.
var minJudged = map[string]int{
	"vectors.acvp.ml-dsa": 9, "vectors.acvp.ml-kem": 4, "vectors.acvp.eddsa": 2,
	"vectors.acvp.cmac-aes": 12, "vectors.acvp.kda-hkdf": 160,
}

var verdictCount = regexp.MustCompile(`\b(valid|invalid|acceptable) (\d+)`)

// judged sums the verdict counts of a vectors check's detail
// ("... N vectors (valid a, invalid b); ...").
func judged(detail string) int {
	head, _, _ := strings.Cut(detail, ";")
	n := 0
	for _, m := range verdictCount.FindAllStringSubmatch(head, -1) {
		k, _ := strconv.Atoi(m[2])
		n += k
	}
	return n
}

// wantVectorCounts checks every vectors check passed and ran at least its
// minimum ("<family>: N vectors ..." in the detail).
func wantVectorCounts(t *testing.T, rs []Result) {
	seen := 0
	for _, r := range rs {
		min, ok := minVectors[r.ID]
		if !ok {
			if strings.HasPrefix(r.ID, "vectors.") {
				t.Errorf("%s has no minimum vector count in minVectors", r.ID)
			}
			continue
		}
		seen++
		if r.Result == Fail {
			continue // judge reported it
		}
		if r.Result != Pass {
			t.Errorf("%s: %s (%s): gohsm must run every vectors check", r.ID, r.Result, r.Detail)
			continue
		}
		_, rest, _ := strings.Cut(r.Detail, ": ")
		var n int
		if _, err := fmt.Sscanf(rest, "%d vectors", &n); err != nil || n < min {
			t.Errorf("%s: ran %d vectors (detail %q), want at least %d", r.ID, n, r.Detail, min)
			continue
		}
		if want, ok := minJudged[r.ID]; ok && judged(r.Detail) < want {
			t.Errorf("%s: judged %d cases (detail %q), want at least %d", r.ID, judged(r.Detail), r.Detail, want)
		}
		t.Logf("%s", r.Detail)
	}
	if seen != len(minVectors) {
		t.Errorf("%d of the %d vectors checks ran", seen, len(minVectors))
	}
}

// TestSuiteCanFail proves the suite is able to fail: SoftHSMv2 2.6.1 has no
// PIN lockout, no RSA-OAEP with SHA-256 and lets C_WrapKey export a
// sensitive key, and testdata/softhsm2.xfail lists exactly what it fails.
func TestSuiteCanFail(t *testing.T) {
	if _, err := os.Stat(softhsm); err != nil {
		t.Skip("SoftHSMv2 not installed (apt-get install softhsm2)")
	}
	if os.Getenv("GOHSM_CONFORMANCE_MODULE") != "" || *moduleFlag != "" {
		t.Skip("a module was named explicitly; only that one is tested")
	}
	rs, err := Run(softhsm, Options{TokenDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"pin.user.locked", "enc.rsa-oaep-sha256.roundtrip", "wrap.attack.known-wrapping-key", "login.logout-twice"} {
		for _, r := range rs {
			if r.ID == must && r.Result != Fail {
				t.Errorf("%s: SoftHSMv2 2.6.1 must fail it, got %s (%s)", must, r.Result, r.Detail)
			}
		}
	}
	judge(t, "softhsm2", rs)
}

func TestChecksUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Checks() {
		if seen[c.ID] {
			t.Errorf("duplicate check id %s", c.ID)
		}
		if c.Spec == "" {
			t.Errorf("%s has no spec section", c.ID)
		}
		seen[c.ID] = true
	}
	if len(seen) < 300 {
		t.Errorf("%d checks, want at least 300", len(seen))
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{"/usr/lib/softhsm/libsofthsm2.so": "softhsm2", "build/libgohsm.so": "gohsm", "x/opensc-pkcs11.so": "opensc-pkcs11"} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}
