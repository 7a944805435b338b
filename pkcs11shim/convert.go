package main

/*
#include "shim.h"
*/
import "C"

import (
	"math"
	"unicode/utf8"
	"unsafe"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// maxIn bounds a length taken from C. Nothing an HSM processes in one call
// comes near it; a larger value is a garbage length, and reading that much
// from the caller's pointer would fault.
const maxIn = math.MaxInt32

// inBytes copies a caller buffer into Go memory. A NULL pointer is allowed
// only with length 0; both give nil.
func inBytes(p unsafe.Pointer, n C.CK_ULONG) ([]byte, ck.RV) {
	if n == 0 {
		return nil, ck.CKR_OK
	}
	if p == nil || uint64(n) > maxIn {
		return nil, ck.CKR_ARGUMENTS_BAD
	}
	return C.GoBytes(p, C.int(n)), ck.CKR_OK
}

// bytesView is the caller's buffer itself, valid only until the call
// returns: for inputs the backend reads and does not keep.
func bytesView(p C.CK_BYTE_PTR, n C.CK_ULONG) ([]byte, ck.RV) {
	if n == 0 {
		return nil, ck.CKR_OK
	}
	if p == nil || uint64(n) > maxIn {
		return nil, ck.CKR_ARGUMENTS_BAD
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), ck.CKR_OK
}

// bytesIn is inBytes for CK_BYTE_PTR arguments.
func bytesIn(p C.CK_BYTE_PTR, n C.CK_ULONG) ([]byte, ck.RV) {
	return inBytes(unsafe.Pointer(p), n)
}

// capOf turns a caller's buffer size into an outCap. Sizes beyond maxIn are
// clamped rather than wrapped, so CK_UNAVAILABLE_INFORMATION (all ones) can
// never read as -1, the NULL-buffer marker.
func capOf(n C.CK_ULONG) int { return clampCap(uint64(n)) }

func clampCap(n uint64) int {
	if n > maxIn {
		return maxIn
	}
	return int(n)
}

// settle applies the §5.2 output-buffer convention to a Backend result: on
// success the length to report (need for a size query, else len(data)), on
// CKR_BUFFER_TOO_SMALL the length required. A backend that returns more
// than the buffer holds is a bug, reported as CKR_GENERAL_ERROR rather than
// written past the caller's buffer.
func settle(outCap int, data []byte, need int, err error) (int, ck.RV) {
	rv := hsm.ToRV(err)
	switch rv {
	case ck.CKR_OK:
		if outCap < 0 {
			if need < 0 {
				return 0, ck.CKR_GENERAL_ERROR
			}
			return need, ck.CKR_OK
		}
		if len(data) > outCap {
			return 0, ck.CKR_GENERAL_ERROR
		}
		return len(data), ck.CKR_OK
	case ck.CKR_BUFFER_TOO_SMALL:
		if need < 0 {
			return 0, ck.CKR_GENERAL_ERROR
		}
		return need, rv
	}
	return 0, rv
}

// outBytes runs a Backend call that fills a caller buffer: out may be NULL
// (a size query), outLen may not. *outLen is written on success and on
// CKR_BUFFER_TOO_SMALL, and left alone on any other error.
func outBytes(out C.CK_BYTE_PTR, outLen C.CK_ULONG_PTR, call func(outCap int) ([]byte, int, error)) ck.RV {
	if outLen == nil {
		return ck.CKR_ARGUMENTS_BAD
	}
	outCap := -1
	if out != nil {
		outCap = capOf(*outLen)
	}
	data, need, err := call(outCap)
	n, rv := settle(outCap, data, need, err)
	if rv == ck.CKR_OK && out != nil && n > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(out)), n), data)
	}
	if rv == ck.CKR_OK || rv == ck.CKR_BUFFER_TOO_SMALL {
		*outLen = C.CK_ULONG(n)
	}
	return rv
}

// outList copies a list of CK_ULONG-sized values (slot ids, mechanism
// types) with the C_GetSlotList convention (§5.5): NULL list asks for the
// count, a short one gets CKR_BUFFER_TOO_SMALL and the count.
func outList[T ~uint64](list *C.CK_ULONG, count C.CK_ULONG_PTR, vals []T) ck.RV {
	if count == nil {
		return ck.CKR_ARGUMENTS_BAD
	}
	n := C.CK_ULONG(len(vals))
	if list == nil {
		*count = n
		return ck.CKR_OK
	}
	if *count < n {
		*count = n
		return ck.CKR_BUFFER_TOO_SMALL
	}
	dst := unsafe.Slice(list, len(vals))
	for i, v := range vals {
		dst[i] = C.CK_ULONG(v)
	}
	*count = n
	return ck.CKR_OK
}

// padInto writes s into a fixed-size PKCS#11 character field: blank padded,
// not NUL terminated (§3.1), cut at a UTF-8 character boundary when too long.
func padInto(dst []byte, s string) {
	n := len(s)
	if n > len(dst) {
		n = len(dst)
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
	}
	copy(dst, s[:n])
	for i := n; i < len(dst); i++ {
		dst[i] = ' '
	}
}

// field views a fixed-size C character array as a Go slice.
func field[T ~uint8](arr []T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&arr[0])), len(arr))
}

// labelOf decodes C_InitToken's 32-byte blank-padded label. A NUL ends it
// early, for callers that pass a C string.
func labelOf(b []byte) string {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	end := len(b)
	for end > 0 && b[end-1] == ' ' {
		end--
	}
	return string(b[:end])
}

func cVersion(v ck.Version) C.CK_VERSION {
	return C.CK_VERSION{major: C.CK_BYTE(v.Major), minor: C.CK_BYTE(v.Minor)}
}

// inPIN copies a PIN argument (C_Login, C_LoginUser, C_InitPIN, C_SetPIN,
// C_InitToken) into Go memory; the caller wipes it after the call. A NULL
// pointer is CKR_ARGUMENTS_BAD whatever the length, also 0: PKCS#11 gives
// NULL the meaning "use the token's protected authentication path" (a PIN
// pad), which gohsm tokens do not have (CKF_PROTECTED_AUTHENTICATION_PATH
// is never set), so NULL can only be a mistake. Refusing it here, before
// the backend is asked, keeps it from counting as a wrong PIN toward the
// lockout. A non-NULL pointer with length 0 is an empty PIN, which the
// backend judges (CKR_PIN_LEN_RANGE, CKR_PIN_INCORRECT).
func inPIN(p C.CK_UTF8CHAR_PTR, n C.CK_ULONG) ([]byte, ck.RV) {
	if p == nil {
		return nil, ck.CKR_ARGUMENTS_BAD
	}
	return inBytes(unsafe.Pointer(p), n)
}

// wipe clears a buffer the shim owns that held a secret (a PIN).
func wipe(b []byte) { clear(b) }
