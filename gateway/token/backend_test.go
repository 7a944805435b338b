package token_test

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestSealOpenEngine(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	tok := gwtest.Token(t, dir, "gw")
	s, err := tok.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		gen, mech ck.MechanismType
		kt        ck.KeyType
	}{
		{ck.CKM_AES_KEY_GEN, ck.CKM_AES_GCM, ck.CKK_AES},
		{ck.CKM_CHACHA20_KEY_GEN, ck.CKM_CHACHA20_POLY1305, ck.CKK_CHACHA20},
	} {
		k, err := s.GenerateKey(ck.Mechanism{Type: tc.gen}, []ck.Attribute{
			{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
			{Type: ck.CKA_ENCRYPT, Value: attr.Bool(true)},
			{Type: ck.CKA_DECRYPT, Value: attr.Bool(true)},
		})
		if err != nil {
			t.Fatal(tc.mech, err)
		}
		for i := 0; i < 3; i++ {
			sealed, err := s.Seal(nil, tc.mech, k, []byte("aad"), []byte("hello"))
			if err != nil {
				t.Fatal(tc.mech, err)
			}
			if len(sealed) != 12+5+16 {
				t.Fatalf("%v: sealed %d bytes", tc.mech, len(sealed))
			}
			pt, err := s.Open(nil, tc.mech, k, []byte("aad"), sealed)
			if err != nil || !bytes.Equal(pt, []byte("hello")) {
				t.Fatalf("%v: open: %q %v", tc.mech, pt, err)
			}
			if _, err := s.Open(nil, tc.mech, k, []byte("aaX"), sealed); err == nil {
				t.Fatalf("%v: wrong AAD opened", tc.mech)
			}
		}
	}
	_ = token.RV
}
