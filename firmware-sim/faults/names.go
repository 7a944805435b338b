package faults

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// notCFunctions are hsm.Backend methods that are no PKCS#11 function: a
// transport's helpers. The decorator passes them through untouched and a
// plan cannot name them.
var notCFunctions = []string{"MessageSignMechanism"}

// backendMethods is every method of hsm.Backend in reflect's (sorted) order;
// the generated fn constants (zwrap.go) index it.
var backendMethods = sync.OnceValue(func() []string {
	t := reflect.TypeFor[hsm.Backend]()
	out := make([]string, t.NumMethod())
	for i := range out {
		out[i] = t.Method(i).Name
	}
	return out
})

// Functions lists the PKCS#11 functions a plan may name: "C_" and the name
// of every method of hsm.Backend (derived by reflection, so the list follows
// the interface), in the interface's sorted order, without the methods that
// are no C function (MessageSignMechanism).
func Functions() []string {
	var out []string
	for _, m := range backendMethods() {
		if !slices.Contains(notCFunctions, m) {
			out = append(out, "C_"+m)
		}
	}
	return out
}

// functionIndex maps a C name to its fn (the index of its method).
var functionIndex = sync.OnceValue(func() map[string]fn {
	idx := map[string]fn{}
	for i, m := range backendMethods() {
		if !slices.Contains(notCFunctions, m) {
			idx["C_"+m] = fn(i)
		}
	}
	return idx
})

// lookupFunction resolves a C function name, with a hint for near misses.
func lookupFunction(name string) (fn, error) {
	if f, ok := functionIndex()[name]; ok {
		return f, nil
	}
	for c, f := range functionIndex() {
		if strings.EqualFold(c, name) || strings.EqualFold(c, "C_"+name) {
			return f, fmt.Errorf("unknown function %q (did you mean %s?)", name, c)
		}
	}
	return 0, fmt.Errorf("unknown function %q: want the C name of a PKCS#11 function the engine serves (C_Sign, C_EncryptInit, ...; faults.Functions lists them)", name)
}

// Return codes and mechanisms by name. hsm/ck names values but has no
// reverse table, so it is built once from the names ck prints: every
// standard CKR_ code is below 0x1000 and every standard CKM_ code below
// 0x10000 (CKR_VENDOR_DEFINED and the vendor mechanisms are added
// explicitly).
var rvByName = sync.OnceValue(func() map[string]ck.RV {
	m := map[string]ck.RV{}
	for v := ck.RV(0); v < 0x1000; v++ {
		if s := v.String(); strings.HasPrefix(s, "CKR_") {
			m[s] = v
		}
	}
	m[ck.CKR_VENDOR_DEFINED.String()] = ck.CKR_VENDOR_DEFINED
	return m
})

var mechByName = sync.OnceValue(func() map[string]ck.MechanismType {
	m := map[string]ck.MechanismType{}
	for v := ck.MechanismType(0); v < 0x10000; v++ {
		if s := v.String(); strings.HasPrefix(s, "CKM_") {
			m[s] = v
		}
	}
	for _, n := range ck.DefaultProfile.Names() {
		if v, ok := ck.DefaultProfile.Mechanism(n); ok && strings.HasPrefix(n, "CKM_") {
			m[n] = v
		}
	}
	return m
})

// parseCode reads a CKR name, a decimal number or a 0x hex number.
func parseRV(s string) (ck.RV, error) {
	if v, ok := rvByName()[s]; ok {
		return v, nil
	}
	if n, err := strconv.ParseUint(s, 0, 32); err == nil {
		return ck.RV(n), nil
	}
	if v, ok := rvByName()["CKR_"+strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "CKR_"))]; ok {
		return 0, fmt.Errorf("unknown return code %q (did you mean %s?)", s, v)
	}
	return 0, fmt.Errorf("unknown return code %q: want a CKR_ name (CKR_DEVICE_ERROR) or a number (48, 0x30)", s)
}

// parseMechanism reads a CKM name (the SM names of the default vendor
// profile included), a decimal number or a 0x hex number.
func parseMechanism(s string) (ck.MechanismType, error) {
	if v, ok := mechByName()[s]; ok {
		return v, nil
	}
	if n, err := strconv.ParseUint(s, 0, 32); err == nil {
		return ck.MechanismType(n), nil
	}
	if v, ok := mechByName()[strings.ToUpper(s)]; ok {
		return 0, fmt.Errorf("unknown mechanism %q (did you mean %s?)", s, v)
	}
	return 0, fmt.Errorf("unknown mechanism %q: want a CKM_ name (CKM_ECDSA) or a number (0x1041)", s)
}
