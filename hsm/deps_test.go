package hsm

import (
	"os/exec"
	"strings"
	"testing"
)

// engineModules are the only modules outside the standard library the
// engine may depend on (DESIGN.md, "Layout and who may import whom": the
// standard library, golang.org/x/crypto, circl and the SM libraries, plus
// what those bring). An allow-list, so that a new dependency is a
// decision made here and not an accident of an import.
var engineModules = []string{
	"github.com/gohsm/gohsm/hsm",
	"golang.org/x/crypto/",
	"golang.org/x/sys/cpu", // golang.org/x/crypto's CPU feature detection
	"github.com/cloudflare/circl/",
	"github.com/emmansun/gmsm/",
	"github.com/decred/dcrd/dcrec/secp256k1/v4", // secp256k1 (hsm/mech/secp256k1.go)
	"filippo.io/edwards25519",                   // Ed25519 public key validation (hsm/mech/eddsa.go)
}

// stdDenied are the standard packages the engine must not reach: no
// network, no processes, no cgo, no plugins. The engine is served over
// every face by its callers; it opens nothing itself.
var stdDenied = []string{"net", "os/exec", "os/signal", "plugin", "runtime/cgo", "C", "crypto/tls"}

// The engine must stay pure Go with no network or HTTP dependency, so every
// face can embed it.
func TestEngineImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{.CgoFiles}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 20 {
		t.Fatalf("go list returned only %d packages; the check would prove nothing", len(lines))
	}
	outside := 0
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("go list line %q", line)
		}
		pkg, std, cgo := f[0], f[1] == "true", strings.Join(f[2:], " ")
		if cgo != "[]" {
			t.Errorf("%s uses cgo (%s)", pkg, cgo)
		}
		if std || pkg == "C" {
			for _, d := range stdDenied {
				if pkg == d || strings.HasPrefix(pkg, d+"/") {
					t.Errorf("hsm depends on %s", pkg)
				}
			}
			continue
		}
		outside++
		allowed := false
		for _, m := range engineModules {
			if pkg == strings.TrimSuffix(m, "/") || strings.HasPrefix(pkg, m) || strings.HasPrefix(pkg, m+"/") {
				allowed = true
				break
			}
		}
		if !allowed {
			t.Errorf("hsm depends on %s, which is not on the engine's allow-list", pkg)
		}
	}
	if outside < 10 {
		t.Fatalf("only %d packages outside the standard library: the allow-list is not being exercised", outside)
	}
}
