package conformance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Result is the outcome of one check; its JSON form is the published format.
type Result struct {
	ID     string `json:"id"`
	Spec   string `json:"spec"`
	Result string `json:"result"` // pass, fail or skip
	Detail string `json:"detail"`
}

// Result values.
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip"
)

// Options tunes a run. The zero value is usable.
type Options struct {
	// TokenDir isolates the module's token storage: SOFTHSM2_CONF (a file
	// naming it as directories.tokendir) and GOHSM_DIR point into it. Empty
	// means a fresh temporary directory, removed afterwards.
	TokenDir string
	// SOPIN and UserPIN used to initialise the token (defaults 8 digits).
	SOPIN, UserPIN string
	// Filter, when set, runs only the checks whose id has this prefix; the
	// others are reported as skip.
	Filter string
	// WycheproofDir, when set, runs the "vectors" group: published
	// Wycheproof vectors through the C ABI, read from this directory (the
	// Wycheproof module root or its testvectors_v1). Empty skips the group.
	WycheproofDir string
	// ACVPDir, when set, also runs the NIST ACVP checks of the "vectors"
	// group (vectors.acvp.*): the pinned ACVP test data module root, holding
	// vectors/<NAME>.bz2 and expected/<NAME>.bz2. Empty skips them.
	ACVPDir string
	// Logf receives progress lines (group names, timings); nil is silent.
	Logf func(format string, args ...any)
	// Appliance, when set, is the path of a gohsm binary, and the module
	// (libgohsm.so) is judged in remote mode: the isolated store is served
	// by `gohsm serve` on loopback, and GOHSM_CONF points the module at it
	// (appliance.go).
	Appliance string
	// Members > 1 (with Appliance) serves the store by a cluster of that
	// many members instead of one appliance, the module's configuration
	// listing them all (appliance.go; docs/cluster.md).
	Members int
}

// CheckInfo describes a check without running it.
type CheckInfo struct{ ID, Spec string }

// Checks lists every check in run order.
func Checks() []CheckInfo {
	var out []CheckInfo
	for _, g := range allGroups() {
		for _, c := range g.checks {
			out = append(out, CheckInfo{c.id, c.spec})
		}
	}
	return out
}

// Totals counts results by outcome.
func Totals(rs []Result) (pass, fail, skip int) {
	for _, r := range rs {
		switch r.Result {
		case Pass:
			pass++
		case Fail:
			fail++
		default:
			skip++
		}
	}
	return
}

// Run loads the module at modulePath and runs every check against it. The
// error is for a run that could not start (module not loadable); a module
// that misbehaves yields failed checks, not an error. A module holds
// process-wide state, so run each module once per process (cmd/conformance
// starts one process per module).
func Run(modulePath string, opts Options) (_ []Result, err error) {
	if _, err := os.Stat(modulePath); err != nil {
		return nil, fmt.Errorf("conformance: module %s: %w", modulePath, err)
	}
	if opts.SOPIN == "" {
		opts.SOPIN = "31415926"
	}
	if opts.UserPIN == "" {
		opts.UserPIN = "27182818"
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	dir := opts.TokenDir
	if dir == "" {
		d, err := os.MkdirTemp("", "conformance-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := isolate(dir); err != nil {
		return nil, err
	}
	if opts.Appliance != "" {
		a, err := startAppliance(opts.Appliance, filepath.Join(dir, "gohsm"), filepath.Join(dir, "appliance"), opts.Members, opts.Logf)
		if err != nil {
			return nil, err
		}
		// After the module's C_Finalize (the deferred s.close below).
		defer func() { err = errors.Join(err, a.stop()) }()
	}
	s, err := newSuite(modulePath, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.run(), nil
}

// isolate points the modules we know at dir, before the module is loaded:
// cgo's os.Setenv also updates the C environment the module reads.
func isolate(dir string) error {
	tokens := filepath.Join(dir, "softhsm-tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	gdir := filepath.Join(dir, "gohsm")
	if err := os.MkdirAll(gdir, 0o700); err != nil {
		return err
	}
	for k, v := range map[string]string{"SOFTHSM2_CONF": conf, "GOHSM_DIR": gdir} {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// ModuleName is the name a module's results are published under:
// the file name without "lib" and extension (libsofthsm2.so -> softhsm2).
func ModuleName(path string) string {
	b := filepath.Base(path)
	b = strings.TrimSuffix(b, filepath.Ext(b))
	return strings.TrimPrefix(b, "lib")
}
