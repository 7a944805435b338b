package hsm

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// Key wrapping, unwrapping and derivation (§5.14), with a policy that
// defeats the published Tookan attacks (Bortolozzo, Centenaro, Focardi,
// Steel, "Attacking and fixing PKCS#11 security tokens", CCS 2010):
//
//   - A sensitive key may be wrapped only by a key whose value nobody can
//     know: a key the SO marked CKA_TRUSTED, or a secret key generated on
//     this token (CKA_LOCAL) that was never extractable and cannot decrypt
//     or unwrap. So an attacker cannot wrap a sensitive key under a key they
//     imported, nor wrap it and then decrypt the blob with the same key, nor
//     wrap it and unwrap it again as a non-sensitive key.
//   - Encrypt/decrypt/wrap/unwrap can only be given up after creation,
//     never gained (hsm/attr/policy.go), so a copy of a wrap-only key cannot
//     be turned into a decryption key.
//   - CKA_WRAP_WITH_TRUSTED keys are wrapped only by CKA_TRUSTED keys.
//   - Unwrapped and derived keys are never CKA_LOCAL, so they cannot serve
//     as trusted wrapping keys, and never claim ALWAYS_SENSITIVE or
//     NEVER_EXTRACTABLE beyond what their origin allows.

// canWrapSensitive is the first rule above.
func canWrapSensitive(w *Object) bool {
	if w.boolAttr(ck.CKA_TRUSTED) {
		return true
	}
	return w.class == ck.CKO_SECRET_KEY && w.boolAttr(ck.CKA_LOCAL) && w.boolAttr(ck.CKA_NEVER_EXTRACTABLE) &&
		!w.boolAttr(ck.CKA_DECRYPT) && !w.boolAttr(ck.CKA_UNWRAP)
}

// WrapKey is C_WrapKey.
func (m *Module) WrapKey(h ck.SessionHandle, mt ck.Mechanism, wh, kh ck.ObjectHandle, outCap int) ([]byte, int, error) {
	s, err := m.lock(h)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	tok := s.tok
	tok.mu.RLock()
	defer tok.mu.RUnlock()
	w, err := tok.visible(wh)
	if err != nil || !w.isKey() {
		return nil, 0, fmt.Errorf("wrapping key %d: %w", wh, ck.CKR_WRAPPING_KEY_HANDLE_INVALID)
	}
	k, err := tok.visible(kh)
	if err != nil || !k.isKey() {
		return nil, 0, fmt.Errorf("key %d: %w", kh, ck.CKR_KEY_HANDLE_INVALID)
	}
	if !w.boolAttr(ck.CKA_WRAP) {
		return nil, 0, fmt.Errorf("wrapping key %d has CKA_WRAP false: %w", wh, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	if k.class == ck.CKO_PUBLIC_KEY {
		return nil, 0, fmt.Errorf("public key %d: %w", kh, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	if v, ok := k.clearGet(ck.CKA_EXTRACTABLE); ok && len(v) == 1 && v[0] == 0 {
		return nil, 0, fmt.Errorf("key %d: %w", kh, ck.CKR_KEY_UNEXTRACTABLE)
	}
	if k.boolAttr(ck.CKA_WRAP_WITH_TRUSTED) && !w.boolAttr(ck.CKA_TRUSTED) {
		return nil, 0, fmt.Errorf("key %d needs a trusted wrapping key: %w", kh, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	if ok, err := matchesTemplate(w, k, ck.CKA_WRAP_TEMPLATE); err != nil {
		return nil, 0, err
	} else if !ok {
		return nil, 0, fmt.Errorf("key %d does not match CKA_WRAP_TEMPLATE of key %d: %w", kh, wh, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	if k.boolAttr(ck.CKA_SENSITIVE) && !canWrapSensitive(w) {
		return nil, 0, fmt.Errorf("sensitive key %d: wrapping key %d is neither trusted nor a local wrap-only key: %w",
			kh, wh, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	mm, ok := m.reg.Mechanism(mt.Type)
	if !ok || mm.Encrypt == nil || mm.Info.Flags&ck.CKF_WRAP == 0 {
		return nil, 0, fmt.Errorf("%v: %w", mt.Type, ck.CKR_MECHANISM_INVALID)
	}
	if !slices.Contains(mm.KeyTypes, w.keyType) {
		return nil, 0, fmt.Errorf("%v with a %v key: %w", mt.Type, w.keyType, ck.CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
	}
	if err := tok.unseal(w); err != nil {
		return nil, 0, err
	}
	if err := tok.unseal(k); err != nil {
		return nil, 0, err
	}
	wk, err := w.key(m.reg)
	if err != nil {
		return nil, 0, err
	}
	data, err := m.encodeKey(k)
	if err != nil {
		return nil, 0, err
	}
	defer zero(data)
	c, err := mm.Encrypt(wk, mt.Param)
	if err != nil {
		return nil, 0, fmt.Errorf("%v: %w", mt.Type, err)
	}
	if outCap < 0 {
		return nil, c.OneShotLen(len(data)), nil
	}
	out, err := c.OneShot(nil, data)
	if err != nil {
		if errors.Is(err, ck.CKR_DATA_LEN_RANGE) {
			return nil, 0, fmt.Errorf("%v cannot wrap %d bytes: %w", mt.Type, len(data), ck.CKR_KEY_SIZE_RANGE)
		}
		return nil, 0, err
	}
	if len(out) > outCap {
		return nil, len(out), ck.CKR_BUFFER_TOO_SMALL
	}
	return out, len(out), nil
}

// encodeKey is what C_WrapKey encrypts: a secret key's value, or a private
// key as PKCS#8. The caller has unsealed o.
func (m *Module) encodeKey(o *Object) ([]byte, error) {
	kk, ok := m.reg.KeyKind(o.keyType)
	if !ok {
		return nil, fmt.Errorf("key type %v: %w", o.keyType, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	if kk.Encode != nil {
		k, err := o.key(m.reg)
		if err != nil {
			return nil, err
		}
		return kk.Encode(k)
	}
	if o.class != ck.CKO_SECRET_KEY {
		return nil, fmt.Errorf("%v private keys cannot be wrapped yet: %w", o.keyType, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	v, ok := o.secret.Get(ck.CKA_VALUE)
	if !ok && o.destroyed.Load() {
		return nil, fmt.Errorf("key %d destroyed: %w", o.handle, ck.CKR_KEY_HANDLE_INVALID)
	}
	if !ok {
		return nil, fmt.Errorf("secret key without a value: %w", ck.CKR_KEY_NOT_WRAPPABLE)
	}
	return append([]byte{}, v...), nil
}

// UnwrapKey is C_UnwrapKey.
func (m *Module) UnwrapKey(h ck.SessionHandle, mt ck.Mechanism, uh ck.ObjectHandle, wrapped []byte, tmpl []ck.Attribute) (ck.ObjectHandle, error) {
	s, err := m.lock(h)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	t := attr.Template(tmpl)
	cls, kt, err := classOf(t)
	if err != nil {
		return 0, err
	}
	if cls != ck.CKO_SECRET_KEY && cls != ck.CKO_PRIVATE_KEY {
		return 0, fmt.Errorf("unwrap into %v: %w", cls, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	token, private, err := flagsOf(t, cls)
	if err != nil {
		return 0, err
	}
	so, err := s.mayCreate(token, private)
	if err != nil {
		return 0, err
	}
	tok := s.tok
	var (
		mm *mech.Mechanism
		kk *mech.KeyKind
		uk *mech.Key
	)
	err = tok.readLocked(func() error {
		u, err := tok.visible(uh)
		if err != nil || !u.isKey() {
			return fmt.Errorf("unwrapping key %d: %w", uh, ck.CKR_UNWRAPPING_KEY_HANDLE_INVALID)
		}
		if !u.boolAttr(ck.CKA_UNWRAP) {
			return fmt.Errorf("unwrapping key %d has CKA_UNWRAP false: %w", uh, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
		}
		if t, err = imposeTemplate(u, ck.CKA_UNWRAP_TEMPLATE, t); err != nil {
			return err
		}
		var ok bool
		mm, ok = m.reg.Mechanism(mt.Type)
		if !ok || mm.Decrypt == nil || mm.Info.Flags&ck.CKF_UNWRAP == 0 {
			return fmt.Errorf("%v: %w", mt.Type, ck.CKR_MECHANISM_INVALID)
		}
		if !slices.Contains(mm.KeyTypes, u.keyType) {
			return fmt.Errorf("%v with a %v key: %w", mt.Type, u.keyType, ck.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT)
		}
		if kk, ok = m.reg.KeyKind(kt); !ok {
			return fmt.Errorf("key type %v: %w", kt, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		if err := tok.unseal(u); err != nil {
			return err
		}
		uk, err = u.key(m.reg)
		return err
	})
	if err != nil {
		return 0, err
	}
	c, err := mm.Decrypt(uk, mt.Param)
	if err != nil {
		return 0, fmt.Errorf("%v: %w", mt.Type, err)
	}
	data, err := c.OneShot(nil, wrapped)
	switch {
	case errors.Is(err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE):
		return 0, fmt.Errorf("%v: %w", mt.Type, ck.CKR_WRAPPED_KEY_LEN_RANGE)
	case errors.Is(err, ck.CKR_ENCRYPTED_DATA_INVALID):
		return 0, fmt.Errorf("%v: %w", mt.Type, ck.CKR_WRAPPED_KEY_INVALID)
	case err != nil:
		return 0, err
	}
	defer zero(data)
	var extra attr.Template
	if cls == ck.CKO_SECRET_KEY {
		if n, ok, err := t.ULong(ck.CKA_VALUE_LEN); err != nil {
			return 0, err
		} else if ok {
			// A padded wrap may carry more than the key; the template's
			// length says how much is key (§5.14 C_UnwrapKey).
			if int(n) > len(data) {
				return 0, fmt.Errorf("CKA_VALUE_LEN %d > %d unwrapped bytes: %w", n, len(data), ck.CKR_TEMPLATE_INCONSISTENT)
			}
			data = data[:n]
		}
		extra = attr.Template{{Type: ck.CKA_VALUE, Value: data}}
	} else {
		if kk.Decode == nil {
			return 0, fmt.Errorf("%v private keys cannot be unwrapped: %w", kt, ck.CKR_TEMPLATE_INCONSISTENT)
		}
		extra, err = kk.Decode(data)
		if err != nil {
			return 0, fmt.Errorf("unwrapped key: %w", ck.CKR_WRAPPED_KEY_INVALID)
		}
		defer zeroTemplate(extra)
	}
	extra = append(extra, ck.Attribute{Type: ck.CKA_LOCAL, Value: attr.Bool(false)})
	t = dropTypes(t, ck.CKA_VALUE_LEN)
	all, err := m.build(t, cls, kt, fromUnwrap, so, extra)
	if err != nil {
		return 0, err
	}
	o, err := m.newObject(all, cls, kt)
	if err != nil {
		return 0, err
	}
	if err := m.commitLocked(s, so, o); err != nil {
		return 0, err
	}
	return o.handle, nil
}

// DeriveKey is C_DeriveKey. The derived key is a secret key that is never
// CKA_LOCAL; it is ALWAYS_SENSITIVE / NEVER_EXTRACTABLE only if the base key
// was and the new key is too (§4.10).
//
// Mechanisms marked DerivesData (CKM_HKDF_DATA, 3.0 mechanisms §2.43.4)
// make a CKO_DATA object instead, whose CKA_VALUE is the derived bytes.
// That does not leak the base key: the output is a one-way function of it,
// the base key must still have CKA_DERIVE, and whoever may derive could
// equally derive an extractable secret key with the same value through
// CKM_HKDF_DERIVE. The one policy a data object could dodge is the base
// key's CKA_DERIVE_TEMPLATE, which is written for keys; so a base key whose
// template names any attribute a data object cannot carry (CKA_SENSITIVE,
// CKA_EXTRACTABLE...) derives no data (CKR_TEMPLATE_INCONSISTENT).
func (m *Module) DeriveKey(h ck.SessionHandle, mt ck.Mechanism, bh ck.ObjectHandle, tmpl []ck.Attribute) (ck.ObjectHandle, error) {
	s, err := m.lock(h)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	t := attr.Template(tmpl)
	// The registry is immutable: the mechanism decides the class made.
	mm, known := m.reg.Mechanism(mt.Type)
	cls, kt := ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET
	if known && mm.DerivesData {
		cls, kt = ck.CKO_DATA, noKeyType
	}
	if err := keyTemplateClass(t, cls); err != nil {
		return 0, err
	}
	if cls == ck.CKO_DATA && t.Has(ck.CKA_VALUE) {
		return 0, fmt.Errorf("CKA_VALUE is the derived value: %w", ck.CKR_TEMPLATE_INCONSISTENT)
	}
	token, private, err := flagsOf(t, cls)
	if err != nil {
		return 0, err
	}
	so, err := s.mayCreate(token, private)
	if err != nil {
		return 0, err
	}
	tok := s.tok
	var (
		b     *Object
		bk    *mech.Key
		param any
	)
	err = tok.readLocked(func() error {
		b, err = tok.visible(bh)
		if err != nil || !b.isKey() {
			return fmt.Errorf("base key %d: %w", bh, ck.CKR_KEY_HANDLE_INVALID)
		}
		if !b.boolAttr(ck.CKA_DERIVE) {
			return fmt.Errorf("base key %d has CKA_DERIVE false: %w", bh, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
		}
		given := t
		if t, err = imposeTemplate(b, ck.CKA_DERIVE_TEMPLATE, t); err != nil {
			return err
		}
		if cls == ck.CKO_DATA {
			ecLike := m.ecLikeKeyTypes()
			for _, a := range t {
				if !given.Has(a.Type) && attr.Lookup(a.Type, cls, kt, ecLike) == nil {
					return fmt.Errorf("base key %d's CKA_DERIVE_TEMPLATE sets %v, which a data object lacks: %w", bh, a.Type, ck.CKR_TEMPLATE_INCONSISTENT)
				}
			}
			// CKA_PRIVATE's default is token-specific (§4.4): derived data is
			// as private as the key it came from. A private base key is
			// visible only to the logged-in user, so mayCreate, asked
			// before this default was known, still holds (commit asks again).
			if !t.Has(ck.CKA_PRIVATE) {
				t = append(t.Clone(), ck.Attribute{Type: ck.CKA_PRIVATE, Value: attr.Bool(b.private)})
			}
		}
		if !known || mm.Derive == nil {
			return fmt.Errorf("%v: %w", mt.Type, ck.CKR_MECHANISM_INVALID)
		}
		if !slices.Contains(mm.KeyTypes, b.keyType) {
			return fmt.Errorf("%v with a %v key: %w", mt.Type, b.keyType, ck.CKR_KEY_TYPE_INCONSISTENT)
		}
		if err := checkDuplicates(t); err != nil {
			return err
		}
		if err := tok.unseal(b); err != nil {
			return err
		}
		bk, err = b.key(m.reg)
		if err != nil {
			return err
		}
		param, err = m.resolveSaltKey(tok, mt.Param)
		return err
	})
	if err != nil {
		return 0, err
	}
	gen, err := mm.Derive(bk, param, t)
	if err != nil {
		return 0, fmt.Errorf("%v: %w", mt.Type, err)
	}
	defer zeroTemplate(gen)
	var extra attr.Template
	if cls == ck.CKO_DATA {
		v, ok := gen.Get(ck.CKA_VALUE)
		if !ok {
			return 0, fmt.Errorf("%v made no value: %w", mt.Type, ck.CKR_GENERAL_ERROR)
		}
		extra = attr.Template{
			{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_DATA))},
			{Type: ck.CKA_VALUE, Value: v},
		}
	} else {
		if v, ok, err := t.ULong(ck.CKA_KEY_TYPE); err != nil {
			return 0, err
		} else if ok {
			kt = ck.KeyType(v)
		} else if v, ok, _ := gen.ULong(ck.CKA_KEY_TYPE); ok {
			kt = ck.KeyType(v)
		}
		extra = append(dropTypes(gen, ck.CKA_KEY_TYPE),
			ck.Attribute{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
			ck.Attribute{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(kt))},
			ck.Attribute{Type: ck.CKA_LOCAL, Value: attr.Bool(false)})
	}
	// CKA_VALUE_LEN asks for the length; a data object has no such
	// attribute and a secret key's is recomputed from its value.
	all, err := m.build(dropTypes(t, ck.CKA_VALUE_LEN), cls, kt, fromGenerate, so, extra)
	if err != nil {
		return 0, err
	}
	if cls == ck.CKO_SECRET_KEY {
		sens, _, _ := all.Bool(ck.CKA_SENSITIVE)
		extr, _, _ := all.Bool(ck.CKA_EXTRACTABLE)
		all.Set(ck.CKA_ALWAYS_SENSITIVE, attr.Bool(sens && b.boolAttr(ck.CKA_ALWAYS_SENSITIVE)))
		all.Set(ck.CKA_NEVER_EXTRACTABLE, attr.Bool(!extr && b.boolAttr(ck.CKA_NEVER_EXTRACTABLE)))
	}
	o, err := m.newObject(all, cls, kt)
	if err != nil {
		return 0, err
	}
	if err := m.commitLocked(s, so, o); err != nil {
		return 0, err
	}
	return o.handle, nil
}

// resolveSaltKey turns an HKDF salt given as a key (CKF_HKDF_SALT_KEY) into
// its value, so the mechanism sees bytes only. The salt key must be a
// visible CKK_HKDF or generic secret key; the caller holds tok.mu.
func (m *Module) resolveSaltKey(tok *Token, param any) (any, error) {
	var p ck.HKDFParams
	switch v := param.(type) {
	case *ck.HKDFParams:
		if v == nil {
			return param, nil
		}
		p = *v
	case ck.HKDFParams:
		p = v
	default:
		return param, nil
	}
	if p.SaltType != ck.CKF_HKDF_SALT_KEY {
		return param, nil
	}
	o, err := tok.visible(ck.ObjectHandle(p.SaltKey))
	if err != nil || o.class != ck.CKO_SECRET_KEY || (o.keyType != ck.CKK_HKDF && o.keyType != ck.CKK_GENERIC_SECRET) {
		return nil, fmt.Errorf("hkdf salt key %d: %w", p.SaltKey, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if err := tok.unseal(o); err != nil {
		return nil, err
	}
	o.mu.RLock()
	v, _ := o.secret.Get(ck.CKA_VALUE)
	p.Salt = append([]byte{}, v...)
	o.mu.RUnlock()
	if o.destroyed.Load() {
		return nil, fmt.Errorf("hkdf salt key %d destroyed: %w", p.SaltKey, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	p.SaltType = ck.CKF_HKDF_SALT_DATA
	return &p, nil
}

func dropTypes(t attr.Template, types ...ck.AttributeType) attr.Template {
	return appendWithout(make(attr.Template, 0, len(t)), t, types...)
}

// appendWithout appends to dst the attributes of t not of the given types.
func appendWithout(dst, t attr.Template, types ...ck.AttributeType) attr.Template {
	for _, a := range t {
		if !slices.Contains(types, a.Type) {
			dst = append(dst, a)
		}
	}
	return dst
}
