package bench

import (
	"slices"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	s := make([]int64, 100)
	for i := range s {
		s[i] = int64(i + 1)
	}
	for _, c := range []struct {
		p    float64
		want int64
	}{{50, 50}, {99, 99}, {100, 100}, {0.1, 1}, {1, 1}, {99.5, 100}} {
		if got := Percentile(s, c.p); got != c.want {
			t.Errorf("Percentile(1..100, %v) = %d, want %d", c.p, got, c.want)
		}
	}
	if got := Percentile([]int64{7}, 99); got != 7 {
		t.Errorf("one sample: %d", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("no sample: %d", got)
	}
	// Nearest rank never interpolates: p50 of {10, 20} is 10.
	if got := Percentile([]int64{10, 20}, 50); got != 10 {
		t.Errorf("p50 of {10,20} = %d", got)
	}
}

func TestMedian(t *testing.T) {
	xs := []float64{5, 1, 3}
	if m := Median(xs); m != 3 {
		t.Errorf("odd median %v", m)
	}
	if !slices.Equal(xs, []float64{5, 1, 3}) {
		t.Error("Median modified its input")
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even median %v", m)
	}
	if m := Median(nil); m != 0 {
		t.Errorf("empty median %v", m)
	}
}

func TestLatenciesReservoirBounded(t *testing.T) {
	l := newLatencies(1)
	n := maxSamples + maxSamples/2
	for i := 1; i <= n; i++ {
		l.add(time.Duration(i))
	}
	if len(l.samples) != maxSamples || l.seen != int64(n) {
		t.Fatalf("kept %d of %d seen, want %d", len(l.samples), l.seen, maxSamples)
	}
	late := 0
	for _, v := range l.samples {
		if v < 1 || v > int64(n) {
			t.Fatalf("sample %d was never added", v)
		}
		if v > maxSamples {
			late++
		}
	}
	// Algorithm R keeps each late sample with probability maxSamples/seen:
	// about a third of the reservoir here; none would mean no replacement.
	if late < maxSamples/5 || late > maxSamples/2 {
		t.Errorf("%d late samples in the reservoir, want about %d", late, maxSamples/3)
	}
}
