package server

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestHvac runs tests/gateway/hvac_test.py: Debian's python3-hvac (the
// version `scripts/install-deps.sh test` installs) against the gateway,
// through hvac's own secrets.transit, sys and auth.token methods.
// Debian's hvac is installed for /usr/bin/python3 (another python3 on
// PATH may not have it). GOHSM_SKIP_HVAC=1 skips it where it cannot run.
func TestHvac(t *testing.T) {
	const py = "/usr/bin/python3"
	if os.Getenv("GOHSM_SKIP_HVAC") == "1" {
		t.Skip("GOHSM_SKIP_HVAC=1")
	}
	if out, err := exec.Command(py, "-c", "import hvac").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import hvac (scripts/install-deps.sh test installs python3-hvac; GOHSM_SKIP_HVAC=1 skips): %v\n%s", py, err, out)
	}
	g := newGW(t, gwOpts{})
	cmd := exec.Command(py, "../../tests/gateway/hvac_test.py")
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+g.addr, "VAULT_TOKEN="+g.root, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("hvac_test.py: %v", err)
	}
	if !strings.Contains(string(out), "hvac steps passed") {
		t.Fatal("hvac_test.py did not finish")
	}
	// No plaintext in the audit log.
	if strings.Contains(string(readAudit(t, g)), b64("hvac says hello")) {
		t.Fatal("the audit log holds hvac's plaintext")
	}
}
