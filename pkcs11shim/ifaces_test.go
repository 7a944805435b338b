package main

import (
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// TestIfaceRules checks what the C tables rely on: the 3.0 table shares
// the C_XxxInit entries of the 3.2 table (shim.h lists only
// C_GetMechanismInfo as its own), so the two versions must agree on
// everything but the mechanism flags; and each version's flags include
// the earlier one's.
func TestIfaceRules(t *testing.T) {
	if ifaces[iface30].nullMechanismCancels != ifaces[iface32].nullMechanismCancels {
		t.Error("3.0 and 3.2 disagree on a NULL mechanism, but share the C_XxxInit entries: give the 3.0 table its own (shim.h)")
	}
	if ifaces[iface240].nullMechanismCancels {
		t.Error("2.40 has no NULL-mechanism cancel")
	}
	for _, c := range []struct{ older, newer ifaceVersion }{{iface240, iface30}, {iface30, iface32}} {
		o, n := ifaces[c.older].mechFlags, ifaces[c.newer].mechFlags
		if o&^n != 0 {
			t.Errorf("%s defines flags %#x that %s does not", ifaces[c.older].name, uint64(o&^n), ifaces[c.newer].name)
		}
	}
	for _, f := range []ck.Flags{ck.CKF_MESSAGE_ENCRYPT, ck.CKF_MESSAGE_DECRYPT, ck.CKF_MESSAGE_SIGN, ck.CKF_MESSAGE_VERIFY,
		ck.CKF_MULTI_MESSAGE, ck.CKF_FIND_OBJECTS, ck.CKF_ENCAPSULATE, ck.CKF_DECAPSULATE} {
		if ifaces[iface240].mechFlags&f != 0 {
			t.Errorf("2.40 reports flag %#x", uint64(f))
		}
	}
	for _, f := range []ck.Flags{ck.CKF_ENCAPSULATE, ck.CKF_DECAPSULATE} {
		if ifaces[iface30].mechFlags&f != 0 {
			t.Errorf("3.0 reports the 3.2 flag %#x", uint64(f))
		}
	}
	if len(ifaces) != 3 || ifaces[iface240].name != "2.40" || ifaces[iface30].name != "3.0" || ifaces[iface32].name != "3.2" {
		t.Errorf("interface table out of step with the GOHSM_IFACE_* values: %+v", ifaces)
	}
}

// TestIfaceFlagsCoverEngine: a 3.2 caller, the newest, loses none of the
// flags the engine reports, so a flag added to a mechanism without a row
// in ifaces.go is caught here rather than silently dropped.
func TestIfaceFlagsCoverEngine(t *testing.T) {
	m, err := hsm.New(hsm.DefaultConfig(hsm.NewMemoryStorage()))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer m.Finalize()
	slots, err := m.GetSlotList(false)
	if err != nil || len(slots) == 0 {
		t.Fatalf("slots %v: %v", slots, err)
	}
	list, err := m.GetMechanismList(slots[0])
	if err != nil || len(list) == 0 {
		t.Fatalf("mechanisms %v: %v", list, err)
	}
	for _, mt := range list {
		info, err := m.GetMechanismInfo(slots[0], mt)
		if err != nil {
			t.Fatalf("%v: %v", mt, err)
		}
		if lost := info.Flags &^ ifaces[iface32].mechFlags; lost != 0 {
			t.Errorf("%v: flags %#x are in no interface's table (ifaces.go)", mt, uint64(lost))
		}
	}
}
