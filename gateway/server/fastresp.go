package server

import (
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/gohsm/gohsm/gateway/transit"
)

// The hot responses' data (encrypt, rewrap, decrypt, sign, verify, hmac)
// are written by hand into a pooled buffer instead of by encoding/json's
// reflection: byte for byte what json.Marshal writes for the same value
// (member order and omitempty of the struct tags, its string escaping
// with HTML escaping on). TestFastDataDifferential and
// FuzzFastDataDifferential hold it to that.

var dataBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// appendData appends v's JSON to dst; false when v is not a hot type.
func appendData(dst []byte, v any) ([]byte, bool) {
	switch r := v.(type) {
	case *transit.EncryptResponse:
		dst = append(dst, '{')
		n := len(dst)
		dst = strMember(dst, n, "ciphertext", r.Ciphertext)
		dst = intMember(dst, n, "key_version", r.KeyVersion)
		if len(r.BatchResults) > 0 {
			dst = key(dst, n, "batch_results")
			dst = append(dst, '[')
			for i := range r.BatchResults {
				if i > 0 {
					dst = append(dst, ',')
				}
				it := &r.BatchResults[i]
				dst = append(dst, '{')
				m := len(dst)
				dst = strMember(dst, m, "ciphertext", it.Ciphertext)
				dst = intMember(dst, m, "key_version", it.KeyVersion)
				dst = strMember(dst, m, "reference", it.Reference)
				dst = strMember(dst, m, "error", it.Error)
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		return append(dst, '}'), true
	case *transit.DecryptResponse:
		dst = append(dst, '{')
		n := len(dst)
		if r.Plaintext != nil {
			dst = key(dst, n, "plaintext")
			dst = appendJSONString(dst, *r.Plaintext)
		}
		if len(r.BatchResults) > 0 {
			dst = key(dst, n, "batch_results")
			dst = append(dst, '[')
			for i := range r.BatchResults {
				if i > 0 {
					dst = append(dst, ',')
				}
				it := &r.BatchResults[i]
				dst = append(dst, '{')
				m := len(dst)
				if it.Plaintext != nil {
					dst = key(dst, m, "plaintext")
					dst = appendJSONString(dst, *it.Plaintext)
				}
				dst = strMember(dst, m, "reference", it.Reference)
				dst = strMember(dst, m, "error", it.Error)
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		return append(dst, '}'), true
	case *transit.SignResponse:
		dst = append(dst, '{')
		n := len(dst)
		dst = strMember(dst, n, "signature", r.Signature)
		dst = intMember(dst, n, "key_version", r.KeyVersion)
		if len(r.BatchResults) > 0 {
			dst = key(dst, n, "batch_results")
			dst = append(dst, '[')
			for i := range r.BatchResults {
				if i > 0 {
					dst = append(dst, ',')
				}
				it := &r.BatchResults[i]
				dst = append(dst, '{')
				m := len(dst)
				dst = strMember(dst, m, "signature", it.Signature)
				dst = intMember(dst, m, "key_version", it.KeyVersion)
				dst = strMember(dst, m, "publickey", it.PublicKey)
				dst = strMember(dst, m, "reference", it.Reference)
				dst = strMember(dst, m, "error", it.Error)
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		return append(dst, '}'), true
	case *transit.VerifyResponse:
		dst = append(dst, `{"valid":`...)
		dst = strconv.AppendBool(dst, r.Valid)
		if len(r.BatchResults) > 0 {
			dst = append(dst, `,"batch_results":[`...)
			for i := range r.BatchResults {
				if i > 0 {
					dst = append(dst, ',')
				}
				it := &r.BatchResults[i]
				dst = append(dst, `{"valid":`...)
				dst = strconv.AppendBool(dst, it.Valid)
				dst = strMember(dst, 0, "reference", it.Reference)
				dst = strMember(dst, 0, "error", it.Error)
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		return append(dst, '}'), true
	case *transit.HMACResponse:
		dst = append(dst, '{')
		n := len(dst)
		dst = strMember(dst, n, "hmac", r.HMAC)
		if len(r.BatchResults) > 0 {
			dst = key(dst, n, "batch_results")
			dst = append(dst, '[')
			for i := range r.BatchResults {
				if i > 0 {
					dst = append(dst, ',')
				}
				it := &r.BatchResults[i]
				dst = append(dst, '{')
				m := len(dst)
				dst = strMember(dst, m, "hmac", it.HMAC)
				dst = strMember(dst, m, "reference", it.Reference)
				dst = strMember(dst, m, "error", it.Error)
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		return append(dst, '}'), true
	}
	return dst, false
}

// key appends "name": after a comma unless the object (which starts at
// start) is still empty.
func key(dst []byte, start int, name string) []byte {
	if len(dst) > start {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

// strMember and intMember are an omitempty member.
func strMember(dst []byte, start int, name, v string) []byte {
	if v == "" {
		return dst
	}
	return appendJSONString(key(dst, start, name), v)
}

func intMember(dst []byte, start int, name string, v int) []byte {
	if v == 0 {
		return dst
	}
	return strconv.AppendInt(key(dst, start, name), int64(v), 10)
}

// appendJSONString is encoding/json's string encoding with HTML escaping:
// \" \\ \b \f \n \r \t, other control characters and < > & as \u00XX,
// U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexd[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
