package conformance

import (
	"crypto/aes"
	"encoding/binary"

	"github.com/miekg/pkcs11"
)

// wrapRFC3394 is the AES key wrap W of RFC 3394 section 2.2.1 with the
// initial value iv, over n >= 2 64-bit blocks.
func wrapRFC3394(kek, iv, p []byte) []byte {
	b, _ := aes.NewCipher(kek)
	n := len(p) / 8
	a := append([]byte{}, iv...)
	r := append([]byte{}, p...)
	buf := make([]byte, 16)
	for j := 0; j <= 5; j++ {
		for i := 1; i <= n; i++ {
			copy(buf, a)
			copy(buf[8:], r[(i-1)*8:i*8])
			b.Encrypt(buf, buf)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(buf[:8])^uint64(n*j+i))
			copy(r[(i-1)*8:], buf[8:])
		}
	}
	return append(a, r...)
}

// wrapRFC5649 is AES key wrap with padding: the alternative IV A65959A6
// followed by the 32-bit length, zero padding to 8 bytes, and a single AES
// block when the padded input is 8 bytes.
func wrapRFC5649(kek, p []byte) []byte {
	aiv := binary.BigEndian.AppendUint32([]byte{0xa6, 0x59, 0x59, 0xa6}, uint32(len(p)))
	padded := append(append([]byte{}, p...), make([]byte, (8-len(p)%8)%8)...)
	if len(padded) == 8 {
		b, _ := aes.NewCipher(kek)
		out := append(aiv, padded...)
		b.Encrypt(out, out)
		return out
	}
	return wrapRFC3394(kek, aiv, padded)
}

var rfc3394IV = []byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// kwCase is one AES key wrap mechanism and the key it wraps: RFC 3394 wraps
// an AES key, RFC 5649 a 20-byte secret that needs padding.
type kwCase struct {
	id, spec string
	mech     uint
	keyType  uint
	value    []byte
	ref      func(kek, p []byte) []byte
}

var kwKEK = []byte("conformance KEK!")

func kwCases() []kwCase {
	return []kwCase{
		{id: "aes-key-wrap", spec: "3.0 curr: AES Key Wrap (CKM_AES_KEY_WRAP, RFC 3394)", mech: pkcs11.CKM_AES_KEY_WRAP, keyType: pkcs11.CKK_AES,
			value: []byte("wrapped AES-256 key, 32 bytes!!!"), ref: func(k, p []byte) []byte { return wrapRFC3394(k, rfc3394IV, p) }},
		{id: "aes-key-wrap-kwp", spec: "3.0 curr: AES Key Wrap (CKM_AES_KEY_WRAP_KWP, RFC 5649)", mech: ckmAESKeyWrapKWP, keyType: pkcs11.CKK_GENERIC_SECRET,
			value: []byte("20-byte HMAC secret!"), ref: wrapRFC5649},
	}
}

// kwSetup makes the wrapping key and an extractable, non-sensitive key
// of the case's type.
func (t *T) kwSetup(sh pkcs11.SessionHandle, c kwCase, extractable bool) (kek, key pkcs11.ObjectHandle) {
	kek = t.create(sh, secretTemplate(kwKEK, attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_UNWRAP, true)), "wrapping key")
	key = t.create(sh, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, c.keyType), attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_VALUE, c.value), attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, extractable),
	}, "key to wrap")
	return kek, key
}

func (c kwCase) unwrapTemplate() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, c.keyType), attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
	}
}

func kwChecks() []check {
	var cs []check
	for _, c := range kwCases() {
		c := c
		cs = append(cs,
			check{id: "kw." + c.id + ".interop", spec: c.spec + "; base 5.18.3 C_WrapKey (blob equals the RFC computation)", mech: c.mech, fn: func(t *T) {
				sh := t.open(true)
				kek, key := t.kwSetup(sh, c, true)
				blob, err := t.s.ctx.WrapKey(sh, mech(c.mech, nil), kek, key)
				t.ok(err, "C_WrapKey")
				t.sameBytes(blob, c.ref(kwKEK, c.value), "wrapped key")
			}},
			check{id: "kw." + c.id + ".roundtrip", spec: c.spec + "; base 5.18.4 C_UnwrapKey", mech: c.mech, fn: func(t *T) {
				sh := t.open(true)
				kek, key := t.kwSetup(sh, c, true)
				blob, err := t.s.ctx.WrapKey(sh, mech(c.mech, nil), kek, key)
				t.ok(err, "C_WrapKey")
				u, err := t.s.ctx.UnwrapKey(sh, mech(c.mech, nil), kek, blob, c.unwrapTemplate())
				t.ok(err, "C_UnwrapKey")
				t.sameBytes(t.getAttr(sh, u, pkcs11.CKA_VALUE, "CKA_VALUE"), c.value, "unwrapped key value")
			}},
			check{id: "kw." + c.id + ".tampered", spec: c.spec + "; base 5.18.4 C_UnwrapKey (integrity check: CKR_WRAPPED_KEY_INVALID)", mech: c.mech, fn: func(t *T) {
				sh := t.open(true)
				kek, _ := t.kwSetup(sh, c, true)
				blob := c.ref(kwKEK, c.value)
				blob[len(blob)-3] ^= 0x10
				_, err := t.s.ctx.UnwrapKey(sh, mech(c.mech, nil), kek, blob, c.unwrapTemplate())
				t.expect(err, "C_UnwrapKey of a corrupted blob", pkcs11.CKR_WRAPPED_KEY_INVALID)
			}},
			check{id: "kw." + c.id + ".unextractable", spec: c.spec + "; base 5.18.3 C_WrapKey (CKR_KEY_UNEXTRACTABLE)", mech: c.mech, fn: func(t *T) {
				sh := t.open(true)
				kek, key := t.kwSetup(sh, c, false)
				_, err := t.s.ctx.WrapKey(sh, mech(c.mech, nil), kek, key)
				t.expect(err, "C_WrapKey of a CKA_EXTRACTABLE=FALSE key", pkcs11.CKR_KEY_UNEXTRACTABLE)
			}},
		)
	}
	return cs
}
