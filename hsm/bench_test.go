package hsm

import (
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Benchmarks of the hot paths through the Module API, to set against the
// raw mechanism benchmarks in hsm/mech: the difference is what the engine
// costs per operation. bench/ measures the same through the C ABI.

func benchSign(b *testing.B, mt ck.Mechanism, gen func(testing.TB, *Module, ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle), data []byte) {
	m, s := userSession(b)
	k, _ := gen(b, m, s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.SignInit(s, mt, k); err != nil {
			b.Fatal(err)
		}
		if _, _, err := m.Sign(s, data, 1024); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkModuleECDSAP256Sign(b *testing.B) {
	benchSign(b, ck.Mechanism{Type: ck.CKM_ECDSA}, signCases()[0].key, make([]byte, 32))
}

func BenchmarkModuleHMACSHA256(b *testing.B) {
	benchSign(b, ck.Mechanism{Type: ck.CKM_SHA256_HMAC}, signCases()[6].key, make([]byte, 4096))
}

func BenchmarkModuleAESGCM64(b *testing.B) {
	m, s := userSession(b)
	k := genSecret(b, m, s, ck.CKM_AES_KEY_GEN, 32)
	mt := ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	data := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.EncryptInit(s, mt, k); err != nil {
			b.Fatal(err)
		}
		if _, _, err := m.Encrypt(s, data, 1024); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkModuleFindOneLabelAmong10k(b *testing.B) {
	m, s := userSession(b)
	for i := 0; i < 10000; i++ {
		if _, err := m.CreateObject(s, dataTemplate("label-"+itoa(i), false, false)); err != nil {
			b.Fatal(err)
		}
	}
	tmpl := []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("label-5016")}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.FindObjectsInit(s, tmpl); err != nil {
			b.Fatal(err)
		}
		hs, err := m.FindObjects(s, 10)
		if err != nil || len(hs) != 1 {
			b.Fatalf("found %d: %v", len(hs), err)
		}
		if err := m.FindObjectsFinal(s); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
