package mech

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"

	"github.com/gohsm/gohsm/hsm/ck"
)

// rsaExponent reads CKA_PUBLIC_EXPONENT from a key generation template;
// absent means 65537, the only exponent Go's own generator makes.
func rsaExponent(v []byte, present bool) (int, error) {
	if !present {
		return 65537, nil
	}
	e := new(big.Int).SetBytes(v)
	// An even or tiny exponent has no inverse or no security; Go's RSA
	// code handles exponents that fit in 31 bits.
	if e.Bit(0) == 0 || e.Cmp(big.NewInt(3)) < 0 || e.BitLen() > 31 {
		return 0, fmt.Errorf("rsa key gen: public exponent %x: %w", v, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return int(e.Int64()), nil
}

// generateRSAKey makes a key of exactly bits bits. For e = 65537 it is
// Go's generator; for other exponents (PKCS#11 lets the caller choose, and
// suites such as miekg/pkcs11's ask for e = 3) it draws primes with
// crypto/rand.Prime until gcd(e, (p-1)(q-1)) = 1, then validates the key
// with Go's own checks.
func generateRSAKey(bits, e int) (*rsa.PrivateKey, error) {
	if e == 65537 {
		return rsa.GenerateKey(rand.Reader, bits)
	}
	one := big.NewInt(1)
	E := big.NewInt(int64(e))
	for {
		p, err := rand.Prime(rand.Reader, bits-bits/2)
		if err != nil {
			return nil, err
		}
		q, err := rand.Prime(rand.Reader, bits/2)
		if err != nil {
			return nil, err
		}
		if p.Cmp(q) == 0 {
			continue
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != bits {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(E, phi)
		if d == nil {
			continue
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: e}, D: d, Primes: []*big.Int{p, q}}
		if err := k.Validate(); err != nil {
			return nil, err
		}
		k.Precompute()
		return k, nil
	}
}
