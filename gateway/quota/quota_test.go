package quota

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func fixedClock(l *Limiter) *time.Time {
	now := l.epoch
	l.now = func() time.Time { return now }
	return &now
}

func TestBurstThenRate(t *testing.T) {
	l := New(Config{Default: Limit{Rate: 10, Burst: 5}})
	now := fixedClock(l)
	for i := 0; i < 5; i++ {
		if d := l.AllowToken("a", nil); !d.OK || d.Remaining != 4-i {
			t.Fatalf("request %d: %+v", i+1, d)
		}
	}
	d := l.AllowToken("a", nil)
	if d.OK || d.RetryAfter != 100*time.Millisecond || RetryAfterHeader(d.RetryAfter) != "1" {
		t.Fatalf("6th: %+v", d)
	}
	// Another token has its own bucket.
	if !l.AllowToken("b", nil).OK {
		t.Fatal("b limited by a's bucket")
	}
	*now = now.Add(100 * time.Millisecond)
	if !l.AllowToken("a", nil).OK || l.AllowToken("a", nil).OK {
		t.Fatal("one request per 100 ms after the burst")
	}
	*now = now.Add(time.Second)
	if l.Sweep() != 2 || l.Len() != 0 {
		t.Fatalf("sweep left %d buckets", l.Len())
	}
}

func TestLimitResolution(t *testing.T) {
	l := New(Config{
		Default:   Limit{Rate: 1},
		PerPolicy: map[string]Limit{"slow": {Rate: 2}, "fast": {Rate: 100, Burst: 10}, "free": {}},
		PerToken:  map[string]Limit{"vip": {Rate: 1000}},
		Exempt:    []string{"root"},
	})
	cases := []struct {
		acc  string
		pols []string
		want Limit
	}{
		{"x", nil, Limit{Rate: 1}},
		{"x", []string{"slow"}, Limit{Rate: 2}},
		{"x", []string{"slow", "fast"}, Limit{Rate: 100, Burst: 10}},
		{"x", []string{"slow", "free"}, Limit{}},
		{"x", []string{"root", "slow"}, Limit{}},
		{"vip", []string{"slow"}, Limit{Rate: 1000}},
	}
	for _, c := range cases {
		if got := l.LimitFor(c.acc, c.pols); got != c.want {
			t.Errorf("%s %v: %+v, want %+v", c.acc, c.pols, got, c.want)
		}
	}
	if !(Limit{}).Unlimited() || (Limit{Rate: 1}).Unlimited() {
		t.Error("Unlimited")
	}
}

// TestConcurrentExact: many goroutines on one bucket get exactly the burst.
func TestConcurrentExact(t *testing.T) {
	l := New(Config{Default: Limit{Rate: 0.001, Burst: 100}})
	fixedClock(l)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if l.AllowToken("t", nil).OK {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 100 {
		t.Fatalf("%d allowed, want the burst of 100", ok.Load())
	}
}

func TestLimitChangeKeepsDebt(t *testing.T) {
	l := New(Config{Default: Limit{Rate: 1, Burst: 2}})
	fixedClock(l)
	l.AllowToken("t", nil)
	l.AllowToken("t", nil)
	l.SetConfig(Config{Default: Limit{Rate: 1, Burst: 3}})
	if d := l.AllowToken("t", nil); !d.OK {
		t.Fatalf("raised burst: %+v", d)
	}
	if d := l.AllowToken("t", nil); d.OK {
		t.Fatal("debt forgotten across a limit change")
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(Config{Default: Limit{Rate: 1e12, Burst: 1 << 30}})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.AllowToken("t", nil)
		}
	})
}
