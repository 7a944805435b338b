package pool

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/gateway/token/p11mod"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestMain(m *testing.M) {
	code := m.Run()
	gwtest.CleanupSoftHSM()
	os.Exit(code)
}

// soInstall is the ceremony on SoftHSMv2, which lets the SO set
// CKA_TRUSTED only when it creates the object (C_SetAttributeValue of
// CKA_TRUSTED answers CKR_ATTRIBUTE_READ_ONLY even in an SO session): the
// SO session creates the transport key, trusted, from the ceremony's
// value. It runs while no user is logged in to the token in this process
// (PKCS#11 allows one user type per application).
func soInstall(t *testing.T, mod, label, id string, value []byte) {
	t.Helper()
	ctx := pkcs11.New(mod)
	if err := ctx.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer ctx.Destroy()
	defer ctx.Finalize()
	slots, _ := ctx.GetSlotList(true)
	for _, sl := range slots {
		info, _ := ctx.GetTokenInfo(sl)
		if strings.TrimRight(info.Label, " ") != label {
			continue
		}
		h, err := ctx.OpenSession(sl, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		defer ctx.CloseSession(h)
		if err := ctx.Login(h, pkcs11.CKU_SO, gwtest.SOPIN); err != nil {
			t.Fatal(err)
		}
		defer ctx.Logout(h)
		tmpl := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, id),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true),
		}
		if _, err := ctx.CreateObject(h, tmpl); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no token %q", label)
}

// TestPoolOnSoftHSM: the ceremony and replication on an external module
// (two SoftHSMv2 tokens through crypto11), not only on gohsm's engine.
func TestPoolOnSoftHSM(t *testing.T) {
	mod := gwtest.SoftHSM(t, "p1", "p2")
	labels := []string{"p1", "p2"}
	open := func(l string) *p11mod.Token {
		tok, err := p11mod.Open(p11mod.Config{Path: mod, Label: l, PIN: []byte(gwtest.UserPIN)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The tokens outlive the test (gwtest.SoftHSM): names of its own, so
	// that a second run (-count) starts clean.
	transport, se := gwtest.Fresh(DefaultTransportID), gwtest.Fresh("se")
	sk, sek, sep := gwtest.Fresh("s")+"/k", se+"/k", se+"/p"
	value := make([]byte, 32)
	rand.Read(value)
	for _, l := range labels {
		soInstall(t, mod, l, transport, value)
	}
	clear(value)
	toks := []token.Token{open("p1"), open("p2")}
	p, err := New(toks, Config{Sessions: 2, TransportID: []byte(transport)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	on := func(i int, fn func(s token.Session, find findFunc) error) error {
		err, _ := p.members[i].run(ctx, fn)
		return err
	}
	if err := on(0, func(s token.Session, _ findFunc) error {
		if _, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate(sk)); err != nil {
			return err
		}
		_, _, err := s.GenerateKeyPair(ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
			[]ck.Attribute{{Type: ck.CKA_ID, Value: []byte(sep)}, {Type: ck.CKA_EC_PARAMS, Value: p256},
				boolAttr(ck.CKA_TOKEN, true), boolAttr(ck.CKA_VERIFY, true)},
			append(cloneable(sek), boolAttr(ck.CKA_SIGN, true)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{sk, sek, sep} {
		if err := p.Replicate(ctx, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	var sealed, sig []byte
	d := sha256.Sum256([]byte("m"))
	if err := on(0, func(s token.Session, find findFunc) error {
		k, err := find([]byte(sk))
		if err != nil {
			return err
		}
		sealed, err = s.Seal(nil, ck.CKM_AES_GCM, k, []byte("a"), []byte("over softhsm"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := on(1, func(s token.Session, find findFunc) error {
		k, err := find([]byte(sk))
		if err != nil {
			return err
		}
		pt, err := s.Open(nil, ck.CKM_AES_GCM, k, []byte("a"), sealed)
		if err != nil || string(pt) != "over softhsm" {
			return fmt.Errorf("open: %q %v", pt, err)
		}
		pk, err := find([]byte(sek))
		if err != nil {
			return err
		}
		sig, err = s.Sign(ck.Mechanism{Type: ck.CKM_ECDSA}, pk, d[:])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := on(0, func(s token.Session, find findFunc) error {
		pub, err := find([]byte(sep))
		if err != nil {
			return err
		}
		return s.Verify(ck.Mechanism{Type: ck.CKM_ECDSA}, pub, d[:], sig)
	}); err != nil {
		t.Fatal(err)
	}
}
