package mech

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"testing"
)

// The byte-slice PBKDF2 agrees with crypto/pbkdf2 for every PRF the token
// offers, for passwords shorter and longer than the hash block, and for
// outputs of one, several and a partial block; and with RFC 6070's
// PBKDF2-HMAC-SHA1 vectors.
func TestPBKDF2MatchesStdlib(t *testing.T) {
	hashes := map[string]func() hash.Hash{"sha1": sha1.New, "sha224": sha256.New224, "sha256": sha256.New,
		"sha384": sha512.New384, "sha512": sha512.New}
	for name, h := range hashes {
		for _, pwLen := range []int{0, 1, 8, 64, 65, 128, 129, 300} {
			pw := bytes.Repeat([]byte{'p'}, pwLen)
			for _, c := range []struct{ iter, n int }{{1, 1}, {2, 20}, {3, 32}, {5, 65}, {1000, 100}} {
				want, err := pbkdf2.Key(h, string(pw), []byte("salty"), c.iter, c.n)
				if err != nil {
					t.Fatal(err)
				}
				if got := PBKDF2(h, pw, []byte("salty"), c.iter, c.n); !bytes.Equal(got, want) {
					t.Fatalf("%s, %d-byte password, %d iterations, %d bytes: %x, want %x", name, pwLen, c.iter, c.n, got, want)
				}
			}
		}
	}
	// RFC 6070 §2, test vectors 1, 2 and 5.
	for _, v := range []struct {
		p, s string
		c, n int
		dk   string
	}{
		{"password", "salt", 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
		{"password", "salt", 2, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
		{"passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 25, "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
	} {
		got := PBKDF2(sha1.New, []byte(v.p), []byte(v.s), v.c, v.n)
		if want := mustHex(t, v.dk); !bytes.Equal(got, want) {
			t.Fatalf("RFC 6070 %q/%q/%d: %x", v.p, v.s, v.c, got)
		}
	}
}
