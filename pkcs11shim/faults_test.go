//go:build !shimfake

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/firmware-sim/faults"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
)

// GOHSM_FAULTS makes C_Initialize wrap the backend in the plan (the
// configuration's faults key is the same, internal/conf); the plan counts
// across C_Finalize and C_Initialize; a plan that does not parse fails
// C_Initialize.
func TestFaultsHook(t *testing.T) {
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.json")
	os.WriteFile(plan, []byte(`{"rules": [{"function": "C_GetInfo", "nth": 2, "rv": "CKR_DEVICE_ERROR"}]}`), 0o600)
	env := envOf(map[string]string{"GOHSM_DIR": filepath.Join(dir, "tokens"), "HOME": dir, "GOHSM_FAULTS": plan})
	var got []ck.RV
	for range 2 {
		if rv := initialize(nil, env); rv != ck.CKR_OK {
			t.Fatalf("C_Initialize: %v", rv)
		}
		be, _ := backend()
		if _, ok := be.(*faults.Backend); !ok {
			t.Fatalf("backend %T, want the fault plan's decorator", be)
		}
		_, err := be.GetInfo()
		got = append(got, hsmRV(err))
		if rv := finalize(); rv != ck.CKR_OK {
			t.Fatalf("C_Finalize: %v", rv)
		}
	}
	if got[0] != ck.CKR_OK || got[1] != ck.CKR_DEVICE_ERROR {
		t.Fatalf("C_GetInfo across two C_Initialize: %v, want OK then the planned CKR_DEVICE_ERROR", got)
	}
	os.WriteFile(plan, []byte(`{"rules": [{"function": "C_Sgn", "rv": "CKR_DEVICE_ERROR"}]}`), 0o600)
	if rv := initialize(nil, env); rv == ck.CKR_OK {
		finalize()
		t.Fatal("a broken plan was accepted")
	}
	cfg, err := conf.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := openConfigured(cfg); err == nil || !strings.Contains(err.Error(), `unknown function "C_Sgn"`) {
		t.Fatalf("the reason: %v", err)
	}
}
