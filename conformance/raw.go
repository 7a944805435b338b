package conformance

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "raw.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Function-list indexes of the calls the raw helper makes through a common
// C signature (pkcs11f.h order).
const (
	fnEncrypt       = 30
	fnEncryptUpdate = 31
	fnEncryptFinal  = 32
	fnDecrypt       = 34
	fnDecryptUpdate = 35
	fnDecryptFinal  = 36
	fnDigest        = 38
	fnDigestFinal   = 41
	fnSign          = 43
	fnSignFinal     = 45
)

// raw calls the module directly, for the arguments miekg/pkcs11 cannot
// express. dlopen of the same path yields the same library instance that
// miekg/pkcs11 loaded, so session handles are shared between the two.
type raw struct {
	h  unsafe.Pointer
	fl *C.cflist
}

func openRaw(path string) (*raw, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var cerr *C.char
	h := C.raw_open(cp, &cerr)
	if h == nil {
		return nil, fmt.Errorf("dlopen %s: %s", path, C.GoString(cerr))
	}
	r := &raw{h: h}
	if rv := C.raw_get_function_list(h, &r.fl, 0); rv != 0 {
		return nil, fmt.Errorf("C_GetFunctionList: %s", rvName(uint(rv)))
	}
	if r.fl == nil {
		return nil, fmt.Errorf("C_GetFunctionList returned CKR_OK and a NULL list")
	}
	return r, nil
}

func (r *raw) getFunctionListNull() uint { return uint(C.raw_get_function_list(r.h, nil, 1)) }
func (r *raw) version() (byte, byte) {
	return byte(r.fl.version.major), byte(r.fl.version.minor)
}
func (r *raw) initialize(variant int) uint    { return uint(C.raw_initialize(r.fl, C.int(variant))) }
func (r *raw) finalize(reservedSet bool) uint { return uint(C.raw_finalize(r.fl, cbool(reservedSet))) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

type rawInfo struct {
	cryptoki [2]byte
	manuf    []byte
	flags    uint
	desc     []byte
	libVer   [2]byte
}

func (r *raw) getInfo() (rawInfo, uint) {
	var ci C.cinfo
	rv := uint(C.raw_get_info(r.fl, &ci))
	return rawInfo{
		cryptoki: [2]byte{byte(ci.cryptokiVersion.major), byte(ci.cryptokiVersion.minor)},
		manuf:    C.GoBytes(unsafe.Pointer(&ci.manufacturerID[0]), 32),
		flags:    uint(ci.flags),
		desc:     C.GoBytes(unsafe.Pointer(&ci.libraryDescription[0]), 32),
		libVer:   [2]byte{byte(ci.libraryVersion.major), byte(ci.libraryVersion.minor)},
	}, rv
}

func (r *raw) getInfoNull() uint { return uint(C.raw_get_info(r.fl, nil)) }

// slotList calls C_GetSlotList with a buffer of n entries (n < 0: NULL list).
func (r *raw) slotList(present bool, n int) ([]uint, uint, uint) {
	var p C.uchar
	if present {
		p = 1
	}
	count := C.ckul(0)
	if n < 0 {
		rv := uint(C.raw_get_slot_list(r.fl, p, nil, &count))
		return nil, uint(count), rv
	}
	buf := make([]C.ckul, n+1)
	count = C.ckul(n)
	rv := uint(C.raw_get_slot_list(r.fl, p, &buf[0], &count))
	out := make([]uint, 0, n)
	for i := 0; i < int(count) && i < n; i++ {
		out = append(out, uint(buf[i]))
	}
	return out, uint(count), rv
}

func (r *raw) slotListNullCount() uint {
	return uint(C.raw_get_slot_list(r.fl, 0, nil, nil))
}

type rawSlotInfo struct {
	desc, manuf []byte
	flags       uint
}

func (r *raw) slotInfo(slot uint) (rawSlotInfo, uint) {
	var si C.cslotinfo
	rv := uint(C.raw_get_slot_info(r.fl, C.ckul(slot), &si))
	return rawSlotInfo{
		desc:  C.GoBytes(unsafe.Pointer(&si.slotDescription[0]), 64),
		manuf: C.GoBytes(unsafe.Pointer(&si.manufacturerID[0]), 32),
		flags: uint(si.flags),
	}, rv
}

type rawTokenInfo struct {
	label, manuf, model, serial, utc []byte
	flags                            uint
	maxSess, sess, maxRW, rw         uint
	maxPin, minPin                   uint
}

func (r *raw) tokenInfo(slot uint) (rawTokenInfo, uint) {
	var ti C.ctokeninfo
	rv := uint(C.raw_get_token_info(r.fl, C.ckul(slot), &ti))
	return rawTokenInfo{
		label:   C.GoBytes(unsafe.Pointer(&ti.label[0]), 32),
		manuf:   C.GoBytes(unsafe.Pointer(&ti.manufacturerID[0]), 32),
		model:   C.GoBytes(unsafe.Pointer(&ti.model[0]), 16),
		serial:  C.GoBytes(unsafe.Pointer(&ti.serialNumber[0]), 16),
		utc:     C.GoBytes(unsafe.Pointer(&ti.utcTime[0]), 16),
		flags:   uint(ti.flags),
		maxSess: uint(ti.ulMaxSessionCount), sess: uint(ti.ulSessionCount),
		maxRW: uint(ti.ulMaxRwSessionCount), rw: uint(ti.ulRwSessionCount),
		maxPin: uint(ti.ulMaxPinLen), minPin: uint(ti.ulMinPinLen),
	}, rv
}

// mechList calls C_GetMechanismList with a buffer of n entries (n < 0: NULL).
func (r *raw) mechList(slot uint, n int) ([]uint, uint, uint) {
	count := C.ckul(0)
	if n < 0 {
		rv := uint(C.raw_get_mechanism_list(r.fl, C.ckul(slot), nil, &count))
		return nil, uint(count), rv
	}
	buf := make([]C.ckul, n+1)
	count = C.ckul(n)
	rv := uint(C.raw_get_mechanism_list(r.fl, C.ckul(slot), &buf[0], &count))
	out := make([]uint, 0, n)
	for i := 0; i < int(count) && i < n && rv == 0; i++ {
		out = append(out, uint(buf[i]))
	}
	return out, uint(count), rv
}

// inout calls a (session, in, inLen, out, *outLen) function. outCap < 0
// passes a NULL output buffer (the size query of base spec 5.2).
func (r *raw) inout(idx int, sess uint, in []byte, outCap int) ([]byte, uint, uint) {
	var pin *C.uchar
	cin := C.CBytes(append([]byte{0}, in...))
	defer C.free(cin)
	if len(in) > 0 {
		pin = (*C.uchar)(unsafe.Add(cin, 1))
	} else {
		pin = (*C.uchar)(cin)
	}
	return r.call(outCap, func(out *C.uchar, n *C.ckul) C.ckul {
		return C.raw_inout(r.fl, C.int(idx), C.ckul(sess), pin, C.ckul(len(in)), out, n)
	})
}

// final calls a (session, out, *outLen) function, outCap as for inout.
func (r *raw) final(idx int, sess uint, outCap int) ([]byte, uint, uint) {
	return r.call(outCap, func(out *C.uchar, n *C.ckul) C.ckul {
		return C.raw_final(r.fl, C.int(idx), C.ckul(sess), out, n)
	})
}

func (r *raw) call(outCap int, f func(*C.uchar, *C.ckul) C.ckul) ([]byte, uint, uint) {
	n := C.ckul(0)
	if outCap < 0 {
		rv := uint(f(nil, &n))
		return nil, uint(n), rv
	}
	buf := C.malloc(C.size_t(outCap + 1))
	defer C.free(buf)
	n = C.ckul(outCap)
	rv := uint(f((*C.uchar)(buf), &n))
	if rv != 0 || int(n) > outCap {
		return nil, uint(n), rv
	}
	return C.GoBytes(buf, C.int(n)), uint(n), rv
}

// attrLen asks for one attribute's length with a NULL pValue.
func (r *raw) attrLen(sess, obj, typ uint) (uint, uint) {
	var n C.ckul
	rv := uint(C.raw_attr_len(r.fl, C.ckul(sess), C.ckul(obj), C.ckul(typ), &n))
	return uint(n), rv
}

func (r *raw) sessionInfoNull(sess uint) uint {
	return uint(C.raw_get_session_info_null(r.fl, C.ckul(sess)))
}

func (r *raw) hasInterface() bool { return C.raw_has_interface(r.h) != 0 }

type rawInterface struct {
	name     string
	major    byte
	minor    byte
	flags    uint
	hasTable bool
}

func readInterface(ci *C.cinterface) rawInterface {
	ri := rawInterface{flags: uint(ci.flags), hasTable: ci.flist != nil}
	if ci.name != nil {
		ri.name = C.GoString((*C.char)(unsafe.Pointer(ci.name)))
	}
	if ci.flist != nil {
		fl := (*C.cflist)(ci.flist)
		ri.major, ri.minor = byte(fl.version.major), byte(fl.version.minor)
	}
	return ri
}

func (r *raw) interfaceList() ([]rawInterface, uint) {
	var n C.ckul
	if rv := uint(C.raw_get_interface_list(r.h, nil, &n)); rv != 0 {
		return nil, rv
	}
	if n == 0 {
		return nil, 0
	}
	buf := (*C.cinterface)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.cinterface{}))))
	defer C.free(unsafe.Pointer(buf))
	if rv := uint(C.raw_get_interface_list(r.h, buf, &n)); rv != 0 {
		return nil, rv
	}
	out := make([]rawInterface, 0, int(n))
	for _, ci := range unsafe.Slice(buf, int(n)) {
		out = append(out, readInterface(&ci))
	}
	return out, 0
}

// getInterface calls C_GetInterface; name "" passes NULL (the default interface).
func (r *raw) getInterface(name string, major, minor int) (rawInterface, uint) {
	var cn *C.char
	if name != "" {
		cn = C.CString(name)
		defer C.free(unsafe.Pointer(cn))
	}
	var ver *C.ckver
	if major >= 0 {
		ver = (*C.ckver)(C.malloc(C.size_t(unsafe.Sizeof(C.ckver{}))))
		defer C.free(unsafe.Pointer(ver))
		ver.major, ver.minor = C.uchar(major), C.uchar(minor)
	}
	var out *C.cinterface
	rv := uint(C.raw_get_interface(r.h, cn, ver, &out))
	if rv != 0 || out == nil {
		return rawInterface{}, rv
	}
	return readInterface(out), rv
}
