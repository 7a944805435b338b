package mech

import (
	"crypto/cipher"
	"crypto/subtle"
	"hash"

	"github.com/gohsm/gohsm/hsm/ck"
)

// AES-CMAC (NIST SP 800-38B; PKCS#11 2.40 Current Mechanisms §2.8.x
// "AES-CMAC"): CKM_AES_CMAC gives the full 16-byte tag, CKM_AES_CMAC_GENERAL
// the first 1..16 bytes (CK_MAC_GENERAL_PARAMS). Both are single- and
// multi-part. CMAC is written here on cipher.Block (the standard library
// has none, and x/crypto's is not exported for AES); crypto/aes blocks are
// constant time and the mode has no secret-dependent branches.
//
// SM4-CMAC is not offered: no vendor profile defines a code for it.

func cmacMechanisms() []Mechanism {
	info := ck.MechanismInfo{MinKeySize: 16, MaxKeySize: 32, Flags: ck.CKF_SIGN | ck.CKF_VERIFY}
	kts := []ck.KeyType{ck.CKK_AES}
	var out []Mechanism
	for _, general := range []bool{false, true} {
		m := ck.CKM_AES_CMAC
		if general {
			m = ck.CKM_AES_CMAC_GENERAL
		}
		out = append(out, Mechanism{
			Type: m, Info: info, KeyTypes: kts,
			Sign: func(k *Key, param any) (Signer, error) { return newAESCMAC(m, general, k, param) },
			Verify: func(k *Key, param any) (Verifier, error) {
				o, err := newAESCMAC(m, general, k, param)
				if err != nil {
					return nil, err
				}
				return smMACVerifier{o}, nil
			},
		})
	}
	return out
}

func newAESCMAC(m ck.MechanismType, general bool, k *Key, param any) (*smMAC, error) {
	n := 16
	if general {
		var err error
		if n, err = smMACLen(m, param, 16); err != nil {
			return nil, err
		}
	} else if err := noParam(m, param); err != nil {
		return nil, err
	}
	b, err := aesBlock(k)
	if err != nil {
		return nil, err
	}
	k1, k2 := cmacSubkeys(b)
	return newSMMAC(n, func() hash.Hash { return &cmac{b: b, k1: k1, k2: k2} }), nil
}

// cmacSubkeys derives K1 and K2 (SP 800-38B §6.1): L = E_K(0^128), K1 =
// L·x, K2 = K1·x in GF(2^128), without branches on secret bits.
func cmacSubkeys(b cipher.Block) (k1, k2 [16]byte) {
	var l [16]byte
	b.Encrypt(l[:], l[:])
	dbl := func(dst *[16]byte, src *[16]byte) {
		msb := src[0] >> 7
		for i := 0; i < 15; i++ {
			dst[i] = src[i]<<1 | src[i+1]>>7
		}
		// R_128 = 0^120 || 10000111, applied when the top bit was set.
		dst[15] = src[15]<<1 ^ byte(subtle.ConstantTimeByteEq(msb, 1))*0x87
	}
	dbl(&k1, &l)
	dbl(&k2, &k1)
	clear(l[:])
	return k1, k2
}

// cmac is CMAC as a hash.Hash. The last block, complete or not, is held
// back until Sum, since it is the one XORed with a subkey.
type cmac struct {
	b      cipher.Block
	k1, k2 [16]byte
	x      [16]byte // chaining value
	buf    [16]byte
	n      int // bytes in buf
}

func (c *cmac) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if c.n == 16 {
			subtle.XORBytes(c.x[:], c.x[:], c.buf[:])
			c.b.Encrypt(c.x[:], c.x[:])
			c.n = 0
		}
		k := copy(c.buf[c.n:], p)
		c.n += k
		p = p[k:]
	}
	return total, nil
}

func (c *cmac) Sum(in []byte) []byte {
	var last [16]byte
	if c.n == 16 {
		subtle.XORBytes(last[:], c.buf[:], c.k1[:])
	} else {
		copy(last[:], c.buf[:c.n])
		last[c.n] = 0x80
		subtle.XORBytes(last[:], last[:], c.k2[:])
	}
	subtle.XORBytes(last[:], last[:], c.x[:])
	c.b.Encrypt(last[:], last[:])
	return append(in, last[:]...)
}

func (c *cmac) Reset() {
	clear(c.x[:])
	clear(c.buf[:])
	c.n = 0
}

func (c *cmac) Size() int      { return 16 }
func (c *cmac) BlockSize() int { return 16 }
