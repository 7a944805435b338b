package mech

import (
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// ChaCha20 keys and CKM_CHACHA20_POLY1305 (PKCS#11 3.0 current mechanisms
// §2.x "ChaCha20" and "Salsa20/ChaCha20 with Poly1305"; RFC 8439), on
// golang.org/x/crypto/chacha20poly1305.
//
// CKK_CHACHA20 keys are 32 bytes (key sizes in bytes, as for AES). The nonce
// is 12 bytes (RFC 8439) or 24 (XChaCha20-Poly1305); the 8-byte original
// ChaCha20 nonce is refused, as x/crypto does not offer it. The tag is
// always 16 bytes. The key material is the 32-byte value: the AEAD holds no
// state that is costly to rebuild, and building it per operation keeps
// parsed material free of anything but bytes.
//
// C_Encrypt/C_Decrypt take CK_SALSA20_CHACHA20_POLY1305_PARAMS and append
// the tag to the ciphertext; multi-part input is buffered and emitted at
// Final, as for GCM. The message-based functions take
// CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS, whose nonce the caller always
// supplies (the structure has no generator).

const chachaKeyLen = chacha20poly1305.KeySize

func chacha20Mechanisms() []Mechanism {
	info := func(f ck.Flags) ck.MechanismInfo {
		return ck.MechanismInfo{MinKeySize: chachaKeyLen, MaxKeySize: chachaKeyLen, Flags: f}
	}
	kts := []ck.KeyType{ck.CKK_CHACHA20}
	return []Mechanism{{
		Type: ck.CKM_CHACHA20_KEY_GEN,
		Info: info(ck.CKF_GENERATE),
		GenerateKey: func(t attr.Template) (attr.Template, error) {
			if _, err := templateKeyType(t, ck.CKK_CHACHA20); err != nil {
				return nil, err
			}
			if n, ok, err := t.ULong(ck.CKA_VALUE_LEN); err != nil {
				return nil, err
			} else if ok && n != chachaKeyLen {
				return nil, fmt.Errorf("chacha20 key gen: %d bytes: %w", n, ck.CKR_KEY_SIZE_RANGE)
			}
			return randomSecret(ck.CKK_CHACHA20, chachaKeyLen)
		},
	}, {
		Type:           ck.CKM_CHACHA20_POLY1305,
		Info:           info(ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_MESSAGE_ENCRYPT | ck.CKF_MESSAGE_DECRYPT),
		KeyTypes:       kts,
		Encrypt:        func(k *Key, p any) (Cipher, error) { return newChaChaCipher(k, p, true) },
		Decrypt:        func(k *Key, p any) (Cipher, error) { return newChaChaCipher(k, p, false) },
		MessageEncrypt: func(k *Key, p any) (MessageCipher, error) { return newChaChaMessages(k, p, true) },
		MessageDecrypt: func(k *Key, p any) (MessageCipher, error) { return newChaChaMessages(k, p, false) },
		IV:             IVNonce,
		Nonce: func(param any) []byte {
			if p, ok := param.(*ck.ChaCha20Poly1305Params); ok && p != nil {
				return p.Nonce
			}
			return nil
		},
	}}
}

func chacha20KeyKinds() []KeyKind {
	return []KeyKind{{
		Type:     ck.CKK_CHACHA20,
		Parse:    parseChaCha20,
		Derived:  valueLenDerived,
		Secret:   []ck.AttributeType{ck.CKA_VALUE},
		Size:     valueSize,
		ValueLen: chachaKeyLen,
	}}
}

func parseChaCha20(class ck.ObjectClass, a attr.Template) (any, error) {
	if class != ck.CKO_SECRET_KEY {
		return nil, fmt.Errorf("CKK_CHACHA20: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	v, ok := a.Get(ck.CKA_VALUE)
	if !ok {
		return nil, fmt.Errorf("CKK_CHACHA20: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	if len(v) != chachaKeyLen {
		return nil, fmt.Errorf("CKK_CHACHA20: CKA_VALUE of %d bytes: %w", len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return append([]byte(nil), v...), nil
}

func chachaKey(k *Key) ([]byte, error) {
	m, err := keyMaterial(k, parseChaCha20)
	if err != nil {
		return nil, err
	}
	v, ok := m.([]byte)
	if !ok || len(v) != chachaKeyLen {
		return nil, fmt.Errorf("CKM_CHACHA20_POLY1305: key material %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return v, nil
}

// chachaAEAD builds the AEAD for a nonce length.
func chachaAEAD(key []byte, nonceLen int) (cipher.AEAD, error) {
	switch nonceLen {
	case chacha20poly1305.NonceSize:
		return chacha20poly1305.New(key)
	case chacha20poly1305.NonceSizeX:
		return chacha20poly1305.NewX(key)
	}
	return nil, fmt.Errorf("CKM_CHACHA20_POLY1305: nonce of %d bytes: %w", nonceLen, ck.CKR_MECHANISM_PARAM_INVALID)
}

// chachaCipher is C_Encrypt/C_Decrypt: tag appended, input buffered.
type chachaCipher struct {
	aead  cipher.AEAD
	nonce []byte
	aad   []byte
	enc   bool
	buf   []byte
}

func newChaChaCipher(k *Key, param any, encrypt bool) (*chachaCipher, error) {
	key, err := chachaKey(k)
	if err != nil {
		return nil, err
	}
	p, ok := paramAs[ck.ChaCha20Poly1305Params](param)
	if !ok {
		return nil, fmt.Errorf("CKM_CHACHA20_POLY1305: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	a, err := chachaAEAD(key, len(p.Nonce))
	if err != nil {
		return nil, err
	}
	return &chachaCipher{aead: a, nonce: append([]byte(nil), p.Nonce...), aad: append([]byte(nil), p.AAD...), enc: encrypt}, nil
}

func (c *chachaCipher) UpdateLen(int) int { return 0 }

func (c *chachaCipher) Update(dst, src []byte) ([]byte, error) {
	c.buf = append(c.buf, src...)
	return dst, nil
}

func (c *chachaCipher) FinalLen() int { return c.OneShotLen(len(c.buf)) }

func (c *chachaCipher) Final(dst []byte) ([]byte, error) {
	out, err := c.OneShot(dst, c.buf)
	zero(c.buf)
	c.buf = c.buf[:0]
	return out, err
}

func (c *chachaCipher) OneShotLen(n int) int {
	if c.enc {
		return n + c.aead.Overhead()
	}
	return max(n-c.aead.Overhead(), 0)
}

func (c *chachaCipher) OneShot(dst, src []byte) ([]byte, error) {
	if c.enc {
		return c.aead.Seal(dst, c.nonce, src, c.aad), nil
	}
	if len(src) < c.aead.Overhead() {
		return dst, fmt.Errorf("CKM_CHACHA20_POLY1305: %d bytes, shorter than the tag: %w", len(src), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	out, err := c.aead.Open(dst, c.nonce, src, c.aad)
	if err != nil {
		return dst, fmt.Errorf("CKM_CHACHA20_POLY1305: %w", ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	return out, nil
}

// chachaMessageParam views a *ck.ChaCha20Poly1305MsgParams.
func chachaMessageParam(param any) (*msgParam, error) {
	p, ok := param.(*ck.ChaCha20Poly1305MsgParams)
	if !ok || p == nil {
		return nil, fmt.Errorf("CKM_CHACHA20_POLY1305: message parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if len(p.Nonce) != chacha20poly1305.NonceSize && len(p.Nonce) != chacha20poly1305.NonceSizeX {
		return nil, fmt.Errorf("CKM_CHACHA20_POLY1305: nonce of %d bytes: %w", len(p.Nonce), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return &msgParam{
		iv: p.Nonce, generator: ck.CKG_NO_GENERATE, tag: p.Tag, tagLen: chacha20poly1305.Overhead,
		setIV:  func(n []byte) { p.Nonce = n },
		setTag: func(t []byte) { p.Tag = t },
	}, nil
}

func newChaChaMessages(k *Key, param any, encrypt bool) (MessageCipher, error) {
	key, err := chachaKey(k)
	if err != nil {
		return nil, err
	}
	if err := messageInitParam[ck.ChaCha20Poly1305MsgParams](ck.CKM_CHACHA20_POLY1305, param); err != nil {
		return nil, err
	}
	aeads := map[int]cipher.AEAD{}
	get := func(n int) (cipher.AEAD, error) {
		if a, ok := aeads[n]; ok {
			return a, nil
		}
		a, err := chachaAEAD(key, n)
		if err == nil {
			aeads[n] = a
		}
		return a, err
	}
	const name = "CKM_CHACHA20_POLY1305"
	return &aeadMessages{
		name: name, enc: encrypt, view: chachaMessageParam,
		seal: func(iv, aad, pt []byte, _ int) ([]byte, []byte, error) {
			a, err := get(len(iv))
			if err != nil {
				return nil, nil, err
			}
			ct, tag := aeadSealSplit(a, iv, aad, pt)
			return ct, tag, nil
		},
		open: func(iv, aad, ct, tag []byte) ([]byte, error) {
			a, err := get(len(iv))
			if err != nil {
				return nil, err
			}
			return aeadOpenJoined(name, a, iv, aad, ct, tag)
		},
	}, nil
}
