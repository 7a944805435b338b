package audit

import (
	"bytes"
	"encoding/json"
)

// redactJSONRef is the redaction of a raw body as it was before the
// scanner (scan.go): decode into generic values, then redactValue. The
// reference FuzzRedactDifferential holds appendRedacted to. It parses body (a JSON object, numbers kept exact) and returns
// it re-encoded with secrets HMAC'd. ok is false when body is not a JSON
// object: the caller records its HMAC instead.
func (h *hasher) redactJSONRef(body []byte) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if dec.More() {
		return nil, false
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return nil, false
	}
	var buf bytes.Buffer
	h.writeValue(&buf, obj, false)
	return buf.Bytes(), true
}
