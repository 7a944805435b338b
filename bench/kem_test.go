package bench

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// kem.h indexes CK_FUNCTION_LIST_3_2 by hand; check the indexes against the
// function order of the module's own header, when the tree has it.
func TestKEMFunctionIndexes(t *testing.T) {
	b, err := os.ReadFile("../pkcs11shim/pkcs11.h")
	if err != nil {
		t.Skipf("no pkcs11shim header to compare with: %v", err)
	}
	var names []string
	inList := false
	for _, line := range strings.Split(string(b), "\n") {
		if regexp.MustCompile(`^#define GOHSM_FUNCTIONS_(2_40|3_0|3_2)\(X\)`).MatchString(line) {
			inList = true
			continue
		}
		if !inList {
			continue
		}
		m := regexp.MustCompile(`^\s*X\((C_\w+),`).FindStringSubmatch(line)
		if m == nil {
			inList = false
			continue
		}
		names = append(names, m[1])
		if !strings.HasSuffix(strings.TrimSpace(line), `\`) {
			inList = false
		}
	}
	if len(names) != fnCount {
		t.Fatalf("header lists %d functions, kem.h assumes %d", len(names), fnCount)
	}
	for idx, want := range map[int]string{fnEncapsulateKey: "C_EncapsulateKey", fnDecapsulateKey: "C_DecapsulateKey", 0: "C_Initialize", 68: "C_GetInterfaceList"} {
		if names[idx] != want {
			t.Errorf("function %d is %s in the header, kem.h expects %s", idx, names[idx], want)
		}
	}
}
