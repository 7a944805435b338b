package tokens_test

import (
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// Two engines on one directory (two processes, or two connections of the
// appliance): a token engine B initialises appears in engine A's
// C_GetSlotList (Dir.NewStores), in A's free slot, and A logs in to it and
// sees objects B makes there afterwards. A token file made but not yet
// initialised is not offered.
func TestNewTokenSeenByOtherEngine(t *testing.T) {
	dir := initialised(t)
	a, b := engineOn(t, dir), engineOn(t, dir)
	if got := engineLabels(t, a); got != "shared,(free)" {
		t.Fatalf("a before: %s", got)
	}
	check(t, b.InitToken(1, []byte("so-pin-2"), "second"))
	s, err := b.OpenSession(1, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, b.Login(s, ck.CKU_SO, []byte("so-pin-2")))
	check(t, b.InitPIN(s, []byte("user-pin-2")))
	check(t, b.Logout(s))
	check(t, b.Login(s, ck.CKU_USER, []byte("user-pin-2")))
	// A token file another process made and has not initialised yet.
	d, err := tokens.Open(dir)
	check(t, err)
	defer d.Close()
	if _, err := d.Create(); err != nil {
		t.Fatal(err)
	}

	if got := engineLabels(t, a); got != "shared,second,(free)" {
		t.Fatalf("a after b made a token: %s", got)
	}
	if got := engineLabels(t, a); got != "shared,second,(free)" {
		t.Fatalf("a asked again: %s", got)
	}
	sa, err := a.OpenSession(1, ck.CKF_SERIAL_SESSION)
	check(t, err)
	check(t, a.Login(sa, ck.CKU_USER, []byte("user-pin-2")))
	_, err = b.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_LABEL, Value: []byte("made-by-b")}})
	check(t, err)
	if n := len(findLabel(t, a, sa, "made-by-b")); n != 1 {
		t.Fatalf("a finds %d keys b made on the new token", n)
	}
}

func engineLabels(t *testing.T, m *hsm.Module) string {
	t.Helper()
	slots, err := m.GetSlotList(true)
	check(t, err)
	var out []string
	for _, s := range slots {
		info, err := m.GetTokenInfo(s)
		check(t, err)
		if info.Flags&ck.CKF_TOKEN_INITIALIZED == 0 {
			out = append(out, "(free)")
			continue
		}
		out = append(out, strings.TrimRight(info.Label, " "))
	}
	return strings.Join(out, ",")
}
