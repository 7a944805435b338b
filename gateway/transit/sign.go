package transit

import (
	"context"
	"crypto"
	_ "crypto/sha1" // the hashes sign and verify offer
	_ "crypto/sha256"
	_ "crypto/sha3"
	_ "crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net/http"
	"strconv"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// hashAlg is one row of the hash table: Vault's name and what each use
// of the hash needs (the digest made here, the PKCS#11 digest and MGF1
// codes for RSA-PSS and HashML-DSA, the HMAC mechanism, the DigestInfo
// OID for PKCS#1 v1.5).
type hashAlg struct {
	h      crypto.Hash
	digest ck.MechanismType
	mgf    ck.MGF
	hmac   ck.MechanismType
	oid    asn1.ObjectIdentifier
}

var hashes = map[string]*hashAlg{
	"sha1":     {crypto.SHA1, ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, ck.CKM_SHA_1_HMAC, asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}},
	"sha2-224": {crypto.SHA224, ck.CKM_SHA224, ck.CKG_MGF1_SHA224, ck.CKM_SHA224_HMAC, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}},
	"sha2-256": {crypto.SHA256, ck.CKM_SHA256, ck.CKG_MGF1_SHA256, ck.CKM_SHA256_HMAC, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}},
	"sha2-384": {crypto.SHA384, ck.CKM_SHA384, ck.CKG_MGF1_SHA384, ck.CKM_SHA384_HMAC, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}},
	"sha2-512": {crypto.SHA512, ck.CKM_SHA512, ck.CKG_MGF1_SHA512, ck.CKM_SHA512_HMAC, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}},
	"sha3-224": {crypto.SHA3_224, ck.CKM_SHA3_224, ck.CKG_MGF1_SHA3_224, ck.CKM_SHA3_224_HMAC, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 7}},
	"sha3-256": {crypto.SHA3_256, ck.CKM_SHA3_256, ck.CKG_MGF1_SHA3_256, ck.CKM_SHA3_256_HMAC, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 8}},
	"sha3-384": {crypto.SHA3_384, ck.CKM_SHA3_384, ck.CKG_MGF1_SHA3_384, ck.CKM_SHA3_384_HMAC, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 9}},
	"sha3-512": {crypto.SHA3_512, ck.CKM_SHA3_512, ck.CKG_MGF1_SHA3_512, ck.CKM_SHA3_512_HMAC, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 10}},
}

// coordSize is the byte length of r and s in a raw r||s signature.
var coordSize = map[kind]map[string]int{
	kindECDSA: {"ecdsa-p256": 32, "ecdsa-p384": 48, "ecdsa-p521": 66},
	kindSM2:   {"sm2": 32},
}

// signOpts are a sign or verify request's choices, checked once.
type signOpts struct {
	hash      *hashAlg // nil: "none"
	hashName  string
	prehashed bool
	pss       bool
	salt      string // "auto", "hash" or a decimal count (PSS)
	jws       bool
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (e *Engine) signOptions(kt *keyType, hashName string, prehashed Bool, sigAlg, marshal, salt string) (*signOpts, *Error) {
	o := &signOpts{hashName: firstOf(hashName, "sha2-256"), prehashed: bool(prehashed), salt: firstOf(salt, "auto")}
	if o.hashName != "none" {
		o.hash = hashes[o.hashName]
		if o.hash == nil {
			return nil, badRequest("unsupported hash_algorithm %.40q (sha1, sha2-224/256/384/512, sha3-224/256/384/512, none)", o.hashName)
		}
	}
	switch marshal {
	case "", "asn1":
	case "jws":
		if kt.kind != kindECDSA && kt.kind != kindSM2 {
			return nil, badRequest("marshaling_algorithm jws applies only to ECDSA (and SM2) keys, not %s", kt.name)
		}
		o.jws = true
	default:
		return nil, badRequest("unsupported marshaling_algorithm %.40q (asn1, jws)", marshal)
	}
	switch kt.kind {
	case kindRSA:
		switch sigAlg {
		case "", "pss":
			o.pss = true
			if o.hash == nil {
				return nil, badRequest("hash_algorithm none requires signature_algorithm pkcs1v15")
			}
			if o.salt != "auto" && o.salt != "hash" {
				if n, err := strconv.Atoi(o.salt); err != nil || n < 0 {
					return nil, badRequest("invalid salt_length %.20q: auto, hash or a byte count", o.salt)
				}
			}
		case "pkcs1v15":
		default:
			return nil, badRequest("unsupported signature_algorithm %.40q (pss, pkcs1v15)", sigAlg)
		}
	case kindEdDSA:
		if o.prehashed {
			return nil, badRequest("ed25519 keys sign the message itself: prehashed is not supported")
		}
	case kindMLDSA:
		if o.prehashed && o.hash == nil {
			return nil, badRequest("prehashed ML-DSA (HashML-DSA) needs hash_algorithm to name the digest")
		}
	}
	return o, nil
}

// digest is what the signature covers: the input's hash, or the input
// itself when prehashed (checked against the hash's size) or "none".
func (o *signOpts) digest(input []byte) ([]byte, *Error) {
	if o.hash == nil {
		return input, nil
	}
	if o.prehashed {
		if len(input) != o.hash.h.Size() {
			return nil, badRequest("prehashed input of %d bytes is not a %s digest (%d bytes)", len(input), o.hashName, o.hash.h.Size())
		}
		return input, nil
	}
	h := o.hash.h.New()
	h.Write(input)
	return h.Sum(nil), nil
}

// pssSalts are the salt lengths to sign with (the first) or to accept.
// "auto" signs with the longest salt, as Go's and Vault's signers, and
// verifies either the longest or the hash-length salt (the two that
// signers use); a token verifies one salt length at a time.
func (o *signOpts) pssSalts(modBits int) []int {
	hLen := o.hash.h.Size()
	max := (modBits-1+7)/8 - hLen - 2
	switch o.salt {
	case "auto":
		return []int{max, hLen}
	case "hash":
		return []int{hLen}
	}
	n, _ := strconv.Atoi(o.salt)
	return []int{n}
}

func digestInfo(h *hashAlg, d []byte) []byte {
	b, _ := asn1.Marshal(struct {
		Alg    pkix.AlgorithmIdentifier
		Digest []byte
	}{pkix.AlgorithmIdentifier{Algorithm: h.oid, Parameters: asn1.NullRawValue}, d})
	return b
}

// mechFor is the signature mechanism and the data it signs.
func (o *signOpts) mechFor(kt *keyType, input []byte, salt int) (ck.Mechanism, []byte, *Error) {
	switch kt.kind {
	case kindECDSA:
		d, err := o.digest(input)
		return ck.Mechanism{Type: ck.CKM_ECDSA}, d, err
	case kindSM2:
		if o.prehashed {
			if len(input) != 32 {
				return ck.Mechanism{}, nil, badRequest("prehashed SM2 input of %d bytes is not the 32-byte e = SM3(Z||M)", len(input))
			}
			return ck.Mechanism{Type: kt.sign[1]}, input, nil
		}
		return ck.Mechanism{Type: kt.sign[0]}, input, nil
	case kindRSA:
		d, err := o.digest(input)
		if err != nil {
			return ck.Mechanism{}, nil, err
		}
		if o.pss {
			return ck.Mechanism{Type: ck.CKM_RSA_PKCS_PSS, Param: &ck.RSAPSSParams{HashAlg: o.hash.digest, MGF: o.hash.mgf, SaltLen: ck.ULong(salt)}}, d, nil
		}
		if o.hash == nil {
			return ck.Mechanism{Type: ck.CKM_RSA_PKCS}, input, nil
		}
		return ck.Mechanism{Type: ck.CKM_RSA_PKCS}, digestInfo(o.hash, d), nil
	case kindEdDSA:
		return ck.Mechanism{Type: ck.CKM_EDDSA}, input, nil
	case kindMLDSA:
		if o.prehashed {
			d, err := o.digest(input)
			return ck.Mechanism{Type: ck.CKM_HASH_ML_DSA, Param: &ck.HashSignAdditionalContext{Hash: o.hash.digest}}, d, err
		}
		return ck.Mechanism{Type: ck.CKM_ML_DSA}, input, nil
	}
	return ck.Mechanism{}, nil, badRequest("key type %s does not support signing", kt.name)
}

func modBits(kt *keyType) int { return kt.size }

// ecdsaSig is the ASN.1 form of an ECDSA (and SM2) signature.
type ecdsaSig struct{ R, S *big.Int }

func (e *Engine) encodeSig(kt *keyType, o *signOpts, raw []byte) string {
	if n := coordSize[kt.kind][kt.name]; n > 0 && !o.jws && len(raw) == 2*n {
		return enc64(derECDSASig(raw[:n], raw[n:]))
	}
	if o.jws {
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	return enc64(raw)
}

// derECDSASig is asn1.Marshal(ecdsaSig{r, s}) for the unsigned big-endian
// r and s, without big.Int or reflection: SEQUENCE { INTEGER r, INTEGER s }
// in DER (minimal, non-negative integers; a length over 127 in long form).
func derECDSASig(r, s []byte) []byte {
	trim := func(b []byte) (body []byte, pad int) {
		for len(b) > 0 && b[0] == 0 {
			b = b[1:]
		}
		if len(b) == 0 || b[0]&0x80 != 0 {
			return b, 1 // a leading zero byte (or the zero integer's one byte)
		}
		return b, 0
	}
	rb, rp := trim(r)
	sb, sp := trim(s)
	appendLen := func(dst []byte, n int) []byte {
		if n < 0x80 {
			return append(dst, byte(n))
		}
		return append(dst, 0x81, byte(n)) // n < 256 for every curve here
	}
	lenLen := func(n int) int {
		if n < 0x80 {
			return 1
		}
		return 2
	}
	ri, si := len(rb)+rp, len(sb)+sp
	body := 1 + lenLen(ri) + ri + 1 + lenLen(si) + si
	out := make([]byte, 0, 1+lenLen(body)+body)
	out = append(out, 0x30)
	out = appendLen(out, body)
	out = append(out, 0x02)
	out = appendLen(out, ri)
	if rp == 1 {
		out = append(out, 0)
	}
	out = append(out, rb...)
	out = append(out, 0x02)
	out = appendLen(out, si)
	if sp == 1 {
		out = append(out, 0)
	}
	return append(out, sb...)
}

// decodeSig is encodeSig's inverse: the token's raw form, or ok false for
// a signature that cannot be valid (which verifies as false).
func decodeSig(kt *keyType, o *signOpts, payload string) ([]byte, bool, *Error) {
	var raw []byte
	var err error
	if o.jws {
		raw, err = base64.RawURLEncoding.DecodeString(payload)
	} else {
		raw, err = base64.StdEncoding.DecodeString(payload)
	}
	if err != nil {
		return nil, false, badRequest("invalid signature: not valid base64 (%v)", err)
	}
	n := coordSize[kt.kind][kt.name]
	if n == 0 || o.jws {
		return raw, true, nil
	}
	var sig ecdsaSig
	if rest, err := asn1.Unmarshal(raw, &sig); err != nil || len(rest) != 0 || sig.R == nil || sig.S == nil ||
		sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 8*n || sig.S.BitLen() > 8*n {
		return nil, false, nil
	}
	out := make([]byte, 2*n)
	sig.R.FillBytes(out[:n])
	sig.S.FillBytes(out[n:])
	return out, true, nil
}

// signRing is the ring for sign or verify, with its type.
func (e *Engine) signRing(name string) (*ring, *keyType, error) {
	rg, err := e.ring(name)
	if err != nil {
		return nil, nil, inOp(err)
	}
	kt, kerr := e.keyType(rg.Type)
	if kerr != nil {
		return nil, nil, kerr
	}
	return rg, kt, nil
}

// Sign signs input (or each batch item) with the latest version (or
// key_version).
func (e *Engine) Sign(ctx context.Context, name string, r *SignRequest) (*SignResponse, error) {
	if r == nil {
		return nil, badRequest("empty request")
	}
	batch, berr := e.batchLen(len(r.BatchInput), r.BatchInput != nil)
	if berr != nil {
		return nil, berr
	}
	items := r.BatchInput
	if !batch {
		items = []SignItem{r.SignItem}
	}
	rg, kt, err := e.signRing(name)
	if err != nil {
		return nil, err
	}
	if !kt.supportsSigning {
		return nil, badRequest("key %q is of type %s, which does not support signing", name, kt.name)
	}
	o, oerr := e.signOptions(kt, firstOf(r.HashAlgorithm, r.Algorithm), r.Prehashed, r.SignatureAlgorithm, r.MarshalingAlgorithm, r.SaltLength)
	if oerr != nil {
		return nil, oerr
	}
	v, ver, verr := rg.versionFor(int(r.KeyVersion), "signing")
	if verr != nil {
		return nil, verr
	}
	salt := 0
	if o.pss {
		salt = o.pssSalts(modBits(kt))[0]
	}
	out := make([]SignResult, len(items))
	errs := e.runMany(ctx, len(items), func(i int, find finder, c *token.Call) error {
		in, ierr := b64("input", items[i].Input)
		if ierr != nil {
			return ierr
		}
		m, data, merr := o.mechFor(kt, in, salt)
		if merr != nil {
			return merr
		}
		h, err := object(find, ver, objKey)
		if err != nil {
			return err
		}
		*c = token.Call{Kind: token.CallSign, Mech: m, Key: h, In: data}
		return nil
	}, func(i int, c *token.Call) error {
		if c.Err != nil {
			return tokenErr(c.Err, "signing failed")
		}
		out[i] = SignResult{Signature: e.format(v, e.encodeSig(kt, o, c.Out)), KeyVersion: v}
		return nil
	}, false)
	if !batch {
		if errs[0] != nil {
			return nil, errs[0]
		}
		return &SignResponse{Batch: Batch{Items: 1, BatchStatus: http.StatusOK}, Signature: out[0].Signature, KeyVersion: v}, nil
	}
	for i := range out {
		out[i].Reference = items[i].Reference
		if errs[i] != nil {
			out[i] = SignResult{Reference: items[i].Reference, Error: errMsg(errs[i])}
		}
	}
	return &SignResponse{Batch: batchStatus(errs, r.PartialFailureResponseCode), BatchResults: out}, nil
}

// invalidSig says whether a token error is "this signature does not
// verify" (valid: false) rather than a failure.
func invalidSig(err error) bool {
	switch token.RV(err) {
	case ck.CKR_SIGNATURE_INVALID, ck.CKR_SIGNATURE_LEN_RANGE:
		return true
	}
	return false
}

// Verify checks a signature (from sign) or an HMAC (from hmac) of input,
// or of each batch item.
func (e *Engine) Verify(ctx context.Context, name string, r *VerifyRequest) (*VerifyResponse, error) {
	if r == nil {
		return nil, badRequest("empty request")
	}
	batch, berr := e.batchLen(len(r.BatchInput), r.BatchInput != nil)
	if berr != nil {
		return nil, berr
	}
	items := r.BatchInput
	if !batch {
		items = []VerifyItem{r.VerifyItem}
	}
	rg, kt, err := e.signRing(name)
	if err != nil {
		return nil, err
	}
	if rg, err = e.fresh(rg, func(y func(string) bool) {
		for i := range items {
			if !y(items[i].Signature) || !y(items[i].HMAC) {
				return
			}
		}
	}); err != nil {
		return nil, err
	}
	hashName := firstOf(r.HashAlgorithm, r.Algorithm)
	var o *signOpts
	if kt.supportsSigning {
		var oerr *Error
		if o, oerr = e.signOptions(kt, hashName, r.Prehashed, r.SignatureAlgorithm, r.MarshalingAlgorithm, r.SaltLength); oerr != nil {
			return nil, oerr
		}
	}
	out := make([]VerifyResult, len(items))
	errs := e.run(ctx, len(items), func(i int, s token.Session, find finder) error {
		it := &items[i]
		in, ierr := b64("input", it.Input)
		if ierr != nil {
			return ierr
		}
		var valid bool
		var err error
		switch {
		case it.Signature != "" && it.HMAC != "":
			return badRequest("give either signature or hmac, not both")
		case it.HMAC != "":
			valid, err = e.verifyHMAC(s, find, rg, kt, firstOf(hashName, "sha2-256"), in, it.HMAC)
		case it.Signature != "":
			if o == nil {
				return badRequest("key %q is of type %s, which does not support signing; verify its HMACs with hmac", name, kt.name)
			}
			valid, err = e.verifySig(s, find, rg, kt, o, in, it.Signature)
		default:
			return badRequest("missing signature or hmac to verify")
		}
		if err != nil {
			return err
		}
		out[i] = VerifyResult{Valid: valid}
		return nil
	})
	if !batch {
		if errs[0] != nil {
			return nil, errs[0]
		}
		return &VerifyResponse{Batch: Batch{Items: 1, BatchStatus: http.StatusOK}, Valid: out[0].Valid}, nil
	}
	for i := range out {
		out[i].Reference = items[i].Reference
		if errs[i] != nil {
			out[i] = VerifyResult{Reference: items[i].Reference, Error: errMsg(errs[i])}
		}
	}
	return &VerifyResponse{Batch: batchStatus(errs, r.PartialFailureResponseCode), BatchResults: out}, nil
}

func (e *Engine) verifySig(s token.Session, find finder, rg *ring, kt *keyType, o *signOpts, in []byte, sig string) (bool, error) {
	v, payload, perr := parseVersioned(e.prefix, sig, "signature")
	if perr != nil {
		return false, perr
	}
	ver, verr := rg.versionForOpen(v, "signature")
	if verr != nil {
		return false, verr
	}
	raw, ok, derr := decodeSig(kt, o, payload)
	if derr != nil {
		return false, derr
	}
	if !ok {
		return false, nil
	}
	h, err := object(find, ver, objPub)
	if err != nil {
		return false, err
	}
	salts := []int{0}
	if o.pss {
		salts = o.pssSalts(modBits(kt))
	}
	for _, salt := range salts {
		m, data, merr := o.mechFor(kt, in, salt)
		if merr != nil {
			return false, merr
		}
		err := s.Verify(m, h, data, raw)
		if err == nil {
			return true, nil
		}
		if !invalidSig(err) {
			return false, tokenErr(err, "verification failed")
		}
	}
	return false, nil
}

// hmacKey is the HMAC key object of a version: the key itself for the
// hmac type, its companion for the others.
func hmacKey(find finder, kt *keyType, ver *version) (ck.ObjectHandle, error) {
	if kt.kind == kindHMAC {
		return object(find, ver, objKey)
	}
	if !ver.HMAC {
		return 0, badRequest("this key version has no HMAC key")
	}
	return object(find, ver, objHMAC)
}

func (e *Engine) hmacMech(algo string) (ck.MechanismType, *Error) {
	if algo == "sm3" && e.types.sm3HMAC != 0 {
		return e.types.sm3HMAC, nil
	}
	h := hashes[algo]
	if h == nil {
		return 0, badRequest("unsupported algorithm %.40q for hmac (sha1, sha2-224/256/384/512, sha3-224/256/384/512, sm3)", algo)
	}
	return h.hmac, nil
}

func (e *Engine) verifyHMAC(s token.Session, find finder, rg *ring, kt *keyType, algo string, in []byte, mac string) (bool, error) {
	m, merr := e.hmacMech(algo)
	if merr != nil {
		return false, merr
	}
	v, payload, perr := parseVersioned(e.prefix, mac, "hmac")
	if perr != nil {
		return false, perr
	}
	ver, verr := rg.versionForOpen(v, "hmac")
	if verr != nil {
		return false, verr
	}
	raw, berr := b64("hmac", payload)
	if berr != nil {
		return false, berr
	}
	h, err := hmacKey(find, kt, ver)
	if err != nil {
		return false, err
	}
	// The token compares the MAC (in constant time); a wrong length is
	// simply not valid.
	if err := s.Verify(ck.Mechanism{Type: m}, h, in, raw); err != nil {
		if invalidSig(err) {
			return false, nil
		}
		return false, tokenErr(err, "hmac verification failed")
	}
	return true, nil
}

// HMAC computes the HMAC of input (or of each batch item) with the
// latest version's HMAC key (or key_version's).
func (e *Engine) HMAC(ctx context.Context, name string, r *HMACRequest) (*HMACResponse, error) {
	if r == nil {
		return nil, badRequest("empty request")
	}
	batch, berr := e.batchLen(len(r.BatchInput), r.BatchInput != nil)
	if berr != nil {
		return nil, berr
	}
	items := r.BatchInput
	if !batch {
		items = []HMACItem{r.HMACItem}
	}
	rg, kt, err := e.signRing(name)
	if err != nil {
		return nil, err
	}
	m, merr := e.hmacMech(firstOf(r.Algorithm, "sha2-256"))
	if merr != nil {
		return nil, merr
	}
	v, ver, verr := rg.versionFor(int(r.KeyVersion), "hmac")
	if verr != nil {
		return nil, verr
	}
	out := make([]HMACResult, len(items))
	errs := e.run(ctx, len(items), func(i int, s token.Session, find finder) error {
		in, ierr := b64("input", items[i].Input)
		if ierr != nil {
			return ierr
		}
		h, err := hmacKey(find, kt, ver)
		if err != nil {
			return err
		}
		mac, err := s.Sign(ck.Mechanism{Type: m}, h, in)
		if err != nil {
			return tokenErr(err, "hmac failed")
		}
		out[i] = HMACResult{HMAC: e.format64(v, mac)}
		return nil
	})
	if !batch {
		if errs[0] != nil {
			return nil, errs[0]
		}
		return &HMACResponse{Batch: Batch{Items: 1, BatchStatus: http.StatusOK}, HMAC: out[0].HMAC}, nil
	}
	for i := range out {
		out[i].Reference = items[i].Reference
		if errs[i] != nil {
			out[i] = HMACResult{Reference: items[i].Reference, Error: errMsg(errs[i])}
		}
	}
	return &HMACResponse{Batch: batchStatus(errs, r.PartialFailureResponseCode), BatchResults: out}, nil
}

// Random returns bytes from the token's generator (source is accepted
// for Vault's API; the token is the only source).
func (e *Engine) Random(ctx context.Context, r *RandomRequest) (*RandomResponse, error) {
	if r == nil {
		r = &RandomRequest{}
	}
	n := int(r.Bytes)
	if n == 0 {
		n = 32
	}
	if n < 0 || n > maxRandomBytes {
		return nil, badRequest("invalid bytes %d: 1 to %d", n, maxRandomBytes)
	}
	switch r.Source {
	case "", "platform", "seal", "all":
	default:
		return nil, badRequest("unsupported source %.20q (platform, seal, all)", r.Source)
	}
	format := firstOf(r.Format, "base64")
	if format != "base64" && format != "hex" {
		return nil, badRequest("unsupported format %.20q (base64, hex)", format)
	}
	buf := make([]byte, 0, n)
	err := e.ex.Do(ctx, func(s token.Session, _ finder) error {
		buf = buf[:0]
		for len(buf) < n {
			b, err := s.Random(min(n-len(buf), 64<<10))
			if err != nil {
				return err
			}
			buf = append(buf, b...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if format == "hex" {
		return &RandomResponse{RandomBytes: hex.EncodeToString(buf)}, nil
	}
	return &RandomResponse{RandomBytes: enc64(buf)}, nil
}
