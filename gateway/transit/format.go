package transit

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// The versioned string format of ciphertexts, signatures and HMACs:
// prefix "v" version ":" payload, e.g. vault:v3:<base64>. The version
// names the key version, so rotation never breaks old data.

func (e *Engine) format(v int, payload string) string {
	return e.prefix + "v" + strconv.Itoa(v) + ":" + payload
}

// format64 is format(v, enc64(raw)) in one allocation (per batch item on
// the hot path).
func (e *Engine) format64(v int, raw []byte) string {
	var num [20]byte
	n := strconv.AppendInt(num[:0], int64(v), 10)
	var b strings.Builder
	b.Grow(len(e.prefix) + 2 + len(n) + base64.StdEncoding.EncodedLen(len(raw)))
	b.WriteString(e.prefix)
	b.WriteByte('v')
	b.Write(n)
	b.WriteByte(':')
	var chunk [512]byte // 384 bytes of input a time, encoded on the stack
	for len(raw) > 0 {
		k := min(len(raw), 384)
		base64.StdEncoding.Encode(chunk[:], raw[:k])
		b.Write(chunk[:base64.StdEncoding.EncodedLen(k)])
		raw = raw[k:]
	}
	return b.String()
}

// parseVersioned splits s into version and payload. what names the value
// in errors ("ciphertext", "signature", "hmac"); the value itself is never
// quoted back.
func parseVersioned(prefix, s, what string) (int, string, *Error) {
	if s == "" {
		return 0, "", badRequest("missing %s", what)
	}
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, "", badRequest("invalid %s: it does not start with %q", what, prefix)
	}
	rest, ok = strings.CutPrefix(rest, "v")
	if !ok {
		return 0, "", badRequest("invalid %s: no key version after the prefix", what)
	}
	num, payload, ok := strings.Cut(rest, ":")
	if !ok || num == "" || len(num) > 9 {
		return 0, "", badRequest("invalid %s: malformed key version", what)
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, "", badRequest("invalid %s: malformed key version", what)
		}
	}
	v, _ := strconv.Atoi(num)
	if v < 1 || (len(num) > 1 && num[0] == '0') {
		return 0, "", badRequest("invalid %s: key version %d", what, v)
	}
	if payload == "" {
		return 0, "", badRequest("invalid %s: empty payload", what)
	}
	return v, payload, nil
}

// b64 decodes a standard-base64 field; field names it in the error.
func b64(field, s string) ([]byte, *Error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, badRequest("invalid %s: not valid base64 (%v)", field, err)
	}
	return b, nil
}

func enc64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
