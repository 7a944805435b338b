package audit

import (
	"bytes"
	"encoding/json"
	"hash"
	"slices"
	"sync"
	"unicode/utf8"
)

// The redaction of a raw body (a request body, a response's data): one pass
// over the bytes with a strict JSON scanner that copies the structure and
// replaces the strings, instead of decoding the body into generic values
// and encoding them again. Its output is byte for byte what redactValue
// writes for the value encoding/json's Decoder (UseNumber) produces from
// the body: members of each object sorted by their decoded names, the last
// of duplicate names kept, numbers as written, every string HMAC'd unless
// under a PlainFields member; and it accepts exactly the bodies that
// decoder accepts as one JSON object (including its leniency: after the
// object, whitespace then nothing, or then ']' or '}', which Decoder.More
// reports as the end). FuzzRedactDifferential holds it to that.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// member is one object member during a redaction: its decoded name and
// where its redacted value sits in the output.
type member struct {
	name     []byte
	from, to int
}

// redactor is one redaction's state; pooled with its buffers.
type redactor struct {
	in    []byte
	pos   int
	depth int
	out   []byte
	tmp   []byte
	mems  []member
	mac   hash.Hash
	sum   [32]byte
	names [][]byte // decoded names of this redaction (escaped ones)
}

var redactors = sync.Pool{New: func() any { return new(redactor) }}

// appendRedacted appends the redaction of body (a JSON object) to dst.
// ok is false (and dst is returned as it was) when body is not one JSON
// object: the caller records its HMAC instead.
func (h *hasher) appendRedacted(dst, body []byte) ([]byte, bool) {
	r := redactors.Get().(*redactor)
	m := h.pool.Get().(hash.Hash)
	r.in, r.pos, r.depth, r.out, r.mac = body, 0, 0, dst, m
	ok := r.top()
	out := r.out
	h.pool.Put(m)
	r.in, r.out, r.mac = nil, nil, nil
	clear(r.mems[:cap(r.mems)])
	r.mems = r.mems[:0]
	clear(r.names)
	r.names = r.names[:0]
	if cap(r.tmp) <= 1<<20 {
		redactors.Put(r)
	}
	if !ok {
		return dst, false
	}
	return out, true
}

func (r *redactor) ws() {
	for r.pos < len(r.in) {
		switch r.in[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// top: whitespace, one object, then what Decoder.More calls the end.
func (r *redactor) top() bool {
	r.ws()
	if r.pos >= len(r.in) || r.in[r.pos] != '{' {
		return false
	}
	if !r.value(false) {
		return false
	}
	r.ws()
	return r.pos >= len(r.in) || r.in[r.pos] == ']' || r.in[r.pos] == '}'
}

// value scans one value at pos and appends its redaction.
func (r *redactor) value(plain bool) bool {
	r.ws()
	if r.pos >= len(r.in) {
		return false
	}
	switch c := r.in[r.pos]; {
	case c == '{':
		return r.object(plain)
	case c == '[':
		return r.array(plain)
	case c == '"':
		s, simple, ok := r.str()
		if !ok {
			return false
		}
		if !simple {
			s = r.unquote(s)
		}
		if plain {
			r.out = appendString(r.out, s, simple)
		} else {
			r.out = r.appendHash(r.out, s)
		}
		return true
	case c == '-' || c >= '0' && c <= '9':
		start := r.pos
		if !r.number() {
			return false
		}
		r.out = append(r.out, r.in[start:r.pos]...)
		return true
	case c == 't':
		return r.lit("true")
	case c == 'f':
		return r.lit("false")
	case c == 'n':
		return r.lit("null")
	}
	return false
}

func (r *redactor) lit(s string) bool {
	if !bytes.HasPrefix(r.in[r.pos:], []byte(s)) {
		return false
	}
	r.pos += len(s)
	r.out = append(r.out, s...)
	return true
}

// number scans JSON's number grammar.
func (r *redactor) number() bool {
	in, p := r.in, r.pos
	if in[p] == '-' {
		p++
	}
	if p >= len(in) {
		return false
	}
	switch {
	case in[p] == '0':
		p++
	case in[p] >= '1' && in[p] <= '9':
		for p < len(in) && in[p] >= '0' && in[p] <= '9' {
			p++
		}
	default:
		return false
	}
	if p < len(in) && in[p] == '.' {
		p++
		q := p
		for p < len(in) && in[p] >= '0' && in[p] <= '9' {
			p++
		}
		if p == q {
			return false
		}
	}
	if p < len(in) && (in[p] == 'e' || in[p] == 'E') {
		p++
		if p < len(in) && (in[p] == '+' || in[p] == '-') {
			p++
		}
		q := p
		for p < len(in) && in[p] >= '0' && in[p] <= '9' {
			p++
		}
		if p == q {
			return false
		}
	}
	r.pos = p
	return true
}

// str scans a string literal at pos (at its opening quote). simple: no
// escapes and only printable ASCII, so the bytes between the quotes are
// the decoded string and need no escaping on output; otherwise s is the
// whole literal, quotes included, for unquote.
func (r *redactor) str() (s []byte, simple, ok bool) {
	in := r.in
	start := r.pos
	p := start + 1
	simple = true
	for {
		for p < len(in) && plainByte[in[p]] {
			p++ // printable ASCII but '"' and '\\': the common case
		}
		if p >= len(in) {
			return nil, false, false
		}
		c := in[p]
		switch {
		case c == '"':
			r.pos = p + 1
			if simple {
				return in[start+1 : p], true, true
			}
			return in[start : p+1], false, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			simple = false
			p++
			if p >= len(in) {
				return nil, false, false
			}
			switch in[p] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p++
			case 'u':
				if p+4 >= len(in) {
					return nil, false, false
				}
				for _, h := range in[p+1 : p+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, false, false
					}
				}
				p += 5
			default:
				return nil, false, false
			}
		default:
			if c >= 0x7f {
				simple = false
			}
			p++
		}
	}
}

// plainByte: printable ASCII other than '"' and '\\' (a simple string's
// bytes, which str skips without looking further).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unquote decodes a validated literal exactly as encoding/json does
// (invalid UTF-8 and lone surrogates become U+FFFD). The rare path.
func (r *redactor) unquote(lit []byte) []byte {
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		// Cannot happen for a literal str accepted; record nothing of it.
		s = ""
	}
	b := []byte(s)
	r.names = append(r.names, b)
	return b
}

func (r *redactor) array(plain bool) bool {
	if r.depth++; r.depth > maxDepth {
		return false
	}
	r.pos++ // [
	r.out = append(r.out, '[')
	r.ws()
	if r.pos < len(r.in) && r.in[r.pos] == ']' {
		r.pos++
		r.out = append(r.out, ']')
		r.depth--
		return true
	}
	for {
		if !r.value(plain) {
			return false
		}
		r.ws()
		if r.pos >= len(r.in) {
			return false
		}
		switch r.in[r.pos] {
		case ',':
			r.pos++
			r.out = append(r.out, ',')
		case ']':
			r.pos++
			r.out = append(r.out, ']')
			r.depth--
			return true
		default:
			return false
		}
	}
}

func (r *redactor) object(plain bool) bool {
	if r.depth++; r.depth > maxDepth {
		return false
	}
	r.pos++ // {
	start := len(r.out)
	base := len(r.mems)
	r.ws()
	if r.pos < len(r.in) && r.in[r.pos] == '}' {
		r.pos++
		r.out = append(r.out, '{', '}')
		r.depth--
		return true
	}
	for {
		r.ws()
		if r.pos >= len(r.in) || r.in[r.pos] != '"' {
			return false
		}
		name, simple, ok := r.str()
		if !ok {
			return false
		}
		if !simple {
			name = r.unquote(name)
		}
		r.ws()
		if r.pos >= len(r.in) || r.in[r.pos] != ':' {
			return false
		}
		r.pos++
		from := len(r.out)
		if !r.value(plain || PlainFields[string(name)]) {
			return false
		}
		r.mems = append(r.mems, member{name: name, from: from, to: len(r.out)})
		r.ws()
		if r.pos >= len(r.in) {
			return false
		}
		if r.in[r.pos] == ',' {
			r.pos++
			continue
		}
		if r.in[r.pos] != '}' {
			return false
		}
		r.pos++
		break
	}
	// Sort by name (stable: the last of equal names is last), keep the
	// last of each name, and write the object in that order.
	ms := r.mems[base:]
	if len(ms) > 1 {
		slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.name, b.name) })
	}
	t := append(r.tmp[:0], '{')
	first := true
	for i, m := range ms {
		if i+1 < len(ms) && bytes.Equal(ms[i+1].name, m.name) {
			continue
		}
		if !first {
			t = append(t, ',')
		}
		first = false
		t = appendString(t, m.name, isSimple(m.name))
		t = append(t, ':')
		t = append(t, r.out[m.from:m.to]...)
	}
	t = append(t, '}')
	r.tmp = t
	r.out = append(r.out[:start], t...)
	r.mems = r.mems[:base]
	r.depth--
	return true
}

// isSimple: printable ASCII without '"' or '\\': written as is.
func isSimple(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendHash appends the quoted HashPrefix + hex(HMAC(s)).
func (r *redactor) appendHash(dst, s []byte) []byte {
	const hexd = "0123456789abcdef"
	r.mac.Reset()
	r.mac.Write(s)
	sum := r.mac.Sum(r.sum[:0])
	dst = append(dst, '"')
	dst = append(dst, HashPrefix...)
	for _, c := range sum {
		dst = append(dst, hexd[c>>4], hexd[c&0xf])
	}
	return append(dst, '"')
}

// appendString is writeString appending to a slice; simple says s needs no
// escaping.
func appendString(dst, s []byte, simple bool) []byte {
	if simple {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	const hexd = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, "\ufffd"...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, '\\', 'u', '2', '0', '2', hexd[r&0xf])
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
