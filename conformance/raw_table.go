package conformance

/*
#include <stdlib.h>
#include "raw.h"
*/
import "C"

import "unsafe"

// Calls through a chosen function table: the 2.40 list of
// C_GetFunctionList (raw.list240) or the table of a 3.x interface
// (raw.table3). The two may answer differently where PKCS#11 3.0 changed a
// function's meaning (a NULL mechanism in C_XxxInit, the CKF_MESSAGE_* flags
// of C_GetMechanismInfo), and these calls also pass what miekg/pkcs11
// cannot (a NULL PIN, a NULL wrapped-key buffer).

// list240 is the CK_FUNCTION_LIST of C_GetFunctionList.
func (r *raw) list240() unsafe.Pointer { return unsafe.Pointer(r.fl) }

// newest is the table of the newest interface the module offers (3.2, then
// 3.0), or the 2.40 list.
func (r *raw) newest() unsafe.Pointer {
	for _, v := range [][2]byte{{3, 2}, {3, 0}} {
		if f := r.table3("PKCS 11", v[0], v[1]); f != nil {
			return unsafe.Pointer(f)
		}
	}
	return r.list240()
}

// mechInfo is a CK_MECHANISM_INFO.
type mechInfo struct{ min, max, flags uint }

// mechInfoVia is C_GetMechanismInfo through the table f.
func mechInfoVia(f unsafe.Pointer, slot, m uint) (mechInfo, uint) {
	var ci C.cmechinfo
	rv := uint(C.raw_mech_info(f, C.ckul(slot), C.ckul(m), &ci))
	return mechInfo{uint(ci.ulMinKeySize), uint(ci.ulMaxKeySize), uint(ci.flags)}, rv
}

// loginVia is C_Login through f; a nil pin passes a NULL pPin with
// ulPinLen pinLen.
func (m *cmem) loginVia(f unsafe.Pointer, sess, user uint, pin []byte, pinLen int) uint {
	return uint(C.raw_login(f, C.ckul(sess), C.ckul(user), (*C.uchar)(m.bytes(pin)), C.ckul(pinLen)))
}

// encryptInitVia is C_EncryptInit through f; a nil mc passes a NULL
// pMechanism.
func encryptInitVia(f unsafe.Pointer, sess uint, mc *C.cmech, key uint) uint {
	return uint(C.raw_encrypt_init(f, C.ckul(sess), mc, C.ckul(key)))
}

// inoutVia is raw.inout through f.
func (r *raw) inoutVia(f unsafe.Pointer, idx int, sess uint, in []byte, outCap int) ([]byte, uint, uint) {
	var m cmem
	defer m.free()
	pin := (*C.uchar)(m.bytes(in))
	return r.call(outCap, func(out *C.uchar, n *C.ckul) C.ckul {
		return C.raw_table_inout(f, C.int(idx), C.ckul(sess), pin, C.ckul(len(in)), out, n)
	})
}

// wrapKey is C_WrapKey through the 2.40 list with a mechanism laid out in
// C memory (its parameter may point at buffers the token writes, e.g. the
// IV it generates); outCap < 0 passes a NULL pWrappedKey (the size query).
func (r *raw) wrapKey(sess uint, mc *C.cmech, wrapping, key uint, outCap int) ([]byte, uint, uint) {
	return r.call(outCap, func(out *C.uchar, n *C.ckul) C.ckul {
		return C.raw_wrap_key(r.list240(), C.ckul(sess), mc, C.ckul(wrapping), C.ckul(key), out, n)
	})
}

// mechanismNull is a NULL CK_MECHANISM_PTR.
var mechanismNull *C.cmech
