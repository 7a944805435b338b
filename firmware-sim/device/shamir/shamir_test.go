package shamir

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// FIPS 197 §4.2: {57}•{83} = {c1}; §4.2.1: {57}•{13} = {fe} and the xtime
// chain {57}•{02} = {ae}, •{04} = {47}, •{08} = {8e}, •{10} = {07}.
// The inverse of {53} is {ca} (the example of the S-box construction).
func TestFieldFIPS197(t *testing.T) {
	for _, c := range []struct{ a, b, want byte }{
		{0x57, 0x83, 0xc1}, {0x57, 0x13, 0xfe}, {0x57, 0x02, 0xae}, {0x57, 0x04, 0x47},
		{0x57, 0x08, 0x8e}, {0x57, 0x10, 0x07}, {3, 7, 9}, {3, 0, 0}, {0, 3, 0}, // the last three: Vault's tests
	} {
		if got := mul(c.a, c.b); got != c.want {
			t.Errorf("%02x•%02x = %02x, want %02x", c.a, c.b, got, c.want)
		}
	}
	if got := inv(0x53); got != 0xca {
		t.Fatalf("{53}^-1 = %02x, want ca", got)
	}
	if div(6, 3) != 2 || div(3, 3) != 1 || div(0, 7) != 0 { // Vault's TestField_Divide
		t.Fatal("division")
	}
}

// slowMul is the textbook carry-less product reduced bit by bit.
func slowMul(a, b byte) byte {
	var p uint16
	for i := 0; i < 8; i++ {
		if b>>i&1 == 1 {
			p ^= uint16(a) << i
		}
	}
	for i := 15; i >= 8; i-- {
		if p>>i&1 == 1 {
			p ^= 0x11b << (i - 8)
		}
	}
	return byte(p)
}

func TestFieldExhaustive(t *testing.T) {
	for a := 0; a < 256; a++ {
		for b := 0; b < 256; b++ {
			if mul(byte(a), byte(b)) != slowMul(byte(a), byte(b)) {
				t.Fatalf("mul(%d,%d)", a, b)
			}
		}
		if a != 0 && mul(byte(a), inv(byte(a))) != 1 {
			t.Fatalf("inv(%d)", a)
		}
	}
}

// TestKnownSplit: shares of a polynomial computed by hand combine to its
// constant term: secret byte 0x2a, f(x) = 0x2a + 0x01 x + 0x02 x^2 over
// GF(2^8) (3•3 = {05}): f(1) = 0x29, f(2) = 0x20, f(3) = 0x23.
func TestKnownSplit(t *testing.T) {
	f := func(x byte) byte { return 0x2a ^ mul(1, x) ^ mul(2, mul(x, x)) }
	if f(1) != 0x29 || f(2) != 0x20 || f(3) != 0x23 {
		t.Fatalf("hand values: %02x %02x %02x", f(1), f(2), f(3))
	}
	shares := [][]byte{{0x29, 1}, {0x20, 2}, {0x23, 3}}
	for _, pick := range [][]int{{0, 1, 2}, {2, 0, 1}, {1, 2, 0}} {
		got, err := Combine([][]byte{shares[pick[0]], shares[pick[1]], shares[pick[2]]})
		if err != nil || !bytes.Equal(got, []byte{0x2a}) {
			t.Fatalf("combine %v: %x %v", pick, got, err)
		}
	}
}

// TestEverySubset: every threshold-subset of a 5-share, 3-threshold split
// of a 32-byte key recovers it, in any order; every 2-subset does not.
func TestEverySubset(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	shares, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shares {
		if len(s) != len(secret)+ShareOverhead || s[len(s)-1] == 0 {
			t.Fatalf("share %x", s)
		}
	}
	for i := 0; i < 5; i++ {
		for j := 0; j < 5; j++ {
			if j == i {
				continue
			}
			got, err := Combine([][]byte{shares[i], shares[j]})
			if err != nil || bytes.Equal(got, secret) {
				t.Fatalf("two shares gave the secret (%d,%d)", i, j)
			}
			for k := 0; k < 5; k++ {
				if k == i || k == j {
					continue
				}
				got, err := Combine([][]byte{shares[i], shares[j], shares[k]})
				if err != nil || !bytes.Equal(got, secret) {
					t.Fatalf("(%d,%d,%d): %v", i, j, k, err)
				}
			}
		}
	}
	all, _ := Combine(shares)
	if !bytes.Equal(all, secret) {
		t.Fatal("all five shares")
	}
}

// TestBelowThresholdHidesSecret: for a 2-of-n split, one share is
// consistent with every possible secret byte (for each candidate there is
// exactly one line through (0, candidate) and the share), so the share
// says nothing about the secret.
func TestBelowThresholdHidesSecret(t *testing.T) {
	for x := 1; x < 256; x++ {
		for y := 0; y < 256; y++ {
			seen := map[byte]bool{}
			for slope := 0; slope < 256; slope++ {
				// f(x) = s + slope*x = y  =>  s = y + slope*x
				s := byte(y) ^ mul(byte(slope), byte(x))
				seen[s] = true
			}
			if len(seen) != 256 {
				t.Fatalf("share (%d,%d) rules out some secrets", x, y)
			}
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, c := range []struct{ parts, threshold int }{{0, 0}, {2, 3}, {1000, 3}, {10, 1}} {
		if _, err := Split([]byte("test"), c.parts, c.threshold); err == nil {
			t.Errorf("Split(%d, %d) accepted", c.parts, c.threshold)
		}
	}
	if _, err := Split(nil, 3, 2); err == nil {
		t.Error("empty secret accepted")
	}
	for _, parts := range [][][]byte{nil, {[]byte("foo"), []byte("ba")}, {[]byte("f"), []byte("b")}, {[]byte("foo"), []byte("foo")}, {{1, 0}, {2, 0}}} {
		if _, err := Combine(parts); err == nil {
			t.Errorf("Combine(%q) accepted", parts)
		}
	}
}

func FuzzCombine(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{4, 5, 6})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		Combine([][]byte{a, b}) // must not panic
	})
}
