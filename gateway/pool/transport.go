package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The pool transport key, and how it gets onto the tokens.
//
// Tokens of a pool hold the same keys. A key version made on one token is
// copied to the others the way HSM clusters clone between members: wrapped
// on the source (C_WrapKey) and unwrapped on the target (C_UnwrapKey)
// under a key every member holds and none will give out, the pool
// transport key: AES-256, CKA_EXTRACTABLE false, CKA_SENSITIVE true,
// CKA_WRAP and CKA_UNWRAP and nothing else (no C_Decrypt of a blob), with
// CKA_ID DefaultTransportID. Keys the gateway makes to be cloned are
// CKA_EXTRACTABLE true with CKA_WRAP_WITH_TRUSTED true: PKCS#11's way of
// saying "may leave only under a key the SO trusts", and the SO trusts
// only the transport key. (A CKA_EXTRACTABLE false key cannot be wrapped
// at all: such a key stays on the token it was made on, and Replicate
// says so.)
//
// Getting one value onto several tokens without it ever being outside a
// token needs a key-agreement ceremony between tokens, and PKCS#11's
// ECDH gives a key per *pair* of tokens, not one per pool. What this
// package does, honestly: InstallTransport is the provisioning ceremony.
// The administrator's process makes 32 random bytes, creates the key on
// every token of the pool from them (C_CreateObject, non-extractable from
// birth) and zeroes them; the value exists in that process's memory for
// the ceremony only, as a key component does in a paper ceremony. Then
// the SO of each token marks it trusted (`gohsm token trust --label
// gohsm-pool-transport`, or C_SetAttributeValue(CKA_TRUSTED) in an SO
// session on a real HSM); the key is a public object (CKA_PRIVATE false)
// so the SO can see it. gohsm's engine wraps a sensitive key only under a
// trusted key that cannot decrypt (hsm/wrap.go: the Tookan rules), so an
// untrusted copy of the value, imported by an attacker, wraps nothing.
// Tokens of one appliance, or of one HSM vendor's cluster, may instead
// share the key by the vendor's cloning; the pool only needs it present.

// DefaultTransportID is the transport key's CKA_ID (and CKA_LABEL).
const DefaultTransportID = "gohsm-pool-transport"

// wrapMech is the transport mechanism: AES key wrap with padding (RFC
// 5649, NIST SP 800-38F KWP): deterministic, no IV to manage, integrity
// built in, and both gohsm and SoftHSMv2 wrap secret and private keys
// (PKCS#8) with it.
var wrapMech = ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}

// ErrTransportAmbiguous: a token holds more than one secret key with the
// transport key's CKA_ID (a second ceremony, or an object someone made
// with that CKA_ID). The pool refuses such a token rather than choose:
// wrapping under one copy and unwrapping under another fails at random,
// and a key chosen by search order is a key an intruder could have placed.
var ErrTransportAmbiguous = errors.New("pool: more than one transport key")

// transportKeys lists the token's secret keys with CKA_ID id.
func transportKeys(s token.Session, id []byte) ([]ck.ObjectHandle, error) {
	return s.FindObjects([]ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_ID, Value: id},
	})
}

// oneTransport is the token's transport key, which must be the only one.
func oneTransport(s token.Session, label string, id []byte) (ck.ObjectHandle, error) {
	hs, err := transportKeys(s, id)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, fmt.Errorf("token %q has no pool transport key (CKA_ID %q): run the provisioning ceremony (pool.InstallTransport): %w",
			label, id, ck.CKR_WRAPPING_KEY_HANDLE_INVALID)
	case 1:
		return hs[0], nil
	}
	return 0, fmt.Errorf("token %q has %d secret keys with the transport key's CKA_ID %q: keep the one every token of the pool shares and destroy the others: %w",
		label, len(hs), id, ErrTransportAmbiguous)
}

// CheckTransport reports whether t holds exactly one transport key with
// CKA_ID id: what a pool of several tokens needs of each.
func CheckTransport(t token.Token, id []byte) error {
	s, err := t.OpenSession()
	if err != nil {
		return fmt.Errorf("token %q: %w", t.Label(), err)
	}
	defer s.Close()
	_, err = oneTransport(s, t.Label(), id)
	return err
}

// InstallTransport creates the transport key with value on the token of
// s (a user session), labelled and identified by id. The caller zeroes
// value after the last token; the SO then trusts the key per token. A
// token that already has a key with that CKA_ID is refused
// (ErrTransportAmbiguous): it would then have two.
func InstallTransport(s token.Session, id, value []byte) (ck.ObjectHandle, error) {
	if len(value) != 32 {
		return 0, errors.New("pool: transport key must be 32 bytes")
	}
	if hs, err := transportKeys(s, id); err != nil {
		return 0, err
	} else if len(hs) > 0 {
		return 0, fmt.Errorf("pool: the token already has a secret key with CKA_ID %q; destroy it before installing another: %w",
			id, ErrTransportAmbiguous)
	}
	return s.CreateObject([]ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_ID, Value: id},
		{Type: ck.CKA_LABEL, Value: id},
		{Type: ck.CKA_VALUE, Value: value},
		boolAttr(ck.CKA_TOKEN, true),
		boolAttr(ck.CKA_PRIVATE, false),
		boolAttr(ck.CKA_SENSITIVE, true),
		boolAttr(ck.CKA_EXTRACTABLE, false),
		boolAttr(ck.CKA_WRAP, true),
		boolAttr(ck.CKA_UNWRAP, true),
		boolAttr(ck.CKA_ENCRYPT, false),
		boolAttr(ck.CKA_DECRYPT, false),
		boolAttr(ck.CKA_SIGN, false),
		boolAttr(ck.CKA_VERIFY, false),
		boolAttr(ck.CKA_DERIVE, false),
	})
}

// transport is the transport key's handle on m.
func (m *member) transport(s token.Session) (ck.ObjectHandle, error) {
	key := "\x00transport"
	if v, ok := m.handles.Load(key); ok {
		return v.(ck.ObjectHandle), nil
	}
	h, err := oneTransport(s, m.tok.Label(), m.p.cfg.TransportID)
	if err != nil {
		return 0, err
	}
	m.handles.Store(key, h)
	return h, nil
}

// Replicate copies the objects with CKA_ID id from a token in service that
// has them to every other token in service that lacks them. Tokens out of
// service catch up when a call first needs the key there (find).
func (p *Pool) Replicate(ctx context.Context, id []byte) error {
	var errs []error
	for _, dst := range p.members {
		if !dst.inService.Load() {
			continue
		}
		err := dst.withSession(ctx, func(s token.Session) error {
			hs, err := s.FindObjects([]ck.Attribute{{Type: ck.CKA_ID, Value: id}})
			if err != nil || len(hs) > 0 {
				return err
			}
			return p.replicateTo(ctx, id, dst, s)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("replicate %q to token %q: %w", id, dst.tok.Label(), err))
		}
	}
	return errors.Join(errs...)
}

// replicateTo copies id's objects onto dst (through dst's session ds) from
// the first other token in service that has them; ErrNoObject when none
// has.
func (p *Pool) replicateTo(ctx context.Context, id []byte, dst *member, ds token.Session) error {
	for _, src := range p.members {
		if src == dst || !src.inService.Load() {
			continue
		}
		found := false
		err := src.withSession(ctx, func(ss token.Session) error {
			hs, err := ss.FindObjects([]ck.Attribute{{Type: ck.CKA_ID, Value: id}})
			if err != nil || len(hs) == 0 {
				return err
			}
			found = true
			for _, h := range hs {
				if err := copyObject(src, ss, h, dst, ds); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if found {
			return nil
		}
	}
	return ErrNoObject
}

// Attributes a copy keeps: what the object is and may do. Values the
// source does not have are left out (the target's defaults apply).
var (
	keyAttrs = []ck.AttributeType{
		ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_ID, ck.CKA_LABEL, ck.CKA_TOKEN, ck.CKA_PRIVATE,
		ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP, ck.CKA_DERIVE,
	}
	secretAttrs = []ck.AttributeType{ck.CKA_SENSITIVE, ck.CKA_EXTRACTABLE, ck.CKA_WRAP_WITH_TRUSTED}
	// Public material: copied by value, public keys need no wrapping.
	publicAttrs = []ck.AttributeType{ck.CKA_EC_PARAMS, ck.CKA_EC_POINT, ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT, ck.CKA_VALUE, ck.CKA_PARAMETER_SET}
)

// copyObject copies object h of src (session ss) to dst (session ds).
func copyObject(src *member, ss token.Session, h ck.ObjectHandle, dst *member, ds token.Session) error {
	base, err := read(ss, h, keyAttrs)
	if err != nil {
		return err
	}
	cls, err := attr.DecodeULong(ck.CKA_CLASS, get(base, ck.CKA_CLASS))
	if err != nil {
		return err
	}
	switch ck.ObjectClass(cls) {
	case ck.CKO_PUBLIC_KEY:
		pub, err := read(ss, h, publicAttrs)
		if err != nil {
			return err
		}
		_, err = ds.CreateObject(append(base, pub...))
		return err
	case ck.CKO_SECRET_KEY, ck.CKO_PRIVATE_KEY:
	default:
		return fmt.Errorf("object class %v is not replicated: %w", ck.ObjectClass(cls), ck.CKR_KEY_NOT_WRAPPABLE)
	}
	// No CKA_VALUE_LEN: KWP's blob carries the length, and SoftHSMv2
	// refuses the attribute in an unwrap template (CKR_ATTRIBUTE_READ_ONLY).
	more, err := read(ss, h, secretAttrs)
	if err != nil {
		return err
	}
	if v := get(more, ck.CKA_EXTRACTABLE); v != nil && len(v) == 1 && v[0] == 0 {
		return fmt.Errorf("key %q is not extractable, so it cannot leave the token it was made on (make keys for a pool with CKA_EXTRACTABLE and CKA_WRAP_WITH_TRUSTED true): %w",
			get(base, ck.CKA_ID), ck.CKR_KEY_UNEXTRACTABLE)
	}
	sw, err := src.transport(ss)
	if err != nil {
		return err
	}
	dw, err := dst.transport(ds)
	if err != nil {
		return err
	}
	blob, err := ss.WrapKey(wrapMech, sw, h)
	if err != nil {
		return fmt.Errorf("wrap on %q: %w", src.tok.Label(), err)
	}
	tmpl := append(base, more...)
	if _, err := ds.UnwrapKey(wrapMech, dw, blob, tmpl); err != nil {
		return fmt.Errorf("unwrap on %q: %w", dst.tok.Label(), err)
	}
	return nil
}

// read returns the attributes of types that h has.
func read(s token.Session, h ck.ObjectHandle, types []ck.AttributeType) ([]ck.Attribute, error) {
	vs, err := s.GetAttributes(h, types...)
	if err != nil {
		return nil, err
	}
	var out []ck.Attribute
	for i, v := range vs {
		if v != nil {
			out = append(out, ck.Attribute{Type: types[i], Value: v})
		}
	}
	return out, nil
}

func get(t []ck.Attribute, typ ck.AttributeType) []byte {
	for _, a := range t {
		if a.Type == typ {
			return a.Value
		}
	}
	return nil
}
