package mech

import (
	"crypto/cipher"
	"fmt"
	"hash"

	"github.com/emmansun/gmsm/sm4"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// SM4 (GB/T 32907): key generation, ECB, CBC, CBC_PAD, CTR, GCM (RFC 8998)
// and the PKCS#11 general block-cipher MAC.
//
// Sharing: a CKK_SM4 key's Material is the emmansun cipher.Block, which holds
// only its expanded round keys and is safe for concurrent use (it is also the
// AES-NI-style fast path: crypto/cipher's CBC/CTR/GCM pick up its assembly
// implementations). Every mode state below is built per operation.
//
// The modes themselves are the shared ones: ECB/CBC/CBC_PAD/CTR from
// blockmode.go and GCM from aes.go's newGCMCipher (tags of 4..16 bytes,
// IVs of 1..256 bytes as PKCS#11 2.40 allows; RFC 8998 uses 12 and 16).

const sm4KeyLen = 16

func sm4KeyKinds(p *ck.Profile) []KeyKind {
	t, ok := smProfile(p).KeyType("CKK_SM4")
	if !ok {
		return nil
	}
	return []KeyKind{{
		Type:     t,
		Parse:    func(class ck.ObjectClass, a attr.Template) (any, error) { return parseSM4Key(t, class, a) },
		Derived:  valueLenDerived,
		Secret:   []ck.AttributeType{ck.CKA_VALUE},
		Size:     func(attr.Template, any) ck.ULong { return sm4KeyLen },
		ValueLen: sm4KeyLen,
	}}
}

func parseSM4Key(t ck.KeyType, class ck.ObjectClass, a attr.Template) (any, error) {
	if class != ck.CKO_SECRET_KEY {
		return nil, fmt.Errorf("%v: class %v: %w", t, class, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	v, ok := a.Get(ck.CKA_VALUE)
	if !ok {
		return nil, fmt.Errorf("%v: CKA_VALUE: %w", t, ck.CKR_TEMPLATE_INCOMPLETE)
	}
	if len(v) != sm4KeyLen {
		return nil, fmt.Errorf("%v: CKA_VALUE of %d bytes: %w", t, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	b, err := sm4.NewCipher(v)
	if err != nil {
		return nil, fmt.Errorf("%v: %v: %w", t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return b, nil
}

func sm4Mechanisms(p *ck.Profile) []Mechanism {
	p = smProfile(p)
	kt, ok := p.KeyType("CKK_SM4")
	if !ok {
		return nil
	}
	keyTypes := []ck.KeyType{kt}
	info := func(f ck.Flags) ck.MechanismInfo {
		return ck.MechanismInfo{MinKeySize: sm4KeyLen, MaxKeySize: sm4KeyLen, Flags: f}
	}
	encDec := ck.CKF_ENCRYPT | ck.CKF_DECRYPT
	var out []Mechanism
	add := func(name string, m Mechanism) {
		if t, ok := p.Mechanism(name); ok {
			m.Type = t
			if m.KeyTypes == nil && m.GenerateKey == nil {
				m.KeyTypes = keyTypes
			}
			out = append(out, m)
		}
	}

	keyGen, _ := p.Mechanism("CKM_SM4_KEY_GEN")
	add("CKM_SM4_KEY_GEN", Mechanism{
		Info: info(ck.CKF_GENERATE),
		GenerateKey: func(t attr.Template) (attr.Template, error) {
			if _, err := templateKeyType(t, kt); err != nil {
				return nil, err
			}
			if n, ok, err := t.ULong(ck.CKA_VALUE_LEN); err != nil {
				return nil, err
			} else if ok && n != sm4KeyLen {
				return nil, fmt.Errorf("%v: CKA_VALUE_LEN %d: %w", keyGen, n, ck.CKR_TEMPLATE_INCONSISTENT)
			}
			return randomSecret(kt, sm4KeyLen)
		},
	})

	for _, md := range []struct {
		name string
		mode blockMode
	}{{"CKM_SM4_ECB", modeECB}, {"CKM_SM4_CBC", modeCBC}, {"CKM_SM4_CBC_PAD", modeCBCPad}, {"CKM_SM4_CTR", modeCTR}} {
		// SM4 keys are not offered for wrapping: the vendor tables give
		// no wrap codes to match.
		add(md.name, blockModeMechanism(0, md.mode, sm4.BlockSize, sm4Block, info(0), nil, false))
	}

	gcm := func(encrypt bool) func(*Key, any) (Cipher, error) {
		return func(k *Key, param any) (Cipher, error) {
			b, err := sm4Block(k)
			if err != nil {
				return nil, err
			}
			p, ok := paramAs[ck.GCMParams](param)
			if !ok {
				return nil, fmt.Errorf("SM4_GCM: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
			}
			return newGCMCipher(b, p, encrypt)
		}
	}
	add("CKM_SM4_GCM", Mechanism{Info: info(encDec), Encrypt: gcm(true), Decrypt: gcm(false), IV: IVNonce, Nonce: gcmNonce})

	for _, general := range []bool{false, true} {
		name := "CKM_SM4_MAC"
		if general {
			name = "CKM_SM4_MAC_GENERAL"
		}
		t, _ := p.Mechanism(name)
		general := general
		add(name, Mechanism{
			Info: info(ck.CKF_SIGN | ck.CKF_VERIFY),
			Sign: func(k *Key, param any) (Signer, error) { return newSM4MAC(t, general, k, param) },
			Verify: func(k *Key, param any) (Verifier, error) {
				m, err := newSM4MAC(t, general, k, param)
				if err != nil {
					return nil, err
				}
				return smMACVerifier{m}, nil
			},
		})
	}
	return out
}

// sm4Block returns the key's shared cipher.Block.
func sm4Block(k *Key) (cipher.Block, error) {
	m, err := keyMaterial(k, func(c ck.ObjectClass, a attr.Template) (any, error) { return parseSM4Key(k.Type, c, a) })
	if err != nil {
		return nil, err
	}
	b, ok := m.(cipher.Block)
	if !ok || b.BlockSize() != sm4.BlockSize {
		return nil, fmt.Errorf("key type %v is not SM4: %w", k.Type, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return b, nil
}

// ---- MAC (PKCS#11 general block-cipher MAC, as CKM_AES_MAC) ----

// newSM4MAC is CBC-MAC with a zero IV over the data padded with zero bytes
// to whole blocks; _MAC returns half a block, _MAC_GENERAL the requested
// 1..16 bytes (PKCS#11 2.40 mechanisms §2.11 "general block cipher").
func newSM4MAC(m ck.MechanismType, general bool, k *Key, param any) (*smMAC, error) {
	n := sm4.BlockSize / 2
	if general {
		var err error
		if n, err = smMACLen(m, param, sm4.BlockSize); err != nil {
			return nil, err
		}
	} else if err := noParam(m, param); err != nil {
		return nil, err
	}
	b, err := sm4Block(k)
	if err != nil {
		return nil, err
	}
	return newSMMAC(n, func() hash.Hash { return &smCBCMAC{b: b} }), nil
}

// smCBCMAC is CBC-MAC as a hash.Hash: whole blocks are chained as they
// arrive; a final partial block is zero-padded only when summed. Empty input
// gives the all-zero initial value, as zero blocks of CBC leave it unchanged.
type smCBCMAC struct {
	b     cipher.Block
	state [16]byte
	pos   int
}

func (h *smCBCMAC) Write(p []byte) (int, error) {
	bs := h.b.BlockSize()
	for _, c := range p {
		h.state[h.pos] ^= c
		h.pos++
		if h.pos == bs {
			h.b.Encrypt(h.state[:bs], h.state[:bs])
			h.pos = 0
		}
	}
	return len(p), nil
}

func (h *smCBCMAC) Sum(in []byte) []byte {
	bs := h.b.BlockSize()
	s := h.state
	if h.pos > 0 {
		h.b.Encrypt(s[:bs], s[:bs])
	}
	return append(in, s[:bs]...)
}

func (h *smCBCMAC) Reset()         { h.state, h.pos = [16]byte{}, 0 }
func (h *smCBCMAC) Size() int      { return h.b.BlockSize() }
func (h *smCBCMAC) BlockSize() int { return h.b.BlockSize() }
