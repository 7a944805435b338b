package conformance

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"math/bits"

	"github.com/miekg/pkcs11"
)

type digestCase struct {
	id   string
	mech uint
	h    func() hash.Hash
	spec string
}

func digestCases() []digestCase {
	return []digestCase{
		{"sha1", pkcs11.CKM_SHA_1, sha1.New, "curr 2.20 SHA-1 (CKM_SHA_1)"},
		{"sha224", pkcs11.CKM_SHA224, sha256.New224, "curr 2.21 SHA-224 (CKM_SHA224)"},
		{"sha256", pkcs11.CKM_SHA256, sha256.New, "curr 2.22 SHA-256 (CKM_SHA256)"},
		{"sha384", pkcs11.CKM_SHA384, sha512.New384, "curr 2.23 SHA-384 (CKM_SHA384)"},
		{"sha512", pkcs11.CKM_SHA512, sha512.New, "curr 2.24 SHA-512 (CKM_SHA512)"},
	}
}

func sum(h func() hash.Hash, b []byte) []byte { x := h(); x.Write(b); return x.Sum(nil) }

// digestChecks covers base 5.12 (message digesting) for each hash.
func digestChecks() []check {
	var cs []check
	msg := plaintext(1000)
	for _, d := range digestCases() {
		d := d
		add := func(suffix, spec string, fn func(t *T, sh pkcs11.SessionHandle)) {
			cs = append(cs, check{id: "dig." + d.id + "." + suffix, spec: d.spec + "; " + spec, mech: d.mech, fn: func(t *T) { fn(t, t.open(false)) }})
		}
		add("mechinfo", "base 5.5.6 C_GetMechanismInfo (CKF_DIGEST)", func(t *T, _ pkcs11.SessionHandle) {
			mi, err := t.s.ctx.GetMechanismInfo(t.s.slot, mech(d.mech, nil))
			t.ok(err, "C_GetMechanismInfo")
			if mi.Flags&pkcs11.CKF_DIGEST == 0 {
				t.failf("flags 0x%x lack CKF_DIGEST", mi.Flags)
			}
		})
		add("known-answer", "base 5.12.2 C_Digest (equals the reference)", func(t *T, sh pkcs11.SessionHandle) {
			for _, in := range [][]byte{[]byte("abc"), msg, {}} {
				t.ok(t.s.ctx.DigestInit(sh, mech(d.mech, nil)), "C_DigestInit")
				got, _, rv := t.s.raw.inout(fnDigest, uint(sh), in, 64)
				t.okRV(rv, "C_Digest")
				t.sameBytes(got, sum(d.h, in), "digest of "+string(rune('0'+len(in)%10))+"-ish input")
			}
		})
		add("multipart", "base 5.12.3 C_DigestUpdate, 5.12.5 C_DigestFinal", func(t *T, sh pkcs11.SessionHandle) {
			t.ok(t.s.ctx.DigestInit(sh, mech(d.mech, nil)), "C_DigestInit")
			for _, p := range [][]byte{msg[:1], msg[1:500], {}, msg[500:]} {
				t.ok(t.s.ctx.DigestUpdate(sh, p), "C_DigestUpdate")
			}
			got, err := t.s.ctx.DigestFinal(sh)
			t.ok(err, "C_DigestFinal")
			t.sameBytes(got, sum(d.h, msg), "multi-part digest")
		})
		add("size-query", "base 5.12.2 C_Digest, 5.2 (NULL buffer: exact length, operation kept)", func(t *T, sh pkcs11.SessionHandle) {
			t.ok(t.s.ctx.DigestInit(sh, mech(d.mech, nil)), "C_DigestInit")
			_, n, rv := t.s.raw.inout(fnDigest, uint(sh), msg, -1)
			t.okRV(rv, "C_Digest(NULL)")
			if int(n) != d.h().Size() {
				t.failf("size query says %d, digest is %d bytes", n, d.h().Size())
			}
			got, _, rv := t.s.raw.inout(fnDigest, uint(sh), msg, int(n))
			t.okRV(rv, "C_Digest")
			t.sameBytes(got, sum(d.h, msg), "digest")
		})
		add("too-small", "base 5.12.2 C_Digest, 5.2 (CKR_BUFFER_TOO_SMALL keeps the operation)", func(t *T, sh pkcs11.SessionHandle) {
			t.ok(t.s.ctx.DigestInit(sh, mech(d.mech, nil)), "C_DigestInit")
			_, n, rv := t.s.raw.inout(fnDigest, uint(sh), msg, d.h().Size()-1)
			t.expectRV(rv, "C_Digest one byte short", pkcs11.CKR_BUFFER_TOO_SMALL)
			if int(n) != d.h().Size() {
				t.failf("*pulDigestLen %d after CKR_BUFFER_TOO_SMALL, want %d", n, d.h().Size())
			}
			got, _, rv := t.s.raw.inout(fnDigest, uint(sh), msg, int(n))
			t.okRV(rv, "C_Digest retried")
			t.sameBytes(got, sum(d.h, msg), "digest")
		})
		add("final-too-small", "base 5.12.5 C_DigestFinal, 5.2", func(t *T, sh pkcs11.SessionHandle) {
			t.ok(t.s.ctx.DigestInit(sh, mech(d.mech, nil)), "C_DigestInit")
			t.ok(t.s.ctx.DigestUpdate(sh, msg), "C_DigestUpdate")
			_, n, rv := t.s.raw.final(fnDigestFinal, uint(sh), 1)
			t.expectRV(rv, "C_DigestFinal into a 1-byte buffer", pkcs11.CKR_BUFFER_TOO_SMALL)
			got, _, rv := t.s.raw.final(fnDigestFinal, uint(sh), int(n))
			t.okRV(rv, "C_DigestFinal retried")
			t.sameBytes(got, sum(d.h, msg), "digest")
		})
		add("active", "base 5.12.1 C_DigestInit (CKR_OPERATION_ACTIVE)", func(t *T, sh pkcs11.SessionHandle) {
			t.ok(t.s.ctx.DigestInit(sh, mech(d.mech, nil)), "C_DigestInit")
			t.expect(t.s.ctx.DigestInit(sh, mech(d.mech, nil)), "second C_DigestInit", pkcs11.CKR_OPERATION_ACTIVE)
		})
		add("oneshot-after-update", "base 5.12.2 C_Digest (cannot finish a multi-part operation)", func(t *T, sh pkcs11.SessionHandle) {
			t.ok(t.s.ctx.DigestInit(sh, mech(d.mech, nil)), "C_DigestInit")
			t.ok(t.s.ctx.DigestUpdate(sh, msg[:10]), "C_DigestUpdate")
			_, _, rv := t.s.raw.inout(fnDigest, uint(sh), msg, 64)
			if rv == 0 {
				t.failf("C_Digest after C_DigestUpdate returned CKR_OK")
			}
			t.note("C_Digest after C_DigestUpdate: %s", rvName(rv))
		})
		add("terminates", "base 5.12.2 C_Digest (a successful call ends the operation)", func(t *T, sh pkcs11.SessionHandle) {
			t.ok(t.s.ctx.DigestInit(sh, mech(d.mech, nil)), "C_DigestInit")
			_, err := t.s.ctx.Digest(sh, msg)
			t.ok(err, "C_Digest")
			_, err = t.s.ctx.Digest(sh, msg)
			t.expect(err, "second C_Digest", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		})
	}
	return cs
}

// opChecks are the generic operation rules (base 5.8-5.15) independent of
// the mechanism.
func opChecks() []check {
	const notInit = pkcs11.CKR_OPERATION_NOT_INITIALIZED
	return []check{
		{id: "op.encrypt.not-initialized", spec: "base 5.8.2 C_Encrypt (CKR_OPERATION_NOT_INITIALIZED)", fn: func(t *T) {
			_, err := t.s.ctx.Encrypt(t.open(false), []byte("x"))
			t.expect(err, "C_Encrypt without C_EncryptInit", notInit)
		}},
		{id: "op.encrypt-final.not-initialized", spec: "base 5.8.4 C_EncryptFinal (CKR_OPERATION_NOT_INITIALIZED)", fn: func(t *T) {
			_, err := t.s.ctx.EncryptFinal(t.open(false))
			t.expect(err, "C_EncryptFinal without C_EncryptInit", notInit)
		}},
		{id: "op.decrypt.not-initialized", spec: "base 5.10.2 C_Decrypt (CKR_OPERATION_NOT_INITIALIZED)", fn: func(t *T) {
			_, err := t.s.ctx.Decrypt(t.open(false), make([]byte, 16))
			t.expect(err, "C_Decrypt without C_DecryptInit", notInit)
		}},
		{id: "op.sign.not-initialized", spec: "base 5.13.2 C_Sign (CKR_OPERATION_NOT_INITIALIZED)", fn: func(t *T) {
			_, err := t.s.ctx.Sign(t.open(false), []byte("x"))
			t.expect(err, "C_Sign without C_SignInit", notInit)
		}},
		{id: "op.verify.not-initialized", spec: "base 5.15.2 C_Verify (CKR_OPERATION_NOT_INITIALIZED)", fn: func(t *T) {
			t.expect(t.s.ctx.Verify(t.open(false), []byte("x"), make([]byte, 32)), "C_Verify without C_VerifyInit", notInit)
		}},
		{id: "op.digest.not-initialized", spec: "base 5.12.2 C_Digest (CKR_OPERATION_NOT_INITIALIZED)", fn: func(t *T) {
			_, err := t.s.ctx.Digest(t.open(false), []byte("x"))
			t.expect(err, "C_Digest without C_DigestInit", notInit)
		}},
		{id: "op.init.unknown-mechanism", spec: "base 5.8.1 C_EncryptInit (CKR_MECHANISM_INVALID)", fn: func(t *T) {
			k := t.key("aes")
			t.expect(t.s.ctx.EncryptInit(t.open(false), mech(0x7ffffff0, nil), k.pub), "C_EncryptInit(unknown mechanism)", pkcs11.CKR_MECHANISM_INVALID)
		}},
		{id: "op.init.invalid-key-handle", spec: "base 5.8.1 C_EncryptInit (CKR_KEY_HANDLE_INVALID)", mech: pkcs11.CKM_AES_ECB, fn: func(t *T) {
			t.expect(t.s.ctx.EncryptInit(t.open(false), mech(pkcs11.CKM_AES_ECB, nil), bogusHandle), "C_EncryptInit(bogus key)", pkcs11.CKR_KEY_HANDLE_INVALID)
		}},
		{id: "op.init.invalid-session", spec: "base 5.1.2 (CKR_SESSION_HANDLE_INVALID)", mech: pkcs11.CKM_SHA256, fn: func(t *T) {
			t.expect(t.s.ctx.DigestInit(bogusHandle, mech(pkcs11.CKM_SHA256, nil)), "C_DigestInit(bogus session)", pkcs11.CKR_SESSION_HANDLE_INVALID)
		}},
		{id: "op.sessions-independent", spec: "base 5.6 (each session has its own operation state)", mech: pkcs11.CKM_SHA256, fn: func(t *T) {
			a, b := t.open(false), t.open(false)
			t.ok(t.s.ctx.DigestInit(a, mech(pkcs11.CKM_SHA256, nil)), "C_DigestInit(a)")
			t.ok(t.s.ctx.DigestInit(b, mech(pkcs11.CKM_SHA256, nil)), "C_DigestInit(b)")
			t.ok(t.s.ctx.DigestUpdate(a, []byte("aaa")), "C_DigestUpdate(a)")
			t.ok(t.s.ctx.DigestUpdate(b, []byte("bbb")), "C_DigestUpdate(b)")
			da, err := t.s.ctx.DigestFinal(a)
			t.ok(err, "C_DigestFinal(a)")
			db, err := t.s.ctx.DigestFinal(b)
			t.ok(err, "C_DigestFinal(b)")
			t.sameBytes(da, sum(sha256.New, []byte("aaa")), "session a")
			t.sameBytes(db, sum(sha256.New, []byte("bbb")), "session b")
		}},
		{id: "op.close-session-ends-operation", spec: "base 5.6.2 C_CloseSession", mech: pkcs11.CKM_SHA256, fn: func(t *T) {
			sh, err := t.s.ctx.OpenSession(t.s.slot, pkcs11.CKF_SERIAL_SESSION)
			t.ok(err, "C_OpenSession")
			t.ok(t.s.ctx.DigestInit(sh, mech(pkcs11.CKM_SHA256, nil)), "C_DigestInit")
			t.ok(t.s.ctx.CloseSession(sh), "C_CloseSession with an active operation")
		}},
	}
}

// keygenChecks covers base 5.18.1/5.18.2 and the generation rules of the
// mechanisms spec.
func keygenChecks() []check {
	gen := func(t *T, m uint, tmpl ...*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
		return t.s.ctx.GenerateKey(t.open(true), mech(m, nil), append([]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)}, tmpl...))
	}
	aesLen := func(n int) check {
		return check{id: "gen.aes-" + string(rune('0'+n/8/10)) + string(rune('0'+n/8%10)) + "-bytes", spec: "curr 2.8.3 CKM_AES_KEY_GEN, base 5.18.1", mech: pkcs11.CKM_AES_KEY_GEN, fn: func(t *T) {
			sh := t.open(true)
			h, err := t.s.ctx.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE_LEN, n/8), attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true)})
			t.ok(err, "C_GenerateKey")
			if kt := t.getULong(sh, h, pkcs11.CKA_KEY_TYPE, "CKA_KEY_TYPE"); kt != pkcs11.CKK_AES {
				t.failf("CKA_KEY_TYPE 0x%x", kt)
			}
			if v := t.getAttr(sh, h, pkcs11.CKA_VALUE, "CKA_VALUE"); len(v) != n/8 || bytes.Equal(v, make([]byte, n/8)) {
				t.failf("CKA_VALUE %x: want %d random bytes", v, n/8)
			}
		}}
	}
	return []check{
		aesLen(128), aesLen(192), aesLen(256),
		{id: "gen.aes.no-length", spec: "curr 2.8.3 CKM_AES_KEY_GEN (CKA_VALUE_LEN required: CKR_TEMPLATE_INCOMPLETE)", mech: pkcs11.CKM_AES_KEY_GEN, fn: func(t *T) {
			_, err := gen(t, pkcs11.CKM_AES_KEY_GEN)
			t.expect(err, "C_GenerateKey without CKA_VALUE_LEN", pkcs11.CKR_TEMPLATE_INCOMPLETE)
		}},
		{id: "gen.aes.bad-length", spec: "curr 2.8.3 CKM_AES_KEY_GEN (16, 24 or 32 bytes)", mech: pkcs11.CKM_AES_KEY_GEN, fn: func(t *T) {
			_, err := gen(t, pkcs11.CKM_AES_KEY_GEN, attr(pkcs11.CKA_VALUE_LEN, 17))
			t.expect(err, "C_GenerateKey(CKA_VALUE_LEN 17)", pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_TEMPLATE_INCONSISTENT)
		}},
		{id: "gen.aes.class-mismatch", spec: "base 5.18.1 C_GenerateKey (CKR_TEMPLATE_INCONSISTENT)", mech: pkcs11.CKM_AES_KEY_GEN, fn: func(t *T) {
			_, err := gen(t, pkcs11.CKM_AES_KEY_GEN, attr(pkcs11.CKA_VALUE_LEN, 16), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_DES3))
			t.expect(err, "C_GenerateKey(CKM_AES_KEY_GEN, CKK_DES3)", pkcs11.CKR_TEMPLATE_INCONSISTENT, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID)
		}},
		{id: "gen.not-a-keygen-mechanism", spec: "base 5.18.1 C_GenerateKey (CKR_MECHANISM_INVALID)", mech: pkcs11.CKM_SHA256, fn: func(t *T) {
			_, err := gen(t, pkcs11.CKM_SHA256, attr(pkcs11.CKA_VALUE_LEN, 16))
			t.expect(err, "C_GenerateKey(CKM_SHA256)", pkcs11.CKR_MECHANISM_INVALID)
		}},
		{id: "gen.des3", spec: "curr 2.23 CKM_DES3_KEY_GEN", mech: pkcs11.CKM_DES3_KEY_GEN, fn: func(t *T) {
			sh := t.open(true)
			h, err := t.s.ctx.GenerateKey(sh, mech(pkcs11.CKM_DES3_KEY_GEN, nil), []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)})
			t.ok(err, "C_GenerateKey(CKM_DES3_KEY_GEN)")
			if kt := t.getULong(sh, h, pkcs11.CKA_KEY_TYPE, "CKA_KEY_TYPE"); kt != pkcs11.CKK_DES3 {
				t.failf("CKA_KEY_TYPE 0x%x", kt)
			}
		}},
		{id: "gen.generic-secret", spec: "curr 2.31 CKM_GENERIC_SECRET_KEY_GEN", mech: pkcs11.CKM_GENERIC_SECRET_KEY_GEN, fn: func(t *T) {
			sh := t.open(true)
			h, err := t.s.ctx.GenerateKey(sh, mech(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil), []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE_LEN, 32)})
			t.ok(err, "C_GenerateKey(CKM_GENERIC_SECRET_KEY_GEN)")
			if n := t.getULong(sh, h, pkcs11.CKA_VALUE_LEN, "CKA_VALUE_LEN"); n != 32 {
				t.failf("CKA_VALUE_LEN %d", n)
			}
		}},
		{id: "gen.rsa.attributes", spec: "curr 2.1.4 CKM_RSA_PKCS_KEY_PAIR_GEN, 2.1.2 RSA public key objects", mech: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, fn: func(t *T) {
			k := t.key("rsa")
			sh := t.open(false)
			if bits := t.getULong(sh, k.pub, pkcs11.CKA_MODULUS_BITS, "CKA_MODULUS_BITS"); bits != 2048 {
				t.failf("CKA_MODULUS_BITS %d", bits)
			}
			if k.rsaPub.N.BitLen() != 2048 || k.rsaPub.E != 65537 {
				t.failf("modulus of %d bits, exponent %d", k.rsaPub.N.BitLen(), k.rsaPub.E)
			}
			if !t.getBool(sh, k.priv, pkcs11.CKA_LOCAL, "CKA_LOCAL") {
				t.failf("generated private key has CKA_LOCAL FALSE")
			}
		}},
		{id: "gen.rsa.private-sensitive", spec: "curr 2.1.3 RSA private key objects, base 5.7.5 (sensitive components unreadable)", mech: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, fn: func(t *T) {
			k := t.key("rsa")
			sh := t.open(false)
			for _, a := range []uint{pkcs11.CKA_PRIVATE_EXPONENT, pkcs11.CKA_PRIME_1, pkcs11.CKA_PRIME_2} {
				_, rv := t.s.raw.attrLen(uint(sh), uint(k.priv), a)
				t.expectRV(rv, "reading a private component of a sensitive RSA key", pkcs11.CKR_ATTRIBUTE_SENSITIVE)
			}
		}},
		{id: "gen.ec.point-der", spec: "curr 2.3.3 EC public key objects (CKA_EC_POINT is a DER OCTET STRING)", mech: pkcs11.CKM_EC_KEY_PAIR_GEN, fn: func(t *T) {
			k := t.key("ec")
			v := t.getAttr(t.open(false), k.pub, pkcs11.CKA_EC_POINT, "CKA_EC_POINT")
			if len(v) != 67 || v[0] != 0x04 || v[1] != 0x41 || v[2] != 0x04 {
				t.failf("CKA_EC_POINT %x: want 04 41 04 || X || Y", v)
			}
		}},
		{id: "gen.ec.params-copied", spec: "curr 2.3.6 CKM_EC_KEY_PAIR_GEN (CKA_EC_PARAMS on the private key)", mech: pkcs11.CKM_EC_KEY_PAIR_GEN, fn: func(t *T) {
			k := t.key("ec")
			t.sameBytes(t.getAttr(t.open(false), k.priv, pkcs11.CKA_EC_PARAMS, "CKA_EC_PARAMS"), p256OID, "private key CKA_EC_PARAMS")
		}},
		{id: "gen.ec.unknown-curve", spec: "curr 2.3.6 CKM_EC_KEY_PAIR_GEN (CKR_CURVE_NOT_SUPPORTED)", mech: pkcs11.CKM_EC_KEY_PAIR_GEN, fn: func(t *T) {
			bogus := []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x7f}
			_, _, err := t.s.ctx.GenerateKeyPair(t.open(true), mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
				[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_EC_PARAMS, bogus)}, []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)})
			t.expect(err, "C_GenerateKeyPair with an unknown curve OID", pkcs11.CKR_CURVE_NOT_SUPPORTED, pkcs11.CKR_DOMAIN_PARAMS_INVALID, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_TEMPLATE_INCONSISTENT)
		}},
		{id: "gen.ec.no-params", spec: "curr 2.3.6 CKM_EC_KEY_PAIR_GEN (CKR_TEMPLATE_INCOMPLETE)", mech: pkcs11.CKM_EC_KEY_PAIR_GEN, fn: func(t *T) {
			_, _, err := t.s.ctx.GenerateKeyPair(t.open(true), mech(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
				[]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)}, []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)})
			t.expect(err, "C_GenerateKeyPair without CKA_EC_PARAMS", pkcs11.CKR_TEMPLATE_INCOMPLETE)
		}},
	}
}

// randomChecks covers base 5.19.
func randomChecks() []check {
	return []check{
		{id: "rand.generate", spec: "base 5.19.2 C_GenerateRandom", fn: func(t *T) {
			sh := t.open(false)
			a, err := t.s.ctx.GenerateRandom(sh, 32)
			t.ok(err, "C_GenerateRandom")
			b, err := t.s.ctx.GenerateRandom(sh, 32)
			t.ok(err, "C_GenerateRandom")
			if len(a) != 32 || bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 32)) {
				t.failf("two 32-byte outputs %x and %x", a, b)
			}
		}},
		{id: "rand.monobit", spec: "base 5.19.2 C_GenerateRandom (output is not grossly biased)", fn: func(t *T) {
			r, err := t.s.ctx.GenerateRandom(t.open(false), 4096)
			t.ok(err, "C_GenerateRandom(4096)")
			ones := 0
			for _, b := range r {
				ones += bits.OnesCount8(b)
			}
			// 32768 bits: mean 16384, sigma 90.5; 1000 is beyond 11 sigma.
			if ones < 15384 || ones > 17384 {
				t.failf("%d one-bits in 32768", ones)
			}
		}},
		{id: "rand.token-flag", spec: "base 3.2 CK_TOKEN_INFO (CKF_RNG)", fn: func(t *T) {
			if t.tokenFlags()&pkcs11.CKF_RNG == 0 {
				t.failf("C_GenerateRandom works but CKF_RNG is not set")
			}
		}},
		{id: "rand.seed", spec: "base 5.19.1 C_SeedRandom", fn: func(t *T) {
			t.expect(t.s.ctx.SeedRandom(t.open(false), []byte("some extra entropy")), "C_SeedRandom", pkcs11.CKR_OK, pkcs11.CKR_RANDOM_SEED_NOT_SUPPORTED, pkcs11.CKR_RANDOM_NO_RNG)
		}},
		{id: "rand.invalid-session", spec: "base 5.19.2 C_GenerateRandom (CKR_SESSION_HANDLE_INVALID)", fn: func(t *T) {
			_, err := t.s.ctx.GenerateRandom(bogusHandle, 16)
			t.expect(err, "C_GenerateRandom(bogus session)", pkcs11.CKR_SESSION_HANDLE_INVALID)
		}},
	}
}

// unwrapRFC3394 undoes AES key wrap (RFC 3394) with a known key.
func unwrapRFC3394(kek, c []byte) ([]byte, bool) {
	b, err := aes.NewCipher(kek)
	if err != nil || len(c)%8 != 0 || len(c) < 24 {
		return nil, false
	}
	n := len(c)/8 - 1
	a := append([]byte{}, c[:8]...)
	r := append([]byte{}, c[8:]...)
	buf := make([]byte, 16)
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf, binary.BigEndian.Uint64(a)^t)
			copy(buf[8:], r[(i-1)*8:i*8])
			b.Decrypt(buf, buf)
			copy(a, buf[:8])
			copy(r[(i-1)*8:], buf[8:])
		}
	}
	return r, true
}

// recoverWrapped tries every way a holder of the wrapping key's value could
// read a wrapped blob (base 5.18.3): RFC 3394/5649 key wrap or CBC-PAD.
func recoverWrapped(kek, blob []byte, m uint) []byte {
	switch m {
	case pkcs11.CKM_AES_KEY_WRAP, pkcs11.CKM_AES_KEY_WRAP_PAD:
		if r, ok := unwrapRFC3394(kek, blob); ok {
			return r
		}
		if len(blob) == 16 {
			b, _ := aes.NewCipher(kek)
			out := make([]byte, 16)
			b.Decrypt(out, blob)
			return out[8:]
		}
	case pkcs11.CKM_AES_CBC_PAD, pkcs11.CKM_AES_CBC:
		if len(blob)%16 == 0 && len(blob) > 0 {
			out := make([]byte, len(blob))
			cipher.NewCBCDecrypter(aesBlock(kek), iv16).CryptBlocks(out, blob)
			return out
		}
	}
	return nil
}

var _ = crypto.SHA256
