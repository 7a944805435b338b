package hsmtest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/gohsm/gohsm/hsmtest"
)

// An in-process token with an ECDSA P-256 key, used as a crypto.Signer by
// the code under test. In a test function the testing.T is go test's:
//
//	func TestSignature(t *testing.T) {
//		tok := hsmtest.New(t, hsmtest.Keys("ec"))
//		tok.Login(t)
//		signer := tok.Signer(t, "ec") // a crypto.Signer on the token
//		...
//	}
func ExampleNew() {
	test := func(t testing.TB) {
		tok := hsmtest.New(t, hsmtest.Keys("ec"))
		tok.Login(t)
		signer := tok.Signer(t, "ec")

		digest := sha256.Sum256([]byte("hello"))
		sig, err := signer.Sign(nil, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(tok.Label, tok.Key(t, "ec").Label, ecdsa.VerifyASN1(signer.Public().(*ecdsa.PublicKey), digest[:], sig))
	}
	run(test)
	// Output: gohsm-test ec-p256 true
}

// A token behind libgohsm.so for a PKCS#11 binding loaded in the test
// (crypto11, miekg/pkcs11) or a child process (pkcs11-tool): Module sets
// GOHSM_CONF and the rest with t.Setenv and hands back what the binding
// needs. The fault plan makes the module fail the third C_Sign with
// CKR_DEVICE_ERROR, to test the error handling of the code under test.
// (This example is compiled, not run: it needs a libgohsm.so, from
// $GOHSM_MODULE or built from source.)
func ExampleModule() {
	test := func(t testing.TB) {
		fx := hsmtest.Module(t, hsmtest.Keys("ec"), hsmtest.Faults(&hsmtest.FaultPlan{
			Seed:  7,
			Rules: []hsmtest.FaultRule{{Function: "C_Sign", Nth: 3, RV: "CKR_DEVICE_ERROR"}},
		}))
		p := pkcs11.New(fx.Module) // or crypto11.Configure(&crypto11.Config{Path: fx.Module, TokenLabel: fx.TokenLabel, Pin: fx.UserPIN})
		if err := p.Initialize(); err != nil {
			t.Fatal(err)
		}
		defer p.Finalize() // the next test's fixture applies at the next C_Initialize
		s, err := p.OpenSession(uint(fx.Slot), pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Login(s, pkcs11.CKU_USER, fx.UserPIN); err != nil {
			t.Fatal(err)
		}
		// ... find "ec-p256", sign: miekg's Sign makes two C_Sign calls (size,
		// then signature), so the second Sign fails with CKR_DEVICE_ERROR.
	}
	run(test)
}

// run gives f a testing.TB (a *testing.B, run once), as go test gives a
// TestXxx function its *testing.T: an example has none of its own.
func run(f func(t testing.TB)) {
	testing.Benchmark(func(b *testing.B) {
		if b.N == 1 {
			f(b)
		}
	})
}
