package faults

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Latency distributions. Each sample comes from the plan's seed, the rule
// and the call's number among the rule's matches (rand.go), so a run with
// one seed sleeps the same amounts in the same places as the last.
const (
	DistFixed     = "fixed"     // ms
	DistUniform   = "uniform"   // min_ms .. max_ms
	DistNormal    = "normal"    // mean_ms, stddev_ms; cut at min_ms (default 0) and max_ms
	DistLognormal = "lognormal" // median_ms and sigma, or median_ms and p99_ms; cut at max_ms
)

// A Dist is a latency distribution in milliseconds.
type Dist struct {
	Kind string
	MS   float64 // fixed
	// uniform: Min..Max; normal: Mean, Stddev, clamped to [Min, Max];
	// lognormal: Median, Sigma (the log's standard deviation), clamped to
	// Max. Max 0 means no upper cut.
	Min, Max     float64
	Mean, Stddev float64
	Median       float64
	Sigma        float64
}

type jsonDist struct {
	Dist     string   `json:"dist"`
	MS       *float64 `json:"ms"`
	MinMS    *float64 `json:"min_ms"`
	MaxMS    *float64 `json:"max_ms"`
	MeanMS   *float64 `json:"mean_ms"`
	StddevMS *float64 `json:"stddev_ms"`
	MedianMS *float64 `json:"median_ms"`
	Sigma    *float64 `json:"sigma"`
	P99MS    *float64 `json:"p99_ms"`
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

func (j *jsonDist) dist() (*Dist, error) {
	d := &Dist{Kind: j.Dist}
	type key struct {
		name string
		v    *float64
	}
	allowed := map[string][]string{
		DistFixed:     {"ms"},
		DistUniform:   {"min_ms", "max_ms"},
		DistNormal:    {"mean_ms", "stddev_ms", "min_ms", "max_ms"},
		DistLognormal: {"median_ms", "sigma", "p99_ms", "max_ms"},
	}
	keys := []key{{"ms", j.MS}, {"min_ms", j.MinMS}, {"max_ms", j.MaxMS}, {"mean_ms", j.MeanMS},
		{"stddev_ms", j.StddevMS}, {"median_ms", j.MedianMS}, {"sigma", j.Sigma}, {"p99_ms", j.P99MS}}
	ok, known := allowed[j.Dist]
	if !known {
		return nil, fmt.Errorf("dist %q: want fixed, uniform, normal or lognormal", j.Dist)
	}
	for _, k := range keys {
		if k.v == nil {
			continue
		}
		found := false
		for _, a := range ok {
			found = found || a == k.name
		}
		if !found {
			return nil, fmt.Errorf("%s is not a parameter of %s (it takes %v)", k.name, j.Dist, ok)
		}
		if k.name == "sigma" {
			if math.IsNaN(*k.v) || *k.v < 0 || *k.v > 10 {
				return nil, fmt.Errorf("sigma %v: want 0 to 10", *k.v)
			}
			continue
		}
		if err := checkMS(k.name, *k.v); err != nil {
			return nil, err
		}
	}
	need := func(name string, v *float64) (float64, error) {
		if v == nil {
			return 0, fmt.Errorf("%s needs %s", j.Dist, name)
		}
		return *v, nil
	}
	opt := func(v *float64) float64 {
		if v == nil {
			return 0
		}
		return *v
	}
	var err error
	switch j.Dist {
	case DistFixed:
		d.MS, err = need("ms", j.MS)
	case DistUniform:
		if d.Min, err = need("min_ms", j.MinMS); err == nil {
			d.Max, err = need("max_ms", j.MaxMS)
		}
		if err == nil && d.Max < d.Min {
			err = errors.New("max_ms is below min_ms")
		}
	case DistNormal:
		if d.Mean, err = need("mean_ms", j.MeanMS); err == nil {
			d.Stddev, err = need("stddev_ms", j.StddevMS)
		}
		d.Min, d.Max = opt(j.MinMS), opt(j.MaxMS)
		if err == nil && d.Max > 0 && d.Max < d.Min {
			err = errors.New("max_ms is below min_ms")
		}
	case DistLognormal:
		if d.Median, err = need("median_ms", j.MedianMS); err != nil {
			break
		}
		if d.Median <= 0 {
			return nil, errors.New("median_ms must be above 0")
		}
		switch {
		case j.Sigma != nil && j.P99MS != nil:
			err = errors.New("sigma and p99_ms: give one")
		case j.Sigma != nil:
			d.Sigma = *j.Sigma
		case j.P99MS != nil:
			if *j.P99MS < d.Median {
				return nil, errors.New("p99_ms is below median_ms")
			}
			d.Sigma = math.Log(*j.P99MS/d.Median) / z99
		default:
			err = errors.New("lognormal needs sigma or p99_ms besides median_ms")
		}
		d.Max = opt(j.MaxMS)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Dist) jsonForm() map[string]any {
	m := map[string]any{"dist": d.Kind}
	switch d.Kind {
	case DistFixed:
		m["ms"] = d.MS
	case DistUniform:
		m["min_ms"], m["max_ms"] = d.Min, d.Max
	case DistNormal:
		m["mean_ms"], m["stddev_ms"] = d.Mean, d.Stddev
		if d.Min > 0 {
			m["min_ms"] = d.Min
		}
		if d.Max > 0 {
			m["max_ms"] = d.Max
		}
	case DistLognormal:
		m["median_ms"], m["sigma"] = d.Median, d.Sigma
		if d.Max > 0 {
			m["max_ms"] = d.Max
		}
	}
	return m
}

// sample draws one latency from two independent uniforms in [0, 1).
func (d *Dist) sample(u1, u2 float64) time.Duration {
	var ms float64
	switch d.Kind {
	case DistFixed:
		ms = d.MS
	case DistUniform:
		ms = d.Min + u1*(d.Max-d.Min)
	case DistNormal:
		ms = d.Mean + d.Stddev*gauss(u1, u2)
		ms = max(ms, d.Min)
		if d.Max > 0 {
			ms = min(ms, d.Max)
		}
	case DistLognormal:
		ms = d.Median * math.Exp(d.Sigma*gauss(u1, u2))
		if d.Max > 0 {
			ms = min(ms, d.Max)
		}
	}
	ms = min(max(ms, 0), maxMS)
	return time.Duration(ms * float64(time.Millisecond))
}

// gauss is a standard normal deviate by Box-Muller.
func gauss(u1, u2 float64) float64 {
	return math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
}

// Mean is the distribution's mean in milliseconds, before any cut (for
// documentation and tests).
func (d *Dist) MeanMS() float64 {
	switch d.Kind {
	case DistFixed:
		return d.MS
	case DistUniform:
		return (d.Min + d.Max) / 2
	case DistNormal:
		return d.Mean
	case DistLognormal:
		return d.Median * math.Exp(d.Sigma*d.Sigma/2)
	}
	return 0
}
