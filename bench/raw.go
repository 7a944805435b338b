package bench

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm4"
)

// rawTarget runs every op on the Go libraries with no PKCS#11 in between:
// the floor under any module written in Go, and the yardstick for what the
// C ABI, sessions and object handling cost.
type rawTarget struct {
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	sm2    *sm2.PrivateKey
	pkcs1  []byte // signatures over signMsg / signDigest for the verify ops
	pss    []byte
	ecSig  []byte
	sm2Sig []byte
	k3     rawKeys3
}

func (*rawTarget) targetName() string { return RawName }
func (*rawTarget) close()             {}

func (r *rawTarget) prepare(op *Op) error {
	var err error
	switch op.Name {
	case "find-label":
		return skipf("no PKCS#11 object store in raw Go")
	case "rsa2048-pkcs1-sign", "rsa2048-pkcs1-verify", "rsa2048-pss-sign", "rsa2048-pss-verify":
		if r.rsa == nil {
			if r.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				return err
			}
			if r.pkcs1, err = rsa.SignPKCS1v15(rand.Reader, r.rsa, crypto.SHA256, signDigest[:]); err != nil {
				return err
			}
			r.pss, err = rsa.SignPSS(rand.Reader, r.rsa, crypto.SHA256, signDigest[:], &rsa.PSSOptions{SaltLength: 32})
		}
	case "ecdsa-p256-sign", "ecdsa-p256-verify", "ecdsa-p256-sha256-sign":
		if r.ec == nil {
			if r.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				return err
			}
			r.ecSig, err = ecdsa.SignASN1(rand.Reader, r.ec, signDigest[:])
		}
	case "sm2-sign", "sm2-verify":
		if r.sm2 == nil {
			if r.sm2, err = sm2.GenerateKey(rand.Reader); err != nil {
				return err
			}
			r.sm2Sig, err = r.sm2.Sign(rand.Reader, signMsg, sm2.DefaultSM2SignerOpts)
		}
	default:
		err = r.prepare3(op)
	}
	return err
}

// simple wraps an op whose check is "no error and the output passes ok".
func simple(run func() ([]byte, error), ok func([]byte) error) *worker {
	return &worker{
		do: func() error { _, err := run(); return err },
		check: func() error {
			out, err := run()
			if err != nil {
				return err
			}
			return ok(out)
		},
		close: func() {},
	}
}

func (r *rawTarget) newWorker(op *Op, idx int) (*worker, error) {
	switch op.Name {
	case "rsa2048-pkcs1-sign":
		return simple(func() ([]byte, error) {
			h := sha256.Sum256(signMsg)
			return rsa.SignPKCS1v15(nil, r.rsa, crypto.SHA256, h[:])
		}, func(sig []byte) error { return rsa.VerifyPKCS1v15(&r.rsa.PublicKey, crypto.SHA256, signDigest[:], sig) }), nil
	case "rsa2048-pss-sign":
		opts := &rsa.PSSOptions{SaltLength: 32}
		return simple(func() ([]byte, error) {
			h := sha256.Sum256(signMsg)
			return rsa.SignPSS(rand.Reader, r.rsa, crypto.SHA256, h[:], opts)
		}, func(sig []byte) error {
			return rsa.VerifyPSS(&r.rsa.PublicKey, crypto.SHA256, signDigest[:], sig, opts)
		}), nil
	case "rsa2048-pkcs1-verify":
		return rawVerifier(func(sig []byte) error {
			h := sha256.Sum256(signMsg)
			return rsa.VerifyPKCS1v15(&r.rsa.PublicKey, crypto.SHA256, h[:], sig)
		}, r.pkcs1), nil
	case "rsa2048-pss-verify":
		opts := &rsa.PSSOptions{SaltLength: 32}
		return rawVerifier(func(sig []byte) error {
			h := sha256.Sum256(signMsg)
			return rsa.VerifyPSS(&r.rsa.PublicKey, crypto.SHA256, h[:], sig, opts)
		}, r.pss), nil
	case "ecdsa-p256-sign", "ecdsa-p256-sha256-sign":
		hashed := op.Name == "ecdsa-p256-sha256-sign"
		return simple(func() ([]byte, error) {
			d := signDigest[:]
			if hashed {
				h := sha256.Sum256(signMsg)
				d = h[:]
			}
			return ecdsa.SignASN1(rand.Reader, r.ec, d)
		}, func(sig []byte) error { return okIf(ecdsa.VerifyASN1(&r.ec.PublicKey, signDigest[:], sig), "ECDSA") }), nil
	case "ecdsa-p256-verify":
		return rawVerifier(func(sig []byte) error {
			return okIf(ecdsa.VerifyASN1(&r.ec.PublicKey, signDigest[:], sig), "ECDSA")
		}, r.ecSig), nil
	case "sm2-sign":
		return simple(func() ([]byte, error) { return r.sm2.Sign(rand.Reader, signMsg, sm2.DefaultSM2SignerOpts) },
			func(sig []byte) error { return okIf(sm2.VerifyASN1WithSM2(&r.sm2.PublicKey, nil, signMsg, sig), "SM2") }), nil
	case "sm2-verify":
		return rawVerifier(func(sig []byte) error {
			return okIf(sm2.VerifyASN1WithSM2(&r.sm2.PublicKey, nil, signMsg, sig), "SM2")
		}, r.sm2Sig), nil
	case "aes256-gcm-enc-64", "aes256-gcm-enc-4k", "aes256-gcm-enc-1m":
		pt := fill(op.Bytes, byte(idx))
		var n uint64
		var iv []byte
		return simple(func() ([]byte, error) {
			// A key schedule per op, as every module's C_EncryptInit pays.
			blk, err := aes.NewCipher(aesKeyValue)
			if err != nil {
				return nil, err
			}
			g, err := cipher.NewGCM(blk)
			if err != nil {
				return nil, err
			}
			n++
			iv = gcmIV(idx, n)
			return g.Seal(nil, iv, pt, nil), nil
		}, func(ct []byte) error { return checkGCM(aesKeyValue, iv, pt, ct) }), nil
	case "aes256-cbc-enc-4k", "sm4-cbc-enc-4k":
		newBlock, key := aes.NewCipher, aesKeyValue
		if op.Name == "sm4-cbc-enc-4k" {
			newBlock, key = sm4.NewCipher, sm4KeyValue
		}
		pt, iv := fill(op.Bytes, byte(idx)), fill(16, 0x44)
		return simple(func() ([]byte, error) {
			blk, err := newBlock(key)
			if err != nil {
				return nil, err
			}
			ct := make([]byte, len(pt))
			cipher.NewCBCEncrypter(blk, iv).CryptBlocks(ct, pt)
			return ct, nil
		}, func(ct []byte) error { return checkCBC(newBlock, key, iv, pt, ct) }), nil
	case "sha256-1m":
		data := fill(op.Bytes, byte(idx))
		want := sha256.Sum256(data)
		return simple(func() ([]byte, error) { d := sha256.Sum256(data); return d[:], nil },
			func(d []byte) error { return okIf(string(d) == string(want[:]), "SHA-256") }), nil
	case "hmac-sha256-4k":
		data := fill(op.Bytes, byte(idx))
		mac := func() ([]byte, error) {
			h := hmac.New(sha256.New, hmacKeyValue)
			h.Write(data)
			return h.Sum(nil), nil
		}
		want, _ := mac()
		return simple(mac, func(m []byte) error { return okIf(hmac.Equal(m, want), "HMAC") }), nil
	case "random-32":
		var prev []byte
		return simple(func() ([]byte, error) {
			b := make([]byte, 32)
			_, err := rand.Read(b)
			return b, err
		}, func(b []byte) error {
			c := make([]byte, 32)
			_, _ = rand.Read(c)
			prev = c
			return checkRandom(b, prev)
		}), nil
	case "keygen-aes256":
		return simple(func() ([]byte, error) {
			b := make([]byte, 32)
			_, err := rand.Read(b)
			return b, err
		}, func(b []byte) error { return okIf(len(b) == 32, "AES key") }), nil
	case "keygen-ec-p256":
		return simple(func() ([]byte, error) {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, err
			}
			return k.PublicKey.Bytes()
		}, func(pt []byte) error { _, err := parseP256(pt); return err }), nil
	case "keygen-rsa2048":
		return simple(func() ([]byte, error) {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				return nil, err
			}
			return k.N.Bytes(), nil
		}, func(n []byte) error { return okIf(len(n) == 256, "RSA modulus") }), nil
	}
	if w, ok := r.newWorker3(op); ok {
		return w, nil
	}
	return nil, skipf("no raw Go implementation")
}

func okIf(ok bool, what string) error {
	if !ok {
		return errors.New(what + ": result does not check")
	}
	return nil
}

func rawVerifier(verify func([]byte) error, sig []byte) *worker {
	return &worker{
		do: func() error { return verify(sig) },
		check: func() error {
			if err := verify(sig); err != nil {
				return fmt.Errorf("good signature: %w", err)
			}
			bad := append([]byte(nil), sig...)
			bad[len(bad)/2] ^= 1
			if verify(bad) == nil {
				return errors.New("a tampered signature verified")
			}
			return nil
		},
		close: func() {},
	}
}
