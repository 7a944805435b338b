package server

import (
	"bytes"
	"unicode/utf8"

	"github.com/gohsm/gohsm/gateway/transit"
)

// The hot request bodies (encrypt, decrypt, sign, verify, hmac, with or
// without batch_input) are read by a hand-written decoder instead of
// encoding/json's reflection, which was 16% of the server's CPU at batch
// 100. It is a fast path, not a second parser with its own rules: it
// takes only the bodies whose meaning is plain — known member names
// spelled exactly, strings without escapes in valid UTF-8, numbers in
// strict JSON syntax, booleans, no null, batch_input once — and gives up
// on anything else (an unknown or differently-cased member, an escape,
// a syntax error, a value of the wrong type), and then decodeBody runs
// encoding/json on the body from scratch. So every struct it makes is the
// one encoding/json makes, and every error message is encoding/json's;
// FuzzFastBodyDifferential holds it to that.
//
// Every string of the request is a substring of one copy of the body (one
// allocation per request instead of one per string).

// fastDecode decodes b (trimmed, starting with '{') into v when v is one
// of the hot request types and b is plain; false leaves v zero.
func fastDecode(b []byte, v any) bool {
	d := fdec{b: b}
	switch r := v.(type) {
	case *transit.EncryptRequest:
		return top(&d, r, (*fdec).encrypt)
	case *transit.DecryptRequest:
		return top(&d, r, (*fdec).decrypt)
	case *transit.SignRequest:
		return top(&d, r, (*fdec).sign)
	case *transit.VerifyRequest:
		return top(&d, r, (*fdec).verify)
	case *transit.HMACRequest:
		return top(&d, r, (*fdec).hmac)
	}
	return false
}

// top reads the whole body into *r: one object, then nothing (b is
// trimmed by decodeBody; whitespace is skipped anyway). On failure *r is
// zeroed for encoding/json.
func top[T any](d *fdec, r *T, member func(*fdec, []byte, *T) bool) bool {
	if object(d, r, member) {
		d.ws()
		if d.i == len(d.b) {
			return true
		}
	}
	var zero T
	*r = zero
	return false
}

// fdec is one fast decode: the body, the position, and the body as one
// string whose substrings become the request's strings.
type fdec struct {
	b     []byte
	i     int
	s     string // string(b), made on the first string value
	batch bool   // batch_input seen
}

func (d *fdec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips whitespace and reports whether c is next (consuming it).
func (d *fdec) next(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object reads {"k": v, ...} into *r; member reads the value of each key.
func object[T any](d *fdec, r *T, member func(*fdec, []byte, *T) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		d.ws()
		from, to, ok := d.plain()
		if !ok || !d.next(':') {
			return false
		}
		d.ws()
		if !member(d, d.b[from:to], r) {
			return false
		}
		if d.next(',') {
			continue
		}
		return d.next('}')
	}
}

// plain reads a string at i with no escape, no control character and
// valid UTF-8, and returns where its contents are.
func (d *fdec) plain() (from, to int, ok bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return 0, 0, false
	}
	from = d.i + 1
	high := false
	for j := from; j < len(d.b); j++ {
		c := d.b[j]
		if strClass[c] == 0 {
			continue // printable ASCII but '"' and '\\'
		}
		switch {
		case c == '"':
			if high && !utf8.Valid(d.b[from:j]) {
				return 0, 0, false
			}
			d.i = j + 1
			return from, j, true
		case c >= utf8.RuneSelf:
			high = true
		default: // '\\' or a control character
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// strClass is 0 for the bytes a plain string holds as they are.
var strClass = func() (t [256]byte) {
	for c := range t {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			t[c] = 1
		}
	}
	return t
}()

// str reads a plain string value into *p.
func (d *fdec) str(p *string) bool {
	from, to, ok := d.plain()
	if !ok {
		return false
	}
	if d.s == "" {
		d.s = string(d.b)
	}
	*p = d.s[from:to]
	return true
}

// raw reads a number (strict JSON syntax), a plain string, true or false
// and returns its bytes as encoding/json would hand them to an
// Unmarshaler.
func (d *fdec) raw() ([]byte, bool) {
	if d.i >= len(d.b) {
		return nil, false
	}
	start := d.i
	switch c := d.b[d.i]; {
	case c == '"':
		if _, _, ok := d.plain(); !ok {
			return nil, false
		}
	case c == 't' || c == 'f':
		lit := "true"
		if c == 'f' {
			lit = "false"
		}
		if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
			return nil, false
		}
		d.i += len(lit)
	case c == '-' || c >= '0' && c <= '9':
		if !d.number() {
			return nil, false
		}
	default:
		return nil, false
	}
	return d.b[start:d.i], true
}

// number reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
func (d *fdec) number() bool {
	b := d.b
	if d.i < len(b) && b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(b) && b[d.i] == '0':
		d.i++
	case d.i < len(b) && b[d.i] >= '1' && b[d.i] <= '9':
		for d.i < len(b) && b[d.i] >= '0' && b[d.i] <= '9' {
			d.i++
		}
	default:
		return false
	}
	if d.i < len(b) && b[d.i] == '.' {
		d.i++
		if !d.digits() {
			return false
		}
	}
	if d.i < len(b) && (b[d.i] == 'e' || b[d.i] == 'E') {
		d.i++
		if d.i < len(b) && (b[d.i] == '+' || b[d.i] == '-') {
			d.i++
		}
		if !d.digits() {
			return false
		}
	}
	// A number ends at a delimiter; "1x" is a syntax error.
	return d.i == len(b) || b[d.i] == ',' || b[d.i] == '}' || b[d.i] == ']' ||
		b[d.i] == ' ' || b[d.i] == '\t' || b[d.i] == '\n' || b[d.i] == '\r'
}

func (d *fdec) digits() bool {
	n := 0
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
		n++
	}
	return n > 0
}

// int and boolean hand the raw value to the type's own UnmarshalJSON, as
// encoding/json does; its error sends the body to encoding/json for the
// message.
func (d *fdec) int(p *transit.Int) bool {
	raw, ok := d.raw()
	return ok && p.UnmarshalJSON(raw) == nil
}

func (d *fdec) boolean(p *transit.Bool) bool {
	raw, ok := d.raw()
	return ok && p.UnmarshalJSON(raw) == nil
}

// items reads batch_input into *s: an array of objects, each decoded by
// member. Present once only (a second one would be decoded into the
// first's elements by encoding/json); [] is an empty, non-nil slice, as
// encoding/json makes it.
func items[T any](d *fdec, s *[]T, member func(*fdec, []byte, *T) bool) bool {
	if d.batch || !d.next('[') {
		return false
	}
	d.batch = true
	// As many elements as '{' follow: exact for the bodies clients send
	// (base64 has none); at most 4,096 (the default batch limit) up front,
	// so that a body of braces cannot make a large allocation.
	*s = make([]T, 0, min(max(1, bytes.Count(d.b[d.i:], []byte{'{'})), 4096))
	if d.next(']') {
		return true
	}
	for {
		d.ws()
		var zero T
		*s = append(*s, zero)
		if !object(d, &(*s)[len(*s)-1], member) {
			return false
		}
		if d.next(',') {
			continue
		}
		return d.next(']')
	}
}

// The members of each type, named as its JSON tags (the embedded item's
// members are the request's own, as encoding/json promotes them).

func (d *fdec) encryptItem(k []byte, r *transit.EncryptItem) bool {
	switch string(k) {
	case "plaintext":
		return d.str(&r.Plaintext)
	case "context":
		return d.str(&r.Context)
	case "associated_data":
		return d.str(&r.AssociatedData)
	case "nonce":
		return d.str(&r.Nonce)
	case "key_version":
		return d.int(&r.KeyVersion)
	case "reference":
		return d.str(&r.Reference)
	}
	return false
}

func (d *fdec) encrypt(k []byte, r *transit.EncryptRequest) bool {
	switch string(k) {
	case "type":
		return d.str(&r.Type)
	case "convergent_encryption":
		return d.boolean(&r.ConvergentEncryption)
	case "partial_failure_response_code":
		return d.int(&r.PartialFailureResponseCode)
	case "batch_input":
		return items(d, &r.BatchInput, (*fdec).encryptItem)
	}
	return d.encryptItem(k, &r.EncryptItem)
}

func (d *fdec) decryptItem(k []byte, r *transit.DecryptItem) bool {
	switch string(k) {
	case "ciphertext":
		return d.str(&r.Ciphertext)
	case "context":
		return d.str(&r.Context)
	case "associated_data":
		return d.str(&r.AssociatedData)
	case "nonce":
		return d.str(&r.Nonce)
	case "reference":
		return d.str(&r.Reference)
	}
	return false
}

func (d *fdec) decrypt(k []byte, r *transit.DecryptRequest) bool {
	switch string(k) {
	case "partial_failure_response_code":
		return d.int(&r.PartialFailureResponseCode)
	case "batch_input":
		return items(d, &r.BatchInput, (*fdec).decryptItem)
	}
	return d.decryptItem(k, &r.DecryptItem)
}

func (d *fdec) signItem(k []byte, r *transit.SignItem) bool {
	switch string(k) {
	case "input":
		return d.str(&r.Input)
	case "context":
		return d.str(&r.Context)
	case "reference":
		return d.str(&r.Reference)
	}
	return false
}

func (d *fdec) sign(k []byte, r *transit.SignRequest) bool {
	switch string(k) {
	case "key_version":
		return d.int(&r.KeyVersion)
	case "hash_algorithm":
		return d.str(&r.HashAlgorithm)
	case "algorithm":
		return d.str(&r.Algorithm)
	case "prehashed":
		return d.boolean(&r.Prehashed)
	case "signature_algorithm":
		return d.str(&r.SignatureAlgorithm)
	case "marshaling_algorithm":
		return d.str(&r.MarshalingAlgorithm)
	case "salt_length":
		return d.str(&r.SaltLength)
	case "partial_failure_response_code":
		return d.int(&r.PartialFailureResponseCode)
	case "batch_input":
		return items(d, &r.BatchInput, (*fdec).signItem)
	}
	return d.signItem(k, &r.SignItem)
}

func (d *fdec) verifyItem(k []byte, r *transit.VerifyItem) bool {
	switch string(k) {
	case "input":
		return d.str(&r.Input)
	case "signature":
		return d.str(&r.Signature)
	case "hmac":
		return d.str(&r.HMAC)
	case "context":
		return d.str(&r.Context)
	case "reference":
		return d.str(&r.Reference)
	}
	return false
}

func (d *fdec) verify(k []byte, r *transit.VerifyRequest) bool {
	switch string(k) {
	case "hash_algorithm":
		return d.str(&r.HashAlgorithm)
	case "algorithm":
		return d.str(&r.Algorithm)
	case "prehashed":
		return d.boolean(&r.Prehashed)
	case "signature_algorithm":
		return d.str(&r.SignatureAlgorithm)
	case "marshaling_algorithm":
		return d.str(&r.MarshalingAlgorithm)
	case "salt_length":
		return d.str(&r.SaltLength)
	case "partial_failure_response_code":
		return d.int(&r.PartialFailureResponseCode)
	case "batch_input":
		return items(d, &r.BatchInput, (*fdec).verifyItem)
	}
	return d.verifyItem(k, &r.VerifyItem)
}

func (d *fdec) hmacItem(k []byte, r *transit.HMACItem) bool {
	switch string(k) {
	case "input":
		return d.str(&r.Input)
	case "reference":
		return d.str(&r.Reference)
	}
	return false
}

func (d *fdec) hmac(k []byte, r *transit.HMACRequest) bool {
	switch string(k) {
	case "key_version":
		return d.int(&r.KeyVersion)
	case "algorithm":
		return d.str(&r.Algorithm)
	case "partial_failure_response_code":
		return d.int(&r.PartialFailureResponseCode)
	case "batch_input":
		return items(d, &r.BatchInput, (*fdec).hmacItem)
	}
	return d.hmacItem(k, &r.HMACItem)
}
