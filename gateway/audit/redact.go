package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"io"
	"sort"
	"strconv"
	"sync"
	"unicode/utf8"
)

// PlainFields are the data members whose string values are recorded as
// written (at any depth, and every string inside them): they say what was
// asked, not what was protected. Everything else that is a string is
// HMAC'd.
var PlainFields = map[string]bool{
	"type": true, "name": true, "hash_algorithm": true, "algorithm": true,
	"signature_algorithm": true, "marshaling_algorithm": true, "salt_length": true,
	"format": true, "source": true, "policies": true, "policy": true, "token_policies": true,
	"display_name": true, "error": true, "errors": true, "description": true, "path": true,
	"ttl": true, "explicit_max_ttl": true, "period": true, "auto_rotate_period": true,
	"kdf": true, "token_type": true,
}

// HashPrefix starts every HMAC'd value.
const HashPrefix = "hmac-sha256:"

// hasher HMACs values under the audit key; HMAC states are pooled.
type hasher struct {
	pool sync.Pool
}

func newHasher(key []byte) *hasher {
	k := append([]byte(nil), key...)
	return &hasher{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

// HashValue is what a record holds for the string s under key: operators
// search a log for a value they know with it.
func HashValue(key []byte, s string) string { return newHasher(key).hash(s) }

func (h *hasher) hash(s string) string {
	return string(h.appendHash(make([]byte, 0, 2+len(HashPrefix)+2*sha256.Size), s)[1 : 1+len(HashPrefix)+2*sha256.Size])
}

// appendHash appends HashPrefix + hex(HMAC-SHA256(key, s)) as a JSON string
// (quotes included; nothing in it needs escaping).
func (h *hasher) appendHash(dst []byte, s any) []byte {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	switch v := s.(type) {
	case string:
		io.WriteString(m, v)
	case []byte:
		m.Write(v)
	}
	var sum [sha256.Size]byte
	out := m.Sum(sum[:0])
	h.pool.Put(m)
	dst = append(dst, '"')
	dst = append(dst, HashPrefix...)
	dst = hex.AppendEncode(dst, out)
	return append(dst, '"')
}

// redactValue HMACs the secrets of an already-decoded value (a response
// struct marshalled and decoded, or a map the caller built).
func (h *hasher) redactValue(v any) json.RawMessage {
	var buf bytes.Buffer
	h.writeValue(&buf, v, false)
	return buf.Bytes()
}

// writeValue writes v as JSON, HMACing strings unless plain. Object keys
// are sorted, so a record's bytes depend only on the data.
func (h *hasher) writeValue(buf *bytes.Buffer, v any, plain bool) {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case json.Number:
		buf.WriteString(x.String())
	case float64:
		buf.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case string:
		if plain {
			writeString(buf, x)
		} else {
			writeString(buf, h.hash(x))
		}
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			h.writeValue(buf, e, plain)
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			h.writeValue(buf, x[k], plain || PlainFields[k])
		}
		buf.WriteByte('}')
	default:
		// Not produced by encoding/json's decoder; record nothing of it.
		buf.WriteString("null")
	}
}

// writeString writes s as a JSON string: \" \\ and \u00XX for control
// characters, invalid UTF-8 as U+FFFD; never a raw newline.
func writeString(buf *bytes.Buffer, s string) {
	const hexd = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case c < 0x20 || c == 0x7f:
				buf.WriteString(`\u00`)
				buf.WriteByte(hexd[c>>4])
				buf.WriteByte(hexd[c&0xf])
			default:
				buf.WriteByte(c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			buf.WriteString("\ufffd")
		} else if r == '\u2028' || r == '\u2029' {
			buf.WriteString(`\u202`)
			buf.WriteByte(hexd[r&0xf])
		} else {
			buf.WriteString(s[i : i+n])
		}
		i += n
	}
	buf.WriteByte('"')
}
