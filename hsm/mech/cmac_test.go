package mech

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

func TestWycheproofAESCMAC(t *testing.T) {
	t.Parallel()
	file := "aes_cmac_test.json"
	f := wpLoad(t, file)
	n := 0
	for _, raw := range f.TestGroups {
		g := wpGroup[struct {
			KeySize, TagSize int
			Tests            []wpTest
		}](t, raw)
		m, param := macMech(ck.CKM_AES_CMAC, ck.CKM_AES_CMAC_GENERAL, 16, g.TagSize/8)
		for _, tc := range g.Tests {
			n++
			key := mustHex(t, tc.Key)
			if len(key) != 16 && len(key) != 24 && len(key) != 32 {
				// Wycheproof's odd key sizes: an AES key object cannot
				// hold them, so they fail at the key, as they must.
				if tc.Result == "valid" {
					t.Errorf("%s #%d: valid vector with a %d-byte key", file, tc.TcID, len(key))
				}
				continue
			}
			k := secretKeyOf(t, ck.CKK_AES, key)
			wpCheck(t, file, tc, macCheck(t, m, param, k, mustHex(t, tc.Msg), mustHex(t, tc.Tag)))
		}
	}
	wantCount(t, "Wycheproof AES-CMAC", n, 311)
}

func TestACVPAESCMAC(t *testing.T) {
	t.Parallel()
	sets, exp := acvpLoad(t, "CMAC-AES")
	n := 0
	for si, s := range sets {
		for _, raw := range s.TestGroups {
			var g struct {
				Direction string
				MacLen    int
				Tests     []struct {
					TcID              int
					Key, Message, Mac string
				}
			}
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatal(err)
			}
			m, param := macMech(ck.CKM_AES_CMAC, ck.CKM_AES_CMAC_GENERAL, 16, g.MacLen/8)
			for _, tc := range g.Tests {
				n++
				k := secretKeyOf(t, ck.CKK_AES, mustHex(t, tc.Key))
				msg := mustHex(t, tc.Message)
				if g.Direction == "gen" {
					want, _ := acvpString(t, exp[si][tc.TcID], "mac")
					if err := macCheck(t, m, param, k, msg, mustHex(t, want)); err != nil {
						t.Errorf("CMAC-AES gen #%d: %v", tc.TcID, err)
					}
					continue
				}
				err := macCheck(t, m, param, k, msg, mustHex(t, tc.Mac))
				if want := acvpPassed(t, exp[si][tc.TcID]); want != (err == nil) {
					t.Errorf("CMAC-AES ver #%d: got %v, want pass=%v", tc.TcID, err, want)
				}
			}
		}
	}
	wantCount(t, "ACVP CMAC-AES", n, 12)
}

// TestAESCMACSP80038B pins the four AES-128 examples of SP 800-38B
// appendix D.1 (empty, one block, 40 bytes, four blocks): the partial and
// full last-block paths.
func TestAESCMACSP80038B(t *testing.T) {
	k := secretKeyOf(t, ck.CKK_AES, mustHex(t, "2b7e151628aed2a6abf7158809cf4f3c"))
	msg := mustHex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"+
		"30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for _, c := range []struct {
		n   int
		tag string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		if err := macCheck(t, ck.CKM_AES_CMAC, nil, k, msg[:c.n], mustHex(t, c.tag)); err != nil {
			t.Errorf("%d bytes: %v", c.n, err)
		}
	}
	_, err := regMech(t, ck.CKM_AES_CMAC_GENERAL).Sign(k, ck.MACGeneralParams(17))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "17-byte CMAC")
	_, err = regMech(t, ck.CKM_AES_CMAC).Sign(k, ck.MACGeneralParams(8))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "parameter on CKM_AES_CMAC")
	s, _ := regMech(t, ck.CKM_AES_CMAC_GENERAL).Sign(k, ck.ULong(4))
	if tag, _ := s.Sign(msg); s.Len() != 4 || !bytes.Equal(tag, mustHex(t, "51f0bebf")) {
		t.Fatalf("4-byte CMAC %x", tag)
	}
	v, _ := regMech(t, ck.CKM_AES_CMAC).Verify(k, nil)
	expectRV(t, v.Verify(msg, mustHex(t, "51f0bebf7e3b9d92fc49741779363c")), ck.CKR_SIGNATURE_LEN_RANGE, "short tag")
	expectRV(t, v.Verify(msg, mustHex(t, "51f0bebf7e3b9d92fc49741779363cff")), ck.CKR_SIGNATURE_INVALID, "wrong tag")
}
