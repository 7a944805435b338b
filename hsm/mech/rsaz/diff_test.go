package rsaz

import (
	"math/big"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// expPair runs the exponentiation engine as Private does, without the
// CRT: out_t = b_t^e_t mod n_t, fully reduced, for bases below n_0*n_1
// and exponents below 2^bits(n).
func expPair(md *modX2, b [2]*big.Int, e [2]*big.Int) [2]*big.Int {
	sh := md.sh
	s, l := sh.s, sh.l
	sc := getScratch(sh)
	defer putScratch(sh, sc)
	var bl [2][]uint64
	var ew [2][]uint64
	nw := ((md.bits+window-1)/window*window + 63) / 64
	for t := 0; t < 2; t++ {
		bl[t] = make([]uint64, 2*l)
		bytesToLimbs(bl[t], b[t].Bytes())
		ew[t] = make([]uint64, nw)
		bigToWords(ew[t], e[t])
	}
	md.toMont(sc.x, bl, sc)
	md.expX2(sc.acc, sc.x, ew, md.bits, sc)
	md.amm(sc.y, sc.acc, md.lit1)
	var out [2]*big.Int
	for t := 0; t < 2; t++ {
		condSub(sc.y[t*s:t*s+l], md.m[t*s:t*s+l], l)
		out[t] = limbsToBig(sc.y[t*s : t*s+l])
	}
	return out
}

// diffCount is the number of (modulus, base, exponent) triples per size:
// 10^4 in the normal test (10^3 with -short), GOHSM_RSAZ_DIFF=n for the
// long run (make rsaz-diff).
func diffCount(t *testing.T) int {
	if v := os.Getenv("GOHSM_RSAZ_DIFF"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if testing.Short() {
		return 1000
	}
	return 10000
}

// TestDifferential compares the engine with math/big over random odd
// moduli of 1024, 1536 and 2048 bits (the CRT halves of RSA-2048, -3072
// and -4096; two per run, one a lane), random bases below their product
// and random exponents of random length up to the modulus size; one in
// eight exponents is full length.
func TestDifferential(t *testing.T) {
	if !Supported() {
		t.Skip("no AVX-512 IFMA")
	}
	total := diffCount(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("GOHSM_RSAZ_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (GOHSM_RSAZ_SEED), %d triples per size", seed, total)
	for _, bits := range []int{1024, 1536, 2048} {
		t.Run(strconv.Itoa(bits), func(t *testing.T) { differential(t, bits, total, seed) })
	}
}

func differential(t *testing.T, bits, total int, seed uint64) {
	{
		var done atomic.Int64
		var failed atomic.Bool
		workers := runtime.GOMAXPROCS(0)
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, uint64(bits*1000+w)))
				for !failed.Load() {
					d := done.Add(2)
					if d > int64(total)+1 {
						return
					}
					if d%100000 == 0 {
						t.Logf("%d bits: %d triples agree so far (%v)", bits, d, time.Since(start).Round(time.Second))
					}
					var n, b, e [2]*big.Int
					n[0], n[1] = randOdd(r, bits), randOdd(r, bits-r.IntN(3))
					nn := new(big.Int).Mul(n[0], n[1])
					for tt := 0; tt < 2; tt++ {
						b[tt] = randBelow(r, nn)
						eb := bits
						if r.IntN(8) != 0 {
							eb = 1 + r.IntN(bits)
						}
						e[tt] = randBelow2(r, eb)
					}
					sh := shapeFor(bits)
					md := newModX2(sh, n[0], n[1])
					got := expPair(md, b, e)
					for tt := 0; tt < 2; tt++ {
						want := new(big.Int).Exp(b[tt], e[tt], n[tt])
						if got[tt].Cmp(want) != 0 {
							failed.Store(true)
							t.Errorf("%d bits lane %d: n=%x b=%x e=%x: got %x want %x", bits, tt, n[tt], b[tt], e[tt], got[tt], want)
							return
						}
					}
				}
			}(w)
		}
		wg.Wait()
		t.Logf("%d bits: %d triples agree with math/big (%v)", bits, min(int(done.Load()), total), time.Since(start).Round(time.Millisecond))
	}
}

// TestEdgeCases: bases 0, 1, n-1, n (= 0), n+1 (= 1), the largest base
// below n_0*n_1; exponents 0, 1, 2, all ones, one bit; both lanes mixed.
func TestEdgeCases(t *testing.T) {
	if !Supported() {
		t.Skip("no AVX-512 IFMA")
	}
	r := rand.New(rand.NewPCG(7, 7))
	for _, bits := range []int{1024, 1536, 2048, 1000, 1555, 2075} {
		sh := shapeFor(bits)
		n := [2]*big.Int{randOdd(r, bits), randOdd(r, bits)}
		n[1].SetBit(n[1], bits-2, 1) // all-ones-ish top
		md := newModX2(sh, n[0], n[1])
		one := big.NewInt(1)
		nn := new(big.Int).Mul(n[0], n[1])
		allOnes := new(big.Int).Sub(new(big.Int).Lsh(one, uint(bits)), one)
		bases := func(tt int) []*big.Int {
			return []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(n[tt], one), new(big.Int).Set(n[tt]),
				new(big.Int).Add(n[tt], one), new(big.Int).Sub(nn, one), big.NewInt(2), randBelow(r, nn)}
		}
		exps := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2), allOnes, new(big.Int).Lsh(one, uint(bits-1)),
			big.NewInt(31), big.NewInt(32), randBelow2(r, bits)}
		b0, b1 := bases(0), bases(1)
		for i, x := range b0 {
			for j, e := range exps {
				y, f := b1[(i+j)%len(b1)], exps[(i+2*j)%len(exps)]
				got := expPair(md, [2]*big.Int{x, y}, [2]*big.Int{e, f})
				for tt, w := range []*big.Int{new(big.Int).Exp(x, e, n[0]), new(big.Int).Exp(y, f, n[1])} {
					if got[tt].Cmp(w) != 0 {
						t.Fatalf("%d bits, base %d exp %d, lane %d: got %x want %x", bits, i, j, tt, got[tt], w)
					}
				}
			}
		}
	}
}
