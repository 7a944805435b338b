package mech

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

func TestDigestKnownAnswers(t *testing.T) {
	// FIPS 180 / RFC 1321 "abc" examples.
	for _, e := range []struct {
		m    ck.MechanismType
		want string
	}{
		{ck.CKM_MD5, "900150983cd24fb0d6963f7d28e17f72"},
		{ck.CKM_SHA_1, "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{ck.CKM_SHA224, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
		{ck.CKM_SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{ck.CKM_SHA384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"},
		{ck.CKM_SHA512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
	} {
		h, err := regMech(t, e.m).Digest(nil)
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte("a"))
		h.Write([]byte("bc"))
		if got := h.Sum(nil); !bytes.Equal(got, mustHex(t, e.want)) {
			t.Errorf("%v(abc) = %x", e.m, got)
		}
		_, err = regMech(t, e.m).Digest([]byte{1})
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "digest with parameter")
	}
}

// TestACVPSHA2 runs the SHA2 AFT vectors.
func TestACVPSHA2(t *testing.T) {
	t.Parallel()
	n := 0
	for _, e := range []struct {
		file string
		m    ck.MechanismType
	}{{"SHA2-224", ck.CKM_SHA224}, {"SHA2-256", ck.CKM_SHA256}, {"SHA2-384", ck.CKM_SHA384}, {"SHA2-512", ck.CKM_SHA512}} {
		sets, exp := acvpLoad(t, e.file)
		for si, s := range sets {
			for _, raw := range s.TestGroups {
				var g struct {
					TestType string
					Tests    []struct {
						TcID int
						Len  int
						Msg  string
					}
				}
				if err := json.Unmarshal(raw, &g); err != nil {
					t.Fatal(err)
				}
				if g.TestType != "AFT" {
					continue
				}
				for _, tc := range g.Tests {
					msg := mustHex(t, tc.Msg)
					if tc.Len%8 != 0 || tc.Len/8 != len(msg) {
						continue // bit-oriented messages are not a PKCS#11 input
					}
					n++
					h, _ := regMech(t, e.m).Digest(nil)
					h.Write(msg)
					md, _ := acvpString(t, exp[si][tc.TcID], "md")
					if got := h.Sum(nil); !bytes.Equal(got, mustHex(t, md)) {
						t.Errorf("%s #%d: %x, want %s", e.file, tc.TcID, got, md)
					}
				}
			}
		}
	}
	wantCount(t, "ACVP SHA2", n, 4)
}
