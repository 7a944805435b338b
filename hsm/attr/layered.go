package attr

import "github.com/gohsm/gohsm/hsm/ck"

// Layered is an object's attributes kept the cheap way: its own values
// (what the caller gave, what the token set, what was changed since) over
// the defaults of its class and key type (Rows.Defaults). A key made by
// C_EncapsulateKey or C_DeriveKey has some forty attributes of which the
// caller named four; building, scanning and freeing the other thirty-six
// for every short-lived key cost more than the rest of its life together.
// Defaults are shared by every object of the class and never written,
// sorted by type (Rows.Defaults) so that a lookup that misses the object's
// own few values is a binary search, not a scan of thirty; Own shadows
// them. An object read from a store holds everything in Own.
type Layered struct {
	Own      Template
	Defaults Template
}

// Get returns the value of t: its own, else the default.
func (l Layered) Get(t ck.AttributeType) ([]byte, bool) {
	if v, ok := l.Own.Get(t); ok {
		return v, true
	}
	return l.defaultOf(t)
}

// HasDefault reports whether the class gives t a default.
func (l Layered) HasDefault(t ck.AttributeType) bool { _, ok := l.defaultOf(t); return ok }

func (l Layered) defaultOf(t ck.AttributeType) ([]byte, bool) {
	d := l.Defaults
	lo, hi := 0, len(d)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if d[m].Type < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(d) && d[lo].Type == t {
		return d[lo].Value, true
	}
	return nil, false
}

// Has reports whether t is present in either layer.
func (l Layered) Has(t ck.AttributeType) bool { _, ok := l.Get(t); return ok }

// Bool decodes a CK_BBOOL attribute from either layer.
func (l Layered) Bool(t ck.AttributeType) (v, ok bool, err error) {
	b, ok := l.Get(t)
	if !ok {
		return false, false, nil
	}
	v, err = DecodeBool(t, b)
	return v, true, err
}

// Set gives the object its own value of t, which shadows any default.
func (l *Layered) Set(t ck.AttributeType, v []byte) { l.Own.Set(t, v) }

// Flat returns every attribute once, own values first, as one template.
// The defaults' values are shared: callers that keep or edit the result
// clone it.
func (l Layered) Flat() Template {
	if len(l.Defaults) == 0 {
		return l.Own
	}
	out := make(Template, 0, len(l.Own)+len(l.Defaults))
	out = append(out, l.Own...)
	for _, a := range l.Defaults {
		if !l.Own.Has(a.Type) {
			out = append(out, a)
		}
	}
	return out
}
