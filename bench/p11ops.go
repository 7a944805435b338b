package bench

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm4"
	"github.com/miekg/pkcs11"
)

// p11Keys are the long-lived keys of one kind, with what Go needs to check
// results: public keys, secret values, and one signature made at setup for
// the verify ops.
type p11Keys struct {
	priv, pub pkcs11.ObjectHandle // key pairs
	secret    pkcs11.ObjectHandle // secret keys
	rsaPub    *rsa.PublicKey
	ecPub     *ecdsa.PublicKey
	edPub     ed25519.PublicKey
	mldsaPub  *mldsa65.PublicKey
	sig       []byte // a checked signature over signMsg (or signDigest)
}

func (pm *p11Module) targetName() string { return pm.name }

// mechFor lists the mechanisms op needs, or a skip reason.
func (pm *p11Module) mechFor(op *Op) ([]uint, error) {
	switch op.Name {
	case "rsa2048-pkcs1-sign", "rsa2048-pkcs1-verify":
		return []uint{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11.CKM_SHA256_RSA_PKCS}, nil
	case "rsa2048-pss-sign", "rsa2048-pss-verify":
		return []uint{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11.CKM_SHA256_RSA_PKCS_PSS}, nil
	case "ecdsa-p256-sign", "ecdsa-p256-verify":
		return []uint{pkcs11.CKM_EC_KEY_PAIR_GEN, pkcs11.CKM_ECDSA}, nil
	case "ecdsa-p256-sha256-sign":
		return []uint{pkcs11.CKM_EC_KEY_PAIR_GEN, pkcs11.CKM_ECDSA_SHA256}, nil
	case "aes256-gcm-enc-64", "aes256-gcm-enc-4k", "aes256-gcm-enc-1m":
		return []uint{pkcs11.CKM_AES_GCM}, nil
	case "aes256-cbc-enc-4k":
		return []uint{pkcs11.CKM_AES_CBC}, nil
	case "sha256-1m":
		return []uint{pkcs11.CKM_SHA256}, nil
	case "hmac-sha256-4k":
		return []uint{pkcs11.CKM_SHA256_HMAC}, nil
	case "random-32", "find-label":
		return nil, nil
	case "keygen-aes256":
		return []uint{pkcs11.CKM_AES_KEY_GEN}, nil
	case "keygen-ec-p256":
		return []uint{pkcs11.CKM_EC_KEY_PAIR_GEN}, nil
	case "keygen-rsa2048":
		return []uint{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN}, nil
	case "sm2-sign", "sm2-verify":
		return pm.smCodes("CKM_SM2_KEY_PAIR_GEN", "CKM_SM3_SM2")
	case "sm4-cbc-enc-4k":
		return pm.smCodes("CKM_SM4_CBC")
	}
	if codes, ok := mechFor3(op.Name); ok {
		return codes, nil
	}
	return nil, fmt.Errorf("op %s: no module implementation", op.Name)
}

func (pm *p11Module) smCodes(names ...string) ([]uint, error) {
	var out []uint
	for _, n := range names {
		c, ok := pm.sm[n]
		if !ok {
			return nil, skipf("module does not list %s (docs/sm-codes.json)", n)
		}
		out = append(out, c)
	}
	return out, nil
}

func (pm *p11Module) prepare(op *Op) error {
	codes, err := pm.mechFor(op)
	if err != nil {
		return err
	}
	for _, c := range codes {
		if !pm.mechs[c] {
			return skipf("module does not list %s", mechName(c))
		}
	}
	switch op.Name {
	case "rsa2048-pkcs1-sign", "rsa2048-pkcs1-verify":
		_, err = pm.keysFor("rsa-pkcs1")
	case "rsa2048-pss-sign", "rsa2048-pss-verify":
		_, err = pm.keysFor("rsa-pss")
	case "ecdsa-p256-sign", "ecdsa-p256-verify", "ecdsa-p256-sha256-sign":
		_, err = pm.keysFor("ec")
	case "aes256-gcm-enc-64", "aes256-gcm-enc-4k", "aes256-gcm-enc-1m", "aes256-cbc-enc-4k":
		_, err = pm.keysFor("aes")
	case "hmac-sha256-4k":
		_, err = pm.keysFor("hmac")
	case "sm2-sign", "sm2-verify":
		_, err = pm.keysFor("sm2")
	case "sm4-cbc-enc-4k":
		_, err = pm.keysFor("sm4")
	default:
		err = pm.prepare3(op)
	}
	return err
}

// keysFor makes the keys of one kind on first use. RSA keys for PKCS#1 and
// PSS are one pair; "rsa-pkcs1"/"rsa-pss" differ only in the setup signature.
func (pm *p11Module) keysFor(kind string) (*p11Keys, error) {
	if k, ok := pm.keys[kind]; ok {
		return k, nil
	}
	k, err := pm.makeKeys(kind)
	if err != nil {
		return nil, fmt.Errorf("%s keys: %w", kind, err)
	}
	pm.keys[kind] = k
	return k, nil
}

func (pm *p11Module) makeKeys(kind string) (*p11Keys, error) {
	ctx, sh, tok := pm.ctx, pm.setup, !pm.sessionKey
	k := &p11Keys{}
	var err error
	secret := func(kt uint, v []byte, label string, usage ...*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
		t := append([]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, tok),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, v),
		}, usage...)
		h, err := ctx.CreateObject(sh, t)
		if err != nil {
			return 0, fmt.Errorf("C_CreateObject(%s): %w", label, err)
		}
		return h, nil
	}
	switch kind {
	case "aes":
		k.secret, err = secret(pkcs11.CKK_AES, aesKeyValue, "bench-aes",
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true))
	case "hmac":
		k.secret, err = secret(pkcs11.CKK_GENERIC_SECRET, hmacKeyValue, "bench-hmac",
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true))
	case "sm4":
		k.secret, err = secret(pm.sm["CKK_SM4"], sm4KeyValue, "bench-sm4",
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true))
	case "rsa-pkcs1", "rsa-pss":
		if other, ok := pm.keys[map[string]string{"rsa-pkcs1": "rsa-pss", "rsa-pss": "rsa-pkcs1"}[kind]]; ok {
			k.priv, k.pub, k.rsaPub = other.priv, other.pub, other.rsaPub
		} else if k.pub, k.priv, k.rsaPub, err = pm.genRSA(sh, tok); err != nil {
			return nil, err
		}
		mech, verify := pm.rsaSignMech(kind == "rsa-pss")
		if k.sig, err = signOnce(ctx, sh, mech, k.priv, signMsg); err == nil {
			err = verify(k.rsaPub, k.sig)
		}
	case "ec", "sm2":
		var gen uint
		var params []byte
		if kind == "ec" {
			gen, params = pkcs11.CKM_EC_KEY_PAIR_GEN, mustDER(oidP256)
		} else {
			gen, params = pm.sm["CKM_SM2_KEY_PAIR_GEN"], mustDER(oidSM2)
		}
		if k.pub, k.priv, k.ecPub, err = pm.genEC(sh, tok, gen, params, kind == "sm2"); err != nil {
			return nil, err
		}
		if kind == "ec" {
			if k.sig, err = signOnce(ctx, sh, mechOf(pkcs11.CKM_ECDSA), k.priv, signDigest[:]); err == nil {
				err = checkECDSA(k.ecPub, signDigest[:], k.sig)
			}
		} else {
			if k.sig, err = signOnce(ctx, sh, mechOf(pm.sm["CKM_SM3_SM2"]), k.priv, signMsg); err == nil {
				err = checkSM2(k.ecPub, signMsg, k.sig)
			}
		}
	default:
		return pm.makeKeys3(kind, tok)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

func mechOf(code uint) []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(code, nil)}
}

func (pm *p11Module) rsaSignMech(pss bool) ([]*pkcs11.Mechanism, func(*rsa.PublicKey, []byte) error) {
	if pss {
		p := pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, 32)
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_RSA_PKCS_PSS, p)}, func(pub *rsa.PublicKey, sig []byte) error {
			if err := rsa.VerifyPSS(pub, crypto.SHA256, signDigest[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
				return fmt.Errorf("RSA-PSS signature does not verify in Go: %w", err)
			}
			return nil
		}
	}
	return mechOf(pkcs11.CKM_SHA256_RSA_PKCS), func(pub *rsa.PublicKey, sig []byte) error {
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, signDigest[:], sig); err != nil {
			return fmt.Errorf("RSA PKCS#1 v1.5 signature does not verify in Go: %w", err)
		}
		return nil
	}
}

func (pm *p11Module) genRSA(sh pkcs11.SessionHandle, tok bool) (pub, priv pkcs11.ObjectHandle, key *rsa.PublicKey, err error) {
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, tok),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 2048),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, tok),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
	}
	pub, priv, err = pm.ctx.GenerateKeyPair(sh, mechOf(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN), pubT, privT)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("C_GenerateKeyPair(RSA-2048): %w", err)
	}
	key, err = pm.readRSAPub(sh, pub)
	return pub, priv, key, err
}

func (pm *p11Module) readRSAPub(sh pkcs11.SessionHandle, pub pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	a, err := pm.ctx.GetAttributeValue(sh, pub, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
	if err != nil {
		return nil, fmt.Errorf("C_GetAttributeValue(CKA_MODULUS): %w", err)
	}
	n := new(big.Int).SetBytes(a[0].Value)
	e := new(big.Int).SetBytes(a[1].Value)
	if n.BitLen() != 2048 || !e.IsInt64() {
		return nil, fmt.Errorf("RSA public key: modulus of %d bits, exponent %v", n.BitLen(), e)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func (pm *p11Module) genEC(sh pkcs11.SessionHandle, tok bool, gen uint, params []byte, isSM2 bool) (pub, priv pkcs11.ObjectHandle, key *ecdsa.PublicKey, err error) {
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, tok),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, tok),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
	}
	pub, priv, err = pm.ctx.GenerateKeyPair(sh, mechOf(gen), pubT, privT)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("C_GenerateKeyPair(0x%X): %w", gen, err)
	}
	key, err = pm.readECPub(sh, pub, isSM2)
	return pub, priv, key, err
}

func (pm *p11Module) readECPub(sh pkcs11.SessionHandle, pub pkcs11.ObjectHandle, isSM2 bool) (*ecdsa.PublicKey, error) {
	a, err := pm.ctx.GetAttributeValue(sh, pub, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, fmt.Errorf("C_GetAttributeValue(CKA_EC_POINT): %w", err)
	}
	pt := ecPoint(a[0].Value)
	if isSM2 {
		k, err := sm2.NewPublicKey(pt)
		if err != nil {
			return nil, fmt.Errorf("SM2 CKA_EC_POINT: %w", err)
		}
		return k, nil
	}
	return parseP256(pt)
}

// parseP256 checks the point is on the curve (crypto/ecdh does) and builds
// the ecdsa key.
func parseP256(pt []byte) (*ecdsa.PublicKey, error) {
	if _, err := ecdh.P256().NewPublicKey(pt); err != nil {
		return nil, fmt.Errorf("P-256 CKA_EC_POINT: %w", err)
	}
	return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(pt[1:33]), Y: new(big.Int).SetBytes(pt[33:])}, nil
}

func signOnce(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, key pkcs11.ObjectHandle, data []byte) ([]byte, error) {
	if err := ctx.SignInit(sh, m, key); err != nil {
		return nil, fmt.Errorf("C_SignInit: %w", err)
	}
	sig, err := ctx.Sign(sh, data)
	if err != nil {
		return nil, fmt.Errorf("C_Sign: %w", err)
	}
	return sig, nil
}

func verifyOnce(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, key pkcs11.ObjectHandle, data, sig []byte) error {
	if err := ctx.VerifyInit(sh, m, key); err != nil {
		return fmt.Errorf("C_VerifyInit: %w", err)
	}
	if err := ctx.Verify(sh, data, sig); err != nil {
		return fmt.Errorf("C_Verify: %w", err)
	}
	return nil
}

func checkECDSA(pub *ecdsa.PublicKey, digest, sig []byte) error {
	der, err := rsToDER(sig)
	if err != nil {
		return err
	}
	if len(sig) != 64 || !ecdsa.VerifyASN1(pub, digest, der) {
		return errors.New("ECDSA signature does not verify in Go")
	}
	return nil
}

func checkSM2(pub *ecdsa.PublicKey, msg, sig []byte) error {
	der, err := rsToDER(sig)
	if err != nil {
		return err
	}
	if len(sig) != 64 || !sm2.VerifyASN1WithSM2(pub, nil, msg, der) {
		return errors.New("SM2 signature does not verify in Go (default user ID)")
	}
	return nil
}

// checkVerifier proves a verify op is real: the good signature passes and a
// tampered one is rejected with CKR_SIGNATURE_INVALID (or _LEN_RANGE).
func checkVerifier(verify func(sig []byte) error, sig []byte) error {
	if err := verify(sig); err != nil {
		return fmt.Errorf("good signature: %w", err)
	}
	bad := bytes.Clone(sig)
	bad[len(bad)/2] ^= 0x01
	err := verify(bad)
	var rv pkcs11.Error
	if err == nil {
		return errors.New("a tampered signature verified")
	}
	if errors.As(err, &rv) && rv != pkcs11.CKR_SIGNATURE_INVALID && rv != pkcs11.CKR_SIGNATURE_LEN_RANGE {
		return fmt.Errorf("tampered signature: want CKR_SIGNATURE_INVALID, got %w", err)
	}
	return nil
}

func (pm *p11Module) newWorker(op *Op, idx int) (*worker, error) {
	sh, err := pm.openSession()
	if err != nil {
		return nil, err
	}
	w, err := pm.bind(op, sh, idx)
	if err != nil {
		_ = pm.ctx.CloseSession(sh)
		return nil, err
	}
	// Closing the session also destroys the session objects keygen made.
	inner := w.close
	w.close = func() {
		_ = pm.ctx.CloseSession(sh)
		if inner != nil {
			inner()
		}
	}
	return w, nil
}

// bind builds one worker's op on session sh.
func (pm *p11Module) bind(op *Op, sh pkcs11.SessionHandle, idx int) (*worker, error) {
	ctx := pm.ctx
	switch op.Name {
	case "rsa2048-pkcs1-sign", "rsa2048-pss-sign":
		pss := op.Name == "rsa2048-pss-sign"
		k, err := pm.keysFor(map[bool]string{false: "rsa-pkcs1", true: "rsa-pss"}[pss])
		if err != nil {
			return nil, err
		}
		m, verify := pm.rsaSignMech(pss)
		return &worker{
			do: func() error { _, err := signOnce(ctx, sh, m, k.priv, signMsg); return err },
			check: func() error {
				sig, err := signOnce(ctx, sh, m, k.priv, signMsg)
				if err != nil {
					return err
				}
				return verify(k.rsaPub, sig)
			},
		}, nil
	case "rsa2048-pkcs1-verify", "rsa2048-pss-verify":
		pss := op.Name == "rsa2048-pss-verify"
		k, err := pm.keysFor(map[bool]string{false: "rsa-pkcs1", true: "rsa-pss"}[pss])
		if err != nil {
			return nil, err
		}
		m, _ := pm.rsaSignMech(pss)
		v := func(sig []byte) error { return verifyOnce(ctx, sh, m, k.pub, signMsg, sig) }
		return &worker{do: func() error { return v(k.sig) }, check: func() error { return checkVerifier(v, k.sig) }}, nil
	case "ecdsa-p256-sign", "ecdsa-p256-sha256-sign", "sm2-sign":
		kind, code, data := "ec", uint(pkcs11.CKM_ECDSA), signDigest[:]
		check := func(k *p11Keys, sig []byte) error { return checkECDSA(k.ecPub, signDigest[:], sig) }
		switch op.Name {
		case "ecdsa-p256-sha256-sign":
			code, data = pkcs11.CKM_ECDSA_SHA256, signMsg
		case "sm2-sign":
			kind, code, data = "sm2", pm.sm["CKM_SM3_SM2"], signMsg
			check = func(k *p11Keys, sig []byte) error { return checkSM2(k.ecPub, signMsg, sig) }
		}
		k, err := pm.keysFor(kind)
		if err != nil {
			return nil, err
		}
		m := mechOf(code)
		return &worker{
			do: func() error { _, err := signOnce(ctx, sh, m, k.priv, data); return err },
			check: func() error {
				sig, err := signOnce(ctx, sh, m, k.priv, data)
				if err != nil {
					return err
				}
				return check(k, sig)
			},
		}, nil
	case "ecdsa-p256-verify", "sm2-verify":
		kind, code, data := "ec", uint(pkcs11.CKM_ECDSA), signDigest[:]
		if op.Name == "sm2-verify" {
			kind, code, data = "sm2", pm.sm["CKM_SM3_SM2"], signMsg
		}
		k, err := pm.keysFor(kind)
		if err != nil {
			return nil, err
		}
		m := mechOf(code)
		v := func(sig []byte) error { return verifyOnce(ctx, sh, m, k.pub, data, sig) }
		return &worker{do: func() error { return v(k.sig) }, check: func() error { return checkVerifier(v, k.sig) }}, nil
	case "aes256-gcm-enc-64", "aes256-gcm-enc-4k", "aes256-gcm-enc-1m":
		k, err := pm.keysFor("aes")
		if err != nil {
			return nil, err
		}
		pt := fill(op.Bytes, byte(idx))
		var n uint64
		enc := func() ([]byte, []byte, error) {
			n++
			iv := gcmIV(idx, n)
			p := pkcs11.NewGCMParams(iv, nil, 128)
			defer p.Free()
			if err := ctx.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, p)}, k.secret); err != nil {
				return nil, nil, fmt.Errorf("C_EncryptInit(AES-GCM): %w", err)
			}
			ct, err := ctx.Encrypt(sh, pt)
			if err != nil {
				return nil, nil, fmt.Errorf("C_Encrypt(AES-GCM): %w", err)
			}
			return iv, ct, nil
		}
		return &worker{
			do: func() error { _, _, err := enc(); return err },
			check: func() error {
				iv, ct, err := enc()
				if err != nil {
					return err
				}
				return checkGCM(aesKeyValue, iv, pt, ct)
			},
		}, nil
	case "aes256-cbc-enc-4k", "sm4-cbc-enc-4k":
		kind, code, newBlock, value := "aes", uint(pkcs11.CKM_AES_CBC), aes.NewCipher, aesKeyValue
		if op.Name == "sm4-cbc-enc-4k" {
			kind, code, newBlock, value = "sm4", pm.sm["CKM_SM4_CBC"], sm4.NewCipher, sm4KeyValue
		}
		k, err := pm.keysFor(kind)
		if err != nil {
			return nil, err
		}
		pt, iv := fill(op.Bytes, byte(idx)), fill(16, 0x44)
		m := []*pkcs11.Mechanism{pkcs11.NewMechanism(code, iv)}
		enc := func() ([]byte, error) {
			if err := ctx.EncryptInit(sh, m, k.secret); err != nil {
				return nil, fmt.Errorf("C_EncryptInit(CBC): %w", err)
			}
			ct, err := ctx.Encrypt(sh, pt)
			if err != nil {
				return nil, fmt.Errorf("C_Encrypt(CBC): %w", err)
			}
			return ct, nil
		}
		return &worker{
			do: func() error { _, err := enc(); return err },
			check: func() error {
				ct, err := enc()
				if err != nil {
					return err
				}
				return checkCBC(newBlock, value, iv, pt, ct)
			},
		}, nil
	case "sha256-1m":
		data := fill(op.Bytes, byte(idx))
		m := mechOf(pkcs11.CKM_SHA256)
		dig := func() ([]byte, error) {
			if err := ctx.DigestInit(sh, m); err != nil {
				return nil, fmt.Errorf("C_DigestInit: %w", err)
			}
			d, err := ctx.Digest(sh, data)
			if err != nil {
				return nil, fmt.Errorf("C_Digest: %w", err)
			}
			return d, nil
		}
		return &worker{
			do: func() error { _, err := dig(); return err },
			check: func() error {
				d, err := dig()
				if err != nil {
					return err
				}
				if want := sha256.Sum256(data); !bytes.Equal(d, want[:]) {
					return errors.New("SHA-256 digest differs from Go's")
				}
				return nil
			},
		}, nil
	case "hmac-sha256-4k":
		k, err := pm.keysFor("hmac")
		if err != nil {
			return nil, err
		}
		data := fill(op.Bytes, byte(idx))
		m := mechOf(pkcs11.CKM_SHA256_HMAC)
		return &worker{
			do: func() error { _, err := signOnce(ctx, sh, m, k.secret, data); return err },
			check: func() error {
				mac, err := signOnce(ctx, sh, m, k.secret, data)
				if err != nil {
					return err
				}
				h := hmac.New(sha256.New, hmacKeyValue)
				h.Write(data)
				if !hmac.Equal(mac, h.Sum(nil)) {
					return errors.New("HMAC-SHA256 differs from Go's")
				}
				return nil
			},
		}, nil
	case "random-32":
		rnd := func() ([]byte, error) {
			r, err := ctx.GenerateRandom(sh, 32)
			if err != nil {
				return nil, fmt.Errorf("C_GenerateRandom: %w", err)
			}
			return r, nil
		}
		return &worker{
			do: func() error { _, err := rnd(); return err },
			check: func() error {
				a, err := rnd()
				if err != nil {
					return err
				}
				c, err := rnd()
				if err != nil {
					return err
				}
				return checkRandom(a, c)
			},
		}, nil
	case "keygen-aes256":
		t := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		}
		m := mechOf(pkcs11.CKM_AES_KEY_GEN)
		gen := func() (pkcs11.ObjectHandle, error) {
			h, err := ctx.GenerateKey(sh, m, t)
			if err != nil {
				return 0, fmt.Errorf("C_GenerateKey(AES-256): %w", err)
			}
			return h, nil
		}
		return &worker{
			do: func() error { _, err := gen(); return err },
			check: func() error {
				h, err := gen()
				if err != nil {
					return err
				}
				a, err := ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil)})
				if err != nil {
					return fmt.Errorf("C_GetAttributeValue(CKA_VALUE_LEN): %w", err)
				}
				if v, err := ulong(a[0].Value); err != nil || v != 32 {
					return fmt.Errorf("generated AES key: CKA_VALUE_LEN %d (%v), want 32", v, err)
				}
				return nil
			},
		}, nil
	case "keygen-ec-p256":
		m := mechOf(pkcs11.CKM_EC_KEY_PAIR_GEN)
		return &worker{
			do: func() error { _, _, _, err := pm.genECSession(sh, m); return err },
			check: func() error {
				pub, _, _, err := pm.genECSession(sh, m)
				if err != nil {
					return err
				}
				_, err = pm.readECPub(sh, pub, false)
				return err
			},
		}, nil
	case "keygen-rsa2048":
		return &worker{
			do: func() error { _, _, _, err := pm.genRSA(sh, false); return err },
			check: func() error {
				// genRSA reads the public key back and checks its size.
				_, _, _, err := pm.genRSA(sh, false)
				return err
			},
		}, nil
	case "find-label":
		if err := pm.makeFindObjects(op); err != nil {
			return nil, err
		}
		n := pm.findReady
		i := idx * 7919 // workers start at different labels
		find := func() ([]pkcs11.ObjectHandle, string, error) {
			i++
			label := findLabel(i % n)
			if err := ctx.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
				return nil, label, fmt.Errorf("C_FindObjectsInit: %w", err)
			}
			hs, _, err := ctx.FindObjects(sh, 4)
			if ferr := ctx.FindObjectsFinal(sh); err == nil && ferr != nil {
				err = ferr
			}
			if err != nil {
				return nil, label, fmt.Errorf("C_FindObjects: %w", err)
			}
			if len(hs) != 1 {
				return nil, label, fmt.Errorf("C_FindObjects(%s): %d objects, want 1", label, len(hs))
			}
			return hs, label, nil
		}
		return &worker{
			do: func() error { _, _, err := find(); return err },
			check: func() error {
				hs, label, err := find()
				if err != nil {
					return err
				}
				a, err := ctx.GetAttributeValue(sh, hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
				if err != nil {
					return fmt.Errorf("C_GetAttributeValue(CKA_LABEL): %w", err)
				}
				if string(a[0].Value) != label {
					return fmt.Errorf("found %q looking for %q", a[0].Value, label)
				}
				return nil
			},
		}, nil
	}
	if w, ok, err := pm.bind3(op, sh); ok {
		return w, err
	}
	return nil, fmt.Errorf("op %s: no module implementation", op.Name)
}

func (pm *p11Module) genECSession(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism) (pub, priv pkcs11.ObjectHandle, key *ecdsa.PublicKey, err error) {
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, mustDER(oidP256)),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
	}
	pub, priv, err = pm.ctx.GenerateKeyPair(sh, m, pubT, privT)
	if err != nil {
		err = fmt.Errorf("C_GenerateKeyPair(EC P-256): %w", err)
	}
	return pub, priv, nil, err
}

func findLabel(i int) string { return fmt.Sprintf("bench-find-%05d", i) }

// makeFindObjects creates the session data objects C_FindObjects searches,
// once, in the setup session (visible to every session of the process).
func (pm *p11Module) makeFindObjects(op *Op) error {
	for pm.findReady < findCount {
		t := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, findLabel(pm.findReady)),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("x")),
		}
		if _, err := pm.ctx.CreateObject(pm.setup, t); err != nil {
			return fmt.Errorf("C_CreateObject(find object %d): %w", pm.findReady, err)
		}
		pm.findReady++
	}
	return nil
}

// findCount is set from Config.FindObjects at the start of a run.
var findCount = 10000

func ulong(b []byte) (uint64, error) {
	if len(b) != 8 && len(b) != 4 {
		return 0, fmt.Errorf("CK_ULONG of %d bytes", len(b))
	}
	var v uint64
	for i := len(b) - 1; i >= 0; i-- { // little-endian host
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

func checkGCM(key, iv, pt, ct []byte) error {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return err
	}
	got, err := g.Open(nil, iv, ct, nil)
	if err != nil || !bytes.Equal(got, pt) {
		return fmt.Errorf("AES-GCM ciphertext does not open in Go (%v)", err)
	}
	return nil
}

func checkCBC(newBlock func([]byte) (cipher.Block, error), key, iv, pt, ct []byte) error {
	blk, err := newBlock(key)
	if err != nil {
		return err
	}
	want := make([]byte, len(pt))
	cipher.NewCBCEncrypter(blk, iv).CryptBlocks(want, pt)
	if !bytes.Equal(ct, want) {
		return errors.New("CBC ciphertext differs from Go's")
	}
	return nil
}

func checkRandom(a, c []byte) error {
	if len(a) != 32 || len(c) != 32 {
		return fmt.Errorf("random: %d and %d bytes, want 32", len(a), len(c))
	}
	if bytes.Equal(a, c) || bytes.Equal(a, make([]byte, 32)) {
		return errors.New("random: two outputs equal or all zero")
	}
	return nil
}

// mechName names the standard mechanisms the ops use, for skip messages.
func mechName(c uint) string {
	n := map[uint]string{
		pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN: "CKM_RSA_PKCS_KEY_PAIR_GEN", pkcs11.CKM_SHA256_RSA_PKCS: "CKM_SHA256_RSA_PKCS",
		pkcs11.CKM_SHA256_RSA_PKCS_PSS: "CKM_SHA256_RSA_PKCS_PSS", pkcs11.CKM_EC_KEY_PAIR_GEN: "CKM_EC_KEY_PAIR_GEN",
		pkcs11.CKM_ECDSA: "CKM_ECDSA", pkcs11.CKM_ECDSA_SHA256: "CKM_ECDSA_SHA256", pkcs11.CKM_AES_GCM: "CKM_AES_GCM",
		pkcs11.CKM_AES_CBC: "CKM_AES_CBC", pkcs11.CKM_SHA256: "CKM_SHA256", pkcs11.CKM_SHA256_HMAC: "CKM_SHA256_HMAC",
		pkcs11.CKM_AES_KEY_GEN: "CKM_AES_KEY_GEN",
		ckmECEdwardsKeyPairGen: "CKM_EC_EDWARDS_KEY_PAIR_GEN", ckmEdDSA: "CKM_EDDSA",
		ckmMLDSAKeyPairGen: "CKM_ML_DSA_KEY_PAIR_GEN", ckmMLDSA: "CKM_ML_DSA",
		ckmMLKEMKeyPairGen: "CKM_ML_KEM_KEY_PAIR_GEN", ckmMLKEM: "CKM_ML_KEM",
	}[c]
	if n == "" {
		return fmt.Sprintf("mechanism 0x%X", c)
	}
	return n
}
