package conformance

import (
	"encoding/binary"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// PKCS#11 3.0 and 3.2 values miekg/pkcs11 v1.1.2 lacks. The numbers are
// those of the OASIS 3.0/3.2 headers (the project's table is hsm/ck/v3.go;
// conformance must stay independent of the engine, so they are copied).
const (
	ckmECEdwardsKeyPairGen    = 0x1055
	ckmECMontgomeryKeyPairGen = 0x1056
	ckmEdDSA                  = 0x1057
	ckmAESKeyWrapKWP          = 0x210B
	ckmAESCMAC                = 0x108A
	ckmHKDFDerive             = 0x402A
	ckmSHA3_256               = 0x2B0
	ckmSHA3_256HMAC           = 0x2B1
	ckmMLKEMKeyPairGen        = 0x0F
	ckmMLKEM                  = 0x17
	ckmMLDSAKeyPairGen        = 0x1C
	ckmMLDSA                  = 0x1D

	ckkECEdwards    = 0x40
	ckkECMontgomery = 0x41
	ckkMLKEM        = 0x49
	ckkMLDSA        = 0x4A

	ckaParameterSet = 0x61D
	ckaEncapsulate  = 0x633
	ckaDecapsulate  = 0x634

	ckpMLKEM768 = 2
	ckpMLDSA65  = 2

	ckdNull      = 0x1
	ckdSHA256KDF = 0x6

	ckfHKDFSaltData = 0x2

	ckfMessageEncrypt = 0x2
	ckfMessageDecrypt = 0x4
	ckfEncapsulate    = 0x10000000
	ckfDecapsulate    = 0x20000000

	ckgNoGenerate     = 0
	ckgGenerateRandom = 3

	ckhHedgePreferred = 0

	ckrAEADDecryptFailed = 0x42
)

// Curve identifiers for CKA_EC_PARAMS (3.0 curr Edwards/Montgomery keys: an OID or a
// PrintableString curve name).
var (
	ed25519OID       = []byte{0x06, 0x03, 0x2b, 0x65, 0x70} // 1.3.101.112
	ed448OID         = []byte{0x06, 0x03, 0x2b, 0x65, 0x71} // 1.3.101.113
	x25519OID        = []byte{0x06, 0x03, 0x2b, 0x65, 0x6e} // 1.3.101.110
	edwards25519Name = append([]byte{0x13, 12}, "edwards25519"...)
)

// v3Checks are the 3.0 and 3.2 mechanism families (EdDSA, ECDH, AES key
// wrap, CMAC, HKDF, SHA-3, ML-DSA, ML-KEM, message-based AES-GCM).
func v3Checks() []check {
	var cs []check
	cs = append(cs, eddsaChecks()...)
	cs = append(cs, ecdhChecks()...)
	cs = append(cs, kwChecks()...)
	cs = append(cs, macKDFChecks()...)
	cs = append(cs, pqcChecks()...)
	cs = append(cs, hashSignChecks()...)
	cs = append(cs, hashSignGo127Checks()...)
	cs = append(cs, messageChecks()...)
	cs = append(cs, msgSignChecks()...)
	cs = append(cs, ifaceChecks()...)
	return cs
}

// ulong encodes a CK_ULONG (LP64: 8 bytes, little-endian on the hosts we run).
func ulong(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// ptr encodes a C pointer as a struct field.
func ptr(p unsafe.Pointer) []byte { return ulong(uint64(uintptr(p))) }

// bbool8 is a CK_BBOOL followed by the padding that aligns the next
// CK_ULONG or pointer field.
func bbool8(b ...bool) []byte {
	out := make([]byte, 8)
	for i, v := range b {
		if v {
			out[i] = 1
		}
	}
	return out
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// derivedSecret is the template of a derived, readable generic secret.
func derivedSecret(n int) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		attr(pkcs11.CKA_VALUE_LEN, n), attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
	}
}

// pair generates a key pair with explicit templates.
func (t *T) pair(sh pkcs11.SessionHandle, m uint, param any, pubT, privT []*pkcs11.Attribute) (pkcs11.ObjectHandle, pkcs11.ObjectHandle) {
	pub, priv, err := t.s.ctx.GenerateKeyPair(sh, mech(m, param),
		append([]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)}, pubT...),
		append([]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true)}, privT...))
	t.ok(err, "C_GenerateKeyPair("+mechName(m)+")")
	return pub, priv
}

// octets strips the DER OCTET STRING around CKA_EC_POINT when present (3.0
// curr EC public keys: the point is DER-encoded) and checks the length of the raw
// public value; a bare value is tolerated.
func (t *T) octets(v []byte, n int, what string) []byte {
	switch {
	case len(v) == n+2 && v[0] == 0x04 && int(v[1]) == n:
		return v[2:]
	case len(v) == n:
		return v
	}
	t.failf("%s is %x: want a DER OCTET STRING of %d bytes", what, v, n)
	return nil
}

// needMechFlags skips unless C_GetMechanismInfo(m) has all of flags. It
// asks through the newest interface the module offers: the flags of 3.0
// and 3.2 (CKF_MESSAGE_*, CKF_ENCAPSULATE, ...) describe functions a 2.40
// caller cannot reach, so a module may leave them out of the 2.40 list
// (iface.v240.no-message-flags requires it for CKF_MESSAGE_*).
func (t *T) needMechFlags(m, flags uint, what string) {
	mi, rv := mechInfoVia(t.s.raw.newest(), t.s.slot, m)
	t.okRV(rv, "C_GetMechanismInfo("+mechName(m)+")")
	if mi.flags&flags != flags {
		t.skipf("%s: C_GetMechanismInfo flags 0x%x lack %s", mechName(m), mi.flags, what)
	}
}
