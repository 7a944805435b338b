// Package shamir is Shamir's secret sharing over GF(2^8), byte by byte, as
// HashiCorp Vault's and OpenBao's shamir packages do it (both live inside
// their whole server modules, so gohsm has this small implementation
// instead of importing either).
//
// The field is GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 +
// x + 1 (FIPS 197 §4.2). A secret of n bytes and a threshold t make, for
// every byte, a polynomial of degree t-1 whose constant term is that byte
// and whose other coefficients are random; a share is the value of every
// polynomial at one non-zero x. The share layout is Vault's: the n values
// followed by the x coordinate (so len(share) = len(secret)+1), and Vault
// picks distinct random x as this package does. Any t shares give the
// secret back by Lagrange interpolation at 0; fewer give no information
// about it (every secret is equally consistent with t-1 shares).
//
// Field arithmetic is constant time: multiplication is a fixed
// 8-step shift-and-add with masks instead of branches or tables, and the
// inverse is a^254, so no share or secret byte selects a memory address or
// a branch. Tests: the field against FIPS 197's worked examples, the
// interpolation against Vault's tests, and properties (every t-subset of
// every split recovers the secret; t-1 shares are consistent with every
// secret; split with known coefficients gives the hand-computed shares).
package shamir

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// ShareOverhead is how much longer a share is than its secret: the x
// coordinate.
const ShareOverhead = 1

// mul multiplies in GF(2^8) mod x^8+x^4+x^3+x+1 in constant time.
func mul(a, b byte) byte {
	var p byte
	for i := 0; i < 8; i++ {
		p ^= -(b & 1) & a // add a when the low bit of b is set
		hi := -(a >> 7)   // 0xff when a's top bit is set
		a = (a << 1) ^ (hi & 0x1b)
		b >>= 1
	}
	return p
}

// inv is a^254 = a^-1 (0 for 0), by square-and-multiply with a fixed
// exponent, so in constant time.
func inv(a byte) byte {
	// 254 = 0b11111110
	r := byte(1)
	x := a
	for i := 0; i < 8; i++ {
		x2 := mul(x, x)
		if i > 0 {
			r = mul(r, x)
		}
		x = x2
	}
	return r
}

func div(a, b byte) byte { return mul(a, inv(b)) }

// eval evaluates the polynomial with coefficients c (c[0] the constant)
// at x, by Horner's rule.
func eval(c []byte, x byte) byte {
	var y byte
	for i := len(c) - 1; i >= 0; i-- {
		y = mul(y, x) ^ c[i]
	}
	return y
}

// Split splits secret into parts shares, any threshold of which recover
// it. 2 <= threshold <= parts <= 255.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	return split(rand.Reader, secret, parts, threshold)
}

func split(rnd io.Reader, secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, errors.New("shamir: empty secret")
	case threshold < 2:
		return nil, errors.New("shamir: threshold must be at least 2")
	case parts < threshold:
		return nil, errors.New("shamir: fewer parts than the threshold")
	case parts > 255:
		return nil, errors.New("shamir: at most 255 parts")
	}
	xs, err := distinctX(rnd, parts)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, parts)
	for i := range out {
		out[i] = make([]byte, len(secret)+1)
		out[i][len(secret)] = xs[i]
	}
	coef := make([]byte, threshold)
	defer clear(coef)
	for j, s := range secret {
		coef[0] = s
		if _, err := io.ReadFull(rnd, coef[1:]); err != nil {
			return nil, fmt.Errorf("shamir: random: %w", err)
		}
		for i := range out {
			out[i][j] = eval(coef, xs[i])
		}
	}
	return out, nil
}

// distinctX returns n distinct non-zero x coordinates in random order.
func distinctX(rnd io.Reader, n int) ([]byte, error) {
	perm := make([]byte, 255)
	for i := range perm {
		perm[i] = byte(i + 1)
	}
	var b [2]byte
	for i := len(perm) - 1; i > 0; i-- { // Fisher-Yates
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return nil, fmt.Errorf("shamir: random: %w", err)
		}
		// 65536 mod (i+1) bias is below 2^-7 for i < 255: the x
		// coordinates are public, their order matters to nobody.
		j := int(uint16(b[0])<<8|uint16(b[1])) % (i + 1)
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm[:n], nil
}

// Combine recovers the secret from at least threshold shares of one split.
// Shares of another split, too few shares, or a damaged share give a wrong
// secret, not an error: the caller checks the result (the device compares
// a commitment to its master key). Shares of unequal length, shorter than
// two bytes, or with a repeated or zero x are an error.
func Combine(shares [][]byte) ([]byte, error) {
	if len(shares) < 2 {
		return nil, errors.New("shamir: at least two shares are needed")
	}
	n := len(shares[0])
	if n < 2 {
		return nil, errors.New("shamir: share too short")
	}
	xs := make([]byte, len(shares))
	seen := map[byte]bool{}
	for i, s := range shares {
		if len(s) != n {
			return nil, errors.New("shamir: shares of different lengths")
		}
		x := s[n-1]
		if x == 0 || seen[x] {
			return nil, fmt.Errorf("shamir: share %d: x coordinate %d repeated or zero", i+1, x)
		}
		seen[x] = true
		xs[i] = x
	}
	// Lagrange basis values at 0: l_i = prod_{j != i} x_j / (x_j - x_i);
	// subtraction is xor in GF(2^8).
	l := make([]byte, len(xs))
	for i := range xs {
		li := byte(1)
		for j := range xs {
			if i != j {
				li = mul(li, div(xs[j], xs[j]^xs[i]))
			}
		}
		l[i] = li
	}
	secret := make([]byte, n-1)
	for k := range secret {
		var y byte
		for i, s := range shares {
			y ^= mul(l[i], s[k])
		}
		secret[k] = y
	}
	return secret, nil
}
