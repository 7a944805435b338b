package server

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/gohsm/gohsm/gateway/audit"
)

// BenchmarkGate is one encrypt of 64 bytes through the whole gate
// (routing, token lookup, ACL, audit request and response records,
// engine on the in-process token, envelope), without the network: the
// HTTP layer's own cost beside the engine's. Compare audit=none with the
// engine's own benchmark (gateway/transit) for the gate's share.
func BenchmarkGate(b *testing.B) {
	for _, mode := range []struct {
		name string
		sync audit.SyncMode
		off  bool
	}{{"audit=none", 0, true}, {"audit=fsync", audit.SyncAlways, false}, {"audit=nosync", audit.SyncNone, false}} {
		b.Run(mode.name, func(b *testing.B) {
			g := newGW(b, gwOpts{noAudit: true, configure: func(c *Config) {
				if !mode.off {
					l, err := audit.OpenWith(b.TempDir()+"/a.log", auditKey, audit.Options{Sync: mode.sync})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { l.Close() })
					c.Audit = l
				}
			}})
			body := mustJSON(map[string]any{"plaintext": b64(string(make([]byte, 64)))})
			remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
			do := func() int {
				var req fasthttp.Request
				req.Header.SetMethod("POST")
				req.SetRequestURI("/v1/transit/encrypt/bench")
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
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if st := do(); st != 200 {
						b.Error(st)
						return
					}
				}
			})
		})
	}
}
