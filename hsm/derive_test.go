package hsm

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// ecPoint returns the raw point inside a public key's CKA_EC_POINT.
func ecPoint(t *testing.T, m *Module, s ck.SessionHandle, pub ck.ObjectHandle) []byte {
	t.Helper()
	var raw []byte
	if _, err := asn1.Unmarshal(getAttr(t, m, s, pub, ck.CKA_EC_POINT), &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestECDHBothSidesAgree(t *testing.T) {
	x25519, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 101, 110})
	x448, _ := asn1.Marshal("curve448")
	for _, c := range []struct {
		name   string
		gen    ck.MechanismType
		params []byte
	}{
		{"P-256", ck.CKM_EC_KEY_PAIR_GEN, p256Params},
		{"X25519", ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN, x25519},
		{"X448", ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN, x448},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, s := userSession(t)
			derive := ck.Attribute{Type: ck.CKA_DERIVE, Value: tb(true)}
			pa, ka := genPair(t, m, s, c.gen, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: c.params}}, derive)
			pb, kb := genPair(t, m, s, c.gen, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: c.params}}, derive)
			tmpl := []ck.Attribute{
				{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
				{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
				{Type: ck.CKA_VALUE_LEN, Value: ul(32)},
				{Type: ck.CKA_SENSITIVE, Value: tb(false)},
			}
			for _, kdf := range []ck.EC_KDF{ck.CKD_SHA256_KDF, ck.CKD_SHA512_KDF} {
				p1 := &ck.ECDH1DeriveParams{KDF: kdf, SharedData: []byte("ctx"), PublicData: ecPoint(t, m, s, pb)}
				p2 := &ck.ECDH1DeriveParams{KDF: kdf, SharedData: []byte("ctx"), PublicData: getAttr(t, m, s, pa, ck.CKA_EC_POINT)}
				k1, err := m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: p1}, ka, tmpl)
				must(t, err)
				k2, err := m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: p2}, kb, tmpl)
				must(t, err)
				v1, v2 := getAttr(t, m, s, k1, ck.CKA_VALUE), getAttr(t, m, s, k2, ck.CKA_VALUE)
				if len(v1) != 32 || !bytes.Equal(v1, v2) {
					t.Fatalf("KDF %d: the two sides derived different keys", kdf)
				}
				if getAttr(t, m, s, k1, ck.CKA_LOCAL)[0] != 0 || getAttr(t, m, s, k1, ck.CKA_ALWAYS_SENSITIVE)[0] != 0 {
					t.Fatal("derived key claims LOCAL or ALWAYS_SENSITIVE")
				}
			}
			// CKD_NULL takes no shared data.
			bad := &ck.ECDH1DeriveParams{KDF: ck.CKD_NULL, SharedData: []byte("x"), PublicData: ecPoint(t, m, s, pb)}
			_, err := m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: bad}, ka, tmpl)
			wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
			// Without CKA_DERIVE the base key cannot derive.
			_, k3 := genPair(t, m, s, c.gen, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: c.params}})
			_, err = m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_ECDH1_DERIVE, Param: &ck.ECDH1DeriveParams{KDF: ck.CKD_NULL, PublicData: ecPoint(t, m, s, pb)}}, k3, tmpl)
			wantRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
		})
	}
}

func TestWrapPrivateKeyAsPKCS8(t *testing.T) {
	m, s := userSession(t)
	w := wrapOnlyKey(t, m, s)
	uw := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32)
	for _, c := range []struct {
		name string
		gen  ck.MechanismType
		pub  []ck.Attribute
		kt   ck.KeyType
		sig  ck.MechanismType
	}{
		{"RSA", ck.CKM_RSA_PKCS_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_MODULUS_BITS, Value: ul(2048)}}, ck.CKK_RSA, ck.CKM_SHA256_RSA_PKCS},
		{"EC", ck.CKM_EC_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}}, ck.CKK_EC, ck.CKM_ECDSA_SHA256},
	} {
		t.Run(c.name, func(t *testing.T) {
			pub, priv := genPair(t, m, s, c.gen, c.pub)
			blob, _, err := m.WrapKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP}, w, priv, 8192)
			must(t, err)
			// The wrap-only key cannot unwrap, by design: another key with
			// the same value would, on another token. Here the blob must
			// at least be rejected by a different key.
			_, err = m.UnwrapKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP}, uw, blob, []ck.Attribute{
				{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_PRIVATE_KEY))},
				{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(c.kt))},
			})
			wantRV(t, err, ck.CKR_WRAPPED_KEY_INVALID)
			_ = pub
		})
	}
	// A non-sensitive private key wrapped and unwrapped with one ordinary
	// key comes back whole and still signs for the old public key.
	pub, priv := genPair(t, m, s, ck.CKM_EC_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}},
		ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	blob, _, err := m.WrapKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP}, uw, priv, 8192)
	must(t, err)
	back, err := m.UnwrapKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP}, uw, blob, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_PRIVATE_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_EC))},
	})
	must(t, err)
	must(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, back))
	sig, _, err := m.Sign(s, []byte("unwrapped"), 256)
	must(t, err)
	must(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, pub))
	must(t, m.Verify(s, []byte("unwrapped"), sig))
}

func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'a') + 10
			}
		}
		b[i] = v
	}
	return b
}

// TestHKDFRFC5869 derives RFC 5869 test case 1 through the Module API, with
// the salt given as data and as a key.
func TestHKDFRFC5869(t *testing.T) {
	m, s := userSession(t)
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	salt := hexBytes(t, "000102030405060708090a0b0c")
	info := hexBytes(t, "f0f1f2f3f4f5f6f7f8f9")
	okm := hexBytes(t, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
	secret := func(kt ck.KeyType, v []byte) ck.ObjectHandle {
		h, err := m.CreateObject(s, []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(kt))},
			{Type: ck.CKA_VALUE, Value: v},
			{Type: ck.CKA_DERIVE, Value: tb(true)},
		})
		must(t, err)
		return h
	}
	base := secret(ck.CKK_HKDF, ikm)
	saltKey := secret(ck.CKK_HKDF, salt)
	tmpl := []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ul(42)}, {Type: ck.CKA_SENSITIVE, Value: tb(false)}}
	for _, p := range []*ck.HKDFParams{
		{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA, Salt: salt, Info: info},
		{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_KEY, SaltKey: saltKey, Info: info},
	} {
		k, err := m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_HKDF_DERIVE, Param: p}, base, tmpl)
		must(t, err)
		if got := getAttr(t, m, s, k, ck.CKA_VALUE); !bytes.Equal(got, okm) {
			t.Fatalf("salt type %d: OKM %x", p.SaltType, got)
		}
	}
	_, err := m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_HKDF_DERIVE, Param: &ck.HKDFParams{PRF: ck.CKM_SHA256}}, base, tmpl)
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
}

// TestPBKDF2RFC6070 generates RFC 6070's second PBKDF2-HMAC-SHA1 vector
// with C_GenerateKey.
func TestPBKDF2RFC6070(t *testing.T) {
	m, s := userSession(t)
	p := &ck.PBKD2Params{SaltSource: ck.CKZ_SALT_SPECIFIED, Salt: []byte("salt"), Iterations: 2,
		PRF: ck.CKP_PKCS5_PBKD2_HMAC_SHA1, Password: []byte("password")}
	k, err := m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_PKCS5_PBKD2, Param: p}, []ck.Attribute{
		{Type: ck.CKA_VALUE_LEN, Value: ul(20)}, {Type: ck.CKA_SENSITIVE, Value: tb(false)}})
	must(t, err)
	if got := getAttr(t, m, s, k, ck.CKA_VALUE); !bytes.Equal(got, hexBytes(t, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957")) {
		t.Fatalf("PBKDF2 = %x", got)
	}
	_, err = m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_PKCS5_PBKD2, Param: &ck.PBKD2Params{SaltSource: ck.CKZ_SALT_SPECIFIED, Iterations: 2, PRF: 99}},
		[]ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ul(20)}})
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	// One call may not ask for unbounded work (2^40 iterations would hold
	// a CPU for days): refused before any is done.
	huge := *p
	huge.Password = []byte("password")
	huge.Iterations = 1 << 40
	_, err = m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_PKCS5_PBKD2, Param: &huge}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ul(20)}})
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
}

// TestHKDFDataRFC5869 derives RFC 5869 test case 1 into a data object
// (CKM_HKDF_DATA, 3.0 mechanisms §2.43.4) through the Module API, with the
// salt as data and as a key, and checks the template rules.
func TestHKDFDataRFC5869(t *testing.T) {
	m, s := userSession(t)
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	salt := hexBytes(t, "000102030405060708090a0b0c")
	info := hexBytes(t, "f0f1f2f3f4f5f6f7f8f9")
	okm := hexBytes(t, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
	secret := func(kt ck.KeyType, v []byte, more ...ck.Attribute) ck.ObjectHandle {
		h, err := m.CreateObject(s, append([]ck.Attribute{
			{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(kt))},
			{Type: ck.CKA_VALUE, Value: v},
		}, more...))
		must(t, err)
		return h
	}
	derive := ck.Attribute{Type: ck.CKA_DERIVE, Value: tb(true)}
	// A sensitive, non-extractable base key: its value never comes out,
	// only the HKDF output does.
	base := secret(ck.CKK_HKDF, ikm, derive, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(true)},
		ck.Attribute{Type: ck.CKA_EXTRACTABLE, Value: tb(false)})
	// The salt key is HMAC's key in HKDF-Extract: it needs CKA_DERIVE
	// (TestHKDFSaltKeyNeedsDerive has the refusals).
	saltKey := secret(ck.CKK_GENERIC_SECRET, salt, derive)
	dataClass := ck.Attribute{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_DATA))}
	length := ck.Attribute{Type: ck.CKA_VALUE_LEN, Value: ul(42)}
	label := ck.Attribute{Type: ck.CKA_LABEL, Value: []byte("okm")}
	bySalt := &ck.HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA, Salt: salt, Info: info}
	byKey := &ck.HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_KEY, SaltKey: saltKey, Info: info}
	hkdfData := func(p *ck.HKDFParams) ck.Mechanism { return ck.Mechanism{Type: ck.CKM_HKDF_DATA, Param: p} }

	for _, c := range []struct {
		name string
		p    *ck.HKDFParams
		tmpl []ck.Attribute
	}{
		{"salt as data", bySalt, []ck.Attribute{dataClass, length, label}},
		{"salt as key", byKey, []ck.Attribute{dataClass, length, label}},
		{"class implied", bySalt, []ck.Attribute{length, label}},
		{"token object", byKey, []ck.Attribute{dataClass, length, label, {Type: ck.CKA_TOKEN, Value: tb(true)}}},
	} {
		o, err := m.DeriveKey(s, hkdfData(c.p), base, c.tmpl)
		must(t, err)
		if got := getAttr(t, m, s, o, ck.CKA_VALUE); !bytes.Equal(got, okm) {
			t.Fatalf("%s: CKA_VALUE %x, want the RFC 5869 OKM", c.name, got)
		}
		if got := getAttr(t, m, s, o, ck.CKA_CLASS); !bytes.Equal(got, ul(ck.ULong(ck.CKO_DATA))) {
			t.Fatalf("%s: CKA_CLASS %x", c.name, got)
		}
		if got := getAttr(t, m, s, o, ck.CKA_LABEL); string(got) != "okm" {
			t.Fatalf("%s: CKA_LABEL %q", c.name, got)
		}
		// Derived from a private key, the data is private unless asked.
		if got := getAttr(t, m, s, o, ck.CKA_PRIVATE); !bytes.Equal(got, tb(true)) {
			t.Fatalf("%s: CKA_PRIVATE %x, want the base key's (true)", c.name, got)
		}
		// A data object has neither a key type nor a value length.
		for _, at := range []ck.AttributeType{ck.CKA_KEY_TYPE, ck.CKA_VALUE_LEN, ck.CKA_LOCAL} {
			_, err := m.GetAttributeValue(s, o, []ck.AttributeRequest{{Type: at, Cap: 64}})
			wantRV(t, err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
		}
	}
	// The base key is still sensitive.
	_, err := m.GetAttributeValue(s, base, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_SENSITIVE)

	// Extract alone: the PRK, with no length needed.
	o, err := m.DeriveKey(s, hkdfData(&ck.HKDFParams{Extract: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA, Salt: salt}),
		base, []ck.Attribute{dataClass})
	must(t, err)
	if got := getAttr(t, m, s, o, ck.CKA_VALUE); !bytes.Equal(got, hexBytes(t, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")) {
		t.Fatalf("extract only: %x", got)
	}

	// Template and key errors.
	secretClass := ck.Attribute{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))}
	noDerive := secret(ck.CKK_HKDF, ikm)
	aes := secret(ck.CKK_AES, bytes.Repeat([]byte{1}, 16), derive)
	for _, c := range []struct {
		name string
		mt   ck.MechanismType
		base ck.ObjectHandle
		tmpl []ck.Attribute
		want ck.RV
	}{
		{"secret key class", ck.CKM_HKDF_DATA, base, []ck.Attribute{secretClass, length}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"data class for HKDF_DERIVE", ck.CKM_HKDF_DERIVE, base, []ck.Attribute{dataClass, length}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"data class for ECDH", ck.CKM_ECDH1_DERIVE, base, []ck.Attribute{dataClass, length}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"no length", ck.CKM_HKDF_DATA, base, []ck.Attribute{dataClass}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"zero length", ck.CKM_HKDF_DATA, base, []ck.Attribute{dataClass, {Type: ck.CKA_VALUE_LEN, Value: ul(0)}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"caller's CKA_VALUE", ck.CKM_HKDF_DATA, base, []ck.Attribute{dataClass, length, {Type: ck.CKA_VALUE, Value: []byte("x")}}, ck.CKR_TEMPLATE_INCONSISTENT},
		{"key attribute", ck.CKM_HKDF_DATA, base, []ck.Attribute{dataClass, length, {Type: ck.CKA_SENSITIVE, Value: tb(true)}}, ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"base without CKA_DERIVE", ck.CKM_HKDF_DATA, noDerive, []ck.Attribute{dataClass, length}, ck.CKR_KEY_FUNCTION_NOT_PERMITTED},
		{"AES base key", ck.CKM_HKDF_DATA, aes, []ck.Attribute{dataClass, length}, ck.CKR_KEY_TYPE_INCONSISTENT},
		{"data object as base", ck.CKM_HKDF_DATA, o, []ck.Attribute{dataClass, length}, ck.CKR_KEY_HANDLE_INVALID},
	} {
		_, err := m.DeriveKey(s, ck.Mechanism{Type: c.mt, Param: bySalt}, c.base, c.tmpl)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}

	// A base key whose CKA_DERIVE_TEMPLATE asks for sensitive keys derives
	// keys but no data: a data object would escape that policy.
	guarded := secret(ck.CKK_HKDF, ikm, derive, ck.Attribute{Type: ck.CKA_DERIVE_TEMPLATE,
		Value: attr.EncodeTemplate([]ck.Attribute{{Type: ck.CKA_SENSITIVE, Value: tb(true)}})})
	_, err = m.DeriveKey(s, hkdfData(bySalt), guarded, []ck.Attribute{dataClass, length})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	k, err := m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_HKDF_DERIVE, Param: bySalt}, guarded, []ck.Attribute{length})
	must(t, err)
	if !bytes.Equal(getAttr(t, m, s, k, ck.CKA_SENSITIVE), tb(true)) {
		t.Fatal("the derive template was not applied to the key")
	}
	// A derive template a data object can carry is applied to it.
	tokenOnly := secret(ck.CKK_HKDF, ikm, derive, ck.Attribute{Type: ck.CKA_DERIVE_TEMPLATE,
		Value: attr.EncodeTemplate([]ck.Attribute{{Type: ck.CKA_MODIFIABLE, Value: tb(false)}})})
	o, err = m.DeriveKey(s, hkdfData(bySalt), tokenOnly, []ck.Attribute{dataClass, length})
	must(t, err)
	if !bytes.Equal(getAttr(t, m, s, o, ck.CKA_MODIFIABLE), tb(false)) {
		t.Fatal("the derive template was not applied to the data object")
	}

	// From a public base key the data is public by default, so a session
	// that is not logged in may derive it; a private one it may not.
	pub := secret(ck.CKK_GENERIC_SECRET, ikm, derive, ck.Attribute{Type: ck.CKA_PRIVATE, Value: tb(false)})
	must(t, m.Logout(s))
	o, err = m.DeriveKey(s, hkdfData(bySalt), pub, []ck.Attribute{dataClass, length})
	must(t, err)
	if !bytes.Equal(getAttr(t, m, s, o, ck.CKA_PRIVATE), tb(false)) || !bytes.Equal(getAttr(t, m, s, o, ck.CKA_VALUE), okm) {
		t.Fatal("public derivation: wrong CKA_PRIVATE or value")
	}
	_, err = m.DeriveKey(s, hkdfData(bySalt), pub, []ck.Attribute{dataClass, length, {Type: ck.CKA_PRIVATE, Value: tb(true)}})
	wantRV(t, err, ck.CKR_USER_NOT_LOGGED_IN)
	// The private base key is invisible now.
	_, err = m.DeriveKey(s, hkdfData(bySalt), base, []ck.Attribute{dataClass, length})
	wantRV(t, err, ck.CKR_KEY_HANDLE_INVALID)
}
