package audit

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// benchBodies are the gateway's hot records: an encrypt request and its
// response at batch 1 and batch 100.
func benchBodies() map[string][]byte {
	pt := base64.StdEncoding.EncodeToString(make([]byte, 64))
	ct := "vault:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 64+28))
	var req, resp strings.Builder
	req.WriteString(`{"batch_input":[`)
	resp.WriteString(`{"batch_results":[`)
	for i := 0; i < 100; i++ {
		if i > 0 {
			req.WriteByte(',')
			resp.WriteByte(',')
		}
		fmt.Fprintf(&req, `{"plaintext":%q,"reference":"r%d"}`, pt, i)
		fmt.Fprintf(&resp, `{"ciphertext":%q,"key_version":1,"reference":"r%d"}`, ct, i)
	}
	req.WriteString(`]}`)
	resp.WriteString(`]}`)
	return map[string][]byte{
		"req1":    []byte(`{"plaintext":"` + pt + `"}`),
		"resp1":   []byte(`{"ciphertext":"` + ct + `","key_version":1}`),
		"req100":  []byte(req.String()),
		"resp100": []byte(resp.String()),
	}
}

func BenchmarkRedact(b *testing.B) {
	h := newHasher(testKey)
	for _, name := range []string{"req1", "resp1", "req100", "resp100"} {
		body := benchBodies()[name]
		b.Run(name+"/scan", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var buf []byte
			for b.Loop() {
				var ok bool
				if buf, ok = h.appendRedacted(buf[:0], body); !ok {
					b.Fatal("not redacted")
				}
			}
		})
		b.Run(name+"/generic", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, ok := h.redactJSONRef(body); !ok {
					b.Fatal("not redacted")
				}
			}
		})
	}
}

// BenchmarkWriteBatch is one batch-100 request record and its response
// record, without fsync: the audit cost per batch.
func BenchmarkWriteBatch(b *testing.B) {
	l, _ := OpenWith(filepath.Join(b.TempDir(), "gw.log"), testKey, Options{Sync: SyncNone})
	defer l.Close()
	bs := benchBodies()
	auth := &Auth{ClientToken: "hvs.abcdefabcdefabcdefabcdef", Accessor: "acc", DisplayName: "root", Policies: []string{"root"}, TokenType: "service"}
	b.ReportAllocs()
	for b.Loop() {
		l.Write(Entry{Type: TypeRequest, ID: "id", Path: "transit/encrypt/k", Auth: auth, Body: bs["req100"], Deferred: true})
		l.Write(Entry{Type: TypeResponse, ID: "id", Path: "transit/encrypt/k", Auth: auth, Body: bs["resp100"], Status: 200})
	}
}
