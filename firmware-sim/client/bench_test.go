package client

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm/ck"
)

// An explicit batch returns one result per call, in order, with a failing
// call not stopping the others.
func TestBatch(t *testing.T) {
	a := newAppliance(t, newStore(t, "alpha"), identities{"app": {"alpha"}}, nil)
	c := a.pipeClient("app")
	s := userSession(t, c, 0)
	pub, priv := ecKey(t, c, s)
	b := c.NewBatch()
	var sigs []*Pending
	for range 100 {
		b.Add("SignInit", s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv)
		sigs = append(sigs, b.Add("Sign", s, make([]byte, 32), 64))
	}
	bad := b.Add("SignInit", s, ck.Mechanism{Type: ck.CKM_ECDSA}, ck.ObjectHandle(999999))
	refused := b.Add("Login", s, ck.CKU_USER, []byte(userPIN))
	last := b.Add("GetSessionInfo", s)
	b.Run()
	for i, p := range sigs {
		sig, err := p.Bytes(0)
		must(t, err)
		must(t, c.VerifyInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, pub))
		if err := c.Verify(s, make([]byte, 32), sig); err != nil {
			t.Fatalf("signature %d: %v", i, err)
		}
	}
	wantRV(t, bad.Err(), ck.CKR_KEY_HANDLE_INVALID)
	wantRV(t, refused.Err(), ck.CKR_FUNCTION_NOT_SUPPORTED)
	must(t, last.Err())
}

// benchSetup is an appliance over TLS on loopback with a logged-in client
// and an EC key.
func benchSetup(b *testing.B, mod ...func(*Config)) (*Client, ck.SessionHandle, ck.ObjectHandle) {
	a := newAppliance(b, newStore(b, "alpha"), identities{"app": {"alpha"}}, nil)
	a.listen()
	c := a.tlsClient("app", mod...)
	s := userSession(b, c, 0)
	_, priv := ecKey(b, c, s)
	return c, s, priv
}

// BenchmarkSignSingle is 1,000 ECDSA P-256 signatures (C_SignInit +
// C_Sign) as single round trips, one after the other, over TLS on loopback.
func BenchmarkSignSingle(b *testing.B) {
	c, s, priv := benchSetup(b)
	b.ResetTimer()
	for range b.N {
		for range 1000 {
			if err := sign(c, s, priv); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*1000), "µs/sign")
}

// BenchmarkSignBatch is the same 1,000 signatures in batch frames, on one
// session (the appliance runs them in order) or spread over 8 (it runs the
// sessions in parallel: what batching independent calls buys).
func BenchmarkSignBatch(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			c, s, priv := benchSetup(b)
			sessions := []ck.SessionHandle{s}
			for len(sessions) < n {
				s, err := c.OpenSession(0, ck.CKF_SERIAL_SESSION)
				must(b, err)
				sessions = append(sessions, s)
			}
			b.ResetTimer()
			for range b.N {
				bt := c.NewBatch()
				var ps []*Pending
				for i := range 1000 {
					s := sessions[i%n]
					bt.Add("SignInit", s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv)
					ps = append(ps, bt.Add("Sign", s, make([]byte, 32), 64))
				}
				bt.Run()
				for i, p := range ps {
					if p.Err() != nil {
						b.Fatalf("sign %d: %v", i, p.Err())
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*1000), "µs/sign")
		})
	}
}

// BenchmarkSignParallel is ECDSA signing from 32 goroutines, each with its
// own session, sharing the client's connection: the case the writer's
// coalescing is for. Sub-benchmarks compare coalescing delays.
func BenchmarkSignParallel(b *testing.B) {
	for _, delay := range []time.Duration{0, 20 * time.Microsecond, 100 * time.Microsecond} {
		b.Run("delay="+delay.String(), func(b *testing.B) {
			c, s0, priv := benchSetup(b, func(cfg *Config) { cfg.CoalesceDelay = delay })
			_ = s0
			const workers = 32
			sessions := make([]ck.SessionHandle, workers)
			for i := range sessions {
				var err error
				sessions[i], err = c.OpenSession(0, ck.CKF_SERIAL_SESSION)
				must(b, err)
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/workers + 1
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						if err := sign(c, sessions[w], priv); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*workers)/b.Elapsed().Seconds(), "signs/s")
		})
	}
}

// BenchmarkRoundTrip is one trivial call (C_GetSessionInfo) per round trip
// over TLS on loopback: the transport's latency.
func BenchmarkRoundTrip(b *testing.B) {
	c, s, _ := benchSetup(b)
	b.ResetTimer()
	for range b.N {
		if _, err := c.GetSessionInfo(s); err != nil {
			b.Fatal(err)
		}
	}
}
