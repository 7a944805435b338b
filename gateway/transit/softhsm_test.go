package transit

import (
	"os"
	"testing"

	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/kv"
	"github.com/gohsm/gohsm/gateway/token/p11mod"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestMain(m *testing.M) {
	code := m.Run()
	gwtest.CleanupSoftHSM()
	os.Exit(code)
}

// TestOnSoftHSM runs the key ring scenario on an external module
// (SoftHSMv2 through crypto11), with the metadata on the same token:
// rotate, old data still opens, min_decryption_version refuses it, every
// type SoftHSMv2 has works, and the keys are non-extractable there too.
func TestOnSoftHSM(t *testing.T) {
	mod := gwtest.SoftHSM(t, "transit")
	tok, err := p11mod.Open(p11mod.Config{Path: mod, Label: "transit", PIN: []byte(gwtest.UserPIN)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	meta, err := kv.OnToken(tok, gwtest.Fresh("transit-test"))
	if err != nil {
		t.Fatal(err)
	}
	ex := gwtest.NewExec(tok)
	t.Cleanup(func() { ex.Close() })
	e, err := New("transit", ex, meta, Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{e: e, tok: tok, ex: ex}

	mustOK(e.CreateKey(bg, "k", nil))(t)
	c1 := enc(t, f, "k", "before rotate", b64s("ctx"))
	mustOK(e.RotateKey(bg, "k", nil))(t)
	c2 := enc(t, f, "k", "after rotate", b64s("ctx"))
	if c2.KeyVersion != 2 {
		t.Fatal(c2.KeyVersion)
	}
	if pt, err := dec(f, "k", c1.Ciphertext, b64s("ctx")); err != nil || pt != "before rotate" {
		t.Fatalf("%q %v", pt, err)
	}
	_, err = dec(f, "k", c1.Ciphertext, b64s("other"))
	wantErr(t, err, 400, "invalid ciphertext")
	two := Int(2)
	mustOK(e.ConfigKey(bg, "k", &ConfigKeyRequest{MinDecryptionVersion: &two}))(t)
	_, err = dec(f, "k", c1.Ciphertext, b64s("ctx"))
	wantErr(t, err, 400, "min_decryption_version")

	for _, typ := range []string{"aes128-gcm96", "ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519", "hmac"} {
		t.Run(typ, func(t *testing.T) {
			name := "t-" + typ
			if _, err := e.CreateKey(bg, name, &CreateKeyRequest{Type: typ}); err != nil {
				t.Fatal(err)
			}
			kt := e.types.types[typ]
			h := mustOK(e.HMAC(bg, name, &HMACRequest{HMACItem: HMACItem{Input: b64s("m")}}))(t)
			if v := mustOK(e.Verify(bg, name, &VerifyRequest{VerifyItem: VerifyItem{Input: b64s("m"), HMAC: h.HMAC}}))(t); !v.Valid {
				t.Fatal("hmac does not verify")
			}
			// SoftHSMv2 2.6 does RSA-OAEP with SHA-1 only (C_EncryptInit
			// answers CKR_ARGUMENTS_BAD to SHA-256, Vault's OAEP hash):
			// RSA encryption is the one operation it cannot serve.
			if kt.supportsEncryption && kt.kind != kindRSA {
				c := enc(t, f, name, "p", "")
				if pt, err := dec(f, name, c.Ciphertext, ""); err != nil || pt != "p" {
					t.Fatalf("%q %v", pt, err)
				}
			}
			if kt.kind == kindRSA {
				_, err := e.Encrypt(bg, name, &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("p")}})
				wantErr(t, err, 400, "CKR_ARGUMENTS_BAD")
			}
			if kt.supportsSigning {
				s := mustOK(e.Sign(bg, name, &SignRequest{SignItem: SignItem{Input: b64s("m")}}))(t)
				if v := mustOK(e.Verify(bg, name, &VerifyRequest{VerifyItem: VerifyItem{Input: b64s("m"), Signature: s.Signature}}))(t); !v.Valid {
					t.Fatal("signature does not verify")
				}
				if v := mustOK(e.Verify(bg, name, &VerifyRequest{VerifyItem: VerifyItem{Input: b64s("n"), Signature: s.Signature}}))(t); v.Valid {
					t.Fatal("signature verifies other input")
				}
			}
			s, err := tok.OpenSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for id, hd := range objects(t, tok, "gohsm-transit/transit/"+name+"/") {
				a, err := s.GetAttributes(hd, ck.CKA_CLASS, ck.CKA_EXTRACTABLE, ck.CKA_SENSITIVE)
				if err != nil {
					t.Fatal(err)
				}
				if c, _ := attr.DecodeULong(ck.CKA_CLASS, a[0]); ck.ObjectClass(c) == ck.CKO_PUBLIC_KEY {
					continue
				}
				if ext, _ := attr.DecodeBool(ck.CKA_EXTRACTABLE, a[1]); ext {
					t.Fatalf("%s extractable on SoftHSMv2", id)
				}
			}
		})
	}
}
