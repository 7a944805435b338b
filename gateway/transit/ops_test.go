package transit

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func enc(t *testing.T, f *fixture, name, pt string, ctx string) *EncryptResponse {
	t.Helper()
	return mustOK(f.e.Encrypt(bg, name, &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s(pt), Context: ctx}}))(t)
}

func dec(f *fixture, name, ct, ctx string) (string, error) {
	r, err := f.e.Decrypt(bg, name, &DecryptRequest{DecryptItem: DecryptItem{Ciphertext: ct, Context: ctx}})
	if err != nil {
		return "", err
	}
	b, _ := base64.StdEncoding.DecodeString(*r.Plaintext)
	return string(b), nil
}

func TestRotateDecryptOldAndMinDecryption(t *testing.T) {
	f := newFixture(t, Config{})
	mustOK(f.e.CreateKey(bg, "k", nil))(t)
	c1 := enc(t, f, "k", "version one", "")
	if c1.KeyVersion != 1 || !strings.HasPrefix(c1.Ciphertext, "vault:v1:") {
		t.Fatalf("%+v", c1)
	}
	rk := mustOK(f.e.RotateKey(bg, "k", nil))(t)
	if rk.LatestVersion != 2 || len(rk.Keys) != 2 {
		t.Fatalf("after rotate: %+v", rk)
	}
	c2 := enc(t, f, "k", "version two", "")
	if c2.KeyVersion != 2 || !strings.HasPrefix(c2.Ciphertext, "vault:v2:") {
		t.Fatalf("%+v", c2)
	}
	if pt, err := dec(f, "k", c1.Ciphertext, ""); err != nil || pt != "version one" {
		t.Fatalf("old ciphertext after rotate: %q %v", pt, err)
	}
	// Encrypting with an explicit old version still works until
	// min_encryption_version passes it.
	old := mustOK(f.e.Encrypt(bg, "k", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("x"), KeyVersion: 1}}))(t)
	if old.KeyVersion != 1 {
		t.Fatal(old.KeyVersion)
	}
	// Rewrap moves v1 data to v2 without showing the plaintext.
	rw := mustOK(f.e.Rewrap(bg, "k", &RewrapRequest{RewrapItem: RewrapItem{Ciphertext: c1.Ciphertext}}))(t)
	if rw.KeyVersion != 2 || !strings.HasPrefix(rw.Ciphertext, "vault:v2:") {
		t.Fatalf("rewrap %+v", rw)
	}
	b, _ := json.Marshal(rw)
	if strings.Contains(string(b), "plaintext") || strings.Contains(string(b), b64s("version one")) {
		t.Fatalf("rewrap response shows plaintext: %s", b)
	}

	two := Int(2)
	rk = mustOK(f.e.ConfigKey(bg, "k", &ConfigKeyRequest{MinDecryptionVersion: &two}))(t)
	if rk.MinDecryptionVersion != 2 {
		t.Fatal(rk.MinDecryptionVersion)
	}
	_, err := dec(f, "k", c1.Ciphertext, "")
	wantErr(t, err, 400, "below the key's min_decryption_version 2")
	if pt, err := dec(f, "k", rw.Ciphertext, ""); err != nil || pt != "version one" {
		t.Fatalf("rewrapped: %q %v", pt, err)
	}
	_, err = f.e.Encrypt(bg, "k", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("x"), KeyVersion: 3}})
	wantErr(t, err, 400, "newer than the latest version 2")
	_, err = f.e.Encrypt(bg, "k", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("x"), KeyVersion: 1}})
	wantErr(t, err, 400, "below the key's min_decryption_version")

	// Signatures and HMACs obey min_decryption_version too.
	h1 := mustOK(f.e.HMAC(bg, "k", &HMACRequest{HMACItem: HMACItem{Input: b64s("m")}}))(t)
	if !strings.HasPrefix(h1.HMAC, "vault:v2:") {
		t.Fatal(h1.HMAC)
	}
	_, err = f.e.Verify(bg, "k", &VerifyRequest{VerifyItem: VerifyItem{Input: b64s("m"), HMAC: strings.Replace(h1.HMAC, ":v2:", ":v1:", 1)}})
	wantErr(t, err, 400, "min_decryption_version")
}

func TestTamperedAndWrongContext(t *testing.T) {
	f := newFixture(t, Config{})
	for _, typ := range []string{"aes256-gcm96", "chacha20-poly1305", "sm4-gcm", "rsa-2048"} {
		name := "k-" + typ
		mustOK(f.e.CreateKey(bg, name, &CreateKeyRequest{Type: typ}))(t)
		ctx := b64s("tenant-42")
		c := enc(t, f, name, "secret payload", ctx)
		if pt, err := dec(f, name, c.Ciphertext, ctx); err != nil || pt != "secret payload" {
			t.Fatalf("%s: %q %v", typ, pt, err)
		}
		// Every byte flipped, one at a time, is caught.
		_, payload, _ := parseVersioned("vault:", c.Ciphertext, "")
		raw, _ := base64.StdEncoding.DecodeString(payload)
		for i := 0; i < len(raw); i += max(1, len(raw)/16) {
			bad := append([]byte(nil), raw...)
			bad[i] ^= 0x01
			_, err := dec(f, name, "vault:v1:"+base64.StdEncoding.EncodeToString(bad), ctx)
			wantErr(t, err, 400, "invalid ciphertext")
			if strings.Contains(err.Error(), "secret payload") {
				t.Fatal("error shows plaintext")
			}
		}
		_, err := dec(f, name, "vault:v1:"+base64.StdEncoding.EncodeToString(raw[:len(raw)-1]), ctx)
		wantErr(t, err, 400, "invalid ciphertext")
		_, err = dec(f, name, c.Ciphertext, b64s("tenant-43"))
		wantErr(t, err, 400, "context")
		_, err = dec(f, name, c.Ciphertext, "")
		wantErr(t, err, 400, "context")
		// associated_data is bound too, and separately from context.
		ad := mustOK(f.e.Encrypt(bg, name, &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("p"), AssociatedData: b64s("ad")}}))(t)
		_, err = f.e.Decrypt(bg, name, &DecryptRequest{DecryptItem: DecryptItem{Ciphertext: ad.Ciphertext, Context: b64s("ad")}})
		wantErr(t, err, 400, "associated_data")
		if _, err := f.e.Decrypt(bg, name, &DecryptRequest{DecryptItem: DecryptItem{Ciphertext: ad.Ciphertext, AssociatedData: b64s("ad")}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBadInputMessages(t *testing.T) {
	f := newFixture(t, Config{CiphertextPrefix: "gohsm:"})
	mustOK(f.e.CreateKey(bg, "k", nil))(t)
	mustOK(f.e.CreateKey(bg, "ec", &CreateKeyRequest{Type: "ecdsa-p256"}))(t)
	c := enc(t, f, "k", "x", "")
	if !strings.HasPrefix(c.Ciphertext, "gohsm:v1:") {
		t.Fatal(c.Ciphertext)
	}
	cases := []struct {
		err    error
		status int
		want   string
	}{
		{func() error { _, e := dec(f, "k", "vault:v1:AAAA", ""); return e }(), 400, `does not start with "gohsm:"`},
		{func() error { _, e := dec(f, "k", "gohsm:1:AAAA", ""); return e }(), 400, "no key version"},
		{func() error { _, e := dec(f, "k", "gohsm:vX:AAAA", ""); return e }(), 400, "malformed key version"},
		{func() error { _, e := dec(f, "k", "gohsm:v9:AAAA", ""); return e }(), 400, "newer than the key's latest version"},
		{func() error { _, e := dec(f, "k", "gohsm:v1:!!!", ""); return e }(), 400, "not valid base64"},
		{func() error { _, e := dec(f, "nope", c.Ciphertext, ""); return e }(), 400, "encryption key not found"},
		{func() error { _, e := f.e.ReadKey(bg, "nope"); return e }(), 404, "encryption key not found"},
		{func() error { _, e := f.e.RotateKey(bg, "nope", nil); return e }(), 400, "encryption key not found"},
		{func() error { _, e := dec(f, "ec", c.Ciphertext, ""); return e }(), 400, "does not support encryption"},
		{func() error {
			_, e := f.e.Encrypt(bg, "k", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: "not base64!"}})
			return e
		}(), 400, "invalid plaintext: not valid base64"},
		{func() error {
			_, e := f.e.Encrypt(bg, "k", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("x"), Nonce: "AAAA"}})
			return e
		}(), 400, "nonce is not accepted"},
		{func() error { _, e := f.e.Sign(bg, "k", &SignRequest{SignItem: SignItem{Input: b64s("x")}}); return e }(), 400, "does not support signing"},
		{func() error {
			_, e := f.e.Sign(bg, "ec", &SignRequest{SignItem: SignItem{Input: b64s("x")}, HashAlgorithm: "md5"})
			return e
		}(), 400, "unsupported hash_algorithm"},
		{func() error {
			_, e := f.e.Sign(bg, "ec", &SignRequest{SignItem: SignItem{Input: b64s("x")}, Prehashed: true})
			return e
		}(), 400, "not a sha2-256 digest"},
		{func() error { _, e := f.e.CreateKey(bg, "x", &CreateKeyRequest{Type: "des"}); return e }(), 400, "unknown key type"},
		{func() error { _, e := f.e.CreateKey(bg, "a/b", nil); return e }(), 400, "invalid key name"},
		{func() error {
			_, e := f.e.CreateKey(bg, "c", &CreateKeyRequest{ConvergentEncryption: true, Derived: true})
			return e
		}(), 400, "convergent_encryption is not supported"},
		{func() error { _, e := f.e.DataKey(bg, "k", true, &DataKeyRequest{Bits: 100}); return e }(), 400, "invalid bits"},
		{func() error { _, e := f.e.Random(bg, &RandomRequest{Bytes: 1 << 21}); return e }(), 400, "invalid bytes"},
		{func() error { _, e := f.e.Random(bg, &RandomRequest{Format: "base32"}); return e }(), 400, "unsupported format"},
		{func() error {
			_, e := f.e.HMAC(bg, "k", &HMACRequest{HMACItem: HMACItem{Input: b64s("x")}, Algorithm: "md5"})
			return e
		}(), 400, "unsupported algorithm"},
		{func() error {
			_, e := f.e.Verify(bg, "ec", &VerifyRequest{VerifyItem: VerifyItem{Input: b64s("x")}})
			return e
		}(), 400, "missing signature or hmac"},
		{func() error { return f.e.DeleteKey(bg, "k") }(), 400, "deletion is not allowed"},
		{func() error { _, e := f.e.Encrypt(bg, "k", &EncryptRequest{BatchInput: []EncryptItem{}}); return e }(), 400, "batch_input is empty"},
		{func() error { _, e := f.e.TrimKey(bg, "k", &TrimKeyRequest{}); return e }(), 400, "min_available_version"},
	}
	for i, c := range cases {
		t.Run("", func(t *testing.T) {
			wantErr(t, c.err, c.status, c.want)
			_ = i
		})
	}
}

func TestBatchMixed(t *testing.T) {
	f := newFixture(t, Config{Workers: 4})
	mustOK(f.e.CreateKey(bg, "k", nil))(t)
	var items []EncryptItem
	for i := 0; i < 40; i++ {
		it := EncryptItem{Plaintext: b64s("item " + itoa(i)), Reference: "ref-" + itoa(i)}
		if i%10 == 3 {
			it.Plaintext = "%%% not base64"
		}
		if i%10 == 7 {
			it.KeyVersion = 5
		}
		items = append(items, it)
	}
	r := mustOK(f.e.Encrypt(bg, "k", &EncryptRequest{BatchInput: items}))(t)
	if len(r.BatchResults) != 40 || r.Status() != 400 || r.Failed != 8 || r.Items != 40 {
		t.Fatalf("status %d failed %d of %d", r.Status(), r.Failed, len(r.BatchResults))
	}
	var dItems []DecryptItem
	for i, res := range r.BatchResults {
		if res.Reference != "ref-"+itoa(i) {
			t.Fatalf("item %d reference %q", i, res.Reference)
		}
		switch i % 10 {
		case 3:
			if !strings.Contains(res.Error, "invalid plaintext") || res.Ciphertext != "" {
				t.Fatalf("item %d: %+v", i, res)
			}
			dItems = append(dItems, DecryptItem{Ciphertext: "vault:v1:AAAA", Reference: "bad"})
		case 7:
			if !strings.Contains(res.Error, "key_version") {
				t.Fatalf("item %d: %+v", i, res)
			}
			dItems = append(dItems, DecryptItem{Ciphertext: "garbage", Reference: "bad"})
		default:
			if res.Error != "" || res.KeyVersion != 1 {
				t.Fatalf("item %d: %+v", i, res)
			}
			dItems = append(dItems, DecryptItem{Ciphertext: res.Ciphertext, Reference: res.Reference})
		}
	}
	// With partial_failure_response_code the mixed batch gets that code;
	// the good items decrypt in order despite the bad ones.
	d := mustOK(f.e.Decrypt(bg, "k", &DecryptRequest{BatchInput: dItems, PartialFailureResponseCode: 207}))(t)
	if d.Status() != 207 || d.Failed != 8 {
		t.Fatalf("decrypt status %d failed %d", d.Status(), d.Failed)
	}
	for i, res := range d.BatchResults {
		if i%10 == 3 || i%10 == 7 {
			if res.Error == "" || res.Plaintext != nil || res.Reference != "bad" {
				t.Fatalf("item %d: %+v", i, res)
			}
			continue
		}
		pt, _ := base64.StdEncoding.DecodeString(*res.Plaintext)
		if string(pt) != "item "+itoa(i) || res.Reference != "ref-"+itoa(i) {
			t.Fatalf("item %d: %q %+v", i, pt, res)
		}
	}
	// All good: 200. All bad: 400 even with a partial code.
	good := mustOK(f.e.Encrypt(bg, "k", &EncryptRequest{BatchInput: []EncryptItem{{Plaintext: b64s("a")}, {Plaintext: b64s("b")}}}))(t)
	if good.Status() != 200 || good.Failed != 0 {
		t.Fatal(good.Status())
	}
	bad := mustOK(f.e.Encrypt(bg, "k", &EncryptRequest{BatchInput: []EncryptItem{{Plaintext: "!"}}, PartialFailureResponseCode: 207}))(t)
	if bad.Status() != 400 {
		t.Fatal(bad.Status())
	}
	// Batches of sign, verify and hmac carry per-item errors too.
	mustOK(f.e.CreateKey(bg, "ec", &CreateKeyRequest{Type: "ecdsa-p256"}))(t)
	s := mustOK(f.e.Sign(bg, "ec", &SignRequest{BatchInput: []SignItem{{Input: b64s("a"), Reference: "a"}, {Input: "!", Reference: "b"}}}))(t)
	if s.BatchResults[0].Signature == "" || s.BatchResults[1].Error == "" || s.BatchResults[1].Reference != "b" {
		t.Fatalf("%+v", s.BatchResults)
	}
	v := mustOK(f.e.Verify(bg, "ec", &VerifyRequest{BatchInput: []VerifyItem{
		{Input: b64s("a"), Signature: s.BatchResults[0].Signature, Reference: "1"},
		{Input: b64s("b"), Signature: s.BatchResults[0].Signature, Reference: "2"},
		{Input: b64s("a"), Signature: "vault:v1:%%%", Reference: "3"},
	}}))(t)
	if !v.BatchResults[0].Valid || v.BatchResults[1].Valid || v.BatchResults[1].Error != "" || v.BatchResults[2].Error == "" || v.BatchResults[2].Reference != "3" {
		t.Fatalf("%+v", v.BatchResults)
	}
	h := mustOK(f.e.HMAC(bg, "k", &HMACRequest{BatchInput: []HMACItem{{Input: b64s("a")}, {Input: "!"}}}))(t)
	if h.BatchResults[0].HMAC == "" || h.BatchResults[1].Error == "" || h.Status() != 400 {
		t.Fatalf("%+v", h.BatchResults)
	}
	// The batch limit is checked before any work.
	big := make([]EncryptItem, 10_000)
	_, err := f.e.Encrypt(bg, "k", &EncryptRequest{BatchInput: big})
	wantErr(t, err, 400, "limit is 4096")
}

func TestExportableIsTokenAttribute(t *testing.T) {
	f := newFixture(t, Config{})
	mustOK(f.e.CreateKey(bg, "plain", &CreateKeyRequest{Type: "aes256-gcm96"}))(t)
	mustOK(f.e.CreateKey(bg, "exp", &CreateKeyRequest{Type: "aes256-gcm96", Exportable: true}))(t)
	mustOK(f.e.CreateKey(bg, "ec", &CreateKeyRequest{Type: "ecdsa-p256"}))(t)
	s, err := f.tok.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(name string, wantExtractable bool) {
		t.Helper()
		objs := objects(t, f.tok, "gohsm-transit/transit/"+name+"/v1/")
		if len(objs) == 0 {
			t.Fatalf("%s: no token objects", name)
		}
		for id, h := range objs {
			a, err := s.GetAttributes(h, ck.CKA_CLASS, ck.CKA_EXTRACTABLE, ck.CKA_SENSITIVE, ck.CKA_TOKEN, ck.CKA_PRIVATE, ck.CKA_ENCRYPT, ck.CKA_WRAP, ck.CKA_DERIVE, ck.CKA_VALUE)
			if err != nil {
				t.Fatal(err)
			}
			class, _ := attr.DecodeULong(ck.CKA_CLASS, a[0])
			if ck.ObjectClass(class) == ck.CKO_PUBLIC_KEY {
				continue
			}
			ext, _ := attr.DecodeBool(ck.CKA_EXTRACTABLE, a[1])
			sens, _ := attr.DecodeBool(ck.CKA_SENSITIVE, a[2])
			tokn, _ := attr.DecodeBool(ck.CKA_TOKEN, a[3])
			priv, _ := attr.DecodeBool(ck.CKA_PRIVATE, a[4])
			wrap, _ := attr.DecodeBool(ck.CKA_WRAP, a[6])
			derive, _ := attr.DecodeBool(ck.CKA_DERIVE, a[7])
			if ext != wantExtractable || !sens || !tokn || !priv || wrap || derive {
				t.Fatalf("%s: extractable %v sensitive %v token %v private %v wrap %v derive %v", id, ext, sens, tokn, priv, wrap, derive)
			}
			if a[8] != nil {
				t.Fatalf("%s: CKA_VALUE readable", id)
			}
		}
	}
	check("plain", false)
	check("exp", true)
	check("ec", false)
	yes, no := Bool(true), Bool(false)
	_, err = f.e.ConfigKey(bg, "plain", &ConfigKeyRequest{Exportable: &yes})
	wantErr(t, err, 400, "created non-exportable")
	_, err = f.e.ConfigKey(bg, "exp", &ConfigKeyRequest{Exportable: &no})
	wantErr(t, err, 400, "cannot be disabled")
	// A rotated version of an exportable key is exportable, of a plain
	// one not.
	mustOK(f.e.RotateKey(bg, "plain", nil))(t)
	if n := len(objects(t, f.tok, "gohsm-transit/transit/plain/v2/")); n != 2 {
		t.Fatalf("v2 has %d objects", n)
	}
}

func TestKeyLifecycle(t *testing.T) {
	f := newFixture(t, Config{})
	for _, n := range []string{"b", "a", "c"} {
		mustOK(f.e.CreateKey(bg, n, nil))(t)
	}
	// Creating again is a no-op returning the key.
	again := mustOK(f.e.CreateKey(bg, "a", &CreateKeyRequest{Type: "ed25519"}))(t)
	if again.Type != "aes256-gcm96" {
		t.Fatal(again.Type)
	}
	l := mustOK(f.e.ListKeys(bg))(t)
	if strings.Join(l.Keys, ",") != "a,b,c" {
		t.Fatal(l.Keys)
	}
	// Encrypt creates a missing key (Vault's upsert), of the asked type.
	mustOK(f.e.Encrypt(bg, "up", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("x")}, Type: "chacha20-poly1305"}))(t)
	if rk := mustOK(f.e.ReadKey(bg, "up"))(t); rk.Type != "chacha20-poly1305" {
		t.Fatal(rk.Type)
	}
	// Config rules.
	for range 3 {
		mustOK(f.e.RotateKey(bg, "a", nil))(t)
	}
	five, three, two, zero := Int(5), Int(3), Int(2), Int(0)
	_, err := f.e.ConfigKey(bg, "a", &ConfigKeyRequest{MinDecryptionVersion: &five})
	wantErr(t, err, 400, "latest key version is 4")
	_, err = f.e.ConfigKey(bg, "a", &ConfigKeyRequest{MinDecryptionVersion: &three, MinEncryptionVersion: &two})
	wantErr(t, err, 400, "must not be below min_decryption_version")
	rk := mustOK(f.e.ConfigKey(bg, "a", &ConfigKeyRequest{MinDecryptionVersion: &three, MinEncryptionVersion: &three}))(t)
	if rk.MinDecryptionVersion != 3 || rk.MinEncryptionVersion != 3 {
		t.Fatalf("%+v", rk)
	}
	four := Int(4)
	mustOK(f.e.ConfigKey(bg, "a", &ConfigKeyRequest{MinEncryptionVersion: &four}))(t)
	_, err = f.e.Encrypt(bg, "a", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("x"), KeyVersion: 3}})
	wantErr(t, err, 400, "below the key's min_encryption_version 4")
	mustOK(f.e.ConfigKey(bg, "a", &ConfigKeyRequest{MinEncryptionVersion: &three}))(t)
	d := Duration(30 * 60 * 1e9)
	_, err = f.e.ConfigKey(bg, "a", &ConfigKeyRequest{AutoRotatePeriod: &d})
	wantErr(t, err, 400, "at least an hour")
	// Trim: not past min_decryption_version; destroys the objects.
	_, err = f.e.TrimKey(bg, "a", &TrimKeyRequest{MinAvailableVersion: 4})
	wantErr(t, err, 400, "must not exceed min_decryption_version")
	if n := len(objects(t, f.tok, "gohsm-transit/transit/a/v1/")); n != 2 {
		t.Fatalf("v1 has %d objects before trim", n)
	}
	rk = mustOK(f.e.TrimKey(bg, "a", &TrimKeyRequest{MinAvailableVersion: 3}))(t)
	if rk.MinAvailableVersion != 3 || len(rk.Keys) != 2 || rk.Keys["1"] != (KeyEntry{}) {
		t.Fatalf("%+v", rk)
	}
	for _, v := range []string{"v1", "v2"} {
		if n := len(objects(t, f.tok, "gohsm-transit/transit/a/"+v+"/")); n != 0 {
			t.Fatalf("%s has %d objects after trim", v, n)
		}
	}
	_, err = f.e.ConfigKey(bg, "a", &ConfigKeyRequest{MinDecryptionVersion: &two})
	wantErr(t, err, 400, "trimmed")
	_ = zero
	// Delete: only when allowed; removes metadata and objects.
	yes := Bool(true)
	mustOK(f.e.ConfigKey(bg, "a", &ConfigKeyRequest{DeletionAllowed: &yes}))(t)
	if err := f.e.DeleteKey(bg, "a"); err != nil {
		t.Fatal(err)
	}
	if n := len(objects(t, f.tok, "gohsm-transit/transit/a/")); n != 0 {
		t.Fatalf("%d objects after delete", n)
	}
	_, err = f.e.ReadKey(bg, "a")
	wantErr(t, err, 404, "not found")
	wantErr(t, f.e.DeleteKey(bg, "a"), 400, "not found")
}

func TestRandom(t *testing.T) {
	f := newFixture(t, Config{})
	r := mustOK(f.e.Random(bg, &RandomRequest{Bytes: 100_000, Format: "hex", Source: "all"}))(t)
	b, err := hex.DecodeString(r.RandomBytes)
	if err != nil || len(b) != 100_000 {
		t.Fatal(len(b), err)
	}
	r = mustOK(f.e.Random(bg, nil))(t)
	if b, _ := base64.StdEncoding.DecodeString(r.RandomBytes); len(b) != 32 {
		t.Fatal(len(b))
	}
}

func TestDerivedNeedsContext(t *testing.T) {
	f := newFixture(t, Config{})
	rk := mustOK(f.e.CreateKey(bg, "d", &CreateKeyRequest{Derived: true}))(t)
	if !rk.Derived || !rk.SupportsDerivation {
		t.Fatalf("%+v", rk)
	}
	_, err := f.e.Encrypt(bg, "d", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s("x")}})
	wantErr(t, err, 400, "missing context")
	c := enc(t, f, "d", "x", b64s("c1"))
	if _, err := dec(f, "d", c.Ciphertext, b64s("c2")); err == nil {
		t.Fatal("other context decrypts")
	}
	_, err = f.e.CreateKey(bg, "d2", &CreateKeyRequest{Type: "ecdsa-p256", Derived: true})
	wantErr(t, err, 400, "only for the AEAD")
}

// Vault's CLI sends numbers and booleans as strings; clients send JSON
// values: both decode.
func TestLenientJSON(t *testing.T) {
	var c CreateKeyRequest
	if err := json.Unmarshal([]byte(`{"type":"hmac","exportable":"true","key_size":"64","auto_rotate_period":"24h"}`), &c); err != nil {
		t.Fatal(err)
	}
	if !c.Exportable || c.KeySize != 64 || c.AutoRotatePeriod != Duration(24*3600*1e9) {
		t.Fatalf("%+v", c)
	}
	var cfg ConfigKeyRequest
	if err := json.Unmarshal([]byte(`{"min_decryption_version":2,"deletion_allowed":true,"auto_rotate_period":3600}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if *cfg.MinDecryptionVersion != 2 || !*cfg.DeletionAllowed || *cfg.AutoRotatePeriod != Duration(3600*1e9) || cfg.MinEncryptionVersion != nil {
		t.Fatalf("%+v", cfg)
	}
	var e EncryptRequest
	if err := json.Unmarshal([]byte(`{"plaintext":"eA==","key_version":"2","batch_input":[{"plaintext":"eQ==","reference":"r"}]}`), &e); err != nil {
		t.Fatal(err)
	}
	if e.Plaintext != "eA==" || e.KeyVersion != 2 || len(e.BatchInput) != 1 || e.BatchInput[0].Reference != "r" {
		t.Fatalf("%+v", e)
	}
	for _, bad := range []string{`{"key_version":"x"}`, `{"key_version":1.5}`, `{"key_version":true}`} {
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Fatalf("%s decoded", bad)
		}
	}
	// keys: Unix seconds for symmetric keys, objects for asymmetric.
	b, _ := json.Marshal(map[string]KeyEntry{"1": {Created: 7}, "2": {Public: &KeyVersion{Name: "P-256"}}})
	if string(b) != `{"1":7,"2":{"name":"P-256","public_key":"","creation_time":""}}` {
		t.Fatal(string(b))
	}
}
