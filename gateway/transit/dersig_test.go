package transit

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestDERECDSASig: the hand-made DER equals encoding/asn1's for every
// coordinate size, with leading zeros, high bits, zero and all-ones.
func TestDERECDSASig(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{32, 48, 66} {
		for i := 0; i < 3000; i++ {
			r, s := make([]byte, n), make([]byte, n)
			for _, b := range [][]byte{r, s} {
				switch rng.IntN(6) {
				case 0: // zero
				case 1:
					for j := range b {
						b[j] = 0xff
					}
				default:
					for j := range b {
						b[j] = byte(rng.Uint32())
					}
					for j := rng.IntN(n + 1); j > 0 && rng.IntN(2) == 0; j-- {
						b[rng.IntN(n/2+1)] = 0 // leading zeros, sometimes
					}
					if rng.IntN(3) == 0 {
						b[0] |= 0x80
					}
				}
			}
			want, err := asn1.Marshal(ecdsaSig{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
			if err != nil {
				t.Fatal(err)
			}
			if got := derECDSASig(r, s); !bytes.Equal(got, want) {
				t.Fatalf("n=%d r=%x s=%x:\n got  %x\n want %x", n, r, s, got, want)
			}
		}
	}
}

// TestValidNameMatchesRE: the hand-written name check is Vault's
// GenericNameRegex.
func TestValidNameMatchesRE(t *testing.T) {
	names := []string{"", "a", "_", "-", ".", "@", "ab", "a-b", "a.b@c_d", "a-", "-a", "a@", "é", "aéb", "a b", "a/b", "a\nb", "A9", "a..b", "k\x00"}
	rng := rand.New(rand.NewPCG(5, 6))
	const alpha = "aZ09_-.@/ é\x00\n"
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.IntN(6))
		for j := range b {
			b[j] = alpha[rng.IntN(len(alpha))]
		}
		names = append(names, string(b))
	}
	for _, n := range names {
		if got, want := validName(n), nameRE.MatchString(n); got != want {
			t.Fatalf("%q: validName %v, regexp %v", n, got, want)
		}
	}
}
