package attr

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// TestLayered: own values shadow defaults, every default is found by the
// binary search, and Flat lists each type once.
func TestLayered(t *testing.T) {
	for _, c := range allClasses {
		for _, kt := range []ck.KeyType{ck.CKK_AES, ck.CKK_RSA, ck.CKK_EC, ck.CKK_ML_KEM} {
			d := RowsFor(c, kt, nil).Defaults()
			for i := 1; i < len(d); i++ {
				if d[i-1].Type >= d[i].Type {
					t.Fatalf("%v/%v: defaults not sorted at %v", c, kt, d[i].Type)
				}
			}
			l := Layered{Own: Template{{Type: ck.CKA_LABEL, Value: []byte("mine")}, {Type: ck.CKA_VALUE_LEN, Value: ULong(7)}}, Defaults: d}
			for _, a := range d {
				v, ok := l.Get(a.Type)
				want := a.Value
				if a.Type == ck.CKA_LABEL {
					want = []byte("mine")
				}
				if !ok || !bytes.Equal(v, want) || !l.HasDefault(a.Type) {
					t.Fatalf("%v/%v: %v = %x %v, want %x (a default)", c, kt, a.Type, v, ok, want)
				}
			}
			if _, ok := l.Get(ck.CKA_VENDOR_DEFINED); ok || l.HasDefault(ck.CKA_VENDOR_DEFINED) || l.HasDefault(ck.CKA_VALUE_LEN) {
				t.Fatalf("%v/%v: found an attribute no layer has", c, kt)
			}
			flat := l.Flat()
			seen := map[ck.AttributeType]bool{}
			for _, a := range flat {
				if seen[a.Type] {
					t.Fatalf("%v/%v: %v twice in Flat", c, kt, a.Type)
				}
				seen[a.Type] = true
				if v, _ := l.Get(a.Type); !bytes.Equal(v, a.Value) {
					t.Fatalf("%v/%v: Flat has %v = %x, Get %x", c, kt, a.Type, a.Value, v)
				}
			}
			if len(flat) != len(seen) || !seen[ck.CKA_VALUE_LEN] {
				t.Fatalf("%v/%v: Flat lost an own value", c, kt)
			}
		}
	}
}
