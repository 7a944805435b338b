package conformance

import (
	"bytes"
	"crypto/aes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	"sync"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// Key protection beyond the Tookan attacks of checks_wrap.go: every path
// that uses a key obeys that key's usage flags and CKA_ALLOWED_MECHANISMS,
// including the keys a mechanism parameter names; a key that may wrap
// sensitive keys never wraps with a caller-chosen IV, nor encrypts with
// one; raw RSA needs both roles it can play; RSA PKCS #1 v1.5 unwrapping
// gives no padding oracle. A check passes when the module answers as the
// contract says; a module that lacks the mechanism skips it.

// ---- Keystream reuse through C_WrapKey (CKM_AES_GCM) ----------------------

const gcmWrapSpec = "base 5.18.3 C_WrapKey, curr 2.12 CKM_AES_GCM (CK_GCM_PARAMS pIv)"

var (
	knownKey256 = []byte("conformance known AES-256 key N!")
	probeBlock  = []byte("conformance blk!")
	callerIV    = []byte("caller nonce")
)

// gcmParamsAt lays out CK_GCM_PARAMS {pIv, ulIvLen, ulIvBits, pAAD, ulAADLen,
// ulTagBits} with a 128-bit tag; iv is C memory the token may write.
func gcmParamsAt(m *cmem, iv unsafe.Pointer, ivLen int, aad []byte) []byte {
	return cat(ptr(iv), ulong(uint64(ivLen)), ulong(uint64(ivLen*8)), ptr(m.bytes(aad)), ulong(uint64(len(aad))), ulong(128))
}

// needGCMWrap skips unless the module wraps with CKM_AES_GCM: only then can
// a GCM keystream carry a wrapped key.
func (t *T) needGCMWrap() { t.needMechFlags(pkcs11.CKM_AES_GCM, pkcs11.CKF_WRAP, "CKF_WRAP") }

// wrapOnlyKey is W: a local AES-256 key, sensitive and never extractable,
// that may wrap and nothing else, the kind of key that may wrap sensitive
// keys; extra overrides (W' of the checks also encrypts).
func (t *T) wrapOnlyKey(sh pkcs11.SessionHandle, extra ...*pkcs11.Attribute) pkcs11.ObjectHandle {
	return t.genAES(sh, merge([]*pkcs11.Attribute{
		attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_ENCRYPT, false),
		attr(pkcs11.CKA_DECRYPT, false), attr(pkcs11.CKA_UNWRAP, false),
		attr(pkcs11.CKA_EXTRACTABLE, false), attr(pkcs11.CKA_SENSITIVE, true),
	}, extra)...)
}

// sensitiveTarget is T: a generated AES-256 key, sensitive, extractable,
// able to encrypt (so its value can be compared without reading it).
func (t *T) sensitiveTarget(sh pkcs11.SessionHandle) pkcs11.ObjectHandle {
	return t.genAES(sh, attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_PRIVATE, true))
}

// knownKey is N: an AES-256 key whose value the caller chose.
func (t *T) knownKey(sh pkcs11.SessionHandle) pkcs11.ObjectHandle {
	return t.create(sh, secretTemplate(knownKey256, attr(pkcs11.CKA_EXTRACTABLE, true),
		attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_ENCRYPT, true)), "known key N")
}

// probe is C_Encrypt(CKM_AES_ECB) of one block under k: two AES keys
// are equal when their probes are.
func (t *T) probe(sh pkcs11.SessionHandle, k pkcs11.ObjectHandle, what string) []byte {
	if !t.s.mechs[pkcs11.CKM_AES_ECB] {
		t.skipf("CKM_AES_ECB not in C_GetMechanismList: no way to compare keys")
	}
	t.ok(t.s.ctx.EncryptInit(sh, mech(pkcs11.CKM_AES_ECB, nil), k), "C_EncryptInit(CKM_AES_ECB, "+what+")")
	out, err := t.s.ctx.Encrypt(sh, probeBlock)
	t.ok(err, "C_Encrypt(CKM_AES_ECB, "+what+")")
	return out
}

func goProbe(key []byte) []byte {
	b, _ := aes.NewCipher(key)
	out := make([]byte, 16)
	b.Encrypt(out, probeBlock)
	return out
}

func allZero(b []byte) bool { return !bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) }

// gcmWrapZeroIV wraps k under w with CKM_AES_GCM and pIv pointing at a
// zeroed 12-byte buffer: a size query, then the wrap. It returns what pIv
// held after each call and the blob.
func (t *T) gcmWrapZeroIV(m *cmem, sh pkcs11.SessionHandle, w, k pkcs11.ObjectHandle, what string) (ivQuery, iv, blob []byte) {
	ivb := m.buf(12)
	mc := m.mechanism(pkcs11.CKM_AES_GCM, gcmParamsAt(m, ivb, 12, nil))
	_, n, rv := t.s.raw.wrapKey(uint(sh), mc, uint(w), uint(k), -1)
	t.okRV(rv, "C_WrapKey(CKM_AES_GCM, pIv zeroed, NULL output) of "+what)
	ivQuery = m.read(ivb, 12)
	blob, _, rv = t.s.raw.wrapKey(uint(sh), mc, uint(w), uint(k), int(n))
	t.okRV(rv, "C_WrapKey(CKM_AES_GCM, pIv zeroed) of "+what)
	return ivQuery, m.read(ivb, 12), blob
}

// gcmWrapGenerated is gcmWrapZeroIV where the token must generate the IV:
// written into pIv by the wrap, not by its size query.
func (t *T) gcmWrapGenerated(m *cmem, sh pkcs11.SessionHandle, w, k pkcs11.ObjectHandle, what string) (iv, blob []byte) {
	ivQuery, iv, blob := t.gcmWrapZeroIV(m, sh, w, k, what)
	if !allZero(ivQuery) {
		t.failf("the size query of C_WrapKey of %s wrote %x into pIv: the IV belongs to the wrap that returns the blob", what, ivQuery)
	}
	if allZero(iv) {
		t.failf("C_WrapKey of %s returned CKR_OK and left pIv zero: the token neither generated an IV nor refused", what)
	}
	return iv, blob
}

func gcmWrapChecks() []check {
	return []check{
		{id: "wrap.gcm.caller-iv", spec: gcmWrapSpec + " (a caller-chosen IV: CKR_MECHANISM_PARAM_INVALID)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			t.needGCMWrap()
			var m cmem
			defer m.free()
			sh := t.open(true)
			w, k := t.wrapOnlyKey(sh), t.sensitiveTarget(sh)
			mc := m.mechanism(pkcs11.CKM_AES_GCM, gcmParamsAt(&m, m.bytes(callerIV), 12, nil))
			_, _, rv := t.s.raw.wrapKey(uint(sh), mc, uint(w), uint(k), 256)
			t.expectRV(rv, "C_WrapKey(CKM_AES_GCM, caller-chosen IV) of a sensitive key", pkcs11.CKR_MECHANISM_PARAM_INVALID)
		}},
		{id: "wrap.gcm.token-iv", spec: gcmWrapSpec + " (pIv zeroed: the token writes the IV it generates, on success only)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			t.needGCMWrap()
			var m cmem
			defer m.free()
			sh := t.open(true)
			w := t.wrapOnlyKey(sh)
			ivN, blobN := t.gcmWrapGenerated(&m, sh, w, t.knownKey(sh), "N")
			ivT, blobT := t.gcmWrapGenerated(&m, sh, w, t.sensitiveTarget(sh), "T")
			if bytes.Equal(ivN, ivT) {
				t.failf("two wraps got the same IV %x", ivN)
			}
			if len(blobN) != 48 || len(blobT) != 48 {
				t.failf("blobs of %d and %d bytes, want 32 + a 16-byte tag", len(blobN), len(blobT))
			}
			t.note("IVs %x and %x", ivN, ivT)
		}},
		{id: "wrap.gcm.keystream-reuse", spec: gcmWrapSpec + " (wrap(T) xor wrap(N) xor N does not give T; N cannot be wrapped under T's IV)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			t.needGCMWrap()
			var m cmem
			defer m.free()
			sh := t.open(true)
			w, n, k := t.wrapOnlyKey(sh), t.knownKey(sh), t.sensitiveTarget(sh)
			_, ivT, blobT := t.gcmWrapZeroIV(&m, sh, w, k, "T")
			_, _, blobN := t.gcmWrapZeroIV(&m, sh, w, n, "N")
			cand := make([]byte, 32)
			for i := range cand {
				cand[i] = blobT[i] ^ blobN[i] ^ knownKey256[i]
			}
			c := t.create(sh, secretTemplate(cand, attr(pkcs11.CKA_ENCRYPT, true)), "AES key from wrap(T) xor wrap(N) xor N")
			if bytes.Equal(t.probe(sh, c, "candidate"), t.probe(sh, k, "T")) {
				t.failf("wrap(T) xor wrap(N) xor N is T: two wraps shared a GCM keystream")
			}
			if allZero(ivT) {
				ivT = callerIV // the token used no IV of its own; replay any
			}
			mc := m.mechanism(pkcs11.CKM_AES_GCM, gcmParamsAt(&m, m.bytes(ivT), 12, nil))
			_, _, rv := t.s.raw.wrapKey(uint(sh), mc, uint(w), uint(n), 256)
			t.expectRV(rv, "C_WrapKey(CKM_AES_GCM) of N with the IV the token chose for T", pkcs11.CKR_MECHANISM_PARAM_INVALID)
		}},
		{id: "wrap.gcm.encrypt-caller-iv", spec: "base 5.8.1 C_EncryptInit, curr 2.12 CKM_AES_GCM (a key that may wrap sensitive keys takes no caller-chosen IV: CKR_MECHANISM_PARAM_INVALID)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			t.needGCMWrap()
			var m cmem
			defer m.free()
			sh := t.open(true)
			w := t.wrapOnlyKey(sh, attr(pkcs11.CKA_ENCRYPT, true))
			err := t.s.ctx.EncryptInit(sh, mech(pkcs11.CKM_AES_GCM, gcmParamsAt(&m, m.bytes(callerIV), 12, nil)), w)
			t.expect(err, "C_EncryptInit(CKM_AES_GCM, caller-chosen IV) with a local never-extractable wrap+encrypt key", pkcs11.CKR_MECHANISM_PARAM_INVALID)
		}},
		{id: "wrap.gcm.message-caller-iv", spec: "3.0 base: C_MessageEncryptInit, C_EncryptMessage; curr 2.12.5 CK_GCM_MESSAGE_PARAMS (CKG_NO_GENERATE under a key that may wrap sensitive keys: CKR_MECHANISM_PARAM_INVALID; CKG_GENERATE_RANDOM works)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			t.needGCMWrap()
			f := t.s.raw.table3("PKCS 11", 3, 0)
			if f == nil {
				t.skipf("no PKCS 11 3.0 interface")
			}
			var m cmem
			defer m.free()
			sh := t.open(true)
			w := t.wrapOnlyKey(sh, attr(pkcs11.CKA_ENCRYPT, true))
			initMsg := func() {
				rv := messageInit(f, false, uint(sh), m.mechanism(pkcs11.CKM_AES_GCM, nil), uint(w))
				if rv == ckrFunctionNotSupported {
					t.skipf("C_MessageEncryptInit: CKR_FUNCTION_NOT_SUPPORTED")
				}
				t.okRV(rv, "C_MessageEncryptInit(CKM_AES_GCM)")
			}
			initMsg()
			pt := []byte("known plaintext, 32 bytes long..")
			p, n := gcmMessage(&m, m.bytes(callerIV), m.buf(16), ckgNoGenerate)
			_, rvFixed := m.message(f, false, uint(sh), p, n, nil, pt, len(pt)+16)
			ivb := m.buf(12)
			p, n = gcmMessage(&m, ivb, m.buf(16), ckgGenerateRandom)
			_, rv := m.message(f, false, uint(sh), p, n, nil, pt, len(pt)+16)
			if rv == ckrOperationNotInit { // the refusal ended the operation
				initMsg()
				_, rv = m.message(f, false, uint(sh), p, n, nil, pt, len(pt)+16)
			}
			messageFinal(f, false, uint(sh))
			t.expectRV(rvFixed, "C_EncryptMessage(CKG_NO_GENERATE, caller-chosen IV)", pkcs11.CKR_MECHANISM_PARAM_INVALID)
			t.okRV(rv, "C_EncryptMessage(CKG_GENERATE_RANDOM)")
			if allZero(m.read(ivb, 12)) {
				t.failf("C_EncryptMessage(CKG_GENERATE_RANDOM) left pIv zero")
			}
			t.note("CKG_NO_GENERATE: %s; CKG_GENERATE_RANDOM: CKR_OK", rvName(rvFixed))
		}},
		{id: "wrap.gcm.encrypt-caller-iv-ordinary", spec: "base 5.8.1 C_EncryptInit, curr 2.12 CKM_AES_GCM (a key with CKA_WRAP=FALSE keeps taking the caller's IV)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			k := t.wrapOnlyKey(sh, attr(pkcs11.CKA_WRAP, false), attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_DECRYPT, true))
			param := gcmParamsAt(&m, m.bytes(callerIV), 12, gcmAAD)
			pt := plaintext(45)
			var cts [][]byte
			for i := 0; i < 2; i++ {
				t.ok(t.s.ctx.EncryptInit(sh, mech(pkcs11.CKM_AES_GCM, param), k), "C_EncryptInit(CKM_AES_GCM, caller-chosen IV)")
				ct, err := t.s.ctx.Encrypt(sh, pt)
				t.ok(err, "C_Encrypt")
				cts = append(cts, ct)
			}
			if !bytes.Equal(cts[0], cts[1]) {
				t.failf("two encryptions under the same caller IV differ: the IV was not the caller's")
			}
			t.ok(t.s.ctx.DecryptInit(sh, mech(pkcs11.CKM_AES_GCM, param), k), "C_DecryptInit(CKM_AES_GCM, caller-chosen IV)")
			back, err := t.s.ctx.Decrypt(sh, cts[0])
			t.ok(err, "C_Decrypt")
			t.sameBytes(back, pt, "decrypted plaintext")
		}},
	}
}

// ---- The HMAC oracle in HKDF ------------------------------------------------

const hkdfSaltSpec = "curr 2.43.2 CK_HKDF_PARAMS hSaltKey (CKF_HKDF_SALT_KEY); base 5.18.5 C_DeriveKey"

var hkdfSaltValue = []byte("conformance HKDF salt key K, 32B")

// hkdfKeySalt is CK_HKDF_PARAMS with SHA-256 and the salt given as the
// key saltKey.
func hkdfKeySalt(m *cmem, extract, expand bool, saltKey uint, info []byte) []byte {
	return cat(bbool8(extract, expand), ulong(pkcs11.CKM_SHA256), ulong(ckfHKDFSaltKey),
		ptr(nil), ulong(0), ulong(uint64(saltKey)), ptr(m.bytes(info)), ulong(uint64(len(info))))
}

func genericSecret(value []byte, extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	return merge([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, value),
	}, extra)
}

// saltKey is K: a sensitive generic secret that may neither sign nor
// derive; extra overrides.
func (t *T) saltKey(sh pkcs11.SessionHandle, extra ...*pkcs11.Attribute) pkcs11.ObjectHandle {
	return t.create(sh, genericSecret(hkdfSaltValue, merge([]*pkcs11.Attribute{
		attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_SIGN, false), attr(pkcs11.CKA_DERIVE, false),
	}, extra)...), "salt key K")
}

// knownBase is B: a base key whose value the caller knows.
func (t *T) knownBase(sh pkcs11.SessionHandle, extra ...*pkcs11.Attribute) pkcs11.ObjectHandle {
	return t.create(sh, genericSecret(hkdfIKM, append([]*pkcs11.Attribute{attr(pkcs11.CKA_DERIVE, true), attr(pkcs11.CKA_SENSITIVE, false)}, extra...)...), "base key B")
}

// hkdfOut is the template of an HKDF output of n bytes: a readable generic
// secret for CKM_HKDF_DERIVE, a data object for CKM_HKDF_DATA.
func hkdfOut(m uint, n int) []*pkcs11.Attribute {
	if m == ckmHKDFData {
		return []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE_LEN, n)}
	}
	return derivedSecret(n)
}

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// allowedMechs is CKA_ALLOWED_MECHANISMS, an array of CK_MECHANISM_TYPE.
func allowedMechs(ms ...uint) *pkcs11.Attribute {
	var b []byte
	for _, m := range ms {
		b = append(b, ulong(uint64(m))...)
	}
	return attr(pkcs11.CKA_ALLOWED_MECHANISMS, b)
}

func hkdfSaltChecks() []check {
	var cs []check
	for _, c := range []struct {
		id string
		m  uint
	}{{"hkdf", ckmHKDFDerive}, {"hkdf-data", ckmHKDFData}} {
		c := c
		cs = append(cs, check{id: c.id + ".salt-key.not-permitted", spec: hkdfSaltSpec + " (extract-only with a salt key that may neither sign nor derive would be an HMAC oracle: CKR_KEY_FUNCTION_NOT_PERMITTED)", mech: c.m, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			k, b := t.saltKey(sh), t.knownBase(sh)
			h, err := t.s.ctx.DeriveKey(sh, mech(c.m, hkdfKeySalt(&m, true, false, uint(k), nil)), b, hkdfOut(c.m, 32))
			if err == nil {
				if v, err := t.s.ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_VALUE, nil)}); err == nil && bytes.Equal(v[0].Value, hmacSHA256(hkdfSaltValue, hkdfIKM)) {
					t.failf("C_DeriveKey returned HMAC-SHA256 keyed by K over the caller's bytes, though K has CKA_SIGN and CKA_DERIVE FALSE")
				}
			}
			t.expect(err, "C_DeriveKey(bExtract, !bExpand, hSaltKey K with CKA_SIGN=CKA_DERIVE=FALSE)", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)
		}})
	}
	return append(cs,
		check{id: "hkdf.salt-key.allowed-mechanisms", spec: hkdfSaltSpec + ", base 4.8 CKA_ALLOWED_MECHANISMS (the salt key's list: CKR_MECHANISM_INVALID)", mech: ckmHKDFDerive, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			k := t.saltKey(sh, attr(pkcs11.CKA_DERIVE, true), allowedMechs(ckmHKDFData))
			_, err := t.s.ctx.DeriveKey(sh, mech(ckmHKDFDerive, hkdfKeySalt(&m, true, false, uint(k), nil)), t.knownBase(sh), derivedSecret(32))
			t.expect(err, "C_DeriveKey(CKM_HKDF_DERIVE) with a salt key allowed only CKM_HKDF_DATA", pkcs11.CKR_MECHANISM_INVALID)
		}},
		check{id: "hkdf.salt-key.invalid-handle", spec: hkdfSaltSpec + " (hSaltKey no object: CKR_MECHANISM_PARAM_INVALID)", mech: ckmHKDFDerive, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			_, err := t.s.ctx.DeriveKey(sh, mech(ckmHKDFDerive, hkdfKeySalt(&m, true, false, bogusHandle, nil)), t.knownBase(sh), derivedSecret(32))
			t.expect(err, "C_DeriveKey with hSaltKey a bogus handle", pkcs11.CKR_MECHANISM_PARAM_INVALID)
		}},
		check{id: "hkdf.salt-key.wrong-type", spec: hkdfSaltSpec + " (hSaltKey must be a CKK_GENERIC_SECRET or CKK_HKDF key: CKR_MECHANISM_PARAM_INVALID)", mech: ckmHKDFDerive, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			b := t.knownBase(sh)
			aesK := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_DERIVE, true)), "AES key")
			data := t.createData(sh, false, false, "not a salt key")
			for _, s := range []struct {
				h    pkcs11.ObjectHandle
				what string
			}{{aesK, "an AES key with CKA_DERIVE"}, {data, "a CKO_DATA object"}} {
				_, err := t.s.ctx.DeriveKey(sh, mech(ckmHKDFDerive, hkdfKeySalt(&m, true, false, uint(s.h), nil)), b, derivedSecret(32))
				t.expect(err, "C_DeriveKey with hSaltKey "+s.what, pkcs11.CKR_MECHANISM_PARAM_INVALID)
			}
		}},
		check{id: "hkdf.salt-key.permitted", spec: hkdfSaltSpec + " (a sensitive salt key with CKA_DERIVE=TRUE works; RFC 5869 output)", mech: ckmHKDFDerive, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			k := t.saltKey(sh, attr(pkcs11.CKA_DERIVE, true))
			info := []byte("conformance salt-key info")
			h, err := t.s.ctx.DeriveKey(sh, mech(ckmHKDFDerive, hkdfKeySalt(&m, true, true, uint(k), info)), t.knownBase(sh), []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
				attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SENSITIVE, true),
				attr(pkcs11.CKA_EXTRACTABLE, false), attr(pkcs11.CKA_SIGN, true),
			})
			t.ok(err, "C_DeriveKey(CKM_HKDF_DERIVE, hSaltKey K with CKA_DERIVE=TRUE)")
			if !t.s.mechs[pkcs11.CKM_SHA256_HMAC] {
				t.note("derived; CKM_SHA256_HMAC not listed, so the output was not compared")
				return
			}
			okm, err := hkdf.Key(sha256.New, hkdfIKM, hkdfSaltValue, string(info), 32)
			if err != nil {
				t.failf("crypto/hkdf: %v", err)
			}
			msg := []byte("proves the derived value")
			t.sameBytes(t.mac(sh, pkcs11.CKM_SHA256_HMAC, h, msg), hmacSHA256(okm, msg), "HMAC-SHA256 under the derived key (RFC 5869 with salt K)")
		}},
		check{id: "hkdf.salt-key.always-sensitive", spec: hkdfSaltSpec + ", base 4.10 CKA_ALWAYS_SENSITIVE/CKA_NEVER_EXTRACTABLE (no more than the base and the salt key both have)", mech: ckmHKDFDerive, fn: func(t *T) {
			if !t.s.mechs[pkcs11.CKM_GENERIC_SECRET_KEY_GEN] {
				t.skipf("CKM_GENERIC_SECRET_KEY_GEN not in C_GetMechanismList")
			}
			var m cmem
			defer m.free()
			sh := t.open(true)
			b, err := t.s.ctx.GenerateKey(sh, mech(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil), []*pkcs11.Attribute{
				attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_SENSITIVE, true),
				attr(pkcs11.CKA_EXTRACTABLE, false), attr(pkcs11.CKA_DERIVE, true),
			})
			t.ok(err, "C_GenerateKey(CKM_GENERIC_SECRET_KEY_GEN) of the base key")
			if !t.getBool(sh, b, pkcs11.CKA_ALWAYS_SENSITIVE, "base CKA_ALWAYS_SENSITIVE") || !t.getBool(sh, b, pkcs11.CKA_NEVER_EXTRACTABLE, "base CKA_NEVER_EXTRACTABLE") {
				t.failf("a generated sensitive, unextractable base key lacks CKA_ALWAYS_SENSITIVE or CKA_NEVER_EXTRACTABLE")
			}
			k := t.saltKey(sh, attr(pkcs11.CKA_DERIVE, true)) // imported: neither always sensitive nor never extractable
			h, err := t.s.ctx.DeriveKey(sh, mech(ckmHKDFDerive, hkdfKeySalt(&m, true, true, uint(k), nil)), b, []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
				attr(pkcs11.CKA_VALUE_LEN, 32), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false),
			})
			t.ok(err, "C_DeriveKey(CKM_HKDF_DERIVE, hSaltKey an imported sensitive key)")
			if t.getBool(sh, h, pkcs11.CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE") || t.getBool(sh, h, pkcs11.CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE") {
				t.failf("a key derived with an imported salt key claims CKA_ALWAYS_SENSITIVE or CKA_NEVER_EXTRACTABLE: the salt key was once readable")
			}
		}},
	)
}

// ---- CKA_ALLOWED_MECHANISMS on C_WrapKey, C_UnwrapKey, C_DeriveKey ---------

const allowedSpec = "base 4.8 CKA_ALLOWED_MECHANISMS"

// aesUnwrapTemplate is a readable session AES key.
func aesUnwrapTemplate(extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	return merge([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
	}, extra)
}

// ecdhAllowed generates a P-256 pair whose private key may derive with the
// listed mechanisms only.
func (t *T) ecdhAllowed(sh pkcs11.SessionHandle, ms ...uint) pkcs11.ObjectHandle {
	_, priv := t.pair(sh, pkcs11.CKM_EC_KEY_PAIR_GEN, nil,
		[]*pkcs11.Attribute{attr(pkcs11.CKA_EC_PARAMS, p256OID)},
		[]*pkcs11.Attribute{attr(pkcs11.CKA_DERIVE, true), allowedMechs(ms...)})
	return priv
}

func allowedChecks() []check {
	const kw = pkcs11.CKM_AES_KEY_WRAP
	wrap := func(t *T, allowed ...uint) ([]byte, error) {
		t.needMechFlags(kw, pkcs11.CKF_WRAP, "CKF_WRAP")
		sh := t.open(true)
		w := t.create(sh, secretTemplate(kwKEK, attr(pkcs11.CKA_WRAP, true), allowedMechs(allowed...)), "wrapping key")
		k := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_SENSITIVE, false)), "key to wrap")
		return t.s.ctx.WrapKey(sh, mech(kw, nil), w, k)
	}
	unwrap := func(t *T, allowed ...uint) (pkcs11.SessionHandle, pkcs11.ObjectHandle, error) {
		t.needMechFlags(kw, pkcs11.CKF_UNWRAP, "CKF_UNWRAP")
		sh := t.open(true)
		u := t.create(sh, secretTemplate(kwKEK, attr(pkcs11.CKA_UNWRAP, true), allowedMechs(allowed...)), "unwrapping key")
		h, err := t.s.ctx.UnwrapKey(sh, mech(kw, nil), u, wrapRFC3394(kwKEK, rfc3394IV, aesKey128), aesUnwrapTemplate())
		return sh, h, err
	}
	return []check{
		{id: "allowed.wrap.outside", spec: allowedSpec + ", 5.18.3 C_WrapKey (the wrapping key's list: CKR_MECHANISM_INVALID)", mech: kw, fn: func(t *T) {
			_, err := wrap(t, pkcs11.CKM_AES_KEY_WRAP_PAD)
			t.expect(err, "C_WrapKey(CKM_AES_KEY_WRAP) with a key allowed only CKM_AES_KEY_WRAP_PAD", pkcs11.CKR_MECHANISM_INVALID)
		}},
		{id: "allowed.wrap.inside", spec: allowedSpec + ", 5.18.3 C_WrapKey (a listed mechanism works)", mech: kw, fn: func(t *T) {
			blob, err := wrap(t, pkcs11.CKM_AES_KEY_WRAP_PAD, kw)
			t.ok(err, "C_WrapKey(CKM_AES_KEY_WRAP) with a key allowed it")
			t.sameBytes(blob, wrapRFC3394(kwKEK, rfc3394IV, aesKey128), "wrapped key")
		}},
		{id: "allowed.unwrap.outside", spec: allowedSpec + ", 5.18.4 C_UnwrapKey (the unwrapping key's list: CKR_MECHANISM_INVALID)", mech: kw, fn: func(t *T) {
			_, _, err := unwrap(t, pkcs11.CKM_AES_KEY_WRAP_PAD)
			t.expect(err, "C_UnwrapKey(CKM_AES_KEY_WRAP) with a key allowed only CKM_AES_KEY_WRAP_PAD", pkcs11.CKR_MECHANISM_INVALID)
		}},
		{id: "allowed.unwrap.inside", spec: allowedSpec + ", 5.18.4 C_UnwrapKey (a listed mechanism works)", mech: kw, fn: func(t *T) {
			sh, h, err := unwrap(t, pkcs11.CKM_AES_KEY_WRAP_PAD, kw)
			t.ok(err, "C_UnwrapKey(CKM_AES_KEY_WRAP) with a key allowed it")
			t.sameBytes(t.getAttr(sh, h, pkcs11.CKA_VALUE, "CKA_VALUE"), aesKey128, "unwrapped key value")
		}},
		{id: "allowed.derive.outside", spec: allowedSpec + ", 5.18.5 C_DeriveKey (the base key's list: CKR_MECHANISM_INVALID)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			sh := t.open(true)
			priv := t.ecdhAllowed(sh, pkcs11.CKM_ECDH1_COFACTOR_DERIVE)
			g, _ := ecdh.P256().GenerateKey(rand.Reader)
			_, err := t.s.ctx.DeriveKey(sh, mech(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(ckdNull, nil, g.PublicKey().Bytes())), priv, derivedSecret(32))
			t.expect(err, "C_DeriveKey(CKM_ECDH1_DERIVE) with a key allowed only CKM_ECDH1_COFACTOR_DERIVE", pkcs11.CKR_MECHANISM_INVALID)
		}},
		{id: "allowed.derive.inside", spec: allowedSpec + ", 5.18.5 C_DeriveKey (a listed mechanism works)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			sh := t.open(true)
			priv := t.ecdhAllowed(sh, pkcs11.CKM_ECDH1_COFACTOR_DERIVE, pkcs11.CKM_ECDH1_DERIVE)
			g, _ := ecdh.P256().GenerateKey(rand.Reader)
			_, err := t.s.ctx.DeriveKey(sh, mech(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(ckdNull, nil, g.PublicKey().Bytes())), priv, derivedSecret(32))
			t.ok(err, "C_DeriveKey(CKM_ECDH1_DERIVE) with a key allowed it")
		}},
	}
}

// ---- Key sizes against CK_MECHANISM_INFO ------------------------------------

// rsaParts is an RSA key as its PKCS#11 attributes need it.
type rsaParts struct{ n, e, d, p, q, dp, dq, qinv *big.Int }

func rsaPartsOf(k *rsa.PrivateKey) rsaParts {
	k.Precompute()
	return rsaParts{k.N, big.NewInt(int64(k.E)), k.D, k.Primes[0], k.Primes[1], k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv}
}

// smallRSA makes an RSA key of exactly bits bits with math/big, below the
// sizes crypto/rsa generates.
func smallRSA(bits int) rsaParts {
	e := big.NewInt(65537)
	one := big.NewInt(1)
	for {
		p, _ := rand.Prime(rand.Reader, bits/2)
		q, _ := rand.Prime(rand.Reader, bits-bits/2)
		n := new(big.Int).Mul(p, q)
		if p.Cmp(q) == 0 || n.BitLen() != bits {
			continue
		}
		p1, q1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
		phi := new(big.Int).Mul(p1, q1)
		d := new(big.Int).ModInverse(e, phi)
		if d == nil {
			continue
		}
		return rsaParts{n, e, d, p, q, new(big.Int).Mod(d, p1), new(big.Int).Mod(d, q1), new(big.Int).ModInverse(q, p)}
	}
}

func (r rsaParts) pubTemplate(extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	return merge([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_MODULUS, r.n.Bytes()), attr(pkcs11.CKA_PUBLIC_EXPONENT, r.e.Bytes()),
	}, extra)
}

func (r rsaParts) privTemplate(extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	return merge([]*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true),
		attr(pkcs11.CKA_MODULUS, r.n.Bytes()), attr(pkcs11.CKA_PUBLIC_EXPONENT, r.e.Bytes()), attr(pkcs11.CKA_PRIVATE_EXPONENT, r.d.Bytes()),
		attr(pkcs11.CKA_PRIME_1, r.p.Bytes()), attr(pkcs11.CKA_PRIME_2, r.q.Bytes()), attr(pkcs11.CKA_EXPONENT_1, r.dp.Bytes()),
		attr(pkcs11.CKA_EXPONENT_2, r.dq.Bytes()), attr(pkcs11.CKA_COEFFICIENT, r.qinv.Bytes()),
	}, extra)
}

var (
	suiteRSAOnce sync.Once
	suiteRSAKey  *rsa.PrivateKey
)

// suiteRSA is one 2048-bit RSA key per process, imported by the checks
// that need a key they can compute with.
func suiteRSA() (*rsa.PrivateKey, rsaParts) {
	suiteRSAOnce.Do(func() { suiteRSAKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	return suiteRSAKey, rsaPartsOf(suiteRSAKey)
}

// smallRSAFor returns an RSA key below the mechanism's ulMinKeySize and
// the flag it needs, or skips when none can be made.
func (t *T) smallRSAFor(m, flag uint, flagName string) (rsaParts, int) {
	mi, rv := mechInfoVia(t.s.raw.newest(), t.s.slot, m)
	t.okRV(rv, "C_GetMechanismInfo("+mechName(m)+")")
	if mi.flags&flag == 0 {
		t.skipf("%s lacks %s", mechName(m), flagName)
	}
	bits := int(mi.min) / 2
	if bits < 256 {
		t.skipf("%s takes keys from %d bits: no smaller RSA key to construct", mechName(m), mi.min)
	}
	return smallRSA(bits), int(mi.min)
}

func sizeChecks() []check {
	return []check{
		{id: "wrap.size.wrapping-key", spec: "base 5.18.3 C_WrapKey, 3.5 CK_MECHANISM_INFO ulMinKeySize (CKR_WRAPPING_KEY_SIZE_RANGE)", mech: pkcs11.CKM_RSA_PKCS, fn: func(t *T) {
			r, min := t.smallRSAFor(pkcs11.CKM_RSA_PKCS, pkcs11.CKF_WRAP, "CKF_WRAP")
			sh := t.open(true)
			w, err := t.s.ctx.CreateObject(sh, r.pubTemplate(attr(pkcs11.CKA_WRAP, true)))
			if err != nil {
				t.skipf("C_CreateObject of a %d-bit RSA public key (minimum %d): %s: cannot construct the case", r.n.BitLen(), min, rvName(rvOf(err)))
			}
			k := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_SENSITIVE, false)), "key to wrap")
			_, err = t.s.ctx.WrapKey(sh, mech(pkcs11.CKM_RSA_PKCS, nil), w, k)
			t.expect(err, fmt.Sprintf("C_WrapKey(CKM_RSA_PKCS) under a %d-bit key (minimum %d)", r.n.BitLen(), min), pkcs11.CKR_WRAPPING_KEY_SIZE_RANGE)
		}},
		{id: "wrap.size.unwrapping-key", spec: "base 5.18.4 C_UnwrapKey, 3.5 CK_MECHANISM_INFO ulMinKeySize (CKR_UNWRAPPING_KEY_SIZE_RANGE)", mech: pkcs11.CKM_RSA_PKCS, fn: func(t *T) {
			r, min := t.smallRSAFor(pkcs11.CKM_RSA_PKCS, pkcs11.CKF_UNWRAP, "CKF_UNWRAP")
			sh := t.open(true)
			u, err := t.s.ctx.CreateObject(sh, r.privTemplate(attr(pkcs11.CKA_UNWRAP, true)))
			if err != nil {
				t.skipf("C_CreateObject of a %d-bit RSA private key (minimum %d): %s: cannot construct the case", r.n.BitLen(), min, rvName(rvOf(err)))
			}
			blob := bytes.Repeat([]byte{0x11}, r.n.BitLen()/8)
			_, err = t.s.ctx.UnwrapKey(sh, mech(pkcs11.CKM_RSA_PKCS, nil), u, blob, aesUnwrapTemplate(attr(pkcs11.CKA_VALUE_LEN, 16)))
			t.expect(err, fmt.Sprintf("C_UnwrapKey(CKM_RSA_PKCS) under a %d-bit key (minimum %d)", r.n.BitLen(), min), pkcs11.CKR_UNWRAPPING_KEY_SIZE_RANGE)
		}},
		{id: "wrap.size.wrapped-key", spec: "base 5.18.3 C_WrapKey, curr 2.1.6 CKM_RSA_PKCS (a key longer than k-11 bytes: CKR_KEY_SIZE_RANGE)", mech: pkcs11.CKM_RSA_PKCS, fn: func(t *T) {
			t.needMechFlags(pkcs11.CKM_RSA_PKCS, pkcs11.CKF_WRAP, "CKF_WRAP")
			_, r := suiteRSA()
			sh := t.open(true)
			w := t.create(sh, r.pubTemplate(attr(pkcs11.CKA_WRAP, true)), "2048-bit RSA public key")
			k := t.create(sh, genericSecret(plaintext(246), attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_SENSITIVE, false)), "246-byte generic secret")
			_, err := t.s.ctx.WrapKey(sh, mech(pkcs11.CKM_RSA_PKCS, nil), w, k)
			t.expect(err, "C_WrapKey(CKM_RSA_PKCS) of 246 bytes under a 2048-bit key (at most 245)", pkcs11.CKR_KEY_SIZE_RANGE)
		}},
		{id: "derive.size.base-key", spec: "base 5.18.5 C_DeriveKey, 3.5 CK_MECHANISM_INFO ulMinKeySize (CKR_KEY_SIZE_RANGE)", mech: pkcs11.CKM_ECDH1_DERIVE, fn: func(t *T) {
			mi, rv := mechInfoVia(t.s.raw.newest(), t.s.slot, pkcs11.CKM_ECDH1_DERIVE)
			t.okRV(rv, "C_GetMechanismInfo(CKM_ECDH1_DERIVE)")
			if mi.min <= 192 {
				t.skipf("CKM_ECDH1_DERIVE takes keys from %d bits: no standard curve below it to construct", mi.min)
			}
			sh := t.open(true)
			// P-192 (1.2.840.10045.3.1.1), private value 1.
			p192 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01}
			k, err := t.s.ctx.CreateObject(sh, []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), attr(pkcs11.CKA_TOKEN, false),
				attr(pkcs11.CKA_EC_PARAMS, p192), attr(pkcs11.CKA_VALUE, append(make([]byte, 23), 1)), attr(pkcs11.CKA_DERIVE, true),
			})
			if err != nil {
				t.skipf("C_CreateObject of a P-192 key (minimum %d bits): %s: cannot construct the case", mi.min, rvName(rvOf(err)))
			}
			peerPt := append([]byte{4}, make([]byte, 48)...)
			_, err = t.s.ctx.DeriveKey(sh, mech(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(ckdNull, nil, peerPt)), k, derivedSecret(24))
			t.expect(err, "C_DeriveKey(CKM_ECDH1_DERIVE) with a P-192 base key", pkcs11.CKR_KEY_SIZE_RANGE)
		}},
	}
}

// ---- Weaker spots: copies, raw RSA, RSA PKCS #1 v1.5 unwrap, C_DigestKey ---

func copyChecks() []check {
	unprivate := func(id, what string, make func(t *T, sh pkcs11.SessionHandle) pkcs11.ObjectHandle) check {
		return check{id: "obj.copy.unprivate-" + id, spec: "base 5.7.2 C_CopyObject, 4.4 CKA_PRIVATE (a protected key cannot become a public object: CKR_ATTRIBUTE_READ_ONLY)", fn: func(t *T) {
			sh := t.open(true)
			h := make(t, sh)
			_, err := t.s.ctx.CopyObject(sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_PRIVATE, false)})
			t.expect(err, "C_CopyObject(CKA_PRIVATE=FALSE) of "+what, pkcs11.CKR_ATTRIBUTE_READ_ONLY)
		}}
	}
	return []check{
		unprivate("sensitive", "a sensitive secret key", func(t *T, sh pkcs11.SessionHandle) pkcs11.ObjectHandle {
			return t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true)), "sensitive AES key")
		}),
		unprivate("unextractable", "a non-extractable secret key", func(t *T, sh pkcs11.SessionHandle) pkcs11.ObjectHandle {
			return t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, false)), "unextractable AES key")
		}),
		unprivate("private-key", "a sensitive private key", func(t *T, sh pkcs11.SessionHandle) pkcs11.ObjectHandle {
			return t.key("ec").priv
		}),
		{id: "obj.readonly.private", spec: "base 4.4 CKA_PRIVATE, 5.7.6 C_SetAttributeValue (CKR_ATTRIBUTE_READ_ONLY)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true)), "sensitive AES key")
			t.expect(t.setAttr(sh, h, attr(pkcs11.CKA_PRIVATE, false)), "C_SetAttributeValue(CKA_PRIVATE=FALSE)", pkcs11.CKR_ATTRIBUTE_READ_ONLY)
		}},
	}
}

func rsaRawChecks() []check {
	const spec = "curr 2.1.9 CKM_RSA_X_509 (raw RSA: a signature is a decryption, so each needs both CKA_SIGN and CKA_DECRYPT)"
	key := func(t *T, sh pkcs11.SessionHandle, sign, decrypt bool) (pkcs11.ObjectHandle, rsaParts) {
		_, r := suiteRSA()
		return t.create(sh, r.privTemplate(attr(pkcs11.CKA_SIGN, sign), attr(pkcs11.CKA_DECRYPT, decrypt)), "RSA private key"), r
	}
	return []check{
		{id: "rsa-x509.sign-needs-decrypt", spec: spec + " (C_SignInit with CKA_DECRYPT=FALSE: CKR_KEY_FUNCTION_NOT_PERMITTED)", mech: pkcs11.CKM_RSA_X_509, fn: func(t *T) {
			sh := t.open(true)
			k, _ := key(t, sh, true, false)
			t.expect(t.s.ctx.SignInit(sh, mech(pkcs11.CKM_RSA_X_509, nil), k), "C_SignInit(CKM_RSA_X_509) with CKA_SIGN=TRUE, CKA_DECRYPT=FALSE", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)
		}},
		{id: "rsa-x509.decrypt-needs-sign", spec: spec + " (C_DecryptInit with CKA_SIGN=FALSE: CKR_KEY_FUNCTION_NOT_PERMITTED)", mech: pkcs11.CKM_RSA_X_509, fn: func(t *T) {
			sh := t.open(true)
			k, _ := key(t, sh, false, true)
			t.expect(t.s.ctx.DecryptInit(sh, mech(pkcs11.CKM_RSA_X_509, nil), k), "C_DecryptInit(CKM_RSA_X_509) with CKA_DECRYPT=TRUE, CKA_SIGN=FALSE", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)
		}},
		{id: "rsa-x509.sign-and-decrypt", spec: spec + " (both TRUE: C_Sign and C_Decrypt compute x^d mod n)", mech: pkcs11.CKM_RSA_X_509, fn: func(t *T) {
			sh := t.open(true)
			k, r := key(t, sh, true, true)
			x := append([]byte{0}, plaintext(255)...)
			want := new(big.Int).Exp(new(big.Int).SetBytes(x), r.d, r.n).FillBytes(make([]byte, 256))
			t.ok(t.s.ctx.SignInit(sh, mech(pkcs11.CKM_RSA_X_509, nil), k), "C_SignInit(CKM_RSA_X_509)")
			sig, err := t.s.ctx.Sign(sh, x)
			t.ok(err, "C_Sign(CKM_RSA_X_509)")
			t.sameBytes(sig, want, "raw RSA signature")
			t.ok(t.s.ctx.DecryptInit(sh, mech(pkcs11.CKM_RSA_X_509, nil), k), "C_DecryptInit(CKM_RSA_X_509)")
			pt, err := t.s.ctx.Decrypt(sh, x)
			t.ok(err, "C_Decrypt(CKM_RSA_X_509)")
			t.sameBytes(pt, want, "raw RSA decryption")
		}},
	}
}

func rsaUnwrapChecks() []check {
	const spec = "base 5.18.4 C_UnwrapKey, curr 2.1.6 CKM_RSA_PKCS"
	// setup imports the suite's RSA key as a wrap-only public key and an
	// unwrap-only private key, and wraps a 16-byte AES key.
	setup := func(t *T) (pkcs11.SessionHandle, pkcs11.ObjectHandle, []byte, *rsa.PrivateKey) {
		t.needMechFlags(pkcs11.CKM_RSA_PKCS, pkcs11.CKF_WRAP|pkcs11.CKF_UNWRAP, "CKF_WRAP|CKF_UNWRAP")
		gk, r := suiteRSA()
		sh := t.open(true)
		pub := t.create(sh, r.pubTemplate(attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_ENCRYPT, false)), "RSA public key")
		priv := t.create(sh, r.privTemplate(attr(pkcs11.CKA_UNWRAP, true), attr(pkcs11.CKA_DECRYPT, false), attr(pkcs11.CKA_SIGN, false)), "RSA private key")
		k := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_SENSITIVE, false)), "AES key")
		blob, err := t.s.ctx.WrapKey(sh, mech(pkcs11.CKM_RSA_PKCS, nil), pub, k)
		t.ok(err, "C_WrapKey(CKM_RSA_PKCS) of a 16-byte AES key")
		return sh, priv, blob, gk
	}
	aes16 := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_VALUE_LEN, 16), attr(pkcs11.CKA_ENCRYPT, true),
	}
	unwrap := func(t *T, sh pkcs11.SessionHandle, priv pkcs11.ObjectHandle, blob []byte) (pkcs11.ObjectHandle, uint) {
		h, err := t.s.ctx.UnwrapKey(sh, mech(pkcs11.CKM_RSA_PKCS, nil), priv, blob, aes16)
		return h, rvOf(err)
	}
	return []check{
		{id: "unwrap.rsa-pkcs.roundtrip", spec: spec + " (template CKK_AES, CKA_VALUE_LEN 16)", mech: pkcs11.CKM_RSA_PKCS, fn: func(t *T) {
			sh, priv, blob, _ := setup(t)
			h, rv := unwrap(t, sh, priv, blob)
			t.okRV(rv, "C_UnwrapKey(CKM_RSA_PKCS)")
			t.sameBytes(t.probe(sh, h, "unwrapped key"), goProbe(aesKey128), "AES-ECB under the unwrapped key")
		}},
		{id: "unwrap.rsa-pkcs.implicit-rejection", spec: spec + " (implicit rejection: a blob with bad padding unwraps to a key fixed by the blob, and no return code tells bad padding from good)", mech: pkcs11.CKM_RSA_PKCS, fn: func(t *T) {
			sh, priv, blob, gk := setup(t)
			bad := append([]byte{}, blob...)
			bad[128] ^= 0x40
			h1, rv := unwrap(t, sh, priv, bad)
			t.expectRV(rv, "C_UnwrapKey(CKM_RSA_PKCS) of a blob with one byte changed", pkcs11.CKR_OK)
			p1 := t.probe(sh, h1, "key unwrapped from the corrupted blob")
			if bytes.Equal(p1, goProbe(aesKey128)) {
				t.failf("the corrupted blob unwrapped to the original key")
			}
			h2, rv := unwrap(t, sh, priv, bad)
			t.expectRV(rv, "C_UnwrapKey(CKM_RSA_PKCS) of the same corrupted blob again", pkcs11.CKR_OK)
			t.sameBytes(t.probe(sh, h2, "second key from the corrupted blob"), p1, "AES-ECB under the second key from the same corrupted blob")
			long, err := rsa.EncryptPKCS1v15(rand.Reader, &gk.PublicKey, plaintext(24))
			if err != nil {
				t.failf("crypto/rsa: %v", err)
			}
			random := append([]byte{0}, plaintext(255)...)
			other := append([]byte{}, blob...)
			other[200] ^= 0x01
			for _, c := range []struct {
				what string
				blob []byte
			}{{"another corrupted blob", other}, {"255 arbitrary bytes", random}, {"good padding around 24 bytes (the template says 16)", long}} {
				_, rv := unwrap(t, sh, priv, c.blob)
				t.expectRV(rv, "C_UnwrapKey(CKM_RSA_PKCS) of "+c.what, pkcs11.CKR_OK)
			}
			t.note("corrupted, arbitrary and wrong-length blobs all unwrap (CKR_OK) to deterministic keys")
		}},
		{id: "unwrap.rsa-pkcs.no-length", spec: spec + " (a template that fixes no key length: CKR_TEMPLATE_INCOMPLETE before any decryption)", mech: pkcs11.CKM_RSA_PKCS, fn: func(t *T) {
			sh, priv, blob, _ := setup(t)
			bad := append([]byte{}, blob...)
			bad[128] ^= 0x40
			tmpl := []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET), attr(pkcs11.CKA_TOKEN, false),
			}
			for _, b := range []struct {
				what string
				blob []byte
			}{{"a good blob", blob}, {"a corrupted blob", bad}} {
				_, err := t.s.ctx.UnwrapKey(sh, mech(pkcs11.CKM_RSA_PKCS, nil), priv, b.blob, tmpl)
				t.expect(err, "C_UnwrapKey(CKM_RSA_PKCS, CKK_GENERIC_SECRET without CKA_VALUE_LEN) of "+b.what, pkcs11.CKR_TEMPLATE_INCOMPLETE)
			}
		}},
	}
}

func digestKeyChecks() []check {
	const spec = "base 5.12.4 C_DigestKey (CKR_KEY_INDIGESTIBLE)"
	sensitive := func(t *T, sh pkcs11.SessionHandle) pkcs11.ObjectHandle {
		return t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_PRIVATE, true)), "sensitive AES key")
	}
	weak := func(id string, m uint) check {
		return check{id: "digestkey." + id + ".sensitive", spec: spec + ": a sensitive key is not fed to a broken hash (" + mechName(m) + ")", mech: m, fn: func(t *T) {
			sh := t.open(true)
			k := sensitive(t, sh)
			t.ok(t.s.ctx.DigestInit(sh, mech(m, nil)), "C_DigestInit("+mechName(m)+")")
			t.expect(t.s.ctx.DigestKey(sh, k), "C_DigestKey of a sensitive key", pkcs11.CKR_KEY_INDIGESTIBLE)
		}}
	}
	return []check{
		weak("md5", pkcs11.CKM_MD5),
		weak("sha1", pkcs11.CKM_SHA_1),
		{id: "digestkey.sha256.sensitive", spec: "base 5.12.4 C_DigestKey (SHA-256 of a sensitive key works)", mech: pkcs11.CKM_SHA256, fn: func(t *T) {
			sh := t.open(true)
			k := sensitive(t, sh)
			prefix := []byte("conformance prefix")
			t.ok(t.s.ctx.DigestInit(sh, mech(pkcs11.CKM_SHA256, nil)), "C_DigestInit(CKM_SHA256)")
			t.ok(t.s.ctx.DigestUpdate(sh, prefix), "C_DigestUpdate")
			t.ok(t.s.ctx.DigestKey(sh, k), "C_DigestKey of a sensitive key")
			got, err := t.s.ctx.DigestFinal(sh)
			t.ok(err, "C_DigestFinal")
			t.sameBytes(got, sum(sha256.New, append(append([]byte{}, prefix...), aesKey128...)), "SHA-256(prefix || key)")
		}},
	}
}

// keyProtChecks is the "keyprot" group (the user is logged in throughout).
func keyProtChecks() []check {
	var cs []check
	cs = append(cs, gcmWrapChecks()...)
	cs = append(cs, hkdfSaltChecks()...)
	cs = append(cs, allowedChecks()...)
	cs = append(cs, sizeChecks()...)
	cs = append(cs, copyChecks()...)
	cs = append(cs, rsaRawChecks()...)
	cs = append(cs, rsaUnwrapChecks()...)
	cs = append(cs, digestKeyChecks()...)
	return cs
}

// ---- Checks that log in and out: trusted keys, invisible salt keys ------

// trustedKey is a public token AES key with roles and no other role,
// sensitive and never extractable, that the SO made with CKA_TRUSTED=TRUE
// (base 4.10: only the SO may set it; SoftHSMv2 2.6.1 takes it only in the
// SO's template, not in a later C_SetAttributeValue). sh must be a R/W
// session logged in as the user; it is again when trustedKey returns.
func (t *T) trustedKey(sh pkcs11.SessionHandle, roles ...*pkcs11.Attribute) pkcs11.ObjectHandle {
	if !t.s.mechs[pkcs11.CKM_AES_KEY_GEN] {
		t.skipf("CKM_AES_KEY_GEN not in C_GetMechanismList")
	}
	t.ok(t.s.ctx.Logout(sh), "C_Logout")
	t.loginSO(sh)
	h, err := t.s.ctx.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), merge([]*pkcs11.Attribute{
		attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_PRIVATE, false), attr(pkcs11.CKA_VALUE_LEN, 16),
		attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false), attr(pkcs11.CKA_LABEL, "trusted wrapping key"),
		attr(pkcs11.CKA_TRUSTED, true), attr(pkcs11.CKA_ENCRYPT, false), attr(pkcs11.CKA_DECRYPT, false),
		attr(pkcs11.CKA_WRAP, false), attr(pkcs11.CKA_UNWRAP, false), // roles not asked for are off, not the token's default
	}, roles))
	t.ok(err, "SO: C_GenerateKey(CKM_AES_KEY_GEN, CKA_TRUSTED=TRUE) of a public token key")
	t.ok(t.s.ctx.Logout(sh), "C_Logout (SO)")
	t.loginUser(sh)
	if !t.getBool(sh, h, pkcs11.CKA_TRUSTED, "CKA_TRUSTED") {
		t.failf("the SO made the key with CKA_TRUSTED=TRUE but it reads FALSE")
	}
	return h
}

func keyProtLoginChecks() []check {
	const trustedSpec = "base 4.10 CKA_TRUSTED, 5.18.3 C_WrapKey, 5.18.4 C_UnwrapKey"
	return []check{
		{id: "wrap.trusted.wraps-sensitive", spec: trustedSpec + " (a trusted wrap-only key wraps a sensitive key)", fn: func(t *T) {
			m := t.wrapMech(true)
			sh := t.open(true)
			t.loginUser(sh)
			w := t.trustedKey(sh, attr(pkcs11.CKA_WRAP, true))
			_, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), w, t.target(sh))
			t.ok(err, "C_WrapKey of a sensitive key with a trusted key")
		}},
		{id: "wrap.trusted.decrypt-capable", spec: trustedSpec + " (a trusted key that may decrypt could decrypt the blob: CKR_KEY_NOT_WRAPPABLE)", fn: func(t *T) {
			m := t.wrapMech(true)
			sh := t.open(true)
			t.loginUser(sh)
			w := t.trustedKey(sh, attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_DECRYPT, true))
			_, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), w, t.target(sh))
			t.expect(err, "C_WrapKey of a sensitive key with a trusted key that has CKA_DECRYPT=TRUE", pkcs11.CKR_KEY_NOT_WRAPPABLE)
		}},
		{id: "wrap.trusted.unwrap-sensitive", spec: trustedSpec + " (keys unwrapped by a key that may wrap sensitive keys are sensitive: CKR_TEMPLATE_INCONSISTENT)", fn: func(t *T) {
			m := t.wrapMech(true)
			sh := t.open(true)
			t.loginUser(sh)
			w := t.trustedKey(sh, attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_UNWRAP, true))
			blob, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), w, t.target(sh))
			t.ok(err, "C_WrapKey of a sensitive key with a trusted wrap/unwrap key")
			tmpl := func(sensitive bool) []*pkcs11.Attribute {
				return []*pkcs11.Attribute{
					attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false),
					attr(pkcs11.CKA_SENSITIVE, sensitive), attr(pkcs11.CKA_EXTRACTABLE, true),
				}
			}
			h, err := t.s.ctx.UnwrapKey(sh, mech(m, wrapParam(m)), w, blob, tmpl(false))
			if err == nil {
				if v, err := t.s.ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_VALUE, nil)}); err == nil && bytes.Equal(v[0].Value, targetKey) {
					t.failf("C_UnwrapKey(CKA_SENSITIVE=FALSE) with the trusted key exposed the sensitive key's value")
				}
			}
			t.expect(err, "C_UnwrapKey(CKA_SENSITIVE=FALSE) with a trusted key", pkcs11.CKR_TEMPLATE_INCONSISTENT)
			h, err = t.s.ctx.UnwrapKey(sh, mech(m, wrapParam(m)), w, blob, tmpl(true))
			t.ok(err, "C_UnwrapKey(CKA_SENSITIVE=TRUE) with a trusted key")
			_, rv := t.s.raw.attrLen(uint(sh), uint(h), pkcs11.CKA_VALUE)
			t.expectRV(rv, "C_GetAttributeValue(CKA_VALUE) of the unwrapped key", pkcs11.CKR_ATTRIBUTE_SENSITIVE)
		}},
		{id: "hkdf.salt-key.invisible", spec: hkdfSaltSpec + " (a private salt key in a session not logged in: CKR_MECHANISM_PARAM_INVALID)", mech: ckmHKDFDerive, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			t.loginUser(sh)
			k := t.create(sh, genericSecret(hkdfSaltValue, attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_PRIVATE, true),
				attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_DERIVE, true)), "private token salt key")
			t.ok(t.s.ctx.Logout(sh), "C_Logout")
			b := t.knownBase(sh, attr(pkcs11.CKA_PRIVATE, false))
			_, err := t.s.ctx.DeriveKey(sh, mech(ckmHKDFDerive, hkdfKeySalt(&m, true, false, uint(k), nil)), b,
				append(derivedSecret(32), attr(pkcs11.CKA_PRIVATE, false)))
			t.expect(err, "C_DeriveKey logged out, hSaltKey a private key", pkcs11.CKR_MECHANISM_PARAM_INVALID)
		}},
	}
}
