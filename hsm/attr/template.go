// Package attr holds attribute templates, their value encodings, and the
// per-class attribute policy table (policy.go). Templates are plain data and
// are not safe for concurrent mutation; the engine copies them at its
// boundary.
package attr

import (
	"encoding/binary"
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Template is a list of attributes as the caller gave them.
type Template []ck.Attribute

// Get returns the value of t, if present. A later duplicate wins, but the
// engine rejects templates with conflicting duplicates before this matters.
func (tp Template) Get(t ck.AttributeType) ([]byte, bool) {
	for i := len(tp) - 1; i >= 0; i-- {
		if tp[i].Type == t {
			return tp[i].Value, true
		}
	}
	return nil, false
}

// Has reports whether t is present.
func (tp Template) Has(t ck.AttributeType) bool { _, ok := tp.Get(t); return ok }

// Bool decodes a CK_BBOOL attribute. A value of the wrong length is
// CKR_ATTRIBUTE_VALUE_INVALID.
func (tp Template) Bool(t ck.AttributeType) (v, ok bool, err error) {
	b, ok := tp.Get(t)
	if !ok {
		return false, false, nil
	}
	v, err = DecodeBool(t, b)
	return v, true, err
}

// ULong decodes a CK_ULONG attribute.
func (tp Template) ULong(t ck.AttributeType) (v ck.ULong, ok bool, err error) {
	b, ok := tp.Get(t)
	if !ok {
		return 0, false, nil
	}
	v, err = DecodeULong(t, b)
	return v, true, err
}

// Set replaces or appends t.
func (tp *Template) Set(t ck.AttributeType, v []byte) {
	for i := range *tp {
		if (*tp)[i].Type == t {
			(*tp)[i].Value = v
			return
		}
	}
	*tp = append(*tp, ck.Attribute{Type: t, Value: v})
}

// Clone deep-copies the template so it owns none of the caller's memory.
func (tp Template) Clone() Template {
	out := make(Template, len(tp))
	for i, a := range tp {
		out[i] = ck.Attribute{Type: a.Type, Value: append([]byte(nil), a.Value...)}
		if a.Value == nil {
			out[i].Value = nil
		}
	}
	return out
}

// Bool encodes a CK_BBOOL.
func Bool(v bool) []byte {
	if v {
		return []byte{1}
	}
	return []byte{0}
}

// ULong encodes a CK_ULONG in this platform's C layout (LP64 little-endian).
func ULong(v ck.ULong) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(v))
	return b
}

// DecodeBool checks and decodes a CK_BBOOL value.
func DecodeBool(t ck.AttributeType, b []byte) (bool, error) {
	if len(b) != 1 {
		return false, fmt.Errorf("%v: CK_BBOOL of %d bytes: %w", t, len(b), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return b[0] != 0, nil
}

// DecodeULong checks and decodes a CK_ULONG value.
func DecodeULong(t ck.AttributeType, b []byte) (ck.ULong, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%v: CK_ULONG of %d bytes: %w", t, len(b), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return ck.ULong(binary.LittleEndian.Uint64(b)), nil
}
