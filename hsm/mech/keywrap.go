package mech

import (
	"bytes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// AES key wrap (NIST SP 800-38F): KW is RFC 3394, KWP is RFC 5649, and
// CKM_AES_KEY_WRAP_PAD / _PKCS7 are RFC 3394 over PKCS#7-padded input
// (PKCS#11 3.0 mechanisms §2.15). All are single-part: C_WrapKey/C_UnwrapKey
// and single-part C_Encrypt/C_Decrypt.

var kwIV = []byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}
var kwpIV = []byte{0xA6, 0x59, 0x59, 0xA6}

type kwVariant int

const (
	kwPlain  kwVariant = iota // RFC 3394, input a multiple of 8, at least 16
	kwPKCS7                   // PKCS#7 to a 16-byte multiple, then RFC 3394
	kwPadded                  // RFC 5649
)

func keyWrapMechanisms() []Mechanism {
	info := ck.MechanismInfo{MinKeySize: 16, MaxKeySize: 32,
		Flags: ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_WRAP | ck.CKF_UNWRAP}
	mk := func(t ck.MechanismType, v kwVariant) Mechanism {
		return Mechanism{Type: t, Info: info, KeyTypes: []ck.KeyType{ck.CKK_AES},
			Encrypt: func(k *Key, p any) (Cipher, error) { return newKW(k, p, t, v, true) },
			Decrypt: func(k *Key, p any) (Cipher, error) { return newKW(k, p, t, v, false) },
		}
	}
	return []Mechanism{
		mk(ck.CKM_AES_KEY_WRAP, kwPlain),
		mk(ck.CKM_AES_KEY_WRAP_PAD, kwPKCS7),
		mk(ck.CKM_AES_KEY_WRAP_KWP, kwPadded),
		mk(ck.CKM_AES_KEY_WRAP_PKCS7, kwPKCS7),
	}
}

type kwCipher struct {
	b       cipher.Block
	mt      ck.MechanismType
	v       kwVariant
	iv      []byte
	encrypt bool
}

func newKW(k *Key, param any, mt ck.MechanismType, v kwVariant, encrypt bool) (Cipher, error) {
	b, err := aesBlock(k)
	if err != nil {
		return nil, err
	}
	iv := kwIV
	if v == kwPadded {
		iv = kwpIV
	}
	// The parameter is an optional alternative initial value (§2.15.3).
	if p, ok := param.([]byte); ok && len(p) > 0 {
		if len(p) != len(iv) {
			return nil, fmt.Errorf("%v: IV of %d bytes: %w", mt, len(p), ck.CKR_MECHANISM_PARAM_INVALID)
		}
		iv = append([]byte{}, p...)
	} else if err := noParam(mt, param); err != nil {
		return nil, err
	}
	return &kwCipher{b: b, mt: mt, v: v, iv: iv, encrypt: encrypt}, nil
}

func (c *kwCipher) multi() error {
	return fmt.Errorf("%v is single-part: %w", c.mt, ck.CKR_FUNCTION_NOT_SUPPORTED)
}

func (c *kwCipher) UpdateLen(int) int                    { return 0 }
func (c *kwCipher) Update(dst, _ []byte) ([]byte, error) { return dst, c.multi() }
func (c *kwCipher) FinalLen() int                        { return 0 }
func (c *kwCipher) Final(dst []byte) ([]byte, error)     { return dst, c.multi() }

func (c *kwCipher) OneShotLen(n int) int {
	if !c.encrypt {
		return n
	}
	switch c.v {
	case kwPKCS7:
		return n + 16 - n%16 + 8
	case kwPadded:
		return (n+7)/8*8 + 8
	}
	return n + 8
}

func (c *kwCipher) OneShot(dst, src []byte) ([]byte, error) {
	var out []byte
	var err error
	if c.encrypt {
		out, err = c.wrap(src)
	} else {
		out, err = c.unwrap(src)
	}
	if err != nil {
		return nil, err
	}
	return append(dst, out...), nil
}

func (c *kwCipher) wrap(src []byte) ([]byte, error) {
	switch c.v {
	case kwPKCS7:
		pad := 16 - len(src)%16
		return kwWrap(c.b, c.iv, append(append([]byte{}, src...), bytes.Repeat([]byte{byte(pad)}, pad)...)), nil
	case kwPadded:
		if len(src) == 0 || uint64(len(src)) > 0xffffffff {
			return nil, fmt.Errorf("%v: %d bytes: %w", c.mt, len(src), ck.CKR_DATA_LEN_RANGE)
		}
		aiv := make([]byte, 8)
		copy(aiv, c.iv)
		binary.BigEndian.PutUint32(aiv[4:], uint32(len(src)))
		p := make([]byte, (len(src)+7)/8*8)
		copy(p, src)
		if len(p) == 8 {
			// RFC 5649 §4.1: one semiblock is a single AES encryption.
			out := make([]byte, 16)
			c.b.Encrypt(out, append(aiv, p...))
			return out, nil
		}
		return kwWrap(c.b, aiv, p), nil
	}
	if len(src) < 16 || len(src)%8 != 0 {
		return nil, fmt.Errorf("%v: %d bytes, want a multiple of 8 of at least 16: %w", c.mt, len(src), ck.CKR_DATA_LEN_RANGE)
	}
	return kwWrap(c.b, c.iv, src), nil
}

func (c *kwCipher) unwrap(src []byte) ([]byte, error) {
	bad := fmt.Errorf("%v: %w", c.mt, ck.CKR_ENCRYPTED_DATA_INVALID)
	if len(src) < 16 || len(src)%8 != 0 {
		return nil, fmt.Errorf("%v: %d bytes: %w", c.mt, len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	switch c.v {
	case kwPadded:
		var a, p []byte
		if len(src) == 16 {
			blk := make([]byte, 16)
			c.b.Decrypt(blk, src)
			a, p = blk[:8], blk[8:]
		} else {
			a, p = kwUnwrap(c.b, src)
		}
		n := int(binary.BigEndian.Uint32(a[4:]))
		// Check the constant, the length and the zero padding together so
		// that a failure reveals nothing about which part failed.
		ok := subtle.ConstantTimeCompare(a[:4], c.iv[:4])
		lenOK := n > len(p)-8 && n <= len(p)
		if !lenOK || ok != 1 {
			return nil, bad
		}
		var z byte
		for _, x := range p[n:] {
			z |= x
		}
		if z != 0 {
			return nil, bad
		}
		return p[:n], nil
	case kwPKCS7:
		if len(src) < 24 {
			return nil, fmt.Errorf("%v: %d bytes: %w", c.mt, len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
		}
		a, p := kwUnwrap(c.b, src)
		if subtle.ConstantTimeCompare(a, c.iv) != 1 || len(p)%16 != 0 {
			return nil, bad
		}
		pad := int(p[len(p)-1])
		if pad < 1 || pad > 16 {
			return nil, bad
		}
		for _, x := range p[len(p)-pad:] {
			if int(x) != pad {
				return nil, bad
			}
		}
		return p[:len(p)-pad], nil
	}
	if len(src) < 24 {
		return nil, fmt.Errorf("%v: %d bytes: %w", c.mt, len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	a, p := kwUnwrap(c.b, src)
	if subtle.ConstantTimeCompare(a, c.iv) != 1 {
		return nil, bad
	}
	return p, nil
}

// kwWrap is W(S) of SP 800-38F §6.1 (RFC 3394 §2.2.1, index form).
func kwWrap(b cipher.Block, iv, p []byte) []byte {
	n := len(p) / 8
	out := make([]byte, 8+len(p))
	copy(out[8:], p)
	a := append([]byte{}, iv...)
	blk := make([]byte, 16)
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(blk, a)
			copy(blk[8:], out[8*i:8*i+8])
			b.Encrypt(blk, blk)
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(blk[:8])^t)
			copy(out[8*i:], blk[8:])
		}
	}
	copy(out, a)
	return out
}

// kwUnwrap is W⁻¹(C); it returns the recovered integrity value and data.
func kwUnwrap(b cipher.Block, c []byte) (a, p []byte) {
	n := len(c)/8 - 1
	p = make([]byte, 8*n)
	copy(p, c[8:])
	a = append([]byte{}, c[:8]...)
	blk := make([]byte, 16)
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(blk, binary.BigEndian.Uint64(a)^t)
			copy(blk[8:], p[8*(i-1):8*i])
			b.Decrypt(blk, blk)
			copy(a, blk[:8])
			copy(p[8*(i-1):], blk[8:])
		}
	}
	return a, p
}
