package main

/*
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// maxTemplate bounds an attribute count taken from C; no object has this
// many attributes, so a larger count is garbage.
const maxTemplate = 1 << 16

var attrSize = C.CK_ULONG(unsafe.Sizeof(C.CK_ATTRIBUTE{}))

// inTemplate copies a caller's template into Go memory. A NULL template is
// allowed only with count 0; a NULL pValue only with length 0.
func inTemplate(p C.CK_ATTRIBUTE_PTR, n C.CK_ULONG) ([]ck.Attribute, ck.RV) {
	return inTemplateDepth(p, n, true)
}

func inTemplateDepth(p C.CK_ATTRIBUTE_PTR, n C.CK_ULONG, nested bool) ([]ck.Attribute, ck.RV) {
	if n == 0 {
		return nil, ck.CKR_OK
	}
	if p == nil || n > maxTemplate {
		return nil, ck.CKR_ARGUMENTS_BAD
	}
	src := unsafe.Slice(p, int(n))
	// The plain values share one allocation: every object-making call
	// copies a template, and one buffer costs less than one per value.
	// Lengths are only summed here; the loop below checks each attribute
	// in order, as before.
	total := uint64(0)
	for i := range src {
		if l := uint64(src[i].ulValueLen); !isTemplateAttr(ck.AttributeType(src[i]._type)) && l <= maxIn {
			total += l
		}
	}
	if total > maxIn {
		return nil, ck.CKR_ARGUMENTS_BAD
	}
	buf := make([]byte, 0, total)
	out := make([]ck.Attribute, len(src))
	for i := range src {
		a := &src[i]
		t := ck.AttributeType(a._type)
		out[i].Type = t
		if isTemplateAttr(t) {
			if !nested || a.ulValueLen%attrSize != 0 {
				return nil, ck.CKR_ATTRIBUTE_VALUE_INVALID
			}
			if a.pValue == nil && a.ulValueLen != 0 {
				return nil, ck.CKR_ARGUMENTS_BAD
			}
			inner, rv := inTemplateDepth((*C.CK_ATTRIBUTE)(a.pValue), a.ulValueLen/attrSize, false)
			if rv != ck.CKR_OK {
				return nil, rv
			}
			out[i].Value = encodeTemplate(inner)
			continue
		}
		l := int(a.ulValueLen)
		if l != 0 && (a.pValue == nil || uint64(a.ulValueLen) > maxIn) {
			return nil, ck.CKR_ARGUMENTS_BAD
		}
		start := len(buf)
		if l != 0 {
			buf = append(buf, unsafe.Slice((*byte)(a.pValue), l)...)
		}
		// Capacity clipped: a value appended to reallocates rather than
		// overwrite its neighbour. Never nil: an empty value is present.
		out[i].Value = buf[start : start+l : start+l]
	}
	return out, ck.CKR_OK
}

// getAttributeValue is C_GetAttributeValue's conversion (§5.7.5): every
// attribute gets an answer in ulValueLen — its length, or
// CK_UNAVAILABLE_INFORMATION — and the value is copied where the caller
// gave room. The error is the one the Backend chose (its precedence among
// CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID and
// CKR_BUFFER_TOO_SMALL); the shim adds CKR_BUFFER_TOO_SMALL only when it
// alone found a buffer too small, in a template-valued attribute.
func getAttributeValue(be hsm.Backend, s ck.SessionHandle, o ck.ObjectHandle, p C.CK_ATTRIBUTE_PTR, n C.CK_ULONG) ck.RV {
	if n == 0 {
		// Nothing to answer, but the handles must still be checked.
		_, err := be.GetAttributeValue(s, o, nil)
		return hsm.ToRV(err)
	}
	if p == nil || n > maxTemplate {
		return ck.CKR_ARGUMENTS_BAD
	}
	tmpl := unsafe.Slice(p, int(n))
	req := make([]ck.AttributeRequest, len(tmpl))
	for i := range tmpl {
		t := ck.AttributeType(tmpl[i]._type)
		req[i] = ck.AttributeRequest{Type: t, Cap: -1}
		switch {
		case isTemplateAttr(t):
			// The shim needs the whole flattened value to answer the
			// caller's nested array itself.
			req[i].Cap = maxIn
		case tmpl[i].pValue != nil:
			req[i].Cap = capOf(tmpl[i].ulValueLen)
		}
	}
	res, err := be.GetAttributeValue(s, o, req)
	rv := hsm.ToRV(err)
	switch rv {
	case ck.CKR_OK, ck.CKR_ATTRIBUTE_SENSITIVE, ck.CKR_ATTRIBUTE_TYPE_INVALID, ck.CKR_BUFFER_TOO_SMALL:
	default:
		return rv
	}
	if len(res) != len(req) {
		return ck.CKR_GENERAL_ERROR
	}
	small := false
	for i := range tmpl {
		a, r := &tmpl[i], res[i]
		if r.Len == ck.CK_UNAVAILABLE_INFORMATION {
			a.ulValueLen = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
			continue
		}
		if isTemplateAttr(req[i].Type) {
			if !outTemplate(a, r.Value) {
				small = true
			}
			continue
		}
		if a.pValue != nil {
			if r.Value == nil || uint64(len(r.Value)) != uint64(r.Len) || len(r.Value) > req[i].Cap {
				return ck.CKR_GENERAL_ERROR // the Backend broke its contract
			}
			copy(unsafe.Slice((*byte)(a.pValue), len(r.Value)), r.Value)
		}
		a.ulValueLen = C.CK_ULONG(r.Len)
	}
	if rv == ck.CKR_OK && small {
		rv = ck.CKR_BUFFER_TOO_SMALL
	}
	return rv
}

// outTemplate answers a template-valued attribute into the caller's
// CK_ATTRIBUTE array, applying §5.7.5 to each element (3.0 §5.7.5: "if the
// attribute is an array of attributes ... the algorithm is applied to each
// element"). It reports false when some buffer was too small.
func outTemplate(a *C.CK_ATTRIBUTE, enc []byte) bool {
	inner, err := decodeTemplate(enc)
	if err != nil {
		a.ulValueLen = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
		return true // an undecodable value is not the caller's fault; report it unavailable
	}
	need := C.CK_ULONG(len(inner)) * attrSize
	if a.pValue == nil {
		a.ulValueLen = need
		return true
	}
	if a.ulValueLen < need {
		a.ulValueLen = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
		return false
	}
	ok := true
	dst := unsafe.Slice((*C.CK_ATTRIBUTE)(a.pValue), len(inner))
	for i, in := range inner {
		d := &dst[i]
		d._type = C.CK_ATTRIBUTE_TYPE(in.Type)
		switch {
		case d.pValue == nil:
			d.ulValueLen = C.CK_ULONG(len(in.Value))
		case d.ulValueLen < C.CK_ULONG(len(in.Value)):
			d.ulValueLen = C.CK_ULONG(ck.CK_UNAVAILABLE_INFORMATION)
			ok = false
		default:
			copy(unsafe.Slice((*byte)(d.pValue), len(in.Value)), in.Value)
			d.ulValueLen = C.CK_ULONG(len(in.Value))
		}
	}
	a.ulValueLen = need
	return ok
}
