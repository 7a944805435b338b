package conformance

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"unsafe"

	"github.com/miekg/pkcs11"
)

const msgSpec = "3.0 base: message-based encryption (C_MessageEncryptInit, C_EncryptMessage, C_DecryptMessage); curr 2.12.5 CK_GCM_MESSAGE_PARAMS"

// gcmMessage lays out CK_GCM_MESSAGE_PARAMS {pIv, ulIvLen, ulIvFixedBits,
// ivGenerator, pTag, ulTagBits} in C memory: the token writes the IV it
// generates and the tag into the buffers.
func gcmMessage(m *cmem, iv, tag unsafe.Pointer, gen uint64) (unsafe.Pointer, int) {
	b := cat(ptr(iv), ulong(12), ulong(0), ulong(gen), ptr(tag), ulong(128))
	return m.bytes(b), len(b)
}

// msgTable is the 3.0 function table; the module declared
// CKF_MESSAGE_ENCRYPT, so it must offer the functions.
func (t *T) msgTable() *cflist3 {
	t.needMechFlags(pkcs11.CKM_AES_GCM, ckfMessageEncrypt|ckfMessageDecrypt, "CKF_MESSAGE_ENCRYPT|CKF_MESSAGE_DECRYPT")
	f := t.s.raw.table3("PKCS 11", 3, 0)
	if f == nil {
		t.failf("CKM_AES_GCM declares CKF_MESSAGE_ENCRYPT but C_GetInterface(\"PKCS 11\", {3,0}) yields no function table")
	}
	return f
}

// sealMessage encrypts one message with a token-generated IV and returns
// the IV, ciphertext and tag.
func (t *T) sealMessage(m *cmem, f *cflist3, sh pkcs11.SessionHandle, aad, pt []byte) (iv, ct, tag []byte) {
	ivb, tagb := m.buf(12), m.buf(16)
	p, n := gcmMessage(m, ivb, tagb, ckgGenerateRandom)
	ct, rv := m.message(f, false, uint(sh), p, n, aad, pt, len(pt)+16)
	t.okRV(rv, "C_EncryptMessage (CKG_GENERATE_RANDOM)")
	if len(ct) != len(pt) {
		t.failf("C_EncryptMessage returned %d bytes for %d of plaintext: the tag goes to pTag, not the output", len(ct), len(pt))
	}
	return m.read(ivb, 12), ct, m.read(tagb, 16)
}

func messageChecks() []check {
	aad := []byte("conformance associated data")
	pt := []byte("PKCS#11 3.0 message-based AES-GCM, 45 bytes..")
	return []check{
		{id: "msg.aes-gcm.interop", spec: msgSpec + " (token-generated IV; Go's AES-GCM opens the result)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			f := t.msgTable()
			var m cmem
			defer m.free()
			sh := t.open(false)
			k := t.key("aes")
			t.okRV(messageInit(f, false, uint(sh), m.mechanism(pkcs11.CKM_AES_GCM, nil), uint(k.priv)), "C_MessageEncryptInit")
			iv1, ct1, tag1 := t.sealMessage(&m, f, sh, aad, pt)
			iv2, _, _ := t.sealMessage(&m, f, sh, aad, pt)
			t.okRV(messageFinal(f, false, uint(sh)), "C_MessageEncryptFinal")
			if bytes.Equal(iv1, iv2) || bytes.Equal(iv1, make([]byte, 12)) {
				t.failf("generated IVs %x and %x: want two distinct, non-zero IVs", iv1, iv2)
			}
			b, _ := aes.NewCipher(k.value)
			g, _ := cipher.NewGCM(b)
			got, err := g.Open(nil, iv1, append(append([]byte{}, ct1...), tag1...), aad)
			if err != nil {
				t.failf("Go's AES-GCM rejects the message (IV %x, tag %x): %v", iv1, tag1, err)
			}
			t.sameBytes(got, pt, "plaintext opened by Go")
		}},
		{id: "msg.aes-gcm.roundtrip", spec: msgSpec + " (C_MessageDecryptInit, C_DecryptMessage with the IV and tag)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			f := t.msgTable()
			var m cmem
			defer m.free()
			sh := t.open(false)
			k := t.key("aes")
			t.okRV(messageInit(f, false, uint(sh), m.mechanism(pkcs11.CKM_AES_GCM, nil), uint(k.priv)), "C_MessageEncryptInit")
			iv, ct, tag := t.sealMessage(&m, f, sh, aad, pt)
			t.okRV(messageFinal(f, false, uint(sh)), "C_MessageEncryptFinal")
			t.okRV(messageInit(f, true, uint(sh), m.mechanism(pkcs11.CKM_AES_GCM, nil), uint(k.priv)), "C_MessageDecryptInit")
			p, n := gcmMessage(&m, m.bytes(iv), m.bytes(tag), ckgNoGenerate)
			got, rv := m.message(f, true, uint(sh), p, n, aad, ct, len(ct)+16)
			t.okRV(rv, "C_DecryptMessage")
			t.sameBytes(got, pt, "decrypted message")
			t.okRV(messageFinal(f, true, uint(sh)), "C_MessageDecryptFinal")
		}},
		{id: "msg.aes-gcm.tampered-tag", spec: msgSpec + " (a wrong tag: CKR_AEAD_DECRYPT_FAILED, new in 3.0, or the older CKR_ENCRYPTED_DATA_INVALID)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			f := t.msgTable()
			var m cmem
			defer m.free()
			sh := t.open(false)
			k := t.key("aes")
			t.okRV(messageInit(f, false, uint(sh), m.mechanism(pkcs11.CKM_AES_GCM, nil), uint(k.priv)), "C_MessageEncryptInit")
			iv, ct, tag := t.sealMessage(&m, f, sh, aad, pt)
			t.okRV(messageFinal(f, false, uint(sh)), "C_MessageEncryptFinal")
			tag[15] ^= 1
			t.okRV(messageInit(f, true, uint(sh), m.mechanism(pkcs11.CKM_AES_GCM, nil), uint(k.priv)), "C_MessageDecryptInit")
			p, n := gcmMessage(&m, m.bytes(iv), m.bytes(tag), ckgNoGenerate)
			_, rv := m.message(f, true, uint(sh), p, n, aad, ct, len(ct)+16)
			t.expectRV(rv, "C_DecryptMessage with a corrupted tag", ckrAEADDecryptFailed, pkcs11.CKR_ENCRYPTED_DATA_INVALID)
			messageFinal(f, true, uint(sh))
		}},
	}
}
