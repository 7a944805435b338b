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

// canWrapSensitive is the first rule above. A trusted secret key that may
// decrypt is not such a key: C_Decrypt of the blob would give the key back
// (Tookan's wrap/decrypt attack, with the SO's blessing).
func canWrapSensitive(w *Object) bool {
	if w.boolAttr(ck.CKA_TRUSTED) {
		return !(w.class == ck.CKO_SECRET_KEY && w.boolAttr(ck.CKA_DECRYPT))
	}
	return w.class == ck.CKO_SECRET_KEY && w.boolAttr(ck.CKA_LOCAL) && w.boolAttr(ck.CKA_NEVER_EXTRACTABLE) &&
		!w.boolAttr(ck.CKA_DECRYPT) && !w.boolAttr(ck.CKA_UNWRAP)
}

// WrapKey is C_WrapKey. The wrapping key passes the gate (gate.go); the
// key to wrap passes the rules above. A mechanism that takes a nonce
// (mech.IVNonce: GCM) wraps only under a nonce the token makes into the
// caller's zeroed IV buffer, which the boundary returns; the size query
// makes none.
func (m *Module) WrapKey(h ck.SessionHandle, mt ck.Mechanism, wh, kh ck.ObjectHandle, outCap int) ([]byte, int, error) {
	s, err := m.lock(h)
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	tok := s.tok
	g, err := m.authorize(s, useWrap, wh, mt)
	if err != nil {
		return nil, 0, err
	}
	w := g.obj
	k, err := tok.visible(kh)
	if err != nil || !k.isKey() {
		return nil, 0, fmt.Errorf("key %d: %w", kh, ck.CKR_KEY_HANDLE_INVALID)
	}
	if k.class == ck.CKO_PUBLIC_KEY {
		return nil, 0, fmt.Errorf("public key %d: %w", kh, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	if v, ok := k.clearGet(ck.CKA_EXTRACTABLE); !ok || len(v) != 1 || v[0] == 0 {
		// A key without the attribute is a damaged record: fail closed.
		return nil, 0, fmt.Errorf("key %d: %w", kh, ck.CKR_KEY_UNEXTRACTABLE)
	}
	if k.flag(ck.CKA_WRAP_WITH_TRUSTED, true) && !w.boolAttr(ck.CKA_TRUSTED) {
		return nil, 0, fmt.Errorf("key %d needs a trusted wrapping key: %w", kh, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	if g.mm.WrapPad > 0 && k.class != ck.CKO_SECRET_KEY {
		return nil, 0, fmt.Errorf("%v wraps secret keys only: %w", mt.Type, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	if err := tok.ensureUnsealed(k); err != nil {
		return nil, 0, err
	}
	if ok, err := matchesTemplate(w, k, ck.CKA_WRAP_TEMPLATE); err != nil {
		return nil, 0, err
	} else if !ok {
		return nil, 0, fmt.Errorf("key %d does not match CKA_WRAP_TEMPLATE of key %d: %w", kh, wh, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	if k.sensitive() && !canWrapSensitive(w) {
		return nil, 0, fmt.Errorf("sensitive key %d: wrapping key %d is neither trusted nor a local wrap-only key: %w",
			kh, wh, ck.CKR_KEY_NOT_WRAPPABLE)
	}
	data, err := m.encodeKey(k)
	if err != nil {
		return nil, 0, err
	}
	defer zero(data)
	if g.mm.WrapPad > 0 && len(data)%g.mm.WrapPad != 0 {
		padded := make([]byte, len(data)+g.mm.WrapPad-len(data)%g.mm.WrapPad)
		copy(padded, data)
		zero(data)
		data = padded
	}
	if outCap < 0 {
		// The length does not depend on the nonce: nothing is made yet.
		c, err := g.mm.Encrypt(g.key, g.param)
		if err != nil {
			return nil, 0, fmt.Errorf("%v: %w", mt.Type, err)
		}
		return nil, c.OneShotLen(len(data)), nil
	}
	if g.tokenNonce {
		if err := fillNonce(g.mm.Nonce(mt.Param)); err != nil {
			return nil, 0, err
		}
	}
	c, err := g.mm.Encrypt(g.key, g.param)
	if err != nil {
		return nil, 0, fmt.Errorf("%v: %w", mt.Type, err)
	}
	if need := c.OneShotLen(len(data)); g.tokenNonce && outCap < need {
		// Answered before the work, so the caller's buffer keeps the zero
		// IV it must pass again.
		clear(g.mm.Nonce(mt.Param))
		return nil, need, ck.CKR_BUFFER_TOO_SMALL
	}
	out, err := c.OneShot(nil, data)
	if err != nil {
		if g.tokenNonce {
			clear(g.mm.Nonce(mt.Param))
		}
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

// UnwrapKey is C_UnwrapKey. The unwrapping key passes the gate. A key
// unwrapped by a CKA_TRUSTED key is sensitive: a trusted key may wrap
// sensitive keys, and unwrapping its blob as a readable key would undo
// that (Tookan's wrap/unwrap attack).
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
	g, err := m.authorize(s, useUnwrap, uh, mt)
	if err != nil {
		return 0, err
	}
	u, mm := g.obj, g.mm
	if t, err = imposeTemplate(u, ck.CKA_UNWRAP_TEMPLATE, t); err != nil {
		return 0, err
	}
	if u.boolAttr(ck.CKA_TRUSTED) {
		if v, ok, err := t.Bool(ck.CKA_SENSITIVE); err != nil {
			return 0, err
		} else if ok && !v {
			return 0, fmt.Errorf("a key unwrapped by trusted key %d is sensitive: %w", uh, ck.CKR_TEMPLATE_INCONSISTENT)
		}
	}
	kk, ok := m.reg.KeyKind(kt)
	if !ok {
		return 0, fmt.Errorf("key type %v: %w", kt, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	framed := mm.WrapPad > 0 || mm.UnwrapFixed != nil
	if framed && cls != ck.CKO_SECRET_KEY {
		return 0, fmt.Errorf("%v unwraps secret keys only: %w", mt.Type, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	n, err := valueLen(t, kk)
	if err != nil {
		return 0, err
	}
	var data []byte
	if mm.UnwrapFixed != nil {
		// Implicit rejection needs the length up front; asking for it
		// after decrypting would tell the caller about the padding.
		if n == 0 {
			return 0, fmt.Errorf("%v unwraps keys of a length the template gives (CKA_VALUE_LEN): %w", mt.Type, ck.CKR_TEMPLATE_INCOMPLETE)
		}
		if data, err = mm.UnwrapFixed(g.key, g.param, wrapped, n); err != nil {
			return 0, fmt.Errorf("%v: %w", mt.Type, err)
		}
	} else {
		c, err := mm.Decrypt(g.key, g.param)
		if err != nil {
			return 0, fmt.Errorf("%v: %w", mt.Type, err)
		}
		data, err = c.OneShot(nil, wrapped)
		switch {
		case errors.Is(err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE):
			return 0, fmt.Errorf("%v: %w", mt.Type, ck.CKR_WRAPPED_KEY_LEN_RANGE)
		case errors.Is(err, ck.CKR_ENCRYPTED_DATA_INVALID):
			return 0, fmt.Errorf("%v: %w", mt.Type, ck.CKR_WRAPPED_KEY_INVALID)
		case err != nil:
			return 0, err
		}
	}
	defer zero(data)
	var extra attr.Template
	if cls == ck.CKO_SECRET_KEY {
		if n > 0 {
			// A padded wrap may carry more than the key; the template's
			// length, or the key type's, says how much is key (§5.14
			// C_UnwrapKey; 2.40 mechanisms "the mechanism truncates").
			if n > len(data) {
				return 0, fmt.Errorf("a %d-byte key from %d unwrapped bytes: %w", n, len(data), ck.CKR_TEMPLATE_INCONSISTENT)
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

// valueLen is the length a new secret key's value must have: the
// template's CKA_VALUE_LEN, else the key type's fixed length, else 0
// (unknown). A CKA_VALUE_LEN that contradicts the key type is
// CKR_TEMPLATE_INCONSISTENT.
func valueLen(t attr.Template, kk *mech.KeyKind) (int, error) {
	n, ok, err := t.ULong(ck.CKA_VALUE_LEN)
	switch {
	case err != nil:
		return 0, err
	case ok && (n == 0 || n > 1<<20):
		return 0, fmt.Errorf("CKA_VALUE_LEN %d: %w", n, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	case ok && kk.ValueLen != 0 && int(n) != kk.ValueLen:
		return 0, fmt.Errorf("CKA_VALUE_LEN %d for a %d-byte key type: %w", n, kk.ValueLen, ck.CKR_TEMPLATE_INCONSISTENT)
	case ok:
		return int(n), nil
	}
	return kk.ValueLen, nil
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
	// The gate checks the base key and every key the parameter names
	// (an HKDF salt key needs CKA_DERIVE too: mech.ParamKeys).
	g, err := m.authorize(s, useDerive, bh, mt)
	if err != nil {
		return 0, err
	}
	b, bk, param := g.obj, g.key, g.param
	given := t
	if t, err = imposeTemplate(b, ck.CKA_DERIVE_TEMPLATE, t); err != nil {
		return 0, err
	}
	if cls == ck.CKO_DATA {
		ecLike := m.ecLikeKeyTypes()
		for _, a := range t {
			if !given.Has(a.Type) && attr.Lookup(a.Type, cls, kt, ecLike) == nil {
				return 0, fmt.Errorf("base key %d's CKA_DERIVE_TEMPLATE sets %v, which a data object lacks: %w", bh, a.Type, ck.CKR_TEMPLATE_INCONSISTENT)
			}
		}
		// CKA_PRIVATE's default is token-specific (§4.4): derived data is
		// as private as the key it came from. A private base key is
		// visible only to the logged-in user, so mayCreate, asked before
		// this default was known, still holds (commit asks again).
		if !t.Has(ck.CKA_PRIVATE) {
			t = append(t.Clone(), ck.Attribute{Type: ck.CKA_PRIVATE, Value: attr.Bool(b.private)})
		}
	}
	if err := checkDuplicates(t); err != nil {
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
		// Provenance is the weakest of every key the value came from: the
		// base key and any key the parameter named (§4.10).
		sens, _, _ := all.Bool(ck.CKA_SENSITIVE)
		extr, _, _ := all.Bool(ck.CKA_EXTRACTABLE)
		always, never := sens, !extr
		for _, o := range append([]*Object{b}, g.named...) {
			always = always && o.boolAttr(ck.CKA_ALWAYS_SENSITIVE)
			never = never && o.boolAttr(ck.CKA_NEVER_EXTRACTABLE)
		}
		all.Set(ck.CKA_ALWAYS_SENSITIVE, attr.Bool(always))
		all.Set(ck.CKA_NEVER_EXTRACTABLE, attr.Bool(never))
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
