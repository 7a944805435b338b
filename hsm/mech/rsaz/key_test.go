package rsaz

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"
)

func TestPrivateMatchesCryptoRSA(t *testing.T) {
	if !Supported() {
		t.Skip("no AVX-512 IFMA")
	}
	for _, bits := range []int{1024, 2048, 3072, 4096} {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		k, err := NewPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			c, _ := rand.Int(rand.Reader, priv.N)
			cb := c.FillBytes(make([]byte, k.Size()))
			got, err := k.Private(cb)
			if err != nil {
				t.Fatalf("%d: %v", bits, err)
			}
			want := new(big.Int).Exp(c, priv.D, priv.N)
			if new(big.Int).SetBytes(got).Cmp(want) != 0 {
				t.Fatalf("%d bits: wrong result", bits)
			}
		}
	}
}

// TestFaultWithheld: a computation that goes wrong (here a flipped bit in
// the CRT exponent, as a fault would do) is caught by the public-key
// check and nothing leaves.
func TestFaultWithheld(t *testing.T) {
	if !Supported() {
		t.Skip("no AVX-512 IFMA")
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c := big.NewInt(12345).FillBytes(make([]byte, priv.Size()))
	for _, fault := range []func(k *PrivateKey){
		func(k *PrivateKey) { k.dexp[0][3] ^= 1 << 7 },
		func(k *PrivateKey) { k.dexp[1][0] ^= 1 },
		func(k *PrivateKey) { k.qinv[5] ^= 1 },
		func(k *PrivateKey) { k.qw[2] ^= 1 << 40 },
	} {
		k, err := NewPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Private(c); err != nil {
			t.Fatal(err)
		}
		fault(k)
		if out, err := k.Private(c); err != ErrFault || out != nil {
			t.Fatalf("faulty result not withheld: %v, %x", err, out)
		}
	}
}

func TestInputsAndKeysRefused(t *testing.T) {
	if !Supported() {
		t.Skip("no AVX-512 IFMA")
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]byte{priv.N.Bytes(), make([]byte, 255), make([]byte, 257),
		new(big.Int).Add(priv.N, big.NewInt(1)).Bytes(), bytes.Repeat([]byte{0xff}, 256)} {
		if _, err := k.Private(c); err != ErrDecryption {
			t.Fatalf("input of %d bytes: %v, want ErrDecryption", len(c), err)
		}
	}
	noCRT := &rsa.PrivateKey{PublicKey: priv.PublicKey, D: priv.D}
	three, err := rsa.GenerateMultiPrimeKey(rand.Reader, 3, 2048) //nolint:staticcheck // the refusal is the point
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]*rsa.PrivateKey{"no primes": noCRT, "three primes": three} {
		if _, err := NewPrivateKey(key); err != ErrUnsupported {
			t.Fatalf("%s: %v, want ErrUnsupported", name, err)
		}
	}
	// Primes too big for the largest kernel (RSA-8192's halves).
	p := new(big.Int).Lsh(big.NewInt(1), 4100)
	p.Add(p, big.NewInt(1))
	big8k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, p), E: 65537}, D: big.NewInt(3),
		Primes: []*big.Int{p, p}}
	big8k.Precomputed.Dp, big8k.Precomputed.Dq, big8k.Precomputed.Qinv = big.NewInt(3), big.NewInt(3), big.NewInt(1)
	if _, err := NewPrivateKey(big8k); err != ErrUnsupported {
		t.Fatalf("8200-bit key: %v, want ErrUnsupported", err)
	}
}

// TestBlinding: the base is blinded with a pair (r^e, r^-1) that each
// operation advances to (r^2e, r^-2), so no pair is used twice, and the
// result is right through the blinding.
func TestBlinding(t *testing.T) {
	if !Supported() {
		t.Skip("no AVX-512 IFMA")
	}
	for _, bits := range []int{1024, 2048, 3072} {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		k, err := NewPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		nm := k.nmod
		s, l := nm.sh.s, nm.sh.l
		R := new(big.Int).Lsh(big.NewInt(1), uint(limbBits*l))
		Rinv := new(big.Int).ModInverse(R, priv.N)
		e := big.NewInt(int64(priv.E))
		plain := func(bp *blindPair, lane int) *big.Int {
			x := limbsToBig(bp.v[lane*s : lane*s+l])
			return x.Mul(x, Rinv).Mod(x, priv.N)
		}
		bp := k.newBlindPair()
		for i := 0; i < 4; i++ {
			re, rinv := plain(bp, 0), plain(bp, 1)
			// r^e * (r^-1)^e = 1 mod N: the pair is consistent.
			if one := new(big.Int).Mul(re, new(big.Int).Exp(rinv, e, priv.N)); one.Mod(one, priv.N).Cmp(big.NewInt(1)) != 0 {
				t.Fatalf("%d bits, use %d: inconsistent blinding pair", bits, i)
			}
			c, _ := rand.Int(rand.Reader, priv.N)
			got := k.private(c.FillBytes(make([]byte, k.Size())), bp)
			if new(big.Int).SetBytes(got).Cmp(new(big.Int).Exp(c, priv.D, priv.N)) != 0 {
				t.Fatalf("%d bits, use %d: wrong result", bits, i)
			}
			if sq := new(big.Int).Mul(re, re); plain(bp, 0).Cmp(sq.Mod(sq, priv.N)) != 0 {
				t.Fatalf("%d bits, use %d: the pair did not advance to r^2e", bits, i)
			}
		}
	}
}
