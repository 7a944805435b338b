package attr

import (
	"slices"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

var allClasses = []ck.ObjectClass{ck.CKO_DATA, ck.CKO_CERTIFICATE, ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY}

// TestOneRowPerAttribute: Lookup takes the first row that applies and the
// engine fills defaults from ForClass assuming each type appears once, so
// no two rows of one attribute may apply to the same class and key type.
func TestOneRowPerAttribute(t *testing.T) {
	for _, c := range allClasses {
		for kt := ck.KeyType(0); kt < 0x60; kt++ {
			seen := map[ck.AttributeType]bool{}
			for _, p := range ForClass(c, kt, nil) {
				if seen[p.Type] {
					t.Errorf("%v on %v/%v has two rows", p.Type, c, kt)
				}
				seen[p.Type] = true
			}
		}
	}
}

// TestCachedRowsAgreeWithLookup: what the cache answers is what Lookup
// says, row by row, including the sensitive list, with and without a vendor
// EC-like key type.
func TestCachedRowsAgreeWithLookup(t *testing.T) {
	const sm2 = ck.KeyType(0x80000100)
	for _, extra := range [][]ck.KeyType{nil, {sm2}} {
		for _, c := range allClasses {
			for _, kt := range []ck.KeyType{ck.CKK_RSA, ck.CKK_EC, ck.CKK_AES, ck.CKK_GENERIC_SECRET, ck.CKK_EC_EDWARDS, sm2} {
				for pass := 0; pass < 2; pass++ { // computed, then cached
					rows := ForClass(c, kt, extra)
					var sens []ck.AttributeType
					for _, p := range rows {
						if Lookup(p.Type, c, kt, extra) != p {
							t.Fatalf("%v on %v/%v: ForClass and Lookup disagree", p.Type, c, kt)
						}
						if p.Rules&Sensitive != 0 {
							sens = append(sens, p.Type)
						}
					}
					if got := SensitiveFor(c, kt, extra); !slices.Equal(got, sens) {
						t.Fatalf("%v/%v sensitive %v, want %v", c, kt, got, sens)
					}
				}
			}
		}
	}
	if s := SensitiveFor(ck.CKO_SECRET_KEY, ck.CKK_AES, nil); !slices.Equal(s, []ck.AttributeType{ck.CKA_VALUE}) {
		t.Fatalf("AES key sensitive %v", s)
	}
	if s := SensitiveFor(ck.CKO_PRIVATE_KEY, sm2, []ck.KeyType{sm2}); !slices.Contains(s, ck.CKA_VALUE) {
		t.Fatalf("SM2 private key sensitive %v: the EC rows must apply", s)
	}
}

// TestNoSecretDefaults: the engine shares default values between objects
// and zeroes secret values in place when it forgets them, which is safe
// only because no sealed attribute has a default.
func TestNoSecretDefaults(t *testing.T) {
	for i := range Table {
		if p := &Table[i]; p.Rules&Sensitive != 0 && p.Default != nil {
			t.Errorf("%v is sensitive and has a default", p.Type)
		}
	}
}

// TestNoMaterialDefaults: a new key's object keeps only its own attributes
// over shared defaults (Layered), and the key kinds parse its material
// from its own attributes alone. That is right only while no attribute a
// key kind reads has a default on a key class.
func TestNoMaterialDefaults(t *testing.T) {
	material := []ck.AttributeType{ck.CKA_VALUE, ck.CKA_VALUE_LEN, ck.CKA_KEY_TYPE, ck.CKA_EC_PARAMS, ck.CKA_EC_POINT,
		ck.CKA_MODULUS, ck.CKA_MODULUS_BITS, ck.CKA_PUBLIC_EXPONENT, ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1,
		ck.CKA_PRIME_2, ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT, ck.CKA_PARAMETER_SET, ck.CKA_SEED}
	for i := range Table {
		p := &Table[i]
		if p.Classes&Keys != 0 && p.Default != nil && slices.Contains(material, p.Type) {
			t.Errorf("%v has a default on key classes", p.Type)
		}
	}
}
