package main

import (
	"encoding/binary"
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Attributes whose value is itself a template (CK_ATTRIBUTE array, §4.4:
// CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE). In C their
// value holds pointers, so the shim flattens them into bytes the Backend can
// keep: for each attribute, its type and its value length as 8-byte
// little-endian integers, then the value. CKA_ALLOWED_MECHANISMS also has
// CKF_ARRAY_ATTRIBUTE but is an array of CK_ULONG and needs no translation.
//
// The engine and the wire codec must agree on this encoding; it belongs in
// hsm/attr and lives here until the attr package adopts it.
func isTemplateAttr(t ck.AttributeType) bool {
	switch t {
	case ck.CKA_WRAP_TEMPLATE, ck.CKA_UNWRAP_TEMPLATE, ck.CKA_DERIVE_TEMPLATE:
		return true
	}
	return false
}

func encodeTemplate(t []ck.Attribute) []byte {
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

func decodeTemplate(b []byte) ([]ck.Attribute, error) {
	var out []ck.Attribute
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, fmt.Errorf("template attribute: truncated header")
		}
		t := ck.AttributeType(binary.LittleEndian.Uint64(b))
		n := binary.LittleEndian.Uint64(b[8:])
		b = b[16:]
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("template attribute %v: value length %d beyond the data", t, n)
		}
		out = append(out, ck.Attribute{Type: t, Value: b[:n:n]})
		b = b[n:]
	}
	return out, nil
}
