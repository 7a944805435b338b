package hsmtest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsmtest"
	"github.com/gohsm/gohsm/hsmtest/fixture"
)

func TestNewToken(t *testing.T) {
	tok := hsmtest.New(t)
	info, err := tok.Backend.GetTokenInfo(tok.Slot)
	if err != nil {
		t.Fatal(err)
	}
	if info.Label != hsmtest.DefaultLabel || info.Flags&ck.CKF_USER_PIN_INITIALIZED == 0 {
		t.Fatalf("token info %+v", info)
	}
	s := tok.Session(t)
	if err := tok.Backend.Login(s, ck.CKU_USER, []byte("wrong")); hsm.ToRV(err) != ck.CKR_PIN_INCORRECT {
		t.Fatalf("wrong PIN: %v", err)
	}
	if err := tok.Backend.Login(s, ck.CKU_USER, []byte(hsmtest.DefaultUserPIN)); err != nil {
		t.Fatal(err)
	}
	if len(tok.Keys) != 0 {
		t.Fatalf("keys %v without Keys", tok.Keys)
	}
}

func TestSigners(t *testing.T) {
	tok := hsmtest.New(t, hsmtest.Keys("all"), hsmtest.Label("signers"), hsmtest.PINs("246810", "13579111"))
	tok.Login(t)
	msg := []byte("sign me")
	d := sha256.Sum256(msg)

	sig, err := tok.Signer(t, "ec").Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(tok.Key(t, "ec").Public.(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("ECDSA signature does not verify")
	}

	rs := tok.Signer(t, "rsa")
	sig, err = rs.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(rs.Public().(*rsa.PublicKey), crypto.SHA256, d[:], sig); err != nil {
		t.Fatal(err)
	}
	sig, err = rs.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPSS(rs.Public().(*rsa.PublicKey), crypto.SHA256, d[:], sig, nil); err != nil {
		t.Fatal(err)
	}

	sig, err = tok.Signer(t, "ed25519").Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(tok.Key(t, "ed25519").Public.(ed25519.PublicKey), msg, sig) {
		t.Fatal("Ed25519 signature does not verify")
	}

	aes := tok.Key(t, "aes")
	if aes.Label != "aes-256" || aes.ID != "03" || aes.Public != nil {
		t.Fatalf("aes key %+v", aes)
	}
}

// TestKeysArePrivateAndSensitive: fixture keys are as a real HSM makes them.
func TestKeysArePrivateAndSensitive(t *testing.T) {
	tok := hsmtest.New(t, hsmtest.Keys("ec", "aes"))
	s := tok.Session(t)
	// Before login the private key is invisible.
	if err := tok.Backend.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("ec-p256")}}); err != nil {
		t.Fatal(err)
	}
	hs, _ := tok.Backend.FindObjects(s, 10)
	tok.Backend.FindObjectsFinal(s)
	if len(hs) != 1 || hs[0] != tok.Key(t, "ec").PublicHandle {
		t.Fatalf("before login: found %v, want only the public key", hs)
	}
	tok.Login(t)
	for _, kind := range []string{"ec", "aes"} {
		res, err := tok.Backend.GetAttributeValue(s, tok.Key(t, kind).Handle, []ck.AttributeRequest{
			{Type: ck.CKA_SENSITIVE, Cap: 1}, {Type: ck.CKA_EXTRACTABLE, Cap: 1}, {Type: ck.CKA_PRIVATE, Cap: 1}})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []bool{true, false, true} {
			if got, _ := attr.DecodeBool(res[i].Type, res[i].Value); got != want {
				t.Errorf("%s: %v = %v", kind, res[i].Type, got)
			}
		}
	}
}

func TestRestartOnDisk(t *testing.T) {
	tok := hsmtest.New(t, hsmtest.OnDisk(), hsmtest.Keys("ec"))
	tok.Login(t)
	tok.Restart(t)
	s := tok.Session(t)
	if err := tok.Backend.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, tok.Key(t, "ec").Handle); err == nil {
		t.Fatal("signed after a restart without logging in")
	}
	tok.Login(t)
	d := sha256.Sum256([]byte("after restart"))
	sig, err := tok.Signer(t, "ec").Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(tok.Key(t, "ec").Public.(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("signature after restart does not verify")
	}
}

func TestRandomPINs(t *testing.T) {
	a := hsmtest.New(t, hsmtest.PINs("random", "random"))
	b := hsmtest.New(t, hsmtest.PINs("random", "random"))
	if a.UserPIN == b.UserPIN || len(a.UserPIN) != 16 || a.UserPIN == hsmtest.DefaultUserPIN {
		t.Fatalf("random PINs %q %q", a.UserPIN, b.UserPIN)
	}
	a.Login(t)
}

// libgohsm returns the module for the module-backed tests: GOHSM_MODULE,
// else ../build/libgohsm.so (make build), as the conformance tests do.
func libgohsm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(fixture.EnvModule); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "build", "libgohsm.so"))
	if _, err := os.Stat(p); err != nil {
		if testing.Short() {
			t.Skip("no libgohsm.so: make build, or set GOHSM_MODULE")
		}
		t.Fatalf("no %s: run make build, or set GOHSM_MODULE", p)
	}
	return p
}

// p11 loads the module into this test binary (a second Go runtime in the
// process, as crypto11 and miekg/pkcs11 users do) and opens a logged-in
// session on the fixture's token.
func p11(t *testing.T, fx *hsmtest.Fixture) (*pkcs11.Ctx, pkcs11.SessionHandle) {
	t.Helper()
	p := pkcs11.New(fx.Module)
	if p == nil {
		t.Fatalf("cannot load %s", fx.Module)
	}
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Finalize(); p.Destroy() })
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	var slot uint
	found := false
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && ti.Label == fx.TokenLabel {
			slot, found = s, true
		}
	}
	if !found || slot != uint(fx.Slot) {
		t.Fatalf("token %q: found %v in slot %d, fixture says slot %d", fx.TokenLabel, found, slot, fx.Slot)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Login(s, pkcs11.CKU_USER, fx.UserPIN); err != nil {
		t.Fatal(err)
	}
	return p, s
}

func findKey(t *testing.T, p *pkcs11.Ctx, s pkcs11.SessionHandle, label string) pkcs11.ObjectHandle {
	t.Helper()
	if err := p.FindObjectsInit(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
		t.Fatal(err)
	}
	hs, _, err := p.FindObjects(s, 2)
	p.FindObjectsFinal(s)
	if err != nil || len(hs) != 1 {
		t.Fatalf("find %q: %v %v", label, hs, err)
	}
	return hs[0]
}

func verifyRaw(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	return len(sig) == 64 && ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

func TestModule(t *testing.T) {
	fx := hsmtest.Module(t, hsmtest.ModulePath(libgohsm(t)), hsmtest.Keys("ec"))
	if os.Getenv("GOHSM_CONF") != fx.Conf || fx.Env["GOHSM_CONF"] != fx.Conf {
		t.Fatalf("GOHSM_CONF not set to %s", fx.Conf)
	}
	if fx.UserPIN != "1234" || fx.SOPIN != "12345678" || fx.TokenLabel != "gohsm-test" {
		t.Fatalf("defaults: %+v", fx)
	}
	p, s := p11(t, fx)
	key := findKey(t, p, s, "ec-p256")
	msg := []byte("through the C ABI")
	if err := p.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA_SHA256, nil)}, key); err != nil {
		t.Fatal(err)
	}
	sig, err := p.Sign(s, msg)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(msg)
	if !verifyRaw(fx.Keys[0].Public.(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("the module's signature does not verify with the fixture's public key")
	}
}

// TestModuleFaults: a plan as a Go value reaches the module, which fails
// exactly the planned call. miekg's Sign makes two C_Sign calls (the size
// query, then the signature), so nth 3 is the size query of the second.
func TestModuleFaults(t *testing.T) {
	plan := &hsmtest.FaultPlan{Seed: 7, Rules: []hsmtest.FaultRule{
		{Function: "C_Sign", Nth: 3, RV: "CKR_DEVICE_ERROR"},
	}}
	fx := hsmtest.Module(t, hsmtest.ModulePath(libgohsm(t)), hsmtest.Keys("ec"), hsmtest.Faults(plan))
	if fx.Faults == "" || os.Getenv("GOHSM_FAULTS") != fx.Faults {
		t.Fatalf("GOHSM_FAULTS %q, fixture faults %q", os.Getenv("GOHSM_FAULTS"), fx.Faults)
	}
	p, s := p11(t, fx)
	key := findKey(t, p, s, "ec-p256")
	var got []error
	for range 3 {
		if err := p.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA_SHA256, nil)}, key); err != nil {
			t.Fatal(err)
		}
		_, err := p.Sign(s, []byte("m"))
		got = append(got, err)
	}
	var pe pkcs11.Error
	if got[0] != nil || got[2] != nil || !errors.As(got[1], &pe) || pe != pkcs11.CKR_DEVICE_ERROR {
		t.Fatalf("sign results %v, want nil, CKR_DEVICE_ERROR, nil", got)
	}
}

func TestFaultPlanJSON(t *testing.T) {
	plan := &hsmtest.FaultPlan{Seed: 7, Rules: []hsmtest.FaultRule{
		{Function: "C_Sign", Nth: 3, RV: "CKR_DEVICE_ERROR"},
		{Function: "C_Encrypt", Probability: 0.1, RV: fixture.RVNumber(0x31)},
		{Function: "C_Sign", LatencyMS: 5},
		{Mechanism: "CKM_ECDSA", Latency: fixture.Uniform(0, 2)},
	}, Events: []hsmtest.FaultEvent{fixture.RemoveToken("gohsm-test", 10, 50)}}
	b, err := plan.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "seed": 7,
  "rules": [
    {
      "function": "C_Sign",
      "nth": 3,
      "rv": "CKR_DEVICE_ERROR"
    },
    {
      "function": "C_Encrypt",
      "probability": 0.1,
      "rv": 49
    },
    {
      "function": "C_Sign",
      "latency_ms": 5
    },
    {
      "mechanism": "CKM_ECDSA",
      "latency": {
        "dist": "uniform",
        "min_ms": 0,
        "max_ms": 2
      }
    }
  ],
  "events": [
    {
      "event": "remove_token",
      "token": "gohsm-test",
      "after_calls": 10,
      "for_ms": 50
    }
  ]
}
`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
}

// TestInProcessFaults: a plan in front of the in-process engine fails the
// planned call; making the token and its keys counted nothing.
func TestInProcessFaults(t *testing.T) {
	tok := hsmtest.New(t, hsmtest.Keys("ec"), hsmtest.Faults(&hsmtest.FaultPlan{Seed: 7, Rules: []hsmtest.FaultRule{
		{Function: "C_Sign", Nth: 2, RV: "CKR_DEVICE_ERROR"},
	}}))
	tok.Login(t)
	d := sha256.Sum256([]byte("m"))
	key := tok.Signer(t, "ec")
	var rvs []ck.RV
	for range 3 {
		_, err := key.Sign(nil, d[:], crypto.SHA256)
		rvs = append(rvs, hsm.ToRV(err))
	}
	if rvs[0] != ck.CKR_OK || rvs[1] != ck.CKR_DEVICE_ERROR || rvs[2] != ck.CKR_OK {
		t.Fatalf("sign results %v, want CKR_OK, CKR_DEVICE_ERROR, CKR_OK", rvs)
	}
	// A new plan at run time, counted afresh; nil stops injecting.
	tok.SetFaults(t, &hsmtest.FaultPlan{Rules: []hsmtest.FaultRule{{Function: "C_SignInit", Nth: 1, RV: fixture.RVNumber(uint64(ck.CKR_DEVICE_MEMORY))}}})
	if _, err := key.Sign(nil, d[:], crypto.SHA256); hsm.ToRV(err) != ck.CKR_DEVICE_MEMORY {
		t.Fatalf("after SetFaults: %v", err)
	}
	tok.SetFaults(t, nil)
	if _, err := key.Sign(nil, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	if tok.Faults.Calls() == 0 {
		t.Fatal("the injector saw no calls")
	}

	// SetFaults on a token made without a plan puts an injector in front.
	plain := hsmtest.New(t)
	plain.SetFaults(t, &hsmtest.FaultPlan{Rules: []hsmtest.FaultRule{{Function: "C_OpenSession", Nth: 1, RV: "CKR_TOKEN_NOT_PRESENT"}}})
	if _, err := plain.Backend.OpenSession(plain.Slot, ck.CKF_SERIAL_SESSION); hsm.ToRV(err) != ck.CKR_TOKEN_NOT_PRESENT {
		t.Fatalf("open session: %v", err)
	}
}
