package rsaz

import (
	"math/big"
	"math/bits"
	"sync"
	"unsafe"
)

const (
	limbBits = 52
	limbMask = 1<<limbBits - 1
	window   = 5
	tableLen = 1 << window
)

// shape is one kernel size: l limbs of 52 bits, numbers of s words (s is
// a multiple of 8 and s > l), and the x2 almost-Montgomery multiplication
// amm(r, a, b, m): r_t = a_t*b_t/2^(52l) mod n_t for t = 0, 1, where
// r_t < a_t*b_t/2^(52l) + n_t (so r_t < 2n_t whenever a_t, b_t < 4n_t and
// 16n_t < 2^(52l)).
type shape struct {
	l, s int
	amm  func(r, a, b, m *uint64)
}

// maxBits is the largest modulus a shape takes: 16n < 2^(52l) leaves every
// product of two values below 4n reducing to below 2n.
func (sh *shape) maxBits() int { return limbBits*sh.l - 5 }

// shapeFor is the smallest shape whose kernel takes a modulus of the
// given bit length, or nil.
func shapeFor(bits int) *shape {
	for i := range shapes {
		if bits <= shapes[i].maxBits() {
			return &shapes[i]
		}
	}
	return nil
}

// alignedWords returns n zeroed words starting on a 64-byte boundary, so
// that no 512-bit load in the kernels splits a cache line.
func alignedWords(n int) []uint64 {
	b := make([]uint64, n+8)
	off := int((64 - uintptr(unsafe.Pointer(&b[0]))%64) % 64 / 8)
	return b[off : off+n : off+n]
}

// modX2 is a pair of odd moduli (lane 0 and lane 1) in the layout the
// kernels read: n [2][s], n one limb up [2][s], k0 [2] = -n^-1 mod 2^52,
// and the Montgomery constants. Immutable once built.
type modX2 struct {
	sh   *shape
	m    []uint64 // the kernel's modulus block
	bits int      // max bit length of the two moduli (public)
	rr   []uint64 // [2][s]: R^2 mod n_t, R = 2^(52l)
	rrr  []uint64 // [2][s]: R^3 mod n_t
	one  []uint64 // [2][s]: R mod n_t (1 in the Montgomery domain)
	n4   []uint64 // [2][s]: 4n_t
	lit1 []uint64 // [2][s]: the integer 1
}

func newModX2(sh *shape, n0, n1 *big.Int) *modX2 {
	s := sh.s
	md := &modX2{sh: sh, m: alignedWords(4*s + 2), bits: max(n0.BitLen(), n1.BitLen())}
	md.rr, md.rrr, md.one, md.n4, md.lit1 = alignedWords(2*s), alignedWords(2*s), alignedWords(2*s), alignedWords(2*s), alignedWords(2*s)
	R := new(big.Int).Lsh(big.NewInt(1), uint(limbBits*sh.l))
	for t, n := range []*big.Int{n0, n1} {
		bigToLimbs(md.m[t*s:t*s+sh.l], n)
		copy(md.m[2*s+t*s+1:2*s+t*s+sh.l+1], md.m[t*s:t*s+sh.l])
		md.m[4*s+t] = -inv64(md.m[t*s]) & limbMask
		r := new(big.Int).Mod(R, n)
		bigToLimbs(md.one[t*s:t*s+sh.l], r)
		r.Mul(r, R).Mod(r, n)
		bigToLimbs(md.rr[t*s:t*s+sh.l], r)
		r.Mul(r, R).Mod(r, n)
		bigToLimbs(md.rrr[t*s:t*s+sh.l], r)
		bigToLimbs(md.n4[t*s:t*s+sh.l], new(big.Int).Lsh(n, 2))
		md.lit1[t*s] = 1
		r.SetInt64(0)
	}
	return md
}

// inv64 is x^-1 mod 2^64 for odd x (Newton's iteration).
func inv64(x uint64) uint64 {
	y := x // correct to 3 bits
	for i := 0; i < 5; i++ {
		y *= 2 - x*y
	}
	return y
}

func (md *modX2) amm(r, a, b []uint64) {
	_, _, _ = r[2*md.sh.s-1], a[2*md.sh.s-1], b[2*md.sh.s-1]
	md.sh.amm(&r[0], &a[0], &b[0], &md.m[0])
}

// bigToLimbs writes x in 52-bit limbs (x must fit). Only for public
// values and for key set-up.
func bigToLimbs(dst []uint64, x *big.Int) {
	for i := range dst {
		dst[i] = 0
	}
	for i, w := range x.Bits() {
		for b := 0; b < bits.UintSize; b++ {
			pos := i*bits.UintSize + b
			if pos/limbBits < len(dst) {
				dst[pos/limbBits] |= uint64((w>>b)&1) << (pos % limbBits)
			}
		}
	}
}

// bytesToLimbs writes the big-endian b into dst, 52 bits a limb, zero
// above; the work depends only on the lengths.
func bytesToLimbs(dst []uint64, b []byte) {
	for i := range dst {
		dst[i] = 0
	}
	for i := 0; i < len(b); i++ {
		v := uint64(b[len(b)-1-i])
		pos := 8 * i
		j, o := pos/limbBits, pos%limbBits
		if j < len(dst) {
			dst[j] |= (v << o) & limbMask
		}
		if o > limbBits-8 && j+1 < len(dst) {
			dst[j+1] |= v >> (limbBits - o)
		}
	}
}

// limbsToBytes writes normalised limbs big-endian into dst (all of it);
// the work depends only on the lengths.
func limbsToBytes(dst []byte, src []uint64) {
	for i := 0; i < len(dst); i++ {
		pos := 8 * i
		j, o := pos/limbBits, pos%limbBits
		var v uint64
		if j < len(src) {
			v = src[j] >> o
		}
		if o > limbBits-8 && j+1 < len(src) {
			v |= src[j+1] << (limbBits - o)
		}
		dst[len(dst)-1-i] = byte(v)
	}
}

// addSub sets dst = a + b - c over l limbs, normalised, for a result
// known to be non-negative and below 2^(52l). Constant time.
func addSub(dst, a, b, c []uint64, l int) {
	var carry int64
	for j := 0; j < l; j++ {
		t := int64(a[j]) + int64(b[j]) - int64(c[j]) + carry
		dst[j] = uint64(t) & limbMask
		carry = t >> limbBits
	}
}

// add sets dst = a + b over l limbs, normalised. Constant time.
func add(dst, a, b []uint64, l int) {
	var carry uint64
	for j := 0; j < l; j++ {
		t := a[j] + b[j] + carry
		dst[j] = t & limbMask
		carry = t >> limbBits
	}
}

// condSub sets x = x - n if x >= n, for x < 2n, in constant time.
func condSub(x, n []uint64, l int) {
	var d [96]uint64
	var borrow uint64
	for j := 0; j < l; j++ {
		t := x[j] - n[j] - borrow
		d[j] = t & limbMask
		borrow = t >> 63
	}
	keep := -borrow // all ones: x < n, keep x
	for j := 0; j < l; j++ {
		x[j] = x[j]&keep | d[j]&^keep
		d[j] = 0
	}
}

// equalLimbs is 1 if a and b agree on l limbs, in constant time.
func equalLimbs(a, b []uint64, l int) int {
	var acc uint64
	for j := 0; j < l; j++ {
		acc |= a[j] ^ b[j]
	}
	return int(1 ^ ((acc | -acc) >> 63))
}

func clear64(x []uint64) {
	for i := range x {
		x[i] = 0
	}
}

// scratch is the working memory of one exponentiation pair.
type scratch struct {
	table    []uint64 // [32][2][s]
	acc, tmp []uint64 // [2][s]
	x, y     []uint64 // [2][s]
}

var scratchPools sync.Map // *shape -> *sync.Pool

func getScratch(sh *shape) *scratch {
	pl, _ := scratchPools.LoadOrStore(sh, &sync.Pool{New: func() any {
		s := sh.s
		return &scratch{table: alignedWords(tableLen * 2 * s), acc: alignedWords(2 * s),
			tmp: alignedWords(2 * s), x: alignedWords(2 * s), y: alignedWords(2 * s)}
	}})
	return pl.(*sync.Pool).Get().(*scratch)
}

// putScratch zeroises the scratch (it held powers of secret residues)
// and returns it to its pool.
func putScratch(sh *shape, sc *scratch) {
	clear64(sc.table)
	clear64(sc.acc)
	clear64(sc.tmp)
	clear64(sc.x)
	clear64(sc.y)
	pl, _ := scratchPools.Load(sh)
	pl.(*sync.Pool).Put(sc)
}

// toMont sets out_t = base_t * R mod n_t (below 4n_t, normalised) for bases
// given as 2l limbs each (b [2][2l]), via base = lo + hi*R:
// lo*R^2/R + hi*R^3/R.
func (md *modX2) toMont(out []uint64, b [2][]uint64, sc *scratch) {
	s, l := md.sh.s, md.sh.l
	for t := 0; t < 2; t++ {
		clear64(sc.x[t*s : t*s+s])
		clear64(sc.y[t*s : t*s+s])
		copy(sc.x[t*s:t*s+l], b[t][:l])
		copy(sc.y[t*s:t*s+l], b[t][l:2*l])
	}
	md.amm(sc.x, sc.x, md.rr)
	md.amm(sc.y, sc.y, md.rrr)
	for t := 0; t < 2; t++ {
		add(out[t*s:], sc.x[t*s:], sc.y[t*s:], l)
	}
}

// expX2 sets acc_t = base_t^e_t * R mod n_t (below 2n_t) in constant time
// for exponents below 2^ebits (e_t as little-endian 64-bit words): fixed
// 5-bit windows from the top, 5 squarings and one multiplication by a
// table entry read with a full masked scan per window. bm is base in the
// Montgomery domain (below 4n). The schedule depends only on ebits.
func (md *modX2) expX2(acc, bm []uint64, e [2][]uint64, ebits int, sc *scratch) {
	s := md.sh.s
	st := 2 * s
	tab := sc.table
	copy(tab[0:st], md.one)
	copy(tab[st:2*st], bm)
	for i := 2; i < tableLen; i++ {
		md.amm(tab[i*st:(i+1)*st], tab[(i-1)*st:i*st], bm)
	}
	nwin := (ebits + window - 1) / window
	win := func(t, i int) uint64 {
		pos := i * window
		w := e[t][pos/64] >> (pos % 64)
		if pos%64 > 64-window && pos/64+1 < len(e[t]) {
			w |= e[t][pos/64+1] << (64 - pos%64)
		}
		return w & (tableLen - 1)
	}
	selectX2(&acc[0], &tab[0], s, tableLen, win(0, nwin-1), win(1, nwin-1))
	for i := nwin - 2; i >= 0; i-- {
		for k := 0; k < window; k++ {
			md.amm(acc, acc, acc)
		}
		selectX2(&sc.tmp[0], &tab[0], s, tableLen, win(0, i), win(1, i))
		md.amm(acc, acc, sc.tmp)
	}
}
