package conformance

import (
	"bytes"
	"compress/bzip2"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// NIST ACVP vectors through the C ABI, next to the Wycheproof ones. The
// pinned set (Go's FIPS 140-3 ACVP data, internal/vectors.ACVP) keeps, per
// file, vectors/<NAME>.bz2 (the prompts) and expected/<NAME>.bz2 (the
// answers): JSON arrays whose first element is a session header and whose
// others are vector sets, one per ACVP mode. A prompt and its answer share
// the test case id.
//
// ACVP has no "acceptable": a case either has an output to reproduce
// (AFT) or a testPassed verdict (sigVer, ver, VAL). Both map onto the
// Wycheproof verdicts judge applies: an output or testPassed=true is
// "valid", testPassed=false is "invalid".

const acvpSpec = "NIST ACVP vectors through the C ABI; "

// acvpVS is one vector set (an ACVP mode) with its answers by tcId.
type acvpVS struct {
	Algorithm  string            `json:"algorithm"`
	Mode       string            `json:"mode"`
	TestGroups []json.RawMessage `json:"testGroups"`
	want       map[int]json.RawMessage
}

// acvpCase is what every ACVP test carries.
type acvpCase struct {
	TcID int `json:"tcId"`
}

// acvp loads the prompts and answers of one ACVP file from
// Options.ACVPDir (the module root, holding vectors/ and expected/), and
// skips the check when no directory was given.
func (t *T) acvp(name string) []acvpVS {
	dir := t.s.opts.ACVPDir
	if dir == "" {
		t.skipf("no ACVP directory (Options.ACVPDir, -acvp): vector checks are opt-in")
	}
	read := func(sub string) []json.RawMessage {
		b, err := os.ReadFile(filepath.Join(dir, sub, name+".bz2"))
		if err != nil {
			t.failf("ACVP file %s/%s: %v", sub, name, err)
		}
		var out []json.RawMessage
		if err := json.NewDecoder(bzip2.NewReader(bytes.NewReader(b))).Decode(&out); err != nil {
			t.failf("ACVP file %s/%s: %v", sub, name, err)
		}
		return out
	}
	prompts, answers := read("vectors"), read("expected")
	if len(prompts) < 2 || len(prompts) != len(answers) {
		t.failf("ACVP %s: %d prompt sets, %d answer sets", name, len(prompts), len(answers))
	}
	var sets []acvpVS
	for i := 1; i < len(prompts); i++ {
		var s acvpVS
		var e struct {
			TestGroups []struct {
				Tests []json.RawMessage `json:"tests"`
			} `json:"testGroups"`
		}
		if err := json.Unmarshal(prompts[i], &s); err != nil {
			t.failf("ACVP %s set %d: %v", name, i, err)
		}
		if err := json.Unmarshal(answers[i], &e); err != nil {
			t.failf("ACVP %s answers %d: %v", name, i, err)
		}
		s.want = map[int]json.RawMessage{}
		for _, g := range e.TestGroups {
			for _, raw := range g.Tests {
				var c acvpCase
				if err := json.Unmarshal(raw, &c); err != nil {
					t.failf("ACVP %s answers %d: %v", name, i, err)
				}
				s.want[c.TcID] = raw
			}
		}
		sets = append(sets, s)
	}
	return sets
}

// group decodes one test group of the set into g.
func (s *acvpVS) group(t *T, raw json.RawMessage, g any) {
	if err := json.Unmarshal(raw, g); err != nil {
		t.failf("ACVP %s %s test group: %v", s.Algorithm, s.Mode, err)
	}
}

// answer decodes the expected result of test tcID into a; a prompt
// without an answer is a loader defect and fails the check.
func (s *acvpVS) answer(t *T, tcID int, a any) {
	raw, ok := s.want[tcID]
	if !ok {
		t.failf("ACVP %s %s: no expected result for tcId %d", s.Algorithm, s.Mode, tcID)
	}
	if err := json.Unmarshal(raw, a); err != nil {
		t.failf("ACVP %s %s tcId %d expected result: %v", s.Algorithm, s.Mode, tcID, err)
	}
}

// verdict is an ACVP answer with testPassed.
type verdict struct {
	TestPassed *bool `json:"testPassed"`
}

// passed reads testPassed of tcID; its absence is a loader defect.
func (s *acvpVS) passed(t *T, tcID int) bool {
	var v verdict
	s.answer(t, tcID, &v)
	if v.TestPassed == nil {
		t.failf("ACVP %s %s tcId %d: no testPassed in the expected result", s.Algorithm, s.Mode, tcID)
	}
	return *v.TestPassed
}

// acvpWP names an ACVP case for judge: the comment says where it came
// from, the result is the verdict judge applies.
func acvpWP(tcID int, valid bool, where string, args ...any) wpCase {
	r := "invalid"
	if valid {
		r = "valid"
	}
	return wpCase{TcID: tcID, Result: r, Comment: fmt.Sprintf(where, args...)}
}

// ahx decodes an ACVP hex field (upper case in prompts, lower case in
// answers); the files are well-formed, so a bad one fails the check.
func (t *T) ahx(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.failf("ACVP hex field %q: %v", clip([]byte(s)), err)
	}
	return b
}

// judgeMatch is judge for ACVP validation cases (KDA VAL): the module
// computes the output itself and the vector's claimed output must equal it
// exactly when the answer says testPassed.
func (v *vecRun) judgeMatch(tc wpCase, o outcome, claimed []byte, passed bool) {
	v.n++
	v.results[tc.Result]++
	id := fmt.Sprintf("tcId %d (%s)", tc.TcID, tc.Comment)
	switch {
	case o.rv != 0:
		v.badf("%s: %s returned %s", id, o.stage, rvName(o.rv))
	case bytes.Equal(o.got, claimed) != passed:
		v.badf("%s: %s returned %x; the vector's %x is testPassed=%v", id, o.stage, clip(o.got), clip(claimed), passed)
	}
}

func vecACVPChecks() []check {
	var cs []check
	cs = append(cs, acvpPQCChecks()...)
	cs = append(cs, acvpClassicChecks()...)
	return cs
}
