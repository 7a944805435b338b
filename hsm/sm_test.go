package hsm

import (
	"bytes"
	"encoding/asn1"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// The SM families through the Module API, with the default profile's codes.

func smMech(t testing.TB, name string) ck.MechanismType {
	t.Helper()
	mt, ok := ck.DefaultProfile.Mechanism(name)
	if !ok {
		t.Fatalf("default profile has no %s", name)
	}
	return mt
}

func TestSM4ThroughModule(t *testing.T) {
	m, s := userSession(t)
	k, err := m.GenerateKey(s, ck.Mechanism{Type: smMech(t, "CKM_SM4_KEY_GEN")}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ul(16)}})
	must(t, err)
	data := bytes.Repeat([]byte("sm4-data"), 13)
	for _, mt := range []ck.Mechanism{
		{Type: smMech(t, "CKM_SM4_CBC_PAD"), Param: make([]byte, 16)},
		{Type: smMech(t, "CKM_SM4_GCM"), Param: &ck.GCMParams{IV: make([]byte, 12), AAD: []byte("a"), TagBits: 128}},
		{Type: smMech(t, "CKM_SM4_CTR"), Param: &ck.CTRParams{CounterBits: 32}},
	} {
		must(t, m.EncryptInit(s, mt, k))
		ct, _, err := m.Encrypt(s, data, 1024)
		must(t, err)
		must(t, m.DecryptInit(s, mt, k))
		pt, _, err := m.Decrypt(s, ct, 1024)
		must(t, err)
		if !bytes.Equal(pt, data) {
			t.Fatalf("%v: round trip failed", mt.Type)
		}
	}
}

func TestSM2ThroughModule(t *testing.T) {
	m, s := userSession(t)
	oid, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301})
	pub, priv, err := m.GenerateKeyPair(s, ck.Mechanism{Type: smMech(t, "CKM_SM2_KEY_PAIR_GEN")},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: oid}}, nil)
	must(t, err)
	sign := ck.Mechanism{Type: smMech(t, "CKM_SM3_SM2")}
	msg := []byte("message digest")
	must(t, m.SignInit(s, sign, priv))
	must(t, m.SignUpdate(s, msg[:5]))
	must(t, m.SignUpdate(s, msg[5:]))
	sig, _, err := m.SignFinal(s, 128)
	must(t, err)
	if len(sig) != 64 {
		t.Fatalf("SM2 signature of %d bytes", len(sig))
	}
	must(t, m.VerifyInit(s, sign, pub))
	must(t, m.Verify(s, msg, sig))
	sig[10] ^= 1
	must(t, m.VerifyInit(s, sign, pub))
	wantRV(t, m.Verify(s, msg, sig), ck.CKR_SIGNATURE_INVALID)

	enc := ck.Mechanism{Type: smMech(t, "CKM_SM2_ENCRYPT")}
	must(t, m.EncryptInit(s, enc, pub))
	_, need, err := m.Encrypt(s, msg, -1)
	must(t, err)
	if need != len(msg)+97 {
		t.Fatalf("SM2 ciphertext size %d, want %d (C1C3C2)", need, len(msg)+97)
	}
	ct, _, err := m.Encrypt(s, msg, need)
	must(t, err)
	must(t, m.DecryptInit(s, enc, priv))
	pt, _, err := m.Decrypt(s, ct, need)
	must(t, err)
	if !bytes.Equal(pt, msg) {
		t.Fatal("SM2 decrypt failed")
	}
	must(t, m.DigestInit(s, ck.Mechanism{Type: smMech(t, "CKM_SM3")}))
	d, _, err := m.Digest(s, []byte("abc"), 32)
	must(t, err)
	// GB/T 32905-2016 example 1.
	want := []byte{0x66, 0xc7, 0xf0, 0xf4, 0x62, 0xee, 0xed, 0xd9, 0xd1, 0xf2, 0xd4, 0x6b, 0xdc, 0x10, 0xe4, 0xe2,
		0x41, 0x67, 0xc4, 0x87, 0x5c, 0xf2, 0xf7, 0xa2, 0x29, 0x7d, 0xa0, 0x2b, 0x8f, 0x4b, 0xa8, 0xe0}
	if !bytes.Equal(d, want) {
		t.Fatalf("SM3(abc) = %x", d)
	}
}
