package mech

import (
	"encoding/asn1"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Wycheproof vectors for the key wrap, key agreement and HKDF families,
// through the mechanism interfaces; every file must yield vectors.

func mustMech(t testing.TB, mt ck.MechanismType) *Mechanism {
	t.Helper()
	m, ok := classicReg().Mechanism(mt)
	if !ok {
		t.Fatalf("%v not registered", mt)
	}
	return m
}

func TestWycheproofKeyWrap(t *testing.T) {
	for _, c := range []struct {
		file string
		mt   ck.MechanismType
	}{{"aes_wrap_test.json", ck.CKM_AES_KEY_WRAP}, {"aes_kwp_test.json", ck.CKM_AES_KEY_WRAP_KWP}} {
		f := wpLoad(t, c.file)
		m := mustMech(t, c.mt)
		n := 0
		for _, raw := range f.TestGroups {
			g := wpGroup[struct{ Tests []wpTest }](t, raw)
			for _, tc := range g.Tests {
				n++
				k := secretKeyOf(t, ck.CKK_AES, mustHex(t, tc.Key))
				msg, ct := mustHex(t, tc.Msg), mustHex(t, tc.Ct)
				dec, err := m.Decrypt(k, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := dec.OneShot(nil, ct)
				if err == nil && string(got) != string(msg) {
					err = errMismatch
				}
				if tc.Result == "valid" {
					enc, _ := m.Encrypt(k, nil)
					w, werr := enc.OneShot(nil, msg)
					if werr != nil || string(w) != string(ct) {
						t.Errorf("%s #%d: wrap differs: %v", c.file, tc.TcID, werr)
					}
				}
				wpCheck(t, c.file, tc, err)
			}
		}
		if n == 0 {
			t.Fatalf("%s: no vectors", c.file)
		}
		t.Logf("Wycheproof %s: %d vectors", c.file, n)
	}
}

type wpXDH struct {
	TcID    int    `json:"tcId"`
	Comment string `json:"comment"`
	Result  string `json:"result"`
	Public  string `json:"public"`
	Private string `json:"private"`
	Shared  string `json:"shared"`
}

// TestWycheproofECDH runs X25519, X448 and P-256 (raw point encoding) key
// agreement through CKM_ECDH1_DERIVE with CKD_NULL: the derived CKA_VALUE
// must be the shared secret, and invalid peer values must be refused.
func TestWycheproofECDH(t *testing.T) {
	x25519, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 101, 110})
	x448, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 101, 111})
	p256, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
	m := mustMech(t, ck.CKM_ECDH1_DERIVE)
	for _, c := range []struct {
		file   string
		kt     ck.KeyType
		params []byte
	}{
		{"x25519_test.json", ck.CKK_EC_MONTGOMERY, x25519},
		{"x448_test.json", ck.CKK_EC_MONTGOMERY, x448},
		{"ecdh_secp256r1_ecpoint_test.json", ck.CKK_EC, p256},
	} {
		f := wpLoad(t, c.file)
		n := 0
		for _, raw := range f.TestGroups {
			g := wpGroup[struct{ Tests []wpXDH }](t, raw)
			for _, tc := range g.Tests {
				n++
				priv := mustHex(t, tc.Private)
				if c.kt == ck.CKK_EC && len(priv) > 32 {
					priv = priv[len(priv)-32:] // DER integers may carry a sign byte
				}
				k := keyOf(t, c.kt, ck.CKO_PRIVATE_KEY, attr.Template{
					{Type: ck.CKA_EC_PARAMS, Value: c.params}, {Type: ck.CKA_VALUE, Value: priv}})
				out, err := m.Derive(k, &ck.ECDH1DeriveParams{KDF: ck.CKD_NULL, PublicData: mustHex(t, tc.Public)}, nil)
				if err == nil {
					if v, _ := out.Get(ck.CKA_VALUE); string(v) != string(mustHex(t, tc.Shared)) {
						err = errMismatch
					}
				}
				wpCheck(t, c.file, wpTest{TcID: tc.TcID, Comment: tc.Comment, Result: tc.Result}, err)
			}
		}
		if n == 0 {
			t.Fatalf("%s: no vectors", c.file)
		}
		t.Logf("Wycheproof %s: %d vectors", c.file, n)
	}
}

type wpHKDF struct {
	TcID    int    `json:"tcId"`
	Comment string `json:"comment"`
	Result  string `json:"result"`
	IKM     string `json:"ikm"`
	Salt    string `json:"salt"`
	Info    string `json:"info"`
	Size    int    `json:"size"`
	OKM     string `json:"okm"`
}

func TestWycheproofHKDF(t *testing.T) {
	m := mustMech(t, ck.CKM_HKDF_DERIVE)
	for _, c := range []struct {
		file string
		prf  ck.MechanismType
	}{{"hkdf_sha1_test.json", ck.CKM_SHA_1}, {"hkdf_sha256_test.json", ck.CKM_SHA256},
		{"hkdf_sha384_test.json", ck.CKM_SHA384}, {"hkdf_sha512_test.json", ck.CKM_SHA512}} {
		f := wpLoad(t, c.file)
		n := 0
		for _, raw := range f.TestGroups {
			g := wpGroup[struct{ Tests []wpHKDF }](t, raw)
			for _, tc := range g.Tests {
				n++
				ikm := mustHex(t, tc.IKM)
				if len(ikm) == 0 {
					continue // a key object cannot have an empty value
				}
				p := &ck.HKDFParams{Extract: true, Expand: true, PRF: c.prf, SaltType: ck.CKF_HKDF_SALT_DATA,
					Salt: mustHex(t, tc.Salt), Info: mustHex(t, tc.Info)}
				if len(p.Salt) == 0 {
					p.SaltType, p.Salt = ck.CKF_HKDF_SALT_NULL, nil
				}
				var out attr.Template
				var err error
				if tc.Size == 0 {
					err = errMismatch // PKCS#11 keys cannot be empty: an invalid request
				} else {
					out, err = m.Derive(secretKeyOf(t, ck.CKK_HKDF, ikm), p,
						attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(ck.ULong(tc.Size))}})
				}
				if err == nil {
					if v, _ := out.Get(ck.CKA_VALUE); string(v) != string(mustHex(t, tc.OKM)) {
						err = errMismatch
					}
				}
				wpCheck(t, c.file, wpTest{TcID: tc.TcID, Comment: tc.Comment, Result: tc.Result}, err)
			}
		}
		if n == 0 {
			t.Fatalf("%s: no vectors", c.file)
		}
		t.Logf("Wycheproof %s: %d vectors", c.file, n)
	}
}

var errMismatch = errorString("result differs from the vector")

type errorString string

func (e errorString) Error() string { return string(e) }
