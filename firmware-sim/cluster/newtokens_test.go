package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// A token C_InitToken'ed through member A appears in C_GetSlotList of an
// engine that was already running on member B (a connection opened before),
// in the slot B showed as free; B logs in to it and uses it at once, and a
// key B makes there is usable through A.
func TestNewTokenSeenByRunningEngine(t *testing.T) {
	tc := startCluster(t, 2, slowerRaft)
	a, b := tc.nodes[0], tc.nodes[1]
	initToken(t, a)
	mb := engine(t, b)
	sb := userSession(t, mb) // an open session on slot 0 across the change
	if got := labels(t, mb); got != "replicated,(free)" {
		t.Fatalf("b before: %s", got)
	}

	ma := engine(t, a)
	if got := labels(t, ma); got != "replicated,(free)" {
		t.Fatalf("a before: %s", got)
	}
	check(t, ma.InitToken(1, []byte(soPIN), "made-on-a"))
	s, err := ma.OpenSession(1, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, ma.Login(s, ck.CKU_SO, []byte(soPIN)))
	check(t, ma.InitPIN(s, []byte(userPIN)))
	check(t, ma.CloseSession(s))
	// Made on the leader, not yet initialised (C_InitToken's first entry):
	// not a token for b, which keeps one free slot.
	if _, err := a.write(&entry{Op: opCreateToken}); err != nil {
		t.Fatal(err)
	}

	// At once on b: no sleep, no retry.
	if got := labels(t, mb); got != "replicated,made-on-a,(free)" {
		t.Fatalf("b after a made a token: %s", got)
	}
	s1, err := mb.OpenSession(1, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, mb.Login(s1, ck.CKU_USER, []byte(userPIN)))
	h, err := mb.GenerateKey(s1, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_LABEL, Value: []byte("on-new-token")}})
	check(t, err)
	check(t, mb.EncryptInit(s1, gcm, h))
	ct, _, err := mb.Encrypt(s1, []byte("new token"), 100)
	check(t, err)
	sa, err := ma.OpenSession(1, ck.CKF_SERIAL_SESSION)
	check(t, err)
	check(t, ma.Login(sa, ck.CKU_USER, []byte(userPIN)))
	ha := findLabel(t, ma, sa, "on-new-token")
	if len(ha) != 1 {
		t.Fatalf("a finds %d keys made on b's new token", len(ha))
	}
	check(t, ma.DecryptInit(sa, gcm, ha[0]))
	pt, _, err := ma.Decrypt(sa, ct, 100)
	check(t, err)
	if string(pt) != "new token" {
		t.Fatal("round trip through the new token failed")
	}
	// b's old session on slot 0 still works.
	if n := len(findLabel(t, mb, sb, "nothing-by-this-name")); n != 0 {
		t.Fatalf("old session: %d objects", n)
	}
	// b's free slot takes a token of b's own, after the bare store.
	check(t, mb.InitToken(2, []byte(soPIN), "made-on-b"))
	if got := labels(t, mb); got != "replicated,made-on-a,made-on-b,(free)" {
		t.Fatalf("b after its own token: %s", got)
	}
	if got := labels(t, ma); got != "replicated,made-on-a,made-on-b,(free)" {
		t.Fatalf("a after b's token: %s", got)
	}
}

func labels(t *testing.T, m *hsm.Module) string {
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

// slowerRaft is for two-member clusters on a loaded machine: with two
// members a leader that misses one heartbeat round has no majority, so the
// test's 300 ms heartbeat (150 ms lease) would make it step down, and a
// write fail, for reasons that have nothing to do with what is tested.
func slowerRaft(c *Config) {
	c.HeartbeatTimeout, c.ElectionTimeout = time.Second, time.Second
}
