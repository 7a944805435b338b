package hsm

import (
	"os/exec"
	"strings"
	"testing"
)

// The engine must stay pure Go with no network or HTTP dependency
// (DESIGN.md, "Layout and who may import whom"), so every face can embed it.
func TestEngineImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.CgoFiles}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"net", "net/http", "runtime/cgo", "C", "github.com/valyala/fasthttp"}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 20 {
		t.Fatalf("go list returned only %d packages; the check would prove nothing", len(lines))
	}
	for _, line := range lines {
		pkg, cgo, _ := strings.Cut(line, " ")
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, "net/http") {
				t.Errorf("hsm depends on %s", pkg)
			}
		}
		if cgo != "[]" && strings.HasPrefix(pkg, "github.com/gohsm/") {
			t.Errorf("%s uses cgo (%s)", pkg, cgo)
		}
	}
}
