package mech

import (
	"encoding"
	"encoding/binary"
	"hash"
)

// PBKDF2 is PBKDF2 with HMAC over h (RFC 8018 §5.2), over a password held
// as bytes. crypto/pbkdf2 takes the password as a string, which Go copies
// into memory nobody can wipe, and golang.org/x/crypto/pbkdf2 converts to
// one inside; PINs and CKM_PKCS5_PBKD2 passwords are secrets the token
// wipes. Here HMAC's padded key blocks are this function's own buffers,
// zeroed on return; the password stays the caller's slice.
// TestPBKDF2MatchesStdlib checks it against crypto/pbkdf2.
func PBKDF2(h func() hash.Hash, password, salt []byte, iterations, keyLen int) []byte {
	inner, outer := h(), h()
	block, size := inner.BlockSize(), inner.Size()
	var defers []func()
	ipad, opad := make([]byte, block), make([]byte, block)
	defer func() { clear(ipad); clear(opad) }()
	if len(password) > block {
		// RFC 2104: a key longer than the block is hashed first.
		inner.Write(password)
		k := inner.Sum(nil)
		copy(ipad, k)
		clear(k)
		inner.Reset()
	} else {
		copy(ipad, password)
	}
	copy(opad, ipad)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	// The hash states after the padded key blocks are computed once and
	// restored for every HMAC, as crypto/hmac does: two compressions per
	// iteration instead of four. Those states are as secret as the
	// password; they are this function's buffers and are zeroed too.
	restore := func(h hash.Hash, pad []byte) func() {
		h.Reset()
		h.Write(pad)
		m, mok := h.(encoding.BinaryMarshaler)
		u, uok := h.(encoding.BinaryUnmarshaler)
		if mok && uok {
			if state, err := m.MarshalBinary(); err == nil {
				defers = append(defers, func() { clear(state) })
				return func() {
					if u.UnmarshalBinary(state) != nil {
						h.Reset()
						h.Write(pad)
					}
				}
			}
		}
		return func() { h.Reset(); h.Write(pad) }
	}
	defer func() {
		for _, f := range defers {
			f()
		}
	}()
	startInner, startOuter := restore(inner, ipad), restore(outer, opad)
	sum := make([]byte, 0, size)
	mac := func(dst []byte, msg ...[]byte) []byte {
		startInner()
		for _, m := range msg {
			inner.Write(m)
		}
		sum = inner.Sum(sum[:0])
		startOuter()
		outer.Write(sum)
		return outer.Sum(dst[:0])
	}
	out := make([]byte, 0, keyLen+size)
	u, t := make([]byte, size), make([]byte, size)
	var ctr [4]byte
	for n := uint32(1); len(out) < keyLen; n++ {
		binary.BigEndian.PutUint32(ctr[:], n)
		u = mac(u, salt, ctr[:])
		copy(t, u)
		for i := 1; i < iterations; i++ {
			u = mac(u, u)
			for j := range t {
				t[j] ^= u[j]
			}
		}
		out = append(out, t...)
	}
	clear(u)
	clear(t)
	clear(sum)
	inner.Reset()
	outer.Reset()
	clear(out[keyLen:cap(out)])
	return out[:keyLen:keyLen]
}
