package main

import (
	"bytes"
	"encoding/asn1"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/firmware-sim/device"
	"github.com/gohsm/gohsm/firmware-sim/device/selftest"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// appClient connects app1 (partition "payments") to a running appliance.
func appClient(t *testing.T, a *appliance, p pkiFiles) *client.Client {
	t.Helper()
	tlsConf, err := client.LoadTLS(p.CACert(), p.ClientCert(), p.ClientKey(), "", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.DefaultConfig()
	cfg.Address, cfg.TLS = a.Addr().String(), tlsConf
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(); err != nil {
		t.Fatalf("C_Initialize through the appliance: %v", err)
	}
	t.Cleanup(func() { c.Finalize() })
	return c
}

func mustT(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rvOf(err error) ck.RV { return hsm.ToRV(err) }

// paymentsToken makes the token "payments" in store with the local
// engine, and an EC key pair "k" in it.
func paymentsToken(t *testing.T, store string) {
	t.Helper()
	mustT(t, os.MkdirAll(store, 0o700))
	td, err := tokens.Open(store)
	mustT(t, err)
	defer td.Close()
	cfg := hsm.DefaultConfig(td)
	cfg.KDFIterations = 1000
	m, err := hsm.New(cfg)
	mustT(t, err)
	mustT(t, m.Initialize())
	defer m.Finalize()
	mustT(t, m.InitToken(0, []byte("so-pin-1"), "payments"))
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	mustT(t, err)
	mustT(t, m.Login(s, ck.CKU_SO, []byte("so-pin-1")))
	mustT(t, m.InitPIN(s, []byte("user-pin-1")))
	mustT(t, m.Logout(s))
	mustT(t, m.Login(s, ck.CKU_USER, []byte("user-pin-1")))
	p256, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
	yes := []byte{1}
	_, _, err = m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: yes}, {Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_LABEL, Value: []byte("k")}},
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: yes}, {Type: ck.CKA_LABEL, Value: []byte("k")}})
	mustT(t, err)
}

// keyOp signs msg with "k" (sig nil) or verifies sig, through be.
func keyOp(t *testing.T, be hsm.Backend, slot ck.SlotID, msg, sig []byte) ([]byte, error) {
	t.Helper()
	s, err := be.OpenSession(slot, ck.CKF_SERIAL_SESSION)
	if err != nil {
		return nil, err
	}
	defer be.CloseSession(s)
	if err := be.Login(s, ck.CKU_USER, []byte("user-pin-1")); err != nil {
		return nil, err
	}
	class := ck.CKO_PRIVATE_KEY
	if sig != nil {
		class = ck.CKO_PUBLIC_KEY
	}
	var cb [8]byte
	cb[0] = byte(class)
	mustT(t, be.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_CLASS, Value: cb[:]}, {Type: ck.CKA_LABEL, Value: []byte("k")}}))
	objs, err := be.FindObjects(s, 2)
	mustT(t, err)
	mustT(t, be.FindObjectsFinal(s))
	if len(objs) != 1 {
		t.Fatalf("%d keys k of class %v", len(objs), class)
	}
	if sig == nil {
		mustT(t, be.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, objs[0]))
		out, _, err := be.Sign(s, msg, 256)
		return out, err
	}
	mustT(t, be.VerifyInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, objs[0]))
	return nil, be.Verify(s, msg, sig)
}

func slotOf(t *testing.T, be hsm.Backend, label string) (ck.SlotID, ck.TokenInfo) {
	t.Helper()
	slots, err := be.GetSlotList(true)
	mustT(t, err)
	for _, s := range slots {
		info, err := be.GetTokenInfo(s)
		mustT(t, err)
		if strings.TrimRight(info.Label, " ") == label {
			return s, info
		}
	}
	t.Fatalf("no token %q", label)
	return 0, ck.TokenInfo{}
}

// TestApplianceSelftestErrorState: GOHSM_FAIL_SELFTEST=NAME, for every
// self-test, brings gohsm serve up in the error state: a client sees its
// token, with the reason in C_GetTokenInfo's manufacturerID, and every
// other call answers CKR_DEVICE_ERROR. A clean start is operational.
func TestApplianceSelftestErrorState(t *testing.T) {
	confPath, p := writeProdConfig(t, "audit_log = audit.log\n")
	paymentsToken(t, filepath.Join(filepath.Dir(confPath), "store"))
	for _, name := range append(selftest.Names(), "") {
		t.Setenv("GOHSM_FAIL_SELFTEST", name)
		a, _, stderr, stop := startServe(t, "--config", confPath)
		c := appClient(t, a, p)
		slot, info := slotOf(t, c, "payments")
		_, err := c.OpenSession(slot, ck.CKF_SERIAL_SESSION)
		_, merr := c.GetMechanismList(slot)
		ci, ierr := c.GetInfo()
		mustT(t, ierr)
		if name == "" {
			if err != nil || merr != nil || !strings.Contains(stderr.String(), "boot to operational") {
				t.Fatalf("clean start: %v %v\n%s", err, merr, stderr)
			}
		} else {
			if rvOf(err) != ck.CKR_DEVICE_ERROR || rvOf(merr) != ck.CKR_DEVICE_ERROR {
				t.Fatalf("%s: C_OpenSession %v, C_GetMechanismList %v", name, err, merr)
			}
			if !strings.HasPrefix("selftest FAIL: "+name, strings.TrimRight(info.ManufacturerID, " ")) || strings.TrimRight(info.Model, " ") != "ERROR" ||
				!strings.HasPrefix("selftest FAIL: "+name, strings.TrimRight(ci.LibraryDescription, " ")) {
				t.Fatalf("%s: token info %q %q, info %q", name, info.ManufacturerID, info.Model, ci.LibraryDescription)
			}
		}
		c.Finalize()
		mustT(t, stop())
	}
}

// TestApplianceCustody drives the lifecycle through gohsm itself: the
// ceremony (gohsm device init, 3 of 5, one share encrypted to a custodian),
// a sealed start, gohsm unseal (2 shares do not; a corrupted and a wrong
// share are named; the third unseals), firmware images (a tampered one, a
// wrong signer and a rollback refused; an update installed, and after a
// restart with --unseal-shares the key made before verifies its old
// signature), then gohsm device tamper and a restart: nothing can be read,
// by any share. Every transition is in the audit log.
func TestApplianceCustody(t *testing.T) {
	confPath, p := writeProdConfig(t, "audit_log = audit.log\n")
	base := filepath.Dir(confPath)
	store := filepath.Join(base, "store")
	paymentsToken(t, store)
	shares := filepath.Join(base, "shares")
	mustT(t, tokenKeygen([]string{"--out", filepath.Join(base, "cust.pem"), "--pub", filepath.Join(base, "cust.pub")}))
	mustT(t, firmwareCmd([]string{"keygen", "--out", filepath.Join(base, "fw.key"), "--pub", filepath.Join(base, "fw.pub")}))
	mustT(t, firmwareCmd([]string{"keygen", "--out", filepath.Join(base, "evil.key"), "--pub", filepath.Join(base, "evil.pub")}))
	args := []string{"init", "--dir", store, "--shares", "5", "--threshold", "3", "--out", shares, "--firmware-signer", filepath.Join(base, "fw.pub")}
	for i := 1; i <= 5; i++ {
		k := "none" // shares 1-4 in the clear
		if i == 5 {
			k = filepath.Join(base, "cust.pub")
		}
		args = append(args, "--custodian-key", k)
	}
	mustT(t, deviceCmd(args))
	share := func(i int) string { return filepath.Join(shares, "share-"+string(rune('0'+i))+".json") }

	a, _, stderr, stop := startServe(t, "--config", confPath)
	c := appClient(t, a, p)
	slot, info := slotOf(t, c, "payments")
	if !strings.HasPrefix(info.ManufacturerID, "sealed: unseal 3 of 5") || strings.TrimRight(info.Model, " ") != "SEALED" {
		t.Fatalf("sealed: %q %q", info.ManufacturerID, info.Model)
	}
	if _, err := c.OpenSession(slot, ck.CKF_SERIAL_SESSION); rvOf(err) != ck.CKR_DEVICE_ERROR {
		t.Fatalf("sealed: C_OpenSession %v", err)
	}
	mustT(t, unsealCmd([]string{"--dir", store, share(1), share(2)}))
	if _, err := c.OpenSession(slot, ck.CKF_SERIAL_SESSION); rvOf(err) != ck.CKR_DEVICE_ERROR {
		t.Fatalf("two shares: C_OpenSession %v", err)
	}
	// A corrupted share file, and a share of another device, are named.
	b, _ := os.ReadFile(share(3))
	bad := filepath.Join(base, "corrupted.json")
	os.WriteFile(bad, bytes.Replace(b, []byte(`"index": 3`), []byte(`"index": 4`), 1), 0o600)
	if err := unsealCmd([]string{"--dir", store, bad}); err == nil || !strings.Contains(err.Error(), "corrupted") {
		t.Fatalf("corrupted share: %v", err)
	}
	other := filepath.Join(base, "other")
	mustT(t, deviceCmd([]string{"init", "--dir", other, "--shares", "3", "--threshold", "2", "--out", filepath.Join(base, "other-shares")}))
	if err := unsealCmd([]string{"--dir", store, filepath.Join(base, "other-shares", "share-3.json")}); err == nil || !strings.Contains(err.Error(), "not a share of this device") {
		t.Fatalf("another device's share: %v", err)
	}
	// The encrypted share needs its custodian's key.
	if err := unsealCmd([]string{"--dir", store, share(5)}); err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Fatalf("encrypted share without its key: %v", err)
	}
	mustT(t, unsealCmd([]string{"--dir", store, "--identity", filepath.Join(base, "cust.pem"), share(5)}))
	msg := []byte("signed before the firmware update")
	sig, err := keyOp(t, c, slot, msg, nil)
	mustT(t, err)

	// Firmware: the test binary is the running "gohsm".
	exe, _ := os.Executable()
	img := func(name, key string, svn string) string {
		out := filepath.Join(base, name)
		mustT(t, firmwareCmd([]string{"sign", "--key", filepath.Join(base, key), "--svn", svn, "--binary", exe, "--library", "", "--out", out}))
		return out
	}
	good := img("fw2.json", "fw.key", "2")
	if err := firmwareCmd([]string{"install", "--dir", store, img("evil.json", "evil.key", "3")}); err == nil || !strings.Contains(err.Error(), "does not trust") {
		t.Fatalf("wrong signer: %v", err)
	}
	var im device.Image
	b, _ = os.ReadFile(good)
	json.Unmarshal(b, &im)
	im.Manifest = bytes.Replace(im.Manifest, []byte(`"svn": 2`), []byte(`"svn": 7`), 1)
	tampered := filepath.Join(base, "tampered.json")
	os.WriteFile(tampered, im.Marshal(), 0o644)
	if err := firmwareCmd([]string{"verify", "--dir", store, tampered}); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("verify tampered: %v", err)
	}
	if err := firmwareCmd([]string{"install", "--dir", store, tampered}); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("tampered image: %v", err)
	}
	mustT(t, firmwareCmd([]string{"verify", "--dir", store, good}))
	mustT(t, firmwareCmd([]string{"install", "--dir", store, good}))
	if err := firmwareCmd([]string{"install", "--dir", store, img("fw1.json", "fw.key", "1")}); err == nil || !strings.Contains(err.Error(), "rollback") {
		t.Fatalf("rollback: %v", err)
	}
	c.Finalize()
	mustT(t, stop())
	if !strings.Contains(stderr.String(), "boot to sealed") {
		t.Errorf("no boot time in the log:\n%s", stderr)
	}

	// Restart on the update, unsealed at start: the key made before
	// verifies the signature made before.
	a, _, stderr, stop = startServe(t, "--config", confPath, "--unseal-shares", share(2)+","+share(3)+","+share(4))
	if !strings.Contains(stderr.String(), "firmware 0.1 svn 2") || !strings.Contains(stderr.String(), "operational after 3 share(s)") {
		t.Fatalf("restart on the update:\n%s", stderr)
	}
	c = appClient(t, a, p)
	slot, _ = slotOf(t, c, "payments")
	if _, err := keyOp(t, c, slot, msg, sig); err != nil {
		t.Fatalf("the signature made before the update, verified after: %v", err)
	}
	// Tamper: at once, nothing answers.
	mustT(t, deviceCmd([]string{"tamper", "--dir", store, "--reason", "test tamper"}))
	if _, err := c.OpenSession(slot, ck.CKF_SERIAL_SESSION); rvOf(err) != ck.CKR_DEVICE_ERROR {
		t.Fatalf("after tamper: C_OpenSession %v", err)
	}
	c.Finalize()
	mustT(t, stop())
	// Restart: zeroised; no share can unseal it.
	a, _, _, stop = startServe(t, "--config", confPath)
	c = appClient(t, a, p)
	slot, info = slotOf(t, c, "payments")
	if strings.TrimRight(info.Model, " ") != "ZEROISED" {
		t.Fatalf("after restart: %q %q", info.Model, info.ManufacturerID)
	}
	for i := 1; i <= 4; i++ {
		if err := unsealCmd([]string{"--dir", store, share(i)}); err == nil || !strings.Contains(err.Error(), "zeroised") {
			t.Fatalf("share %d after zeroise: %v", i, err)
		}
	}
	if _, err := c.OpenSession(slot, ck.CKF_SERIAL_SESSION); rvOf(err) != ck.CKR_DEVICE_ERROR {
		t.Fatalf("zeroised: C_OpenSession %v", err)
	}
	c.Finalize()
	mustT(t, stop())
	// Every transition is in the audit log.
	recs := checkAuditLog(t, filepath.Join(base, "audit.log"), nil)
	var calls []string
	for _, r := range recs {
		if strings.HasPrefix(r.Call, "device.") {
			calls = append(calls, r.Call+" "+r.Note)
		}
	}
	all := strings.Join(calls, "\n")
	for _, want := range []string{"device.boot sealed", "device.share accepted share 1", "device.share refused share 3", "device.unseal unsealed",
		"device.firmware refused", "device.firmware installing 0.1 svn 2", "device.zeroise zeroised: test tamper", "device.boot zeroised"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit log lacks %q:\n%s", want, all)
		}
	}
}

// TestApplianceSIGUSR1 zeroises a running, unsealed appliance with
// SIGUSR1 (the tamper signal).
func TestApplianceSIGUSR1(t *testing.T) {
	confPath, p := writeProdConfig(t, "audit_log = audit.log\n")
	base := filepath.Dir(confPath)
	store := filepath.Join(base, "store")
	paymentsToken(t, store)
	shares := filepath.Join(base, "shares")
	mustT(t, deviceCmd([]string{"init", "--dir", store, "--shares", "2", "--threshold", "2", "--out", shares}))
	a, _, _, stop := startServe(t, "--config", confPath, "--unseal-shares", filepath.Join(shares, "share-1.json")+","+filepath.Join(shares, "share-2.json"))
	c := appClient(t, a, p)
	slot, _ := slotOf(t, c, "payments")
	if _, err := keyOp(t, c, slot, []byte("m"), nil); err != nil {
		t.Fatalf("unsealed at start: %v", err)
	}
	mustT(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	deadline := time.Now().Add(10 * time.Second)
	for a.device.dev.Status().State != device.Zeroised {
		if time.Now().After(deadline) {
			t.Fatal("SIGUSR1 did not zeroise")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.OpenSession(slot, ck.CKF_SERIAL_SESSION); rvOf(err) != ck.CKR_DEVICE_ERROR {
		t.Fatalf("after SIGUSR1: %v", err)
	}
	c.Finalize()
	mustT(t, stop())
	if _, err := os.Stat(filepath.Join(store, "device", "secret")); !os.IsNotExist(err) {
		t.Fatalf("device secret after SIGUSR1: %v", err)
	}
}
