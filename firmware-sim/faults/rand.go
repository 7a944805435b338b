package faults

// Every random choice of a plan is a pure function of (seed, stream, n):
// stream names the rule (and, for latencies, which of a sample's two
// uniforms), n is the call's number among the rule's matches. A draw never
// depends on other functions' calls or on which thread made the call, so
// the Nth matching call of a rule meets the same fate in every run with the
// seed: two runs with one seed fail identically. The generator is
// SplitMix64's output function over a counter (Steele, Lea and Flood, "Fast
// splittable pseudorandom number generators", OOPSLA 2014).

const golden = 0x9e3779b97f4a7c15

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// draw is the nth number of stream under seed.
func draw(seed, stream, n uint64) uint64 {
	key := mix64(seed ^ mix64(stream*golden+golden))
	return mix64(key + n*golden)
}

// uniform is draw as a float64 in [0, 1).
func uniform(seed, stream, n uint64) float64 {
	return float64(draw(seed, stream, n)>>11) / (1 << 53)
}
