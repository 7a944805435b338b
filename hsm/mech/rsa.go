package mech

import (
	"crypto"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"sync"
	"weak"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech/rsaz"
)

// RSA (PKCS#11 2.40 Current Mechanisms, "RSA"). Sizes are modulus bits.
//
// Size policy: keys of 1024..16384 bits may be imported and used (so that
// legacy 1024-bit keys still verify, and Wycheproof's 8192-bit sets run);
// CKM_RSA_PKCS_KEY_PAIR_GEN makes 1024..4096-bit keys, since bigger ones take
// seconds to minutes to generate and nothing asks for them. 1024 is Go's own
// floor (crypto/rsa refuses smaller keys).
//
// Go's crypto/rsa does every private-key operation in constant time except
// the two it has no API for, which this file does with math/big, blinded
// and checked (rsaRawPrivate): CKM_RSA_X_509 decrypt/sign and PSS with a
// zero-length salt. On CPUs with AVX-512 IFMA every private-key operation
// but PKCS #1 v1.5 decryption goes to hsm/mech/rsaz instead (constant
// time, blinded, checked; see the end of this file and docs/rsaz.md).
const (
	rsaMinBits    = 1024
	rsaMaxBits    = 16384
	rsaGenMinBits = 1024
	rsaGenMaxBits = 4096
)

var rsaHashMechs = []struct {
	pkcs, pss ck.MechanismType
	h         crypto.Hash
}{
	{ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA1_RSA_PKCS_PSS, crypto.SHA1},
	{ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224_RSA_PKCS_PSS, crypto.SHA224},
	{ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256_RSA_PKCS_PSS, crypto.SHA256},
	{ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384_RSA_PKCS_PSS, crypto.SHA384},
	{ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512_RSA_PKCS_PSS, crypto.SHA512},
}

func rsaMechanisms() []Mechanism {
	info := func(f ck.Flags) ck.MechanismInfo {
		return ck.MechanismInfo{MinKeySize: rsaMinBits, MaxKeySize: rsaMaxBits, Flags: f}
	}
	const all = ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_SIGN | ck.CKF_VERIFY
	kts := []ck.KeyType{ck.CKK_RSA}
	ms := []Mechanism{
		{
			Type:            ck.CKM_RSA_PKCS_KEY_PAIR_GEN,
			Info:            ck.MechanismInfo{MinKeySize: rsaGenMinBits, MaxKeySize: rsaGenMaxBits, Flags: ck.CKF_GENERATE_KEY_PAIR},
			GenerateKeyPair: generateRSA,
		},
		{
			Type: ck.CKM_RSA_PKCS, Info: info(all | ck.CKF_WRAP | ck.CKF_UNWRAP), KeyTypes: kts,
			Encrypt: rsaPKCSEncrypt, Decrypt: rsaPKCSDecrypt, UnwrapFixed: rsaPKCSUnwrapFixed,
			Sign:   func(k *Key, p any) (Signer, error) { return rsaPKCSSigner(ck.CKM_RSA_PKCS, 0, k, p) },
			Verify: func(k *Key, p any) (Verifier, error) { return rsaPKCSVerifier(ck.CKM_RSA_PKCS, 0, k, p) },
		},
		{
			Type: ck.CKM_RSA_X_509, Info: info(all), KeyTypes: kts, RawPrivate: true,
			Encrypt: rsaX509Encrypt, Decrypt: rsaX509Decrypt, Sign: rsaX509Signer, Verify: rsaX509Verifier,
		},
		{
			Type: ck.CKM_RSA_PKCS_OAEP, Info: info(ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_WRAP | ck.CKF_UNWRAP), KeyTypes: kts,
			Encrypt: rsaOAEPEncrypt, Decrypt: rsaOAEPDecrypt,
		},
		{
			Type: ck.CKM_RSA_PKCS_PSS, Info: info(ck.CKF_SIGN | ck.CKF_VERIFY), KeyTypes: kts,
			Sign:   func(k *Key, p any) (Signer, error) { return rsaPSSSigner(ck.CKM_RSA_PKCS_PSS, 0, k, p) },
			Verify: func(k *Key, p any) (Verifier, error) { return rsaPSSVerifier(ck.CKM_RSA_PKCS_PSS, 0, k, p) },
		},
	}
	for _, e := range rsaHashMechs {
		ms = append(ms, Mechanism{
			Type: e.pkcs, Info: info(ck.CKF_SIGN | ck.CKF_VERIFY), KeyTypes: kts,
			Sign:   func(k *Key, p any) (Signer, error) { return rsaPKCSSigner(e.pkcs, e.h, k, p) },
			Verify: func(k *Key, p any) (Verifier, error) { return rsaPKCSVerifier(e.pkcs, e.h, k, p) },
		}, Mechanism{
			Type: e.pss, Info: info(ck.CKF_SIGN | ck.CKF_VERIFY), KeyTypes: kts,
			Sign:   func(k *Key, p any) (Signer, error) { return rsaPSSSigner(e.pss, e.h, k, p) },
			Verify: func(k *Key, p any) (Verifier, error) { return rsaPSSVerifier(e.pss, e.h, k, p) },
		})
	}
	return ms
}

// ---- keys ----

func rsaKeyKinds() []KeyKind {
	return []KeyKind{{
		Type:  ck.CKK_RSA,
		pct:   signPCT(ck.CKM_SHA256_RSA_PKCS, nil),
		Parse: parseRSA,
		Derived: func(class ck.ObjectClass, a attr.Template, m any) (attr.Template, error) {
			if class != ck.CKO_PUBLIC_KEY {
				return nil, nil
			}
			return attr.Template{{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(rsaSize(a, m))}}, nil
		},
		Secret: []ck.AttributeType{ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1, ck.CKA_PRIME_2,
			ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT},
		Size: rsaSize,
	}}
}

func rsaSize(a attr.Template, m any) ck.ULong {
	switch k := m.(type) {
	case *rsa.PrivateKey:
		return ck.ULong(k.N.BitLen())
	case *rsa.PublicKey:
		return ck.ULong(k.N.BitLen())
	}
	n, _ := a.Get(ck.CKA_MODULUS)
	return ck.ULong(new(big.Int).SetBytes(n).BitLen())
}

func bigAttr(a attr.Template, t ck.AttributeType, required bool) (*big.Int, error) {
	v, ok := a.Get(t)
	if !ok {
		if required {
			return nil, fmt.Errorf("CKK_RSA: %v: %w", t, ck.CKR_TEMPLATE_INCOMPLETE)
		}
		return nil, nil
	}
	x := new(big.Int).SetBytes(v)
	if x.Sign() == 0 {
		return nil, fmt.Errorf("CKK_RSA: %v is zero: %w", t, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return x, nil
}

// parseRSA builds *rsa.PublicKey or *rsa.PrivateKey from big-endian
// unsigned attributes. A private key needs CKA_MODULUS, CKA_PRIVATE_EXPONENT
// and CKA_PUBLIC_EXPONENT (PKCS#11 leaves the last optional, but Go's key
// type and every client we know supply it); the CRT values are used when
// all are given. The key is validated and precomputed here, once per
// object; *rsa.PrivateKey is then safe for concurrent use.
func parseRSA(class ck.ObjectClass, a attr.Template) (any, error) {
	if class != ck.CKO_PUBLIC_KEY && class != ck.CKO_PRIVATE_KEY {
		return nil, fmt.Errorf("CKK_RSA: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	n, err := bigAttr(a, ck.CKA_MODULUS, true)
	if err != nil {
		return nil, err
	}
	e, err := bigAttr(a, ck.CKA_PUBLIC_EXPONENT, true)
	if err != nil {
		return nil, err
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 || n.Bit(0) == 0 {
		return nil, fmt.Errorf("CKK_RSA: unsupported public exponent or even modulus: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	pub := rsa.PublicKey{N: n, E: int(e.Int64())}
	if class == ck.CKO_PUBLIC_KEY {
		return &pub, nil
	}
	d, err := bigAttr(a, ck.CKA_PRIVATE_EXPONENT, true)
	if err != nil {
		return nil, err
	}
	priv := &rsa.PrivateKey{PublicKey: pub, D: d}
	var crt [5]*big.Int
	for i, t := range []ck.AttributeType{ck.CKA_PRIME_1, ck.CKA_PRIME_2, ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT} {
		if crt[i], err = bigAttr(a, t, false); err != nil {
			return nil, err
		}
	}
	if crt[0] != nil && crt[1] != nil {
		priv.Primes = []*big.Int{crt[0], crt[1]}
		if crt[2] != nil && crt[3] != nil && crt[4] != nil {
			priv.Precomputed.Dp, priv.Precomputed.Dq, priv.Precomputed.Qinv = crt[2], crt[3], crt[4]
		}
	}
	if len(priv.Primes) == 2 {
		if err := priv.Validate(); err != nil {
			return nil, fmt.Errorf("CKK_RSA: inconsistent private key: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		priv.Precompute()
		return priv, nil
	}
	// Without the primes crypto/rsa cannot Validate; a test signature
	// through its constant-time path checks that d matches (n, e) instead.
	priv.Precompute()
	probe := []byte("gohsm rsa key check")
	sig, err := rsa.SignPKCS1v15(nil, priv, 0, probe)
	if err != nil || rsa.VerifyPKCS1v15(&priv.PublicKey, 0, probe, sig) != nil {
		return nil, fmt.Errorf("CKK_RSA: private exponent does not match the public key: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return priv, nil
}

func rsaPrivate(k *Key) (*rsa.PrivateKey, error) {
	m, err := keyMaterial(k, parseRSA)
	if err != nil {
		return nil, err
	}
	p, ok := m.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("rsa: operation needs a private key, have %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return p, nil
}

// rsaPublic accepts a private key object too: its public half is in it.
func rsaPublic(k *Key) (*rsa.PublicKey, error) {
	m, err := keyMaterial(k, parseRSA)
	if err != nil {
		return nil, err
	}
	switch p := m.(type) {
	case *rsa.PublicKey:
		return p, nil
	case *rsa.PrivateKey:
		return &p.PublicKey, nil
	}
	return nil, fmt.Errorf("rsa: key material %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
}

// generateRSA implements CKM_RSA_PKCS_KEY_PAIR_GEN with the caller's
// CKA_PUBLIC_EXPONENT (default 65537).
func generateRSA(pubT, privT attr.Template) (attr.Template, attr.Template, error) {
	for _, t := range []attr.Template{pubT, privT} {
		if _, err := templateKeyType(t, ck.CKK_RSA); err != nil {
			return nil, nil, err
		}
	}
	bits, ok, err := pubT.ULong(ck.CKA_MODULUS_BITS)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("rsa key gen: CKA_MODULUS_BITS: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	if bits < rsaGenMinBits || bits > rsaGenMaxBits {
		return nil, nil, fmt.Errorf("rsa key gen: %d bits: %w", bits, ck.CKR_KEY_SIZE_RANGE)
	}
	ev, hasE := pubT.Get(ck.CKA_PUBLIC_EXPONENT)
	exp, err := rsaExponent(ev, hasE)
	if err != nil {
		return nil, nil, err
	}
	priv, err := generateRSAKey(int(bits), exp)
	if err != nil {
		return nil, nil, fmt.Errorf("rsa key gen: %v: %w", err, ck.CKR_KEY_SIZE_RANGE)
	}
	priv.Precompute()
	kt := attr.ULong(ck.ULong(ck.CKK_RSA))
	e := big.NewInt(int64(priv.E)).Bytes()
	pub := attr.Template{
		{Type: ck.CKA_KEY_TYPE, Value: kt},
		{Type: ck.CKA_MODULUS, Value: priv.N.Bytes()},
		{Type: ck.CKA_PUBLIC_EXPONENT, Value: e},
		{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(ck.ULong(priv.N.BitLen()))},
	}
	prv := attr.Template{
		{Type: ck.CKA_KEY_TYPE, Value: kt},
		{Type: ck.CKA_MODULUS, Value: priv.N.Bytes()},
		{Type: ck.CKA_PUBLIC_EXPONENT, Value: append([]byte(nil), e...)},
		{Type: ck.CKA_PRIVATE_EXPONENT, Value: priv.D.Bytes()},
		{Type: ck.CKA_PRIME_1, Value: priv.Primes[0].Bytes()},
		{Type: ck.CKA_PRIME_2, Value: priv.Primes[1].Bytes()},
		{Type: ck.CKA_EXPONENT_1, Value: priv.Precomputed.Dp.Bytes()},
		{Type: ck.CKA_EXPONENT_2, Value: priv.Precomputed.Dq.Bytes()},
		{Type: ck.CKA_COEFFICIENT, Value: priv.Precomputed.Qinv.Bytes()},
	}
	return pub, prv, nil
}

// ---- ciphers (single-part only) ----

// rsaCipher is an RSA encryption or decryption. PKCS#11 marks RSA
// encryption "single-part operations only", so Update and Final are
// CKR_FUNCTION_NOT_SUPPORTED.
type rsaCipher struct {
	name   string
	outMax int
	op     func(src []byte) ([]byte, error)
}

func (c *rsaCipher) UpdateLen(int) int { return 0 }
func (c *rsaCipher) FinalLen() int     { return 0 }
func (c *rsaCipher) Update(dst, _ []byte) ([]byte, error) {
	return dst, fmt.Errorf("%s: multi-part: %w", c.name, ck.CKR_FUNCTION_NOT_SUPPORTED)
}
func (c *rsaCipher) Final(dst []byte) ([]byte, error) {
	return dst, fmt.Errorf("%s: multi-part: %w", c.name, ck.CKR_FUNCTION_NOT_SUPPORTED)
}
func (c *rsaCipher) OneShotLen(int) int { return c.outMax }
func (c *rsaCipher) OneShot(dst, src []byte) ([]byte, error) {
	out, err := c.op(src)
	if err != nil {
		return dst, err
	}
	dst = append(dst, out...)
	zero(out)
	return dst, nil
}

func rsaPKCSEncrypt(k *Key, param any) (Cipher, error) {
	if err := noParam(ck.CKM_RSA_PKCS, param); err != nil {
		return nil, err
	}
	pub, err := rsaPublic(k)
	if err != nil {
		return nil, err
	}
	n := pub.Size()
	return &rsaCipher{name: "CKM_RSA_PKCS encrypt", outMax: n, op: func(src []byte) ([]byte, error) {
		if len(src) > n-11 {
			return nil, fmt.Errorf("rsa pkcs encrypt: %d bytes: %w", len(src), ck.CKR_DATA_LEN_RANGE)
		}
		out, err := rsa.EncryptPKCS1v15(rand.Reader, pub, src) //nolint:staticcheck // PKCS#11 requires it
		if err != nil {
			return nil, fmt.Errorf("rsa pkcs encrypt: %v: %w", err, ck.CKR_FUNCTION_FAILED)
		}
		return out, nil
	}}, nil
}

// rsaPKCSDecrypt reports bad padding as CKR_ENCRYPTED_DATA_INVALID, which
// the PKCS#11 API requires and which is, inherently, a Bleichenbacher
// oracle: prefer OAEP.
func rsaPKCSDecrypt(k *Key, param any) (Cipher, error) {
	if err := noParam(ck.CKM_RSA_PKCS, param); err != nil {
		return nil, err
	}
	priv, err := rsaPrivate(k)
	if err != nil {
		return nil, err
	}
	n := priv.Size()
	return &rsaCipher{name: "CKM_RSA_PKCS decrypt", outMax: n - 11, op: func(src []byte) ([]byte, error) {
		if len(src) != n {
			return nil, fmt.Errorf("rsa pkcs decrypt: %d bytes: %w", len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
		}
		out, err := rsa.DecryptPKCS1v15(nil, priv, src) //nolint:staticcheck // PKCS#11 requires it
		if err != nil {
			return nil, fmt.Errorf("rsa pkcs decrypt: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
		}
		return out, nil
	}}, nil
}

// rsaPKCSUnwrapFixed is C_UnwrapKey with CKM_RSA_PKCS for a key of exactly
// n bytes, with implicit rejection: a block whose PKCS #1 v1.5 padding is
// malformed, or that carries a message of another length, unwraps to n
// bytes derived from the private key and the ciphertext, and the choice is
// made in constant time (crypto/rsa's DecryptPKCS1v15SessionKey, RFC 3218
// §2.3.2). So an unwrap reports nothing about the padding, and the same
// forged block always gives the same key (draft-irtf-cfrg-rsa-guidance
// §7's implicit rejection; OpenSSL 3.2+ does the same for decryption).
// Errors here depend only on public lengths.
func rsaPKCSUnwrapFixed(k *Key, param any, wrapped []byte, n int) ([]byte, error) {
	if err := noParam(ck.CKM_RSA_PKCS, param); err != nil {
		return nil, err
	}
	priv, err := rsaPrivate(k)
	if err != nil {
		return nil, err
	}
	if len(wrapped) != priv.Size() {
		return nil, fmt.Errorf("rsa pkcs unwrap: %d bytes: %w", len(wrapped), ck.CKR_WRAPPED_KEY_LEN_RANGE)
	}
	if n < 1 || n > priv.Size()-11 {
		return nil, fmt.Errorf("rsa pkcs unwrap: a %d-byte key cannot be in a %d-byte block: %w", n, priv.Size(), ck.CKR_TEMPLATE_INCONSISTENT)
	}
	key, err := implicitRejection(priv, wrapped, n)
	if err != nil {
		return nil, err
	}
	if err := rsa.DecryptPKCS1v15SessionKey(nil, priv, wrapped, key); err != nil { //nolint:staticcheck // PKCS#11 requires it
		zero(key)
		return nil, fmt.Errorf("rsa pkcs unwrap: %w", ck.CKR_WRAPPED_KEY_INVALID)
	}
	return key, nil
}

// implicitRejection is the key a forged block unwraps to: HKDF-SHA256 with
// the ciphertext as input keying material and a key-derivation key made
// from the private exponent as salt, so it is a pseudo-random function of
// the ciphertext that only the key's holder can compute.
func implicitRejection(priv *rsa.PrivateKey, ciphertext []byte, n int) ([]byte, error) {
	d := priv.D.FillBytes(make([]byte, priv.Size()))
	defer zero(d)
	kdk := sha256.Sum256(append([]byte("gohsm rsa implicit rejection kdk\x00"), d...))
	defer zero(kdk[:])
	out, err := hkdf.Key(sha256.New, ciphertext, kdk[:], "gohsm rsa implicit rejection", n)
	if err != nil {
		return nil, fmt.Errorf("rsa pkcs unwrap: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	return out, nil
}

func oaepParams(param any) (*rsa.OAEPOptions, int, error) {
	p, ok := paramAs[ck.RSAOAEPParams](param)
	if !ok {
		return nil, 0, fmt.Errorf("rsa oaep: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	h, ok := hashOf(p.HashAlg)
	if !ok {
		return nil, 0, fmt.Errorf("rsa oaep: hashAlg %v: %w", p.HashAlg, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	mh, ok := mgfHash(p.MGF)
	if !ok {
		return nil, 0, fmt.Errorf("rsa oaep: mgf %d: %w", p.MGF, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	var label []byte
	switch p.Source {
	case ck.CKZ_DATA_SPECIFIED:
		label = append([]byte(nil), p.SourceData...)
	case 0:
		if len(p.SourceData) != 0 {
			return nil, 0, fmt.Errorf("rsa oaep: source data without CKZ_DATA_SPECIFIED: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
	default:
		return nil, 0, fmt.Errorf("rsa oaep: source %d: %w", p.Source, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return &rsa.OAEPOptions{Hash: h, MGFHash: mh, Label: label}, h.Size(), nil
}

func rsaOAEPEncrypt(k *Key, param any) (Cipher, error) {
	opts, hLen, err := oaepParams(param)
	if err != nil {
		return nil, err
	}
	pub, err := rsaPublic(k)
	if err != nil {
		return nil, err
	}
	n := pub.Size()
	return &rsaCipher{name: "CKM_RSA_PKCS_OAEP encrypt", outMax: n, op: func(src []byte) ([]byte, error) {
		if len(src) > n-2*hLen-2 {
			return nil, fmt.Errorf("rsa oaep encrypt: %d bytes: %w", len(src), ck.CKR_DATA_LEN_RANGE)
		}
		out, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, src, opts)
		if err != nil {
			return nil, fmt.Errorf("rsa oaep encrypt: %v: %w", err, ck.CKR_FUNCTION_FAILED)
		}
		return out, nil
	}}, nil
}

func rsaOAEPDecrypt(k *Key, param any) (Cipher, error) {
	opts, hLen, err := oaepParams(param)
	if err != nil {
		return nil, err
	}
	priv, err := rsaPrivate(k)
	if err != nil {
		return nil, err
	}
	n := priv.Size()
	return &rsaCipher{name: "CKM_RSA_PKCS_OAEP decrypt", outMax: max(n-2*hLen-2, 0), op: func(src []byte) ([]byte, error) {
		if len(src) != n {
			return nil, fmt.Errorf("rsa oaep decrypt: %d bytes: %w", len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
		}
		var out []byte
		if fk := rsaFast(priv); fk != nil {
			out, err = rsaFastOAEPDecrypt(fk, src, opts)
		} else {
			out, err = priv.Decrypt(nil, src, opts)
		}
		if err != nil {
			return nil, fmt.Errorf("rsa oaep decrypt: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
		}
		return out, nil
	}}, nil
}

// CKM_RSA_X_509 treats input as a big-endian integer, so shorter input is
// implicitly left-padded with zeros (PKCS#11 2.40 "X.509 (raw) RSA");
// output is always k bytes. Values not below the modulus are rejected.

func leftPad(b []byte, k int) []byte {
	out := make([]byte, k)
	copy(out[k-len(b):], b)
	return out
}

func rsaX509Encrypt(k *Key, param any) (Cipher, error) {
	if err := noParam(ck.CKM_RSA_X_509, param); err != nil {
		return nil, err
	}
	pub, err := rsaPublic(k)
	if err != nil {
		return nil, err
	}
	n := pub.Size()
	return &rsaCipher{name: "CKM_RSA_X_509 encrypt", outMax: n, op: func(src []byte) ([]byte, error) {
		if len(src) > n {
			return nil, fmt.Errorf("rsa x509 encrypt: %d bytes: %w", len(src), ck.CKR_DATA_LEN_RANGE)
		}
		out, err := rsaRawPublic(pub, src)
		if err != nil {
			return nil, fmt.Errorf("rsa x509 encrypt: %w", ck.CKR_DATA_INVALID)
		}
		return out, nil
	}}, nil
}

func rsaX509Decrypt(k *Key, param any) (Cipher, error) {
	if err := noParam(ck.CKM_RSA_X_509, param); err != nil {
		return nil, err
	}
	priv, err := rsaPrivate(k)
	if err != nil {
		return nil, err
	}
	n := priv.Size()
	return &rsaCipher{name: "CKM_RSA_X_509 decrypt", outMax: n, op: func(src []byte) ([]byte, error) {
		if len(src) != n {
			return nil, fmt.Errorf("rsa x509 decrypt: %d bytes: %w", len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
		}
		out, err := rsaRawPrivate(priv, src)
		if err != nil {
			return nil, fmt.Errorf("rsa x509 decrypt: %v: %w", err, ck.CKR_ENCRYPTED_DATA_INVALID)
		}
		return out, nil
	}}, nil
}

func rsaX509Signer(k *Key, param any) (Signer, error) {
	if err := noParam(ck.CKM_RSA_X_509, param); err != nil {
		return nil, err
	}
	priv, err := rsaPrivate(k)
	if err != nil {
		return nil, err
	}
	n := priv.Size()
	return newHashSigner("CKM_RSA_X_509", 0, n, func(data []byte) ([]byte, error) {
		if len(data) > n {
			return nil, fmt.Errorf("rsa x509 sign: %d bytes: %w", len(data), ck.CKR_DATA_LEN_RANGE)
		}
		out, err := rsaRawPrivate(priv, data)
		if err != nil {
			return nil, fmt.Errorf("rsa x509 sign: %v: %w", err, ck.CKR_DATA_INVALID)
		}
		return out, nil
	}), nil
}

func rsaX509Verifier(k *Key, param any) (Verifier, error) {
	if err := noParam(ck.CKM_RSA_X_509, param); err != nil {
		return nil, err
	}
	pub, err := rsaPublic(k)
	if err != nil {
		return nil, err
	}
	n := pub.Size()
	return newHashVerifier("CKM_RSA_X_509", 0, func(data, sig []byte) error {
		if len(data) > n {
			return fmt.Errorf("rsa x509 verify: %d bytes: %w", len(data), ck.CKR_DATA_LEN_RANGE)
		}
		if len(sig) != n {
			return fmt.Errorf("rsa x509 verify: signature of %d bytes: %w", len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
		}
		m, err := rsaRawPublic(pub, sig)
		if err != nil || subtle.ConstantTimeCompare(m, leftPad(data, n)) != 1 {
			return fmt.Errorf("rsa x509 verify: %w", ck.CKR_SIGNATURE_INVALID)
		}
		return nil
	}), nil
}

// ---- PKCS #1 v1.5 signatures ----

// rsaPKCSSigner: h == 0 is CKM_RSA_PKCS, where the caller supplies the
// DigestInfo (at most k-11 bytes); otherwise CKM_SHAx_RSA_PKCS.
func rsaPKCSSigner(m ck.MechanismType, h crypto.Hash, k *Key, param any) (Signer, error) {
	if err := noParam(m, param); err != nil {
		return nil, err
	}
	priv, err := rsaPrivate(k)
	if err != nil {
		return nil, err
	}
	n := priv.Size()
	return newHashSigner(m.String(), h, n, func(digest []byte) ([]byte, error) {
		if h == 0 && len(digest) > n-11 {
			return nil, fmt.Errorf("%v: %d bytes: %w", m, len(digest), ck.CKR_DATA_LEN_RANGE)
		}
		if fk := rsaFast(priv); fk != nil && (h == 0 || pkcs1Prefix[h] != nil) {
			return rsaFastPKCS1Sign(fk, m, h, digest)
		}
		sig, err := rsa.SignPKCS1v15(nil, priv, h, digest)
		if err != nil {
			return nil, fmt.Errorf("%v: %v: %w", m, err, ck.CKR_FUNCTION_FAILED)
		}
		return sig, nil
	}), nil
}

func rsaPKCSVerifier(m ck.MechanismType, h crypto.Hash, k *Key, param any) (Verifier, error) {
	if err := noParam(m, param); err != nil {
		return nil, err
	}
	pub, err := rsaPublic(k)
	if err != nil {
		return nil, err
	}
	n := pub.Size()
	return newHashVerifier(m.String(), h, func(digest, sig []byte) error {
		if h == 0 && len(digest) > n-11 {
			return fmt.Errorf("%v: %d bytes: %w", m, len(digest), ck.CKR_DATA_LEN_RANGE)
		}
		if len(sig) != n {
			return fmt.Errorf("%v: signature of %d bytes: %w", m, len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
		}
		if rsa.VerifyPKCS1v15(pub, h, digest, sig) != nil {
			return fmt.Errorf("%v: %w", m, ck.CKR_SIGNATURE_INVALID)
		}
		return nil
	}), nil
}

// ---- PSS ----

// pssParams checks CK_RSA_PKCS_PSS_PARAMS. fixed is the hash of a
// CKM_SHAx_RSA_PKCS_PSS mechanism, which hashAlg must name (PKCS#11 2.40
// "PKCS #1 RSA PSS signature with SHA-x": the parameters' hashAlg and mgf
// must match the mechanism's digest). MGF1 must use the same hash: Go
// implements only that, and so do nearly all tokens.
func pssParams(m ck.MechanismType, fixed crypto.Hash, param any, modBits int) (crypto.Hash, int, error) {
	p, ok := paramAs[ck.RSAPSSParams](param)
	if !ok {
		return 0, 0, fmt.Errorf("%v: parameter %T: %w", m, param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	h, ok := hashOf(p.HashAlg)
	if !ok || (fixed != 0 && h != fixed) {
		return 0, 0, fmt.Errorf("%v: hashAlg %v: %w", m, p.HashAlg, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if mh, ok := mgfHash(p.MGF); !ok || mh != h {
		return 0, 0, fmt.Errorf("%v: mgf %d does not match hashAlg: %w", m, p.MGF, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	emLen := (modBits - 1 + 7) / 8
	if p.SaltLen > ck.ULong(emLen) || int(p.SaltLen) > emLen-h.Size()-2 {
		return 0, 0, fmt.Errorf("%v: salt of %d bytes for a %d-bit key: %w", m, p.SaltLen, modBits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return h, int(p.SaltLen), nil
}

func rsaPSSSigner(m ck.MechanismType, fixed crypto.Hash, k *Key, param any) (Signer, error) {
	priv, err := rsaPrivate(k)
	if err != nil {
		return nil, err
	}
	h, sLen, err := pssParams(m, fixed, param, priv.N.BitLen())
	if err != nil {
		return nil, err
	}
	return newHashSigner(m.String(), fixed, priv.Size(), func(digest []byte) ([]byte, error) {
		if len(digest) != h.Size() {
			return nil, fmt.Errorf("%v: hash of %d bytes, want %d: %w", m, len(digest), h.Size(), ck.CKR_DATA_LEN_RANGE)
		}
		if sLen == 0 {
			// Go's PSSOptions reads SaltLength 0 as "auto"; an empty
			// salt (deterministic PSS) needs the encoding done here.
			em, err := emsaPSSEncode(digest, priv.N.BitLen()-1, h)
			if err != nil {
				return nil, fmt.Errorf("%v: %v: %w", m, err, ck.CKR_FUNCTION_FAILED)
			}
			return rsaRawPrivate(priv, em)
		}
		if fk := rsaFast(priv); fk != nil {
			return rsaFastPSSSign(fk, m, h, sLen, priv.N.BitLen()-1, digest)
		}
		sig, err := rsa.SignPSS(rand.Reader, priv, h, digest, &rsa.PSSOptions{SaltLength: sLen})
		if err != nil {
			return nil, fmt.Errorf("%v: %v: %w", m, err, ck.CKR_FUNCTION_FAILED)
		}
		return sig, nil
	}), nil
}

func rsaPSSVerifier(m ck.MechanismType, fixed crypto.Hash, k *Key, param any) (Verifier, error) {
	pub, err := rsaPublic(k)
	if err != nil {
		return nil, err
	}
	h, sLen, err := pssParams(m, fixed, param, pub.N.BitLen())
	if err != nil {
		return nil, err
	}
	n := pub.Size()
	return newHashVerifier(m.String(), fixed, func(digest, sig []byte) error {
		if len(digest) != h.Size() {
			return fmt.Errorf("%v: hash of %d bytes, want %d: %w", m, len(digest), h.Size(), ck.CKR_DATA_LEN_RANGE)
		}
		if len(sig) != n {
			return fmt.Errorf("%v: signature of %d bytes: %w", m, len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
		}
		var ok bool
		if sLen == 0 {
			ok = emsaPSSVerifyNoSalt(pub, digest, sig, h)
		} else {
			ok = rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: sLen}) == nil
		}
		if !ok {
			return fmt.Errorf("%v: %w", m, ck.CKR_SIGNATURE_INVALID)
		}
		return nil
	}), nil
}

// mgf1XOR xors out with MGF1(seed) (RFC 8017 B.2.1).
func mgf1XOR(out, seed []byte, h crypto.Hash) {
	var ctr [4]byte
	d := h.New()
	for done := 0; done < len(out); {
		d.Reset()
		d.Write(seed)
		d.Write(ctr[:])
		for _, b := range d.Sum(nil) {
			if done == len(out) {
				break
			}
			out[done] ^= b
			done++
		}
		for i := 3; i >= 0; i-- {
			if ctr[i]++; ctr[i] != 0 {
				break
			}
		}
	}
}

// emsaPSSEncode is RFC 8017 §9.1.1 with an empty salt.
func emsaPSSEncode(mHash []byte, emBits int, h crypto.Hash) ([]byte, error) {
	return emsaPSSEncodeSalt(mHash, nil, emBits, h)
}

// emsaPSSEncodeSalt is RFC 8017 §9.1.1 with the given salt.
func emsaPSSEncodeSalt(mHash, salt []byte, emBits int, h crypto.Hash) ([]byte, error) {
	hLen := h.Size()
	emLen := (emBits + 7) / 8
	if emLen < hLen+len(salt)+2 {
		return nil, fmt.Errorf("key too small for PSS with %v", h)
	}
	d := h.New()
	d.Write(make([]byte, 8))
	d.Write(mHash)
	d.Write(salt)
	H := d.Sum(nil)
	em := make([]byte, emLen)
	db := em[:emLen-hLen-1]
	db[len(db)-len(salt)-1] = 0x01
	copy(db[len(db)-len(salt):], salt)
	mgf1XOR(db, H, h)
	db[0] &= 0xFF >> (8*emLen - emBits)
	copy(em[emLen-hLen-1:], H)
	em[emLen-1] = 0xbc
	return em, nil
}

// emsaPSSVerifyNoSalt is RFC 8017 §8.1.2 and §9.1.2 with sLen = 0. Only
// public values are involved, so math/big is fine here.
func emsaPSSVerifyNoSalt(pub *rsa.PublicKey, mHash, sig []byte, h crypto.Hash) bool {
	m, err := rsaRawPublic(pub, sig)
	if err != nil {
		return false
	}
	emBits := pub.N.BitLen() - 1
	emLen := (emBits + 7) / 8
	hLen := h.Size()
	// I2OSP(m, emLen): leading bytes beyond emLen must be zero.
	for _, b := range m[:len(m)-emLen] {
		if b != 0 {
			return false
		}
	}
	em := m[len(m)-emLen:]
	if emLen < hLen+2 || em[emLen-1] != 0xbc {
		return false
	}
	db := append([]byte(nil), em[:emLen-hLen-1]...)
	H := em[emLen-hLen-1 : emLen-1]
	if db[0]&^(0xFF>>(8*emLen-emBits)) != 0 {
		return false
	}
	mgf1XOR(db, H, h)
	db[0] &= 0xFF >> (8*emLen - emBits)
	for _, b := range db[:len(db)-1] {
		if b != 0 {
			return false
		}
	}
	if db[len(db)-1] != 0x01 {
		return false
	}
	d := h.New()
	d.Write(make([]byte, 8))
	d.Write(mHash)
	return subtle.ConstantTimeCompare(d.Sum(nil), H) == 1
}

// ---- raw RSA ----

// rsaRawPublic computes x^e mod n as k bytes; x must be below n.
func rsaRawPublic(pub *rsa.PublicKey, x []byte) ([]byte, error) {
	c := new(big.Int).SetBytes(x)
	if c.Cmp(pub.N) >= 0 {
		return nil, fmt.Errorf("input not below the modulus")
	}
	c.Exp(c, big.NewInt(int64(pub.E)), pub.N)
	return c.FillBytes(make([]byte, pub.Size())), nil
}

// rsaRawPrivate computes x^d mod n as k bytes, for the two operations
// crypto/rsa has no API for. math/big is not constant time, so the input
// is blinded with a fresh random r (the textbook defence that crypto/rsa
// itself used before its constant-time rewrite), CRT is used when the key
// has its primes, and the result is checked with the public exponent so a
// fault never leaks a signature that reveals a prime.
func rsaRawPrivate(priv *rsa.PrivateKey, x []byte) ([]byte, error) {
	n := priv.N
	c := new(big.Int).SetBytes(x)
	if c.Cmp(n) >= 0 {
		return nil, fmt.Errorf("rsa: input not below the modulus: %w", ck.CKR_DATA_INVALID)
	}
	if fk := rsaFast(priv); fk != nil {
		return rsaFastPrivate(fk, leftPad(x, fk.Size()))
	}
	e := big.NewInt(int64(priv.E))
	var r, rInv *big.Int
	for {
		var err error
		r, err = rand.Int(rand.Reader, n)
		if err != nil {
			return nil, fmt.Errorf("rsa: %v: %w", err, ck.CKR_FUNCTION_FAILED)
		}
		if r.Sign() == 0 {
			continue
		}
		if rInv = new(big.Int).ModInverse(r, n); rInv != nil {
			break
		}
	}
	cb := new(big.Int).Exp(r, e, n)
	cb.Mul(cb, c).Mod(cb, n)
	var m *big.Int
	pc := priv.Precomputed
	if len(priv.Primes) == 2 && pc.Dp != nil && pc.Dq != nil && pc.Qinv != nil {
		p, q := priv.Primes[0], priv.Primes[1]
		m1 := new(big.Int).Exp(new(big.Int).Mod(cb, p), pc.Dp, p)
		m2 := new(big.Int).Exp(new(big.Int).Mod(cb, q), pc.Dq, q)
		m1.Sub(m1, m2).Mul(m1, pc.Qinv).Mod(m1, p)
		m = m1.Mul(m1, q).Add(m1, m2)
	} else {
		m = new(big.Int).Exp(cb, priv.D, n)
	}
	m.Mul(m, rInv).Mod(m, n)
	if new(big.Int).Exp(m, e, n).Cmp(c) != 0 {
		return nil, fmt.Errorf("rsa: private operation failed its check: %w", ck.CKR_FUNCTION_FAILED)
	}
	return m.FillBytes(make([]byte, priv.Size())), nil
}

// ---- the IFMA path (hsm/mech/rsaz) ----
//
// On CPUs with AVX-512 IFMA (and unless GOHSM_RSAZ=off) the private-key
// operation of two-prime keys runs in rsaz: both CRT halves in the lanes
// of one constant-time exponentiation, the result checked against the
// public key before it leaves. The encodings around it are done here
// (EMSA-PKCS1-v1_5, EMSA-PSS, EME-OAEP decoding in constant time);
// everything else, PKCS #1 v1.5 decryption and unwrap included, stays on
// crypto/rsa. docs/rsaz.md has the design and the measurements.

// rsazKeys maps a parsed key (weakly) to its rsaz form, or to nil when
// rsaz does not take it. An entry is dropped, and its secrets zeroised,
// when the *rsa.PrivateKey is collected.
var rsazKeys sync.Map // weak.Pointer[rsa.PrivateKey] -> *rsaz.PrivateKey

// rsaFast is the rsaz key for priv, or nil: use crypto/rsa.
func rsaFast(priv *rsa.PrivateKey) *rsaz.PrivateKey {
	if !rsaz.Enabled() {
		return nil
	}
	wp := weak.Make(priv)
	if v, ok := rsazKeys.Load(wp); ok {
		return v.(*rsaz.PrivateKey)
	}
	fk, err := rsaz.NewPrivateKey(priv)
	if err != nil {
		fk = nil
	}
	v, loaded := rsazKeys.LoadOrStore(wp, fk)
	if loaded {
		if fk != nil {
			fk.Destroy()
		}
	} else {
		runtime.AddCleanup(priv, func(wp weak.Pointer[rsa.PrivateKey]) {
			if v, ok := rsazKeys.LoadAndDelete(wp); ok && v.(*rsaz.PrivateKey) != nil {
				v.(*rsaz.PrivateKey).Destroy()
			}
		}, wp)
	}
	return v.(*rsaz.PrivateKey)
}

func rsaFastPrivate(fk *rsaz.PrivateKey, x []byte) ([]byte, error) {
	out, err := fk.Private(x)
	switch {
	case errors.Is(err, rsaz.ErrDecryption):
		return nil, fmt.Errorf("rsa: input not below the modulus: %w", ck.CKR_DATA_INVALID)
	case err != nil:
		return nil, fmt.Errorf("rsa: private operation failed its check: %w", ck.CKR_FUNCTION_FAILED)
	}
	return out, nil
}

// pkcs1Prefix is the DER DigestInfo header before each digest (RFC 8017
// §9.2, note 1).
var pkcs1Prefix = map[crypto.Hash][]byte{
	crypto.SHA1:     {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224:   {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256:   {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384:   {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512:   {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
	crypto.SHA3_224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x07, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA3_256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x08, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA3_384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x09, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA3_512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x0a, 0x05, 0x00, 0x04, 0x40},
}

// rsaFastPKCS1Sign is RFC 8017 §8.2.1 with EMSA-PKCS1-v1_5 (h == 0: the
// caller's DigestInfo as is).
func rsaFastPKCS1Sign(fk *rsaz.PrivateKey, m ck.MechanismType, h crypto.Hash, digest []byte) ([]byte, error) {
	var prefix []byte
	if h != 0 {
		var ok bool
		if prefix, ok = pkcs1Prefix[h]; !ok || len(digest) != h.Size() {
			return nil, fmt.Errorf("%v: digest of %d bytes: %w", m, len(digest), ck.CKR_FUNCTION_FAILED)
		}
	}
	k := fk.Size()
	tLen := len(prefix) + len(digest)
	if k < tLen+11 {
		return nil, fmt.Errorf("%v: key too short: %w", m, ck.CKR_FUNCTION_FAILED)
	}
	em := make([]byte, k)
	em[1] = 1
	for i := 2; i < k-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-tLen:], prefix)
	copy(em[k-len(digest):], digest)
	sig, err := fk.Private(em)
	if err != nil {
		return nil, fmt.Errorf("%v: %v: %w", m, err, ck.CKR_FUNCTION_FAILED)
	}
	return sig, nil
}

// rsaFastPSSSign is RFC 8017 §8.1.1 with a random salt of sLen bytes.
func rsaFastPSSSign(fk *rsaz.PrivateKey, m ck.MechanismType, h crypto.Hash, sLen, emBits int, digest []byte) ([]byte, error) {
	salt := make([]byte, sLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("%v: %v: %w", m, err, ck.CKR_FUNCTION_FAILED)
	}
	em, err := emsaPSSEncodeSalt(digest, salt, emBits, h)
	if err != nil {
		return nil, fmt.Errorf("%v: %v: %w", m, err, ck.CKR_FUNCTION_FAILED)
	}
	sig, err := fk.Private(leftPad(em, fk.Size()))
	if err != nil {
		return nil, fmt.Errorf("%v: %v: %w", m, err, ck.CKR_FUNCTION_FAILED)
	}
	return sig, nil
}

// rsaFastOAEPDecrypt is RFC 8017 §7.1.2. The decoding runs in constant
// time and fails with one error whatever went wrong, so that it is no
// oracle (Manger's attack).
func rsaFastOAEPDecrypt(fk *rsaz.PrivateKey, src []byte, opts *rsa.OAEPOptions) ([]byte, error) {
	h, mh := opts.Hash, opts.MGFHash
	if mh == 0 {
		mh = h
	}
	k, hLen := fk.Size(), h.Size()
	if k < 2*hLen+2 {
		return nil, rsa.ErrDecryption
	}
	em, err := fk.Private(src)
	if err != nil {
		return nil, rsa.ErrDecryption
	}
	defer zero(em)
	d := h.New()
	d.Write(opts.Label)
	lHash := d.Sum(nil)
	seed, db := em[1:1+hLen], em[1+hLen:]
	mgf1XOR(seed, db, mh)
	mgf1XOR(db, seed, mh)
	good := subtle.ConstantTimeByteEq(em[0], 0) & subtle.ConstantTimeCompare(db[:hLen], lHash)
	// After lHash: zeros, then 0x01, then the message.
	rest := db[hLen:]
	looking, index, invalid := 1, 0, 0
	for i, b := range rest {
		is0, is1 := subtle.ConstantTimeByteEq(b, 0), subtle.ConstantTimeByteEq(b, 1)
		index = subtle.ConstantTimeSelect(looking&is1, i, index)
		looking = subtle.ConstantTimeSelect(is1, 0, looking)
		invalid = subtle.ConstantTimeSelect(looking&^is0, 1, invalid)
	}
	if good&^invalid&^looking != 1 {
		return nil, rsa.ErrDecryption
	}
	return append([]byte(nil), rest[index+1:]...), nil
}
