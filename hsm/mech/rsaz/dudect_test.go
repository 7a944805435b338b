package rsaz

import (
	"crypto/rand"
	"crypto/rsa"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// A dudect-style timing test (Reparaz, Balasch, Verbauwhede, "Dude, is
// my code constant time?", 2017): measurements of two input classes,
// interleaved at random so that drift and the neighbours' load hit both
// alike, compared with Welch's t-test on the raw times and on the times
// cropped at several upper percentiles; |t| < 4.5 everywhere is a pass.

type welch struct{ n, mean, m2 [2]float64 }

func (w *welch) add(class int, x float64) {
	w.n[class]++
	d := x - w.mean[class]
	w.mean[class] += d / w.n[class]
	w.m2[class] += d * (x - w.mean[class])
}

func (w *welch) t() float64 {
	if w.n[0] < 2 || w.n[1] < 2 {
		return 0
	}
	v0, v1 := w.m2[0]/(w.n[0]-1), w.m2[1]/(w.n[1]-1)
	den := math.Sqrt(v0/w.n[0] + v1/w.n[1])
	if den == 0 {
		return 0
	}
	return (w.mean[0] - w.mean[1]) / den
}

// dudect times op(class) n times and returns the largest |t| over the
// uncropped set and the sets cropped at the 50th..99.9th percentiles
// (of the first 10^4 samples, both classes pooled), with that t's label.
func dudect(n int, prepare func(class int), op func()) (float64, string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 1))
	pcts := []float64{0.5, 0.75, 0.9, 0.95, 0.99, 0.999}
	var cuts []float64
	var warm []float64
	tests := make([]welch, len(pcts)+1)
	for i := 0; i < n; i++ {
		class := r.IntN(2)
		prepare(class)
		t0 := time.Now()
		op()
		d := float64(time.Since(t0).Nanoseconds())
		if cuts == nil {
			warm = append(warm, d)
			if len(warm) == min(10000, n/10+1) {
				slices.Sort(warm)
				for _, p := range pcts {
					cuts = append(cuts, warm[int(p*float64(len(warm)-1))])
				}
			}
			continue
		}
		tests[0].add(class, d)
		for j, c := range cuts {
			if d <= c {
				tests[j+1].add(class, d)
			}
		}
	}
	best, label := 0.0, ""
	for j := range tests {
		if t := math.Abs(tests[j].t()); t >= best {
			best = t
			label = "all"
			if j > 0 {
				label = "p" + strconv.FormatFloat(100*pcts[j-1], 'f', -1, 64)
			}
		}
	}
	return best, label
}

func TestWelchKnownValues(t *testing.T) {
	var w welch
	for _, x := range []float64{1, 2, 3, 4, 5} {
		w.add(0, x)
	}
	for _, x := range []float64{2, 4, 6, 8, 10} {
		w.add(1, x)
	}
	// means 3 and 6, variances 2.5 and 10: t = -3/sqrt(0.5+2) = -1.897...
	if got := w.t(); math.Abs(got+3/math.Sqrt(2.5)) > 1e-12 {
		t.Fatalf("t = %v", got)
	}
}

// TestDudectDetectsLeak: the harness must see a deliberate leak (an
// exponentiation that skips the work for a zero exponent), or a pass
// from it would mean nothing.
func TestDudectDetectsLeak(t *testing.T) {
	if !Supported() {
		t.Skip("no AVX-512 IFMA")
	}
	d := newDudectCase(t, 2048)
	zero := false
	tv, _ := dudect(3000, func(class int) { d.prepare(class); zero = class == 0 }, func() {
		if !zero {
			d.op()
		}
	})
	if tv < 4.5 {
		t.Fatalf("|t| = %.2f for a leaky operation: the harness is blind", tv)
	}
}

// TestDudect is the real test: make rsaz-dudect runs it with
// GOHSM_RSAZ_DUDECT=1000000 measurements per case. Without the variable
// it is skipped (timing tests on a shared machine belong to a make target).
func TestDudect(t *testing.T) {
	if !Supported() {
		t.Skip("no AVX-512 IFMA")
	}
	n, _ := strconv.Atoi(os.Getenv("GOHSM_RSAZ_DUDECT"))
	if n == 0 {
		t.Skip("set GOHSM_RSAZ_DUDECT=n (make rsaz-dudect)")
	}
	for _, tc := range []struct {
		id, name string
		bits     int
		kind     int
	}{
		{"exp", "exp-x2-1024: fixed (base, exponent) vs random", 2048, caseExp},
		{"exp-zero", "exp-x2-1024: zero exponent vs random", 2048, caseExpZero},
		{"private", "private-2048: fixed input vs random", 2048, casePrivate},
	} {
		t.Run(tc.id, func(t *testing.T) {
			d := newDudectCase(t, tc.bits)
			d.kind = tc.kind
			start := time.Now()
			tv, label := dudect(n, d.prepare, d.op)
			t.Logf("%s: %d measurements, max |t| = %.2f (%s), %v", tc.name, n, tv, label, time.Since(start).Round(time.Second))
			if tv >= 4.5 {
				t.Errorf("%s: |t| = %.2f >= 4.5", tc.name, tv)
			}
		})
	}
}

const (
	caseExp = iota
	caseExpZero
	casePrivate
)

type dudectCase struct {
	kind  int
	key   *PrivateKey
	sc    *scratch
	bl    [2][]uint64
	ew    [2][]uint64
	fixB  [2][]uint64
	fixE  [2][]uint64
	c     []byte
	fixC  []byte
	r     *mrand.Rand
	limbs int
}

func newDudectCase(t *testing.T, bits int) *dudectCase {
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	d := &dudectCase{key: k, sc: getScratch(k.crt.sh), r: mrand.New(mrand.NewPCG(3, 4)), limbs: 2 * k.crt.sh.l}
	for t := 0; t < 2; t++ {
		d.bl[t] = make([]uint64, d.limbs)
		d.fixB[t] = make([]uint64, d.limbs)
		d.ew[t] = make([]uint64, len(k.dexp[t]))
		d.fixE[t] = make([]uint64, len(k.dexp[t]))
		d.randomise(d.fixB[t], d.fixE[t])
	}
	d.c = make([]byte, k.Size())
	d.fixC = priv.N.Bytes()
	d.fixC[len(d.fixC)-1] -= 2 // n - 2, fixed
	return d
}

// randomise fills a base below 2^(bits of N) and an exponent below 2^ebits.
func (d *dudectCase) randomise(b, e []uint64) {
	nb := d.key.crt.bits * 2
	for i := range b {
		b[i] = 0
		if (i+1)*limbBits <= nb-limbBits {
			b[i] = d.r.Uint64() & limbMask
		}
	}
	for i := range e {
		e[i] = 0
		if (i+1)*64 <= d.key.ebits {
			e[i] = d.r.Uint64()
		}
	}
}

func (d *dudectCase) prepare(class int) {
	switch d.kind {
	case casePrivate:
		if class == 0 {
			copy(d.c, d.fixC)
		} else {
			for i := range d.c {
				d.c[i] = byte(d.r.Uint32())
			}
			d.c[0] &= 0x3f
		}
	default:
		for t := 0; t < 2; t++ {
			if class == 0 {
				copy(d.bl[t], d.fixB[t])
				copy(d.ew[t], d.fixE[t])
				if d.kind == caseExpZero {
					clear64(d.ew[t])
				}
			} else {
				d.randomise(d.bl[t], d.ew[t])
			}
		}
	}
}

func (d *dudectCase) op() {
	if d.kind == casePrivate {
		if _, err := d.key.Private(d.c); err != nil {
			panic(err)
		}
		return
	}
	md := d.key.crt
	md.toMont(d.sc.x, d.bl, d.sc)
	md.expX2(d.sc.acc, d.sc.x, d.ew, d.key.ebits, d.sc)
	md.amm(d.sc.y, d.sc.acc, md.lit1)
}
