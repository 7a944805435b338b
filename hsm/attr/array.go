package attr

import (
	"encoding/binary"
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Attributes whose value is itself a template (CK_ATTRIBUTE array, base
// spec §4.4: CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE). In
// C their value holds pointers, so every boundary (the C shim, the wire
// codec) flattens them into this encoding, which the engine stores and
// interprets: for each attribute its type and its value length as 8-byte
// little-endian integers, then the value. CKA_ALLOWED_MECHANISMS also has
// CKF_ARRAY_ATTRIBUTE but is an array of CK_ULONG and needs no translation.

// IsTemplate reports whether t holds a template.
func IsTemplate(t ck.AttributeType) bool {
	switch t {
	case ck.CKA_WRAP_TEMPLATE, ck.CKA_UNWRAP_TEMPLATE, ck.CKA_DERIVE_TEMPLATE:
		return true
	}
	return false
}

// EncodeTemplate flattens a template into the bytes of a template attribute.
func EncodeTemplate(t []ck.Attribute) []byte {
	n := 0
	for _, a := range t {
		n += 16 + len(a.Value)
	}
	out := make([]byte, 0, n)
	for _, a := range t {
		out = binary.LittleEndian.AppendUint64(out, uint64(a.Type))
		out = binary.LittleEndian.AppendUint64(out, uint64(len(a.Value)))
		out = append(out, a.Value...)
	}
	return out
}

// DecodeTemplate is EncodeTemplate's inverse; the values alias b.
func DecodeTemplate(b []byte) (Template, error) {
	var out Template
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, fmt.Errorf("template attribute: truncated header: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		t := ck.AttributeType(binary.LittleEndian.Uint64(b))
		n := binary.LittleEndian.Uint64(b[8:])
		b = b[16:]
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("template attribute %v: value length %d beyond the data: %w", t, n, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		out = append(out, ck.Attribute{Type: t, Value: b[:n:n]})
		b = b[n:]
	}
	return out, nil
}
