package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// The wrapping keys the commands make can wrap a sensitive key, which an
// ordinary key cannot.
func TestTokenWrapKeyAndTrustCommands(t *testing.T) {
	dir := makeToken(t, "wrap-token")
	pin, soPIN := filepath.Join(dir, "pin"), filepath.Join(dir, "so-pin")
	if err := os.WriteFile(pin, []byte("user-pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(soPIN, []byte("so-pin-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOHSM_CONF", filepath.Join(dir, "none.conf"))
	if err := os.WriteFile(filepath.Join(dir, "none.conf"), []byte("kdf_iterations = 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tokenWrapKey([]string{"--dir", dir, "--label", "kek", "--id", "0a", "--pin-file", pin}))
	if err := tokenWrapKey([]string{"--dir", dir, "--label", "kek2", "--pin-file", soPIN}); err == nil {
		t.Fatal("wrapkey with a wrong PIN succeeded")
	}

	// A public AES key the SO will trust.
	st, err := tokens.Open(dir)
	must(err)
	cfg := hsm.DefaultConfig(st)
	cfg.KDFIterations = 10
	m, err := hsm.New(cfg)
	must(err)
	must(m.Initialize())
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(err)
	must(m.Login(s, ck.CKU_USER, []byte("user-pin")))
	_, err = m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_PRIVATE, Value: attr.Bool(false)},
		{Type: ck.CKA_LABEL, Value: []byte("transport")}, {Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_DECRYPT, Value: attr.Bool(false)}})
	must(err)
	must(m.Finalize())
	must(tokenTrust([]string{"--dir", dir, "--label", "transport", "--so-pin-file", soPIN}))

	m, err = hsm.New(cfg)
	must(err)
	must(m.Initialize())
	defer m.Finalize()
	s, err = m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(err)
	must(m.Login(s, ck.CKU_USER, []byte("user-pin")))
	find := func(label string) ck.ObjectHandle {
		must(m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(label)}}))
		hs, err := m.FindObjects(s, 2)
		must(err)
		must(m.FindObjectsFinal(s))
		if len(hs) != 1 {
			t.Fatalf("%d objects labelled %q", len(hs), label)
		}
		return hs[0]
	}
	target, err := m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)}})
	must(err)
	plain, err := m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)}})
	must(err)
	kw := ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP}
	if _, _, err := m.WrapKey(s, kw, plain, target, 64); !isRV(err, ck.CKR_KEY_NOT_WRAPPABLE) {
		t.Fatalf("an ordinary key wrapped a sensitive key: %v", err)
	}
	for _, label := range []string{"kek", "transport"} {
		if _, _, err := m.WrapKey(s, kw, find(label), target, 64); err != nil {
			t.Fatalf("%s: %v", label, err)
		}
	}
	res, err := m.GetAttributeValue(s, find("kek"), []ck.AttributeRequest{{Type: ck.CKA_DECRYPT, Cap: 1}, {Type: ck.CKA_UNWRAP, Cap: 1},
		{Type: ck.CKA_NEVER_EXTRACTABLE, Cap: 1}, {Type: ck.CKA_LOCAL, Cap: 1}, {Type: ck.CKA_ID, Cap: 8}})
	must(err)
	if res[0].Value[0] != 0 || res[1].Value[0] != 0 || res[2].Value[0] != 1 || res[3].Value[0] != 1 || string(res[4].Value) != "\x0a" {
		t.Fatalf("kek attributes %+v", res)
	}
}

func isRV(err error, rv ck.RV) bool { return err != nil && hsm.ToRV(err) == rv }
