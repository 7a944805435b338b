package mech

import (
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// TestMessageSignFlags: the engine runs message-based signing for every
// mechanism that signs in one part, so exactly those advertise
// CKF_MESSAGE_SIGN / CKF_MESSAGE_VERIFY.
func TestMessageSignFlags(t *testing.T) {
	r := New(ck.DefaultProfile)
	signers := 0
	for _, mt := range r.List() {
		mm, _ := r.Mechanism(mt)
		sign := mm.Sign != nil && mm.Info.Flags&ck.CKF_SIGN != 0
		verify := mm.Verify != nil && mm.Info.Flags&ck.CKF_VERIFY != 0
		if got := mm.Info.Flags&ck.CKF_MESSAGE_SIGN != 0; got != sign {
			t.Errorf("%v: CKF_MESSAGE_SIGN %v, signs %v", mt, got, sign)
		}
		if got := mm.Info.Flags&ck.CKF_MESSAGE_VERIFY != 0; got != verify {
			t.Errorf("%v: CKF_MESSAGE_VERIFY %v, verifies %v", mt, got, verify)
		}
		if sign {
			signers++
		}
	}
	if signers < 40 {
		t.Fatalf("only %d signing mechanisms", signers)
	}
}
