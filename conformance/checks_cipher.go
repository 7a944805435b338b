package conformance

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"github.com/miekg/pkcs11"
)

// cipherCase describes one encryption mechanism under test.
type cipherCase struct {
	id, spec string
	mech     uint
	key      string // fixture
	wrongKey string // fixture of a key type the mechanism does not take
	param    func() any
	badParam func() any // nil: no parameter check
	ptLen    int
	block    int  // unpadded block modes: plaintext must be a multiple
	multi    bool // multi-part allowed
	stream   bool // no invalid ciphertext exists (CTR)
	// ref encrypts with Go (symmetric modes); nil for RSA, where goEnc
	// encrypts to the module's public key instead.
	ref   func(key, pt []byte) []byte
	goEnc func(pub *rsa.PublicKey, pt []byte) ([]byte, error)
}

var (
	iv16          = []byte("0123456789abcdef")
	iv8           = []byte("01234567")
	gcmIV, gcmAAD = []byte("123456789012"), []byte("conformance aad")
)

func ctrParam() any {
	p := make([]byte, 24)
	binary.LittleEndian.PutUint64(p, 128)
	copy(p[8:], iv16)
	return p
}

func ecbEnc(b cipher.Block, pt []byte) []byte {
	out := make([]byte, len(pt))
	for i := 0; i < len(pt); i += b.BlockSize() {
		b.Encrypt(out[i:], pt[i:])
	}
	return out
}

func cbcEnc(b cipher.Block, iv, pt []byte, pad bool) []byte {
	if pad {
		n := b.BlockSize() - len(pt)%b.BlockSize()
		pt = append(append([]byte{}, pt...), bytes.Repeat([]byte{byte(n)}, n)...)
	}
	out := make([]byte, len(pt))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, pt)
	return out
}

func aesBlock(k []byte) cipher.Block  { b, _ := aes.NewCipher(k); return b }
func des3Block(k []byte) cipher.Block { b, _ := des.NewTripleDESCipher(k); return b }

func oaep(h func() hash.Hash, hashMech, mgf uint) (func() any, func(*rsa.PublicKey, []byte) ([]byte, error)) {
	return func() any { return pkcs11.NewOAEPParams(hashMech, mgf, pkcs11.CKZ_DATA_SPECIFIED, nil) },
		func(pub *rsa.PublicKey, pt []byte) ([]byte, error) {
			return rsa.EncryptOAEP(h(), rand.Reader, pub, pt, nil)
		}
}

func cipherCases() []cipherCase {
	oaep1, oaep1Enc := oaep(sha1.New, pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1)
	oaep256, oaep256Enc := oaep(sha256.New, pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256)
	return []cipherCase{
		{id: "aes-ecb", spec: "curr 2.8.6 CKM_AES_ECB", mech: pkcs11.CKM_AES_ECB, key: "aes", wrongKey: "des3", ptLen: 48, block: 16, multi: true,
			ref: func(k, pt []byte) []byte { return ecbEnc(aesBlock(k), pt) }},
		{id: "aes-cbc", spec: "curr 2.8.6 CKM_AES_CBC", mech: pkcs11.CKM_AES_CBC, key: "aes", wrongKey: "des3", ptLen: 48, block: 16, multi: true,
			param: func() any { return iv16 }, badParam: func() any { return iv8 },
			ref: func(k, pt []byte) []byte { return cbcEnc(aesBlock(k), iv16, pt, false) }},
		{id: "aes-cbc-pad", spec: "curr 2.8.6 CKM_AES_CBC_PAD", mech: pkcs11.CKM_AES_CBC_PAD, key: "aes", wrongKey: "des3", ptLen: 45, multi: true,
			param: func() any { return iv16 }, badParam: func() any { return iv8 },
			ref: func(k, pt []byte) []byte { return cbcEnc(aesBlock(k), iv16, pt, true) }},
		{id: "aes-ctr", spec: "curr 2.9 CKM_AES_CTR", mech: pkcs11.CKM_AES_CTR, key: "aes", wrongKey: "des3", ptLen: 45, multi: true, stream: true,
			param: ctrParam, badParam: func() any { p := ctrParam().([]byte); binary.LittleEndian.PutUint64(p, 0); return p },
			ref: func(k, pt []byte) []byte {
				out := make([]byte, len(pt))
				cipher.NewCTR(aesBlock(k), iv16).XORKeyStream(out, pt)
				return out
			}},
		{id: "aes-gcm", spec: "curr 2.12 CKM_AES_GCM", mech: pkcs11.CKM_AES_GCM, key: "aes", wrongKey: "des3", ptLen: 45, multi: true,
			param:    func() any { return pkcs11.NewGCMParams(gcmIV, gcmAAD, 128) },
			badParam: func() any { return pkcs11.NewGCMParams(gcmIV, gcmAAD, 200) },
			ref: func(k, pt []byte) []byte {
				g, _ := cipher.NewGCM(aesBlock(k))
				return g.Seal(nil, gcmIV, pt, gcmAAD)
			}},
		{id: "des3-ecb", spec: "curr 2.23.6 CKM_DES3_ECB", mech: pkcs11.CKM_DES3_ECB, key: "des3", wrongKey: "aes", ptLen: 48, block: 8, multi: true,
			ref: func(k, pt []byte) []byte { return ecbEnc(des3Block(k), pt) }},
		{id: "des3-cbc", spec: "curr 2.23.7 CKM_DES3_CBC", mech: pkcs11.CKM_DES3_CBC, key: "des3", wrongKey: "aes", ptLen: 48, block: 8, multi: true,
			param: func() any { return iv8 }, badParam: func() any { return iv16[:5] },
			ref: func(k, pt []byte) []byte { return cbcEnc(des3Block(k), iv8, pt, false) }},
		{id: "des3-cbc-pad", spec: "curr 2.23.7 CKM_DES3_CBC_PAD", mech: pkcs11.CKM_DES3_CBC_PAD, key: "des3", wrongKey: "aes", ptLen: 45, multi: true,
			param: func() any { return iv8 }, badParam: func() any { return iv16[:5] },
			ref: func(k, pt []byte) []byte { return cbcEnc(des3Block(k), iv8, pt, true) }},
		{id: "rsa-pkcs", spec: "curr 2.1.6 CKM_RSA_PKCS", mech: pkcs11.CKM_RSA_PKCS, key: "rsa", wrongKey: "ec", ptLen: 32, block: 245,
			goEnc: func(pub *rsa.PublicKey, pt []byte) ([]byte, error) { return rsa.EncryptPKCS1v15(rand.Reader, pub, pt) }},
		{id: "rsa-oaep-sha1", spec: "curr 2.1.8 CKM_RSA_PKCS_OAEP (SHA-1, MGF1-SHA1)", mech: pkcs11.CKM_RSA_PKCS_OAEP, key: "rsa", wrongKey: "ec", ptLen: 32, block: 214,
			param: oaep1, goEnc: oaep1Enc},
		{id: "rsa-oaep-sha256", spec: "curr 2.1.8 CKM_RSA_PKCS_OAEP (SHA-256, MGF1-SHA256)", mech: pkcs11.CKM_RSA_PKCS_OAEP, key: "rsa", wrongKey: "ec", ptLen: 32, block: 190,
			param: oaep256, goEnc: oaep256Enc},
	}
}

func (c cipherCase) m() []*pkcs11.Mechanism {
	var p any
	if c.param != nil {
		p = c.param()
	}
	return mech(c.mech, p)
}

func plaintext(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

func (c cipherCase) rsa() bool { return c.ref == nil }

// encrypt runs a single-part encryption through miekg/pkcs11.
func (t *T) encrypt(sh pkcs11.SessionHandle, c cipherCase, k *keyFx, pt []byte) []byte {
	t.ok(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit")
	ct, err := t.s.ctx.Encrypt(sh, pt)
	t.ok(err, "C_Encrypt")
	return ct
}

func (t *T) decrypt(sh pkcs11.SessionHandle, c cipherCase, k *keyFx, ct []byte) []byte {
	t.ok(t.s.ctx.DecryptInit(sh, c.m(), k.priv), "C_DecryptInit")
	pt, err := t.s.ctx.Decrypt(sh, ct)
	t.ok(err, "C_Decrypt")
	return pt
}

// expected is the reference ciphertext (symmetric) or, for RSA, nil.
func (c cipherCase) expected(k *keyFx, pt []byte) []byte {
	if c.ref == nil {
		return nil
	}
	return c.ref(k.value, pt)
}

func (t *T) sameBytes(got, want []byte, what string) {
	if !bytes.Equal(got, want) {
		t.failf("%s: got %x, want %x", what, got, want)
	}
}

// cipherChecks expands every cipher case into its checks (base 5.8 and 5.10,
// buffer conventions of base 5.2).
func cipherChecks() []check {
	var cs []check
	for _, c := range cipherCases() {
		c := c
		add := func(suffix, spec string, fn func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte)) {
			cs = append(cs, check{id: "enc." + c.id + "." + suffix, spec: c.spec + "; " + spec, mech: c.mech, fn: func(t *T) {
				k := t.key(c.key)
				fn(t, t.open(false), k, plaintext(c.ptLen))
			}})
		}
		add("mechinfo", "base 5.5.6 C_GetMechanismInfo (CKF_ENCRYPT|CKF_DECRYPT)", func(t *T, _ pkcs11.SessionHandle, _ *keyFx, _ []byte) {
			mi, err := t.s.ctx.GetMechanismInfo(t.s.slot, mech(c.mech, nil))
			t.ok(err, "C_GetMechanismInfo")
			if mi.Flags&(pkcs11.CKF_ENCRYPT|pkcs11.CKF_DECRYPT) != pkcs11.CKF_ENCRYPT|pkcs11.CKF_DECRYPT {
				t.failf("flags 0x%x lack CKF_ENCRYPT|CKF_DECRYPT", mi.Flags)
			}
		})
		add("roundtrip", "base 5.8.2 C_Encrypt, 5.10.2 C_Decrypt", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
			ct := t.encrypt(sh, c, k, pt)
			t.sameBytes(t.decrypt(sh, c, k, ct), pt, "decrypt(encrypt(pt))")
		})
		if c.rsa() {
			add("interop", "decrypts what a reference implementation (Go crypto/rsa) encrypted", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
				ct, err := c.goEnc(k.rsaPub, pt)
				if err != nil {
					t.failf("reference encryption: %v", err)
				}
				t.sameBytes(t.decrypt(sh, c, k, ct), pt, "module decryption of a Go ciphertext")
			})
		} else {
			add("known-answer", "output equals a reference implementation (Go crypto)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
				t.sameBytes(t.encrypt(sh, c, k, pt), c.expected(k, pt), "ciphertext")
			})
		}
		if c.multi {
			add("multipart", "base 5.8.3 C_EncryptUpdate, 5.8.4 C_EncryptFinal, 5.10.3, 5.10.4", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
				want := c.expected(k, pt)
				t.ok(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit")
				var ct []byte
				for _, part := range [][]byte{pt[:7], pt[7:20], pt[20:]} {
					out, err := t.s.ctx.EncryptUpdate(sh, part)
					t.ok(err, "C_EncryptUpdate")
					ct = append(ct, out...)
				}
				out, err := t.s.ctx.EncryptFinal(sh)
				t.ok(err, "C_EncryptFinal")
				ct = append(ct, out...)
				t.sameBytes(ct, want, "multi-part ciphertext")
				t.ok(t.s.ctx.DecryptInit(sh, c.m(), k.priv), "C_DecryptInit")
				var back []byte
				for _, part := range [][]byte{ct[:5], ct[5:31], ct[31:]} {
					out, err := t.s.ctx.DecryptUpdate(sh, part)
					t.ok(err, "C_DecryptUpdate")
					back = append(back, out...)
				}
				out, err = t.s.ctx.DecryptFinal(sh)
				t.ok(err, "C_DecryptFinal")
				t.sameBytes(append(back, out...), pt, "multi-part plaintext")
			})
			add("final-size-query", "base 5.8.4 C_EncryptFinal, 5.2 (NULL buffer keeps the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
				want := c.expected(k, pt)
				t.ok(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit")
				head, err := t.s.ctx.EncryptUpdate(sh, pt)
				t.ok(err, "C_EncryptUpdate")
				_, n, rv := t.s.raw.final(fnEncryptFinal, uint(sh), -1)
				t.okRV(rv, "C_EncryptFinal(NULL)")
				tail, _, rv := t.s.raw.final(fnEncryptFinal, uint(sh), int(n))
				t.okRV(rv, "C_EncryptFinal after the size query")
				t.sameBytes(append(head, tail...), want, "ciphertext")
			})
			add("update-too-small", "base 5.8.3 C_EncryptUpdate, 5.2 (CKR_BUFFER_TOO_SMALL keeps the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
				want := c.expected(k, pt)
				t.ok(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit")
				blk := pt[:32]
				_, n, rv := t.s.raw.inout(fnEncryptUpdate, uint(sh), blk, 0)
				if rv == 0 && n == 0 {
					t.note("module buffers the whole update (output 0 bytes)")
				} else {
					t.expectRV(rv, "C_EncryptUpdate into a 0-byte buffer", pkcs11.CKR_BUFFER_TOO_SMALL)
				}
				var ct []byte
				if rv != 0 {
					out, _, rv := t.s.raw.inout(fnEncryptUpdate, uint(sh), blk, int(n))
					t.okRV(rv, "C_EncryptUpdate retried with the returned length")
					ct = out
				}
				rest, err := t.s.ctx.EncryptUpdate(sh, pt[32:])
				t.ok(err, "C_EncryptUpdate")
				fin, err := t.s.ctx.EncryptFinal(sh)
				t.ok(err, "C_EncryptFinal")
				t.sameBytes(append(append(ct, rest...), fin...), want, "ciphertext")
			})
			add("oneshot-after-update", "base 5.8.2 C_Encrypt (cannot finish a multi-part operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
				t.ok(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit")
				_, err := t.s.ctx.EncryptUpdate(sh, pt[:16])
				t.ok(err, "C_EncryptUpdate")
				_, _, rv := t.s.raw.inout(fnEncrypt, uint(sh), pt[16:32], 64)
				if rv == 0 {
					t.failf("C_Encrypt after C_EncryptUpdate returned CKR_OK")
				}
				t.note("C_Encrypt after C_EncryptUpdate: %s", rvName(rv))
			})
		}
		add("size-query", "base 5.8.2 C_Encrypt, 5.2 (NULL buffer: length, operation kept)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
			t.ok(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit")
			_, n, rv := t.s.raw.inout(fnEncrypt, uint(sh), pt, -1)
			t.okRV(rv, "C_Encrypt(NULL)")
			ct, _, rv := t.s.raw.inout(fnEncrypt, uint(sh), pt, int(n))
			t.okRV(rv, "C_Encrypt with the returned length")
			if want := c.expected(k, pt); want != nil {
				t.sameBytes(ct, want, "ciphertext")
			} else if len(ct) != k.rsaPub.Size() {
				t.failf("RSA ciphertext of %d bytes", len(ct))
			}
		})
		add("too-small", "base 5.8.2 C_Encrypt, 5.2 (CKR_BUFFER_TOO_SMALL keeps the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
			t.ok(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit")
			_, n, rv := t.s.raw.inout(fnEncrypt, uint(sh), pt, 1)
			t.expectRV(rv, "C_Encrypt into a 1-byte buffer", pkcs11.CKR_BUFFER_TOO_SMALL)
			ct, _, rv := t.s.raw.inout(fnEncrypt, uint(sh), pt, int(n))
			t.okRV(rv, "C_Encrypt retried with the returned length")
			if want := c.expected(k, pt); want != nil {
				t.sameBytes(ct, want, "ciphertext")
			}
		})
		add("decrypt-too-small", "base 5.10.2 C_Decrypt, 5.2 (CKR_BUFFER_TOO_SMALL keeps the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
			ct := t.encrypt(sh, c, k, pt)
			t.ok(t.s.ctx.DecryptInit(sh, c.m(), k.priv), "C_DecryptInit")
			_, n, rv := t.s.raw.inout(fnDecrypt, uint(sh), ct, 1)
			t.expectRV(rv, "C_Decrypt into a 1-byte buffer", pkcs11.CKR_BUFFER_TOO_SMALL)
			back, _, rv := t.s.raw.inout(fnDecrypt, uint(sh), ct, int(n))
			t.okRV(rv, "C_Decrypt retried with the returned length")
			t.sameBytes(back, pt, "plaintext")
		})
		add("terminates", "base 5.8.2 C_Encrypt (a successful call ends the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
			t.encrypt(sh, c, k, pt)
			_, err := t.s.ctx.Encrypt(sh, pt)
			t.expect(err, "second C_Encrypt", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		})
		add("active", "base 5.8.1 C_EncryptInit (CKR_OPERATION_ACTIVE)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
			t.ok(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit")
			t.expect(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "second C_EncryptInit", pkcs11.CKR_OPERATION_ACTIVE)
			ct, err := t.s.ctx.Encrypt(sh, pt)
			t.ok(err, "C_Encrypt of the first operation")
			if want := c.expected(k, pt); want != nil {
				t.sameBytes(ct, want, "ciphertext")
			}
		})
		if !c.stream {
			add("decrypt-error-terminates", "base 5.10.2 C_Decrypt (an error ends the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, pt []byte) {
				ct := t.encrypt(sh, c, k, pt)
				bad := ct[:len(ct)-1]
				if c.mech == pkcs11.CKM_AES_GCM {
					bad = append([]byte{}, ct...)
					bad[len(bad)-1] ^= 1
				}
				t.ok(t.s.ctx.DecryptInit(sh, c.m(), k.priv), "C_DecryptInit")
				_, _, rv := t.s.raw.inout(fnDecrypt, uint(sh), bad, 4096)
				if rv == 0 {
					t.failf("C_Decrypt of a corrupt ciphertext returned CKR_OK")
				}
				_, _, rv2 := t.s.raw.inout(fnDecrypt, uint(sh), ct, 4096)
				t.expectRV(rv2, "C_Decrypt after "+rvName(rv), pkcs11.CKR_OPERATION_NOT_INITIALIZED)
			})
		}
		if c.block != 0 {
			add("data-len-range", "base 5.8.2 C_Encrypt (CKR_DATA_LEN_RANGE)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, _ []byte) {
				n := c.block + 1
				if c.rsa() {
					n = c.block + 1 // one byte over the padding limit for a 2048-bit key
				} else {
					n = c.block - 1
				}
				t.ok(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit")
				_, err := t.s.ctx.Encrypt(sh, plaintext(n))
				t.expect(err, "C_Encrypt of a bad length", pkcs11.CKR_DATA_LEN_RANGE)
			})
		}
		add("encrypt-not-permitted", "base 5.8.1 C_EncryptInit, 4.7 CKA_ENCRYPT (CKR_KEY_FUNCTION_NOT_PERMITTED)", func(t *T, sh pkcs11.SessionHandle, _ *keyFx, _ []byte) {
			k := t.key(c.key + "-nouse")
			t.expect(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit with CKA_ENCRYPT=FALSE", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)
		})
		add("decrypt-not-permitted", "base 5.10.1 C_DecryptInit, 4.7 CKA_DECRYPT (CKR_KEY_FUNCTION_NOT_PERMITTED)", func(t *T, sh pkcs11.SessionHandle, _ *keyFx, _ []byte) {
			k := t.key(c.key + "-nouse")
			t.expect(t.s.ctx.DecryptInit(sh, c.m(), k.priv), "C_DecryptInit with CKA_DECRYPT=FALSE", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)
		})
		add("wrong-key-type", "base 5.8.1 C_EncryptInit (CKR_KEY_TYPE_INCONSISTENT)", func(t *T, sh pkcs11.SessionHandle, _ *keyFx, _ []byte) {
			k := t.key(c.wrongKey)
			t.expect(t.s.ctx.EncryptInit(sh, c.m(), k.pub), "C_EncryptInit with a "+c.wrongKey+" key", pkcs11.CKR_KEY_TYPE_INCONSISTENT)
		})
		if c.badParam != nil {
			add("bad-param", "base 5.8.1 C_EncryptInit (CKR_MECHANISM_PARAM_INVALID)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, _ []byte) {
				err := t.s.ctx.EncryptInit(sh, mech(c.mech, c.badParam()), k.pub)
				t.expect(err, "C_EncryptInit with an invalid parameter", pkcs11.CKR_MECHANISM_PARAM_INVALID)
			})
		}
	}
	return cs
}
