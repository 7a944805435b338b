package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample with at least p% of the samples
// at or below it. It is a sample that was observed, never an interpolation.
func Percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Median of xs (the mean of the middle two for an even count); xs is not
// modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// maxSamples bounds one worker's latency record; beyond it the record is a
// uniform reservoir sample, so percentiles stay unbiased at fixed memory.
const maxSamples = 1 << 20

// latencies records one worker's op latencies in nanoseconds.
type latencies struct {
	samples []int64
	seen    int64
	rng     *rand.Rand
}

func newLatencies(seed uint64) *latencies {
	return &latencies{samples: make([]int64, 0, 1024), rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

func (l *latencies) add(d time.Duration) {
	l.seen++
	if len(l.samples) < maxSamples {
		l.samples = append(l.samples, int64(d))
		return
	}
	// Algorithm R: keep the new sample with probability maxSamples/seen.
	if j := l.rng.Int64N(l.seen); j < maxSamples {
		l.samples[j] = int64(d)
	}
}
