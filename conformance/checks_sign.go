package conformance

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// signCase describes one signature or MAC mechanism under test.
type signCase struct {
	id, spec string
	mech     uint
	key      string
	wrongKey string
	hash     crypto.Hash // the mechanism's hash (raw mechanisms: the prehash)
	raw      bool        // the caller hashes; single-part only
	pss      bool
	param    func() any
	det      bool // deterministic (RSA PKCS#1 v1.5, HMAC)
}

var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

func pss(h uint, mgf uint, salt uint) func() any {
	return func() any { return pkcs11.NewPSSParams(h, mgf, salt) }
}

func signCases() []signCase {
	const rsaPKCS = "curr 2.1.14 PKCS #1 v1.5 RSA signature with SHA-*"
	const rsaPSS = "curr 2.1.17 PKCS #1 RSA PSS signature with SHA-*"
	const ecdsaH = "curr 2.3.8 ECDSA with hashing"
	const hmacS = "curr 2.24-2.27 SHA-* HMAC (general-length: no)"
	return []signCase{
		{id: "rsa-pkcs", spec: "curr 2.1.6 CKM_RSA_PKCS (raw DigestInfo)", mech: pkcs11.CKM_RSA_PKCS, key: "rsa", wrongKey: "ec", hash: crypto.SHA256, raw: true, det: true},
		{id: "sha1-rsa-pkcs", spec: rsaPKCS + " (CKM_SHA1_RSA_PKCS)", mech: pkcs11.CKM_SHA1_RSA_PKCS, key: "rsa", wrongKey: "ec", hash: crypto.SHA1, det: true},
		{id: "sha256-rsa-pkcs", spec: rsaPKCS + " (CKM_SHA256_RSA_PKCS)", mech: pkcs11.CKM_SHA256_RSA_PKCS, key: "rsa", wrongKey: "ec", hash: crypto.SHA256, det: true},
		{id: "sha384-rsa-pkcs", spec: rsaPKCS + " (CKM_SHA384_RSA_PKCS)", mech: pkcs11.CKM_SHA384_RSA_PKCS, key: "rsa", wrongKey: "ec", hash: crypto.SHA384, det: true},
		{id: "sha512-rsa-pkcs", spec: rsaPKCS + " (CKM_SHA512_RSA_PKCS)", mech: pkcs11.CKM_SHA512_RSA_PKCS, key: "rsa", wrongKey: "ec", hash: crypto.SHA512, det: true},
		{id: "rsa-pkcs-pss", spec: "curr 2.1.10 CKM_RSA_PKCS_PSS (SHA-256 prehash)", mech: pkcs11.CKM_RSA_PKCS_PSS, key: "rsa", wrongKey: "ec", hash: crypto.SHA256, raw: true, pss: true,
			param: pss(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, 32)},
		{id: "sha256-rsa-pkcs-pss", spec: rsaPSS + " (CKM_SHA256_RSA_PKCS_PSS)", mech: pkcs11.CKM_SHA256_RSA_PKCS_PSS, key: "rsa", wrongKey: "ec", hash: crypto.SHA256, pss: true,
			param: pss(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, 32)},
		{id: "sha384-rsa-pkcs-pss", spec: rsaPSS + " (CKM_SHA384_RSA_PKCS_PSS)", mech: pkcs11.CKM_SHA384_RSA_PKCS_PSS, key: "rsa", wrongKey: "ec", hash: crypto.SHA384, pss: true,
			param: pss(pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384, 48)},
		{id: "sha512-rsa-pkcs-pss", spec: rsaPSS + " (CKM_SHA512_RSA_PKCS_PSS)", mech: pkcs11.CKM_SHA512_RSA_PKCS_PSS, key: "rsa", wrongKey: "ec", hash: crypto.SHA512, pss: true,
			param: pss(pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512, 64)},
		{id: "ecdsa", spec: "curr 2.3.7 CKM_ECDSA (SHA-256 prehash)", mech: pkcs11.CKM_ECDSA, key: "ec", wrongKey: "rsa", hash: crypto.SHA256, raw: true},
		{id: "ecdsa-sha1", spec: ecdsaH + " (CKM_ECDSA_SHA1)", mech: pkcs11.CKM_ECDSA_SHA1, key: "ec", wrongKey: "rsa", hash: crypto.SHA1},
		{id: "ecdsa-sha256", spec: ecdsaH + " (CKM_ECDSA_SHA256)", mech: pkcs11.CKM_ECDSA_SHA256, key: "ec", wrongKey: "rsa", hash: crypto.SHA256},
		{id: "ecdsa-sha384", spec: ecdsaH + " (CKM_ECDSA_SHA384)", mech: pkcs11.CKM_ECDSA_SHA384, key: "ec", wrongKey: "rsa", hash: crypto.SHA384},
		{id: "ecdsa-sha512", spec: ecdsaH + " (CKM_ECDSA_SHA512)", mech: pkcs11.CKM_ECDSA_SHA512, key: "ec", wrongKey: "rsa", hash: crypto.SHA512},
		{id: "sha1-hmac", spec: hmacS + " (CKM_SHA_1_HMAC)", mech: pkcs11.CKM_SHA_1_HMAC, key: "hmac", wrongKey: "rsa", hash: crypto.SHA1, det: true},
		{id: "sha256-hmac", spec: hmacS + " (CKM_SHA256_HMAC)", mech: pkcs11.CKM_SHA256_HMAC, key: "hmac", wrongKey: "rsa", hash: crypto.SHA256, det: true},
		{id: "sha384-hmac", spec: hmacS + " (CKM_SHA384_HMAC)", mech: pkcs11.CKM_SHA384_HMAC, key: "hmac", wrongKey: "rsa", hash: crypto.SHA384, det: true},
		{id: "sha512-hmac", spec: hmacS + " (CKM_SHA512_HMAC)", mech: pkcs11.CKM_SHA512_HMAC, key: "hmac", wrongKey: "rsa", hash: crypto.SHA512, det: true},
	}
}

func (c signCase) m() []*pkcs11.Mechanism {
	var p any
	if c.param != nil {
		p = c.param()
	}
	return mech(c.mech, p)
}

// input is what the module is given: the message, or for raw mechanisms
// the prehash (with a DigestInfo for CKM_RSA_PKCS).
func (c signCase) input() []byte {
	msg := []byte("PKCS#11 conformance: the quick brown fox jumps over the lazy dog, 100 bytes of message text......")
	if !c.raw {
		return msg
	}
	h := c.hash.New()
	h.Write(msg)
	d := h.Sum(nil)
	if c.mech == pkcs11.CKM_RSA_PKCS {
		return append(append([]byte{}, sha256DigestInfo...), d...)
	}
	return d
}

func (c signCase) digest(in []byte) []byte {
	if c.raw {
		if c.mech == pkcs11.CKM_RSA_PKCS {
			return in[len(sha256DigestInfo):]
		}
		return in
	}
	h := c.hash.New()
	h.Write(in)
	return h.Sum(nil)
}

// verifyRef checks sig with Go's implementation.
func (c signCase) verifyRef(k *keyFx, in, sig []byte) error {
	d := c.digest(in)
	switch {
	case c.key == "hmac":
		m := hmac.New(c.hash.New, k.value)
		m.Write(in)
		if !hmac.Equal(m.Sum(nil), sig) {
			return fmt.Errorf("MAC %x differs from the reference", sig)
		}
		return nil
	case c.key == "ec":
		if len(sig) != 64 {
			return fmt.Errorf("ECDSA P-256 signature of %d bytes, want r||s of 64", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k.ecPub, d, r, s) {
			return fmt.Errorf("Go rejects the ECDSA signature")
		}
		return nil
	case c.pss:
		return rsa.VerifyPSS(k.rsaPub, c.hash, d, sig, &rsa.PSSOptions{SaltLength: c.hash.Size()})
	default:
		return rsa.VerifyPKCS1v15(k.rsaPub, c.hash, d, sig)
	}
}

func (t *T) sign(sh pkcs11.SessionHandle, c signCase, k *keyFx, in []byte) []byte {
	t.ok(t.s.ctx.SignInit(sh, c.m(), k.priv), "C_SignInit")
	sig, err := t.s.ctx.Sign(sh, in)
	t.ok(err, "C_Sign")
	return sig
}

func (t *T) verify(sh pkcs11.SessionHandle, c signCase, k *keyFx, in, sig []byte) error {
	t.ok(t.s.ctx.VerifyInit(sh, c.m(), k.pub), "C_VerifyInit")
	return t.s.ctx.Verify(sh, in, sig)
}

// signChecks expands every signature case (base 5.13 and 5.15).
func signChecks() []check {
	var cs []check
	for _, c := range signCases() {
		c := c
		add := func(suffix, spec string, fn func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte)) {
			cs = append(cs, check{id: "sig." + c.id + "." + suffix, spec: c.spec + "; " + spec, mech: c.mech, fn: func(t *T) {
				k := t.key(c.key)
				fn(t, t.open(false), k, c.input())
			}})
		}
		add("mechinfo", "base 5.5.6 C_GetMechanismInfo (CKF_SIGN|CKF_VERIFY)", func(t *T, _ pkcs11.SessionHandle, _ *keyFx, _ []byte) {
			mi, err := t.s.ctx.GetMechanismInfo(t.s.slot, mech(c.mech, nil))
			t.ok(err, "C_GetMechanismInfo")
			if mi.Flags&(pkcs11.CKF_SIGN|pkcs11.CKF_VERIFY) != pkcs11.CKF_SIGN|pkcs11.CKF_VERIFY {
				t.failf("flags 0x%x lack CKF_SIGN|CKF_VERIFY", mi.Flags)
			}
		})
		add("roundtrip", "base 5.13.2 C_Sign, 5.15.2 C_Verify", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			t.ok(t.verify(sh, c, k, in, t.sign(sh, c, k, in)), "C_Verify of the module's own signature")
		})
		add("interop", "signature verifies with a reference implementation (Go crypto)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			if err := c.verifyRef(k, in, t.sign(sh, c, k, in)); err != nil {
				t.failf("%v", err)
			}
		})
		add("tampered", "base 5.15.2 C_Verify (CKR_SIGNATURE_INVALID)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			sig := t.sign(sh, c, k, in)
			sig[len(sig)/2] ^= 0x40
			t.expect(t.verify(sh, c, k, in, sig), "C_Verify of a corrupted signature", pkcs11.CKR_SIGNATURE_INVALID)
		})
		add("short-signature", "base 5.15.2 C_Verify (CKR_SIGNATURE_LEN_RANGE)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			sig := t.sign(sh, c, k, in)
			t.expect(t.verify(sh, c, k, in, sig[:len(sig)-1]), "C_Verify of a truncated signature", pkcs11.CKR_SIGNATURE_LEN_RANGE, pkcs11.CKR_SIGNATURE_INVALID)
		})
		add("verify-error-terminates", "base 5.15.2 C_Verify (always ends the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			sig := t.sign(sh, c, k, in)
			bad := append([]byte{}, sig...)
			bad[0] ^= 1
			t.verify(sh, c, k, in, bad)
			t.expect(t.s.ctx.Verify(sh, in, sig), "C_Verify after a failed C_Verify", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		})
		add("size-query", "base 5.13.2 C_Sign, 5.2 (NULL buffer: length, operation kept)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			t.ok(t.s.ctx.SignInit(sh, c.m(), k.priv), "C_SignInit")
			_, n, rv := t.s.raw.inout(fnSign, uint(sh), in, -1)
			t.okRV(rv, "C_Sign(NULL)")
			sig, _, rv := t.s.raw.inout(fnSign, uint(sh), in, int(n))
			t.okRV(rv, "C_Sign with the returned length")
			if err := c.verifyRef(k, in, sig); err != nil {
				t.failf("%v", err)
			}
		})
		add("too-small", "base 5.13.2 C_Sign, 5.2 (CKR_BUFFER_TOO_SMALL keeps the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			t.ok(t.s.ctx.SignInit(sh, c.m(), k.priv), "C_SignInit")
			_, n, rv := t.s.raw.inout(fnSign, uint(sh), in, 1)
			t.expectRV(rv, "C_Sign into a 1-byte buffer", pkcs11.CKR_BUFFER_TOO_SMALL)
			sig, _, rv := t.s.raw.inout(fnSign, uint(sh), in, int(n))
			t.okRV(rv, "C_Sign retried with the returned length")
			if err := c.verifyRef(k, in, sig); err != nil {
				t.failf("%v", err)
			}
		})
		add("terminates", "base 5.13.2 C_Sign (a successful call ends the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			t.sign(sh, c, k, in)
			_, err := t.s.ctx.Sign(sh, in)
			t.expect(err, "second C_Sign", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		})
		add("active", "base 5.13.1 C_SignInit (CKR_OPERATION_ACTIVE)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			t.ok(t.s.ctx.SignInit(sh, c.m(), k.priv), "C_SignInit")
			t.expect(t.s.ctx.SignInit(sh, c.m(), k.priv), "second C_SignInit", pkcs11.CKR_OPERATION_ACTIVE)
		})
		add("sign-not-permitted", "base 5.13.1 C_SignInit, 4.7 CKA_SIGN (CKR_KEY_FUNCTION_NOT_PERMITTED)", func(t *T, sh pkcs11.SessionHandle, _ *keyFx, _ []byte) {
			k := t.key(c.key + "-nouse")
			t.expect(t.s.ctx.SignInit(sh, c.m(), k.priv), "C_SignInit with CKA_SIGN=FALSE", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)
		})
		add("verify-not-permitted", "base 5.15.1 C_VerifyInit, 4.7 CKA_VERIFY (CKR_KEY_FUNCTION_NOT_PERMITTED)", func(t *T, sh pkcs11.SessionHandle, _ *keyFx, _ []byte) {
			k := t.key(c.key + "-nouse")
			t.expect(t.s.ctx.VerifyInit(sh, c.m(), k.pub), "C_VerifyInit with CKA_VERIFY=FALSE", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)
		})
		add("wrong-key-type", "base 5.13.1 C_SignInit (CKR_KEY_TYPE_INCONSISTENT)", func(t *T, sh pkcs11.SessionHandle, _ *keyFx, _ []byte) {
			k := t.key(c.wrongKey)
			t.expect(t.s.ctx.SignInit(sh, c.m(), k.priv), "C_SignInit with a "+c.wrongKey+" key", pkcs11.CKR_KEY_TYPE_INCONSISTENT)
		})
		if c.raw {
			continue
		}
		add("multipart", "base 5.13.3 C_SignUpdate, 5.13.4 C_SignFinal, 5.15.3, 5.15.4", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			t.ok(t.s.ctx.SignInit(sh, c.m(), k.priv), "C_SignInit")
			for _, part := range [][]byte{in[:10], in[10:11], in[11:]} {
				t.ok(t.s.ctx.SignUpdate(sh, part), "C_SignUpdate")
			}
			sig, err := t.s.ctx.SignFinal(sh)
			t.ok(err, "C_SignFinal")
			if err := c.verifyRef(k, in, sig); err != nil {
				t.failf("multi-part signature: %v", err)
			}
			if c.det {
				t.sameBytes(sig, t.sign(sh, c, k, in), "multi-part vs single-part signature")
			}
			t.ok(t.s.ctx.VerifyInit(sh, c.m(), k.pub), "C_VerifyInit")
			for _, part := range [][]byte{in[:50], in[50:]} {
				t.ok(t.s.ctx.VerifyUpdate(sh, part), "C_VerifyUpdate")
			}
			t.ok(t.s.ctx.VerifyFinal(sh, sig), "C_VerifyFinal")
		})
		add("final-too-small", "base 5.13.4 C_SignFinal, 5.2 (CKR_BUFFER_TOO_SMALL keeps the operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			t.ok(t.s.ctx.SignInit(sh, c.m(), k.priv), "C_SignInit")
			t.ok(t.s.ctx.SignUpdate(sh, in), "C_SignUpdate")
			_, n, rv := t.s.raw.final(fnSignFinal, uint(sh), 1)
			t.expectRV(rv, "C_SignFinal into a 1-byte buffer", pkcs11.CKR_BUFFER_TOO_SMALL)
			sig, _, rv := t.s.raw.final(fnSignFinal, uint(sh), int(n))
			t.okRV(rv, "C_SignFinal retried with the returned length")
			if err := c.verifyRef(k, in, sig); err != nil {
				t.failf("%v", err)
			}
		})
		add("oneshot-after-update", "base 5.13.2 C_Sign (cannot finish a multi-part operation)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			t.ok(t.s.ctx.SignInit(sh, c.m(), k.priv), "C_SignInit")
			t.ok(t.s.ctx.SignUpdate(sh, in[:10]), "C_SignUpdate")
			_, _, rv := t.s.raw.inout(fnSign, uint(sh), in, 1024)
			if rv == 0 {
				t.failf("C_Sign after C_SignUpdate returned CKR_OK")
			}
			t.note("C_Sign after C_SignUpdate: %s", rvName(rv))
		})
		add("verify-final-tampered", "base 5.15.4 C_VerifyFinal (CKR_SIGNATURE_INVALID)", func(t *T, sh pkcs11.SessionHandle, k *keyFx, in []byte) {
			sig := t.sign(sh, c, k, in)
			t.ok(t.s.ctx.VerifyInit(sh, c.m(), k.pub), "C_VerifyInit")
			t.ok(t.s.ctx.VerifyUpdate(sh, append(bytes.Clone(in), '!')), "C_VerifyUpdate")
			t.expect(t.s.ctx.VerifyFinal(sh, sig), "C_VerifyFinal over a different message", pkcs11.CKR_SIGNATURE_INVALID)
		})
	}
	return cs
}
