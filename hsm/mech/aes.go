package mech

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
	"sync"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// AES (PKCS#11 2.40 Current Mechanisms, "AES" and "GCM"). Key sizes are in
// bytes, as CK_MECHANISM_INFO reports them for AES. The key material is the
// cipher.Block, built once per key object; crypto/aes blocks are safe for
// concurrent use.

func aesMechanisms() []Mechanism {
	info := func(f ck.Flags) ck.MechanismInfo { return ck.MechanismInfo{MinKeySize: 16, MaxKeySize: 32, Flags: f} }
	kts := []ck.KeyType{ck.CKK_AES}
	ms := []Mechanism{{
		Type: ck.CKM_AES_KEY_GEN,
		Info: info(ck.CKF_GENERATE),
		GenerateKey: func(t attr.Template) (attr.Template, error) {
			if _, err := templateKeyType(t, ck.CKK_AES); err != nil {
				return nil, err
			}
			n, err := requiredValueLen(t)
			if err != nil {
				return nil, err
			}
			if n != 16 && n != 24 && n != 32 {
				return nil, fmt.Errorf("aes key gen: %d bytes: %w", n, ck.CKR_KEY_SIZE_RANGE)
			}
			return randomSecret(ck.CKK_AES, int(n))
		},
	}}
	for _, e := range []struct {
		m    ck.MechanismType
		mode blockMode
	}{{ck.CKM_AES_ECB, modeECB}, {ck.CKM_AES_CBC, modeCBC}, {ck.CKM_AES_CBC_PAD, modeCBCPad}, {ck.CKM_AES_CTR, modeCTR}} {
		ms = append(ms, blockModeMechanism(e.m, e.mode, aes.BlockSize, aesBlock, info(0), kts, true))
	}
	ms = append(ms, Mechanism{
		Type: ck.CKM_AES_GCM, Info: info(ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_MESSAGE_ENCRYPT | ck.CKF_MESSAGE_DECRYPT | ck.CKF_WRAP | ck.CKF_UNWRAP), KeyTypes: kts,
		// C_WrapKey uses only IVs the token makes (returned in pIv).
		IV: IVNonce, Nonce: gcmNonce, MessageNonceByToken: gcmMessageNonceByToken,
		Encrypt: func(k *Key, param any) (Cipher, error) { return aesGCM(k, param, true) },
		Decrypt: func(k *Key, param any) (Cipher, error) { return aesGCM(k, param, false) },
		// The message-based functions (aead_message.go).
		MessageEncrypt: func(k *Key, param any) (MessageCipher, error) { return newGCMMessages(k, param, true) },
		MessageDecrypt: func(k *Key, param any) (MessageCipher, error) { return newGCMMessages(k, param, false) },
	})
	return ms
}

func aesKeyKinds() []KeyKind {
	return []KeyKind{{
		Type:    ck.CKK_AES,
		Parse:   parseAES,
		Derived: valueLenDerived,
		Secret:  []ck.AttributeType{ck.CKA_VALUE},
		Size:    valueSize,
	}}
}

// aesMaterial is a parsed AES key. The cipher (the expanded key schedule)
// is made on first use: a key object is validated when it is made, and
// many (one per KEM call, say) are destroyed unused. The value is copied,
// so zeroing the object's attribute at logout cannot change a schedule
// made later from a material that an operation still holds.
type aesMaterial struct {
	once  sync.Once
	key   []byte // buf[:16, 24 or 32]: one allocation holds both
	buf   [32]byte
	block cipher.Block
}

func parseAES(class ck.ObjectClass, a attr.Template) (any, error) {
	if class != ck.CKO_SECRET_KEY {
		return nil, fmt.Errorf("CKK_AES: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	v, ok := a.Get(ck.CKA_VALUE)
	if !ok {
		return nil, fmt.Errorf("CKK_AES: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	switch len(v) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("CKK_AES: CKA_VALUE of %d bytes: %w", len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	m := &aesMaterial{}
	m.key = m.buf[:copy(m.buf[:], v)]
	return m, nil
}

func aesBlock(k *Key) (cipher.Block, error) {
	m, err := keyMaterial(k, parseAES)
	if err != nil {
		return nil, err
	}
	am, ok := m.(*aesMaterial)
	if !ok {
		return nil, fmt.Errorf("AES: key material %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	am.once.Do(func() {
		// The length was checked by parseAES, so NewCipher cannot fail.
		am.block, _ = aes.NewCipher(am.key)
	})
	if am.block == nil {
		return nil, fmt.Errorf("AES: key schedule: %w", ck.CKR_GENERAL_ERROR)
	}
	return am.block, nil
}

func aesGCM(k *Key, param any, encrypt bool) (Cipher, error) {
	b, err := aesBlock(k)
	if err != nil {
		return nil, err
	}
	p, ok := paramAs[ck.GCMParams](param)
	if !ok {
		return nil, fmt.Errorf("AES_GCM: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return newGCMCipher(b, p, encrypt)
}

// gcmCipher is GCM over any 16-byte block cipher (AES here; SM4-GCM can
// reuse newGCMCipher). Multi-part input is buffered and everything is
// emitted at Final, as most tokens do: decryption must not release
// plaintext before the tag is checked.
//
// Tags: PKCS#11 allows 0..128 bits; we accept 32..128 in whole bytes.
// Go's GCM only produces 12..16-byte tags and only with 12-byte nonces, so
// the AEAD is always built with a 16-byte tag: encryption truncates it,
// and decryption with a short tag recovers the plaintext by running the
// CTR keystream (Seal over the ciphertext), recomputes the full tag over
// that plaintext, and compares the prefix in constant time before
// releasing anything.
type gcmCipher struct {
	aead   cipher.AEAD
	iv     []byte
	aad    []byte
	tagLen int
	enc    bool
	buf    []byte
}

func newGCMCipher(b cipher.Block, p ck.GCMParams, encrypt bool) (*gcmCipher, error) {
	if len(p.IV) < 1 || len(p.IV) > 256 {
		return nil, fmt.Errorf("GCM: IV of %d bytes: %w", len(p.IV), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if p.TagBits < 32 || p.TagBits > 128 || p.TagBits%8 != 0 {
		return nil, fmt.Errorf("GCM: tag of %d bits: %w", p.TagBits, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	var aead cipher.AEAD
	var err error
	if len(p.IV) == 12 {
		aead, err = cipher.NewGCM(b)
	} else {
		aead, err = cipher.NewGCMWithNonceSize(b, len(p.IV))
	}
	if err != nil {
		return nil, fmt.Errorf("GCM: %v: %w", err, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return &gcmCipher{
		aead: aead, iv: append([]byte(nil), p.IV...), aad: append([]byte(nil), p.AAD...),
		tagLen: int(p.TagBits / 8), enc: encrypt,
	}, nil
}

func (g *gcmCipher) UpdateLen(int) int { return 0 }

func (g *gcmCipher) Update(dst, src []byte) ([]byte, error) {
	g.buf = append(g.buf, src...)
	return dst, nil
}

func (g *gcmCipher) FinalLen() int { return g.OneShotLen(len(g.buf)) }

func (g *gcmCipher) Final(dst []byte) ([]byte, error) {
	out, err := g.OneShot(dst, g.buf)
	zero(g.buf)
	g.buf = g.buf[:0]
	return out, err
}

func (g *gcmCipher) OneShotLen(n int) int {
	if g.enc {
		return n + g.tagLen
	}
	return max(n-g.tagLen, 0)
}

func (g *gcmCipher) OneShot(dst, src []byte) ([]byte, error) {
	if g.enc {
		out := g.aead.Seal(dst, g.iv, src, g.aad)
		return out[:len(dst)+len(src)+g.tagLen], nil
	}
	if len(src) < g.tagLen {
		return dst, fmt.Errorf("GCM: %d bytes, shorter than the tag: %w", len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	if g.tagLen == g.aead.Overhead() {
		out, err := g.aead.Open(dst, g.iv, src, g.aad)
		if err != nil {
			return dst, fmt.Errorf("GCM: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
		}
		return out, nil
	}
	ct, tag := src[:len(src)-g.tagLen], src[len(src)-g.tagLen:]
	// GCM encryption is CTR from inc32(J0), so sealing the ciphertext
	// yields the plaintext (its tag is meaningless and dropped).
	pt := g.aead.Seal(nil, g.iv, ct, nil)[:len(ct)]
	full := g.aead.Seal(nil, g.iv, pt, g.aad)
	ok := subtle.ConstantTimeCompare(full[len(pt):len(pt)+g.tagLen], tag)
	zero(full)
	if ok != 1 {
		zero(pt)
		return dst, fmt.Errorf("GCM: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	out := append(dst, pt...)
	zero(pt)
	return out, nil
}
