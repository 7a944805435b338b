package mech

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// macMech picks the full-length HMAC mechanism or its _GENERAL variant for
// a truncated tag.
func macMech(full, general ck.MechanismType, size, tagLen int) (ck.MechanismType, any) {
	if tagLen == size {
		return full, nil
	}
	return general, ck.MACGeneralParams(tagLen)
}

func macCheck(t *testing.T, m ck.MechanismType, param any, k *Key, msg, tag []byte) error {
	t.Helper()
	mm := regMech(t, m)
	v, err := mm.Verify(k, param)
	if err != nil {
		t.Fatalf("%v verify init: %v", m, err)
	}
	err = v.Verify(msg, tag)
	// Multi-part verification must agree with single-part.
	v2, _ := mm.Verify(k, param)
	for i := 0; i < len(msg); i += 7 {
		v2.Update(msg[i:min(i+7, len(msg))])
	}
	if err2 := v2.Final(tag); (err == nil) != (err2 == nil) {
		t.Fatalf("%v: single-part %v, multi-part %v", m, err, err2)
	}
	if err == nil {
		s, _ := mm.Sign(k, param)
		if got, _ := s.Sign(msg); !bytes.Equal(got, tag) || s.Len() != len(tag) {
			t.Fatalf("%v: Sign %x (Len %d), want %x", m, got, s.Len(), tag)
		}
	}
	return err
}

func TestWycheproofHMAC(t *testing.T) {
	t.Parallel()
	n := 0
	for _, e := range hmacs {
		file := fmt.Sprintf("hmac_sha%d_test.json", e.h.Size()*8)
		if e.h.Size() == 20 {
			file = "hmac_sha1_test.json"
		}
		f := wpLoad(t, file)
		for _, raw := range f.TestGroups {
			g := wpGroup[struct {
				TagSize int
				Tests   []wpTest
			}](t, raw)
			m, param := macMech(e.mac, e.general, e.h.Size(), g.TagSize/8)
			for _, tc := range g.Tests {
				n++
				k := secretKeyOf(t, ck.CKK_GENERIC_SECRET, mustHex(t, tc.Key))
				err := macCheck(t, m, param, k, mustHex(t, tc.Msg), mustHex(t, tc.Tag))
				wpCheck(t, file, tc, err)
			}
		}
	}
	wantCount(t, "Wycheproof HMAC", n, 864)
}

func TestACVPHMAC(t *testing.T) {
	t.Parallel()
	n := 0
	for _, e := range hmacs[1:] { // ACVP has no HMAC-SHA-1 set here
		file := fmt.Sprintf("HMAC-SHA2-%d", e.h.Size()*8)
		sets, exp := acvpLoad(t, file)
		for si, s := range sets {
			for _, raw := range s.TestGroups {
				var g struct {
					MacLen int
					Tests  []struct {
						TcID     int
						Key, Msg string
					}
				}
				if err := json.Unmarshal(raw, &g); err != nil {
					t.Fatal(err)
				}
				m, param := macMech(e.mac, e.general, e.h.Size(), g.MacLen/8)
				for _, tc := range g.Tests {
					n++
					mac, _ := acvpString(t, exp[si][tc.TcID], "mac")
					// ACVP keys reach 64 KiB; hand them over as an HMAC key type.
					k := secretKeyOf(t, e.kt, mustHex(t, tc.Key))
					if err := macCheck(t, m, param, k, mustHex(t, tc.Msg), mustHex(t, mac)); err != nil {
						t.Errorf("%s #%d: %v", file, tc.TcID, err)
					}
				}
			}
		}
	}
	wantCount(t, "ACVP HMAC-SHA2", n, 52)
}

func TestHMACErrors(t *testing.T) {
	k := secretKeyOf(t, ck.CKK_GENERIC_SECRET, []byte("key"))
	gen := regMech(t, ck.CKM_SHA256_HMAC_GENERAL)
	for _, p := range []any{nil, ck.MACGeneralParams(0), ck.MACGeneralParams(33), []byte{16}} {
		_, err := gen.Sign(k, p)
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, fmt.Sprintf("general param %v", p))
	}
	for _, p := range []any{ck.MACGeneralParams(16), ck.ULong(16), new(ck.MACGeneralParams(16))} {
		s, err := gen.Sign(k, p)
		if err != nil || s.Len() != 16 {
			t.Fatalf("param %T: %v", p, err)
		}
	}
	full := regMech(t, ck.CKM_SHA256_HMAC)
	_, err := full.Sign(k, ck.MACGeneralParams(16))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "param on full HMAC")
	s, _ := full.Sign(k, nil)
	s.Update([]byte("hello "))
	s.Update([]byte("world"))
	multi, _ := s.Final()
	one, _ := s.Sign([]byte("hello world"))
	// RFC 4231-style cross-check with crypto/hmac is implicit in the
	// vectors; here multi-part must equal one-shot.
	if !bytes.Equal(multi, one) || len(one) != 32 {
		t.Fatalf("multi %x one %x", multi, one)
	}
	v, _ := full.Verify(k, nil)
	expectRV(t, v.Verify([]byte("hello world"), one[:31]), ck.CKR_SIGNATURE_LEN_RANGE, "short MAC")
	bad := bytes.Clone(one)
	bad[0] ^= 1
	expectRV(t, v.Verify([]byte("hello world"), bad), ck.CKR_SIGNATURE_INVALID, "wrong MAC")
	if err := v.Verify([]byte("hello world"), one); err != nil {
		t.Fatal(err)
	}
}
