package conformance

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// TestVectorJudge pins the verdict rules every vectors check relies on:
// a wrong output, an accepted invalid vector, a refused valid one and a
// refusal with a code the spec does not allow are each a failure.
func TestVectorJudge(t *testing.T) {
	want := []byte{1, 2, 3}
	for _, c := range []struct {
		name   string
		result string
		o      outcome
		bad    bool
	}{
		{"valid, exact output", "valid", outcome{got: want}, false},
		{"valid, other output", "valid", outcome{got: []byte{1, 2, 4}}, true},
		{"valid, refused", "valid", outcome{rv: pkcs11.CKR_SIGNATURE_INVALID, stage: "C_Verify"}, true},
		{"invalid, accepted", "invalid", outcome{stage: "C_Verify"}, true},
		{"invalid, allowed code", "invalid", outcome{rv: pkcs11.CKR_SIGNATURE_INVALID}, false},
		{"invalid, other code", "invalid", outcome{rv: pkcs11.CKR_GENERAL_ERROR}, true},
		{"acceptable, refused", "acceptable", outcome{rv: pkcs11.CKR_GENERAL_ERROR}, false},
		{"acceptable, wrong output", "acceptable", outcome{got: []byte{9}}, true},
	} {
		v := &vecRun{family: "f", results: map[string]int{}, refused: map[uint]int{}, skipped: map[string]int{}}
		v.judge(wpCase{TcID: 7, Result: c.result}, c.o, want, refuseSig...)
		if got := len(v.bad) > 0; got != c.bad {
			t.Errorf("%s: bad=%v (%v), want %v", c.name, got, v.bad, c.bad)
		}
	}
}

// TestVectorSummary checks the note format wantVectorCounts parses.
func TestVectorSummary(t *testing.T) {
	v := &vecRun{family: "ed25519", results: map[string]int{}, refused: map[uint]int{}, skipped: map[string]int{}}
	for i := 0; i < 3; i++ {
		v.judge(wpCase{Result: "invalid"}, outcome{rv: pkcs11.CKR_SIGNATURE_INVALID}, nil, refuseSig...)
	}
	v.skip("empty keys")
	s := v.summary()
	_, rest, _ := strings.Cut(s, ": ")
	var n int
	if _, err := fmt.Sscanf(rest, "%d vectors", &n); err != nil || n != 4 {
		t.Fatalf("summary %q: parsed %d, %v", s, n, err)
	}
	if !strings.Contains(s, "CKR_SIGNATURE_INVALID 3") || !strings.Contains(s, "1 empty keys") {
		t.Errorf("summary %q lacks the refusal or skip counts", s)
	}
}

func TestDerOctets(t *testing.T) {
	for _, n := range []int{32, 57, 200, 1312} {
		b := derOctets(make([]byte, n))
		if b[0] != 0x04 || len(b)-n < 2 || len(b)-n > 4 {
			t.Errorf("%d bytes: header %x", n, b[:len(b)-n])
		}
	}
}

// TestVectorJudgeMatch pins the ACVP validation verdict: the module's own
// output must equal the vector's claim exactly when the answer says
// testPassed, and a refusal is always wrong.
func TestVectorJudgeMatch(t *testing.T) {
	claim := []byte{1, 2, 3}
	for _, c := range []struct {
		name   string
		o      outcome
		passed bool
		bad    bool
	}{
		{"right claim, same output", outcome{got: claim}, true, false},
		{"right claim, other output", outcome{got: []byte{9}}, true, true},
		{"wrong claim, other output", outcome{got: []byte{9}}, false, false},
		{"wrong claim, module agrees", outcome{got: claim}, false, true},
		{"refused", outcome{rv: pkcs11.CKR_MECHANISM_INVALID}, true, true},
	} {
		v := &vecRun{family: "f", results: map[string]int{}, refused: map[uint]int{}, skipped: map[string]int{}}
		v.judgeMatch(acvpWP(7, c.passed, "VAL"), c.o, claim, c.passed)
		if got := len(v.bad) > 0; got != c.bad {
			t.Errorf("%s: bad=%v (%v), want %v", c.name, got, v.bad, c.bad)
		}
	}
}

// TestVectorJudged checks the verdict counts wantVectorCounts reads from
// an ACVP check's detail: skipped cases and refusal codes do not count.
func TestVectorJudged(t *testing.T) {
	v := &vecRun{family: "ACVP ML-DSA", results: map[string]int{}, refused: map[uint]int{}, skipped: map[string]int{}}
	v.judge(acvpWP(1, true, "keyGen"), outcome{got: []byte{1}}, []byte{1})
	for i := 0; i < 3; i++ {
		v.judge(acvpWP(2, false, "sigVer"), outcome{rv: pkcs11.CKR_SIGNATURE_INVALID}, nil, refuseSig...)
	}
	v.skip("internal-interface cases, valid 99")
	if got := judged(v.summary()); got != 4 {
		t.Errorf("judged(%q) = %d, want 4", v.summary(), got)
	}
	if w := acvpWP(5, false, "x %d", 1); w.Result != "invalid" || w.Comment != "x 1" || w.TcID != 5 {
		t.Errorf("acvpWP: %+v", w)
	}
}
