package server

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/token"
)

// BenchmarkGateOps is the benchmark's four cells (encrypt 64 B and ECDSA
// P-256 sign, batch 1 and 100) through the whole gate and the real token
// pool (gateway/pool) on an in-process token, without the network, the
// audit log written but not fsynced (the fsync is the kernel's cost, not
// the gateway's). cpu-µs/item is the process's user+system CPU per item
// (getrusage), which holds under a loaded machine better than ns/op.
func BenchmarkGateOps(b *testing.B) {
	for _, op := range []struct {
		name, path, create string
		item               map[string]any
	}{
		{"encrypt", "/v1/transit/encrypt/bench", "", map[string]any{"plaintext": b64(string(make([]byte, 64)))}},
		{"sign", "/v1/transit/sign/bench", `{"type":"ecdsa-p256"}`, map[string]any{"input": b64(string(make([]byte, 32)))}},
	} {
		for _, batch := range []int{1, 100} {
			b.Run(op.name+"/batch="+strconv.Itoa(batch), func(b *testing.B) {
				g := newGW(b, gwOpts{noAudit: true,
					token: func(t testing.TB) token.Token { return gwtest.Token(t, gwtest.Store(t, "gw"), "gw") },
					configure: func(c *Config) {
						l, err := audit.OpenWith(b.TempDir()+"/a.log", auditKey, audit.Options{Sync: audit.SyncNone})
						if err != nil {
							b.Fatal(err)
						}
						b.Cleanup(func() { l.Close() })
						c.Audit = l
					}})
				if op.create != "" {
					if st, m, _ := g.do(b, "POST", "/v1/transit/keys/bench", g.root, []byte(op.create)); st >= 300 {
						b.Fatal(st, m)
					}
				}
				var body []byte
				if batch == 1 {
					body = mustJSON(op.item)
				} else {
					items := make([]map[string]any, batch)
					for i := range items {
						items[i] = op.item
					}
					body = mustJSON(map[string]any{"batch_input": items})
				}
				remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
				do := func() int {
					var req fasthttp.Request
					req.Header.SetMethod("POST")
					req.SetRequestURI(op.path)
					req.Header.Set("X-Vault-Token", g.root)
					req.SetBody(body)
					var ctx fasthttp.RequestCtx
					ctx.Init(&req, remote, nil)
					g.s.handle(&ctx)
					return ctx.Response.StatusCode()
				}
				if st := do(); st != 200 {
					b.Fatal(st)
				}
				b.ReportAllocs()
				cpu0, t0 := cpuTime(), time.Now()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if st := do(); st != 200 {
							b.Error(st)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*batch), "cpu-µs/item")
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Since(t0)), "cores")
			})
		}
	}
}

// cpuTime is the process's user+system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
