package audit

import (
	"unicode/utf8"
	"unsafe"
)

// Redactable is response data that writes its own redaction, without the
// JSON round trip of Body: the hot responses (gateway/server), whose
// shape is known. It must write exactly what the redaction of its JSON
// encoding would be — members of each object sorted by name, every
// string HMAC'd with Redactor.HMAC unless under a PlainFields member
// (Redactor.Plain), numbers and booleans as encoding/json writes them —
// and may decline (false) for any value it cannot, e.g. a string that is
// not valid UTF-8. gateway/server's differential test holds its types to
// that.
type Redactable interface {
	AppendRedacted(dst []byte, r Redactor) ([]byte, bool)
}

// Redactor writes a Redactable's strings under the log's key (a pooled
// redactor's HMAC state and sum buffer).
type Redactor struct{ r *redactor }

// HMAC appends s as the redaction writes a secret string: the quoted
// HashPrefix + hex HMAC. ok is false for invalid UTF-8 (the JSON round
// trip would have replaced it first): the caller declines.
func (r Redactor) HMAC(dst []byte, s string) ([]byte, bool) {
	if !utf8.ValidString(s) {
		return dst, false
	}
	const hexd = "0123456789abcdef"
	m := r.r.mac
	m.Reset()
	m.Write(stringBytes(s))
	out := m.Sum(r.r.sum[:0])
	dst = append(dst, '"')
	dst = append(dst, HashPrefix...)
	for _, c := range out {
		dst = append(dst, hexd[c>>4], hexd[c&0xf])
	}
	return append(dst, '"'), true
}

// Plain appends s as the redaction writes a plain string (error
// messages). ok is false for invalid UTF-8.
func (r Redactor) Plain(dst []byte, s string) ([]byte, bool) {
	if !utf8.ValidString(s) {
		return dst, false
	}
	return appendString(dst, stringBytes(s), isSimple(stringBytes(s))), true
}

// stringBytes is s's bytes without a copy, for hashing only (the hash
// neither keeps nor changes them).
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
