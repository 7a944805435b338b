package conformance

import (
	"bytes"

	"github.com/miekg/pkcs11"
)

// Wrap mechanisms the attacks try, best first. CBC-PAD is on the list
// because many tokens wrap with it; a module that lists none of them lacks
// key wrapping altogether and the attack checks skip.
var wrapMechs = []uint{pkcs11.CKM_AES_KEY_WRAP, pkcs11.CKM_AES_KEY_WRAP_PAD, pkcs11.CKM_AES_CBC_PAD}

var targetKey = []byte("TARGET-SECRET-16")

// wrapMech picks the attack's mechanism. needFlag requires a mechanism that
// declares CKF_WRAP (for checks of legitimate wrapping); attacks only need
// the mechanism to exist, since any refusal is a pass.
func (t *T) wrapMech(needFlag bool) uint {
	for _, m := range wrapMechs {
		if !t.s.mechs[m] {
			continue
		}
		if needFlag {
			mi, err := t.s.ctx.GetMechanismInfo(t.s.slot, mech(m, nil))
			if err != nil || mi.Flags&pkcs11.CKF_WRAP == 0 {
				continue
			}
		}
		return m
	}
	if needFlag {
		t.skipf("no AES mechanism with CKF_WRAP among CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD, CKM_AES_CBC_PAD")
	}
	t.skipf("none of CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD, CKM_AES_CBC_PAD in C_GetMechanismList")
	return 0
}

func wrapParam(m uint) any {
	if m == pkcs11.CKM_AES_CBC_PAD {
		return iv16
	}
	return nil
}

// target makes the key an attacker wants: sensitive, extractable, with a
// value only the suite knows.
func (t *T) target(sh pkcs11.SessionHandle, extra ...*pkcs11.Attribute) pkcs11.ObjectHandle {
	return t.create(sh, secretTemplate(targetKey, merge([]*pkcs11.Attribute{
		attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_PRIVATE, true),
	}, extra)...), "sensitive target key")
}

// genKey generates an AES key with the given roles; a refusal ends the
// check as a pass, because the module refused to create the attack's tool.
func (t *T) genAttackKey(sh pkcs11.SessionHandle, roles ...uint) pkcs11.ObjectHandle {
	tmpl := []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE_LEN, 16),
		attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false)}
	for _, r := range roles {
		tmpl = append(tmpl, attr(r, true))
	}
	if !t.s.mechs[pkcs11.CKM_AES_KEY_GEN] {
		t.skipf("CKM_AES_KEY_GEN not in C_GetMechanismList")
	}
	h, err := t.s.ctx.GenerateKey(sh, mech(pkcs11.CKM_AES_KEY_GEN, nil), tmpl)
	if err != nil {
		t.note("refused to generate a key with conflicting roles: %s", rvName(rvOf(err)))
		panic(stopCheck{})
	}
	return h
}

// passIfRefused ends the check as a pass when err is a refusal.
func (t *T) passIfRefused(err error, what string) {
	if err != nil {
		t.note("%s refused: %s", what, rvName(rvOf(err)))
		panic(stopCheck{})
	}
}

// Key management policy (base 5.18.3 C_WrapKey, 5.18.4 C_UnwrapKey, 4.10
// secret key attributes) and the attacks published by Bortolozzo, Centenaro,
// Focardi and Steel ("Attacking and fixing PKCS#11 security tokens", CCS
// 2010, the Tookan tool). An attack check passes when the module refuses
// any step, and fails only when the sensitive key's value is recovered.
func wrapChecks() []check {
	return []check{
		{id: "wrap.attack.known-wrapping-key", spec: "base 5.18.3 C_WrapKey, 4.10 CKA_SENSITIVE (Tookan: wrap with an attacker-imported key)", fn: func(t *T) {
			m := t.wrapMech(false)
			sh := t.open(true)
			s := t.target(sh)
			kek := []byte("attacker-known-k")
			k := t.create(sh, secretTemplate(kek, attr(pkcs11.CKA_WRAP, true)), "attacker's wrapping key")
			blob, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), k, s)
			t.passIfRefused(err, "C_WrapKey with an imported key")
			if bytes.Contains(recoverWrapped(kek, blob, m), targetKey) {
				t.failf("sensitive key wrapped under a key whose value the caller chose: value recovered off-token")
			}
			t.note("wrapped, but the blob did not yield the key")
		}},
		{id: "wrap.attack.wrap-then-decrypt", spec: "base 5.18.3 C_WrapKey, 5.10 (Tookan: wrap/decrypt conflict)", fn: func(t *T) {
			m := t.wrapMech(false)
			sh := t.open(true)
			s := t.target(sh)
			k := t.genAttackKey(sh, pkcs11.CKA_WRAP, pkcs11.CKA_DECRYPT)
			blob, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), k, s)
			t.passIfRefused(err, "C_WrapKey")
			t.passIfRefused(t.s.ctx.DecryptInit(sh, mech(m, wrapParam(m)), k), "C_DecryptInit with the wrapping key")
			pt, err := t.s.ctx.Decrypt(sh, blob)
			t.passIfRefused(err, "C_Decrypt of the wrapped key")
			if bytes.Contains(pt, targetKey) {
				t.failf("C_Decrypt of the wrapped blob returned the sensitive key")
			}
		}},
		{id: "wrap.attack.unwrap-unsensitive", spec: "base 5.18.4 C_UnwrapKey, 4.10 CKA_SENSITIVE (Tookan: re-import as non-sensitive)", fn: func(t *T) {
			m := t.wrapMech(false)
			sh := t.open(true)
			s := t.target(sh)
			k := t.genAttackKey(sh, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP)
			blob, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), k, s)
			t.passIfRefused(err, "C_WrapKey")
			u, err := t.s.ctx.UnwrapKey(sh, mech(m, wrapParam(m)), k, blob, []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false),
				attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
			})
			t.passIfRefused(err, "C_UnwrapKey with CKA_SENSITIVE=FALSE")
			v, err := t.s.ctx.GetAttributeValue(sh, u, []*pkcs11.Attribute{attr(pkcs11.CKA_VALUE, nil)})
			t.passIfRefused(err, "reading the unwrapped copy")
			if bytes.Equal(v[0].Value, targetKey) {
				t.failf("unwrapping a sensitive key as CKA_SENSITIVE=FALSE exposed its value")
			}
		}},
		{id: "wrap.attack.encrypt-unwrap-trojan", spec: "base 5.18.4 C_UnwrapKey, 5.8 (Tookan: encrypt/unwrap conflict plants a known wrapping key)", fn: func(t *T) {
			m := t.wrapMech(false)
			sh := t.open(true)
			s := t.target(sh)
			k := t.genAttackKey(sh, pkcs11.CKA_ENCRYPT, pkcs11.CKA_UNWRAP)
			known := []byte("attacker-planted")
			t.passIfRefused(t.s.ctx.EncryptInit(sh, mech(m, wrapParam(m)), k), "C_EncryptInit with the unwrapping key")
			blob, err := t.s.ctx.Encrypt(sh, known)
			t.passIfRefused(err, "C_Encrypt")
			w, err := t.s.ctx.UnwrapKey(sh, mech(m, wrapParam(m)), k, blob, []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_WRAP, true),
			})
			t.passIfRefused(err, "C_UnwrapKey of attacker-encrypted bytes")
			blob2, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), w, s)
			t.passIfRefused(err, "C_WrapKey with the planted key")
			if bytes.Contains(recoverWrapped(known, blob2, m), targetKey) {
				t.failf("an attacker-chosen value became a wrapping key and exported the sensitive key")
			}
		}},
		{id: "wrap.unextractable", spec: "base 5.18.3 C_WrapKey (CKR_KEY_UNEXTRACTABLE)", fn: func(t *T) {
			m := t.wrapMech(false)
			sh := t.open(true)
			s := t.target(sh, attr(pkcs11.CKA_EXTRACTABLE, false))
			k := t.create(sh, secretTemplate([]byte("attacker-known-k"), attr(pkcs11.CKA_WRAP, true)), "wrapping key")
			_, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), k, s)
			t.refused(err, "C_WrapKey of a CKA_EXTRACTABLE=FALSE key")
		}},
		{id: "wrap.with-trusted", spec: "base 4.10 CKA_WRAP_WITH_TRUSTED, 5.18.3 (CKR_KEY_NOT_WRAPPABLE)", fn: func(t *T) {
			m := t.wrapMech(false)
			sh := t.open(true)
			s := t.target(sh, attr(pkcs11.CKA_WRAP_WITH_TRUSTED, true))
			k := t.create(sh, secretTemplate([]byte("attacker-known-k"), attr(pkcs11.CKA_WRAP, true)), "untrusted wrapping key")
			_, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), k, s)
			t.refused(err, "C_WrapKey of a CKA_WRAP_WITH_TRUSTED key with an untrusted key")
		}},
		{id: "wrap.wrap-not-permitted", spec: "base 5.18.3 C_WrapKey, 4.7 CKA_WRAP (CKR_KEY_FUNCTION_NOT_PERMITTED)", fn: func(t *T) {
			m := t.wrapMech(true)
			sh := t.open(true)
			s := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_EXTRACTABLE, true)), "extractable key")
			k := t.create(sh, secretTemplate([]byte("some-wrapping-k!"), attr(pkcs11.CKA_WRAP, false)), "key with CKA_WRAP=FALSE")
			_, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), k, s)
			t.expect(err, "C_WrapKey with CKA_WRAP=FALSE", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)
		}},
		{id: "wrap.unwrapped-not-always-sensitive", spec: "base 4.10 CKA_ALWAYS_SENSITIVE/CKA_NEVER_EXTRACTABLE, 5.18.4 C_UnwrapKey", fn: func(t *T) {
			m := t.wrapMech(true)
			sh := t.open(true)
			s := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_EXTRACTABLE, true), attr(pkcs11.CKA_SENSITIVE, false)), "extractable key")
			k := t.create(sh, secretTemplate([]byte("some-wrapping-k!"), attr(pkcs11.CKA_WRAP, true), attr(pkcs11.CKA_UNWRAP, true)), "wrapping key")
			blob, err := t.s.ctx.WrapKey(sh, mech(m, wrapParam(m)), k, s)
			t.ok(err, "C_WrapKey")
			u, err := t.s.ctx.UnwrapKey(sh, mech(m, wrapParam(m)), k, blob, []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false),
				attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false),
			})
			t.ok(err, "C_UnwrapKey")
			if t.getBool(sh, u, pkcs11.CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE") || t.getBool(sh, u, pkcs11.CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE") {
				t.failf("an unwrapped key (its value came from outside) claims CKA_ALWAYS_SENSITIVE or CKA_NEVER_EXTRACTABLE")
			}
			if t.getBool(sh, u, pkcs11.CKA_LOCAL, "CKA_LOCAL") {
				t.failf("an unwrapped key has CKA_LOCAL TRUE")
			}
		}},
	}
}
