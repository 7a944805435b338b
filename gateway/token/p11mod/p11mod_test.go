package p11mod_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"math/big"
	"os"
	"testing"

	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/gateway/token/p11mod"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestMain(m *testing.M) {
	code := m.Run()
	gwtest.CleanupSoftHSM()
	os.Exit(code)
}

func open(t *testing.T) (*p11mod.Token, token.Session) {
	t.Helper()
	mod := gwtest.SoftHSM(t, "gw1", "gw2")
	tok, err := p11mod.Open(p11mod.Config{Path: mod, Label: "gw1", PIN: []byte(gwtest.UserPIN)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); tok.Close() })
	return tok, s
}

func aesKey(t *testing.T, s token.Session, extra ...ck.Attribute) ck.ObjectHandle {
	t.Helper()
	k, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, append([]ck.Attribute{
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_ENCRYPT, Value: attr.Bool(true)},
		{Type: ck.CKA_DECRYPT, Value: attr.Bool(true)},
		{Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)},
	}, extra...))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	tok, s := open(t)
	if err := tok.Ping(); err != nil {
		t.Fatal(err)
	}
	k := aesKey(t, s)
	a, err := s.Seal(nil, ck.CKM_AES_GCM, k, []byte("ctx"), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Seal(nil, ck.CKM_AES_GCM, k, []byte("ctx"), []byte("hello"))
	if len(a) != 12+5+16 || bytes.Equal(a[:12], b[:12]) {
		t.Fatalf("sealed %d bytes; nonces %x %x", len(a), a[:12], b[:12])
	}
	pt, err := s.Open([]byte("pre:"), ck.CKM_AES_GCM, k, []byte("ctx"), a)
	if err != nil || string(pt) != "pre:hello" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := s.Open(nil, ck.CKM_AES_GCM, k, []byte("ctX"), a); token.RV(err) != ck.CKR_ENCRYPTED_DATA_INVALID {
		t.Fatalf("wrong AAD: %v (must fail, as the request's fault)", err)
	}
	a[20] ^= 1
	if _, err := s.Open(nil, ck.CKM_AES_GCM, k, []byte("ctx"), a); err == nil {
		t.Fatal("tampered ciphertext opened")
	}
	if _, err := s.Open(nil, ck.CKM_AES_GCM, k, nil, a[:10]); token.RV(err) != ck.CKR_ENCRYPTED_DATA_LEN_RANGE {
		t.Fatalf("short: %v", err)
	}
	// SoftHSMv2 2.6 has no ChaCha20-Poly1305: refused with a code, not a crash.
	if _, err := s.Seal(nil, ck.CKM_CHACHA20_POLY1305, k, nil, []byte("x")); token.RV(err) != ck.CKR_MECHANISM_INVALID {
		t.Fatalf("chacha: %v", err)
	}
	// The key's value is sensitive: nil, no error, the other attribute read.
	v, err := s.GetAttributes(k, ck.CKA_VALUE, ck.CKA_VALUE_LEN)
	if err != nil || v[0] != nil || !bytes.Equal(v[1], attr.ULong(32)) {
		t.Fatalf("attributes: %x %v", v, err)
	}
	// Generic single-part C_Encrypt with caller GCM parameters.
	ct, err := s.Encrypt(ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: make([]byte, 12), AAD: []byte("x"), TagBits: 128}}, k, []byte("abc"))
	if err != nil || len(ct) != 3+16 {
		t.Fatalf("encrypt: %d %v", len(ct), err)
	}
	pt, err = s.Decrypt(ck.Mechanism{Type: ck.CKM_AES_GCM, Param: ck.GCMParams{IV: make([]byte, 12), AAD: []byte("x"), TagBits: 128}}, k, ct)
	if err != nil || string(pt) != "abc" {
		t.Fatalf("decrypt: %q %v", pt, err)
	}
}

var p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

func TestSignVerify(t *testing.T) {
	_, s := open(t)
	pub, priv, err := s.GenerateKeyPair(ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_VERIFY, Value: attr.Bool(true)}},
		[]ck.Attribute{{Type: ck.CKA_SIGN, Value: attr.Bool(true)}, {Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("message"))
	sig, err := s.Sign(ck.Mechanism{Type: ck.CKM_ECDSA}, priv, d[:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("sign: %d %v", len(sig), err)
	}
	if err := s.Verify(ck.Mechanism{Type: ck.CKM_ECDSA}, pub, d[:], sig); err != nil {
		t.Fatal(err)
	}
	// The signature checks with Go's own ECDSA against the public point.
	v, err := s.GetAttributes(pub, ck.CKA_EC_POINT)
	if err != nil {
		t.Fatal(err)
	}
	pt := v[0][2:] // DER OCTET STRING of 65 bytes
	x, y := elliptic.Unmarshal(elliptic.P256(), pt)
	if x == nil {
		t.Fatalf("EC point %x", v[0])
	}
	gk := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
	if !ecdsa.Verify(gk, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("module's signature does not verify with crypto/ecdsa")
	}
	d[0] ^= 1
	if err := s.Verify(ck.Mechanism{Type: ck.CKM_ECDSA}, pub, d[:], sig); token.RV(err) != ck.CKR_SIGNATURE_INVALID {
		t.Fatalf("bad signature: %v", err)
	}
}

// TestWrapUnwrap moves a sensitive key between the two tokens of the
// module under one wrapping key, as the pool's replication does.
func TestWrapUnwrap(t *testing.T) {
	_, s := open(t)
	mod := gwtest.SoftHSM(t)
	tok2, err := p11mod.Open(p11mod.Config{Path: mod, Label: "gw2", PIN: []byte(gwtest.UserPIN)})
	if err != nil {
		t.Fatal(err)
	}
	defer tok2.Close()
	s2, err := tok2.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	// The wrapping key exists on both (here: unwrapped from a key the
	// test knows; the pool's transport key ceremony is its own).
	kek := bytes.Repeat([]byte{7}, 32)
	tmpl := []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_VALUE, Value: kek},
		{Type: ck.CKA_WRAP, Value: attr.Bool(true)},
		{Type: ck.CKA_UNWRAP, Value: attr.Bool(true)},
	}
	w1, err := s.CreateObject(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s2.CreateObject(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	k := aesKey(t, s, ck.Attribute{Type: ck.CKA_EXTRACTABLE, Value: attr.Bool(true)}, ck.Attribute{Type: ck.CKA_ID, Value: []byte("k1")})
	wrapped, err := s.WrapKey(ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, w1, k)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s2.UnwrapKey(ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, w2, wrapped, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_ENCRYPT, Value: attr.Bool(true)},
		{Type: ck.CKA_DECRYPT, Value: attr.Bool(true)},
		{Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal(nil, ck.CKM_AES_GCM, k, nil, []byte("cloned"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := s2.Open(nil, ck.CKM_AES_GCM, k2, nil, sealed)
	if err != nil || string(pt) != "cloned" {
		t.Fatalf("the clone does not open the original's message: %q %v", pt, err)
	}
}

func TestDataObjects(t *testing.T) {
	_, s := open(t)
	h, err := s.CreateObject([]ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_DATA))},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		{Type: ck.CKA_APPLICATION, Value: []byte("gohsm-gateway/t")},
		{Type: ck.CKA_LABEL, Value: []byte("k")},
		{Type: ck.CKA_VALUE, Value: []byte("v")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.DestroyObject(h)
	hs, err := s.FindObjects([]ck.Attribute{{Type: ck.CKA_APPLICATION, Value: []byte("gohsm-gateway/t")}})
	if err != nil || len(hs) != 1 || hs[0] != h {
		t.Fatalf("find: %v %v", hs, err)
	}
	// SoftHSMv2 keeps a data object's CKA_VALUE read-only (kv commits
	// by relabelling for that reason); the label is modifiable.
	if err := s.SetAttributes(h, []ck.Attribute{{Type: ck.CKA_VALUE, Value: []byte("v2")}}); token.RV(err) != ck.CKR_ATTRIBUTE_READ_ONLY {
		t.Fatalf("set value: %v", err)
	}
	if err := s.SetAttributes(h, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("k2")}}); err != nil {
		t.Fatal(err)
	}
	v, err := s.GetAttributes(h, ck.CKA_VALUE, ck.CKA_LABEL)
	if err != nil || string(v[0]) != "v" || string(v[1]) != "k2" {
		t.Fatalf("read: %q %v", v, err)
	}
	// A parameter the binding cannot carry is refused before the module.
	if _, err := s.Encrypt(ck.Mechanism{Type: ck.CKM_CHACHA20_POLY1305, Param: &ck.ChaCha20Poly1305Params{}}, h, nil); token.RV(err) != ck.CKR_MECHANISM_PARAM_INVALID {
		t.Fatalf("chacha params: %v", err)
	}
}

func TestWrongPIN(t *testing.T) {
	mod := gwtest.SoftHSM(t, "gw1", "gw2")
	if _, err := p11mod.Open(p11mod.Config{Path: mod, Label: "nope", PIN: []byte(gwtest.UserPIN)}); err == nil {
		t.Fatal("unknown label opened")
	}
}
