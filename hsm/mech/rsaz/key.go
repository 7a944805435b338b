package rsaz

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"math/bits"
	"sync"
)

var (
	// ErrUnsupported: the key is not one this package handles (not two
	// primes, no CRT values, sizes beyond the kernels, or no IFMA); the
	// caller uses crypto/rsa.
	ErrUnsupported = errors.New("rsaz: key not supported")
	// ErrDecryption: the input is not below the modulus.
	ErrDecryption = errors.New("rsaz: input out of range")
	// ErrFault: the result failed the check against the public key, so
	// it was withheld (a computational fault, or an inconsistent key).
	ErrFault = errors.New("rsaz: result failed the public-key check")
)

// PrivateKey is an RSA private key prepared for the IFMA kernels. It is
// immutable after NewPrivateKey and safe for concurrent use; every
// operation brings its own scratch memory (from a pool, zeroised on
// return).
type PrivateKey struct {
	n     []byte // modulus, big-endian, k bytes
	k     int
	e     int
	crt   *modX2 // lane 0: p, lane 1: q
	ebits int
	dexp  [2][]uint64 // dP, dQ: little-endian words
	qinv  []uint64    // [2][s]: lane 0 is qInv (< p)
	qw    []uint64    // q as little-endian words
	pw    int         // words in p and q
	nmod  *modX2      // N in both lanes, for blinding and the public check
	nlimb []uint64    // N in limbs of nmod's shape
	pairs sync.Pool   // *blindPair
}

// blindPair is one base-blinding pair in nmod's layout, in the Montgomery
// domain: lane 0 is r^e*R mod N, lane 1 is r^-1*R mod N, for a random r.
// Each use squares both (r becomes r^2), so that a pair is never used
// twice and a new one (with its inversion) is needed only when the pool
// is empty.
type blindPair struct{ v []uint64 }

// newBlindPair draws r and computes its pair with math/big: the inversion
// and r^e are variable time, but r is fresh, independent of the key and of
// the input, and this runs once per pool miss, not once per operation.
func (k *PrivateKey) newBlindPair() *blindPair {
	md := k.nmod
	s, l := md.sh.s, md.sh.l
	N := new(big.Int).SetBytes(k.n)
	R := new(big.Int).Lsh(big.NewInt(1), uint(limbBits*l))
	for {
		r, err := rand.Int(rand.Reader, N)
		if err != nil {
			panic("rsaz: crypto/rand: " + err.Error())
		}
		rinv := new(big.Int).ModInverse(r, N)
		if r.Sign() == 0 || rinv == nil {
			continue
		}
		re := new(big.Int).Exp(r, big.NewInt(int64(k.e)), N)
		bp := &blindPair{v: alignedWords(2 * s)}
		bigToLimbs(bp.v[:l], re.Mul(re, R).Mod(re, N))
		bigToLimbs(bp.v[s:s+l], rinv.Mul(rinv, R).Mod(rinv, N))
		r.SetInt64(0)
		rinv.SetInt64(0)
		re.SetInt64(0)
		return bp
	}
}

// NewPrivateKey prepares priv, which must be a validated two-prime key
// with its CRT values (rsa.PrivateKey.Precompute). The set-up uses
// math/big once per key (R^2, R^3 mod p and q); every operation after it
// runs in constant time.
func NewPrivateKey(priv *rsa.PrivateKey) (*PrivateKey, error) {
	if !Supported() || len(priv.Primes) != 2 || priv.Precomputed.Dp == nil ||
		priv.Precomputed.Dq == nil || priv.Precomputed.Qinv == nil {
		return nil, ErrUnsupported
	}
	p, q := priv.Primes[0], priv.Primes[1]
	pbits := max(p.BitLen(), q.BitLen())
	sh := shapeFor(pbits)
	nsh := shapeFor(priv.N.BitLen())
	if sh == nil || nsh == nil || nsh.l > 2*sh.l || priv.E < 3 || priv.N.Bit(0) == 0 || p.Bit(0) == 0 || q.Bit(0) == 0 ||
		priv.Precomputed.Dp.BitLen() > pbits || priv.Precomputed.Dq.BitLen() > pbits ||
		priv.Precomputed.Qinv.Cmp(p) >= 0 || new(big.Int).Mul(p, q).Cmp(priv.N) != 0 {
		return nil, ErrUnsupported
	}
	k := &PrivateKey{
		n:     priv.N.FillBytes(make([]byte, (priv.N.BitLen()+7)/8)),
		e:     priv.E,
		crt:   newModX2(sh, p, q),
		ebits: pbits,
		nmod:  newModX2(nsh, priv.N, priv.N),
	}
	k.k = len(k.n)
	ew := (((pbits+window-1)/window)*window + 63) / 64
	for t, d := range []*big.Int{priv.Precomputed.Dp, priv.Precomputed.Dq} {
		k.dexp[t] = make([]uint64, ew)
		bigToWords(k.dexp[t], d)
	}
	k.qinv = alignedWords(2 * sh.s)
	bigToLimbs(k.qinv[:sh.l], priv.Precomputed.Qinv)
	k.pw = (pbits + 63) / 64
	k.qw = make([]uint64, k.pw)
	bigToWords(k.qw, q)
	k.nlimb = make([]uint64, nsh.s)
	bigToLimbs(k.nlimb[:nsh.l], priv.N)
	return k, nil
}

func bigToWords(dst []uint64, x *big.Int) {
	clear64(dst)
	for i, w := range x.Bits() {
		if bits.UintSize == 64 {
			dst[i] = uint64(w)
		} else {
			dst[i/2] |= uint64(w) << (32 * (i % 2))
		}
	}
}

// Size is the modulus length in bytes.
func (k *PrivateKey) Size() int { return k.k }

// Destroy zeroises the private values. The key must not be used after.
func (k *PrivateKey) Destroy() {
	clear64(k.dexp[0])
	clear64(k.dexp[1])
	clear64(k.qinv)
	clear64(k.qw)
	clear64(k.crt.m)
	clear64(k.crt.rr)
	clear64(k.crt.rrr)
	clear64(k.crt.one)
	clear64(k.crt.n4)
}

// Private computes c^d mod N (the RSA decryption and signature
// primitive) for a big-endian c of exactly Size() bytes, below N, by CRT
// with both halves in the two lanes of the kernels, then checks the result
// against the public key (result^e = c mod N) before returning it.
// Constant time in the private values and in c.
func (k *PrivateKey) Private(c []byte) ([]byte, error) {
	if len(c) != k.k || bytes.Compare(c, k.n) >= 0 {
		return nil, ErrDecryption
	}
	bp, _ := k.pairs.Get().(*blindPair)
	if bp == nil {
		bp = k.newBlindPair()
	}
	res := k.private(c, bp)
	k.pairs.Put(bp)
	if !k.check(res, c) {
		clear(res)
		return nil, ErrFault
	}
	return res, nil
}

// private is c^d mod N, blinded with bp (which it advances), unchecked.
func (k *PrivateKey) private(c []byte, bp *blindPair) []byte {
	nm := k.nmod
	ns, nl := nm.sh.s, nm.sh.l
	nsc := getScratch(nm.sh)
	defer putScratch(nm.sh, nsc)
	// Blind: cb = c * r^e mod N (lane 0).
	bytesToLimbs(nsc.x[:nl], c)
	nm.amm(nsc.y, nsc.x, bp.v)
	condSub(nsc.y[:nl], k.nlimb, nl)

	md := k.crt
	sh := md.sh
	s, l := sh.s, sh.l
	sc := getScratch(sh)
	defer putScratch(sh, sc)

	// Base in both lanes, 2l limbs each.
	cl := make([]uint64, 2*l)
	copy(cl, nsc.y[:min(nl, 2*l)])
	md.toMont(sc.x, [2][]uint64{cl, cl}, sc)
	md.expX2(sc.acc, sc.x, k.dexp, k.ebits, sc)

	// m2 = acc_q / R mod q, fully reduced.
	md.amm(sc.x, sc.acc, md.lit1)
	m2 := sc.x[s : s+l]
	condSub(m2, md.m[s:s+l], l)
	// y_p = m2 * R mod p; d = m1*R - m2*R + 4p; h = d * qInv / R mod p.
	clear64(sc.y)
	copy(sc.y[:l], m2)
	md.amm(sc.y, sc.y, md.rr)
	clear64(sc.tmp)
	addSub(sc.tmp, sc.acc, md.n4, sc.y, l)
	md.amm(sc.tmp, sc.tmp, k.qinv)
	h := sc.tmp[:l]
	condSub(h, md.m[:l], l)

	// m = m2 + h*q, in 64-bit words.
	pw := k.pw
	buf := make([]byte, 8*pw)
	hw := make([]uint64, pw)
	out := make([]uint64, 2*pw)
	limbsToBytes(buf, h)
	bytesToWords(hw, buf)
	limbsToBytes(buf, m2)
	bytesToWords(out[:pw], buf)
	mulAdd(out, hw, k.qw)
	res := make([]byte, k.k)
	wordsToBytes(res, out)
	clear64(hw)
	clear64(out)
	clear(buf)
	clear64(cl)

	// Unblind: m = m' * r^-1 mod N (lane 1), then advance the pair.
	clear64(nsc.x)
	bytesToLimbs(nsc.x[ns:ns+nl], res)
	nm.amm(nsc.y, nsc.x, bp.v)
	condSub(nsc.y[ns:ns+nl], k.nlimb, nl)
	limbsToBytes(res, nsc.y[ns:ns+nl])
	nm.amm(bp.v, bp.v, bp.v)
	return res
}

// check reports whether m^e = c mod N. e is public, so its bits steer the
// square-and-multiply; m is handled in constant time (it is the secret
// plaintext when decrypting).
func (k *PrivateKey) check(m, c []byte) bool {
	md := k.nmod
	sh := md.sh
	s, l := sh.s, sh.l
	sc := getScratch(sh)
	defer putScratch(sh, sc)
	bytesToLimbs(sc.tmp[:l], m)
	copy(sc.tmp[s:s+l], sc.tmp[:l])
	md.amm(sc.y, sc.tmp, md.rr) // m*R
	copy(sc.acc, sc.y)
	for i := bits.Len(uint(k.e)) - 2; i >= 0; i-- {
		md.amm(sc.acc, sc.acc, sc.acc)
		if k.e>>i&1 == 1 {
			md.amm(sc.acc, sc.acc, sc.y)
		}
	}
	md.amm(sc.acc, sc.acc, md.lit1)
	condSub(sc.acc[:l], k.nlimb, l)
	bytesToLimbs(sc.x[:l], c)
	return equalLimbs(sc.acc, sc.x, l) == 1
}

func bytesToWords(dst []uint64, b []byte) {
	clear64(dst)
	for i := 0; i < len(b) && i/8 < len(dst); i++ {
		dst[i/8] |= uint64(b[len(b)-1-i]) << (8 * (i % 8))
	}
}

func wordsToBytes(dst []byte, w []uint64) {
	for i := range dst {
		var v uint64
		if i/8 < len(w) {
			v = w[i/8] >> (8 * (i % 8))
		}
		dst[len(dst)-1-i] = byte(v)
	}
}

// mulAdd sets out += a*b (out has len(a)+len(b) words, and the sum fits).
// Constant time: the loops depend only on the lengths.
func mulAdd(out, a, b []uint64) {
	for i := range a {
		var carry uint64
		for j := range b {
			hi, lo := bits.Mul64(a[i], b[j])
			var c uint64
			lo, c = bits.Add64(lo, out[i+j], 0)
			hi += c
			lo, c = bits.Add64(lo, carry, 0)
			hi += c
			out[i+j] = lo
			carry = hi
		}
		for j := i + len(b); j < len(out); j++ {
			var c uint64
			out[j], c = bits.Add64(out[j], carry, 0)
			carry = c
		}
	}
}
