package mech

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// TestWycheproofHKDFData runs the Wycheproof HKDF files through
// CKM_HKDF_DATA's Derive: the data object's CKA_VALUE must be the OKM, and
// the oversized requests (more than 255 blocks) must be refused. The counts
// are those of the pinned Wycheproof release, so a loader that silently
// drops vectors fails.
func TestWycheproofHKDFData(t *testing.T) {
	m := mustMech(t, ck.CKM_HKDF_DATA)
	if !m.DerivesData || m.Info.Flags&ck.CKF_DERIVE == 0 {
		t.Fatalf("CKM_HKDF_DATA: DerivesData %v, flags %#x", m.DerivesData, m.Info.Flags)
	}
	for _, c := range []struct {
		file           string
		prf            ck.MechanismType
		valid, invalid int
	}{
		{"hkdf_sha1_test.json", ck.CKM_SHA_1, 84, 3},
		{"hkdf_sha256_test.json", ck.CKM_SHA256, 83, 3},
		{"hkdf_sha384_test.json", ck.CKM_SHA384, 80, 3},
		{"hkdf_sha512_test.json", ck.CKM_SHA512, 80, 3},
	} {
		f := wpLoad(t, c.file)
		valid, invalid, refused := 0, 0, 0
		for _, raw := range f.TestGroups {
			g := wpGroup[struct{ Tests []wpHKDF }](t, raw)
			for _, tc := range g.Tests {
				switch tc.Result {
				case "valid":
					valid++
				case "invalid":
					invalid++
				}
				p := &ck.HKDFParams{Extract: true, Expand: true, PRF: c.prf, SaltType: ck.CKF_HKDF_SALT_DATA,
					Salt: mustHex(t, tc.Salt), Info: mustHex(t, tc.Info)}
				if len(p.Salt) == 0 {
					p.SaltType, p.Salt = ck.CKF_HKDF_SALT_NULL, nil
				}
				out, err := m.Derive(secretKeyOf(t, ck.CKK_GENERIC_SECRET, mustHex(t, tc.IKM)), p,
					attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(ck.ULong(tc.Size))}})
				if err == nil {
					if len(out) != 1 {
						t.Fatalf("%s #%d: HKDF_DATA returned %d attributes, want CKA_VALUE only", c.file, tc.TcID, len(out))
					}
					if v, _ := out.Get(ck.CKA_VALUE); !bytes.Equal(v, mustHex(t, tc.OKM)) {
						err = errMismatch
					}
				} else {
					refused++
				}
				wpCheck(t, c.file, wpTest{TcID: tc.TcID, Comment: tc.Comment, Result: tc.Result}, err)
			}
		}
		if valid != c.valid || invalid != c.invalid || refused != c.invalid {
			t.Fatalf("%s: %d valid, %d invalid, %d refused; want %d, %d, %d", c.file, valid, invalid, refused, c.valid, c.invalid, c.invalid)
		}
		t.Logf("Wycheproof %s through CKM_HKDF_DATA: %d valid, %d invalid", c.file, valid, invalid)
	}
}

// TestHKDFDataLength checks the CKA_VALUE_LEN rules of CKM_HKDF_DATA
// (§2.43.3-§2.43.4) against RFC 5869 test case 1.
func TestHKDFDataLength(t *testing.T) {
	m := mustMech(t, ck.CKM_HKDF_DATA)
	k := secretKeyOf(t, ck.CKK_HKDF, bytes.Repeat([]byte{0x0b}, 22))
	salt, info := mustHex(t, "000102030405060708090a0b0c"), mustHex(t, "f0f1f2f3f4f5f6f7f8f9")
	prk := mustHex(t, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
	okm := mustHex(t, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
	both := &ck.HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA, Salt: salt, Info: info}
	extract := &ck.HKDFParams{Extract: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA, Salt: salt}
	expand := &ck.HKDFParams{Expand: true, PRF: ck.CKM_SHA256, Info: info}
	length := func(n ck.ULong) attr.Template { return attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(n)}} }
	value := func(out attr.Template, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := out.Get(ck.CKA_VALUE)
		return v
	}

	if got := value(m.Derive(k, both, length(42))); !bytes.Equal(got, okm) {
		t.Fatalf("extract+expand: %x", got)
	}
	// Extract alone makes the PRK; the length may be omitted or be HashLen.
	if got := value(m.Derive(k, extract, nil)); !bytes.Equal(got, prk) {
		t.Fatalf("extract: %x", got)
	}
	if got := value(m.Derive(k, extract, length(32))); !bytes.Equal(got, prk) {
		t.Fatalf("extract with CKA_VALUE_LEN 32: %x", got)
	}
	_, err := m.Derive(k, extract, length(16))
	expectRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "extract with CKA_VALUE_LEN 16")
	// Expand alone uses the key as the PRK: the PRK expands to the OKM.
	if got := value(m.Derive(secretKeyOf(t, ck.CKK_HKDF, prk), expand, length(42))); !bytes.Equal(got, okm) {
		t.Fatalf("expand: %x", got)
	}
	_, err = m.Derive(k, both, nil)
	expectRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "expand without CKA_VALUE_LEN")
	_, err = m.Derive(k, both, length(0))
	expectRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE_LEN 0")
	_, err = m.Derive(k, both, length(255*32+1))
	expectRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "256 blocks")
	_, err = m.Derive(k, &ck.HKDFParams{PRF: ck.CKM_SHA256}, length(32))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "neither extract nor expand")
	_, err = m.Derive(k, &ck.HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_MD5, SaltType: ck.CKF_HKDF_SALT_NULL}, length(32))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "MD5 PRF")
	_, err = m.Derive(k, &ck.HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA}, length(32))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "empty data salt")
}
