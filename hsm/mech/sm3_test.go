package mech

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	tjsm3 "github.com/tjfoc/gmsm/sm3"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// GB/T 32905-2016 Appendix A: "abc" and the 512-bit "abcd"×16.
func TestSM3StandardVectors(t *testing.T) {
	m := smMech(t, ck.DefaultProfile, "CKM_SM3")
	for _, v := range []struct{ msg, sum string }{
		{"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
		{strings.Repeat("abcd", 16), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"},
	} {
		h, err := m.Digest(nil)
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(v.msg))
		if got := hex.EncodeToString(h.Sum(nil)); got != v.sum {
			t.Errorf("SM3(%q) = %s, want %s", v.msg, got, v.sum)
		}
		// byte-at-a-time multi-part gives the same digest
		h.Reset()
		for i := range len(v.msg) {
			h.Write([]byte{v.msg[i]})
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != v.sum {
			t.Errorf("multi-part SM3(%q) = %s", v.msg, got)
		}
	}
	if _, err := m.Digest([]byte{1}); err == nil {
		t.Error("CKM_SM3 accepted a parameter")
	} else {
		wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	}
}

// tjfoc/gmsm is an independent SM3; random lengths cover every padding case.
func TestSM3CrossTjfoc(t *testing.T) {
	m := smMech(t, ck.DefaultProfile, "CKM_SM3")
	for n := 0; n < 300; n++ {
		msg := make([]byte, n*7)
		rand.Read(msg)
		h, _ := m.Digest(nil)
		h.Write(msg)
		if got, want := h.Sum(nil), tjsm3.Sm3Sum(msg); !bytes.Equal(got, want) {
			t.Fatalf("len %d: ours %x, tjfoc %x", len(msg), got, want)
		}
	}
}

func hmacKey(v []byte) *Key {
	return &Key{Class: ck.CKO_SECRET_KEY, Type: ck.CKK_GENERIC_SECRET, Material: v,
		Attrs: attr.Template{{Type: ck.CKA_VALUE, Value: v}}}
}

type wycheproofMAC struct {
	TestGroups []struct {
		KeySize, TagSize int
		Tests            []struct {
			TcID          int `json:"tcId"`
			Key, Msg, Tag string
			Result        string
		}
	}
}

// Wycheproof hmac_sm3_test.json: full tags through CKM_SM3_HMAC, 128-bit
// ones through CKM_SM3_HMAC_GENERAL.
func TestHMACSM3Wycheproof(t *testing.T) {
	var f wycheproofMAC
	loadJSON(t, "testdata/wycheproof/hmac_sm3_test.json", &f)
	plain := smMech(t, ck.DefaultProfile, "CKM_SM3_HMAC")
	general := smMech(t, ck.DefaultProfile, "CKM_SM3_HMAC_GENERAL")
	n := 0
	for _, g := range f.TestGroups {
		m, param := plain, any(nil)
		if g.TagSize != 256 {
			m, param = general, ck.MACGeneralParams(g.TagSize/8)
		}
		for _, tc := range g.Tests {
			k := hmacKey(unhex(t, tc.Key))
			msg, tag := unhex(t, tc.Msg), unhex(t, tc.Tag)
			s, err := m.Sign(k, param)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			// multi-part in two pieces
			s.Update(msg[:len(msg)/2])
			s.Update(msg[len(msg)/2:])
			mp, _ := s.Final()
			if !bytes.Equal(got, mp) {
				t.Fatalf("tc %d: multi-part %x != one-shot %x", tc.TcID, mp, got)
			}
			v, err := m.Verify(k, param)
			if err != nil {
				t.Fatal(err)
			}
			verr := v.Verify(msg, tag)
			switch tc.Result {
			case "valid":
				if !bytes.Equal(got, tag) || verr != nil {
					t.Errorf("tc %d: got %x want %x, verify %v", tc.TcID, got, tag, verr)
				}
			default:
				if verr == nil {
					t.Errorf("tc %d: invalid tag verified", tc.TcID)
				}
			}
			n++
		}
	}
	if n != 174 {
		t.Errorf("ran %d Wycheproof HMAC-SM3 cases, file has 174", n)
	}
}

func TestHMACSM3Errors(t *testing.T) {
	k := hmacKey([]byte("key"))
	general := smMech(t, ck.DefaultProfile, "CKM_SM3_HMAC_GENERAL")
	for _, bad := range []any{nil, ck.MACGeneralParams(0), ck.MACGeneralParams(33), []byte{1}} {
		_, err := general.Sign(k, bad)
		wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if _, err := smMech(t, ck.DefaultProfile, "CKM_SM3_HMAC").Sign(k, []byte{1}); err == nil {
		t.Error("CKM_SM3_HMAC accepted a parameter")
	}
	p := ck.MACGeneralParams(10)
	v, err := general.Verify(k, &p)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := general.Sign(k, p)
	tag, _ := s.Sign([]byte("data"))
	if len(tag) != 10 {
		t.Fatalf("general tag of %d bytes", len(tag))
	}
	wantRV(t, v.Verify([]byte("data"), tag[:9]), ck.CKR_SIGNATURE_LEN_RANGE)
	tag[0] ^= 1
	wantRV(t, v.Verify([]byte("data"), tag), ck.CKR_SIGNATURE_INVALID)
}
