// Command faultclient drives libgohsm.so under a fault plan the way real
// Go applications do, and checks that they meet exactly the planned
// faults (tests/clients/faults.sh runs it; docs/firmware.md, "Faults and
// latency"). It prints "PASS name" / "FAIL name: why" lines and ends with
// "DONE"; it is a module of its own so that crypto11 stays out of gohsm's
// go.mod.
//
//	faultclient crypto11 -module M -token L -pin P -n N [-expect I=CKR_X,...] [-pattern]
//	    crypto11 (ThalesIgnite/crypto11 v1.2.5) makes an ECDSA P-256 key and
//	    N signatures; signature I must fail with CKR_X (crypto11 signs
//	    through miekg/pkcs11, which calls C_Sign twice per signature: the
//	    size query, then the signature), every other one must verify.
//	    -pattern prints each signature's outcome (for comparing runs).
//	faultclient removal -module M -token L -pin P -label K
//	    with a plan that removes token L for a while: C_WaitForSlotEvent
//	    reports the removal, CKF_TOKEN_PRESENT goes off, the session dies
//	    (CKR_SESSION_HANDLE_INVALID), C_OpenSession answers
//	    CKR_TOKEN_NOT_PRESENT; C_WaitForSlotEvent reports the re-insertion,
//	    and a new session logs in and signs with key K.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ThalesIgnite/crypto11"
	"github.com/miekg/pkcs11"
)

var failed bool

func pass(name string) { fmt.Println("PASS " + name) }
func fail(name string, format string, args ...any) {
	failed = true
	fmt.Printf("FAIL %s: %s\n", name, fmt.Sprintf(format, args...))
}

func check(name string, ok bool, format string, args ...any) {
	if ok {
		pass(name)
	} else {
		fail(name, format, args...)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: faultclient crypto11|removal [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	module := fs.String("module", "", "the PKCS#11 module")
	token := fs.String("token", "", "the token label")
	pin := fs.String("pin", "", "the user PIN")
	n := fs.Int("n", 5, "crypto11: signatures to make")
	expect := fs.String("expect", "", "crypto11: I=CKR_NAME,... the signatures that must fail")
	pattern := fs.Bool("pattern", false, "crypto11: print each signature's outcome")
	label := fs.String("label", "", "removal: the label of an EC private key on the token")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "crypto11":
		runCrypto11(*module, *token, *pin, *n, *expect, *pattern)
	case "removal":
		runRemoval(*module, *token, *pin, *label)
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
	fmt.Println("DONE")
	if failed {
		os.Exit(1)
	}
}

// ckrOf is the CKR name in a PKCS#11 error as miekg/pkcs11 prints it
// ("pkcs11: 0x30: CKR_DEVICE_ERROR"), through crypto11's wrapping.
var ckrName = regexp.MustCompile(`CKR_[A-Z_]+`)

func ckrOf(err error) string {
	if err == nil {
		return "OK"
	}
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return ckrName.FindString(pe.Error())
	}
	if m := ckrName.FindString(err.Error()); m != "" {
		return m
	}
	return "error: " + err.Error()
}

func runCrypto11(module, token, pin string, n int, expect string, pattern bool) {
	want := map[int]string{}
	if expect != "" {
		for _, e := range strings.Split(expect, ",") {
			i, code, ok := strings.Cut(e, "=")
			k, err := strconv.Atoi(i)
			if !ok || err != nil {
				fmt.Fprintln(os.Stderr, "bad -expect", e)
				os.Exit(2)
			}
			want[k] = code
		}
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: token, Pin: pin})
	if err != nil {
		fail("crypto11 configure", "%v", err)
		return
	}
	defer ctx.Close()
	id := make([]byte, 8)
	rand.Read(id)
	key, err := ctx.GenerateECDSAKeyPair(id, elliptic.P256())
	if err != nil {
		fail("crypto11 ECDSA key pair", "%v", err)
		return
	}
	pub := key.Public().(*ecdsa.PublicKey)
	digest := sha256.Sum256([]byte("a message"))
	for i := 1; i <= n; i++ {
		sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		got := ckrOf(err)
		if pattern {
			fmt.Printf("signature %d: %s\n", i, got)
		}
		name := fmt.Sprintf("crypto11 signature %d", i)
		if w, ok := want[i]; ok {
			check(name+" fails with "+w, got == w, "got %s (%v)", got, err)
			continue
		}
		if err != nil {
			fail(name, "%v", err)
			continue
		}
		check(name+" verifies", ecdsa.VerifyASN1(pub, digest[:], sig), "bad signature")
	}
}

func runRemoval(module, token, pin, keyLabel string) {
	p := pkcs11.New(module)
	if p == nil {
		fail("load module", "%s", module)
		return
	}
	if err := p.Initialize(); err != nil {
		fail("C_Initialize", "%v", err)
		return
	}
	defer p.Destroy()
	defer p.Finalize()
	slots, err := p.GetSlotList(true)
	if err != nil {
		fail("C_GetSlotList", "%v", err)
		return
	}
	slot, found := uint(0), false
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && strings.TrimRight(ti.Label, " ") == token {
			slot, found = s, true
		}
	}
	if !found {
		fail("find token", "no token %q in %v", token, slots)
		return
	}
	signOnce := func(name string) {
		s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			fail(name, "C_OpenSession: %v", err)
			return
		}
		defer p.CloseSession(s)
		if err := p.Login(s, pkcs11.CKU_USER, pin); err != nil {
			fail(name, "C_Login: %v", err)
			return
		}
		if err := signWith(p, s, keyLabel); err != nil {
			fail(name, "%v", err)
			return
		}
		pass(name)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		fail("C_OpenSession", "%v", err)
		return
	}
	if err := p.Login(s, pkcs11.CKU_USER, pin); err != nil {
		fail("C_Login", "%v", err)
		return
	}
	check("sign before the removal", signWith(p, s, keyLabel) == nil, "could not sign")

	start := time.Now()
	ev, ok := <-p.WaitForSlotEvent(0)
	check("C_WaitForSlotEvent reports the removal", ok && ev.SlotID == slot, "event %+v %v", ev, ok)
	si, err := p.GetSlotInfo(slot)
	check("CKF_TOKEN_PRESENT off", err == nil && si.Flags&pkcs11.CKF_TOKEN_PRESENT == 0, "flags %#x, %v", si.Flags, err)
	check("CKF_REMOVABLE_DEVICE on", err == nil && si.Flags&pkcs11.CKF_REMOVABLE_DEVICE != 0, "flags %#x", si.Flags)
	_, err = p.GetSessionInfo(s)
	check("the token's session is gone (CKR_SESSION_HANDLE_INVALID)", ckrOf(err) == "CKR_SESSION_HANDLE_INVALID", "got %s", ckrOf(err))
	_, err = p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	check("C_OpenSession answers CKR_TOKEN_NOT_PRESENT", ckrOf(err) == "CKR_TOKEN_NOT_PRESENT", "got %s", ckrOf(err))
	_, err = p.GetTokenInfo(slot)
	check("C_GetTokenInfo answers CKR_TOKEN_NOT_PRESENT", ckrOf(err) == "CKR_TOKEN_NOT_PRESENT", "got %s", ckrOf(err))
	present, err1 := p.GetSlotList(true)
	all, err2 := p.GetSlotList(false)
	check("the slot is listed, without a token", err1 == nil && err2 == nil && !slices.Contains(present, slot) && slices.Contains(all, slot),
		"with token %v, all %v", present, all)

	ev, ok = <-p.WaitForSlotEvent(0)
	check("C_WaitForSlotEvent reports the re-insertion", ok && ev.SlotID == slot, "event %+v %v", ev, ok)
	si, err = p.GetSlotInfo(slot)
	check("CKF_TOKEN_PRESENT back on", err == nil && si.Flags&pkcs11.CKF_TOKEN_PRESENT != 0, "flags %#x, %v", si.Flags, err)
	fmt.Printf("(token out and back in %v after the first wait began)\n", time.Since(start).Round(time.Millisecond))
	signOnce("a new session logs in and signs after the re-insertion")
}

func signWith(p *pkcs11.Ctx, s pkcs11.SessionHandle, label string) error {
	if err := p.FindObjectsInit(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}); err != nil {
		return err
	}
	hs, _, err := p.FindObjects(s, 1)
	p.FindObjectsFinal(s)
	if err != nil {
		return err
	}
	if len(hs) == 0 {
		return fmt.Errorf("no private key %q", label)
	}
	if err := p.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, hs[0]); err != nil {
		return err
	}
	d := sha256.Sum256([]byte("x"))
	_, err = p.Sign(s, d[:])
	return err
}
