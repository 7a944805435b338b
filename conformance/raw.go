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

	"github.com/miekg/pkcs11"
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

// cmem holds C allocations for one check: parameter structures handed to
// a module carry pointers, and those must point into C memory.
type cmem struct{ ptrs []unsafe.Pointer }

// bytes copies b into C memory; an empty b yields NULL.
func (m *cmem) bytes(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	p := C.CBytes(b)
	m.ptrs = append(m.ptrs, p)
	return p
}

// buf allocates n zero bytes of C memory.
func (m *cmem) buf(n int) unsafe.Pointer {
	p := C.calloc(C.size_t(n+1), 1)
	m.ptrs = append(m.ptrs, p)
	return p
}

// read copies n bytes of C memory at p.
func (m *cmem) read(p unsafe.Pointer, n int) []byte { return C.GoBytes(p, C.int(n)) }

func (m *cmem) free() {
	for _, p := range m.ptrs {
		C.free(p)
	}
	m.ptrs = nil
}

// template lays a template out as a C CK_ATTRIBUTE array.
func (m *cmem) template(tmpl []*pkcs11.Attribute) (*C.cattr, C.ckul) {
	if len(tmpl) == 0 {
		return nil, 0
	}
	arr := (*C.cattr)(m.buf(len(tmpl) * int(unsafe.Sizeof(C.cattr{}))))
	cs := unsafe.Slice(arr, len(tmpl))
	for i := range cs {
		ca := &cs[i]
		ca._type = C.ckul(tmpl[i].Type)
		ca.pValue = m.bytes(tmpl[i].Value)
		ca.ulValueLen = C.ckul(len(tmpl[i].Value))
	}
	return arr, C.ckul(len(tmpl))
}

// mechanism lays out a CK_MECHANISM whose parameter is param (nil: NULL).
func (m *cmem) mechanism(typ uint, param []byte) *C.cmech {
	cm := (*C.cmech)(m.buf(int(unsafe.Sizeof(C.cmech{}))))
	cm.mechanism = C.ckul(typ)
	cm.pParameter = m.bytes(param)
	cm.ulParameterLen = C.ckul(len(param))
	return cm
}

// cflist3 is a CK_FUNCTION_LIST_3_2 (the 3.0 table is its prefix).
type cflist3 = C.cflist3

// table3 is the function table of C_GetInterface(name, version), nil when
// the module has no such interface.
func (r *raw) table3(name string, major, minor byte) *C.cflist3 {
	if !r.hasInterface() {
		return nil
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	ver := (*C.ckver)(C.malloc(C.size_t(unsafe.Sizeof(C.ckver{}))))
	defer C.free(unsafe.Pointer(ver))
	ver.major, ver.minor = C.uchar(major), C.uchar(minor)
	return C.raw_interface_table(r.h, cn, ver)
}

// messageInit is C_MessageEncryptInit (decrypt false) or C_MessageDecryptInit.
func messageInit(f *C.cflist3, decrypt bool, sess uint, m *C.cmech, key uint) uint {
	return uint(C.raw_message_init(f, cbool(decrypt), C.ckul(sess), m, C.ckul(key)))
}

// message is C_EncryptMessage or C_DecryptMessage with an output buffer of
// outCap bytes; param is C memory of paramLen bytes.
func (m *cmem) message(f *C.cflist3, decrypt bool, sess uint, param unsafe.Pointer, paramLen int, aad, in []byte, outCap int) ([]byte, uint) {
	out := m.buf(outCap)
	n := C.ckul(outCap)
	rv := uint(C.raw_message(f, cbool(decrypt), C.ckul(sess), param, C.ckul(paramLen),
		(*C.uchar)(m.bytes(aad)), C.ckul(len(aad)), (*C.uchar)(m.bytes(in)), C.ckul(len(in)), (*C.uchar)(out), &n))
	if rv != 0 || int(n) > outCap {
		return nil, rv
	}
	return m.read(out, int(n)), rv
}

func messageFinal(f *C.cflist3, decrypt bool, sess uint) uint {
	return uint(C.raw_message_final(f, cbool(decrypt), C.ckul(sess)))
}

// encapsulate is C_EncapsulateKey; ctCap < 0 passes a NULL ciphertext
// buffer (the size query). It returns the ciphertext, its length, the new
// key's handle and the CK_RV.
func (m *cmem) encapsulate(f *C.cflist3, sess uint, mc *C.cmech, pub uint, tmpl []*pkcs11.Attribute, ctCap int) ([]byte, uint, uint, uint) {
	ct, cn := m.template(tmpl)
	var out unsafe.Pointer
	n := C.ckul(0)
	if ctCap >= 0 {
		out, n = m.buf(ctCap), C.ckul(ctCap)
	}
	var key C.ckul
	rv := uint(C.raw_encapsulate(f, C.ckul(sess), mc, C.ckul(pub), ct, cn, (*C.uchar)(out), &n, &key))
	if rv != 0 || out == nil || int(n) > ctCap {
		return nil, uint(n), uint(key), rv
	}
	return m.read(out, int(n)), uint(n), uint(key), rv
}

// decapsulate is C_DecapsulateKey.
func (m *cmem) decapsulate(f *C.cflist3, sess uint, mc *C.cmech, priv uint, tmpl []*pkcs11.Attribute, ct []byte) (uint, uint) {
	ctp, cn := m.template(tmpl)
	var key C.ckul
	rv := uint(C.raw_decapsulate(f, C.ckul(sess), mc, C.ckul(priv), ctp, cn, (*C.uchar)(m.bytes(ct)), C.ckul(len(ct)), &key))
	return uint(key), rv
}
