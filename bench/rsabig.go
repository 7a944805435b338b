package bench

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// The RSA ops of issue 15 (hsm/mech/rsaz, docs/rsaz.md): signatures with
// the bigger moduli, whose CRT halves are 1536 and 2048 bits, and OAEP
// decryption with RSA-2048. Each kind has its own key pair, generated on
// the token once.

// rsaBigOps: name -> modulus bits and whether it decrypts (OAEP).
var rsaBigOps = map[string]struct {
	bits int
	oaep bool
	kind string
}{
	"rsa3072-pkcs1-sign": {3072, false, "rsa3072"},
	"rsa4096-pkcs1-sign": {4096, false, "rsa4096"},
	"rsa2048-oaep-dec":   {2048, true, "rsa2048-oaep"},
	"rsa2048-x509-dec":   {2048, true, "rsa2048-oaep"},
}

// rawPrivate: CKM_RSA_X_509 decryption is the bare private-key operation
// (c^d mod n, no padding), the figure to set beside openssl speed rsa2048.
func rawPrivate(name string) bool { return name == "rsa2048-x509-dec" }

// oaepMsg is what the OAEP op decrypts: a 32-byte key, as in key
// transport. OAEP uses SHA-1 and MGF1-SHA-1 because SoftHSMv2 2.6 takes no
// other hash (CKR_ARGUMENTS_BAD); the hash is a small part of the cost.
var oaepMsg = bytes.Repeat([]byte{0x5a}, 32)

func oaepMech() []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP,
		pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}
}

func mechForRSABig(name string) ([]uint, bool) {
	o, ok := rsaBigOps[name]
	if !ok {
		return nil, false
	}
	switch {
	case rawPrivate(name):
		return []uint{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11.CKM_RSA_X_509, pkcs11.CKM_RSA_PKCS_OAEP}, true
	case o.oaep:
		return []uint{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11.CKM_RSA_PKCS_OAEP}, true
	}
	return []uint{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11.CKM_SHA256_RSA_PKCS}, true
}

// makeKeysRSABig generates the pair of kind and checks it once: a
// signature verified in Go, or a Go OAEP ciphertext decrypted on the token.
func (pm *p11Module) makeKeysRSABig(kind string, tok bool) (*p11Keys, bool, error) {
	var bits int
	oaep := false
	for _, o := range rsaBigOps {
		if o.kind == kind {
			bits, oaep = o.bits, o.oaep
		}
	}
	if bits == 0 {
		return nil, false, nil
	}
	ctx, sh := pm.ctx, pm.setup
	use := uint(pkcs11.CKA_VERIFY)
	puse := uint(pkcs11.CKA_SIGN)
	if oaep {
		use, puse = pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT
	}
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, tok),
		pkcs11.NewAttribute(use, true),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, bits),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, tok),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(puse, true),
	}
	pub, priv, err := ctx.GenerateKeyPair(sh, mechOf(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN), pubT, privT)
	if err != nil {
		return nil, true, fmt.Errorf("C_GenerateKeyPair(RSA-%d): %w", bits, err)
	}
	a, err := ctx.GetAttributeValue(sh, pub, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
	if err != nil {
		return nil, true, fmt.Errorf("C_GetAttributeValue(CKA_MODULUS): %w", err)
	}
	n, e := new(big.Int).SetBytes(a[0].Value), new(big.Int).SetBytes(a[1].Value)
	if n.BitLen() != bits || !e.IsInt64() {
		return nil, true, fmt.Errorf("RSA public key: modulus of %d bits, want %d", n.BitLen(), bits)
	}
	k := &p11Keys{pub: pub, priv: priv, rsaPub: &rsa.PublicKey{N: n, E: int(e.Int64())}}
	if oaep {
		if k.sig, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, k.rsaPub, oaepMsg, nil); err == nil {
			err = checkOAEP(ctx, sh, k)
		}
	} else if k.sig, err = signOnce(ctx, sh, mechOf(pkcs11.CKM_SHA256_RSA_PKCS), priv, signMsg); err == nil {
		err = rsa.VerifyPKCS1v15(k.rsaPub, crypto.SHA256, signDigest[:], k.sig)
	}
	if err != nil {
		return nil, true, err
	}
	return k, true, nil
}

func decryptOnce(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, key pkcs11.ObjectHandle, ct []byte) ([]byte, error) {
	if err := ctx.DecryptInit(sh, m, key); err != nil {
		return nil, fmt.Errorf("C_DecryptInit: %w", err)
	}
	pt, err := ctx.Decrypt(sh, ct)
	if err != nil {
		return nil, fmt.Errorf("C_Decrypt: %w", err)
	}
	return pt, nil
}

func checkOAEP(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, k *p11Keys) error {
	pt, err := decryptOnce(ctx, sh, oaepMech(), k.priv, k.sig)
	if err != nil {
		return err
	}
	if !bytes.Equal(pt, oaepMsg) {
		return errors.New("RSA-OAEP: decrypted message differs from what Go encrypted")
	}
	return nil
}

func (pm *p11Module) bindRSABig(op *Op, sh pkcs11.SessionHandle) (*worker, bool, error) {
	o, ok := rsaBigOps[op.Name]
	if !ok {
		return nil, false, nil
	}
	ctx := pm.ctx
	k, err := pm.keysFor(o.kind)
	if err != nil {
		return nil, true, err
	}
	if rawPrivate(op.Name) {
		m := mechOf(pkcs11.CKM_RSA_X_509)
		return &worker{
			do: func() error { _, err := decryptOnce(ctx, sh, m, k.priv, k.sig); return err },
			check: func() error {
				out, err := decryptOnce(ctx, sh, m, k.priv, k.sig)
				if err != nil {
					return err
				}
				x := new(big.Int).Exp(new(big.Int).SetBytes(out), big.NewInt(int64(k.rsaPub.E)), k.rsaPub.N)
				return okIf(len(out) == k.rsaPub.Size() && bytes.Equal(x.FillBytes(make([]byte, len(k.sig))), k.sig), "RSA raw private (out^e = in)")
			},
		}, true, nil
	}
	if o.oaep {
		m := oaepMech()
		return &worker{
			do:    func() error { _, err := decryptOnce(ctx, sh, m, k.priv, k.sig); return err },
			check: func() error { return checkOAEP(ctx, sh, k) },
		}, true, nil
	}
	m := mechOf(pkcs11.CKM_SHA256_RSA_PKCS)
	return &worker{
		do: func() error { _, err := signOnce(ctx, sh, m, k.priv, signMsg); return err },
		check: func() error {
			sig, err := signOnce(ctx, sh, m, k.priv, signMsg)
			if err != nil {
				return err
			}
			return rsa.VerifyPKCS1v15(k.rsaPub, crypto.SHA256, signDigest[:], sig)
		},
	}, true, nil
}

// rawRSABig is the raw target's side: crypto/rsa, as gohsm used before
// issue 15 (and still does with GOHSM_RSAZ=off).
type rawRSABig struct {
	keys map[string]*rsa.PrivateKey
	ct   []byte
}

func (r *rawRSABig) prepare(op *Op) (bool, error) {
	o, ok := rsaBigOps[op.Name]
	if !ok {
		return false, nil
	}
	if r.keys == nil {
		r.keys = map[string]*rsa.PrivateKey{}
	}
	if r.keys[o.kind] == nil {
		k, err := rsa.GenerateKey(rand.Reader, o.bits)
		if err != nil {
			return true, err
		}
		r.keys[o.kind] = k
		if o.oaep {
			if r.ct, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, &k.PublicKey, oaepMsg, nil); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

func (r *rawRSABig) newWorker(op *Op) (*worker, bool) {
	o, ok := rsaBigOps[op.Name]
	if !ok {
		return nil, false
	}
	k := r.keys[o.kind]
	if rawPrivate(op.Name) {
		// crypto/rsa has no raw private-key operation; math/big's CRT is
		// what gohsm's CKM_RSA_X_509 used before issue 15 (less its
		// blinding).
		c := new(big.Int).SetBytes(r.ct)
		p, q, pc := k.Primes[0], k.Primes[1], k.Precomputed
		return simple(func() ([]byte, error) {
			m1 := new(big.Int).Exp(new(big.Int).Mod(c, p), pc.Dp, p)
			m2 := new(big.Int).Exp(new(big.Int).Mod(c, q), pc.Dq, q)
			m1.Sub(m1, m2).Mul(m1, pc.Qinv).Mod(m1, p)
			return m1.Mul(m1, q).Add(m1, m2).FillBytes(make([]byte, k.Size())), nil
		}, func(out []byte) error {
			x := new(big.Int).Exp(new(big.Int).SetBytes(out), big.NewInt(int64(k.E)), k.N)
			return okIf(x.Cmp(c) == 0, "RSA raw private (out^e = in)")
		}), true
	}
	if o.oaep {
		return simple(func() ([]byte, error) {
			return rsa.DecryptOAEP(sha1.New(), nil, k, r.ct, nil)
		}, func(pt []byte) error { return okIf(bytes.Equal(pt, oaepMsg), "RSA-OAEP plaintext") }), true
	}
	return simple(func() ([]byte, error) {
		h := sha256.Sum256(signMsg)
		return rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	}, func(sig []byte) error { return rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, signDigest[:], sig) }), true
}
