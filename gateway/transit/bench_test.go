package transit

import (
	"testing"
)

// Library-level costs (no HTTP), one in-process token: what the gateway
// adds is measured in bench/.
func benchEncrypt(b *testing.B, batch int) {
	f := newFixture(b, Config{})
	mustOK(f.e.CreateKey(bg, "k", nil))(b)
	pt := b64s(string(make([]byte, 64)))
	req := &EncryptRequest{EncryptItem: EncryptItem{Plaintext: pt}}
	if batch > 1 {
		req = &EncryptRequest{BatchInput: make([]EncryptItem, batch)}
		for i := range req.BatchInput {
			req.BatchInput[i].Plaintext = pt
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.e.Encrypt(bg, "k", req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch)/1e3, "µs/item")
}

func BenchmarkEncrypt64(b *testing.B)         { benchEncrypt(b, 1) }
func BenchmarkEncrypt64Batch100(b *testing.B) { benchEncrypt(b, 100) }

func BenchmarkSignP256(b *testing.B) {
	f := newFixture(b, Config{})
	mustOK(f.e.CreateKey(bg, "k", &CreateKeyRequest{Type: "ecdsa-p256"}))(b)
	req := &SignRequest{SignItem: SignItem{Input: b64s("message")}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.e.Sign(bg, "k", req); err != nil {
			b.Fatal(err)
		}
	}
}
