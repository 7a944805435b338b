package transit

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/kv"
	"github.com/gohsm/gohsm/gateway/pool"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// poolOfTwo is gateway/pool over two tokens in stores of their own (two
// devices), with the transport key installed and trusted by each SO.
func poolOfTwo(t *testing.T) (*pool.Pool, []token.Token) {
	t.Helper()
	value := make([]byte, 32)
	rand.Read(value)
	defer clear(value)
	var toks []token.Token
	for _, label := range []string{"a", "b"} {
		dir := gwtest.Store(t, label)
		tok, err := token.OpenEngineToken(dir, label, []byte(gwtest.UserPIN), gwtest.Cheap)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tok.OpenSession()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.InstallTransport(s, []byte(pool.DefaultTransportID), value); err != nil {
			t.Fatal(err)
		}
		s.Close()
		soTrust(t, dir, label, pool.DefaultTransportID)
		toks = append(toks, tok)
	}
	p, err := pool.New(toks, pool.Config{Sessions: 4, HealthEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, toks
}

// soTrust marks the object labelled objLabel trusted, as the token's SO.
func soTrust(t *testing.T, dir, label, objLabel string) {
	t.Helper()
	be, release, err := token.OpenEngine(dir, gwtest.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	slots, _ := be.GetSlotList(true)
	for _, sl := range slots {
		info, _ := be.GetTokenInfo(sl)
		if strings.TrimRight(info.Label, " ") != label {
			continue
		}
		h, err := be.OpenSession(sl, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		defer be.CloseSession(h)
		if err := be.Login(h, ck.CKU_SO, []byte(gwtest.SOPIN)); err != nil {
			t.Fatal(err)
		}
		defer be.Logout(h)
		be.FindObjectsInit(h, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(objLabel)}})
		hs, _ := be.FindObjects(h, 4)
		be.FindObjectsFinal(h)
		if len(hs) != 1 {
			t.Fatalf("SO sees %d objects labelled %q", len(hs), objLabel)
		}
		if err := be.SetAttributeValue(h, hs[0], []ck.Attribute{{Type: ck.CKA_TRUSTED, Value: attr.Bool(true)}}); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no token %q", label)
}

// TestOnPool runs the engine over gateway/pool with two tokens: with
// Cloneable, every version's objects are on both tokens (cloned under the
// trusted transport key), every operation works whichever token serves
// it, and trim and delete leave no copy on either. Without Cloneable the
// keys cannot leave their token, and creation says so and leaves nothing.
func TestOnPool(t *testing.T) {
	p, toks := poolOfTwo(t)
	e, err := New("transit", p, kv.NewMem(), Config{Cloneable: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"aes256-gcm96", "ecdsa-p256"} {
		mustOK(e.CreateKey(bg, typ, &CreateKeyRequest{Type: typ}))(t)
		mustOK(e.RotateKey(bg, typ, nil))(t)
		per := 2
		if typ == "ecdsa-p256" {
			per = 3
		}
		for _, tok := range toks {
			objs := objects(t, tok, "gohsm-transit/transit/"+typ+"/")
			if len(objs) != 2*per {
				t.Fatalf("%s: token %s holds %d objects, want %d", typ, tok.Label(), len(objs), 2*per)
			}
			s, _ := tok.OpenSession()
			for id, h := range objs {
				a, _ := s.GetAttributes(h, ck.CKA_CLASS, ck.CKA_EXTRACTABLE, ck.CKA_WRAP_WITH_TRUSTED, ck.CKA_SENSITIVE)
				if bytes.Equal(a[0], attr.ULong(ck.ULong(ck.CKO_PUBLIC_KEY))) {
					continue
				}
				if !bytes.Equal(a[1], attr.Bool(true)) || !bytes.Equal(a[2], attr.Bool(true)) || !bytes.Equal(a[3], attr.Bool(true)) {
					t.Fatalf("%s on %s: extractable %x wrap-with-trusted %x sensitive %x", id, tok.Label(), a[1], a[2], a[3])
				}
			}
			s.Close()
		}
	}
	// Many operations, spread by the pool over both tokens.
	items := make([]EncryptItem, 64)
	for i := range items {
		items[i] = EncryptItem{Plaintext: b64s("item " + itoa(i)), KeyVersion: Int(1 + i%2)}
	}
	c := mustOK(e.Encrypt(bg, "aes256-gcm96", &EncryptRequest{BatchInput: items}))(t)
	var d []DecryptItem
	for _, r := range c.BatchResults {
		if r.Error != "" {
			t.Fatal(r.Error)
		}
		d = append(d, DecryptItem{Ciphertext: r.Ciphertext})
	}
	pt := mustOK(e.Decrypt(bg, "aes256-gcm96", &DecryptRequest{BatchInput: d}))(t)
	for i, r := range pt.BatchResults {
		if r.Error != "" || *r.Plaintext != b64s("item "+itoa(i)) {
			t.Fatalf("item %d: %+v", i, r)
		}
	}
	sigs := mustOK(e.Sign(bg, "ecdsa-p256", &SignRequest{BatchInput: make([]SignItem, 32)}))(t)
	var vs []VerifyItem
	for _, r := range sigs.BatchResults {
		vs = append(vs, VerifyItem{Signature: r.Signature})
	}
	for _, r := range mustOK(e.Verify(bg, "ecdsa-p256", &VerifyRequest{BatchInput: vs}))(t).BatchResults {
		if !r.Valid {
			t.Fatalf("%+v", r)
		}
	}
	// Trim and delete reach both tokens.
	two, yes := Int(2), Bool(true)
	mustOK(e.ConfigKey(bg, "aes256-gcm96", &ConfigKeyRequest{MinDecryptionVersion: &two, DeletionAllowed: &yes}))(t)
	mustOK(e.TrimKey(bg, "aes256-gcm96", &TrimKeyRequest{MinAvailableVersion: 2}))(t)
	for _, tok := range toks {
		if n := len(objects(t, tok, "gohsm-transit/transit/aes256-gcm96/v1/")); n != 0 {
			t.Fatalf("token %s keeps %d objects of a trimmed version", tok.Label(), n)
		}
	}
	if err := e.DeleteKey(bg, "aes256-gcm96"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if n := len(objects(t, tok, "gohsm-transit/transit/aes256-gcm96/")); n != 0 {
			t.Fatalf("token %s keeps %d objects of a deleted key", tok.Label(), n)
		}
	}

	// Not cloneable: the key cannot be replicated; nothing is left.
	e2, err := New("strict", p, kv.NewMem(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e2.CreateKey(bg, "k", nil)
	if err == nil || !strings.Contains(err.Error(), "replicate") {
		t.Fatalf("non-extractable key on a pool of two: %v", err)
	}
	for _, tok := range toks {
		if n := len(objects(t, tok, "gohsm-transit/strict/")); n != 0 {
			t.Fatalf("token %s keeps %d objects of a failed create", tok.Label(), n)
		}
	}
	if _, err := e2.ReadKey(bg, "k"); AsError(err).Status != 404 {
		t.Fatalf("failed create left metadata: %v", err)
	}
}

// TestCloneableWrapsOnlyUnderTrusted: a Cloneable non-exportable key is
// extractable only under a trusted key; an ordinary wrapping key the
// gateway's user could make gets nothing. An exportable key wraps.
func TestCloneableWrapsOnlyUnderTrusted(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	tok := gwtest.Token(t, dir, "gw")
	ex := gwtest.NewExec(tok)
	e, err := New("transit", ex, kv.NewMem(), Config{Cloneable: true})
	if err != nil {
		t.Fatal(err)
	}
	mustOK(e.CreateKey(bg, "plain", nil))(t)
	mustOK(e.CreateKey(bg, "exp", &CreateKeyRequest{Exportable: true}))(t)
	s, err := tok.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_WRAP, Value: attr.Bool(true)},
		{Type: ck.CKA_UNWRAP, Value: attr.Bool(false)},
		{Type: ck.CKA_EXTRACTABLE, Value: attr.Bool(false)},
		{Type: ck.CKA_ENCRYPT, Value: attr.Bool(false)},
		{Type: ck.CKA_DECRYPT, Value: attr.Bool(false)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// (a local wrap-only key: gohsm's engine wraps a sensitive key
	// only under such a key or a trusted one)
	wrap := func(name string) error {
		for id, h := range objects(t, tok, "gohsm-transit/transit/"+name+"/v1/") {
			if strings.HasSuffix(id, objKey) {
				_, err := s.WrapKey(ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, w, h)
				return err
			}
		}
		t.Fatalf("%s: no key object", name)
		return nil
	}
	if err := wrap("plain"); err == nil {
		t.Fatal("a non-exportable key wrapped under an untrusted key")
	} else {
		t.Logf("untrusted wrap refused: %v", token.RV(err))
	}
	if err := wrap("exp"); err != nil {
		t.Fatalf("exportable key: %v", err)
	}
}
