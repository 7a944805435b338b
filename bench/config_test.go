package bench

import (
	"encoding/asn1"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseModule(t *testing.T) {
	for in, want := range map[string]Module{
		"gohsm=/a/b/libgohsm.so":          {Name: "gohsm", Path: "/a/b/libgohsm.so"},
		"/usr/lib/softhsm/libsofthsm2.so": {Name: "softhsm2", Path: "/usr/lib/softhsm/libsofthsm2.so"},
		"/odd/dir=x/libp11.so":            {Name: "p11", Path: "/odd/dir=x/libp11.so"},
	} {
		if got := ParseModule(in); got != want {
			t.Errorf("ParseModule(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestConfigRejects(t *testing.T) {
	for name, c := range map[string]Config{
		"unknown op":   {Raw: true, Duration: 1, Ops: []string{"nope"}},
		"thread count": {Raw: true, Duration: 1, Threads: []int{0}},
		"duration":     {Raw: true},
		"nothing":      {Duration: 1},
		"same name":    {Duration: 1, Modules: []Module{{Name: "a", Path: "x"}, {Name: "a", Path: "y"}}},
		"raw name":     {Duration: 1, Modules: []Module{{Name: RawName, Path: "x"}}},
	} {
		if err := c.normalise(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	q := Quick()
	if err := q.normalise(); err != nil {
		t.Fatal(err)
	}
	if q.Duration*2*3*21 > 120e9 { // 2 thread counts x 3 targets x 21 ops
		t.Errorf("quick preset too long: %v per measurement", q.Duration)
	}
}

func TestLoadSMCodes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sm.json")
	os.WriteFile(p, []byte(`{"CKM_SM4_CBC": "0x80000109", "CKK_SM4": 2147483650, "CKM_X": "17"}`), 0o600)
	m, err := LoadSMCodes(p)
	if err != nil {
		t.Fatal(err)
	}
	if m["CKM_SM4_CBC"] != 0x80000109 || m["CKK_SM4"] != 0x80000002 || m["CKM_X"] != 17 {
		t.Errorf("codes %v", m)
	}
	if m, err := LoadSMCodes(filepath.Join(dir, "missing.json")); err != nil || m != nil {
		t.Errorf("missing file: %v %v", m, err)
	}
	os.WriteFile(p, []byte(`{"CKM_SM4_CBC": "zz"}`), 0o600)
	if _, err := LoadSMCodes(p); err == nil {
		t.Error("a bad value was accepted")
	}
	// The repository's table, when present, parses and has what the SM ops need.
	if m, err := LoadSMCodes("../docs/sm-codes.json"); err != nil {
		t.Errorf("docs/sm-codes.json: %v", err)
	} else if m != nil {
		for _, k := range []string{"CKK_SM2", "CKK_SM4", "CKM_SM2_KEY_PAIR_GEN", "CKM_SM3_SM2", "CKM_SM4_CBC"} {
			if m[k] == 0 {
				t.Errorf("docs/sm-codes.json lacks %s", k)
			}
		}
	}
}

func TestFixtures(t *testing.T) {
	r, s := big.NewInt(0x1234), big.NewInt(0x5678)
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	der, err := rsToDER(sig)
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &back); err != nil || back.R.Cmp(r) != 0 || back.S.Cmp(s) != 0 {
		t.Errorf("rsToDER: %v %v", back, err)
	}
	if _, err := rsToDER(sig[:63]); err == nil {
		t.Error("odd-length r||s accepted")
	}
	pt := append([]byte{4}, make([]byte, 64)...)
	wrapped, _ := asn1.Marshal(pt)
	if got := ecPoint(wrapped); string(got) != string(pt) {
		t.Error("ecPoint did not unwrap the OCTET STRING")
	}
	if got := ecPoint(pt); string(got) != string(pt) {
		t.Error("ecPoint changed a raw point")
	}
	if string(gcmIV(1, 1)) == string(gcmIV(1, 2)) || string(gcmIV(1, 1)) == string(gcmIV(2, 1)) || len(gcmIV(0, 0)) != 12 {
		t.Error("gcmIV repeats")
	}
	if v, err := ulong([]byte{32, 0, 0, 0, 0, 0, 0, 0}); err != nil || v != 32 {
		t.Errorf("ulong: %d %v", v, err)
	}
}

// The raw target's ops check their own results; a check that cannot fail
// would make the raw column meaningless, so prove one does.
func TestRawOpsCheck(t *testing.T) {
	raw := &rawTarget{}
	for _, op := range Ops() {
		if op.Name == "keygen-rsa2048" && testing.Short() {
			continue
		}
		err := preflight(raw, &op)
		if why, ok := isSkip(err); ok {
			if op.Name != "find-label" {
				t.Errorf("%s skipped: %s", op.Name, why)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", op.Name, err)
		}
	}
	raw.ecSig[len(raw.ecSig)-1] ^= 1 // a bad signature the verify op must refuse
	op := opByName("ecdsa-p256-verify")
	w, _ := raw.newWorker(op, 0)
	if err := w.check(); err == nil || !strings.Contains(err.Error(), "good signature") {
		t.Errorf("verify check with a corrupted signature: %v", err)
	}
}
