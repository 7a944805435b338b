package rsaz

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

// randOdd is a random odd modulus of exactly bits bits.
func randOdd(r *rand.Rand, bits int) *big.Int {
	n := randBelow2(r, bits)
	n.SetBit(n, bits-1, 1)
	n.SetBit(n, 0, 1)
	return n
}

func randBelow2(r *rand.Rand, bits int) *big.Int {
	b := make([]byte, (bits+7)/8)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	x := new(big.Int).SetBytes(b)
	return x.Rsh(x, uint(8*len(b)-bits))
}

func randBelow(r *rand.Rand, n *big.Int) *big.Int {
	x := randBelow2(r, n.BitLen()+8)
	return x.Mod(x, n)
}

func limbsToBig(x []uint64) *big.Int {
	z := new(big.Int)
	for i := len(x) - 1; i >= 0; i-- {
		z.Lsh(z, limbBits).Or(z, new(big.Int).SetUint64(x[i]))
	}
	return z
}

// ammWant is the exact almost-Montgomery product: (a*b + q*n)/R with
// q = -a*b*n^-1 mod R, which the kernels must reproduce bit for bit.
func ammWant(a, b, n *big.Int, l int) *big.Int {
	R := new(big.Int).Lsh(big.NewInt(1), uint(limbBits*l))
	ab := new(big.Int).Mul(a, b)
	ninv := new(big.Int).ModInverse(n, R)
	q := new(big.Int).Mul(ab, ninv)
	q.Neg(q).Mod(q, R)
	q.Mul(q, n).Add(q, ab)
	return q.Rsh(q, uint(limbBits*l))
}

func TestAMMKernels(t *testing.T) {
	if !Supported() {
		t.Skip("no AVX-512 IFMA")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for si := range shapes {
		sh := &shapes[si]
		for _, bits := range []int{sh.maxBits(), sh.maxBits() - 17, limbBits*(sh.l-1) + 1} {
			for it := 0; it < 300; it++ {
				n := [2]*big.Int{randOdd(r, bits), randOdd(r, bits-it%3)}
				md := newModX2(sh, n[0], n[1])
				a, b, got := alignedWords(2*sh.s), alignedWords(2*sh.s), alignedWords(2*sh.s)
				var av, bv [2]*big.Int
				for tt := 0; tt < 2; tt++ {
					four := new(big.Int).Lsh(n[tt], 2)
					av[tt], bv[tt] = randBelow(r, four), randBelow(r, four)
					switch it % 7 {
					case 1:
						av[tt].Sub(four, big.NewInt(1))
						bv[tt].Sub(four, big.NewInt(1))
					case 2:
						av[tt].SetInt64(0)
					}
					bigToLimbs(a[tt*sh.s:tt*sh.s+sh.l], av[tt])
					bigToLimbs(b[tt*sh.s:tt*sh.s+sh.l], bv[tt])
				}
				alias := it%2 == 1
				if alias {
					copy(got, a)
					md.amm(got, got, b)
				} else {
					md.amm(got, a, b)
				}
				for tt := 0; tt < 2; tt++ {
					want := ammWant(av[tt], bv[tt], n[tt], sh.l)
					g := got[tt*sh.s : tt*sh.s+sh.s]
					if limbsToBig(g).Cmp(want) != 0 {
						t.Fatalf("l=%d bits=%d lane %d: got %x want %x", sh.l, bits, tt, limbsToBig(g), want)
					}
					for j, v := range g {
						if v>>limbBits != 0 || (j >= sh.l && v != 0) {
							t.Fatalf("l=%d lane %d: limb %d = %x not normalised", sh.l, tt, j, v)
						}
					}
					if want.Cmp(new(big.Int).Lsh(n[tt], 1)) >= 0 {
						t.Fatalf("l=%d: result not below 2n", sh.l)
					}
				}
			}
		}
	}
}
