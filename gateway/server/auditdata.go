package server

import (
	"strconv"

	"github.com/gohsm/gohsm/gateway/audit"
	"github.com/gohsm/gohsm/gateway/transit"
)

// hotData is a hot response's data as the audit log's response record
// takes it (audit.Redactable): its redaction written straight from the
// struct, members in name order, instead of scanning the JSON just
// written. Byte for byte the redaction of that JSON
// (TestAuditDataDifferential, FuzzAuditDataDifferential).
type hotData struct{ v any }

// redacting builds one redacted object; ok turns false when a string
// cannot be written (invalid UTF-8), and the record falls back to the
// JSON.
type redacting struct {
	b     []byte
	r     audit.Redactor
	ok    bool
	start int
}

func (w *redacting) open() { w.b = append(w.b, '{'); w.start = len(w.b) }

func (w *redacting) close() { w.b = append(w.b, '}') }

func (w *redacting) key(name string) {
	if len(w.b) > w.start {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
}

// secret is an omitempty string member, HMAC'd.
func (w *redacting) secret(name, v string) {
	if v == "" || !w.ok {
		return
	}
	w.key(name)
	w.b, w.ok = w.r.HMAC(w.b, v)
}

// plain is an omitempty string member of PlainFields ("error").
func (w *redacting) plain(name, v string) {
	if v == "" || !w.ok {
		return
	}
	w.key(name)
	w.b, w.ok = w.r.Plain(w.b, v)
}

func (w *redacting) int(name string, v int) {
	if v == 0 {
		return
	}
	w.key(name)
	w.b = strconv.AppendInt(w.b, int64(v), 10)
}

func (w *redacting) bool(name string, v bool) {
	w.key(name)
	w.b = strconv.AppendBool(w.b, v)
}

// list writes "batch_results":[...] when n > 0, item(i) writing each.
func (w *redacting) list(n int, item func(i int)) {
	if n == 0 {
		return
	}
	w.key("batch_results")
	w.b = append(w.b, '[')
	outer := w.start
	for i := 0; i < n; i++ {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.open()
		item(i)
		w.close()
	}
	w.b = append(w.b, ']')
	w.start = outer
}

// AppendRedacted writes the members of each type sorted by name, as the
// redaction of its JSON sorts them.
func (d hotData) AppendRedacted(dst []byte, r audit.Redactor) ([]byte, bool) {
	w := &redacting{b: dst, r: r, ok: true}
	w.open()
	switch v := d.v.(type) {
	case *transit.EncryptResponse:
		w.list(len(v.BatchResults), func(i int) {
			it := &v.BatchResults[i]
			w.secret("ciphertext", it.Ciphertext)
			w.plain("error", it.Error)
			w.int("key_version", it.KeyVersion)
			w.secret("reference", it.Reference)
		})
		w.secret("ciphertext", v.Ciphertext)
		w.int("key_version", v.KeyVersion)
	case *transit.DecryptResponse:
		w.list(len(v.BatchResults), func(i int) {
			it := &v.BatchResults[i]
			w.plain("error", it.Error)
			if it.Plaintext != nil {
				w.key("plaintext")
				w.b, w.ok = w.r.HMAC(w.b, *it.Plaintext)
			}
			w.secret("reference", it.Reference)
		})
		if v.Plaintext != nil && w.ok {
			w.key("plaintext")
			w.b, w.ok = w.r.HMAC(w.b, *v.Plaintext)
		}
	case *transit.SignResponse:
		w.list(len(v.BatchResults), func(i int) {
			it := &v.BatchResults[i]
			w.plain("error", it.Error)
			w.int("key_version", it.KeyVersion)
			w.secret("publickey", it.PublicKey)
			w.secret("reference", it.Reference)
			w.secret("signature", it.Signature)
		})
		w.int("key_version", v.KeyVersion)
		w.secret("signature", v.Signature)
	case *transit.VerifyResponse:
		w.list(len(v.BatchResults), func(i int) {
			it := &v.BatchResults[i]
			w.plain("error", it.Error)
			w.secret("reference", it.Reference)
			w.bool("valid", it.Valid)
		})
		w.bool("valid", v.Valid)
	case *transit.HMACResponse:
		w.list(len(v.BatchResults), func(i int) {
			it := &v.BatchResults[i]
			w.plain("error", it.Error)
			w.secret("hmac", it.HMAC)
			w.secret("reference", it.Reference)
		})
		w.secret("hmac", v.HMAC)
	default:
		return dst, false
	}
	w.close()
	if !w.ok {
		return dst, false
	}
	return w.b, true
}
