package main

/*
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Output fields of mechanism parameters.
//
// A few mechanism parameters carry a field the token fills in: with a
// nonce-based mechanism the token, not the caller, chooses the IV (a
// caller-chosen IV under a wrapping key is how a nonce gets reused), so
// the caller passes a writable buffer of the IV's length and reads the
// IV there after the call. inMechanism copies the parameter into Go
// memory and the backend writes into that copy (in place, same length);
// writeOutParams brings the field back to the caller.
//
// Which fields those are is a property of the parameter structure, so the
// table below is keyed by ck.ParamKind, and any call that decodes a
// mechanism with inMechanism can use it: C_WrapKey, and every C_*Init
// (under a key that may wrap sensitive keys, C_EncryptInit takes only a
// nonce the token makes: hsm/gate.go).

// outField is one output field of a parameter structure.
type outField struct {
	// caller finds the caller's buffer in the C structure pp of n bytes;
	// the structure's size tells its layout, as in inMechanism. ok is false
	// for a layout without the field.
	caller func(pp unsafe.Pointer, n C.CK_ULONG) (buf unsafe.Pointer, bufLen C.CK_ULONG, ok bool)
	// value is the field in the Go copy; ok is false for another type.
	value func(param any) (b []byte, ok bool)
}

// outParams lists the output fields by parameter kind; a kind that is not
// here has none. The IV or nonce is an output only when the token
// generates it, but the shim cannot tell, and need not: it writes only the
// bytes that differ from what the caller passed (writeOutParams).
var outParams = map[ck.ParamKind][]outField{
	ck.ParamGCM: {{caller: gcmIVBuffer, value: goField(func(g *ck.GCMParams) []byte { return g.IV })}},
	ck.ParamCCM: {{
		caller: func(pp unsafe.Pointer, n C.CK_ULONG) (unsafe.Pointer, C.CK_ULONG, bool) {
			if n != C.CK_ULONG(unsafe.Sizeof(C.CK_CCM_PARAMS{})) {
				return nil, 0, false
			}
			c := (*C.CK_CCM_PARAMS)(pp)
			return unsafe.Pointer(c.pNonce), c.ulNonceLen, true
		},
		value: goField(func(c *ck.CCMParams) []byte { return c.Nonce }),
	}},
	ck.ParamChaCha20Poly1305: {{
		caller: func(pp unsafe.Pointer, n C.CK_ULONG) (unsafe.Pointer, C.CK_ULONG, bool) {
			if n != C.CK_ULONG(unsafe.Sizeof(C.CK_SALSA20_CHACHA20_POLY1305_PARAMS{})) {
				return nil, 0, false
			}
			c := (*C.CK_SALSA20_CHACHA20_POLY1305_PARAMS)(pp)
			return unsafe.Pointer(c.pNonce), c.ulNonceLen, true
		},
		value: goField(func(c *ck.ChaCha20Poly1305Params) []byte { return c.Nonce }),
	}},
	// The counter block of CK_AES_CTR_PARAMS is inside the structure.
	ck.ParamCTR: {{
		caller: func(pp unsafe.Pointer, n C.CK_ULONG) (unsafe.Pointer, C.CK_ULONG, bool) {
			if n != C.CK_ULONG(unsafe.Sizeof(C.CK_AES_CTR_PARAMS{})) {
				return nil, 0, false
			}
			c := (*C.CK_AES_CTR_PARAMS)(pp)
			return unsafe.Pointer(&c.cb[0]), C.CK_ULONG(len(c.cb)), true
		},
		value: goField(func(c *ck.CTRParams) []byte { return c.CB[:] }),
	}},
}

// gcmIVBuffer is the IV buffer of a CK_GCM_PARAMS in either layout
// inMechanism accepts: 3.0 (with ulIvBits) and the 2.40 errata.
func gcmIVBuffer(pp unsafe.Pointer, n C.CK_ULONG) (unsafe.Pointer, C.CK_ULONG, bool) {
	switch n {
	case C.CK_ULONG(unsafe.Sizeof(C.CK_GCM_PARAMS{})):
		g := (*C.CK_GCM_PARAMS)(pp)
		return unsafe.Pointer(g.pIv), g.ulIvLen, true
	case C.CK_ULONG(unsafe.Sizeof(C.gohsm_gcm_params_240{})):
		g := (*C.gohsm_gcm_params_240)(pp)
		return unsafe.Pointer(g.pIv), g.ulIvLen, true
	}
	return nil, 0, false
}

// goField adapts a field getter of the parameter type T (what inMechanism
// makes for the kind) to outField.value.
func goField[T any](get func(T) []byte) func(any) ([]byte, bool) {
	return func(p any) ([]byte, bool) {
		v, ok := p.(T)
		if !ok {
			return nil, false
		}
		return get(v), true
	}
}

// writeOutParams copies the output fields of m, the Go copy inMechanism
// made of the caller's p, back into the caller's buffers. Call it only
// after the backend call succeeded and produced its result: never after a
// size query (nothing was made, so there is nothing to report) and never
// after an error.
//
// Only the bytes that differ from the caller's are written. A caller may
// point the field at read-only memory (a constant IV, refused or used as
// given), and a write there would fault even when the value is the same;
// an IV the token left as it was is never written at all.
//
// The backend must keep the field's length: a field whose length changed
// cannot go back into the caller's buffer, and its result (a key wrapped
// under an IV the caller cannot learn) is useless, so that backend bug is
// CKR_GENERAL_ERROR, as settle treats a result larger than the buffer.
func writeOutParams(p C.CK_MECHANISM_PTR, m ck.Mechanism) ck.RV {
	fields := outParams[ck.ParamKindOf(m.Type)]
	if len(fields) == 0 || m.Param == nil || p == nil || p.pParameter == nil {
		return ck.CKR_OK
	}
	for _, f := range fields {
		v, ok := f.value(m.Param)
		if !ok {
			continue
		}
		buf, n, ok := f.caller(unsafe.Pointer(p.pParameter), p.ulParameterLen)
		if !ok {
			continue
		}
		if uint64(n) != uint64(len(v)) {
			return ck.CKR_GENERAL_ERROR
		}
		if n == 0 {
			continue
		}
		dst := unsafe.Slice((*byte)(buf), len(v))
		for i, b := range v {
			if dst[i] != b {
				dst[i] = b
			}
		}
	}
	return ck.CKR_OK
}
