package mech

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"math/big"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech/rsaz"
)

// rsaKeyPair makes a CKO_PRIVATE_KEY object (with CRT values) for priv.
func rsaKeyObject(t *testing.T, priv *rsa.PrivateKey) *Key {
	t.Helper()
	priv.Precompute()
	a := attr.Template{
		{Type: ck.CKA_MODULUS, Value: priv.N.Bytes()},
		{Type: ck.CKA_PUBLIC_EXPONENT, Value: big.NewInt(int64(priv.E)).Bytes()},
		{Type: ck.CKA_PRIVATE_EXPONENT, Value: priv.D.Bytes()},
		{Type: ck.CKA_PRIME_1, Value: priv.Primes[0].Bytes()},
		{Type: ck.CKA_PRIME_2, Value: priv.Primes[1].Bytes()},
		{Type: ck.CKA_EXPONENT_1, Value: priv.Precomputed.Dp.Bytes()},
		{Type: ck.CKA_EXPONENT_2, Value: priv.Precomputed.Dq.Bytes()},
		{Type: ck.CKA_COEFFICIENT, Value: priv.Precomputed.Qinv.Bytes()},
	}
	return keyOf(t, ck.CKK_RSA, ck.CKO_PRIVATE_KEY, a)
}

// TestRSAFastPath: with rsaz enabled the mechanisms take it, and what they
// produce is what crypto/rsa produces (PKCS #1 v1.5 is deterministic) or
// verifies with it (PSS), and OAEP decrypts what crypto/rsa encrypted and
// refuses what it should. With GOHSM_RSAZ=off the same assertions hold on
// the crypto/rsa path.
func TestRSAFastPath(t *testing.T) {
	for _, bits := range []int{1024, 2048, 3072, 4096} {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		k := rsaKeyObject(t, priv)
		mp, err := rsaPrivate(k)
		if err != nil {
			t.Fatal(err)
		}
		if got := rsaFast(mp) != nil; got != rsaz.Enabled() {
			t.Fatalf("%d bits: fast path %v, rsaz.Enabled() %v", bits, got, rsaz.Enabled())
		}
		if rsaFast(mp) != rsaFast(mp) {
			t.Fatal("rsaz key not cached")
		}
		msg := []byte("issue 15")
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512} {
			var m ck.MechanismType
			for _, e := range rsaHashMechs {
				if e.h == h {
					m = e.pkcs
				}
			}
			s, err := regMech(t, m).Sign(k, nil)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			d := h.New()
			d.Write(msg)
			want, _ := rsa.SignPKCS1v15(nil, priv, h, d.Sum(nil))
			if !bytes.Equal(sig, want) {
				t.Fatalf("%d bits %v: PKCS#1 v1.5 signature differs from crypto/rsa's", bits, h)
			}
		}
		// CKM_RSA_PKCS with a caller's DigestInfo, and PSS with and without salt.
		raw, err := regMech(t, ck.CKM_RSA_PKCS).Sign(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		dig := sha256.Sum256(msg)
		di := append(append([]byte(nil), pkcs1Prefix[crypto.SHA256]...), dig[:]...)
		sig, err := raw.Sign(di)
		if err != nil || rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, dig[:], sig) != nil {
			t.Fatalf("%d bits: CKM_RSA_PKCS: %v", bits, err)
		}
		for _, salt := range []int{0, 20, 32} {
			s, err := regMech(t, ck.CKM_SHA256_RSA_PKCS_PSS).Sign(k, ck.RSAPSSParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: ck.ULong(salt)})
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			opts := &rsa.PSSOptions{SaltLength: salt}
			if salt == 0 {
				opts.SaltLength = rsa.PSSSaltLengthAuto
			}
			if err := rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, dig[:], sig, opts); err != nil {
				t.Fatalf("%d bits: PSS salt %d: %v", bits, salt, err)
			}
		}
		// OAEP: labels, an empty message, the longest message, mixed MGF
		// hash, and tampered ciphertexts refused.
		for _, tc := range []struct {
			h, mgf ck.MechanismType
			g      ck.MGF
			hh     crypto.Hash
			mh     crypto.Hash
			label  []byte
			n      int
		}{
			{ck.CKM_SHA256, ck.CKM_SHA256, ck.CKG_MGF1_SHA256, crypto.SHA256, crypto.SHA256, nil, 32},
			{ck.CKM_SHA256, ck.CKM_SHA256, ck.CKG_MGF1_SHA256, crypto.SHA256, crypto.SHA256, []byte("label"), 0},
			{ck.CKM_SHA_1, ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, crypto.SHA1, crypto.SHA1, nil, priv.Size() - 2*sha1.Size - 2},
			{ck.CKM_SHA256, ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, crypto.SHA256, crypto.SHA1, []byte{0}, 5},
		} {
			pt := make([]byte, tc.n)
			rand.Read(pt)
			ct, err := rsa.EncryptOAEPWithOptions(rand.Reader, &priv.PublicKey, pt, &rsa.OAEPOptions{Hash: tc.hh, MGFHash: tc.mh, Label: tc.label})
			if err != nil {
				t.Fatal(err)
			}
			p := ck.RSAOAEPParams{HashAlg: tc.h, MGF: tc.g, Source: ck.CKZ_DATA_SPECIFIED, SourceData: tc.label}
			c, err := regMech(t, ck.CKM_RSA_PKCS_OAEP).Decrypt(k, p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.OneShot(nil, ct)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%d bits: OAEP %v/%v: %v", bits, tc.hh, tc.mh, err)
			}
			for _, i := range []int{0, 1, len(ct) / 2, len(ct) - 1} {
				bad := append([]byte(nil), ct...)
				bad[i] ^= 0x40
				if out, err := c.OneShot(nil, bad); err == nil {
					t.Fatalf("%d bits: OAEP accepted a ciphertext changed at byte %d (%x)", bits, i, out)
				}
			}
			wrong := p
			wrong.SourceData = append([]byte("x"), tc.label...)
			c2, _ := regMech(t, ck.CKM_RSA_PKCS_OAEP).Decrypt(k, wrong)
			if _, err := c2.OneShot(nil, ct); err == nil {
				t.Fatalf("%d bits: OAEP accepted the wrong label", bits)
			}
		}
		// CKM_RSA_X_509 decrypt: raw c^d.
		x, err := regMech(t, ck.CKM_RSA_X_509).Decrypt(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := new(big.Int).Sub(priv.N, big.NewInt(1))
		got, err := x.OneShot(nil, c.FillBytes(make([]byte, priv.Size())))
		if err != nil || new(big.Int).SetBytes(got).Cmp(new(big.Int).Exp(c, priv.D, priv.N)) != 0 {
			t.Fatalf("%d bits: X.509 decrypt of n-1: %v", bits, err)
		}
		if _, err := x.OneShot(nil, priv.N.Bytes()); err == nil {
			t.Fatalf("%d bits: X.509 decrypt accepted n", bits)
		}
	}
}
