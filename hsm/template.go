package hsm

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// How a template reaches the engine decides which rules of the attribute
// table apply (footnotes 1-6 of the base spec's attribute tables).
type origin int

const (
	fromCreate origin = iota
	fromGenerate
	fromUnwrap
	fromCopy
	fromSet
)

// checkDuplicates rejects a template that gives one attribute two values
// (CKR_TEMPLATE_INCONSISTENT); identical repeats are harmless.
func checkDuplicates(t attr.Template) error {
	for i := range t {
		for j := i + 1; j < len(t); j++ {
			if t[i].Type == t[j].Type && !bytes.Equal(t[i].Value, t[j].Value) {
				return fmt.Errorf("%v given twice: %w", t[i].Type, ck.CKR_TEMPLATE_INCONSISTENT)
			}
		}
	}
	return nil
}

// checkKind validates a value against its C type.
func checkKind(p *attr.Policy, v []byte) error {
	switch p.Kind {
	case attr.KindBool:
		if len(v) != 1 {
			return fmt.Errorf("%v: CK_BBOOL of %d bytes: %w", p.Type, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
	case attr.KindULong:
		if len(v) != 8 {
			return fmt.Errorf("%v: CK_ULONG of %d bytes: %w", p.Type, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
	case attr.KindDate:
		if len(v) != 0 && len(v) != 8 {
			return fmt.Errorf("%v: CK_DATE of %d bytes: %w", p.Type, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
	case attr.KindULongArray:
		if len(v)%8 != 0 {
			return fmt.Errorf("%v: array of %d bytes: %w", p.Type, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
	case attr.KindAttrArray:
		// A template attribute (CKA_WRAP_TEMPLATE...) holds an encoded
		// template; templates do not nest (§4.4).
		t, err := attr.DecodeTemplate(v)
		if err != nil {
			return fmt.Errorf("%v: %w", p.Type, err)
		}
		for _, a := range t {
			if attr.IsTemplate(a.Type) {
				return fmt.Errorf("%v holds %v: %w", p.Type, a.Type, ck.CKR_ATTRIBUTE_VALUE_INVALID)
			}
		}
	}
	return nil
}

// classOf reads CKA_CLASS and CKA_KEY_TYPE from a template.
func classOf(t attr.Template) (ck.ObjectClass, ck.KeyType, error) {
	c, ok, err := t.ULong(ck.CKA_CLASS)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, fmt.Errorf("no CKA_CLASS: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	cls := ck.ObjectClass(c)
	if attr.ClassBit(cls) == 0 {
		return 0, 0, fmt.Errorf("class %v: %w", cls, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	kt := noKeyType
	if attr.ClassBit(cls)&attr.Keys != 0 {
		k, ok, err := t.ULong(ck.CKA_KEY_TYPE)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			return 0, 0, fmt.Errorf("no CKA_KEY_TYPE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		kt = ck.KeyType(k)
	}
	return cls, kt, nil
}

// flagsOf reads CKA_TOKEN and CKA_PRIVATE with the class defaults, for the
// access checks that come before full validation.
func flagsOf(t attr.Template, cls ck.ObjectClass) (token, private bool, err error) {
	token, _, err = t.Bool(ck.CKA_TOKEN)
	if err != nil {
		return
	}
	private = cls == ck.CKO_PRIVATE_KEY || cls == ck.CKO_SECRET_KEY
	if v, ok, e := t.Bool(ck.CKA_PRIVATE); e != nil {
		err = e
	} else if ok {
		private = v
	}
	return
}

// draft is a new object's attributes as build made them, and the object
// they are for: when they are few, as for most keys a mechanism makes, one
// allocation holds the object, its own attributes and their values.
type draft struct {
	attr.Layered
	o *Object // nil: newObject allocates
}

// objectBlock is that allocation.
type objectBlock struct {
	Object
	own  [12]ck.Attribute
	vals [96]byte
}

// build validates a caller's template for a new object of class cls and
// key type kt, and returns its attributes: the caller's values and the
// token's over the table's defaults for everything omitted (attr.Layered;
// the defaults are shared, not copied). extra holds values the token sets
// itself (CKA_LOCAL, generated key material) and is trusted.
func (m *Module) build(t attr.Template, cls ck.ObjectClass, kt ck.KeyType, how origin, so bool, extra attr.Template) (draft, error) {
	if err := checkDuplicates(t); err != nil {
		return draft{}, err
	}
	rows := attr.RowsFor(cls, kt, m.ecLikeKeyTypes())
	// The caller's, the mechanism's and build's own values share one
	// allocation (room for the two provenance flags and the mechanism).
	size := 2 + 8
	for _, a := range t {
		size += len(a.Value)
	}
	for _, a := range extra {
		size += len(a.Value)
	}
	blk := new(objectBlock)
	out := draft{Layered: attr.Layered{Defaults: rows.Defaults()}, o: &blk.Object}
	if n := len(t) + len(extra) + 4; n <= len(blk.own) {
		out.Own = blk.own[:0]
	} else {
		out.Own = make(attr.Template, 0, n)
	}
	arena := valueArena(blk.vals[:0])
	if size > len(blk.vals) {
		arena = make([]byte, 0, size)
	}
	for _, a := range t {
		p, _, ok := rows.Find(a.Type)
		if !ok {
			return draft{}, fmt.Errorf("%v on %v: %w", a.Type, cls, ck.CKR_ATTRIBUTE_TYPE_INVALID)
		}
		if err := checkKind(p, a.Value); err != nil {
			return draft{}, err
		}
		switch how {
		case fromCreate:
			if p.Rules&attr.NoCreate != 0 {
				return draft{}, fmt.Errorf("%v is set by the token: %w", a.Type, ck.CKR_ATTRIBUTE_READ_ONLY)
			}
		case fromGenerate, fromUnwrap:
			if p.Rules&attr.NoCreate != 0 && p.Rules&attr.NoGenerate != 0 {
				return draft{}, fmt.Errorf("%v is set by the token: %w", a.Type, ck.CKR_ATTRIBUTE_READ_ONLY)
			}
			if how == fromGenerate && p.Rules&attr.NoGenerate != 0 {
				return draft{}, fmt.Errorf("%v is computed by key generation: %w", a.Type, ck.CKR_TEMPLATE_INCONSISTENT)
			}
			if how == fromUnwrap && p.Rules&attr.NoUnwrap != 0 {
				return draft{}, fmt.Errorf("%v comes from the wrapped key: %w", a.Type, ck.CKR_TEMPLATE_INCONSISTENT)
			}
		}
		if p.Rules&attr.SOOnly != 0 && !so && len(a.Value) == 1 && a.Value[0] != 0 {
			return draft{}, fmt.Errorf("%v true needs the SO: %w", a.Type, ck.CKR_ATTRIBUTE_READ_ONLY)
		}
		out.Own = append(out.Own, ck.Attribute{Type: a.Type, Value: arena.copy(a.Value)})
	}
	for _, a := range extra {
		out.Set(a.Type, arena.copy(a.Value))
	}
	if how == fromCreate {
		// Each type has one row per class and key type (TestOneRowPerAttribute).
		for _, p := range rows.Policies() {
			if p.Rules&attr.MustCreate != 0 && !out.Own.Has(p.Type) {
				return draft{}, fmt.Errorf("%v missing: %w", p.Type, ck.CKR_TEMPLATE_INCOMPLETE)
			}
		}
	}
	if attr.ClassBit(cls)&(attr.PrivateKey|attr.SecretKey) != 0 {
		sens, _, _ := out.Bool(ck.CKA_SENSITIVE)
		extr, _, _ := out.Bool(ck.CKA_EXTRACTABLE)
		local, _, _ := out.Bool(ck.CKA_LOCAL)
		// §4.9/§4.10: ALWAYS_SENSITIVE and NEVER_EXTRACTABLE are only true
		// for keys the token made (generated, or unwrapped/derived with
		// the rules of §5.14) and that were so from the start.
		out.Set(ck.CKA_ALWAYS_SENSITIVE, arena.copy(attr.Bool(local && sens)))
		out.Set(ck.CKA_NEVER_EXTRACTABLE, arena.copy(attr.Bool(local && !extr)))
		private, _, _ := out.Bool(ck.CKA_PRIVATE)
		if err := m.cfg.Policy.permitsObject(cls, private, sens, extr); err != nil {
			return draft{}, err
		}
	}
	if attr.ClassBit(cls)&attr.Keys != 0 {
		if !out.Has(ck.CKA_LOCAL) {
			out.Set(ck.CKA_LOCAL, arena.copy(attr.Bool(false)))
		}
		if !out.Has(ck.CKA_KEY_GEN_MECHANISM) {
			out.Set(ck.CKA_KEY_GEN_MECHANISM, arena.copy(attr.ULong(ck.CK_UNAVAILABLE_INFORMATION)))
		}
	}
	return out, nil
}

// valueArena hands out copies carved from one buffer. Each copy has its
// capacity clipped to its length, so appending to one value reallocates it
// rather than overwriting its neighbour.
type valueArena []byte

func (a *valueArena) copy(v []byte) []byte {
	if len(*a)+len(v) > cap(*a) {
		return append([]byte{}, v...)
	}
	start := len(*a)
	*a = append(*a, v...)
	return (*a)[start:len(*a):len(*a)]
}

// ecLikeKeyTypes are vendor key types that use the EC attribute rows.
// Shared; callers must not modify the slice.
func (m *Module) ecLikeKeyTypes() []ck.KeyType { return m.ecLike }

// split separates the attributes sealed at rest from the rest, in place:
// all is reordered, clear and secret are its two halves (clear's capacity
// clipped so that appending to it cannot overwrite a secret).
func (m *Module) split(all attr.Template, cls ck.ObjectClass, kt ck.KeyType, private bool) (clear, secret attr.Template) {
	sensitive := attr.SensitiveFor(cls, kt, m.ecLikeKeyTypes())
	n := 0
	for i := range all {
		if !slices.Contains(sensitive, all[i].Type) && !privateValue(cls, private, all[i].Type) {
			if i != n {
				all[n], all[i] = all[i], all[n]
			}
			n++
		}
	}
	if n == len(all) {
		return all, nil
	}
	return all[:n:n], all[n:]
}

// privateValue reports the one sealed attribute that is not a key's
// secret: the value of a private data object (CKM_HKDF_DATA output, or an
// application's secret). PKCS#11 shows it to the logged-in user only
// (§4.4 CKA_PRIVATE), so at rest it is sealed under the user's key like a
// private key's secrets; unlike those, it is never CKR_ATTRIBUTE_SENSITIVE.
func privateValue(cls ck.ObjectClass, private bool, t ck.AttributeType) bool {
	return cls == ck.CKO_DATA && private && t == ck.CKA_VALUE
}

// imposeTemplate merges the template an unwrapping or base key imposes
// (CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE, §4.9-4.10) into the caller's:
// the key made must have those values, so a caller value that differs is
// CKR_TEMPLATE_INCONSISTENT.
func imposeTemplate(o *Object, at ck.AttributeType, t attr.Template) (attr.Template, error) {
	enc, ok := o.clearGet(at)
	if !ok || len(enc) == 0 {
		return t, nil
	}
	imposed, err := attr.DecodeTemplate(enc)
	if err != nil {
		return nil, fmt.Errorf("%v of key %d: %w", at, o.handle, ck.CKR_DEVICE_ERROR)
	}
	out := t.Clone()
	for _, a := range imposed {
		if v, ok := out.Get(a.Type); ok {
			if !bytes.Equal(v, a.Value) {
				return nil, fmt.Errorf("%v conflicts with the key's %v: %w", a.Type, at, ck.CKR_TEMPLATE_INCONSISTENT)
			}
			continue
		}
		out = append(out, ck.Attribute{Type: a.Type, Value: append([]byte{}, a.Value...)})
	}
	return out, nil
}

// matchesTemplate reports whether o has every attribute of the template
// attribute at of the wrapping key w (CKA_WRAP_TEMPLATE, §4.8/§4.10: keys
// that do not match cannot be wrapped). The caller holds t.mu and has
// unsealed o.
func matchesTemplate(w, o *Object, at ck.AttributeType) (bool, error) {
	enc, ok := w.clearGet(at)
	if !ok || len(enc) == 0 {
		return true, nil
	}
	want, err := attr.DecodeTemplate(enc)
	if err != nil {
		return false, fmt.Errorf("%v of key %d: %w", at, w.handle, ck.CKR_DEVICE_ERROR)
	}
	return o.matches(want, true), nil
}
