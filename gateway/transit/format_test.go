package transit

import (
	"crypto/rand"
	"testing"
)

// TestFormat64: the one-allocation form writes what format(enc64) writes,
// across the 384-byte chunk boundaries.
func TestFormat64(t *testing.T) {
	for _, prefix := range []string{"vault:", "gohsm:"} {
		e := &Engine{prefix: prefix}
		for n := 0; n <= 1200; n++ {
			raw := make([]byte, n)
			rand.Read(raw)
			for _, v := range []int{1, 12, 1 << 30} {
				if got, want := e.format64(v, raw), e.format(v, enc64(raw)); got != want {
					t.Fatalf("%d bytes v%d: %q, want %q", n, v, got, want)
				}
			}
		}
	}
}
