//go:build !shimfake

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/firmware-sim/device/selftest"
	"github.com/gohsm/gohsm/hsm/ck"
)

// TestSelftestErrorState: GOHSM_FAIL_SELFTEST=NAME, for every self-test,
// makes C_Initialize (through the real factory, openConfigured) come up in
// the error state: C_OpenSession and the other calls answer
// CKR_DEVICE_ERROR, C_GetSlotList and C_GetTokenInfo answer, and the token
// info's manufacturerID names the test. Without it the module is
// operational. The fail_selftest configuration key does the same.
func TestSelftestErrorState(t *testing.T) {
	dir := t.TempDir()
	for _, name := range append(selftest.Names(), "") {
		env := envOf(map[string]string{"GOHSM_DIR": filepath.Join(dir, "tokens"), "HOME": dir, "GOHSM_FAIL_SELFTEST": name})
		if rv := initialize(nil, env); rv != ck.CKR_OK {
			t.Fatalf("%s: C_Initialize: %v", name, rv)
		}
		be, _ := backend()
		t.Cleanup(func() { finalize() })
		slots, err := be.GetSlotList(true)
		if err != nil || len(slots) == 0 {
			t.Fatalf("%s: C_GetSlotList: %v", name, err)
		}
		info, err := be.GetTokenInfo(slots[0])
		if err != nil {
			t.Fatalf("%s: C_GetTokenInfo: %v", name, err)
		}
		_, err = be.OpenSession(slots[0], ck.CKF_SERIAL_SESSION) // the free slot: CKR_TOKEN_NOT_RECOGNIZED when operational
		_, rerr := be.GetMechanismList(slots[0])
		if name == "" {
			if hsmRV(err) != ck.CKR_TOKEN_NOT_RECOGNIZED || rerr != nil || strings.TrimRight(info.ManufacturerID, " ") != "gohsm" {
				t.Fatalf("clean boot: %v %v %q", err, rerr, info.ManufacturerID)
			}
		} else {
			if hsmRV(err) != ck.CKR_DEVICE_ERROR || hsmRV(rerr) != ck.CKR_DEVICE_ERROR {
				t.Fatalf("%s: C_OpenSession %v, C_GetMechanismList %v", name, err, rerr)
			}
			if !strings.HasPrefix("selftest FAIL: "+name, strings.TrimRight(info.ManufacturerID, " ")) || strings.TrimRight(info.Model, " ") != "ERROR" {
				t.Fatalf("%s: token info %q %q", name, info.ManufacturerID, info.Model)
			}
		}
		if rv := finalize(); rv != ck.CKR_OK {
			t.Fatalf("%s: C_Finalize: %v", name, rv)
		}
	}
	// The configuration key.
	conf := filepath.Join(dir, "gohsm.conf")
	if err := os.WriteFile(conf, []byte("fail_selftest = SM3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{"GOHSM_DIR": filepath.Join(dir, "tokens"), "HOME": dir, "GOHSM_CONF": conf})
	if rv := initialize(nil, env); rv != ck.CKR_OK {
		t.Fatalf("C_Initialize: %v", rv)
	}
	t.Cleanup(func() { finalize() })
	be, _ := backend()
	info, _ := be.GetTokenInfo(0)
	if strings.TrimRight(info.ManufacturerID, " ") != "selftest FAIL: SM3" {
		t.Fatalf("fail_selftest: %q", info.ManufacturerID)
	}
}
