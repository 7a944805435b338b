package main

import (
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
	"github.com/gohsm/gohsm/tokens"
)

// The demo token `make run` promises: made once, with the PINs it prints,
// and left alone on the next run.
func TestEnsureDemoToken(t *testing.T) {
	dir := t.TempDir()
	cfg := &conf.Config{Dir: dir, Profile: ck.DefaultProfile, KDFIterations: 10}
	made, err := ensureDemoToken(cfg)
	if err != nil || !made {
		t.Fatalf("first run: made=%v err=%v", made, err)
	}
	if made, err := ensureDemoToken(cfg); err != nil || made {
		t.Fatalf("second run: made=%v err=%v (the demo token must be kept)", made, err)
	}
	st, err := tokens.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	hc := hsm.DefaultConfig(st)
	hc.KDFIterations = 10
	m, err := hsm.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer m.Finalize()
	info, err := m.GetTokenInfo(0)
	if err != nil || info.Label != demoLabel || info.Flags&ck.CKF_USER_PIN_INITIALIZED == 0 {
		t.Fatalf("slot 0: %+v, %v", info, err)
	}
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Login(s, ck.CKU_USER, []byte(demoUserPIN)); err != nil {
		t.Fatalf("the printed user PIN does not log in: %v", err)
	}
	slots, _ := m.GetSlotList(true)
	if len(slots) != 2 {
		t.Fatalf("%d slots, want the demo token and one free slot", len(slots))
	}
}
