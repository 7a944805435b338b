package bench

import (
	"bytes"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/miekg/pkcs11"
)

// The PKCS#11 3.x ops (Ed25519, ML-DSA-65, ML-KEM-768) on a module. Modules
// that do not list the mechanisms skip them (SoftHSMv2 2.6 has none).

// oidEd25519 is RFC 8410's id-Ed25519, one of the two CKA_EC_PARAMS forms
// PKCS#11 3.0 §2.3.5 allows for edwards25519 (the other is the curve name
// as a PrintableString).
var oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}

// mechFor3 lists the mechanisms of the 3.x ops; ok is false for other ops.
func mechFor3(name string) (codes []uint, ok bool) {
	if codes, ok := mechForRSABig(name); ok {
		return codes, true
	}
	switch name {
	case "ed25519-sign":
		return []uint{ckmECEdwardsKeyPairGen, ckmEdDSA}, true
	case "mldsa65-sign":
		return []uint{ckmMLDSAKeyPairGen, ckmMLDSA}, true
	case "mlkem768-encaps":
		return []uint{ckmMLKEMKeyPairGen, ckmMLKEM}, true
	}
	return nil, false
}

// prepare3 makes the keys of a 3.x op and, for the KEM, finds the 3.2
// function list.
func (pm *p11Module) prepare3(op *Op) error {
	if o, ok := rsaBigOps[op.Name]; ok {
		_, err := pm.keysFor(o.kind)
		return err
	}
	switch op.Name {
	case "ed25519-sign":
		_, err := pm.keysFor("ed25519")
		return err
	case "mldsa65-sign":
		_, err := pm.keysFor("mldsa65")
		return err
	case "mlkem768-encaps":
		if pm.kem == nil {
			k, err := openKEM(pm.path)
			if err != nil {
				return err
			}
			pm.kem = k
		}
		_, err := pm.keysFor("mlkem768")
		return err
	}
	return nil
}

// makeKeys3 generates the long-lived pair of a 3.x kind and checks it once.
func (pm *p11Module) makeKeys3(kind string, tok bool) (*p11Keys, error) {
	if k, ok, err := pm.makeKeysRSABig(kind, tok); ok {
		return k, err
	}
	ctx, sh := pm.ctx, pm.setup
	var gen uint
	var pubT, privT []*pkcs11.Attribute
	switch kind {
	case "ed25519":
		gen = ckmECEdwardsKeyPairGen
		pubT = []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, mustDER(oidEd25519))}
		privT = []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)}
	case "mldsa65":
		gen = ckmMLDSAKeyPairGen
		pubT = []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true), pkcs11.NewAttribute(ckaParameterSet, ckpMLDSA65)}
		privT = []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)}
	case "mlkem768":
		gen = ckmMLKEMKeyPairGen
		pubT = []*pkcs11.Attribute{pkcs11.NewAttribute(ckaEncapsulate, true), pkcs11.NewAttribute(ckaParameterSet, ckpMLKEM768)}
		privT = []*pkcs11.Attribute{pkcs11.NewAttribute(ckaDecapsulate, true)}
	default:
		return nil, fmt.Errorf("unknown key kind %q", kind)
	}
	pubT = append(pubT, pkcs11.NewAttribute(pkcs11.CKA_TOKEN, tok))
	privT = append(privT, pkcs11.NewAttribute(pkcs11.CKA_TOKEN, tok),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true))
	pub, priv, err := ctx.GenerateKeyPair(sh, mechOf(gen), pubT, privT)
	if err != nil {
		return nil, fmt.Errorf("C_GenerateKeyPair(%s): %w", kind, err)
	}
	k := &p11Keys{pub: pub, priv: priv}
	switch kind {
	case "ed25519":
		if k.edPub, err = pm.readEd25519Pub(sh, pub); err != nil {
			return nil, err
		}
		if k.sig, err = signOnce(ctx, sh, mechOf(ckmEdDSA), priv, signDigest[:]); err == nil {
			err = checkEd25519(k.edPub, k.sig)
		}
	case "mldsa65":
		if k.mldsaPub, err = pm.readMLDSA65Pub(sh, pub); err != nil {
			return nil, err
		}
		if k.sig, err = signOnce(ctx, sh, mechOf(ckmMLDSA), priv, signMsg); err == nil {
			err = checkMLDSA65(k.mldsaPub, k.sig)
		}
	case "mlkem768":
		// The encapsulation key must be a valid ML-KEM-768 key; the check
		// proper (both sides agree) runs per worker in checkMLKEM.
		var v []byte
		if v, err = pm.readValue(sh, pub); err == nil {
			_, err = mlkem768.Scheme().UnmarshalBinaryPublicKey(v)
		}
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (pm *p11Module) readValue(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle) ([]byte, error) {
	a, err := pm.ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("C_GetAttributeValue(CKA_VALUE): %w", err)
	}
	return a[0].Value, nil
}

func (pm *p11Module) readEd25519Pub(sh pkcs11.SessionHandle, pub pkcs11.ObjectHandle) (ed25519.PublicKey, error) {
	a, err := pm.ctx.GetAttributeValue(sh, pub, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, fmt.Errorf("C_GetAttributeValue(CKA_EC_POINT): %w", err)
	}
	// PKCS#11 3.0 §2.3.5: an Edwards CKA_EC_POINT is the RFC 8032 encoding
	// in a DER OCTET STRING; ecPoint also takes a bare one.
	pt := ecPoint(a[0].Value)
	if len(pt) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("Ed25519 CKA_EC_POINT: %d bytes, want %d", len(pt), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(pt), nil
}

func (pm *p11Module) readMLDSA65Pub(sh pkcs11.SessionHandle, pub pkcs11.ObjectHandle) (*mldsa65.PublicKey, error) {
	v, err := pm.readValue(sh, pub)
	if err != nil {
		return nil, err
	}
	var k mldsa65.PublicKey
	if err := k.UnmarshalBinary(v); err != nil {
		return nil, fmt.Errorf("ML-DSA-65 CKA_VALUE (%d bytes): %w", len(v), err)
	}
	return &k, nil
}

func checkEd25519(pub ed25519.PublicKey, sig []byte) error {
	if !ed25519.Verify(pub, signDigest[:], sig) {
		return errors.New("Ed25519 signature does not verify in Go")
	}
	return nil
}

func checkMLDSA65(pub *mldsa65.PublicKey, sig []byte) error {
	if !mldsa65.Verify(pub, signMsg, nil, sig) {
		return errors.New("ML-DSA-65 signature does not verify with circl")
	}
	return nil
}

// bind3 builds one worker of a 3.x op on session sh; ok is false for
// other ops.
func (pm *p11Module) bind3(op *Op, sh pkcs11.SessionHandle) (w *worker, ok bool, err error) {
	if w, ok, err := pm.bindRSABig(op, sh); ok {
		return w, true, err
	}
	ctx := pm.ctx
	switch op.Name {
	case "ed25519-sign", "mldsa65-sign":
		kind, code, data, check := "ed25519", uint(ckmEdDSA), signDigest[:], func(k *p11Keys, sig []byte) error { return checkEd25519(k.edPub, sig) }
		if op.Name == "mldsa65-sign" {
			kind, code, data, check = "mldsa65", ckmMLDSA, signMsg, func(k *p11Keys, sig []byte) error { return checkMLDSA65(k.mldsaPub, sig) }
		}
		k, err := pm.keysFor(kind)
		if err != nil {
			return nil, true, err
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
		}, true, nil
	case "mlkem768-encaps":
		w, err := pm.bindMLKEM(sh)
		return w, true, err
	}
	return nil, false, nil
}

// mlkemKeyTemplate is what each encapsulation makes: a session AES-256
// key from the 32-byte shared secret (3.2 §5.18.1: the template describes
// the secret key object C_EncapsulateKey creates).
func mlkemKeyTemplate(extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
	}, extra...)
}

// bindMLKEM times C_EncapsulateKey plus the C_DestroyObject of the key it
// made: the destroy keeps the session from filling with keys, and an
// application that uses the key once pays it too. The op's title says so.
func (pm *p11Module) bindMLKEM(sh pkcs11.SessionHandle) (*worker, error) {
	k, err := pm.keysFor("mlkem768")
	if err != nil {
		return nil, err
	}
	kem, ctx := pm.kem, pm.ctx
	tmpl := newCTemplate(mlkemKeyTemplate())
	ct := make([]byte, mlkem768.CiphertextSize)
	encaps := func() error {
		_, h, err := kem.encapsulate(sh, ckmMLKEM, k.pub, tmpl, ct)
		if err != nil {
			return err
		}
		if err := ctx.DestroyObject(sh, h); err != nil {
			return fmt.Errorf("C_DestroyObject(encapsulated key): %w", err)
		}
		return nil
	}
	return &worker{
		do: encaps,
		check: func() error {
			if err := encaps(); err != nil { // the timed template works
				return err
			}
			return pm.checkMLKEM(sh, k)
		},
		close: tmpl.free,
	}, nil
}

// checkMLKEM encapsulates and decapsulates on the token with extractable
// keys and compares the two key values: the ciphertext carries the secret
// the encapsulating side got.
func (pm *p11Module) checkMLKEM(sh pkcs11.SessionHandle, k *p11Keys) error {
	tmpl := newCTemplate(mlkemKeyTemplate(pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true)))
	defer tmpl.free()
	buf := make([]byte, mlkem768.CiphertextSize+64)
	ct, he, err := pm.kem.encapsulate(sh, ckmMLKEM, k.pub, tmpl, buf)
	if err != nil {
		return err
	}
	defer pm.ctx.DestroyObject(sh, he)
	if len(ct) != mlkem768.CiphertextSize {
		return fmt.Errorf("ML-KEM-768 ciphertext of %d bytes, want %d", len(ct), mlkem768.CiphertextSize)
	}
	hd, err := pm.kem.decapsulate(sh, ckmMLKEM, k.priv, tmpl, ct)
	if err != nil {
		return err
	}
	defer pm.ctx.DestroyObject(sh, hd)
	ve, err := pm.readValue(sh, he)
	if err != nil {
		return fmt.Errorf("encapsulated key: %w", err)
	}
	vd, err := pm.readValue(sh, hd)
	if err != nil {
		return fmt.Errorf("decapsulated key: %w", err)
	}
	defer clear(ve)
	defer clear(vd)
	if len(ve) != 32 || bytes.Equal(ve, make([]byte, 32)) {
		return fmt.Errorf("encapsulated AES key: %d bytes or all zero", len(ve))
	}
	if subtle.ConstantTimeCompare(ve, vd) != 1 {
		return errors.New("ML-KEM-768: encapsulated and decapsulated keys differ")
	}
	return nil
}
