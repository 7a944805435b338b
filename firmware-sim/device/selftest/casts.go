package selftest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"sync"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// casts are the known-answer tests, in run order (Tests adds the firmware
// integrity test last).
var casts = []Test{
	{Name: "AES-ECB", Source: "FIPS 197 Appendix C.3 (AES-256)", run: aesECB},
	{Name: "AES-GCM", Source: "GCM specification (McGrew-Viega) test case 14: AES-256, zero key, IV and block", run: aesGCM},
	{Name: "SHA-256", Source: "FIPS 180-4 example \"abc\" (NIST CSRC)", run: digestKAT(ck.CKM_SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")},
	{Name: "SHA-512", Source: "FIPS 180-4 example \"abc\" (NIST CSRC)", run: digestKAT(ck.CKM_SHA512,
		"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")},
	{Name: "SHA3-256", Source: "FIPS 202 example \"abc\" (NIST CSRC)", run: digestKAT(ck.CKM_SHA3_256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532")},
	{Name: "HMAC-SHA-256", Source: "RFC 4231 test case 2", run: hmacKAT},
	{Name: "HKDF-SHA-256", Source: "RFC 5869 A.1", run: hkdfKAT},
	{Name: "RSA-PKCS1-SIGN", Source: "Wycheproof rsa_pkcs1_2048_sig_gen_test.json (vectors.json)", run: rsaSign},
	{Name: "RSA-OAEP", Source: "Wycheproof rsa_oaep_2048_sha256_mgf1sha256_test.json (vectors.json)", run: rsaOAEP},
	{Name: "ECDSA-P256", Source: "Wycheproof ecdsa_secp256r1_sha256_test.json (verify); RFC 6979 A.2.5 key (sign and verify)", run: ecdsaKAT},
	{Name: "Ed25519", Source: "RFC 8032 7.1 TEST 2", run: ed25519KAT},
	{Name: "ML-KEM-768", Source: "Wycheproof mlkem_test.json (vectors.json)", run: mlkemKAT},
	{Name: "ML-DSA-44", Source: "Wycheproof mldsa_44_verify_test.json and mldsa_44_sign_seed_test.json (vectors.json)", run: mldsaKAT},
	{Name: "SLH-DSA-SHA2-128S", Source: "NIST ACVP SLH-DSA sigVer sample, as shipped in circl's testdata (vectors.json); verify only", run: slhdsaKAT},
	{Name: "SM2", Source: "GM/T 0003.5-2012 (GB/T 32918.5) signature example: verify; and sign and verify with its key", run: sm2KAT},
	{Name: "SM3", Source: "GM/T 0004-2012 Appendix A.1 (\"abc\")", run: sm3KAT},
	{Name: "SM4", Source: "GM/T 0002-2012 (GB/T 32907) Appendix A.1", run: sm4KAT},
	{Name: "DRBG", Source: "continuous test: two 32-byte reads of the generator (crypto/rand) differ, and neither is constant", run: drbgTest},
}

//go:embed vectors.json
var vectorsJSON []byte

// vector is one entry of vectors.json (hex fields).
type vector struct {
	Source, PKCS8, Msg, Sig, CT, Point, PK, Seed, EK, C, K, Ctx string
	TcID                                                        int
}

var (
	vectorsOnce sync.Once
	vectorsMap  map[string]*vector
	vectorsErr  error
)

func vec(name string) (*vector, error) {
	vectorsOnce.Do(func() {
		var m map[string]*vector
		if err := json.Unmarshal(vectorsJSON, &m); err != nil {
			vectorsErr = fmt.Errorf("vectors.json: %w", err)
			return
		}
		vectorsMap = m
	})
	if vectorsErr != nil {
		return nil, vectorsErr
	}
	v, ok := vectorsMap[name]
	if !ok {
		return nil, fmt.Errorf("vectors.json: no %q", name)
	}
	return v, nil
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(fmt.Sprintf("selftest vector: %v", err)) // the vectors are ours; protect turns this into a failure
	}
	return b
}

func (c *cast) mech(t ck.MechanismType) (*mech.Mechanism, error) {
	m, ok := c.reg.Mechanism(t)
	if !ok {
		return nil, fmt.Errorf("mechanism %v not registered", t)
	}
	return m, nil
}

func (c *cast) vendor(name string) (ck.MechanismType, error) {
	t, ok := c.profile.Mechanism(name)
	if !ok {
		return 0, fmt.Errorf("profile %s has no %s", c.profile.Name, name)
	}
	return t, nil
}

func (c *cast) key(kt ck.KeyType, class ck.ObjectClass, a attr.Template) (*mech.Key, error) {
	kk, ok := c.reg.KeyKind(kt)
	if !ok {
		return nil, fmt.Errorf("key type %v not registered", kt)
	}
	m, err := kk.Parse(class, a)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return &mech.Key{Class: class, Type: kt, Material: m, Attrs: a}, nil
}

func (c *cast) secret(kt ck.KeyType, v []byte) (*mech.Key, error) {
	return c.key(kt, ck.CKO_SECRET_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: v}})
}

// equal compares an output with its known answer (after corrupt).
func (c *cast) equal(what string, got, want []byte) error {
	if !bytes.Equal(c.corrupt(got), want) {
		return fmt.Errorf("%s: wrong answer", what)
	}
	return nil
}

func (c *cast) encrypt(mt ck.MechanismType, param any, k *mech.Key, in []byte, decrypt bool) ([]byte, error) {
	m, err := c.mech(mt)
	if err != nil {
		return nil, err
	}
	f := m.Encrypt
	if decrypt {
		f = m.Decrypt
	}
	ci, err := f(k, param)
	if err != nil {
		return nil, err
	}
	return ci.OneShot(make([]byte, 0, ci.OneShotLen(len(in))), in)
}

func (c *cast) sign(mt ck.MechanismType, param any, k *mech.Key, msg []byte) ([]byte, error) {
	m, err := c.mech(mt)
	if err != nil {
		return nil, err
	}
	s, err := m.Sign(k, param)
	if err != nil {
		return nil, err
	}
	return s.Sign(msg)
}

// verify checks sig (after corrupt) over msg.
func (c *cast) verify(mt ck.MechanismType, param any, k *mech.Key, msg, sig []byte) error {
	m, err := c.mech(mt)
	if err != nil {
		return err
	}
	v, err := m.Verify(k, param)
	if err != nil {
		return err
	}
	if err := v.Verify(msg, c.corrupt(sig)); err != nil {
		return fmt.Errorf("%v verify: %w", mt, err)
	}
	return nil
}

func aesECB(c *cast) error {
	k, err := c.secret(ck.CKK_AES, unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"))
	if err != nil {
		return err
	}
	pt, ct := unhex("00112233445566778899aabbccddeeff"), unhex("8ea2b7ca516745bfeafc49904b496089")
	got, err := c.encrypt(ck.CKM_AES_ECB, nil, k, pt, false)
	if err != nil {
		return err
	}
	if err := c.equal("encrypt", got, ct); err != nil {
		return err
	}
	if got, err = c.encrypt(ck.CKM_AES_ECB, nil, k, ct, true); err != nil {
		return err
	}
	return c.equal("decrypt", got, pt)
}

func aesGCM(c *cast) error {
	k, err := c.secret(ck.CKK_AES, make([]byte, 32))
	if err != nil {
		return err
	}
	p := &ck.GCMParams{IV: make([]byte, 12), IVBits: 96, TagBits: 128}
	want := unhex("cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919")
	got, err := c.encrypt(ck.CKM_AES_GCM, p, k, make([]byte, 16), false)
	if err != nil {
		return err
	}
	if err := c.equal("encrypt", got, want); err != nil {
		return err
	}
	// Decryption authenticates: a flipped bit must be refused.
	if got, err = c.encrypt(ck.CKM_AES_GCM, p, k, c.corrupt(want), true); err != nil {
		return fmt.Errorf("decrypt: %w", err)
	}
	return c.equal("decrypt", got, make([]byte, 16))
}

func digestKAT(mt ck.MechanismType, want string) func(*cast) error {
	return func(c *cast) error {
		m, err := c.mech(mt)
		if err != nil {
			return err
		}
		h, err := m.Digest(nil)
		if err != nil {
			return err
		}
		h.Write([]byte("abc"))
		return c.equal("digest", h.Sum(nil), unhex(want))
	}
}

func hmacKAT(c *cast) error {
	k, err := c.secret(ck.CKK_GENERIC_SECRET, []byte("Jefe"))
	if err != nil {
		return err
	}
	mac, err := c.sign(ck.CKM_SHA256_HMAC, nil, k, []byte("what do ya want for nothing?"))
	if err != nil {
		return err
	}
	return c.equal("mac", mac, unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"))
}

func hkdfKAT(c *cast) error {
	m, err := c.mech(ck.CKM_HKDF_DATA)
	if err != nil {
		return err
	}
	k, err := c.secret(ck.CKK_GENERIC_SECRET, bytes.Repeat([]byte{0x0b}, 22))
	if err != nil {
		return err
	}
	p := &ck.HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA,
		Salt: unhex("000102030405060708090a0b0c"), Info: unhex("f0f1f2f3f4f5f6f7f8f9")}
	out, err := m.Derive(k, p, attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(42)}})
	if err != nil {
		return err
	}
	v, _ := out.Get(ck.CKA_VALUE)
	return c.equal("okm", v, unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"))
}

// rsaKeys turns a PKCS#8 RSA key into the engine's private and public
// key objects.
func (c *cast) rsaKeys(pkcs8 string) (priv, pub *mech.Key, err error) {
	k, err := x509.ParsePKCS8PrivateKey(unhex(pkcs8))
	if err != nil {
		return nil, nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok || len(rk.Primes) != 2 {
		return nil, nil, fmt.Errorf("not a two-prime RSA key")
	}
	b := func(t ck.AttributeType, v *big.Int) ck.Attribute { return ck.Attribute{Type: t, Value: v.Bytes()} }
	e := big.NewInt(int64(rk.E))
	pubT := attr.Template{b(ck.CKA_MODULUS, rk.N), b(ck.CKA_PUBLIC_EXPONENT, e)}
	privT := append(pubT.Clone(), b(ck.CKA_PRIVATE_EXPONENT, rk.D), b(ck.CKA_PRIME_1, rk.Primes[0]), b(ck.CKA_PRIME_2, rk.Primes[1]),
		b(ck.CKA_EXPONENT_1, rk.Precomputed.Dp), b(ck.CKA_EXPONENT_2, rk.Precomputed.Dq), b(ck.CKA_COEFFICIENT, rk.Precomputed.Qinv))
	if priv, err = c.key(ck.CKK_RSA, ck.CKO_PRIVATE_KEY, privT); err != nil {
		return nil, nil, err
	}
	if pub, err = c.key(ck.CKK_RSA, ck.CKO_PUBLIC_KEY, pubT); err != nil {
		return nil, nil, err
	}
	return priv, pub, nil
}

func rsaSign(c *cast) error {
	v, err := vec("rsa_sign")
	if err != nil {
		return err
	}
	priv, pub, err := c.rsaKeys(v.PKCS8)
	if err != nil {
		return err
	}
	sig, err := c.sign(ck.CKM_SHA256_RSA_PKCS, nil, priv, unhex(v.Msg))
	if err != nil {
		return err
	}
	if err := c.equal("signature", sig, unhex(v.Sig)); err != nil {
		return err
	}
	return c.verify(ck.CKM_SHA256_RSA_PKCS, nil, pub, unhex(v.Msg), unhex(v.Sig))
}

func rsaOAEP(c *cast) error {
	v, err := vec("rsa_oaep")
	if err != nil {
		return err
	}
	priv, pub, err := c.rsaKeys(v.PKCS8)
	if err != nil {
		return err
	}
	p := &ck.RSAOAEPParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED}
	got, err := c.encrypt(ck.CKM_RSA_PKCS_OAEP, p, priv, unhex(v.CT), true)
	if err != nil {
		return fmt.Errorf("decrypt: %w", err)
	}
	if err := c.equal("decrypt", got, unhex(v.Msg)); err != nil {
		return err
	}
	// OAEP encryption is randomised: a round trip.
	ct, err := c.encrypt(ck.CKM_RSA_PKCS_OAEP, p, pub, unhex(v.Msg), false)
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if got, err = c.encrypt(ck.CKM_RSA_PKCS_OAEP, p, priv, ct, true); err != nil {
		return fmt.Errorf("decrypt: %w", err)
	}
	return c.equal("round trip", got, unhex(v.Msg))
}

func octetString(b []byte) []byte {
	der, _ := asn1.Marshal(b)
	return der
}

func oid(ids ...int) []byte {
	der, _ := asn1.Marshal(asn1.ObjectIdentifier(ids))
	return der
}

func ecdsaKAT(c *cast) error {
	v, err := vec("ecdsa_verify")
	if err != nil {
		return err
	}
	p256 := oid(1, 2, 840, 10045, 3, 1, 7)
	pub, err := c.key(ck.CKK_EC, ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_EC_POINT, Value: octetString(unhex(v.Point))}})
	if err != nil {
		return err
	}
	if err := c.verify(ck.CKM_ECDSA_SHA256, nil, pub, unhex(v.Msg), unhex(v.Sig)); err != nil {
		return err
	}
	// ECDSA signing is randomised: sign with RFC 6979 A.2.5's key, verify.
	priv, err := c.key(ck.CKK_EC, ck.CKO_PRIVATE_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p256},
		{Type: ck.CKA_VALUE, Value: unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")}})
	if err != nil {
		return err
	}
	pub2, err := c.key(ck.CKK_EC, ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p256},
		{Type: ck.CKA_EC_POINT, Value: octetString(unhex("04" + "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6" +
			"7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"))}})
	if err != nil {
		return err
	}
	sig, err := c.sign(ck.CKM_ECDSA_SHA256, nil, priv, []byte("sample"))
	if err != nil {
		return err
	}
	return c.verify(ck.CKM_ECDSA_SHA256, nil, pub2, []byte("sample"), sig)
}

func ed25519KAT(c *cast) error {
	params := oid(1, 3, 101, 112)
	priv, err := c.key(ck.CKK_EC_EDWARDS, ck.CKO_PRIVATE_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: params},
		{Type: ck.CKA_VALUE, Value: unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")}})
	if err != nil {
		return err
	}
	pub, err := c.key(ck.CKK_EC_EDWARDS, ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: params},
		{Type: ck.CKA_EC_POINT, Value: octetString(unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"))}})
	if err != nil {
		return err
	}
	msg := []byte{0x72}
	want := unhex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
	sig, err := c.sign(ck.CKM_EDDSA, nil, priv, msg)
	if err != nil {
		return err
	}
	if err := c.equal("signature", sig, want); err != nil {
		return err
	}
	return c.verify(ck.CKM_EDDSA, nil, pub, msg, want)
}

func paramSet(s ck.ParameterSet) ck.Attribute {
	return ck.Attribute{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(ck.ULong(s))}
}

func mlkemKAT(c *cast) error {
	v, err := vec("mlkem")
	if err != nil {
		return err
	}
	m, err := c.mech(ck.CKM_ML_KEM)
	if err != nil {
		return err
	}
	priv, err := c.key(ck.CKK_ML_KEM, ck.CKO_PRIVATE_KEY, attr.Template{paramSet(ck.CKP_ML_KEM_768), {Type: ck.CKA_SEED, Value: unhex(v.Seed)}})
	if err != nil {
		return err
	}
	ss, err := m.Decapsulate(priv, nil, unhex(v.C))
	if err != nil {
		return fmt.Errorf("decapsulate: %w", err)
	}
	if err := c.equal("decapsulate", ss, unhex(v.K)); err != nil {
		return err
	}
	// Encapsulation is randomised: to the vector's key, then back.
	pub, err := c.key(ck.CKK_ML_KEM, ck.CKO_PUBLIC_KEY, attr.Template{paramSet(ck.CKP_ML_KEM_768), {Type: ck.CKA_VALUE, Value: unhex(v.EK)}})
	if err != nil {
		return err
	}
	n, err := m.CiphertextLen(pub)
	if err != nil {
		return err
	}
	ct := make([]byte, n)
	ss1, err := m.Encapsulate(pub, nil, ct)
	if err != nil {
		return fmt.Errorf("encapsulate: %w", err)
	}
	ss2, err := m.Decapsulate(priv, nil, ct)
	if err != nil {
		return fmt.Errorf("decapsulate: %w", err)
	}
	return c.equal("encapsulate round trip", ss2, ss1)
}

func mldsaKAT(c *cast) error {
	sv, err := vec("mldsa_sign")
	if err != nil {
		return err
	}
	vv, err := vec("mldsa_verify")
	if err != nil {
		return err
	}
	pub, err := c.key(ck.CKK_ML_DSA, ck.CKO_PUBLIC_KEY, attr.Template{paramSet(ck.CKP_ML_DSA_44), {Type: ck.CKA_VALUE, Value: unhex(vv.PK)}})
	if err != nil {
		return err
	}
	if err := c.verify(ck.CKM_ML_DSA, nil, pub, unhex(vv.Msg), unhex(vv.Sig)); err != nil {
		return err
	}
	priv, err := c.key(ck.CKK_ML_DSA, ck.CKO_PRIVATE_KEY, attr.Template{paramSet(ck.CKP_ML_DSA_44), {Type: ck.CKA_SEED, Value: unhex(sv.Seed)}})
	if err != nil {
		return err
	}
	sig, err := c.sign(ck.CKM_ML_DSA, &ck.SignAdditionalContext{Hedge: ck.CKH_DETERMINISTIC_REQUIRED}, priv, unhex(sv.Msg))
	if err != nil {
		return err
	}
	return c.equal("deterministic signature", sig, unhex(sv.Sig))
}

func slhdsaKAT(c *cast) error {
	v, err := vec("slhdsa_verify")
	if err != nil {
		return err
	}
	pub, err := c.key(ck.CKK_SLH_DSA, ck.CKO_PUBLIC_KEY, attr.Template{paramSet(ck.CKP_SLH_DSA_SHA2_128S), {Type: ck.CKA_VALUE, Value: unhex(v.PK)}})
	if err != nil {
		return err
	}
	return c.verify(ck.CKM_SLH_DSA, &ck.SignAdditionalContext{Context: unhex(v.Ctx)}, pub, unhex(v.Msg), unhex(v.Sig))
}

// GM/T 0003.5-2012's example on the recommended curve: d, P = dG, the
// message "message digest" with the default ID 1234567812345678, and the
// signature (r, s).
const (
	sm2D   = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"
	sm2Pub = "04" + "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020" +
		"ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
	sm2Sig = "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3" +
		"b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"
)

func sm2KAT(c *cast) error {
	kt, ok := c.profile.KeyType("CKK_SM2")
	if !ok {
		return fmt.Errorf("profile %s has no CKK_SM2", c.profile.Name)
	}
	mt, err := c.vendor("CKM_SM3_SM2")
	if err != nil {
		return err
	}
	params := oid(1, 2, 156, 10197, 1, 301)
	pub, err := c.key(kt, ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: params}, {Type: ck.CKA_EC_POINT, Value: octetString(unhex(sm2Pub))}})
	if err != nil {
		return err
	}
	msg := []byte("message digest")
	if err := c.verify(mt, nil, pub, msg, unhex(sm2Sig)); err != nil {
		return err
	}
	priv, err := c.key(kt, ck.CKO_PRIVATE_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: params}, {Type: ck.CKA_VALUE, Value: unhex(sm2D)}})
	if err != nil {
		return err
	}
	sig, err := c.sign(mt, nil, priv, msg)
	if err != nil {
		return err
	}
	return c.verify(mt, nil, pub, msg, sig)
}

func sm3KAT(c *cast) error {
	mt, err := c.vendor("CKM_SM3")
	if err != nil {
		return err
	}
	m, err := c.mech(mt)
	if err != nil {
		return err
	}
	h, err := m.Digest(nil)
	if err != nil {
		return err
	}
	h.Write([]byte("abc"))
	return c.equal("digest", h.Sum(nil), unhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"))
}

func sm4KAT(c *cast) error {
	kt, ok := c.profile.KeyType("CKK_SM4")
	if !ok {
		return fmt.Errorf("profile %s has no CKK_SM4", c.profile.Name)
	}
	mt, err := c.vendor("CKM_SM4_ECB")
	if err != nil {
		return err
	}
	kv := unhex("0123456789abcdeffedcba9876543210")
	k, err := c.secret(kt, kv)
	if err != nil {
		return err
	}
	want := unhex("681edf34d206965e86b3e94f536e4246")
	got, err := c.encrypt(mt, nil, k, kv, false)
	if err != nil {
		return err
	}
	if err := c.equal("encrypt", got, want); err != nil {
		return err
	}
	if got, err = c.encrypt(mt, nil, k, want, true); err != nil {
		return err
	}
	return c.equal("decrypt", got, kv)
}

// drbgTest is the continuous random number generator test (FIPS 140-3
// IG 10.3.A's health test of the entropy path, as far as a software
// module sees it): the generator is the Go runtime's crypto/rand (the
// kernel's getrandom, with Go's own FIPS DRBG in FIPS mode), which the
// engine uses for every key, nonce and C_GenerateRandom.
func drbgTest(c *cast) error {
	a, b := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(a); err != nil {
		return err
	}
	if _, err := rand.Read(b); err != nil {
		return err
	}
	b = c.corrupt(b)
	if c.fail {
		b = a // a generator stuck on one output
	}
	if bytes.Equal(a, b) {
		return fmt.Errorf("two reads of the random generator are equal")
	}
	if bytes.Equal(a, bytes.Repeat(a[:1], 32)) {
		return fmt.Errorf("the random generator gave a constant block")
	}
	return nil
}
