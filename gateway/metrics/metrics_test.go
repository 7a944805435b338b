package metrics

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSeries(t *testing.T) {
	m := New(Options{NoRuntimeMetrics: true})
	enc := m.Op("encrypt")
	if m.Op("encrypt") != enc {
		t.Fatal("Op is not stable")
	}
	enc.Done(200, 300*time.Microsecond)
	enc.Done(200, 2*time.Millisecond)
	enc.Done(400, time.Millisecond)
	enc.Batch(100)
	m.Observe("sys.health", 200, time.Microsecond)
	m.Observe("odd", 999, time.Microsecond) // outside 100..599: still counted
	m.SetPoolHealth("tok-a", true)
	m.SetPoolHealth("tok-b", false)
	m.PoolRetry("tok-b")
	m.QuotaRejected()
	m.AuditFailure(true)
	m.Coalesced(7)
	var buf bytes.Buffer
	if err := m.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`gohsm_gateway_requests_total{operation="encrypt",status="200"} 2`,
		`gohsm_gateway_requests_total{operation="encrypt",status="400"} 1`,
		`gohsm_gateway_requests_total{operation="odd",status="999"} 1`,
		`gohsm_gateway_request_duration_seconds_bucket{operation="encrypt",status="200",le="0.0005"} 1`,
		`gohsm_gateway_request_duration_seconds_count{operation="encrypt",status="200"} 2`,
		`gohsm_gateway_batch_items_sum{operation="encrypt"} 100`,
		`gohsm_gateway_pool_token_healthy{token="tok-a"} 1`,
		`gohsm_gateway_pool_token_healthy{token="tok-b"} 0`,
		`gohsm_gateway_pool_retries_total{token="tok-b"} 1`,
		`gohsm_gateway_quota_rejected_total 1`,
		`gohsm_gateway_audit_failures_total{kind="response"} 1`,
		`gohsm_gateway_scheduler_batch_items_count 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	m.RemovePoolToken("tok-b")
	buf.Reset()
	m.WriteText(&buf)
	if strings.Contains(buf.String(), "tok-b") {
		t.Error("removed token still reported")
	}
	if !strings.HasPrefix(ContentType, "text/plain") {
		t.Errorf("content type %q", ContentType)
	}
}

func TestRuntimeCollectors(t *testing.T) {
	m := New(Options{})
	var buf bytes.Buffer
	m.WriteText(&buf)
	if !strings.Contains(buf.String(), "process_cpu_seconds_total") || !strings.Contains(buf.String(), "go_goroutines") {
		t.Fatal("no runtime or process metrics")
	}
}

func TestOpDoneAllocs(t *testing.T) {
	m := New(Options{NoRuntimeMetrics: true})
	op := m.Op("encrypt")
	op.Done(200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { op.Done(200, time.Millisecond) }); n != 0 {
		t.Fatalf("Op.Done allocates %v times", n)
	}
}

func BenchmarkOpDone(b *testing.B) {
	m := New(Options{NoRuntimeMetrics: true})
	op := m.Op("encrypt")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op.Done(200, time.Millisecond)
		}
	})
}
