package ck

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// headerValues reads the "#define CK*_NAME value" lines of a C header.
func headerValues(t *testing.T, path string) map[string]ULong {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	def := regexp.MustCompile(`^#define\s+(CK[A-Z]?_\w+)\s+\(?\s*(0[xX][0-9A-Fa-f]+|[0-9]+)[Uu]?[Ll]?\s*\)?`)
	out := map[string]ULong{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := def.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		v, err := strconv.ParseUint(m[2], 0, 64)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, m[0], err)
		}
		out[m[1]] = ULong(v)
	}
	return out
}

// TestV3AgainstNSSHeader cross-checks every 3.0 value of the table against
// a second, independent copy of the OASIS 3.0 header (NSS ships one). The
// 3.2-only values (PQC, validation, trust) are not in it; they were read
// from the OASIS 3.2 header and checked against the 3.2 specification text.
func TestV3AgainstNSSHeader(t *testing.T) {
	h := headerValues(t, "/usr/include/nss/pkcs11t.h")
	if h == nil {
		t.Skip("NSS pkcs11t.h not installed (libnss3-dev)")
	}
	checked := 0
	for name, v := range v3All {
		hv, ok := h[name]
		if !ok {
			continue
		}
		checked++
		if hv != v {
			t.Errorf("%s = %#x, NSS 3.0 header says %#x", name, v, hv)
		}
	}
	// The 3.0 part of the table: far more than a handful must be present,
	// or the parser (or the header) is not what we think.
	if checked < 120 {
		t.Fatalf("only %d of %d values found in the NSS header", checked, len(v3All))
	}
	t.Logf("%d of %d values checked against NSS's 3.0 header", checked, len(v3All))
	// The 2.40 values gen.go skipped must be the renumbered ones there too.
	for _, n := range []string{"CKK_SHA3_224_HMAC", "CKK_SHA3_256_HMAC", "CKK_SHA3_384_HMAC", "CKK_SHA3_512_HMAC"} {
		if h[n] != v3All[n] {
			t.Errorf("%s: NSS %#x, table %#x", n, h[n], v3All[n])
		}
	}
}

// TestV3AgainstP11Kit checks the few 3.0 values p11-kit 0.24 carries. Its
// header had wrong values for some 3.0 CKR_ codes in older releases; none
// of those differ here, and any new disagreement must be looked at, not
// papered over.
func TestV3AgainstP11Kit(t *testing.T) {
	h := headerValues(t, "/usr/include/p11-kit-1/p11-kit/pkcs11.h")
	if h == nil {
		t.Skip("p11-kit pkcs11.h not installed")
	}
	checked := 0
	for name, v := range v3All {
		if hv, ok := h[name]; ok {
			checked++
			if hv != v {
				t.Errorf("%s = %#x, p11-kit says %#x", name, v, hv)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d values found in p11-kit's header", checked)
	}
}

// TestV3Spot pins values whose loss would break clients at once, from the
// 3.2 specification text (independent of the table's construction).
func TestV3Spot(t *testing.T) {
	for _, c := range []struct {
		got, want ULong
		name      string
	}{
		{ULong(CKM_EDDSA), 0x1057, "CKM_EDDSA"},
		{ULong(CKM_EC_EDWARDS_KEY_PAIR_GEN), 0x1055, "CKM_EC_EDWARDS_KEY_PAIR_GEN"},
		{ULong(CKK_EC_EDWARDS), 0x40, "CKK_EC_EDWARDS"},
		{ULong(CKK_ML_DSA), 0x4A, "CKK_ML_DSA"},
		{ULong(CKK_ML_KEM), 0x49, "CKK_ML_KEM"},
		{ULong(CKK_SLH_DSA), 0x4B, "CKK_SLH_DSA"},
		{ULong(CKM_ML_DSA_KEY_PAIR_GEN), 0x1C, "CKM_ML_DSA_KEY_PAIR_GEN"},
		{ULong(CKM_ML_DSA), 0x1D, "CKM_ML_DSA"},
		{ULong(CKM_HASH_ML_DSA_SHA256), 0x24, "CKM_HASH_ML_DSA_SHA256"},
		{ULong(CKM_SLH_DSA), 0x2E, "CKM_SLH_DSA"},
		{ULong(CKA_PARAMETER_SET), 0x61D, "CKA_PARAMETER_SET"},
		{ULong(CKA_SEED), 0x637, "CKA_SEED"},
		{ULong(CKP_ML_DSA_65), 2, "CKP_ML_DSA_65"},
		{ULong(CKK_SHA3_256_HMAC), 0x37, "CKK_SHA3_256_HMAC"},
		{ULong(CKR_PARAMETER_SET_NOT_SUPPORTED), 0x209, "CKR_PARAMETER_SET_NOT_SUPPORTED"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestV3Names(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{CKM_ML_DSA.String(), "CKM_ML_DSA"},
		{CKM_ECDSA_SHA3_256.String(), "CKM_ECDSA_SHA3_256"},
		{CKK_SHA3_224_HMAC.String(), "CKK_SHA3_224_HMAC"},
		{CKK_CHACHA20.String(), "CKK_CHACHA20"},
		{CKA_PARAMETER_SET.String(), "CKA_PARAMETER_SET"},
		{CKR_AEAD_DECRYPT_FAILED.String(), "CKR_AEAD_DECRYPT_FAILED"},
		{CKO_PROFILE.String(), "CKO_PROFILE"},
		{CKM_SHA3_256_KEY_DERIVATION.String(), "CKM_SHA3_256_KEY_DERIVATION"},
	} {
		if c.got != c.want {
			t.Errorf("String() = %q, want %q", c.got, c.want)
		}
	}
}
