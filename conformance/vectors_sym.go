package conformance

import (
	"bytes"

	"github.com/miekg/pkcs11"
)

// Symmetric and RSA vectors: AES key wrap (RFC 3394/5649), AES-CMAC,
// HMAC-SM3, HKDF-SHA256, RSA-OAEP decryption and SM4-GCM.

// gohsm's private block of vendor codes (profile "gohsm", hsm/ck/vendor_sm.go
// and docs/sm-codes.json), copied: the suite does not import the engine.
// Modules without them skip these checks (the codes are not listed).
const (
	ckmSM3HMACGeneral = 0x80474D02
	ckmSM4GCM         = 0x80474D04
	ckkSM4            = 0x80000002
)

type wpCipher struct {
	wpCase
	Key string `json:"key"`
	Iv  string `json:"iv"`
	Aad string `json:"aad"`
	Msg string `json:"msg"`
	Ct  string `json:"ct"`
	Tag string `json:"tag"`
}

// cryptOnce is C_EncryptInit/C_DecryptInit followed by a single-part call.
func (v *vecRun) cryptOnce(decrypt bool, m uint, param any, key pkcs11.ObjectHandle, in []byte) outcome {
	ctx := v.t.s.ctx
	if decrypt {
		if err := ctx.DecryptInit(v.sh, mech(m, param), key); err != nil {
			return outcome{rv: rvOf(err), stage: "C_DecryptInit"}
		}
		out, err := ctx.Decrypt(v.sh, in)
		return outcome{rv: rvOf(err), stage: "C_Decrypt", got: out}
	}
	if err := ctx.EncryptInit(v.sh, mech(m, param), key); err != nil {
		return outcome{rv: rvOf(err), stage: "C_EncryptInit"}
	}
	out, err := ctx.Encrypt(v.sh, in)
	return outcome{rv: rvOf(err), stage: "C_Encrypt", got: out}
}

// secretKey imports a secret key of type kt with the given usages.
func (v *vecRun) secretKey(kt uint, value []byte, usage ...uint) (pkcs11.ObjectHandle, uint) {
	tmpl := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, kt), attr(pkcs11.CKA_VALUE, value),
	}
	for _, u := range usage {
		tmpl = append(tmpl, attr(u, true))
	}
	return v.create(tmpl)
}

// vecKeyWrap runs aes_wrap_test.json or aes_kwp_test.json. Each ciphertext
// is unwrapped with C_UnwrapKey into an extractable generic secret (the
// path a client uses), and, when the mechanism has CKF_DECRYPT, also
// decrypted with C_Decrypt; valid plaintexts must re-wrap to the vector's
// ciphertext with C_Encrypt.
func (t *T) vecKeyWrap(family, file string, m uint) {
	f := t.wycheproof(file)
	mi, err := t.s.ctx.GetMechanismInfo(t.s.slot, mech(m, nil))
	t.ok(err, "C_GetMechanismInfo("+mechName(m)+")")
	cipher := mi.Flags&(pkcs11.CKF_ENCRYPT|pkcs11.CKF_DECRYPT) == pkcs11.CKF_ENCRYPT|pkcs11.CKF_DECRYPT
	v := t.vecRun(family)
	unwrapT := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true),
	}
	for _, raw := range f.TestGroups {
		var g struct {
			Tests []wpCipher `json:"tests"`
		}
		t.wpGroup(raw, &g)
		for _, tc := range g.Tests {
			msg, ct := t.hx(tc.Msg), t.hx(tc.Ct)
			key, rv := v.secretKey(pkcs11.CKK_AES, t.hx(tc.Key), pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP, pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT)
			if rv != 0 {
				v.judge(tc.wpCase, outcome{rv: rv, stage: "C_CreateObject(AES key)"}, nil, refuseKey...)
				v.cleanup()
				continue
			}
			// C_UnwrapKey: an empty plaintext cannot become a key, and
			// miekg/pkcs11 cannot pass an empty wrapped key, so such
			// vectors go through C_Decrypt only.
			var o outcome
			if len(ct) > 0 && (len(msg) > 0 || tc.Result != "valid") {
				h, err := t.s.ctx.UnwrapKey(v.sh, mech(m, nil), key, ct, unwrapT)
				o = outcome{rv: rvOf(err), stage: "C_UnwrapKey"}
				if err == nil {
					v.track(h)
					o.got, o.rv = v.value(h)
					o.stage = "C_UnwrapKey + C_GetAttributeValue(CKA_VALUE)"
				}
			}
			if cipher {
				d := v.cryptOnce(true, m, nil, key, ct)
				switch {
				case o.stage == "":
					o = d
				case (d.rv == 0) != (o.rv == 0) || !bytes.Equal(d.got, o.got):
					v.badf("tcId %d: C_Decrypt (%s, %x) and C_UnwrapKey (%s, %x) disagree", tc.TcID, rvName(d.rv), clip(d.got), rvName(o.rv), clip(o.got))
				case d.rv != 0 && !hasRV(refuseDecrypt, d.rv):
					v.badf("tcId %d: C_Decrypt refused with %s, want %s", tc.TcID, rvName(d.rv), rvNames(refuseDecrypt))
				}
				if tc.Result == "valid" {
					if e := v.cryptOnce(false, m, nil, key, msg); e.rv != 0 || !bytes.Equal(e.got, ct) {
						v.badf("tcId %d: C_Encrypt of the plaintext: %s, %x, want %x", tc.TcID, rvName(e.rv), clip(e.got), clip(ct))
					}
				}
			}
			if o.stage == "" {
				v.skip("empty plaintexts (no C_UnwrapKey into an empty key, no CKF_DECRYPT)")
			} else {
				allowed := refuseUnwrap
				if o.stage == "C_Decrypt" {
					allowed = refuseDecrypt
				}
				v.judge(tc.wpCase, o, msg, allowed...)
			}
			v.cleanup()
		}
	}
	v.done()
}

// vecMAC runs a Wycheproof MAC file through the *_GENERAL mechanism with
// the group's tag size as CK_MAC_GENERAL_PARAMS: valid tags must come out
// of C_Sign and pass C_Verify, invalid ones must fail C_Verify.
func (t *T) vecMAC(family, file string, kt, m uint) {
	f := t.wycheproof(file)
	v := t.vecRun(family)
	for _, raw := range f.TestGroups {
		var g struct {
			TagSize int        `json:"tagSize"`
			Tests   []wpCipher `json:"tests"`
		}
		t.wpGroup(raw, &g)
		param := ulong(uint64(g.TagSize / 8))
		for _, tc := range g.Tests {
			msg, tag := t.hx(tc.Msg), t.hx(tc.Tag)
			key, rv := v.secretKey(kt, t.hx(tc.Key), pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY)
			o := outcome{rv: rv, stage: "C_CreateObject(key)"}
			if rv == 0 && tc.Result == "valid" {
				if err := t.s.ctx.SignInit(v.sh, mech(m, param), key); err != nil {
					o = outcome{rv: rvOf(err), stage: "C_SignInit"}
				} else {
					out, err := t.s.ctx.Sign(v.sh, msg)
					o = outcome{rv: rvOf(err), stage: "C_Sign", got: out}
				}
				if vo := v.verify(m, param, key, msg, tag); vo.rv != 0 {
					v.badf("tcId %d: %s of the valid tag: %s", tc.TcID, vo.stage, rvName(vo.rv))
				}
			} else if rv == 0 {
				o = v.verify(m, param, key, msg, tag)
			}
			v.judge(tc.wpCase, o, tag, joinRV(refuseSig, refuseKey)...)
			v.cleanup()
		}
	}
	v.done()
}

// hkdfVecParams lays out CK_HKDF_PARAMS (3.0 curr 2.43.2) for
// extract-and-expand with SHA-256; an empty salt is CKF_HKDF_SALT_NULL.
func hkdfVecParams(m *cmem, salt, info []byte) []byte {
	saltType := uint64(ckfHKDFSaltData)
	if len(salt) == 0 {
		saltType = 1 // CKF_HKDF_SALT_NULL
	}
	return cat(bbool8(true, true), ulong(pkcs11.CKM_SHA256), ulong(saltType),
		ptr(m.bytes(salt)), ulong(uint64(len(salt))), ulong(0), ptr(m.bytes(info)), ulong(uint64(len(info))))
}

// vecHKDF runs hkdf_sha256_test.json through CKM_HKDF_DERIVE into a
// generic secret of the vector's size; sizes over 255 hash lengths
// (RFC 5869 2.3) must be refused.
func (t *T) vecHKDF() {
	f := t.wycheproof("hkdf_sha256_test.json")
	v := t.vecRun("hkdf-sha256")
	var m cmem
	defer m.free()
	for _, raw := range f.TestGroups {
		var g struct {
			Tests []struct {
				wpCase
				IKM  string `json:"ikm"`
				Salt string `json:"salt"`
				Info string `json:"info"`
				Size int    `json:"size"`
				OKM  string `json:"okm"`
			} `json:"tests"`
		}
		t.wpGroup(raw, &g)
		for _, tc := range g.Tests {
			base, rv := v.secretKey(pkcs11.CKK_GENERIC_SECRET, t.hx(tc.IKM), pkcs11.CKA_DERIVE)
			o := outcome{rv: rv, stage: "C_CreateObject(input key)"}
			if rv == 0 {
				p := hkdfVecParams(&m, t.hx(tc.Salt), t.hx(tc.Info))
				h, err := t.s.ctx.DeriveKey(v.sh, mech(ckmHKDFDerive, p), base, derivedSecret(tc.Size))
				o = outcome{rv: rvOf(err), stage: "C_DeriveKey(CKM_HKDF_DERIVE)"}
				if err == nil {
					v.track(h)
					o.got, o.rv = v.value(h)
				}
			}
			v.judge(tc.wpCase, o, t.hx(tc.OKM), pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_TEMPLATE_INCONSISTENT,
				pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_DATA_LEN_RANGE)
			v.cleanup()
		}
	}
	v.done()
}

// vecRSAOAEP runs rsa_oaep_2048_sha256_mgf1sha256_test.json: the private
// key imported with all CRT components (curr 2.1.3), each ciphertext
// decrypted with CKM_RSA_PKCS_OAEP (SHA-256, MGF1-SHA-256, the vector's
// label as CKZ_DATA_SPECIFIED source data).
func (t *T) vecRSAOAEP() {
	f := t.wycheproof("rsa_oaep_2048_sha256_mgf1sha256_test.json")
	v := t.vecRun("rsa-oaep-2048-sha256")
	for _, raw := range f.TestGroups {
		var g struct {
			PrivateKey struct {
				Modulus, PublicExponent, PrivateExponent, Prime1, Prime2, Exponent1, Exponent2, Coefficient string
			} `json:"privateKey"`
			Tests []struct {
				wpCase
				Msg   string `json:"msg"`
				Ct    string `json:"ct"`
				Label string `json:"label"`
			} `json:"tests"`
		}
		t.wpGroup(raw, &g)
		k := g.PrivateKey
		n := func(s string) []byte { return fixedBE(t.hx(s), 0) }
		key, rv := v.create([]*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			attr(pkcs11.CKA_MODULUS, n(k.Modulus)), attr(pkcs11.CKA_PUBLIC_EXPONENT, n(k.PublicExponent)),
			attr(pkcs11.CKA_PRIVATE_EXPONENT, n(k.PrivateExponent)), attr(pkcs11.CKA_PRIME_1, n(k.Prime1)),
			attr(pkcs11.CKA_PRIME_2, n(k.Prime2)), attr(pkcs11.CKA_EXPONENT_1, n(k.Exponent1)),
			attr(pkcs11.CKA_EXPONENT_2, n(k.Exponent2)), attr(pkcs11.CKA_COEFFICIENT, n(k.Coefficient)),
			attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_DECRYPT, true),
		})
		if rv != 0 {
			t.failf("C_CreateObject(RSA private key with CRT components): %s", rvName(rv))
		}
		for _, tc := range g.Tests {
			p := pkcs11.NewOAEPParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, t.hx(tc.Label))
			v.judge(tc.wpCase, v.cryptOnce(true, pkcs11.CKM_RSA_PKCS_OAEP, p, key, t.hx(tc.Ct)), t.hx(tc.Msg), refuseDecrypt...)
		}
		v.cleanup()
	}
	v.done()
}

// gcmParams lays out CK_GCM_PARAMS {pIv, ulIvLen, ulIvBits, pAAD,
// ulAADLen, ulTagBits} (2.40 curr 2.12.3).
func gcmParams(m *cmem, iv, aad []byte, tagBits int) []byte {
	return cat(ptr(m.bytes(iv)), ulong(uint64(len(iv))), ulong(uint64(len(iv)*8)),
		ptr(m.bytes(aad)), ulong(uint64(len(aad))), ulong(uint64(tagBits)))
}

// vecSM4GCM runs sm4_gcm_test.json with gohsm's vendor CKM_SM4_GCM and
// CK_GCM_PARAMS. 2.40 curr 2.12.3 bounds ulIvLen to 1..256 bytes: a valid
// vector whose IV is longer may be refused with CKR_MECHANISM_PARAM_INVALID
// and is then counted as not expressible.
func (t *T) vecSM4GCM() {
	f := t.wycheproof("sm4_gcm_test.json")
	v := t.vecRun("sm4-gcm")
	var m cmem
	defer m.free()
	for _, raw := range f.TestGroups {
		var g struct {
			TagSize int        `json:"tagSize"`
			Tests   []wpCipher `json:"tests"`
		}
		t.wpGroup(raw, &g)
		for _, tc := range g.Tests {
			iv, msg := t.hx(tc.Iv), t.hx(tc.Msg)
			ctTag := append(t.hx(tc.Ct), t.hx(tc.Tag)...)
			key, rv := v.secretKey(ckkSM4, t.hx(tc.Key), pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT)
			o := outcome{rv: rv, stage: "C_CreateObject(SM4 key)"}
			if rv == 0 {
				p := gcmParams(&m, iv, t.hx(tc.Aad), g.TagSize)
				o = v.cryptOnce(true, ckmSM4GCM, p, key, ctTag)
				if o.rv == 0 && tc.Result == "valid" {
					if e := v.cryptOnce(false, ckmSM4GCM, p, key, msg); e.rv != 0 || !bytes.Equal(e.got, ctTag) {
						v.badf("tcId %d: C_Encrypt: %s, %x, want %x", tc.TcID, rvName(e.rv), clip(e.got), clip(ctTag))
					}
				}
			}
			if len(iv) > 256 && o.rv == pkcs11.CKR_MECHANISM_PARAM_INVALID && tc.Result == "valid" {
				v.skip("IVs over 256 bytes (2.40 curr 2.12.3), refused with CKR_MECHANISM_PARAM_INVALID")
			} else {
				v.judge(tc.wpCase, o, msg, joinRV(refuseDecrypt, []uint{pkcs11.CKR_MECHANISM_PARAM_INVALID})...)
			}
			v.cleanup()
		}
	}
	v.done()
}

func vecSymChecks() []check {
	return []check{
		{id: "vectors.aes-wrap", spec: vecSpec + "3.0 curr: AES Key Wrap (CKM_AES_KEY_WRAP, RFC 3394; aes_wrap_test.json, C_UnwrapKey and C_Decrypt)", mech: pkcs11.CKM_AES_KEY_WRAP, fn: func(t *T) {
			t.vecKeyWrap("aes-wrap", "aes_wrap_test.json", pkcs11.CKM_AES_KEY_WRAP)
		}},
		{id: "vectors.aes-kwp", spec: vecSpec + "3.0 curr: AES Key Wrap with padding (CKM_AES_KEY_WRAP_KWP, RFC 5649; aes_kwp_test.json)", mech: ckmAESKeyWrapKWP, fn: func(t *T) {
			t.vecKeyWrap("aes-kwp", "aes_kwp_test.json", ckmAESKeyWrapKWP)
		}},
		{id: "vectors.aes-cmac", spec: vecSpec + "3.0 curr: CKM_AES_CMAC_GENERAL with CK_MAC_GENERAL_PARAMS (aes_cmac_test.json, C_Sign/C_Verify)", mech: ckmAESCMACGeneral, fn: func(t *T) {
			t.vecMAC("aes-cmac", "aes_cmac_test.json", pkcs11.CKK_AES, ckmAESCMACGeneral)
		}},
		{id: "vectors.hmac-sm3", spec: vecSpec + "vendor CKM_SM3_HMAC_GENERAL (gohsm profile code 0x80474D02; hmac_sm3_test.json)", mech: ckmSM3HMACGeneral, fn: func(t *T) {
			t.vecMAC("hmac-sm3", "hmac_sm3_test.json", pkcs11.CKK_GENERIC_SECRET, ckmSM3HMACGeneral)
		}},
		{id: "vectors.hkdf-sha256", spec: vecSpec + "3.0 curr 2.43.2 CKM_HKDF_DERIVE (hkdf_sha256_test.json)", mech: ckmHKDFDerive, fn: func(t *T) {
			t.vecHKDF()
		}},
	}
}

func vecMiscChecks() []check {
	return []check{
		{id: "vectors.rsa-oaep-2048-sha256", spec: vecSpec + "2.40 curr 2.1.8 CKM_RSA_PKCS_OAEP (rsa_oaep_2048_sha256_mgf1sha256_test.json, C_Decrypt)", mech: pkcs11.CKM_RSA_PKCS_OAEP, fn: func(t *T) {
			t.vecRSAOAEP()
		}},
		{id: "vectors.sm4-gcm", spec: vecSpec + "vendor CKM_SM4_GCM (gohsm profile code 0x80474D04) with CK_GCM_PARAMS (sm4_gcm_test.json)", mech: ckmSM4GCM, fn: func(t *T) {
			t.vecSM4GCM()
		}},
	}
}

// CKM_AES_CMAC_GENERAL (3.0 curr), which miekg/pkcs11 lacks.
const ckmAESCMACGeneral = 0x108B
