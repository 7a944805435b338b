package conformance

import (
	"crypto/cipher"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// Engine behaviour a new user trips on, found by third-party suites.

// ---- Single-part and multi-part do not mix (base 5.2, 5.8-5.15) ------------
//
// An operation started as multi-part (an Update) cannot be finished by the
// single-part call, and one whose single-part call has answered a size
// query cannot continue as multi-part: the call is refused with
// CKR_OPERATION_ACTIVE and the operation is ended, so the next call in it
// gets CKR_OPERATION_NOT_INITIALIZED.

// modeOp is one operation kind with its single-part, update and final
// calls, each returning its CK_RV.
type modeOp struct {
	id, fn, spec string // fn: the function family, e.g. "Encrypt" for C_EncryptInit
	mech         uint
	key          string // fixture; "" for digests
	init         func(t *T, sh pkcs11.SessionHandle, k *keyFx) error
	single       func(t *T, sh pkcs11.SessionHandle, outCap int) uint // outCap < 0: size query
	update       func(t *T, sh pkcs11.SessionHandle) uint
	final        func(t *T, sh pkcs11.SessionHandle) uint
}

func modeOps() []modeOp {
	block := plaintext(32)
	raw := func(idx int) func(t *T, sh pkcs11.SessionHandle, outCap int) uint {
		return func(t *T, sh pkcs11.SessionHandle, outCap int) uint {
			_, _, rv := t.s.raw.inout(idx, uint(sh), block, outCap)
			return rv
		}
	}
	rawUpdate := func(idx int) func(t *T, sh pkcs11.SessionHandle) uint {
		return func(t *T, sh pkcs11.SessionHandle) uint {
			_, _, rv := t.s.raw.inout(idx, uint(sh), block, 64)
			return rv
		}
	}
	rawFinal := func(idx int) func(t *T, sh pkcs11.SessionHandle) uint {
		return func(t *T, sh pkcs11.SessionHandle) uint {
			_, _, rv := t.s.raw.final(idx, uint(sh), 64)
			return rv
		}
	}
	ecb := mech(pkcs11.CKM_AES_ECB, nil)
	hm := mech(pkcs11.CKM_SHA256_HMAC, nil)
	return []modeOp{
		{id: "encrypt", fn: "Encrypt", spec: "base 5.8 C_Encrypt, C_EncryptUpdate, C_EncryptFinal", mech: pkcs11.CKM_AES_ECB, key: "aes",
			init:   func(t *T, sh pkcs11.SessionHandle, k *keyFx) error { return t.s.ctx.EncryptInit(sh, ecb, k.pub) },
			single: raw(fnEncrypt), update: rawUpdate(fnEncryptUpdate), final: rawFinal(fnEncryptFinal)},
		{id: "decrypt", fn: "Decrypt", spec: "base 5.10 C_Decrypt, C_DecryptUpdate, C_DecryptFinal", mech: pkcs11.CKM_AES_ECB, key: "aes",
			init:   func(t *T, sh pkcs11.SessionHandle, k *keyFx) error { return t.s.ctx.DecryptInit(sh, ecb, k.priv) },
			single: raw(fnDecrypt), update: rawUpdate(fnDecryptUpdate), final: rawFinal(fnDecryptFinal)},
		{id: "digest", fn: "Digest", spec: "base 5.12 C_Digest, C_DigestUpdate, C_DigestFinal", mech: pkcs11.CKM_SHA256,
			init: func(t *T, sh pkcs11.SessionHandle, _ *keyFx) error {
				return t.s.ctx.DigestInit(sh, mech(pkcs11.CKM_SHA256, nil))
			},
			single: raw(fnDigest),
			update: func(t *T, sh pkcs11.SessionHandle) uint { return rvOf(t.s.ctx.DigestUpdate(sh, block)) },
			final:  rawFinal(fnDigestFinal)},
		{id: "sign", fn: "Sign", spec: "base 5.13 C_Sign, C_SignUpdate, C_SignFinal", mech: pkcs11.CKM_SHA256_HMAC, key: "hmac",
			init:   func(t *T, sh pkcs11.SessionHandle, k *keyFx) error { return t.s.ctx.SignInit(sh, hm, k.priv) },
			single: raw(fnSign),
			update: func(t *T, sh pkcs11.SessionHandle) uint { return rvOf(t.s.ctx.SignUpdate(sh, block)) },
			final:  rawFinal(fnSignFinal)},
		{id: "verify", fn: "Verify", spec: "base 5.15 C_Verify, C_VerifyUpdate, C_VerifyFinal", mech: pkcs11.CKM_SHA256_HMAC, key: "hmac",
			init: func(t *T, sh pkcs11.SessionHandle, k *keyFx) error { return t.s.ctx.VerifyInit(sh, hm, k.pub) },
			single: func(t *T, sh pkcs11.SessionHandle, _ int) uint {
				return rvOf(t.s.ctx.Verify(sh, block, make([]byte, 32)))
			},
			update: func(t *T, sh pkcs11.SessionHandle) uint { return rvOf(t.s.ctx.VerifyUpdate(sh, block)) },
			final:  func(t *T, sh pkcs11.SessionHandle) uint { return rvOf(t.s.ctx.VerifyFinal(sh, make([]byte, 32))) }},
	}
}

func modeChecks() []check {
	var cs []check
	for _, o := range modeOps() {
		o := o
		add := func(suffix, spec string, fn func(t *T, sh pkcs11.SessionHandle)) {
			cs = append(cs, check{id: "mode." + o.id + "." + suffix, spec: o.spec + "; " + spec, mech: o.mech, fn: func(t *T) {
				var k *keyFx
				if o.key != "" {
					k = t.key(o.key)
				}
				sh := t.open(false)
				t.ok(o.init(t, sh, k), "C_"+o.fn+"Init")
				fn(t, sh)
			}})
		}
		add("oneshot-after-update", "base 5.2 (the single-part call cannot finish a multi-part operation: CKR_OPERATION_ACTIVE, operation ended)", func(t *T, sh pkcs11.SessionHandle) {
			t.okRV(o.update(t, sh), "C_"+o.fn+"Update")
			t.expectRV(o.single(t, sh, 64), "C_"+o.fn+" after C_"+o.fn+"Update", pkcs11.CKR_OPERATION_ACTIVE)
			t.expectRV(o.final(t, sh), "C_"+o.fn+"Final after that CKR_OPERATION_ACTIVE", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		})
		if o.id == "verify" {
			continue // C_Verify has no size query
		}
		add("update-after-size-query", "base 5.2 (a size query starts the single-part call: an update is CKR_OPERATION_ACTIVE, operation ended)", func(t *T, sh pkcs11.SessionHandle) {
			t.okRV(o.single(t, sh, -1), "C_"+o.fn+" size query (NULL output)")
			t.expectRV(o.update(t, sh), "C_"+o.fn+"Update after the C_"+o.fn+" size query", pkcs11.CKR_OPERATION_ACTIVE)
			t.expectRV(o.single(t, sh, 64), "C_"+o.fn+" after that CKR_OPERATION_ACTIVE", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		})
		add("final-after-size-query", "base 5.2 (a size query starts the single-part call: the final is CKR_OPERATION_ACTIVE, operation ended)", func(t *T, sh pkcs11.SessionHandle) {
			t.okRV(o.single(t, sh, -1), "C_"+o.fn+" size query (NULL output)")
			t.expectRV(o.final(t, sh), "C_"+o.fn+"Final after the C_"+o.fn+" size query", pkcs11.CKR_OPERATION_ACTIVE)
			t.expectRV(o.single(t, sh, 64), "C_"+o.fn+" after that CKR_OPERATION_ACTIVE", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		})
	}
	return cs
}

// ---- C_GetOperationState with nothing to save -------------------------------

func opStateChecks() []check {
	return []check{
		{id: "op.get-state.not-initialized", spec: "base 5.6.5 C_GetOperationState (no active operation: CKR_OPERATION_NOT_INITIALIZED)", fn: func(t *T) {
			_, err := t.s.ctx.GetOperationState(t.open(false))
			if rvOf(err) == pkcs11.CKR_FUNCTION_NOT_SUPPORTED {
				t.skipf("C_GetOperationState: CKR_FUNCTION_NOT_SUPPORTED")
			}
			t.expect(err, "C_GetOperationState with no active operation", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		}},
	}
}

// ---- C_Login with a NULL PIN --------------------------------------------------

func nullPINChecks() []check {
	return []check{
		{id: "login.null-pin", spec: "base 5.6.8 C_Login (pPin NULL: CKR_ARGUMENTS_BAD, not a wrong PIN), 3.2 CK_TOKEN_INFO flags", fn: func(t *T) {
			if t.tokenFlags()&pkcs11.CKF_PROTECTED_AUTHENTICATION_PATH != 0 {
				t.skipf("CKF_PROTECTED_AUTHENTICATION_PATH: a NULL pPin asks for the PIN pad")
			}
			var m cmem
			defer m.free()
			sh := t.open(false)
			for _, n := range []int{0, 6} {
				rv := m.loginVia(t.s.raw.list240(), uint(sh), pkcs11.CKU_USER, nil, n)
				t.expectRV(rv, "C_Login(CKU_USER, NULL pPin, ulPinLen "+string(rune('0'+n))+")", pkcs11.CKR_ARGUMENTS_BAD)
			}
			if f := t.tokenFlags(); f&(pkcs11.CKF_USER_PIN_COUNT_LOW|pkcs11.CKF_USER_PIN_FINAL_TRY|pkcs11.CKF_USER_PIN_LOCKED) != 0 {
				t.failf("CK_TOKEN_INFO flags 0x%x after two NULL PINs: they were counted as wrong PINs", f)
			}
			t.loginUser(sh)
		}},
	}
}

// ---- C_WrapKey / C_UnwrapKey with the block modes (curr 2.8.6, 2.23.7) ------
//
// CKM_AES_ECB, CKM_AES_CBC, CKM_DES3_ECB and CKM_DES3_CBC wrap a secret key
// by encrypting its value padded with zeros to the block size, and unwrap
// by decrypting and cutting the result back to the template's key type
// and CKA_VALUE_LEN.

type blockWrapCase struct {
	id, spec string
	mech     uint
	kekType  uint
	kek      []byte
	iv       []byte
	block    int
	ref      func(kek, iv, pt []byte) []byte
}

func blockWrapCases() []blockWrapCase {
	ecb := func(b func([]byte) cipher.Block) func(kek, iv, pt []byte) []byte {
		return func(kek, _, pt []byte) []byte { return ecbEnc(b(kek), pt) }
	}
	cbc := func(b func([]byte) cipher.Block) func(kek, iv, pt []byte) []byte {
		return func(kek, iv, pt []byte) []byte { return cbcEnc(b(kek), iv, pt, false) }
	}
	return []blockWrapCase{
		{id: "aes-ecb", spec: "curr 2.8.6 CKM_AES_ECB", mech: pkcs11.CKM_AES_ECB, kekType: pkcs11.CKK_AES, kek: aesKey128, block: 16, ref: ecb(aesBlock)},
		{id: "aes-cbc", spec: "curr 2.8.6 CKM_AES_CBC", mech: pkcs11.CKM_AES_CBC, kekType: pkcs11.CKK_AES, kek: aesKey128, iv: iv16, block: 16, ref: cbc(aesBlock)},
		{id: "des3-ecb", spec: "curr 2.23.6 CKM_DES3_ECB", mech: pkcs11.CKM_DES3_ECB, kekType: pkcs11.CKK_DES3, kek: des3Key, block: 8, ref: ecb(des3Block)},
		{id: "des3-cbc", spec: "curr 2.23.7 CKM_DES3_CBC", mech: pkcs11.CKM_DES3_CBC, kekType: pkcs11.CKK_DES3, kek: des3Key, iv: iv8, block: 8, ref: cbc(des3Block)},
	}
}

func (c blockWrapCase) m() []*pkcs11.Mechanism {
	if c.iv == nil {
		return mech(c.mech, nil)
	}
	return mech(c.mech, c.iv)
}

func blockWrapChecks() []check {
	var cs []check
	for _, c := range blockWrapCases() {
		c := c
		for _, k := range []struct {
			id, what string
			keyType  uint
			value    []byte
		}{
			{"aes-key", "a 16-byte AES key", pkcs11.CKK_AES, []byte("wrapped AES key!")},
			{"padded-secret", "a 20-byte generic secret (zero-padded on wrap, cut by CKA_VALUE_LEN on unwrap)", pkcs11.CKK_GENERIC_SECRET, []byte("20-byte HMAC secret!")},
		} {
			k := k
			cs = append(cs, check{id: "blockwrap." + c.id + "." + k.id, spec: c.spec + "; base 5.18.3 C_WrapKey, 5.18.4 C_UnwrapKey of " + k.what, mech: c.mech, fn: func(t *T) {
				sh := t.open(true)
				kek := t.create(sh, []*pkcs11.Attribute{
					attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, c.kekType), attr(pkcs11.CKA_TOKEN, false),
					attr(pkcs11.CKA_VALUE, c.kek), attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_UNWRAP, true),
				}, "wrapping key")
				key := t.create(sh, []*pkcs11.Attribute{
					attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, k.keyType), attr(pkcs11.CKA_TOKEN, false),
					attr(pkcs11.CKA_VALUE, k.value), attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
				}, "key to wrap")
				blob, err := t.s.ctx.WrapKey(sh, c.m(), kek, key)
				t.ok(err, "C_WrapKey("+mechName(c.mech)+")")
				padded := append(append([]byte{}, k.value...), make([]byte, (c.block-len(k.value)%c.block)%c.block)...)
				t.sameBytes(blob, c.ref(c.kek, c.iv, padded), "wrapped key (the value, zero-padded, encrypted)")
				u, err := t.s.ctx.UnwrapKey(sh, c.m(), kek, blob, []*pkcs11.Attribute{
					attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, k.keyType), attr(pkcs11.CKA_TOKEN, false),
					attr(pkcs11.CKA_VALUE_LEN, len(k.value)), attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
				})
				t.ok(err, "C_UnwrapKey("+mechName(c.mech)+")")
				t.sameBytes(t.getAttr(sh, u, pkcs11.CKA_VALUE, "CKA_VALUE"), k.value, "unwrapped key value")
			}})
		}
	}
	return cs
}

// ---- 2.40 function list against the 3.0 interface ---------------------------

// message flags of CK_MECHANISM_INFO (3.0): CKF_MESSAGE_ENCRYPT, _DECRYPT,
// _SIGN, _VERIFY, CKF_MULTI_MESSAGE. In 2.40 these bits are reserved.
const ckfMessageAll = 0x2 | 0x4 | 0x8 | 0x10 | 0x20

func ifaceChecks() []check {
	return []check{
		{id: "iface.v240.encrypt-init-null-mechanism", spec: "2.40 base 5.8 C_EncryptInit through C_GetFunctionList (pMechanism NULL: CKR_ARGUMENTS_BAD; an active operation goes on)", mech: pkcs11.CKM_AES_ECB, fn: func(t *T) {
			k := t.key("aes")
			sh := t.open(false)
			t.expectRV(encryptInitVia(t.s.raw.list240(), uint(sh), mechanismNull, uint(k.pub)), "C_EncryptInit(NULL) with no operation", pkcs11.CKR_ARGUMENTS_BAD)
			t.ok(t.s.ctx.EncryptInit(sh, mech(pkcs11.CKM_AES_ECB, nil), k.pub), "C_EncryptInit(CKM_AES_ECB)")
			t.expectRV(encryptInitVia(t.s.raw.list240(), uint(sh), mechanismNull, uint(k.pub)), "C_EncryptInit(NULL) during an operation", pkcs11.CKR_ARGUMENTS_BAD)
			pt := plaintext(16)
			ct, _, rv := t.s.raw.inout(fnEncrypt, uint(sh), pt, 64)
			t.okRV(rv, "C_Encrypt of the operation C_EncryptInit(NULL) did not cancel")
			t.sameBytes(ct, ecbEnc(aesBlock(aesKey128), pt), "ciphertext")
		}},
		{id: "iface.v30.encrypt-init-null-mechanism", spec: "3.0 base 5.8 C_EncryptInit through C_GetInterface(\"PKCS 11\", 3.0) (pMechanism NULL ends the active operation)", mech: pkcs11.CKM_AES_ECB, fn: func(t *T) {
			f := t.s.raw.table3("PKCS 11", 3, 0)
			if f == nil {
				t.skipf("no PKCS 11 3.0 interface")
			}
			k := t.key("aes")
			sh := t.open(false)
			t.ok(t.s.ctx.EncryptInit(sh, mech(pkcs11.CKM_AES_ECB, nil), k.pub), "C_EncryptInit(CKM_AES_ECB)")
			t.okRV(encryptInitVia(unsafe.Pointer(f), uint(sh), mechanismNull, uint(k.pub)), "C_EncryptInit(NULL) through the 3.0 interface")
			_, _, rv := t.s.raw.inoutVia(unsafe.Pointer(f), fnEncrypt, uint(sh), plaintext(16), 64)
			t.expectRV(rv, "C_Encrypt after the operation was cancelled", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		}},
		{id: "iface.v240.gcm-no-message-flags", spec: "2.40 base 3.5 CK_MECHANISM_INFO through C_GetFunctionList (CKM_AES_GCM: no CKF_MESSAGE_* bits, reserved in 2.40)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			mi, rv := mechInfoVia(t.s.raw.list240(), t.s.slot, pkcs11.CKM_AES_GCM)
			t.okRV(rv, "C_GetMechanismInfo(CKM_AES_GCM) through the 2.40 list")
			if mi.flags&ckfMessageAll != 0 {
				t.failf("flags 0x%x carry CKF_MESSAGE_* bits (0x%x) a 2.40 caller cannot use", mi.flags, mi.flags&ckfMessageAll)
			}
		}},
		{id: "iface.v240.no-message-flags", spec: "2.40 base 3.5 CK_MECHANISM_INFO through C_GetFunctionList (no mechanism has CKF_MESSAGE_* bits)", fn: func(t *T) {
			ms, _, rv := t.s.raw.mechList(t.s.slot, 1024)
			t.okRV(rv, "C_GetMechanismList")
			var bad []string
			for _, m := range ms {
				mi, rv := mechInfoVia(t.s.raw.list240(), t.s.slot, m)
				t.okRV(rv, "C_GetMechanismInfo("+mechName(m)+")")
				if mi.flags&ckfMessageAll != 0 {
					bad = append(bad, mechName(m))
				}
			}
			if len(bad) > 0 {
				t.failf("%d mechanisms show CKF_MESSAGE_* bits through the 2.40 list: %v", len(bad), bad)
			}
			t.note("%d mechanisms", len(ms))
		}},
		{id: "iface.v30.gcm-message-flags", spec: "3.0 base 3.5 CK_MECHANISM_INFO through C_GetInterface(\"PKCS 11\", 3.0) (CKM_AES_GCM with C_MessageEncryptInit: CKF_MESSAGE_ENCRYPT)", mech: pkcs11.CKM_AES_GCM, fn: func(t *T) {
			f := t.s.raw.table3("PKCS 11", 3, 0)
			if f == nil {
				t.skipf("no PKCS 11 3.0 interface")
			}
			var m cmem
			defer m.free()
			k := t.key("aes")
			sh := t.open(false)
			rv := messageInit(f, false, uint(sh), m.mechanism(pkcs11.CKM_AES_GCM, nil), uint(k.pub))
			if rv == ckrFunctionNotSupported || rv == pkcs11.CKR_MECHANISM_INVALID {
				t.skipf("C_MessageEncryptInit(CKM_AES_GCM): %s", rvName(rv))
			}
			t.okRV(rv, "C_MessageEncryptInit(CKM_AES_GCM)")
			messageFinal(f, false, uint(sh))
			mi, rv := mechInfoVia(unsafe.Pointer(f), t.s.slot, pkcs11.CKM_AES_GCM)
			t.okRV(rv, "C_GetMechanismInfo(CKM_AES_GCM) through the 3.0 interface")
			if mi.flags&ckfMessageEncrypt == 0 {
				t.failf("flags 0x%x lack CKF_MESSAGE_ENCRYPT though C_MessageEncryptInit works", mi.flags)
			}
		}},
	}
}
