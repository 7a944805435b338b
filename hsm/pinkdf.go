package hsm

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// pinKDF is PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) over a PIN held as bytes.
// crypto/pbkdf2 takes the password as a string, which Go copies into
// memory the token can never wipe; golang.org/x/crypto/pbkdf2 does the same
// conversion inside. Here HMAC's padded key blocks are the token's own
// buffers and are zeroed on return; the PIN itself stays the caller's
// slice. TestPINKDFMatchesStdlib checks it against crypto/pbkdf2.
func pinKDF(pin, salt []byte, iterations, keyLen int) []byte {
	const block = sha256.BlockSize
	var ipad, opad [block]byte
	defer func() { clear(ipad[:]); clear(opad[:]) }()
	if len(pin) > block {
		// RFC 2104: a key longer than the block is hashed first.
		k := sha256.Sum256(pin)
		copy(ipad[:], k[:])
		clear(k[:])
	} else {
		copy(ipad[:], pin)
	}
	opad = ipad
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	inner, outer := sha256.New(), sha256.New()
	mac := func(dst []byte, msg ...[]byte) []byte {
		inner.Reset()
		inner.Write(ipad[:])
		for _, m := range msg {
			inner.Write(m)
		}
		var sum [sha256.Size]byte
		inner.Sum(sum[:0])
		outer.Reset()
		outer.Write(opad[:])
		outer.Write(sum[:])
		clear(sum[:])
		return outer.Sum(dst[:0])
	}
	out := make([]byte, 0, keyLen)
	var u, t [sha256.Size]byte
	var ctr [4]byte
	for n := uint32(1); len(out) < keyLen; n++ {
		binary.BigEndian.PutUint32(ctr[:], n)
		mac(u[:], salt, ctr[:])
		t = u
		for i := 1; i < iterations; i++ {
			mac(u[:], u[:])
			for j := range t {
				t[j] ^= u[j]
			}
		}
		out = append(out, t[:min(len(t), keyLen-len(out))]...)
	}
	clear(u[:])
	clear(t[:])
	resetHash(inner)
	resetHash(outer)
	return out
}

// resetHash drops what a hash absorbed (a PIN-derived block).
func resetHash(h hash.Hash) { h.Reset() }
