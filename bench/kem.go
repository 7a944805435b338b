package bench

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include <string.h>
#include "kem.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// kemFuncs reaches C_EncapsulateKey and C_DecapsulateKey, which miekg/pkcs11
// has no wrapper for, through the module's 3.2 function list
// (C_GetInterface("PKCS 11", 3.2), PKCS#11 3.0 §5.2). The module is the
// instance miekg/pkcs11 already loaded, so session and object handles are
// shared between the two.
type kemFuncs struct {
	h  unsafe.Pointer
	fl *C.bk_flist32
}

// openKEM finds the 3.2 interface; a module without one cannot run the KEM
// op, which is a skip, not a failure.
func openKEM(path string) (*kemFuncs, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var cerr *C.char
	h := C.bk_open(cp, &cerr)
	if h == nil {
		return nil, fmt.Errorf("dlopen %s: %s", path, C.GoString(cerr))
	}
	k := &kemFuncs{h: h}
	if rv := C.bk_get_interface32(h, &k.fl); rv != 0 {
		C.bk_close(h)
		return nil, skipf("no PKCS#11 3.2 interface: C_GetInterface(\"PKCS 11\", 3.2): %v", pkcs11.Error(rv))
	}
	if v := k.fl.version; v.major != 3 || v.minor < 2 {
		C.bk_close(h)
		return nil, skipf("C_GetInterface(\"PKCS 11\", 3.2) returned a %d.%d function list", v.major, v.minor)
	}
	return k, nil
}

func (k *kemFuncs) close() {
	if k != nil && k.h != nil {
		C.bk_close(k.h)
		k.h, k.fl = nil, nil
	}
}

// cTemplate is an attribute template in C memory, built once and reused by
// every call: cgo forbids passing Go memory that holds Go pointers.
type cTemplate struct {
	attrs *C.bk_attr
	n     int
	vals  []unsafe.Pointer
}

func newCTemplate(attrs []*pkcs11.Attribute) *cTemplate {
	t := &cTemplate{n: len(attrs)}
	t.attrs = (*C.bk_attr)(C.calloc(C.size_t(len(attrs)), C.size_t(unsafe.Sizeof(C.bk_attr{}))))
	as := unsafe.Slice(t.attrs, len(attrs))
	for i, a := range attrs {
		as[i]._type = C.bk_ulong(a.Type)
		if len(a.Value) > 0 {
			p := C.CBytes(a.Value)
			t.vals = append(t.vals, p)
			as[i].pValue = p
		}
		as[i].ulValueLen = C.bk_ulong(len(a.Value))
	}
	return t
}

func (t *cTemplate) free() {
	for _, p := range t.vals {
		C.free(p)
	}
	C.free(unsafe.Pointer(t.attrs))
	t.vals, t.attrs = nil, nil
}

// encapsulate calls C_EncapsulateKey with a parameterless mechanism; ct must
// be large enough (the caller sizes it from the parameter set).
func (k *kemFuncs) encapsulate(sh pkcs11.SessionHandle, mech uint, pub pkcs11.ObjectHandle, t *cTemplate, ct []byte) ([]byte, pkcs11.ObjectHandle, error) {
	n := C.bk_ulong(len(ct))
	var key C.bk_ulong
	rv := C.bk_encapsulate(k.fl, C.bk_ulong(sh), C.bk_ulong(mech), C.bk_ulong(pub), t.attrs, C.bk_ulong(t.n),
		(*C.uchar)(unsafe.Pointer(&ct[0])), &n, &key)
	if rv != 0 {
		return nil, 0, fmt.Errorf("C_EncapsulateKey: %w", pkcs11.Error(rv))
	}
	return ct[:n], pkcs11.ObjectHandle(key), nil
}

func (k *kemFuncs) decapsulate(sh pkcs11.SessionHandle, mech uint, priv pkcs11.ObjectHandle, t *cTemplate, ct []byte) (pkcs11.ObjectHandle, error) {
	var key C.bk_ulong
	rv := C.bk_decapsulate(k.fl, C.bk_ulong(sh), C.bk_ulong(mech), C.bk_ulong(priv), t.attrs, C.bk_ulong(t.n),
		(*C.uchar)(unsafe.Pointer(&ct[0])), C.bk_ulong(len(ct)), &key)
	if rv != 0 {
		return 0, fmt.Errorf("C_DecapsulateKey: %w", pkcs11.Error(rv))
	}
	return pkcs11.ObjectHandle(key), nil
}

// Function-list positions kem.h assumes, for kem_test.go (tests cannot use
// cgo).
const (
	fnCount          = int(C.BK_FN_COUNT)
	fnEncapsulateKey = int(C.BK_FN_ENCAPSULATE_KEY)
	fnDecapsulateKey = int(C.BK_FN_DECAPSULATE_KEY)
)
