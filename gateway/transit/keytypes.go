package transit

import (
	"encoding/asn1"
	"fmt"
	"sort"

	"github.com/gohsm/gohsm/hsm/ck"
)

// kind is how a key type is used: it picks the code path of each
// operation. The table below says which kinds each type is.
type kind int

const (
	kindAEAD  kind = iota // secret key, token.Seal/Open
	kindHMAC              // generic secret, HMAC only
	kindRSA               // RSA pair: PSS / PKCS#1 v1.5 signatures, OAEP encryption
	kindECDSA             // NIST curve pair, CKM_ECDSA over a digest made here
	kindEdDSA             // Ed25519, CKM_EDDSA over the message
	kindSM2               // SM2 pair, CKM_SM3_SM2 (or the raw mechanism when prehashed)
	kindMLDSA             // ML-DSA pair, CKM_ML_DSA (CKM_HASH_ML_DSA when prehashed)
)

// keyType is one row of the key-type table: everything the engine needs
// to make a key of the type on a token and use it. A row is data; the
// operations read it and never switch on the type's name.
type keyType struct {
	name string
	kind kind

	ckk ck.KeyType       // CKA_KEY_TYPE of the secret or private object
	gen ck.MechanismType // C_GenerateKey / C_GenerateKeyPair mechanism
	// size is the secret key's CKA_VALUE_LEN (bytes) or the RSA modulus
	// in bits; 0 for curve and parameter-set types.
	size int
	// curve is CKA_EC_PARAMS (a named curve's OID) of EC-like pairs.
	curve asn1.ObjectIdentifier
	// paramSet is CKA_PARAMETER_SET of an ML-DSA pair.
	paramSet ck.ParameterSet

	// mechs are the operation mechanisms: CKA_ALLOWED_MECHANISMS of the
	// objects, so the token itself refuses any other use.
	aead mechs // AEAD mechanism (kindAEAD)
	sign mechs // signature mechanisms, the first is the default
	enc  mechs // public-key encryption (RSA-OAEP)

	supportsEncryption, supportsDecryption, supportsDerivation, supportsSigning bool

	// pubName is Vault's `name` of a public key in `keys`; pubFormat how
	// public_key is written: "pem" (PKIX SubjectPublicKeyInfo, PEM) or
	// "base64" (the raw key, as Vault gives Ed25519's). Empty for
	// symmetric types, whose `keys` entries are creation times.
	pubName, pubFormat string
	// spkiAlg is the SubjectPublicKeyInfo algorithm of EC-like and
	// ML-DSA keys (RSA uses crypto/x509).
	spkiAlg asn1.ObjectIdentifier
}

type mechs []ck.MechanismType

func (k *keyType) asymmetric() bool { return k.kind != kindAEAD && k.kind != kindHMAC }

// OIDs of the named curves and public-key algorithms (RFC 5480, RFC 8410,
// GM/T 0006, FIPS 204 / RFC 9881).
var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidP256        = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384        = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidP521        = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
	oidEd25519     = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidSM2         = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301}
	oidMLDSA44     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 17}
	oidMLDSA65     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}
	oidMLDSA87     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 19}
)

// hmacMechs are the HMAC mechanisms an HMAC key (the type hmac, and every
// version's companion HMAC key) may be used with.
var hmacMechs = mechs{ck.CKM_SHA_1_HMAC, ck.CKM_SHA224_HMAC, ck.CKM_SHA256_HMAC, ck.CKM_SHA384_HMAC, ck.CKM_SHA512_HMAC,
	ck.CKM_SHA3_224_HMAC, ck.CKM_SHA3_256_HMAC, ck.CKM_SHA3_384_HMAC, ck.CKM_SHA3_512_HMAC}

// typeTable builds the table for an SM vendor profile: the SM rows take
// the profile's codes, and are left out when the profile lacks one.
func typeTable(p *ck.Profile) *table {
	hmacAll := append(mechs(nil), hmacMechs...)
	var sm3HMAC ck.MechanismType
	if p != nil {
		if m, ok := p.Mechanism("CKM_SM3_HMAC"); ok {
			sm3HMAC = m
			hmacAll = append(hmacAll, m)
		}
	}
	aead := func(name string, ckk ck.KeyType, gen ck.MechanismType, size int, m ck.MechanismType) *keyType {
		return &keyType{name: name, kind: kindAEAD, ckk: ckk, gen: gen, size: size, aead: mechs{m},
			supportsEncryption: true, supportsDecryption: true, supportsDerivation: true}
	}
	rsaRow := func(bits int) *keyType {
		return &keyType{name: fmt.Sprintf("rsa-%d", bits), kind: kindRSA, ckk: ck.CKK_RSA, gen: ck.CKM_RSA_PKCS_KEY_PAIR_GEN, size: bits,
			sign: mechs{ck.CKM_RSA_PKCS_PSS, ck.CKM_RSA_PKCS}, enc: mechs{ck.CKM_RSA_PKCS_OAEP},
			supportsEncryption: true, supportsDecryption: true, supportsSigning: true,
			pubName: fmt.Sprintf("rsa-%d", bits), pubFormat: "pem"}
	}
	ecRow := func(name, curveName string, oid asn1.ObjectIdentifier) *keyType {
		return &keyType{name: name, kind: kindECDSA, ckk: ck.CKK_EC, gen: ck.CKM_EC_KEY_PAIR_GEN, curve: oid,
			sign: mechs{ck.CKM_ECDSA}, supportsSigning: true, pubName: curveName, pubFormat: "pem", spkiAlg: oidECPublicKey}
	}
	mldsa := func(name string, set ck.ParameterSet, oid asn1.ObjectIdentifier) *keyType {
		return &keyType{name: name, kind: kindMLDSA, ckk: ck.CKK_ML_DSA, gen: ck.CKM_ML_DSA_KEY_PAIR_GEN, paramSet: set,
			sign: mechs{ck.CKM_ML_DSA, ck.CKM_HASH_ML_DSA}, supportsSigning: true, pubName: name, pubFormat: "pem", spkiAlg: oid}
	}
	rows := []*keyType{
		aead("aes128-gcm96", ck.CKK_AES, ck.CKM_AES_KEY_GEN, 16, ck.CKM_AES_GCM),
		aead("aes256-gcm96", ck.CKK_AES, ck.CKM_AES_KEY_GEN, 32, ck.CKM_AES_GCM),
		aead("chacha20-poly1305", ck.CKK_CHACHA20, ck.CKM_CHACHA20_KEY_GEN, 32, ck.CKM_CHACHA20_POLY1305),
		ecRow("ecdsa-p256", "P-256", oidP256),
		ecRow("ecdsa-p384", "P-384", oidP384),
		ecRow("ecdsa-p521", "P-521", oidP521),
		{name: "ed25519", kind: kindEdDSA, ckk: ck.CKK_EC_EDWARDS, gen: ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, curve: oidEd25519,
			sign: mechs{ck.CKM_EDDSA}, supportsSigning: true, pubName: "ed25519", pubFormat: "base64"},
		rsaRow(2048), rsaRow(3072), rsaRow(4096),
		{name: "hmac", kind: kindHMAC, ckk: ck.CKK_GENERIC_SECRET, gen: ck.CKM_GENERIC_SECRET_KEY_GEN, size: 32, sign: hmacAll},
		mldsa("ml-dsa-44", ck.CKP_ML_DSA_44, oidMLDSA44),
		mldsa("ml-dsa-65", ck.CKP_ML_DSA_65, oidMLDSA65),
		mldsa("ml-dsa-87", ck.CKP_ML_DSA_87, oidMLDSA87),
	}
	if p != nil {
		ckk, ok1 := p.KeyType("CKK_SM2")
		gen, ok2 := p.Mechanism("CKM_SM2_KEY_PAIR_GEN")
		sm3sm2, ok3 := p.Mechanism("CKM_SM3_SM2")
		raw, ok4 := p.Mechanism("CKM_SM2_SIGN_RAW")
		if ok1 && ok2 && ok3 && ok4 {
			rows = append(rows, &keyType{name: "sm2", kind: kindSM2, ckk: ckk, gen: gen, curve: oidSM2,
				sign: mechs{sm3sm2, raw}, supportsSigning: true, pubName: "SM2", pubFormat: "pem", spkiAlg: oidECPublicKey})
		}
		ckk4, ok1 := p.KeyType("CKK_SM4")
		gen4, ok2 := p.Mechanism("CKM_SM4_KEY_GEN")
		gcm, ok3 := p.Mechanism("CKM_SM4_GCM")
		if ok1 && ok2 && ok3 {
			rows = append(rows, aead("sm4-gcm", ckk4, gen4, 16, gcm))
		}
	}
	t := &table{types: make(map[string]*keyType, len(rows)), hmac: hmacAll, sm3HMAC: sm3HMAC}
	for _, r := range rows {
		t.types[r.name] = r
	}
	return t
}

// table is the key-type table of one SM profile, with the HMAC mechanisms
// of the companion HMAC keys (the profile's HMAC-SM3 among them).
type table struct {
	types   map[string]*keyType
	hmac    mechs
	sm3HMAC ck.MechanismType // hmac algorithm "sm3"; 0 when the profile has none
}

// typeNames lists the table's types, for error messages.
func typeNames(t map[string]*keyType) []string {
	out := make([]string, 0, len(t))
	for n := range t {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
