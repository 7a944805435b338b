package hsm

import (
	"encoding/asn1"
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

// BenchmarkModuleRSA2048SignParallel signs with one key from a session per
// goroutine: the engine must not serialise them (run with -cpu 1,2).
func BenchmarkModuleRSA2048SignParallel(b *testing.B) {
	m, s := userSession(b)
	_, k := genPair(b, m, s, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_MODULUS_BITS, Value: ul(2048)}})
	mt := ck.Mechanism{Type: ck.CKM_SHA256_RSA_PKCS}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ps, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if err := m.SignInit(ps, mt, k); err != nil {
				b.Error(err)
				return
			}
			if _, _, err := m.Sign(ps, []byte("data"), 1024); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkModuleEd25519SignParallel: one key, a session per goroutine
// (run with -cpu 1,2 to see the engine scale).
func BenchmarkModuleEd25519SignParallel(b *testing.B) {
	m, s := userSession(b)
	params, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 101, 112})
	_, k := genPair(b, m, s, ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: params}})
	msg := make([]byte, 32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ps, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if err := m.SignInit(ps, ck.Mechanism{Type: ck.CKM_EDDSA}, k); err != nil {
				b.Error(err)
				return
			}
			if _, _, err := m.Sign(ps, msg, 1024); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkModuleMLKEM768EncapsParallel encapsulates to a session AES-256
// key and destroys it, a session per goroutine: the key object's life is
// what the engine adds to the KEM (run with -cpu 1,2).
func BenchmarkModuleMLKEM768EncapsParallel(b *testing.B) {
	m, s := userSession(b)
	pub, _ := mlkemPair(b, m, s, ck.CKP_ML_KEM_768)
	tmpl := aesKeyTemplate(ck.Attribute{Type: ck.CKA_VALUE_LEN, Value: ul(32)})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ps, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
		if err != nil {
			b.Error(err)
			return
		}
		ct := make([]byte, 2048)
		for pb.Next() {
			_, kh, err := m.EncapsulateKey(ps, kemMech, pub, tmpl, ct)
			if err != nil {
				b.Error(err)
				return
			}
			if err := m.DestroyObject(ps, kh); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
