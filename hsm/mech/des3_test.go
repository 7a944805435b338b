package mech

import (
	"bytes"
	"math/bits"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestDES3KeyGen(t *testing.T) {
	m := regMech(t, ck.CKM_DES3_KEY_GEN)
	a, err := m.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := a.Get(ck.CKA_VALUE)
	if len(v) != 24 {
		t.Fatalf("%d bytes", len(v))
	}
	for i, b := range v {
		if bits.OnesCount8(b)%2 != 1 {
			t.Fatalf("byte %d (%#x) has even parity", i, b)
		}
	}
	_, err = m.GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)}})
	expectRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "DES3 with CKA_VALUE_LEN 16")
	kk, _ := classicReg().KeyKind(ck.CKK_DES3)
	_, err = kk.Parse(ck.CKO_SECRET_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: make([]byte, 16)}})
	expectRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "16-byte DES3 key")

	// setOddParity over every byte value.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	setOddParity(all)
	for i, b := range all {
		if bits.OnesCount8(b)%2 != 1 || b&^1 != byte(i)&^1 {
			t.Fatalf("parity of %#x gave %#x", i, b)
		}
	}
}

// TestDES3KnownAnswer checks 3DES-CBC against a vector from NIST SP 800-67
// (the "The quick brown fox" example, keys K1|K2|K3).
func TestDES3KnownAnswer(t *testing.T) {
	key := mustHex(t, "0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
	pt := []byte("The qufck brown fox jump")
	want := mustHex(t, "A826FD8CE53B855FCCE21C8112256FE668D5C05DD9B6B900")
	k := secretKeyOf(t, ck.CKK_DES3, key)
	enc, err := regMech(t, ck.CKM_DES3_ECB).Encrypt(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := enc.OneShot(nil, pt)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("3DES-ECB %X, %v; want %X", got, err, want)
	}
}
