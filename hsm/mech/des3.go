package mech

import (
	"crypto/cipher"
	"crypto/des"
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Triple DES with three-key (24-byte) CKK_DES3 keys, for legacy interop
// only: ECB, CBC and CBC_PAD from blockmode.go. Sizes are in bytes.

func des3Mechanisms() []Mechanism {
	info := func(f ck.Flags) ck.MechanismInfo { return ck.MechanismInfo{MinKeySize: 24, MaxKeySize: 24, Flags: f} }
	ms := []Mechanism{{
		Type: ck.CKM_DES3_KEY_GEN,
		Info: info(ck.CKF_GENERATE),
		GenerateKey: func(t attr.Template) (attr.Template, error) {
			if _, err := templateKeyType(t, ck.CKK_DES3); err != nil {
				return nil, err
			}
			// CKA_VALUE_LEN is fixed by the key type; a conflicting one is
			// inconsistent rather than ignored.
			if n, ok, err := t.ULong(ck.CKA_VALUE_LEN); err != nil {
				return nil, err
			} else if ok && n != 24 {
				return nil, fmt.Errorf("des3 key gen: CKA_VALUE_LEN %d: %w", n, ck.CKR_TEMPLATE_INCONSISTENT)
			}
			a, err := randomSecret(ck.CKK_DES3, 24)
			if err != nil {
				return nil, err
			}
			v, _ := a.Get(ck.CKA_VALUE)
			setOddParity(v)
			return a, nil
		},
	}}
	for _, e := range []struct {
		m    ck.MechanismType
		mode blockMode
	}{{ck.CKM_DES3_ECB, modeECB}, {ck.CKM_DES3_CBC, modeCBC}, {ck.CKM_DES3_CBC_PAD, modeCBCPad}} {
		ms = append(ms, blockModeMechanism(e.m, e.mode, des.BlockSize, des3Block, info(0), []ck.KeyType{ck.CKK_DES3}, true))
	}
	return ms
}

// setOddParity sets each byte's low bit so the byte has odd parity, as
// DES keys carry (PKCS#11 "DES3 key generation": the token sets parity).
func setOddParity(k []byte) {
	for i, b := range k {
		b &^= 1
		p := b ^ b>>4
		p ^= p >> 2
		p ^= p >> 1
		k[i] = b | ^p&1
	}
}

func des3KeyKinds() []KeyKind {
	return []KeyKind{{
		Type:     ck.CKK_DES3,
		Parse:    parseDES3,
		Derived:  valueLenDerived,
		Secret:   []ck.AttributeType{ck.CKA_VALUE},
		Size:     valueSize,
		ValueLen: 24,
	}}
}

func parseDES3(class ck.ObjectClass, a attr.Template) (any, error) {
	if class != ck.CKO_SECRET_KEY {
		return nil, fmt.Errorf("CKK_DES3: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	v, ok := a.Get(ck.CKA_VALUE)
	if !ok {
		return nil, fmt.Errorf("CKK_DES3: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	if len(v) != 24 {
		return nil, fmt.Errorf("CKK_DES3: CKA_VALUE of %d bytes: %w", len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	b, err := des.NewTripleDESCipher(v)
	if err != nil {
		return nil, fmt.Errorf("CKK_DES3: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return b, nil
}

func des3Block(k *Key) (cipher.Block, error) {
	m, err := keyMaterial(k, parseDES3)
	if err != nil {
		return nil, err
	}
	b, ok := m.(cipher.Block)
	if !ok || b.BlockSize() != des.BlockSize {
		return nil, fmt.Errorf("DES3: key material %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return b, nil
}
