package mech

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Helpers shared by the SM tests, and the profile/registry checks.

func smMech(t testing.TB, p *ck.Profile, name string) *Mechanism {
	t.Helper()
	code, ok := p.Mechanism(name)
	if !ok {
		t.Fatalf("profile %s has no %s", p.Name, name)
	}
	var fams [][]Mechanism
	fams = append(fams, sm2Mechanisms(p), sm3Mechanisms(p), sm4Mechanisms(p))
	for _, f := range fams {
		for i := range f {
			if f[i].Type == code {
				return &f[i]
			}
		}
	}
	t.Fatalf("%s (0x%08X) not built", name, uint64(code))
	return nil
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantRV fails unless err carries rv.
func wantRV(t testing.TB, err error, rv ck.RV) {
	t.Helper()
	var got ck.RV
	if !errors.As(err, &got) || got != rv {
		t.Fatalf("error %v, want %v", err, rv)
	}
}

func loadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// runCipher feeds src through c in the given chunk sizes and checks that
// UpdateLen/FinalLen announce what Update/Final produce.
func runCipher(t testing.TB, c Cipher, src []byte, chunks []int) ([]byte, error) {
	t.Helper()
	var out []byte
	for _, n := range chunks {
		if n > len(src) {
			n = len(src)
		}
		want := c.UpdateLen(n)
		before := len(out)
		var err error
		out, err = c.Update(out, src[:n])
		if err != nil {
			return nil, err
		}
		if len(out)-before != want {
			t.Fatalf("Update of %d bytes gave %d, UpdateLen said %d", n, len(out)-before, want)
		}
		src = src[n:]
	}
	if len(src) > 0 {
		var err error
		if out, err = c.Update(out, src); err != nil {
			return nil, err
		}
	}
	bound := c.FinalLen()
	before := len(out)
	out, err := c.Final(out)
	if err != nil {
		return nil, err
	}
	if len(out)-before > bound {
		t.Fatalf("Final gave %d bytes, FinalLen said at most %d", len(out)-before, bound)
	}
	return out, nil
}

// Every profile's names must turn into mechanisms and key kinds through the
// registry, and every name must be served by some family.
func TestSMProfilesInRegistry(t *testing.T) {
	for _, p := range ck.Profiles() {
		r := New(p)
		for _, n := range p.Names() {
			v := p.Codes[n]
			switch n[:4] {
			case "CKK_":
				if _, ok := r.KeyKind(ck.KeyType(v)); !ok {
					t.Errorf("%s: %s has no key kind", p.Name, n)
				}
			case "CKM_":
				if _, ok := r.Mechanism(ck.MechanismType(v)); !ok {
					t.Errorf("%s: %s has no mechanism", p.Name, n)
				}
			}
		}
	}
	// A profile without SM codes yields no SM mechanisms at all.
	empty := &ck.Profile{Name: "none", Codes: map[string]ck.ULong{}}
	if n := len(sm2Mechanisms(empty)) + len(sm3Mechanisms(empty)) + len(sm4Mechanisms(empty)); n != 0 {
		t.Errorf("empty profile built %d SM mechanisms", n)
	}
}

// The same operation under two profiles is the same algorithm with a
// different code: a TASS-coded SM4 key works with Luna-coded ECB.
func TestSMProfilesSameAlgorithm(t *testing.T) {
	key := unhex(t, "0123456789abcdeffedcba9876543210")
	var outs [][]byte
	for _, p := range []*ck.Profile{ck.DefaultProfile, ck.TASSProfile, ck.SANSECProfile, ck.LunaProfile} {
		kt, _ := p.KeyType("CKK_SM4")
		k := &Key{Class: ck.CKO_SECRET_KEY, Type: kt, Attrs: attr.Template{{Type: ck.CKA_VALUE, Value: key}}}
		c, err := smMech(t, p, "CKM_SM4_ECB").Encrypt(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.OneShot(nil, key)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	for _, o := range outs {
		if hex.EncodeToString(o) != "681edf34d206965e86b3e94f536e4246" {
			t.Errorf("SM4 under some profile gave %x", o)
		}
	}
}
