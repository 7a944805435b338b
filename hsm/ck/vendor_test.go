package ck

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Regenerate docs/sm-codes.json from DefaultProfile with
//
//	go test ./hsm/ck -run TestSMCodesJSON -update
var update = flag.Bool("update", false, "rewrite docs/sm-codes.json from DefaultProfile")

const smCodesJSON = "../../docs/sm-codes.json"

// smNames is every constant name a profile may define; the mechanism
// families in hsm/mech look codes up by exactly these names.
var smNames = map[string]bool{
	"CKK_SM2": true, "CKK_SM4": true,
	"CKM_SM2_KEY_PAIR_GEN": true, "CKM_SM2_SIGN_RAW": true, "CKM_SM3_SM2": true, "CKM_SM2_ENCRYPT": true,
	"CKM_SM3": true, "CKM_SM3_HMAC": true, "CKM_SM3_HMAC_GENERAL": true,
	"CKM_SM4_KEY_GEN": true, "CKM_SM4_ECB": true, "CKM_SM4_CBC": true, "CKM_SM4_CBC_PAD": true,
	"CKM_SM4_CTR": true, "CKM_SM4_GCM": true, "CKM_SM4_MAC": true, "CKM_SM4_MAC_GENERAL": true,
}

func encodeSMCodes(p *Profile) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	names := p.Names()
	for i, n := range names {
		sep := ","
		if i == len(names)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %q: \"0x%08X\"%s\n", n, uint64(p.Codes[n]), sep)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func TestSMCodesJSON(t *testing.T) {
	want := encodeSMCodes(DefaultProfile)
	if *update {
		if err := os.WriteFile(smCodesJSON, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(smCodesJSON)
	if err != nil {
		t.Fatalf("%v (regenerate with -update)", err)
	}
	var m map[string]string
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("docs/sm-codes.json is not a flat JSON object: %v", err)
	}
	if len(m) != len(DefaultProfile.Codes) {
		t.Errorf("docs/sm-codes.json has %d names, DefaultProfile %d (regenerate with -update)", len(m), len(DefaultProfile.Codes))
	}
	for n, v := range DefaultProfile.Codes {
		if m[n] != fmt.Sprintf("0x%08X", uint64(v)) {
			t.Errorf("docs/sm-codes.json %s = %q, DefaultProfile has 0x%08X (regenerate with -update)", n, m[n], uint64(v))
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/sm-codes.json is not in canonical form (regenerate with -update)")
	}
}

func TestProfilesWellFormed(t *testing.T) {
	if Profiles()[0] != DefaultProfile || DefaultProfile.Name != "gohsm" {
		t.Fatalf("first profile is %q, want the default gohsm", Profiles()[0].Name)
	}
	seen := map[string]bool{}
	for _, p := range Profiles() {
		if seen[p.Name] {
			t.Errorf("profile name %q twice", p.Name)
		}
		seen[p.Name] = true
		if q, ok := ProfileByName(p.Name); !ok || q != p {
			t.Errorf("ProfileByName(%q) does not find it", p.Name)
		}
		for _, need := range []string{"CKK_SM2", "CKK_SM4", "CKM_SM3", "CKM_SM4_ECB", "CKM_SM3_SM2"} {
			if _, ok := p.Codes[need]; !ok {
				t.Errorf("%s: no %s", p.Name, need)
			}
		}
		byValue := map[string]string{} // prefix+value -> name
		for n, v := range p.Codes {
			if !smNames[n] {
				t.Errorf("%s: unknown name %s (the mechanism families would ignore it)", p.Name, n)
			}
			if v < ULong(CKM_VENDOR_DEFINED) || v > 0xFFFFFFFF {
				t.Errorf("%s: %s = 0x%X is outside the 32-bit vendor range", p.Name, n, uint64(v))
			}
			key := fmt.Sprintf("%s%x", n[:4], uint64(v))
			if other, dup := byValue[key]; dup {
				t.Errorf("%s: %s and %s share 0x%08X", p.Name, n, other, uint64(v))
			}
			byValue[key] = n
		}
	}
	if p, ok := ProfileByName(""); !ok || p != DefaultProfile {
		t.Error(`ProfileByName("") is not the default`)
	}
	if _, ok := ProfileByName("no-such-vendor"); ok {
		t.Error("ProfileByName found a profile that does not exist")
	}
}

// The default is TASS-compatible by design (see vendor_sm.go): every code
// TASS defines must mean the same in the default, and what the default adds
// must come from the gohsm private block.
func TestDefaultExtendsTASS(t *testing.T) {
	for n, v := range TASSProfile.Codes {
		if DefaultProfile.Codes[n] != v {
			t.Errorf("%s: default 0x%08X, TASS 0x%08X", n, uint64(DefaultProfile.Codes[n]), uint64(v))
		}
	}
	for n, v := range DefaultProfile.Codes {
		if _, ok := TASSProfile.Codes[n]; !ok && v&^0xFF != gohsmPrivate {
			t.Errorf("%s = 0x%08X: not TASS and not in the gohsm private block", n, uint64(v))
		}
	}
}

// ParamKindOf is profile-blind, so a code must imply one parameter structure
// in every profile that uses it.
func TestVendorParamKinds(t *testing.T) {
	kindOf := map[string]ParamKind{
		"CKM_SM4_GCM": ParamGCM, "CKM_SM4_CTR": ParamCTR,
		"CKM_SM3_HMAC_GENERAL": ParamULong, "CKM_SM4_MAC_GENERAL": ParamULong,
	}
	implied := map[ULong]ParamKind{}
	for _, p := range Profiles() {
		for n, v := range p.Codes {
			if !strings.HasPrefix(n, "CKM_") {
				continue
			}
			want := kindOf[n] // ParamBytes for the rest
			if prev, ok := implied[v]; ok && prev != want {
				t.Errorf("0x%08X means %v in one profile and %v in %s", uint64(v), prev, want, p.Name)
			}
			implied[v] = want
			if got := ParamKindOf(MechanismType(v)); got != want {
				t.Errorf("%s %s: ParamKindOf = %v, want %v", p.Name, n, got, want)
			}
		}
	}
}

func TestVendorNames(t *testing.T) {
	if got := MechanismType(0x80008100).String(); got != "CKM_SM3_SM2" {
		t.Errorf("0x80008100 prints as %q", got)
	}
	if got := KeyType(0x80000004).String(); got != "CKK_SM2" {
		t.Errorf("CKK 0x80000004 prints as %q", got)
	}
	if got := MechanismType(0x80000004).String(); got == "CKK_SM2" {
		t.Errorf("a mechanism code printed as a key type name")
	}
}
