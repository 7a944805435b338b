package tokens_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// These tests run two engines on one directory: two processes as far as
// the store is concerned (each has its own connections, caches and view).

func engineOn(t *testing.T, dir string) *hsm.Module {
	t.Helper()
	st, err := tokens.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := hsm.DefaultConfig(st)
	cfg.KDFIterations = 10
	m, err := hsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Finalize() })
	return m
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func userSession(t *testing.T, m *hsm.Module) ck.SessionHandle {
	t.Helper()
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, m.Login(s, ck.CKU_USER, []byte("user-pin")))
	return s
}

func initialised(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	m := engineOn(t, dir)
	check(t, m.InitToken(0, []byte("so-pin-1"), "shared"))
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	check(t, m.Login(s, ck.CKU_SO, []byte("so-pin-1")))
	check(t, m.InitPIN(s, []byte("user-pin")))
	check(t, m.Finalize())
	return dir
}

func findLabel(t *testing.T, m *hsm.Module, s ck.SessionHandle, label string) []ck.ObjectHandle {
	t.Helper()
	check(t, m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(label)}}))
	hs, err := m.FindObjects(s, 100)
	check(t, err)
	check(t, m.FindObjectsFinal(s))
	return hs
}

func TestTwoEnginesSeeEachOther(t *testing.T) {
	dir := initialised(t)
	a, b := engineOn(t, dir), engineOn(t, dir)
	sa, sb := userSession(t, a), userSession(t, b)
	key := bytes.Repeat([]byte{0x42}, 32)
	h, err := a.CreateObject(sa, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_LABEL, Value: []byte("from-a")},
		{Type: ck.CKA_VALUE, Value: key},
	})
	check(t, err)
	hs := findLabel(t, b, sb, "from-a")
	if len(hs) != 1 {
		t.Fatalf("B found %d objects made by A", len(hs))
	}
	// B can use A's key: encrypt in B, decrypt in A.
	mt := ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	check(t, b.EncryptInit(sb, mt, hs[0]))
	ct, _, err := b.Encrypt(sb, []byte("shared secret"), 100)
	check(t, err)
	check(t, a.DecryptInit(sa, mt, h))
	pt, _, err := a.Decrypt(sa, ct, 100)
	check(t, err)
	if string(pt) != "shared secret" {
		t.Fatal("round trip across engines failed")
	}
	// A relabel and a destroy in B show in A.
	check(t, b.SetAttributeValue(sb, hs[0], []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("renamed-by-b")}}))
	if n := len(findLabel(t, a, sa, "renamed-by-b")); n != 1 {
		t.Fatalf("A sees %d renamed objects", n)
	}
	check(t, b.DestroyObject(sb, hs[0]))
	if n := len(findLabel(t, a, sa, "renamed-by-b")); n != 0 {
		t.Fatal("A still finds an object B destroyed")
	}
}

func TestPINCounterAcrossEngines(t *testing.T) {
	dir := initialised(t)
	a, b := engineOn(t, dir), engineOn(t, dir)
	sa, err := a.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	sb, err := b.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	check(t, err)
	// Ten wrong PINs, alternating and concurrent, lock the PIN for both:
	// no failure may be lost to a race between the processes.
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		for _, p := range []struct {
			m *hsm.Module
			s ck.SessionHandle
		}{{a, sa}, {b, sb}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := p.m.Login(p.s, ck.CKU_USER, []byte("wrong-pin"))
				if !errors.Is(err, ck.CKR_PIN_INCORRECT) && !errors.Is(err, ck.CKR_PIN_LOCKED) {
					t.Errorf("wrong PIN: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	for _, p := range []*hsm.Module{a, b} {
		info, err := p.GetTokenInfo(0)
		check(t, err)
		if info.Flags&ck.CKF_USER_PIN_LOCKED == 0 {
			t.Fatalf("after 10 failures across two engines the PIN is not locked: %#x", info.Flags)
		}
	}
	if err := b.Login(sb, ck.CKU_USER, []byte("user-pin")); !errors.Is(err, ck.CKR_PIN_LOCKED) {
		t.Fatalf("locked PIN accepted: %v", err)
	}
}

// TestNoSecretsOnDisk looks for key values and PINs in the raw store files.
func TestNoSecretsOnDisk(t *testing.T) {
	dir := initialised(t)
	m := engineOn(t, dir)
	s := userSession(t, m)
	var secrets [][]byte
	for i, private := range []bool{true, false} {
		v := bytes.Repeat([]byte{byte(0xa0 + i)}, 16)
		v = append(v, []byte(fmt.Sprintf("KEYVALUE-%d-unique", i))...)
		secrets = append(secrets, v)
		_, err := m.CreateObject(s, []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))},
			{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
			{Type: ck.CKA_PRIVATE, Value: attr.Bool(private)},
			{Type: ck.CKA_VALUE, Value: v},
		})
		check(t, err)
	}
	check(t, m.Finalize())
	secrets = append(secrets, []byte("user-pin"), []byte("so-pin-1"))
	found := 0
	check(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		found++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, sec := range secrets {
			if bytes.Contains(b, sec) {
				t.Errorf("%s contains the secret %q", p, sec)
			}
		}
		return nil
	}))
	if found == 0 {
		t.Fatal("no store files to search")
	}
}

// A key whose use another process revoked (or destroyed) stops working
// here at the next operation, without a search in between: every key use
// catches up (hsm/gate.go), at the cost of one atomic load when nothing
// changed (changecounter.go).
func TestRevokedUsageSeenAtNextOperation(t *testing.T) {
	dir := initialised(t)
	a, b := engineOn(t, dir), engineOn(t, dir)
	sa, sb := userSession(t, a), userSession(t, b)
	h, err := a.GenerateKey(sa, ck.Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_LABEL, Value: []byte("mac-key")},
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)}, {Type: ck.CKA_SIGN, Value: attr.Bool(true)}})
	check(t, err)
	mac := ck.Mechanism{Type: ck.CKM_SHA256_HMAC}
	check(t, a.SignInit(sa, mac, h))
	_, _, err = a.Sign(sa, []byte("before"), 64)
	check(t, err)
	hb := findLabel(t, b, sb, "mac-key")
	if len(hb) != 1 {
		t.Fatalf("B found %d keys", len(hb))
	}
	check(t, b.SetAttributeValue(sb, hb[0], []ck.Attribute{{Type: ck.CKA_SIGN, Value: attr.Bool(false)}}))
	if err := a.SignInit(sa, mac, h); !errors.Is(err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED) {
		t.Fatalf("A signs with a key B revoked: %v", err)
	}
	check(t, b.DestroyObject(sb, hb[0]))
	if err := a.VerifyInit(sa, mac, h); !errors.Is(err, ck.CKR_KEY_HANDLE_INVALID) {
		t.Fatalf("A uses a key B destroyed: %v", err)
	}
}
