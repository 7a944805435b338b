package mech

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// This file holds CKM_GENERIC_SECRET_KEY_GEN and CKK_GENERIC_SECRET, plus the
// small helpers every family here shares (parameter decoding, secret values,
// key-type checks).

// Generic secrets are sized in bytes, like AES (CK_MECHANISM_INFO units).
const (
	genericMinBytes = 1
	genericMaxBytes = 1 << 16
)

func genericMechanisms() []Mechanism {
	return []Mechanism{{
		Type: ck.CKM_GENERIC_SECRET_KEY_GEN,
		Info: ck.MechanismInfo{MinKeySize: genericMinBytes, MaxKeySize: genericMaxBytes, Flags: ck.CKF_GENERATE},
		GenerateKey: func(t attr.Template) (attr.Template, error) {
			// The CKK_SHA*_HMAC key types are generic secrets bound to one
			// hash; there is no other mechanism to generate them, so the
			// caller may name one here.
			kt, err := templateKeyType(t, ck.CKK_GENERIC_SECRET, hmacKeyTypes...)
			if err != nil {
				return nil, err
			}
			n, err := requiredValueLen(t)
			if err != nil {
				return nil, err
			}
			if n < genericMinBytes || n > genericMaxBytes {
				return nil, fmt.Errorf("generic secret key gen: %d bytes: %w", n, ck.CKR_KEY_SIZE_RANGE)
			}
			return randomSecret(kt, int(n))
		},
	}}
}

func genericKeyKinds() []KeyKind {
	kinds := []KeyKind{secretKeyKind(ck.CKK_GENERIC_SECRET)}
	for _, t := range hmacKeyTypes {
		kinds = append(kinds, secretKeyKind(t))
	}
	return kinds
}

// secretKeyKind is a key type whose material is the CKA_VALUE bytes.
func secretKeyKind(t ck.KeyType) KeyKind {
	return KeyKind{
		Type: t,
		Parse: func(class ck.ObjectClass, a attr.Template) (any, error) {
			if class != ck.CKO_SECRET_KEY {
				return nil, fmt.Errorf("%v: class %v: %w", t, class, ck.CKR_TEMPLATE_INCONSISTENT)
			}
			v, ok := a.Get(ck.CKA_VALUE)
			if !ok {
				return nil, fmt.Errorf("%v: CKA_VALUE: %w", t, ck.CKR_TEMPLATE_INCOMPLETE)
			}
			if len(v) < genericMinBytes || len(v) > genericMaxBytes {
				return nil, fmt.Errorf("%v: CKA_VALUE of %d bytes: %w", t, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
			}
			return append([]byte(nil), v...), nil
		},
		Derived: valueLenDerived,
		Secret:  []ck.AttributeType{ck.CKA_VALUE},
		Size:    valueSize,
	}
}

// valueLenDerived sets CKA_VALUE_LEN on a secret key (PKCS#11 3.0 §4.7: it is
// computed by the token, never taken from C_CreateObject).
func valueLenDerived(_ ck.ObjectClass, a attr.Template, _ any) (attr.Template, error) {
	v, _ := a.Get(ck.CKA_VALUE)
	// Every secret key made computes this; the attribute and its value
	// share one allocation.
	d := new(struct {
		t [1]ck.Attribute
		v [8]byte
	})
	binary.LittleEndian.PutUint64(d.v[:], uint64(len(v)))
	d.t[0] = ck.Attribute{Type: ck.CKA_VALUE_LEN, Value: d.v[:]}
	return d.t[:], nil
}

func valueSize(a attr.Template, _ any) ck.ULong {
	v, _ := a.Get(ck.CKA_VALUE)
	return ck.ULong(len(v))
}

// templateKeyType checks an optional CKA_KEY_TYPE in a generation template
// against the types the mechanism can produce, returning the one to use.
func templateKeyType(t attr.Template, def ck.KeyType, also ...ck.KeyType) (ck.KeyType, error) {
	v, ok, err := t.ULong(ck.CKA_KEY_TYPE)
	if err != nil || !ok {
		return def, err
	}
	kt := ck.KeyType(v)
	if kt == def {
		return kt, nil
	}
	for _, a := range also {
		if kt == a {
			return kt, nil
		}
	}
	return 0, fmt.Errorf("key gen: CKA_KEY_TYPE %v, mechanism makes %v: %w", kt, def, ck.CKR_TEMPLATE_INCONSISTENT)
}

func requiredValueLen(t attr.Template) (ck.ULong, error) {
	n, ok, err := t.ULong(ck.CKA_VALUE_LEN)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("key gen: CKA_VALUE_LEN: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	return n, nil
}

// randomSecret returns the generated attributes of an n-byte secret key.
func randomSecret(kt ck.KeyType, n int) (attr.Template, error) {
	v := make([]byte, n)
	if _, err := rand.Read(v); err != nil {
		return nil, fmt.Errorf("key gen: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	return secretAttrs(kt, v), nil
}

func secretAttrs(kt ck.KeyType, v []byte) attr.Template {
	return attr.Template{
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(kt))},
		{Type: ck.CKA_VALUE, Value: v},
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(ck.ULong(len(v)))},
	}
}

// paramAs decodes a mechanism parameter that the shim or wire codec may pass
// either as a value or as a pointer.
func paramAs[T any](param any) (T, bool) {
	switch p := param.(type) {
	case T:
		return p, true
	case *T:
		if p != nil {
			return *p, true
		}
	}
	var zero T
	return zero, false
}

// noParam accepts the shapes "no parameter" takes at the boundaries: nil or
// an empty byte string.
func noParam(m ck.MechanismType, param any) error {
	switch p := param.(type) {
	case nil:
		return nil
	case []byte:
		if len(p) == 0 {
			return nil
		}
	}
	return fmt.Errorf("%v: unexpected parameter: %w", m, ck.CKR_MECHANISM_PARAM_INVALID)
}

// keyMaterial returns the parsed material of k, parsing from its attributes
// when the engine has not done so (tests, or a caller building Keys by hand).
func keyMaterial(k *Key, parse func(ck.ObjectClass, attr.Template) (any, error)) (any, error) {
	if k == nil {
		return nil, fmt.Errorf("no key: %w", ck.CKR_KEY_HANDLE_INVALID)
	}
	if k.Material != nil {
		return k.Material, nil
	}
	return parse(k.Class, k.Attrs)
}

// secretBytes is the CKA_VALUE of a secret key.
func secretBytes(k *Key) ([]byte, error) {
	m, err := keyMaterial(k, secretKeyKind(k.Type).Parse)
	if err != nil {
		return nil, err
	}
	v, ok := m.([]byte)
	if !ok {
		return nil, fmt.Errorf("key type %v has no byte value: %w", k.Type, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return v, nil
}

// sliceForAppend extends in by n bytes, reusing its capacity, and returns
// the whole slice and the new tail (the crypto/cipher idiom).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}

// zero wipes a buffer this package owns.
func zero(b []byte) { clear(b) }
