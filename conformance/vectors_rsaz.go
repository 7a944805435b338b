package conformance

import (
	"crypto/rsa"
	"crypto/x509"

	"github.com/miekg/pkcs11"
)

// RSA private-key vectors (issue 15, docs/rsaz.md): deterministic PKCS #1
// v1.5 signature generation compared byte for byte, and OAEP decryption
// over every modulus size and hash pairing Wycheproof has, so that the
// module's private-key operation (gohsm's IFMA path where the CPU has it)
// is checked through the C ABI on 1024- to 4096-bit keys and odd sizes.

// wpRSAPrivate is a Wycheproof private key: the PKCS #8 DER when the
// file has one, else the JSON fields.
type wpRSAPrivate struct {
	PrivateKey struct {
		Modulus, PublicExponent, PrivateExponent, Prime1, Prime2, Exponent1, Exponent2, Coefficient string
	} `json:"privateKey"`
	PrivateKeyPkcs8 string `json:"privateKeyPkcs8"`
}

// template is the private key object with every CRT component (2.40 curr
// 2.1.3), from the PKCS #8 DER when the JSON lacks the primes.
func (k *wpRSAPrivate) template(t *T, use uint) []*pkcs11.Attribute {
	n := func(s string) []byte { return fixedBE(t.hx(s), 0) }
	p := k.PrivateKey
	if p.Prime1 == "" && k.PrivateKeyPkcs8 != "" {
		der := t.hx(k.PrivateKeyPkcs8)
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.failf("Wycheproof PKCS #8 key: %v", err)
		}
		rk, ok := key.(*rsa.PrivateKey)
		if !ok || len(rk.Primes) != 2 {
			t.failf("Wycheproof PKCS #8 key: %T is not a two-prime RSA key", key)
		}
		rk.Precompute()
		return []*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			attr(pkcs11.CKA_MODULUS, rk.N.Bytes()), attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{byte(rk.E >> 16), byte(rk.E >> 8), byte(rk.E)}),
			attr(pkcs11.CKA_PRIVATE_EXPONENT, rk.D.Bytes()), attr(pkcs11.CKA_PRIME_1, rk.Primes[0].Bytes()),
			attr(pkcs11.CKA_PRIME_2, rk.Primes[1].Bytes()), attr(pkcs11.CKA_EXPONENT_1, rk.Precomputed.Dp.Bytes()),
			attr(pkcs11.CKA_EXPONENT_2, rk.Precomputed.Dq.Bytes()), attr(pkcs11.CKA_COEFFICIENT, rk.Precomputed.Qinv.Bytes()),
			attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), attr(use, true),
		}
	}
	return []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		attr(pkcs11.CKA_MODULUS, n(p.Modulus)), attr(pkcs11.CKA_PUBLIC_EXPONENT, n(p.PublicExponent)),
		attr(pkcs11.CKA_PRIVATE_EXPONENT, n(p.PrivateExponent)), attr(pkcs11.CKA_PRIME_1, n(p.Prime1)),
		attr(pkcs11.CKA_PRIME_2, n(p.Prime2)), attr(pkcs11.CKA_EXPONENT_1, n(p.Exponent1)),
		attr(pkcs11.CKA_EXPONENT_2, n(p.Exponent2)), attr(pkcs11.CKA_COEFFICIENT, n(p.Coefficient)),
		attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true), attr(use, true),
	}
}

// wpRSAHash maps a Wycheproof hash name to the digest, MGF1 and PKCS #1
// v1.5 signature mechanisms; ok is false for hashes PKCS#11 2.40 lacks.
func wpRSAHash(name string) (digest, mgf, pkcs1 uint, ok bool) {
	switch name {
	case "SHA-1":
		return pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKM_SHA1_RSA_PKCS, true
	case "SHA-224":
		return pkcs11.CKM_SHA224, pkcs11.CKG_MGF1_SHA224, pkcs11.CKM_SHA224_RSA_PKCS, true
	case "SHA-256":
		return pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, pkcs11.CKM_SHA256_RSA_PKCS, true
	case "SHA-384":
		return pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384, pkcs11.CKM_SHA384_RSA_PKCS, true
	case "SHA-512":
		return pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512, pkcs11.CKM_SHA512_RSA_PKCS, true
	}
	return 0, 0, 0, false
}

// vecRSASigGen runs rsa_pkcs1_<bits>_sig_gen_test.json: C_Sign with
// CKM_SHAx_RSA_PKCS must give the vector's signature exactly (PKCS #1
// v1.5 is deterministic).
func (t *T) vecRSASigGen(family, file string) {
	f := t.wycheproof(file)
	v := t.vecRun(family)
	for _, raw := range f.TestGroups {
		var g struct {
			wpRSAPrivate
			Sha   string `json:"sha"`
			Tests []struct {
				wpCase
				Msg string `json:"msg"`
				Sig string `json:"sig"`
			} `json:"tests"`
		}
		t.wpGroup(raw, &g)
		_, _, m, ok := wpRSAHash(g.Sha)
		key, rv := v.create(g.template(t, pkcs11.CKA_SIGN))
		if rv != 0 {
			t.failf("C_CreateObject(RSA private key with CRT components): %s", rvName(rv))
		}
		for _, tc := range g.Tests {
			if !ok {
				v.skip("hash " + g.Sha + " has no PKCS#11 2.40 mechanism")
				continue
			}
			o := outcome{stage: "C_SignInit"}
			if err := t.s.ctx.SignInit(v.sh, mech(m, nil), key); err != nil {
				o.rv = rvOf(err)
			} else {
				o.got, o.rv, o.stage = nil, 0, "C_Sign"
				sig, err := t.s.ctx.Sign(v.sh, t.hx(tc.Msg))
				o.got, o.rv = sig, rvOf(err)
			}
			v.judge(tc.wpCase, o, t.hx(tc.Sig), pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_KEY_SIZE_RANGE)
		}
		v.cleanup()
	}
	v.done()
}

// vecRSAOAEPAll runs an RSA-OAEP decryption file with the hash and MGF1
// hash each group names and the vector's label as CKZ_DATA_SPECIFIED
// source data.
func (t *T) vecRSAOAEPAll(family, file string) {
	f := t.wycheproof(file)
	v := t.vecRun(family)
	for _, raw := range f.TestGroups {
		var g struct {
			wpRSAPrivate
			Sha    string `json:"sha"`
			MgfSha string `json:"mgfSha"`
			Tests  []struct {
				wpCase
				Msg   string `json:"msg"`
				Ct    string `json:"ct"`
				Label string `json:"label"`
			} `json:"tests"`
		}
		t.wpGroup(raw, &g)
		h, _, _, ok1 := wpRSAHash(g.Sha)
		_, mgf, _, ok2 := wpRSAHash(g.MgfSha)
		if !ok1 || !ok2 {
			for range g.Tests {
				v.skip("hash " + g.Sha + "/MGF1 " + g.MgfSha + " has no PKCS#11 2.40 code")
			}
			continue
		}
		key, rv := v.create(g.template(t, pkcs11.CKA_DECRYPT))
		if rv != 0 {
			t.failf("C_CreateObject(RSA private key with CRT components): %s", rvName(rv))
		}
		for _, tc := range g.Tests {
			p := pkcs11.NewOAEPParams(h, mgf, pkcs11.CKZ_DATA_SPECIFIED, t.hx(tc.Label))
			v.judge(tc.wpCase, v.cryptOnce(true, pkcs11.CKM_RSA_PKCS_OAEP, p, key, t.hx(tc.Ct)), t.hx(tc.Msg), refuseDecrypt...)
		}
		v.cleanup()
	}
	v.done()
}

func vecRSAPrivChecks() []check {
	const sigSpec = "2.40 curr 2.1.10 CKM_SHAx_RSA_PKCS"
	const oaepSpec = "2.40 curr 2.1.8 CKM_RSA_PKCS_OAEP"
	var cs []check
	for _, bits := range []string{"1024", "1536", "2048", "3072", "4096"} {
		file := "rsa_pkcs1_" + bits + "_sig_gen_test.json"
		cs = append(cs, check{id: "vectors.rsa-pkcs1-sig-gen-" + bits, spec: vecSpec + sigSpec + " (" + file + ", C_Sign)",
			mech: pkcs11.CKM_SHA256_RSA_PKCS, fn: func(t *T) { t.vecRSASigGen("rsa-pkcs1-sig-gen-"+bits, file) }})
	}
	for _, o := range []struct{ id, file string }{
		{"2048-sha1", "rsa_oaep_2048_sha1_mgf1sha1_test.json"},
		{"2048-sha512", "rsa_oaep_2048_sha512_mgf1sha512_test.json"},
		{"3072-sha256", "rsa_oaep_3072_sha256_mgf1sha256_test.json"},
		{"4096-sha256", "rsa_oaep_4096_sha256_mgf1sha256_test.json"},
		{"4096-sha512", "rsa_oaep_4096_sha512_mgf1sha512_test.json"},
		{"misc", "rsa_oaep_misc_test.json"},
	} {
		cs = append(cs, check{id: "vectors.rsa-oaep-" + o.id, spec: vecSpec + oaepSpec + " (" + o.file + ", C_Decrypt)",
			mech: pkcs11.CKM_RSA_PKCS_OAEP, fn: func(t *T) { t.vecRSAOAEPAll("rsa-oaep-"+o.id, o.file) }})
	}
	return cs
}
