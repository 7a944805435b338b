package conformance

/*
#include "raw.h"

// Indices in CK_FUNCTION_LIST_3_2 (3.0 and 3.2 headers' order).
enum {
	IX_MESSAGE_SIGN_INIT = 82, IX_SIGN_MESSAGE = 83, IX_SIGN_MESSAGE_BEGIN = 84, IX_SIGN_MESSAGE_NEXT = 85,
	IX_MESSAGE_SIGN_FINAL = 86, IX_MESSAGE_VERIFY_INIT = 87, IX_VERIFY_MESSAGE = 88,
	IX_MESSAGE_VERIFY_FINAL = 91,
	IX_VERIFY_SIGNATURE_INIT = 94, IX_VERIFY_SIGNATURE = 95, IX_VERIFY_SIGNATURE_UPDATE = 96,
	IX_VERIFY_SIGNATURE_FINAL = 97, IX_GET_SESSION_VALIDATION_FLAGS = 98,
};

typedef ckul (*fn_minit)(ckul, cmech *, ckul);
typedef ckul (*fn_sess)(ckul);
typedef ckul (*fn_signmsg)(ckul, void *, ckul, unsigned char *, ckul, unsigned char *, ckul *);
typedef ckul (*fn_begin)(ckul, void *, ckul);
typedef ckul (*fn_verifymsg)(ckul, void *, ckul, unsigned char *, ckul, unsigned char *, ckul);
typedef ckul (*fn_vsinit)(ckul, cmech *, ckul, unsigned char *, ckul);
typedef ckul (*fn_in)(ckul, unsigned char *, ckul);
typedef ckul (*fn_vflags)(ckul, ckul, ckul *);

static ckul ms_init(cflist3 *f, int verify, ckul s, cmech *m, ckul k) {
	return ((fn_minit)f->fn[verify ? IX_MESSAGE_VERIFY_INIT : IX_MESSAGE_SIGN_INIT])(s, m, k);
}
static ckul ms_final(cflist3 *f, int verify, ckul s) {
	return ((fn_sess)f->fn[verify ? IX_MESSAGE_VERIFY_FINAL : IX_MESSAGE_SIGN_FINAL])(s);
}
static ckul ms_sign(cflist3 *f, ckul s, void *p, ckul pn, unsigned char *d, ckul dn, unsigned char *sig, ckul *sn) {
	return ((fn_signmsg)f->fn[IX_SIGN_MESSAGE])(s, p, pn, d, dn, sig, sn);
}
static ckul ms_begin(cflist3 *f, ckul s, void *p, ckul pn) {
	return ((fn_begin)f->fn[IX_SIGN_MESSAGE_BEGIN])(s, p, pn);
}
static ckul ms_next(cflist3 *f, ckul s, void *p, ckul pn, unsigned char *d, ckul dn, unsigned char *sig, ckul *sn) {
	return ((fn_signmsg)f->fn[IX_SIGN_MESSAGE_NEXT])(s, p, pn, d, dn, sig, sn);
}
static ckul ms_verify(cflist3 *f, ckul s, void *p, ckul pn, unsigned char *d, ckul dn, unsigned char *sig, ckul sn) {
	return ((fn_verifymsg)f->fn[IX_VERIFY_MESSAGE])(s, p, pn, d, dn, sig, sn);
}
static ckul vs_init(cflist3 *f, ckul s, cmech *m, ckul k, unsigned char *sig, ckul sn) {
	return ((fn_vsinit)f->fn[IX_VERIFY_SIGNATURE_INIT])(s, m, k, sig, sn);
}
static ckul vs_in(cflist3 *f, int update, ckul s, unsigned char *d, ckul dn) {
	return ((fn_in)f->fn[update ? IX_VERIFY_SIGNATURE_UPDATE : IX_VERIFY_SIGNATURE])(s, d, dn);
}
static ckul vs_final(cflist3 *f, ckul s) {
	return ((fn_sess)f->fn[IX_VERIFY_SIGNATURE_FINAL])(s);
}
static ckul vs_flags(cflist3 *f, ckul s, ckul type, ckul *flags) {
	return ((fn_vflags)f->fn[IX_GET_SESSION_VALIDATION_FLAGS])(s, type, flags);
}
*/
import "C"

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"math/big"

	"github.com/miekg/pkcs11"
)

const (
	msgSignSpec             = "3.0 base 5.15/5.17: message-based signing and verification (C_MessageSignInit, C_SignMessage, C_SignMessageBegin/Next, C_VerifyMessage)"
	verifySigSpec           = "3.2 base: C_VerifySignatureInit, C_VerifySignature, C_VerifySignatureUpdate, C_VerifySignatureFinal"
	ckrFunctionNotSupported = 0x54
	ckrSignatureInvalid     = 0xC0
	ckrOperationNotInit     = 0x91
	ckrOperationActive      = 0x90
)

// msgSignTable is the 3.0 table when the module offers message signing
// (C_MessageSignInit other than CKR_FUNCTION_NOT_SUPPORTED), else the check
// is skipped: the spec lets a module leave the message API out.
func (t *T) msgSignTable(m *cmem, sh pkcs11.SessionHandle, mech uint, key pkcs11.ObjectHandle) *cflist3 {
	f := t.s.raw.table3("PKCS 11", 3, 0)
	if f == nil {
		t.skipf("no PKCS 11 3.0 interface")
	}
	rv := uint(C.ms_init(f, 0, C.ckul(sh), m.mechanism(mech, nil), C.ckul(key)))
	if rv == ckrFunctionNotSupported {
		t.skipf("C_MessageSignInit: CKR_FUNCTION_NOT_SUPPORTED")
	}
	t.okRV(rv, "C_MessageSignInit")
	return f
}

// signMessage is C_SignMessage with a NULL parameter: a size query, then
// the signature.
func (t *T) signMessage(m *cmem, f *cflist3, sh pkcs11.SessionHandle, data []byte) []byte {
	var n C.ckul
	d := (*C.uchar)(m.bytes(data))
	t.okRV(uint(C.ms_sign(f, C.ckul(sh), nil, 0, d, C.ckul(len(data)), nil, &n)), "C_SignMessage (size query)")
	if n == 0 || n > 4096 {
		t.failf("C_SignMessage size query: %d bytes", n)
	}
	small := n - 1
	out := m.buf(int(n))
	if rv := uint(C.ms_sign(f, C.ckul(sh), nil, 0, d, C.ckul(len(data)), (*C.uchar)(out), &small)); rv != 0x150 || small != n {
		t.failf("C_SignMessage with a buffer one byte short: %s, length %d (want CKR_BUFFER_TOO_SMALL, %d)", rvName(rv), small, n)
	}
	got := n
	t.okRV(uint(C.ms_sign(f, C.ckul(sh), nil, 0, d, C.ckul(len(data)), (*C.uchar)(out), &got)), "C_SignMessage")
	return m.read(out, int(got))
}

func ecdsaPublic(t *T, sh pkcs11.SessionHandle, pub pkcs11.ObjectHandle) *ecdsa.PublicKey {
	point := t.getAttr(sh, pub, pkcs11.CKA_EC_POINT, "CKA_EC_POINT")
	// DER OCTET STRING around the uncompressed point (65 bytes for P-256).
	if len(point) == 67 {
		point = point[2:]
	}
	x, y := elliptic.Unmarshal(elliptic.P256(), point)
	if x == nil {
		t.failf("CKA_EC_POINT %x is not an uncompressed P-256 point", point)
	}
	return &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
}

func goVerifyP256(t *T, pk *ecdsa.PublicKey, data, sig []byte, what string) {
	h := sha256.Sum256(data)
	if len(sig) != 64 || !ecdsa.Verify(pk, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.failf("%s: Go's ECDSA rejects the signature %x", what, sig)
	}
}

func msgSignChecks() []check {
	data := []byte("PKCS#11 message-based signing, checked by Go's crypto/ecdsa")
	return []check{
		{id: "msgsign.ecdsa-sha256.interop", spec: msgSignSpec + " (whole and multi-part messages; Go verifies)", mech: pkcs11.CKM_ECDSA_SHA256, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(false)
			k := t.key("ec")
			f := t.msgSignTable(&m, sh, pkcs11.CKM_ECDSA_SHA256, k.priv)
			pk := ecdsaPublic(t, sh, k.pub)
			goVerifyP256(t, pk, data, t.signMessage(&m, f, sh, data), "C_SignMessage, first message")
			goVerifyP256(t, pk, data, t.signMessage(&m, f, sh, data), "C_SignMessage, second message")
			t.okRV(uint(C.ms_begin(f, C.ckul(sh), nil, 0)), "C_SignMessageBegin")
			if rv := uint(C.ms_sign(f, C.ckul(sh), nil, 0, (*C.uchar)(m.bytes(data)), C.ckul(len(data)), nil, new(C.ckul))); rv != ckrOperationActive {
				t.failf("C_SignMessage during a multi-part message: %s, want CKR_OPERATION_ACTIVE", rvName(rv))
			}
			t.okRV(uint(C.ms_next(f, C.ckul(sh), nil, 0, (*C.uchar)(m.bytes(data[:10])), 10, nil, nil)), "C_SignMessageNext (more parts)")
			out := m.buf(64)
			n := C.ckul(64)
			rest := data[10:]
			t.okRV(uint(C.ms_next(f, C.ckul(sh), nil, 0, (*C.uchar)(m.bytes(rest)), C.ckul(len(rest)), (*C.uchar)(out), &n)), "C_SignMessageNext (last part)")
			goVerifyP256(t, pk, data, m.read(out, int(n)), "C_SignMessageBegin/Next")
			t.okRV(uint(C.ms_final(f, 0, C.ckul(sh))), "C_MessageSignFinal")
			if rv := uint(C.ms_final(f, 0, C.ckul(sh))); rv != ckrOperationNotInit {
				t.failf("second C_MessageSignFinal: %s, want CKR_OPERATION_NOT_INITIALIZED", rvName(rv))
			}
		}},
		{id: "msgsign.ecdsa-sha256.verify", spec: msgSignSpec + " (C_VerifyMessage accepts C_Sign's signature, rejects a changed one, and goes on)", mech: pkcs11.CKM_ECDSA_SHA256, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(false)
			k := t.key("ec")
			f := t.msgSignTable(&m, sh, pkcs11.CKM_ECDSA_SHA256, k.priv)
			t.okRV(uint(C.ms_final(f, 0, C.ckul(sh))), "C_MessageSignFinal")
			t.ok(t.s.ctx.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA_SHA256, nil)}, k.priv), "C_SignInit")
			sig, err := t.s.ctx.Sign(sh, data)
			t.ok(err, "C_Sign")
			t.okRV(uint(C.ms_init(f, 1, C.ckul(sh), m.mechanism(pkcs11.CKM_ECDSA_SHA256, nil), C.ckul(k.pub))), "C_MessageVerifyInit")
			verify := func(sig []byte) uint {
				return uint(C.ms_verify(f, C.ckul(sh), nil, 0, (*C.uchar)(m.bytes(data)), C.ckul(len(data)), (*C.uchar)(m.bytes(sig)), C.ckul(len(sig))))
			}
			t.okRV(verify(sig), "C_VerifyMessage")
			bad := append([]byte{}, sig...)
			bad[5] ^= 1
			if rv := verify(bad); rv != ckrSignatureInvalid {
				t.failf("C_VerifyMessage with a changed signature: %s, want CKR_SIGNATURE_INVALID", rvName(rv))
			}
			t.okRV(verify(sig), "C_VerifyMessage after a failed message")
			t.okRV(uint(C.ms_final(f, 1, C.ckul(sh))), "C_MessageVerifyFinal")
		}},
		{id: "verifysig.ecdsa-sha256", spec: verifySigSpec + " (signature first; single- and multi-part; a changed signature is CKR_SIGNATURE_INVALID)", mech: pkcs11.CKM_ECDSA_SHA256, fn: func(t *T) {
			var m cmem
			defer m.free()
			f := t.s.raw.table3("PKCS 11", 3, 2)
			if f == nil {
				t.skipf("no PKCS 11 3.2 interface")
			}
			sh := t.open(false)
			k := t.key("ec")
			t.ok(t.s.ctx.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA_SHA256, nil)}, k.priv), "C_SignInit")
			sig, err := t.s.ctx.Sign(sh, data)
			t.ok(err, "C_Sign")
			init := func(sig []byte) uint {
				return uint(C.vs_init(f, C.ckul(sh), m.mechanism(pkcs11.CKM_ECDSA_SHA256, nil), C.ckul(k.pub), (*C.uchar)(m.bytes(sig)), C.ckul(len(sig))))
			}
			in := func(update bool, d []byte) uint {
				return uint(C.vs_in(f, cbool(update), C.ckul(sh), (*C.uchar)(m.bytes(d)), C.ckul(len(d))))
			}
			rv := init(sig)
			if rv == ckrFunctionNotSupported {
				t.skipf("C_VerifySignatureInit: CKR_FUNCTION_NOT_SUPPORTED")
			}
			t.okRV(rv, "C_VerifySignatureInit")
			t.okRV(in(false, data), "C_VerifySignature")
			if rv := in(false, data); rv != ckrOperationNotInit {
				t.failf("C_VerifySignature after the operation ended: %s, want CKR_OPERATION_NOT_INITIALIZED", rvName(rv))
			}
			t.okRV(init(sig), "C_VerifySignatureInit")
			t.okRV(in(true, data[:7]), "C_VerifySignatureUpdate")
			t.okRV(in(true, data[7:]), "C_VerifySignatureUpdate")
			t.okRV(uint(C.vs_final(f, C.ckul(sh))), "C_VerifySignatureFinal")
			bad := append([]byte{}, sig...)
			bad[9] ^= 2
			t.okRV(init(bad), "C_VerifySignatureInit (changed signature)")
			if rv := in(false, data); rv != ckrSignatureInvalid {
				t.failf("C_VerifySignature with a changed signature: %s, want CKR_SIGNATURE_INVALID", rvName(rv))
			}
			var flags C.ckul = 0xffff
			rv = uint(C.vs_flags(f, C.ckul(sh), 1, &flags))
			if rv == ckrFunctionNotSupported {
				return
			}
			t.okRV(rv, "C_GetSessionValidationFlags(CKS_LAST_VALIDATION_OK)")
			t.note("CKS_LAST_VALIDATION_OK flags %#x", uint64(flags))
		}},
	}
}
