package mech

import (
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
	"math/big"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Block modes shared by every block cipher family (AES, 3DES, SM4): each
// family supplies a cipher.Block built once per key object and gets its
// ECB, CBC, CBC_PAD and CTR mechanisms from here. Entry points:
//
//	blockModeOps(mode, blockOf)  -> Encrypt/Decrypt funcs for a Mechanism
//	newBlockModeCipher(mode, b, param, encrypt) -> one Cipher
//
// Multi-part output is exact: Update emits every complete block it can
// (CBC_PAD decryption holds the last block back for the padding), Final
// the rest. Data that is not a whole number of blocks is
// CKR_DATA_LEN_RANGE (encrypt) or CKR_ENCRYPTED_DATA_LEN_RANGE (decrypt) at
// Final, as the ECB/CBC constraints tables of PKCS#11 2.40 Current
// Mechanisms ("AES-ECB", "AES-CBC") prescribe.

// blockMode names a block cipher mode.
type blockMode int

const (
	modeECB    blockMode = iota // no parameter
	modeCBC                     // parameter: IV, one block
	modeCBCPad                  // CBC with PKCS #7 padding; parameter: IV
	modeCTR                     // parameter: ck.CTRParams; 16-byte blocks only
)

func (m blockMode) String() string {
	return [...]string{"ECB", "CBC", "CBC_PAD", "CTR"}[m]
}

// blockModeOps returns the Encrypt and Decrypt functions of a Mechanism in
// mode m, for a family whose keys yield their cipher.Block through blockOf.
func blockModeOps(m blockMode, blockOf func(*Key) (cipher.Block, error)) (enc, dec func(*Key, any) (Cipher, error)) {
	mk := func(encrypt bool) func(*Key, any) (Cipher, error) {
		return func(k *Key, param any) (Cipher, error) {
			b, err := blockOf(k)
			if err != nil {
				return nil, err
			}
			return newBlockModeCipher(m, b, param, encrypt)
		}
	}
	return mk(true), mk(false)
}

// blockModeMechanism is a block cipher family's mechanism in mode m, with
// the safety properties of the mode (IVKind, the nonce buffer for CTR and
// the zero padding of key wrapping) stated once here for every family. A
// wrapping mode (wrap true) gets CKF_WRAP and CKF_UNWRAP: ECB and CBC pad a
// key with zeros to the block size (2.40 mechanisms §2.10.3-2.10.4: "the
// key is padded with zeros"), CBC_PAD with PKCS #7.
func blockModeMechanism(t ck.MechanismType, m blockMode, bs int, blockOf func(*Key) (cipher.Block, error),
	info ck.MechanismInfo, keyTypes []ck.KeyType, wrap bool) Mechanism {
	enc, dec := blockModeOps(m, blockOf)
	info.Flags |= ck.CKF_ENCRYPT | ck.CKF_DECRYPT
	mm := Mechanism{Type: t, Info: info, KeyTypes: keyTypes, Encrypt: enc, Decrypt: dec}
	switch m {
	case modeECB:
		mm.IV = IVNone
	case modeCBC, modeCBCPad:
		mm.IV = IVBlock
	case modeCTR:
		mm.IV, mm.Nonce = IVNonce, ctrNonce
	}
	if wrap && m != modeCTR {
		mm.Info.Flags |= ck.CKF_WRAP | ck.CKF_UNWRAP
		if m != modeCBCPad {
			mm.WrapPad = bs
		}
	}
	return mm
}

// ctrNonce is the counter block of CK_AES_CTR_PARAMS, in place.
func ctrNonce(param any) []byte {
	if p, ok := param.(*ck.CTRParams); ok && p != nil {
		return p.CB[:]
	}
	return nil
}

// gcmNonce is the IV of CK_GCM_PARAMS, in place.
func gcmNonce(param any) []byte {
	if p, ok := param.(*ck.GCMParams); ok && p != nil {
		return p.IV
	}
	return nil
}

// newBlockModeCipher decodes the mode's parameter and returns the Cipher.
func newBlockModeCipher(m blockMode, b cipher.Block, param any, encrypt bool) (Cipher, error) {
	bs := b.BlockSize()
	switch m {
	case modeECB:
		if err := noParam(0, param); err != nil {
			return nil, fmt.Errorf("ECB: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
		return &blockCipher{b: b, bs: bs, mode: m, enc: encrypt}, nil
	case modeCBC, modeCBCPad:
		iv, ok := paramAs[[]byte](param)
		if !ok || len(iv) != bs {
			return nil, fmt.Errorf("%v: IV must be %d bytes: %w", m, bs, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		return &blockCipher{b: b, bs: bs, mode: m, enc: encrypt,
			iv0: append([]byte(nil), iv...), iv: append([]byte(nil), iv...)}, nil
	case modeCTR:
		p, ok := paramAs[ck.CTRParams](param)
		if !ok {
			return nil, fmt.Errorf("CTR: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		return newCTRCipher(b, p, encrypt)
	}
	return nil, fmt.Errorf("block mode %d: %w", m, ck.CKR_MECHANISM_INVALID)
}

// blockCipher is ECB, CBC or CBC_PAD.
type blockCipher struct {
	b    cipher.Block
	bs   int
	mode blockMode
	enc  bool
	iv0  []byte // the caller's IV, for OneShot
	iv   []byte // chaining value of the multi-part operation
	buf  []byte // pending input, at most one block
}

func (c *blockCipher) lenErr() error {
	if c.enc {
		return fmt.Errorf("%v: data not a multiple of %d bytes: %w", c.mode, c.bs, ck.CKR_DATA_LEN_RANGE)
	}
	return fmt.Errorf("%v: ciphertext not a multiple of %d bytes: %w", c.mode, c.bs, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
}

// ready is how many of total pending bytes Update can process now.
func (c *blockCipher) ready(total int) int {
	n := total - total%c.bs
	if c.mode == modeCBCPad && !c.enc && n == total && n > 0 {
		n -= c.bs // keep the last block for Final to unpad
	}
	return n
}

func (c *blockCipher) UpdateLen(n int) int { return c.ready(len(c.buf) + n) }

func (c *blockCipher) Update(dst, src []byte) ([]byte, error) {
	n := c.ready(len(c.buf) + len(src))
	out, tail := sliceForAppend(dst, n)
	if n == 0 {
		c.buf = append(c.buf, src...)
		return out, nil
	}
	if len(c.buf) > 0 {
		k := c.bs - len(c.buf)
		c.buf = append(c.buf, src[:k]...)
		src = src[k:]
		c.crypt(tail[:c.bs], c.buf)
		tail = tail[c.bs:]
		zero(c.buf)
		c.buf = c.buf[:0]
	}
	m := len(tail)
	c.crypt(tail, src[:m])
	c.buf = append(c.buf, src[m:]...)
	return out, nil
}

// crypt processes whole blocks, advancing the CBC chaining value.
func (c *blockCipher) crypt(dst, src []byte) {
	if len(src) == 0 {
		return
	}
	switch {
	case c.mode == modeECB && c.enc:
		for i := 0; i < len(src); i += c.bs {
			c.b.Encrypt(dst[i:i+c.bs], src[i:i+c.bs])
		}
	case c.mode == modeECB:
		for i := 0; i < len(src); i += c.bs {
			c.b.Decrypt(dst[i:i+c.bs], src[i:i+c.bs])
		}
	case c.enc:
		cipher.NewCBCEncrypter(c.b, c.iv).CryptBlocks(dst, src)
		copy(c.iv, dst[len(dst)-c.bs:])
	default:
		next := make([]byte, c.bs)
		copy(next, src[len(src)-c.bs:])
		cipher.NewCBCDecrypter(c.b, c.iv).CryptBlocks(dst, src)
		copy(c.iv, next)
	}
}

func (c *blockCipher) FinalLen() int {
	if c.mode != modeCBCPad {
		return 0
	}
	if c.enc {
		return c.bs
	}
	if len(c.buf) != c.bs {
		return 0
	}
	// Decrypting one block is cheap, so the answer is exact.
	blk := make([]byte, c.bs)
	defer zero(blk)
	cipher.NewCBCDecrypter(c.b, c.iv).CryptBlocks(blk, c.buf)
	pad, ok := pkcs7Pad(blk)
	if !ok {
		return 0
	}
	return c.bs - pad
}

func (c *blockCipher) Final(dst []byte) ([]byte, error) {
	defer func() { zero(c.buf); c.buf = c.buf[:0] }()
	if c.mode != modeCBCPad {
		if len(c.buf) != 0 {
			return dst, c.lenErr()
		}
		return dst, nil
	}
	blk := make([]byte, c.bs)
	defer zero(blk)
	if c.enc {
		p := c.bs - len(c.buf)
		copy(blk, c.buf)
		for i := len(c.buf); i < c.bs; i++ {
			blk[i] = byte(p)
		}
		out, tail := sliceForAppend(dst, c.bs)
		c.crypt(tail, blk)
		return out, nil
	}
	if len(c.buf) != c.bs {
		return dst, c.lenErr()
	}
	c.crypt(blk, c.buf)
	pad, ok := pkcs7Pad(blk)
	if !ok {
		return dst, fmt.Errorf("CBC_PAD: bad padding: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	return append(dst, blk[:c.bs-pad]...), nil
}

func (c *blockCipher) OneShotLen(n int) int {
	if c.mode == modeCBCPad && c.enc {
		return n + c.bs - n%c.bs
	}
	return n
}

func (c *blockCipher) OneShot(dst, src []byte) ([]byte, error) {
	if c.mode != modeCBCPad || !c.enc {
		if len(src)%c.bs != 0 || (c.mode == modeCBCPad && len(src) == 0) {
			return dst, c.lenErr()
		}
	}
	fresh := &blockCipher{b: c.b, bs: c.bs, mode: c.mode, enc: c.enc, iv: append([]byte(nil), c.iv0...)}
	out, err := fresh.Update(dst, src)
	if err != nil {
		return dst, err
	}
	out, err = fresh.Final(out)
	if err != nil {
		zero(out[len(dst):])
		return dst, err
	}
	return out, nil
}

// pkcs7Pad checks PKCS #7 padding of the last block in constant time and
// returns the pad length. Constant time matters because a padding oracle
// is the classic CBC attack; the PKCS#11 return code itself still tells
// the caller, which the API cannot avoid.
func pkcs7Pad(blk []byte) (int, bool) {
	bs := len(blk)
	pad := int(blk[bs-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, bs)
	for i := 0; i < bs; i++ {
		inPad := subtle.ConstantTimeLessOrEq(bs-pad, i)
		eq := subtle.ConstantTimeByteEq(blk[i], byte(pad))
		good &= subtle.ConstantTimeSelect(inPad, eq, 1)
	}
	return pad, good == 1
}

// ctrCipher is CTR mode with the PKCS#11 counter-width rule: the low
// CounterBits bits of the counter block count, and running past their end
// is an error instead of a silent wrap into the nonce.
type ctrCipher struct {
	b      cipher.Block
	cb     []byte
	s      cipher.Stream
	enc    bool
	limit  uint64 // blocks available from cb; 0 = more than fit in 64 bits
	offset uint64 // bytes processed by the multi-part operation
}

func newCTRCipher(b cipher.Block, p ck.CTRParams, encrypt bool) (*ctrCipher, error) {
	bs := b.BlockSize()
	if bs != len(p.CB) {
		return nil, fmt.Errorf("CTR: needs a %d-byte block cipher: %w", len(p.CB), ck.CKR_MECHANISM_INVALID)
	}
	if p.CounterBits < 1 || p.CounterBits > ck.ULong(8*bs) {
		return nil, fmt.Errorf("CTR: counter bits %d: %w", p.CounterBits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	// Blocks left = 2^bits - (counter field value); computed once.
	ctr := new(big.Int).SetBytes(p.CB[:])
	space := new(big.Int).Lsh(big.NewInt(1), uint(p.CounterBits))
	ctr.Mod(ctr, space)
	left := space.Sub(space, ctr)
	c := &ctrCipher{b: b, cb: append([]byte(nil), p.CB[:]...), enc: encrypt}
	if left.BitLen() <= 63 {
		c.limit = left.Uint64()
	}
	c.s = cipher.NewCTR(b, c.cb)
	return c, nil
}

func (c *ctrCipher) room(offset uint64, n int) error {
	if c.limit == 0 {
		return nil
	}
	bs := uint64(len(c.cb))
	if end := offset + uint64(n); end < offset || (end+bs-1)/bs > c.limit {
		if c.enc {
			return fmt.Errorf("CTR: counter space exhausted: %w", ck.CKR_DATA_LEN_RANGE)
		}
		return fmt.Errorf("CTR: counter space exhausted: %w", ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	return nil
}

func (c *ctrCipher) UpdateLen(n int) int  { return n }
func (c *ctrCipher) FinalLen() int        { return 0 }
func (c *ctrCipher) OneShotLen(n int) int { return n }

func (c *ctrCipher) Update(dst, src []byte) ([]byte, error) {
	if err := c.room(c.offset, len(src)); err != nil {
		return dst, err
	}
	out, tail := sliceForAppend(dst, len(src))
	c.s.XORKeyStream(tail, src)
	c.offset += uint64(len(src))
	return out, nil
}

func (c *ctrCipher) Final(dst []byte) ([]byte, error) { return dst, nil }

func (c *ctrCipher) OneShot(dst, src []byte) ([]byte, error) {
	if err := c.room(0, len(src)); err != nil {
		return dst, err
	}
	out, tail := sliceForAppend(dst, len(src))
	cipher.NewCTR(c.b, c.cb).XORKeyStream(tail, src)
	return out, nil
}
