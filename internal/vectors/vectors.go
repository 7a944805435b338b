// Package vectors locates published test-vector sets (Wycheproof, NIST ACVP)
// for tests. The sets are Go modules fetched through the module proxy, so a
// pinned version is reproducible and nothing large lives in the repository.
//
// A test that asks for a set and cannot get it fails: a vector suite that
// silently skips is indistinguishable from one that passes.
package vectors

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Pinned vector modules.
const (
	Wycheproof        = "github.com/C2SP/wycheproof"
	WycheproofVersion = "v0.0.0-20250901140545-b51abcfb8daf"
	ACVP              = "github.com/geomys/acvp-testdata"
	ACVPVersion       = "v0.0.0-20251201200548-d893de8b8b1c"
)

var cache sync.Map // module@version -> dir

// Dir returns the extracted directory of module@version, downloading it
// with `go mod download -json` when it is not in the module cache yet. It
// fails the test (never skips) when the download fails.
func Dir(t testing.TB, module, version string) string {
	t.Helper()
	key := module + "@" + version
	if d, ok := cache.Load(key); ok {
		return d.(string)
	}
	cmd := exec.Command("go", "mod", "download", "-json", key)
	// Run outside any module so the project's go.mod is neither consulted
	// nor modified.
	cmd.Dir = os.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &res); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil || res.Error != "" || res.Dir == "" {
		t.Fatalf("vectors: go mod download %s failed (network or proxy unavailable? set GOPROXY/GOFLAGS): err=%v error=%q stderr=%s",
			key, err, res.Error, stderr.String())
	}
	if _, err := os.Stat(res.Dir); err != nil {
		t.Fatalf("vectors: %s: downloaded dir unusable: %v", key, err)
	}
	cache.Store(key, res.Dir)
	return res.Dir
}

// WycheproofDir is Dir for the pinned Wycheproof release.
func WycheproofDir(t testing.TB) string { return Dir(t, Wycheproof, WycheproofVersion) }

// ACVPDir is Dir for the pinned ACVP test data (Go's FIPS 140-3 set).
func ACVPDir(t testing.TB) string { return Dir(t, ACVP, ACVPVersion) }
