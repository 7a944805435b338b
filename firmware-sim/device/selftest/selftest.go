// Package selftest is the device's power-on self-tests, in the FIPS 140-3
// manner: a known-answer test (CAST) per algorithm family, run through the
// engine's own mechanism registry (hsm/mech), so they test the code that
// serves the calls; a continuous test of the random generator; and the
// integrity test of the firmware image, which the caller supplies (the
// device knows the installed image).
//
// The vectors are published ones (vectors.json: Wycheproof, the NIST ACVP
// sample vectors; and in the Go source: FIPS 197, FIPS 180-4, FIPS 202,
// RFC 4231, RFC 5869, RFC 6979, RFC 8032, GM/T 0002/0003/0004, the GCM
// specification); each test names its source, and TestVectorsArePublished
// checks vectors.json against the files it was taken from.
//
// A test is made to fail by name, as Go's GODEBUG=failfipscast=NAME does
// (Options.Fail; GOHSM_FAIL_SELFTEST and the `fail_selftest` key set it):
// the test runs, and its output (a ciphertext, a digest, a signature before
// it is verified) has one bit flipped before the comparison, so the
// failure path is the real one.
package selftest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// Test is one self-test.
type Test struct {
	// Name is how the test is listed, reported and failed on purpose.
	Name string
	// Source is where its known answer comes from.
	Source string
	run    func(c *cast) error
}

// Result is one test's outcome.
type Result struct {
	Name   string
	Source string
	Took   time.Duration
	// Note is what a passing test wants shown (the integrity test's
	// "unsigned development firmware").
	Note string
	Err  error
}

// Report is a run of every test.
type Report struct {
	Results []Result
	// Took is the whole run, the registry's construction included.
	Took time.Duration
}

// Failed returns the first failed test, or nil.
func (r *Report) Failed() *Result {
	for i := range r.Results {
		if r.Results[i].Err != nil {
			return &r.Results[i]
		}
	}
	return nil
}

// OK reports whether every test passed.
func (r *Report) OK() bool { return r.Failed() == nil }

// Reason is the one-line cause of a failed run ("selftest FAIL: ML-DSA-44"),
// "" when every test passed.
func (r *Report) Reason() string {
	if f := r.Failed(); f != nil {
		return "selftest FAIL: " + f.Name
	}
	return ""
}

// Options configure Run.
type Options struct {
	// Profile is the SM vendor profile the engine uses (nil: the default).
	Profile *ck.Profile
	// Fail names a test to make fail ("" none). A name that is no test's
	// is itself a failure (ErrUnknownTest): a typo must not pass for a
	// test of the error path.
	Fail string
	// Integrity is the firmware integrity test: it returns a note to show
	// when it passes ("unsigned development firmware", "image 1.2 svn 3")
	// or why it fails. Nil: the test reports that no check was configured
	// and passes.
	Integrity func(corrupt func([]byte) []byte) (note string, err error)
}

// ErrUnknownTest is Run's failure when Options.Fail names no test.
var ErrUnknownTest = errors.New("no self-test of that name (gohsm selftest --list)")

// IntegrityName is the firmware image test's name.
const IntegrityName = "firmware-integrity"

// Tests returns every test in the order Run runs them.
func Tests() []Test {
	return append(slices.Clone(casts), Test{Name: IntegrityName, Source: "the installed signed firmware manifest (docs/firmware.md)"})
}

// Names returns every test's name, in order.
func Names() []string {
	var n []string
	for _, t := range Tests() {
		n = append(n, t.Name)
	}
	return n
}

// Lookup returns the canonical name for name (compared without case), or
// false.
func Lookup(name string) (string, bool) {
	for _, n := range Names() {
		if strings.EqualFold(n, strings.TrimSpace(name)) {
			return n, true
		}
	}
	return "", false
}

// Run runs every test, each to the end even after a failure, so that a
// report shows all of them.
func Run(o Options) *Report {
	start := time.Now()
	rep := &Report{}
	fail := ""
	if o.Fail != "" {
		n, ok := Lookup(o.Fail)
		if !ok {
			rep.Results = append(rep.Results, Result{Name: "fail-selftest", Source: "GOHSM_FAIL_SELFTEST / fail_selftest",
				Err: fmt.Errorf("%q: %w", o.Fail, ErrUnknownTest)})
			rep.Took = time.Since(start)
			return rep
		}
		fail = n
	}
	p := o.Profile
	if p == nil {
		p = ck.DefaultProfile
	}
	reg := mech.New(p)
	for _, t := range Tests() {
		c := &cast{reg: reg, profile: p, fail: t.Name == fail}
		t0 := time.Now()
		var err error
		var note string
		if t.Name == IntegrityName {
			if o.Integrity == nil {
				note = "no firmware image check configured"
				if c.fail {
					err = errors.New("no image to check, and made to fail")
				}
			} else {
				note, err = o.Integrity(c.corrupt)
			}
		} else {
			err = c.protect(t.run)
		}
		rep.Results = append(rep.Results, Result{Name: t.Name, Source: t.Source, Took: time.Since(t0), Note: note, Err: err})
	}
	rep.Took = time.Since(start)
	return rep
}

// cast is one test's context.
type cast struct {
	reg     *mech.Registry
	profile *ck.Profile
	fail    bool
}

// protect turns a panic in a mechanism into the test's failure: a
// self-test that crashes the process would not put the device in its
// error state.
func (c *cast) protect(run func(*cast) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return run(c)
}

// corrupt flips one bit of b (a copy) when the test is to fail.
func (c *cast) corrupt(b []byte) []byte {
	if !c.fail || len(b) == 0 {
		return b
	}
	out := slices.Clone(b)
	out[len(out)-1] ^= 1
	return out
}
