package wire

import (
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm"
)

// The call table must cover hsm.Backend: a method without a row could not
// be served or called remotely. Each row's function must be that method (by
// name, through the method expression's symbol, and by signature), so a
// row cannot bind the wrong method of the same shape.
func TestTableCoversBackend(t *testing.T) {
	bt := reflect.TypeFor[hsm.Backend]()
	seen := map[string]bool{}
	for i := range bt.NumMethod() {
		m := bt.Method(i)
		c := ByName(m.Name)
		if c == nil {
			t.Errorf("hsm.Backend.%s has no row in the call table (firmware-sim/wire/calls.go)", m.Name)
			continue
		}
		seen[m.Name] = true
		if c.Adapted {
			continue
		}
		want := reflect.FuncOf(append([]reflect.Type{bt}, in(m.Type)...), out(m.Type), false)
		if got := reflect.TypeOf(c.Func()); got != want {
			t.Errorf("%s: row bound to %v, method is %v", m.Name, got, want)
		}
		sym := runtime.FuncForPC(reflect.ValueOf(c.Func()).Pointer()).Name()
		if !strings.HasSuffix(sym, "hsm.Backend."+m.Name) {
			t.Errorf("%s: row bound to %s", m.Name, sym)
		}
	}
	for _, c := range Calls() {
		if !seen[c.Name] {
			t.Errorf("call %d %s is not an hsm.Backend method", c.ID, c.Name)
		}
	}
}

func in(f reflect.Type) []reflect.Type {
	var out []reflect.Type
	for i := range f.NumIn() {
		out = append(out, f.In(i))
	}
	return out
}

func out(f reflect.Type) []reflect.Type {
	var o []reflect.Type
	for i := range f.NumOut() {
		o = append(o, f.Out(i))
	}
	return o
}
