package hsm

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm/ck"
)

// BenchmarkSignDuringLogins measures what logins on a token cost the other
// sessions of that token: one session finds its key by label and signs
// (C_FindObjectsInit/C_FindObjects/C_SignInit/C_Sign, as a TLS server's
// PKCS#11 engine does per handshake) while another session logs in over
// and over — context-specific logins for a CKA_ALWAYS_AUTHENTICATE key,
// the login an application repeats in normal use — with the default PIN
// KDF cost (PBKDF2, 210,000 iterations). "quiet" runs without the login
// loop. A token whose write lock is held for the KDF stalls every search
// for the length of a login; this one runs the KDF unlocked.
//
//	go test -run XXX -bench SignDuringLogins -benchtime 3s ./hsm
func BenchmarkSignDuringLogins(b *testing.B) {
	for _, loop := range []bool{false, true} {
		name := "quiet"
		if loop {
			name = "login-loop"
		}
		b.Run(name, func(b *testing.B) {
			st := NewMemoryStorage()
			cfg := DefaultConfig(st) // the real KDF cost
			m, err := New(cfg)
			must(b, err)
			must(b, m.Initialize())
			defer m.Finalize()
			initToken(b, m)
			signer := openRW(b, m, 0)
			must(b, m.Login(signer, ck.CKU_USER, []byte(userPIN)))
			label := []byte("tls-key")
			_, _, err = m.GenerateKeyPair(signer, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
				[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(true)}, {Type: ck.CKA_EC_PARAMS, Value: p256OID}},
				[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(true)}, {Type: ck.CKA_LABEL, Value: label}})
			must(b, err)
			other := openRW(b, m, 0)
			_, auth := genPair(b, m, other, ck.CKM_EC_KEY_PAIR_GEN, []ck.Attribute{
				{Type: ck.CKA_TOKEN, Value: tb(false)}, {Type: ck.CKA_EC_PARAMS, Value: p256OID}},
				ck.Attribute{Type: ck.CKA_ALWAYS_AUTHENTICATE, Value: tb(true)})
			var stop atomic.Bool
			var logins atomic.Int64
			var wg sync.WaitGroup
			if loop {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						if err := m.SignInit(other, ck.Mechanism{Type: ck.CKM_ECDSA}, auth); err != nil {
							panic(err)
						}
						if err := m.Login(other, ck.CKU_CONTEXT_SPECIFIC, []byte(userPIN)); err != nil {
							panic(err)
						}
						if _, _, err := m.Sign(other, make([]byte, 32), 128); err != nil {
							panic(err)
						}
						logins.Add(1)
					}
				}()
				time.Sleep(20 * time.Millisecond) // a login is under way
			}
			find := []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_PRIVATE_KEY))}, {Type: ck.CKA_LABEL, Value: label}}
			var worst time.Duration
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				must(b, m.FindObjectsInit(signer, find))
				hs, err := m.FindObjects(signer, 1)
				must(b, err)
				must(b, m.FindObjectsFinal(signer))
				if len(hs) != 1 {
					b.Fatalf("found %d keys", len(hs))
				}
				must(b, m.SignInit(signer, ck.Mechanism{Type: ck.CKM_ECDSA}, hs[0]))
				if _, _, err := m.Sign(signer, make([]byte, 32), 128); err != nil {
					b.Fatal(err)
				}
				worst = max(worst, time.Since(t0))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "signs/s")
			b.ReportMetric(float64(worst.Microseconds()), "worst-µs")
			if loop {
				b.ReportMetric(float64(logins.Load())/elapsed.Seconds(), "logins/s")
			}
		})
	}
}

var p256OID = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
