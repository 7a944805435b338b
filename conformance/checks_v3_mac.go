package conformance

import (
	"crypto/hmac"
	"crypto/sha3"
	"encoding/hex"
	"hash"

	"github.com/miekg/pkcs11"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// SP 800-38B appendix D.1 (AES-128 CMAC) examples; the key is aesKey128.
var cmacVectors = []struct{ msg, mac string }{
	{"", "bb1d6929e95937287fa37d129b756746"},
	{"6bc1bee22e409f96e93d7e117393172a", "070a16b46b4d4144f79bdd9dd04a287c"},
	{"6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411", "dfa66747de9ae63030ca32611497c827"},
	{"6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", "51f0bebf7e3b9d92fc49741779363cfe"},
}

// RFC 5869 appendix A.1 (HKDF-SHA256, test case 1).
var (
	hkdfIKM  = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")
	hkdfSalt = unhex("000102030405060708090a0b0c")
	hkdfInfo = unhex("f0f1f2f3f4f5f6f7f8f9")
	hkdfPRK  = unhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
	hkdfOKM  = unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
)

// hkdfParams lays out CK_HKDF_PARAMS {bExtract, bExpand, prfHashMechanism,
// ulSaltType, pSalt, ulSaltLen, hSaltKey, pInfo, ulInfoLen} (3.0 curr
// 2.43.2): two CK_BBOOLs padded to 8 bytes, then 7 8-byte fields.
func hkdfParams(m *cmem, extract, expand bool, salt, info []byte) []byte {
	return cat(bbool8(extract, expand), ulong(pkcs11.CKM_SHA256), ulong(ckfHKDFSaltData),
		ptr(m.bytes(salt)), ulong(uint64(len(salt))), ulong(0), ptr(m.bytes(info)), ulong(uint64(len(info))))
}

func (t *T) hkdf(extract, expand bool, n int) []byte {
	var m cmem
	defer m.free()
	sh := t.open(true)
	base := t.create(sh, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, hkdfIKM), attr(pkcs11.CKA_DERIVE, true),
	}, "HKDF input key")
	h, err := t.s.ctx.DeriveKey(sh, mech(ckmHKDFDerive, hkdfParams(&m, extract, expand, hkdfSalt, hkdfInfo)), base, derivedSecret(n))
	t.ok(err, "C_DeriveKey(CKM_HKDF_DERIVE)")
	return t.getAttr(sh, h, pkcs11.CKA_VALUE, "derived CKA_VALUE")
}

// CKM_HKDF_DATA and CKF_HKDF_SALT_KEY (3.0 curr 2.43), which miekg/pkcs11
// lacks.
const (
	ckmHKDFData    = 0x402B
	ckfHKDFSaltKey = 0x4
)

// hkdfSaltKeyParams is CK_HKDF_PARAMS for extract-and-expand with SHA-256 and
// the salt given as the key saltKey.
func hkdfSaltKeyParams(m *cmem, saltKey pkcs11.ObjectHandle, info []byte) []byte {
	return cat(bbool8(true, true), ulong(pkcs11.CKM_SHA256), ulong(ckfHKDFSaltKey),
		ptr(nil), ulong(0), ulong(uint64(saltKey)), ptr(m.bytes(info)), ulong(uint64(len(info))))
}

// hkdfData derives RFC 5869 A.1 into a session data object with
// CKM_HKDF_DATA (3.0 curr 2.43.4), the salt as data or as a key, and checks
// the object is CKO_DATA with the OKM as its CKA_VALUE.
func (t *T) hkdfData(saltAsKey bool) {
	var m cmem
	defer m.free()
	sh := t.open(true)
	base := t.create(sh, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, hkdfIKM), attr(pkcs11.CKA_DERIVE, true),
		attr(pkcs11.CKA_SENSITIVE, true),
	}, "HKDF input key")
	params := hkdfParams(&m, true, true, hkdfSalt, hkdfInfo)
	if saltAsKey {
		salt := t.create(sh, []*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, hkdfSalt),
			attr(pkcs11.CKA_DERIVE, true), // a salt key is used for derivation (hkdf.salt-key.not-permitted)
		}, "HKDF salt key")
		params = hkdfSaltKeyParams(&m, salt, hkdfInfo)
	}
	h, err := t.s.ctx.DeriveKey(sh, mech(ckmHKDFData, params), base, []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_VALUE_LEN, len(hkdfOKM)), attr(pkcs11.CKA_LABEL, "hkdf data"),
	})
	t.ok(err, "C_DeriveKey(CKM_HKDF_DATA)")
	t.sameBytes(t.getAttr(sh, h, pkcs11.CKA_CLASS, "CKA_CLASS"), ulong(pkcs11.CKO_DATA), "derived object's CKA_CLASS")
	t.sameBytes(t.getAttr(sh, h, pkcs11.CKA_VALUE, "derived CKA_VALUE"), hkdfOKM, "HKDF-SHA256 OKM in the data object (42 bytes)")
	t.sameBytes(t.getAttr(sh, h, pkcs11.CKA_LABEL, "CKA_LABEL"), []byte("hkdf data"), "derived object's CKA_LABEL")
}

func (t *T) mac(sh pkcs11.SessionHandle, m uint, k pkcs11.ObjectHandle, msg []byte) []byte {
	t.ok(t.s.ctx.SignInit(sh, mech(m, nil), k), "C_SignInit("+mechName(m)+")")
	out, err := t.s.ctx.Sign(sh, msg)
	t.ok(err, "C_Sign("+mechName(m)+")")
	return out
}

func macKDFChecks() []check {
	const cmacSpec = "3.0 curr: AES CMAC (CKM_AES_CMAC, SP 800-38B D.1)"
	cmacKey := func(t *T, sh pkcs11.SessionHandle) pkcs11.ObjectHandle {
		return t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_SIGN, true), attr(pkcs11.CKA_VERIFY, true)), "CMAC key")
	}
	hmacKey := []byte("conformance HMAC-SHA3-256 key")
	return []check{
		{id: "cmac.aes.sp800-38b", spec: cmacSpec + "; base 5.13.2 C_Sign", mech: ckmAESCMAC, fn: func(t *T) {
			sh := t.open(true)
			k := cmacKey(t, sh)
			for i, v := range cmacVectors {
				got := t.mac(sh, ckmAESCMAC, k, unhex(v.msg))
				if !hmac.Equal(got, unhex(v.mac)) {
					t.failf("SP 800-38B example %d (%d-byte message): got %x, want %s", i+1, len(v.msg)/2, got, v.mac)
				}
			}
		}},
		{id: "cmac.aes.multipart", spec: cmacSpec + "; base 5.13.3 C_SignUpdate, 5.13.4 C_SignFinal", mech: ckmAESCMAC, fn: func(t *T) {
			sh := t.open(true)
			k := cmacKey(t, sh)
			msg := unhex(cmacVectors[3].msg)
			t.ok(t.s.ctx.SignInit(sh, mech(ckmAESCMAC, nil), k), "C_SignInit")
			for _, part := range [][]byte{msg[:5], msg[5:37], msg[37:]} {
				t.ok(t.s.ctx.SignUpdate(sh, part), "C_SignUpdate")
			}
			got, err := t.s.ctx.SignFinal(sh)
			t.ok(err, "C_SignFinal")
			t.sameBytes(got, unhex(cmacVectors[3].mac), "multi-part CMAC of SP 800-38B example 4")
		}},
		{id: "cmac.aes.verify-tampered", spec: cmacSpec + "; base 5.15.2 C_Verify (CKR_SIGNATURE_INVALID)", mech: ckmAESCMAC, fn: func(t *T) {
			sh := t.open(true)
			k := cmacKey(t, sh)
			msg, mac := unhex(cmacVectors[2].msg), unhex(cmacVectors[2].mac)
			t.ok(t.s.ctx.VerifyInit(sh, mech(ckmAESCMAC, nil), k), "C_VerifyInit")
			t.ok(t.s.ctx.Verify(sh, msg, mac), "C_Verify of the published MAC")
			mac[0] ^= 1
			t.ok(t.s.ctx.VerifyInit(sh, mech(ckmAESCMAC, nil), k), "C_VerifyInit")
			t.expect(t.s.ctx.Verify(sh, msg, mac), "C_Verify of a corrupted MAC", pkcs11.CKR_SIGNATURE_INVALID)
		}},
		{id: "hkdf.rfc5869-1", spec: "3.0 curr 2.43.2 CKM_HKDF_DERIVE, CK_HKDF_PARAMS (extract and expand; RFC 5869 A.1)", mech: ckmHKDFDerive, fn: func(t *T) {
			t.sameBytes(t.hkdf(true, true, len(hkdfOKM)), hkdfOKM, "HKDF-SHA256 OKM (42 bytes)")
		}},
		{id: "hkdf.extract-only", spec: "3.0 curr 2.43.2 CKM_HKDF_DERIVE (bExpand=FALSE yields the PRK; RFC 5869 A.1)", mech: ckmHKDFDerive, fn: func(t *T) {
			t.sameBytes(t.hkdf(true, false, len(hkdfPRK)), hkdfPRK, "HKDF-SHA256 PRK")
		}},
		{id: "hkdf-data.rfc5869-1", spec: "3.0 curr 2.43.4 CKM_HKDF_DATA (CKO_DATA whose CKA_VALUE is the HKDF output; RFC 5869 A.1)", mech: ckmHKDFData, fn: func(t *T) {
			t.hkdfData(false)
		}},
		{id: "hkdf-data.salt-key", spec: "3.0 curr 2.43.2 CK_HKDF_PARAMS CKF_HKDF_SALT_KEY with 2.43.4 CKM_HKDF_DATA (RFC 5869 A.1)", mech: ckmHKDFData, fn: func(t *T) {
			t.hkdfData(true)
		}},
		{id: "hkdf-data.secret-class", spec: "3.0 curr 2.43.4 CKM_HKDF_DATA makes CKO_DATA: a CKO_SECRET_KEY template is inconsistent", mech: ckmHKDFData, fn: func(t *T) {
			var m cmem
			defer m.free()
			sh := t.open(true)
			base := t.create(sh, []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
				attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, hkdfIKM), attr(pkcs11.CKA_DERIVE, true),
			}, "HKDF input key")
			_, err := t.s.ctx.DeriveKey(sh, mech(ckmHKDFData, hkdfParams(&m, true, true, hkdfSalt, hkdfInfo)), base, derivedSecret(len(hkdfOKM)))
			t.expect(err, "C_DeriveKey(CKM_HKDF_DATA) with a CKO_SECRET_KEY template", pkcs11.CKR_TEMPLATE_INCONSISTENT)
		}},
		{id: "sha3.256.abc", spec: "3.0 curr: SHA3-256 digest (CKM_SHA3_256, FIPS 202, \"abc\")", mech: ckmSHA3_256, fn: func(t *T) {
			sh := t.open(false)
			t.ok(t.s.ctx.DigestInit(sh, mech(ckmSHA3_256, nil)), "C_DigestInit(CKM_SHA3_256)")
			got, err := t.s.ctx.Digest(sh, []byte("abc"))
			t.ok(err, "C_Digest")
			t.sameBytes(got, unhex("3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"), "SHA3-256(\"abc\")")
		}},
		{id: "sha3.256-hmac.interop", spec: "3.0 curr: SHA3-256-HMAC (CKM_SHA3_256_HMAC; equals crypto/hmac with crypto/sha3)", mech: ckmSHA3_256HMAC, fn: func(t *T) {
			sh := t.open(true)
			k := t.create(sh, []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
				attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, hmacKey), attr(pkcs11.CKA_SIGN, true), attr(pkcs11.CKA_VERIFY, true),
			}, "HMAC key")
			msg := []byte("PKCS#11 conformance: HMAC with SHA3-256")
			ref := hmac.New(func() hash.Hash { return sha3.New256() }, hmacKey)
			ref.Write(msg)
			want := ref.Sum(nil)
			t.sameBytes(t.mac(sh, ckmSHA3_256HMAC, k, msg), want, "HMAC-SHA3-256")
			t.ok(t.s.ctx.VerifyInit(sh, mech(ckmSHA3_256HMAC, nil), k), "C_VerifyInit")
			want[5] ^= 2
			t.expect(t.s.ctx.Verify(sh, msg, want), "C_Verify of a corrupted HMAC", pkcs11.CKR_SIGNATURE_INVALID)
		}},
	}
}
