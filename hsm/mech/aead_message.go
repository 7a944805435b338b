package mech

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Message-based AEAD (PKCS#11 3.0 §5.9-§5.12, "Message-based
// encryption/decryption") for CKM_AES_GCM and CKM_CHACHA20_POLY1305. The
// per-message parameter carries the IV (or nonce) and the tag, which is
// returned through it, not appended to the ciphertext: ciphertext and
// plaintext have the same length.
//
// IV generation (CK_GCM_MESSAGE_PARAMS.ivGenerator, encryption only;
// decryption uses the IV as given). The leading ulIvFixedBits bits are the
// caller's, the rest the token's:
//   - CKG_GENERATE and CKG_GENERATE_COUNTER put a per-operation counter,
//     starting at 0, in the free bits (SP 800-38D §8.2.1, deterministic
//     construction); CKG_GENERATE_COUNTER_XOR XORs it into the caller's free
//     bits. The counter never wraps: when the free field is exhausted the
//     call fails with CKR_KEY_EXHAUSTED, so no IV repeats within one
//     C_MessageEncryptInit. Uniqueness across operations is the fixed
//     field's job, as SP 800-38D §8.2.1 assigns it.
//   - CKG_GENERATE_RANDOM fills the free bits from crypto/rand (SP 800-38D
//     §8.2.2). It needs at least 64 free bits and allows 2^32 messages with
//     96 or more free bits, 2^(free/2-16) below that, keeping the chance of
//     a repeat under 2^-32.

// msgParam is the mechanism-independent view of one per-message parameter.
type msgParam struct {
	iv        []byte
	fixedBits int
	generator ck.GeneratorFunction
	tag       []byte // decryption input
	tagLen    int
	setIV     func([]byte)
	setTag    func([]byte)
}

// aeadMessages implements MessageCipher over a one-shot AEAD.
type aeadMessages struct {
	name string
	enc  bool
	// view decodes a per-message parameter.
	view func(param any) (*msgParam, error)
	// seal returns the ciphertext and a tagLen-byte tag; open checks the tag.
	seal func(iv, aad, pt []byte, tagLen int) (ct, tag []byte, err error)
	open func(iv, aad, ct, tag []byte) ([]byte, error)
	gen  ivGenerator

	begun  bool
	iv     []byte
	aad    []byte
	tag    []byte
	tagLen int
}

func (a *aeadMessages) OutLen(n int) int { return n }

func (a *aeadMessages) Begin(param any, aad []byte) error {
	a.Abort()
	p, err := a.view(param)
	if err != nil {
		return err
	}
	iv := append([]byte(nil), p.iv...)
	if a.enc && p.generator != ck.CKG_NO_GENERATE {
		if err := a.gen.next(iv, p.fixedBits, p.generator); err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
		p.setIV(append([]byte(nil), iv...))
	}
	a.begun, a.iv, a.aad, a.tagLen = true, iv, append([]byte(nil), aad...), p.tagLen
	if !a.enc {
		a.tag = append([]byte(nil), p.tag...)
	}
	return nil
}

func (a *aeadMessages) Finish(param any, in []byte) ([]byte, error) {
	if !a.begun {
		return nil, fmt.Errorf("%s: no message begun: %w", a.name, ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	defer a.Abort()
	var p *msgParam
	if param != nil {
		var err error
		if p, err = a.view(param); err != nil {
			return nil, err
		}
	}
	if a.enc {
		if p == nil {
			return nil, fmt.Errorf("%s: no parameter to return the tag in: %w", a.name, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		if p.tagLen != a.tagLen {
			return nil, fmt.Errorf("%s: tag length changed within a message: %w", a.name, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		ct, tag, err := a.seal(a.iv, a.aad, in, a.tagLen)
		if err != nil {
			return nil, err
		}
		p.setTag(tag)
		return ct, nil
	}
	tag := a.tag
	if p != nil {
		tag = p.tag
	}
	if len(tag) != a.tagLen {
		return nil, fmt.Errorf("%s: tag of %d bytes, want %d: %w", a.name, len(tag), a.tagLen, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return a.open(a.iv, a.aad, in, tag)
}

func (a *aeadMessages) Abort() {
	zero(a.aad)
	a.begun, a.iv, a.aad, a.tag = false, nil, nil, nil
}

// ivGenerator is one operation's IV generator state.
type ivGenerator struct {
	used uint64
}

func (g *ivGenerator) next(iv []byte, fixedBits int, fn ck.GeneratorFunction) error {
	free := len(iv)*8 - fixedBits
	if fixedBits < 0 || free <= 0 {
		return fmt.Errorf("%d fixed bits of a %d-bit IV: %w", fixedBits, len(iv)*8, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	var limit uint64 // 0: more than 2^64 messages, no limit in practice
	switch fn {
	case ck.CKG_GENERATE, ck.CKG_GENERATE_COUNTER, ck.CKG_GENERATE_COUNTER_XOR:
		if free < 64 {
			limit = 1 << free
		}
	case ck.CKG_GENERATE_RANDOM:
		if free < 64 {
			return fmt.Errorf("random IV with %d free bits: %w", free, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		limit = 1 << 32
		if free < 96 {
			limit = 1 << (free/2 - 16)
		}
	default:
		return fmt.Errorf("IV generator %d: %w", fn, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if limit != 0 && g.used >= limit {
		return fmt.Errorf("IV space exhausted after %d messages: %w", g.used, ck.CKR_KEY_EXHAUSTED)
	}
	var field []byte
	if fn == ck.CKG_GENERATE_RANDOM {
		field = make([]byte, len(iv))
		if _, err := rand.Read(field); err != nil {
			return fmt.Errorf("random IV: %v: %w", err, ck.CKR_FUNCTION_FAILED)
		}
	} else {
		field = make([]byte, len(iv))
		for i, c := 0, g.used; i < 8 && i < len(field); i++ {
			field[len(field)-1-i] = byte(c)
			c >>= 8
		}
	}
	// The free bits are the last free bits of iv: whole bytes from
	// fixedBits/8+1 on, and the low bits of byte fixedBits/8.
	first := fixedBits / 8
	mask := byte(0xff >> (fixedBits % 8))
	for i := first; i < len(iv); i++ {
		m := byte(0xff)
		if i == first {
			m = mask
		}
		if fn == ck.CKG_GENERATE_COUNTER_XOR {
			iv[i] ^= field[i] & m
		} else {
			iv[i] = iv[i]&^m | field[i]&m
		}
	}
	g.used++
	return nil
}

// gcmMessageNonceByToken is Mechanism.MessageNonceByToken for GCM.
func gcmMessageNonceByToken(param any) bool {
	p, ok := param.(*ck.GCMMessageParams)
	return ok && p != nil && p.IVGenerator == ck.CKG_GENERATE_RANDOM &&
		ck.ULong(len(p.IV))*8 >= p.IVFixedBits+96
}

// gcmMessageParam views a *ck.GCMMessageParams. It must be a pointer: the
// IV and tag are written back into it.
func gcmMessageParam(param any) (*msgParam, error) {
	p, ok := param.(*ck.GCMMessageParams)
	if !ok || p == nil {
		return nil, fmt.Errorf("CKM_AES_GCM: message parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if len(p.IV) < 1 || len(p.IV) > 256 {
		return nil, fmt.Errorf("CKM_AES_GCM: IV of %d bytes: %w", len(p.IV), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if p.TagBits < 32 || p.TagBits > 128 || p.TagBits%8 != 0 {
		return nil, fmt.Errorf("CKM_AES_GCM: tag of %d bits: %w", p.TagBits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if p.IVFixedBits > ck.ULong(len(p.IV))*8 {
		return nil, fmt.Errorf("CKM_AES_GCM: %d fixed IV bits: %w", p.IVFixedBits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return &msgParam{
		iv: p.IV, fixedBits: int(p.IVFixedBits), generator: p.IVGenerator, tag: p.Tag, tagLen: int(p.TagBits / 8),
		setIV:  func(iv []byte) { p.IV = iv },
		setTag: func(t []byte) { p.Tag = t },
	}, nil
}

// messageInitParam accepts what callers pass to C_Message*Init: nothing, or
// a message parameter structure whose values only matter per message.
func messageInitParam[T any](m ck.MechanismType, param any) error {
	switch p := param.(type) {
	case nil, T, *T:
		return nil
	case []byte:
		if len(p) == 0 {
			return nil
		}
	}
	return fmt.Errorf("%v: message init parameter %T: %w", m, param, ck.CKR_MECHANISM_PARAM_INVALID)
}

func newGCMMessages(k *Key, param any, encrypt bool) (MessageCipher, error) {
	b, err := aesBlock(k)
	if err != nil {
		return nil, err
	}
	if err := messageInitParam[ck.GCMMessageParams](ck.CKM_AES_GCM, param); err != nil {
		return nil, err
	}
	// The usual shape (96-bit IV, 128-bit tag) gets one cipher.AEAD for
	// the whole message operation instead of one per message: it holds
	// only the key schedule and the GHASH key, and is safe for reuse.
	std, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("GCM: %v: %w", err, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return &aeadMessages{
		name: "CKM_AES_GCM", enc: encrypt, view: gcmMessageParam,
		seal: func(iv, aad, pt []byte, tagLen int) ([]byte, []byte, error) {
			if len(iv) == std.NonceSize() && tagLen == std.Overhead() {
				out := std.Seal(nil, iv, pt, aad)
				return out[:len(pt)], out[len(pt):], nil
			}
			g, err := newGCMCipher(b, ck.GCMParams{IV: iv, AAD: aad, TagBits: ck.ULong(tagLen * 8)}, true)
			if err != nil {
				return nil, nil, err
			}
			out, _ := g.OneShot(nil, pt)
			return out[:len(pt)], out[len(pt):], nil
		},
		open: func(iv, aad, ct, tag []byte) ([]byte, error) {
			if len(iv) == std.NonceSize() && len(tag) == std.Overhead() {
				in := make([]byte, 0, len(ct)+len(tag))
				out, err := std.Open(nil, iv, append(append(in, ct...), tag...), aad)
				if err != nil {
					return nil, fmt.Errorf("GCM: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
				}
				return out, nil
			}
			g, err := newGCMCipher(b, ck.GCMParams{IV: iv, AAD: aad, TagBits: ck.ULong(len(tag) * 8)}, false)
			if err != nil {
				return nil, err
			}
			in := make([]byte, 0, len(ct)+len(tag))
			return g.OneShot(nil, append(append(in, ct...), tag...))
		},
	}, nil
}

// aeadSealSplit and aeadOpenJoined adapt a cipher.AEAD with a full-length
// tag to the split form of the message API.
func aeadSealSplit(a cipher.AEAD, iv, aad, pt []byte) ([]byte, []byte) {
	out := a.Seal(nil, iv, pt, aad)
	return out[:len(pt)], out[len(pt):]
}

func aeadOpenJoined(name string, a cipher.AEAD, iv, aad, ct, tag []byte) ([]byte, error) {
	in := make([]byte, 0, len(ct)+len(tag))
	out, err := a.Open(nil, iv, append(append(in, ct...), tag...), aad)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	return out, nil
}
