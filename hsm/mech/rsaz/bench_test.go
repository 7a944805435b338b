package rsaz

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"testing"
)

// BenchmarkPrivate is the raw private-key operation (with its public
// check), against crypto/rsa's raw-equivalent (SignPKCS1v15 of a digest)
// for scale. Performance claims come from bench/, not from here.
func BenchmarkPrivate(b *testing.B) {
	for _, bits := range []int{2048, 3072, 4096} {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			b.Fatal(err)
		}
		c := make([]byte, priv.Size())
		c[1] = 0x55
		c[len(c)-1] = 3
		b.Run(fmt.Sprintf("rsaz-%d", bits), func(b *testing.B) {
			if !Supported() {
				b.Skip("no IFMA")
			}
			k, err := NewPrivateKey(priv)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := k.Private(c); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("cryptorsa-%d", bits), func(b *testing.B) {
			d := sha256.Sum256([]byte("x"))
			for b.Loop() {
				if _, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d[:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
