package hsm

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

func mlkemPair(t testing.TB, m *Module, s ck.SessionHandle, set ck.ParameterSet) (pub, priv ck.ObjectHandle) {
	t.Helper()
	pub, priv, err := m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(set))}},
		[]ck.Attribute{{Type: ck.CKA_SENSITIVE, Value: tb(true)}})
	must(t, err)
	return pub, priv
}

func aesKeyTemplate(extra ...ck.Attribute) []ck.Attribute {
	return append([]ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_ENCRYPT, Value: tb(true)},
		{Type: ck.CKA_DECRYPT, Value: tb(true)},
	}, extra...)
}

var kemMech = ck.Mechanism{Type: ck.CKM_ML_KEM}

// encapsulate runs C_EncapsulateKey with room for any ML-KEM ciphertext.
func encapsulate(m *Module, s ck.SessionHandle, pub ck.ObjectHandle, tmpl []ck.Attribute) ([]byte, ck.ObjectHandle, error) {
	ct := make([]byte, 2048)
	n, kh, err := m.EncapsulateKey(s, kemMech, pub, tmpl, ct)
	return ct[:n], kh, err
}

func gcmRoundTrip(t *testing.T, m *Module, s ck.SessionHandle, encKey, decKey ck.ObjectHandle) error {
	t.Helper()
	p := &ck.GCMParams{IV: make([]byte, 12), TagBits: 128}
	must(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_GCM, Param: p}, encKey))
	ct, _, err := m.Encrypt(s, []byte("shared secret works"), 1024)
	must(t, err)
	must(t, m.DecryptInit(s, ck.Mechanism{Type: ck.CKM_AES_GCM, Param: p}, decKey))
	pt, _, err := m.Decrypt(s, ct, 1024)
	if err == nil && string(pt) != "shared secret works" {
		t.Fatalf("decrypted %q", pt)
	}
	return err
}

// TestMLKEMRoundTrip: both sides of each parameter set derive the same AES
// key (what one encrypts the other decrypts), the new keys carry the
// provenance 3.2 prescribes, and a tampered ciphertext gives a different
// key, not an error (FIPS 203 implicit rejection).
func TestMLKEMRoundTrip(t *testing.T) {
	m, s := userSession(t)
	for _, set := range []ck.ParameterSet{ck.CKP_ML_KEM_512, ck.CKP_ML_KEM_768, ck.CKP_ML_KEM_1024} {
		pub, priv := mlkemPair(t, m, s, set)
		need, wantCT := 0, map[ck.ParameterSet]int{ck.CKP_ML_KEM_512: 768, ck.CKP_ML_KEM_768: 1088, ck.CKP_ML_KEM_1024: 1568}[set]
		need, kh, err := m.EncapsulateKey(s, kemMech, pub, aesKeyTemplate(), nil)
		must(t, err)
		if kh != 0 || need != wantCT {
			t.Fatalf("set %d size query: handle %d, need %d", set, kh, need)
		}
		short := make([]byte, need-1)
		need, kh, err = m.EncapsulateKey(s, kemMech, pub, aesKeyTemplate(), short)
		wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
		if need != wantCT || kh != 0 || !bytes.Equal(short, make([]byte, len(short))) {
			t.Fatalf("set %d too small: need %d handle %d, buffer written", set, need, kh)
		}
		buf := bytes.Repeat([]byte{0xaa}, 4096)
		n, encKey, err := m.EncapsulateKey(s, kemMech, pub, aesKeyTemplate(), buf)
		must(t, err)
		ct := buf[:n]
		if n != wantCT || encKey == 0 || !bytes.Equal(buf[n:], bytes.Repeat([]byte{0xaa}, len(buf)-n)) {
			t.Fatalf("set %d: ct %d bytes, handle %d, or written past it", set, n, encKey)
		}
		decKey, err := m.DecapsulateKey(s, kemMech, priv, aesKeyTemplate(), ct)
		must(t, err)
		must(t, gcmRoundTrip(t, m, s, encKey, decKey))
		for _, k := range []ck.ObjectHandle{encKey, decKey} {
			for at, want := range map[ck.AttributeType]bool{ck.CKA_LOCAL: false, ck.CKA_ALWAYS_SENSITIVE: false,
				ck.CKA_NEVER_EXTRACTABLE: false, ck.CKA_SENSITIVE: true} {
				if got := getAttr(t, m, s, k, at); !bytes.Equal(got, tb(want)) {
					t.Fatalf("key %d: %v = %x, want %v", k, at, got, want)
				}
			}
			if got := getAttr(t, m, s, k, ck.CKA_VALUE_LEN); !bytes.Equal(got, ul(32)) {
				t.Fatalf("key %d: CKA_VALUE_LEN %x", k, got)
			}
		}
		ct[17] ^= 0x40
		forged, err := m.DecapsulateKey(s, kemMech, priv, aesKeyTemplate(), ct)
		must(t, err)
		wantRV(t, gcmRoundTrip(t, m, s, encKey, forged), ck.CKR_ENCRYPTED_DATA_INVALID)
	}
}

// TestMLKEMTemplates: CKA_VALUE_LEN takes a prefix of the secret (both
// sides agree on an AES-128 key), extractable keys expose equal values,
// and the usage flags and key classes are enforced.
func TestMLKEMTemplates(t *testing.T) {
	m, s := userSession(t)
	pub, priv := mlkemPair(t, m, s, ck.CKP_ML_KEM_768)
	clearT := func(n ck.ULong) []ck.Attribute {
		return []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_GENERIC_SECRET))},
			{Type: ck.CKA_SENSITIVE, Value: tb(false)},
			{Type: ck.CKA_VALUE_LEN, Value: ul(n)},
		}
	}
	ct, a, err := encapsulate(m, s, pub, clearT(16))
	must(t, err)
	b, err := m.DecapsulateKey(s, kemMech, priv, clearT(16), ct)
	must(t, err)
	va, vb := getAttr(t, m, s, a, ck.CKA_VALUE), getAttr(t, m, s, b, ck.CKA_VALUE)
	if len(va) != 16 || !bytes.Equal(va, vb) {
		t.Fatalf("values %x / %x", va, vb)
	}
	c, err := m.DecapsulateKey(s, kemMech, priv, clearT(32), ct)
	must(t, err)
	if vc := getAttr(t, m, s, c, ck.CKA_VALUE); !bytes.HasPrefix(vc, va) || len(vc) != 32 {
		t.Fatalf("32-byte value %x does not extend %x", vc, va)
	}
	_, err = m.DecapsulateKey(s, kemMech, priv, clearT(33), ct)
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = m.DecapsulateKey(s, kemMech, priv, aesKeyTemplate(), ct[:100])
	wantRV(t, err, ck.CKR_WRAPPED_KEY_LEN_RANGE)
	_, _, err = m.EncapsulateKey(s, kemMech, priv, aesKeyTemplate(), make([]byte, 4096))
	wantRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	_, err = m.DecapsulateKey(s, kemMech, pub, aesKeyTemplate(), ct)
	wantRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
	_, _, err = m.EncapsulateKey(s, ck.Mechanism{Type: ck.CKM_AES_GCM}, pub, aesKeyTemplate(), make([]byte, 4096))
	wantRV(t, err, ck.CKR_MECHANISM_INVALID)
	_, _, err = m.EncapsulateKey(s, kemMech, pub, []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_PUBLIC_KEY))}}, make([]byte, 4096))
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	// The key template is refused after encapsulating: the ciphertext
	// already written to the caller's buffer is wiped.
	buf := bytes.Repeat([]byte{0xaa}, 4096)
	_, _, err = m.EncapsulateKey(s, kemMech, pub, aesKeyTemplate(ck.Attribute{Type: ck.CKA_LOCAL, Value: tb(true)}), buf)
	wantRV(t, err, ck.CKR_ATTRIBUTE_READ_ONLY)
	if !bytes.Equal(buf[:1088], make([]byte, 1088)) {
		t.Fatal("ciphertext of a key never made left in the buffer")
	}

	must(t, m.SetAttributeValue(s, pub, []ck.Attribute{{Type: ck.CKA_ENCAPSULATE, Value: tb(false)}}))
	_, _, err = m.EncapsulateKey(s, kemMech, pub, aesKeyTemplate(), make([]byte, 4096))
	wantRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	must(t, m.SetAttributeValue(s, priv, []ck.Attribute{{Type: ck.CKA_DECAPSULATE, Value: tb(false)}}))
	_, err = m.DecapsulateKey(s, kemMech, priv, aesKeyTemplate(), ct)
	wantRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	// Decapsulation, once given up, cannot be regained.
	wantRV(t, m.SetAttributeValue(s, priv, []ck.Attribute{{Type: ck.CKA_DECAPSULATE, Value: tb(true)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
}

// TestMLKEMImport: keys created from their parts (public ek; private seed
// only, or dk only) interoperate with generated ones, and the private seed
// and value are sensitive.
func TestMLKEMImport(t *testing.T) {
	m, s := userSession(t)
	_, priv := mlkemPair(t, m, s, ck.CKP_ML_KEM_512)
	res, err := m.GetAttributeValue(s, priv, []ck.AttributeRequest{{Type: ck.CKA_SEED, Cap: 64}, {Type: ck.CKA_VALUE, Cap: 4096}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_SENSITIVE)
	if res[0].Len != ck.CK_UNAVAILABLE_INFORMATION || res[1].Len != ck.CK_UNAVAILABLE_INFORMATION {
		t.Fatalf("sensitive ML-KEM parts readable: %+v", res)
	}
	// A non-sensitive pair to take apart.
	pub2, priv2, err := m.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_KEM_512))}},
		[]ck.Attribute{{Type: ck.CKA_SENSITIVE, Value: tb(false)}})
	must(t, err)
	ek := getAttr(t, m, s, pub2, ck.CKA_VALUE)
	seed := getAttr(t, m, s, priv2, ck.CKA_SEED)
	dk := getAttr(t, m, s, priv2, ck.CKA_VALUE)
	if len(ek) != 800 || len(seed) != 64 || len(dk) != 1632 {
		t.Fatalf("ek %d seed %d dk %d bytes", len(ek), len(seed), len(dk))
	}
	base := func(cls ck.ObjectClass) []ck.Attribute {
		return []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: ul(ck.ULong(cls))},
			{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_ML_KEM))},
			{Type: ck.CKA_PARAMETER_SET, Value: ul(ck.ULong(ck.CKP_ML_KEM_512))},
		}
	}
	pubI, err := m.CreateObject(s, append(base(ck.CKO_PUBLIC_KEY), ck.Attribute{Type: ck.CKA_VALUE, Value: ek}))
	must(t, err)
	fromSeed, err := m.CreateObject(s, append(base(ck.CKO_PRIVATE_KEY), ck.Attribute{Type: ck.CKA_SEED, Value: seed}))
	must(t, err)
	fromDK, err := m.CreateObject(s, append(base(ck.CKO_PRIVATE_KEY), ck.Attribute{Type: ck.CKA_VALUE, Value: dk}))
	must(t, err)
	ct, k1, err := encapsulate(m, s, pubI, aesKeyTemplate())
	must(t, err)
	for _, p := range []ck.ObjectHandle{fromSeed, fromDK, priv2} {
		k2, err := m.DecapsulateKey(s, kemMech, p, aesKeyTemplate(), ct)
		must(t, err)
		must(t, gcmRoundTrip(t, m, s, k1, k2))
	}
	_, err = m.CreateObject(s, base(ck.CKO_PRIVATE_KEY))
	wantRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	bad := bytes.Clone(ek)
	bad[0], bad[1] = 0xff, 0xff // first coefficient 0xfff >= q
	_, err = m.CreateObject(s, append(base(ck.CKO_PUBLIC_KEY), ck.Attribute{Type: ck.CKA_VALUE, Value: bad}))
	wantRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}

func BenchmarkMLKEM768EncapsulateModule(b *testing.B) {
	m, s := userSession(b)
	pub, _ := mlkemPair(b, m, s, ck.CKP_ML_KEM_768)
	tmpl := aesKeyTemplate()
	ct := make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		_, kh, err := m.EncapsulateKey(s, kemMech, pub, tmpl, ct)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.DestroyObject(s, kh); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKEMKeyObjectLifeParallel is the engine's own share of an
// encapsulation: making the secret-key object from a shared secret and
// destroying it, without the KEM, one session per goroutine. It is what
// separates the module from the raw library in the C-host benchmark; run
// with -cpu 1,2 it also shows whether sessions making keys wait for each
// other.
func BenchmarkKEMKeyObjectLifeParallel(b *testing.B) {
	m, _ := userSession(b)
	tmpl := []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_VALUE_LEN, Value: ul(32)},
		{Type: ck.CKA_TOKEN, Value: tb(false)},
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		h, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
		if err != nil {
			b.Error(err)
			return
		}
		secret := make([]byte, 32)
		for pb.Next() {
			s, so, err := m.kemSession(h, tmpl)
			if err != nil {
				b.Error(err)
				return
			}
			kh, err := m.secretKeyFrom(s, so, tmpl, secret)
			s.mu.Unlock()
			if err != nil {
				b.Error(err)
				return
			}
			if err := m.DestroyObject(h, kh); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
