package hsm

import (
	"fmt"
	"slices"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// The one authorisation gate. Every path that uses a key — the operations
// (classic and message-based), wrapping and unwrapping, derivation, the
// KEMs, C_DigestKey, and every key a mechanism parameter names — asks
// authorize, which decides from the use, the key, the mechanism and its
// parameter. What differs between uses is data (useRules); what a
// mechanism risks is declared with it in the registry (mech.Mechanism:
// IV, RawPrivate, UnwrapFixed, WeakDigest, ParamKeys). So a new mechanism
// or a new call cannot forget a check.
//
// Order (the house order, and §5.1.7's precedence where it speaks): the
// key's handle and visibility, its class, its usage flag, the mechanism,
// the token's policy profile, the key's type, CKA_ALLOWED_MECHANISMS, the
// mechanism's own safety rules, the keys named in the parameter, and last
// the key size, which needs the parsed key.

// use is what a key is used for.
type use uint8

const (
	useEncrypt use = iota
	useDecrypt
	useSign
	useVerify
	useMessageEncrypt
	useMessageDecrypt
	useMessageSign
	useMessageVerify
	useWrap   // the wrapping key of C_WrapKey
	useUnwrap // the unwrapping key of C_UnwrapKey
	useDerive // the base key of C_DeriveKey
	useEncapsulate
	useDecapsulate
	useDigestKey // the key C_DigestKey hashes
	useParam     // a key named inside a mechanism parameter
	uses
)

// useRule is one row of the gate's table.
type useRule struct {
	name string
	// usage is the flag the key must have; 0 for none (C_DigestKey) or
	// for the parameter's own (useParam: mech.ParamKeys.Usage).
	usage ck.AttributeType
	// class, when not 0, is the one class the use takes.
	class ck.ObjectClass
	// supports says whether a mechanism offers the use.
	supports func(*mech.Mechanism) bool
	// The codes the use reports a bad handle, a key of the wrong type or
	// class and a key of the wrong size with (C_WrapKey's are the
	// wrapping key's own, §5.14).
	badHandle, badType, badSize, badClass ck.RV
}

func hasFlag(f ck.Flags) func(*mech.Mechanism) bool {
	return func(mm *mech.Mechanism) bool { return mm.Info.Flags&f != 0 }
}

var useRules = [uses]useRule{
	useEncrypt: {name: "encrypt", usage: ck.CKA_ENCRYPT, supports: func(mm *mech.Mechanism) bool { return mm.Encrypt != nil }},
	useDecrypt: {name: "decrypt", usage: ck.CKA_DECRYPT, supports: func(mm *mech.Mechanism) bool { return mm.Decrypt != nil }},
	useSign:    {name: "sign", usage: ck.CKA_SIGN, supports: func(mm *mech.Mechanism) bool { return mm.Sign != nil }},
	useVerify:  {name: "verify", usage: ck.CKA_VERIFY, supports: func(mm *mech.Mechanism) bool { return mm.Verify != nil }},
	useMessageEncrypt: {name: "message encrypt", usage: ck.CKA_ENCRYPT, supports: func(mm *mech.Mechanism) bool {
		return mm.MessageEncrypt != nil && hasFlag(ck.CKF_MESSAGE_ENCRYPT)(mm)
	}},
	useMessageDecrypt: {name: "message decrypt", usage: ck.CKA_DECRYPT, supports: func(mm *mech.Mechanism) bool {
		return mm.MessageDecrypt != nil && hasFlag(ck.CKF_MESSAGE_DECRYPT)(mm)
	}},
	useMessageSign:   {name: "message sign", usage: ck.CKA_SIGN, supports: func(mm *mech.Mechanism) bool { return mm.Sign != nil }},
	useMessageVerify: {name: "message verify", usage: ck.CKA_VERIFY, supports: func(mm *mech.Mechanism) bool { return mm.Verify != nil }},
	useWrap: {name: "wrap", usage: ck.CKA_WRAP, supports: func(mm *mech.Mechanism) bool {
		return mm.Encrypt != nil && hasFlag(ck.CKF_WRAP)(mm)
	}, badHandle: ck.CKR_WRAPPING_KEY_HANDLE_INVALID, badType: ck.CKR_WRAPPING_KEY_TYPE_INCONSISTENT, badSize: ck.CKR_WRAPPING_KEY_SIZE_RANGE},
	useUnwrap: {name: "unwrap", usage: ck.CKA_UNWRAP, supports: func(mm *mech.Mechanism) bool {
		return (mm.Decrypt != nil || mm.UnwrapFixed != nil) && hasFlag(ck.CKF_UNWRAP)(mm)
	}, badHandle: ck.CKR_UNWRAPPING_KEY_HANDLE_INVALID, badType: ck.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, badSize: ck.CKR_UNWRAPPING_KEY_SIZE_RANGE},
	useDerive: {name: "derive", usage: ck.CKA_DERIVE, supports: func(mm *mech.Mechanism) bool { return mm.Derive != nil }},
	useEncapsulate: {name: "encapsulate", usage: ck.CKA_ENCAPSULATE, class: ck.CKO_PUBLIC_KEY, supports: func(mm *mech.Mechanism) bool {
		return mm.Encapsulate != nil && mm.CiphertextLen != nil
	}},
	useDecapsulate: {name: "decapsulate", usage: ck.CKA_DECAPSULATE, class: ck.CKO_PRIVATE_KEY, supports: func(mm *mech.Mechanism) bool {
		return mm.Decapsulate != nil
	}},
	// Only secret keys' values can be digested (§5.12 C_DigestKey); every
	// refusal is CKR_KEY_INDIGESTIBLE, the one code the call has for it.
	useDigestKey: {name: "digest key", class: ck.CKO_SECRET_KEY, supports: func(mm *mech.Mechanism) bool { return mm.Digest != nil },
		badClass: ck.CKR_KEY_INDIGESTIBLE, badType: ck.CKR_KEY_INDIGESTIBLE, badSize: ck.CKR_KEY_INDIGESTIBLE},
	// A key named in a parameter: anything wrong with the name itself is
	// the parameter's fault; what the key may not do is reported as for
	// the operation's key.
	useParam: {name: "parameter key", class: ck.CKO_SECRET_KEY, supports: func(*mech.Mechanism) bool { return true },
		badHandle: ck.CKR_MECHANISM_PARAM_INVALID, badType: ck.CKR_MECHANISM_PARAM_INVALID, badClass: ck.CKR_MECHANISM_PARAM_INVALID},
}

// rule returns u's row with the defaults filled in.
func (u use) rule() useRule {
	r := useRules[u]
	if r.badHandle == 0 {
		r.badHandle = ck.CKR_KEY_HANDLE_INVALID
	}
	if r.badType == 0 {
		r.badType = ck.CKR_KEY_TYPE_INCONSISTENT
	}
	if r.badSize == 0 {
		r.badSize = ck.CKR_KEY_SIZE_RANGE
	}
	if r.badClass == 0 {
		r.badClass = r.badType
	}
	return r
}

// grant is what the gate lets a call use.
type grant struct {
	mm  *mech.Mechanism
	obj *Object
	key *mech.Key
	// param is the caller's parameter with the keys it names bound to
	// their material (ParamKeys); the caller's otherwise.
	param any
	// named are the objects the parameter named, for the provenance of
	// what is made from them (a derived key is ALWAYS_SENSITIVE only if
	// its salt key is too).
	named []*Object
	// tokenNonce: the token must make the IV/nonce (in place in the
	// parameter, mech.Mechanism.Nonce) before the operation starts; the
	// caller's buffer was all zero. messageNonceByToken: every message of
	// a message-based encryption must leave its nonce to the token.
	tokenNonce          bool
	messageNonceByToken bool
}

// authorize is the gate. The grant is returned by value: an operation
// init allocates nothing for it. The caller holds s.mu and no token lock (the key
// is found lock-free, and unsealed under the token's read lock only on its
// first use after login).
func (m *Module) authorize(s *Session, u use, kh ck.ObjectHandle, mt ck.Mechanism) (grant, error) {
	r := u.rule()
	tok := s.tok
	// Another process may have changed or destroyed the key (turned its
	// CKA_SIGN off, made it sensitive): decide on the newest committed
	// state. Nothing changed is one atomic load (tokens' change counter).
	if err := tok.sync(); err != nil {
		return grant{}, err
	}
	o, err := tok.visible(kh)
	if err != nil || !o.isKey() {
		return grant{}, fmt.Errorf("%s key %d: %w", r.name, kh, r.badHandle)
	}
	if r.class != 0 && o.class != r.class {
		return grant{}, fmt.Errorf("%s with a %v (key %d): %w", r.name, o.class, kh, r.badClass)
	}
	if r.usage != 0 && !o.boolAttr(r.usage) {
		return grant{}, fmt.Errorf("key %d has %v false: %w", kh, r.usage, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	mm, ok := m.reg.Mechanism(mt.Type)
	if !ok || !r.supports(mm) {
		return grant{}, fmt.Errorf("%v cannot %s: %w", mt.Type, r.name, ck.CKR_MECHANISM_INVALID)
	}
	if err := m.cfg.Policy.permits(u, mm, o); err != nil {
		return grant{}, err
	}
	if u != useDigestKey && !slices.Contains(mm.KeyTypes, o.keyType) {
		return grant{}, fmt.Errorf("%v with a %v key: %w", mt.Type, o.keyType, r.badType)
	}
	if allowed, ok := o.clearGet(ck.CKA_ALLOWED_MECHANISMS); ok && len(allowed) > 0 && !allowsMechanism(allowed, mt.Type) {
		code := ck.CKR_MECHANISM_INVALID
		if u == useDigestKey {
			code = ck.CKR_KEY_INDIGESTIBLE
		}
		return grant{}, fmt.Errorf("%v not in key %d's CKA_ALLOWED_MECHANISMS: %w", mt.Type, kh, code)
	}
	g := grant{mm: mm, obj: o, param: mt.Param}
	if err := m.mechanismRules(u, &g, kh, mt); err != nil {
		return grant{}, err
	}
	if mm.ParamKeys != nil {
		if err := m.bindParamKeys(s, &g, mt); err != nil {
			return grant{}, err
		}
	}
	if err := tok.ensureUnsealed(o); err != nil {
		return grant{}, err
	}
	if g.key, err = o.key(m.reg); err != nil {
		return grant{}, err
	}
	if err := m.checkSize(mm, o, g.key, r.badSize); err != nil {
		return grant{}, err
	}
	return g, nil
}

// mechanismRules applies what the mechanism declares about itself.
func (m *Module) mechanismRules(u use, g *grant, kh ck.ObjectHandle, mt ck.Mechanism) error {
	mm, o := g.mm, g.obj
	// The raw RSA function is both directions at once (mech.RawPrivate).
	if mm.RawPrivate && o.class == ck.CKO_PRIVATE_KEY && (u == useSign || u == useDecrypt || u == useMessageSign) {
		if !o.boolAttr(ck.CKA_SIGN) || !o.boolAttr(ck.CKA_DECRYPT) {
			return fmt.Errorf("%v computes the same private function to sign and to decrypt: key %d needs both CKA_SIGN and CKA_DECRYPT: %w",
				mt.Type, kh, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
		}
	}
	if u == useDigestKey && o.sensitive() && mm.WeakDigest {
		return fmt.Errorf("%v of sensitive key %d: %w", mt.Type, kh, ck.CKR_KEY_INDIGESTIBLE)
	}
	if mm.IV != mech.IVNonce {
		return nil
	}
	// A nonce the caller picks may be one the token used already. Under
	// a key that wraps, or may wrap sensitive keys and also encrypts, the
	// same nonce on a known plaintext and on a wrapped key gives the key
	// away (keystream reuse), so there the token makes every nonce.
	switch {
	case u == useWrap:
	case (u == useEncrypt || u == useMessageEncrypt) && wrapsSensitive(o):
	default:
		return nil
	}
	if u == useMessageEncrypt {
		if mm.MessageNonceByToken == nil {
			return fmt.Errorf("%v under key %d, which may wrap sensitive keys, would take the caller's nonces: %w",
				mt.Type, kh, ck.CKR_MECHANISM_INVALID)
		}
		g.messageNonceByToken = true
		return nil
	}
	var iv []byte
	if mm.Nonce != nil {
		iv = mm.Nonce(mt.Param)
	}
	if len(iv) == 0 {
		return fmt.Errorf("%v under key %d: no IV buffer for the token's IV: %w", mt.Type, kh, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	for _, b := range iv {
		if b != 0 {
			return fmt.Errorf("%v under key %d takes only an IV the token makes (pass a zeroed buffer; the IV is returned in it): %w",
				mt.Type, kh, ck.CKR_MECHANISM_PARAM_INVALID)
		}
	}
	g.tokenNonce = true
	return nil
}

// wrapsSensitive reports whether w may wrap sensitive keys
// (canWrapSensitive) and does wrap: the keys whose nonces only the token
// may pick.
func wrapsSensitive(w *Object) bool {
	return w.boolAttr(ck.CKA_WRAP) && canWrapSensitive(w)
}

// bindParamKeys passes every key the parameter names through the gate (as
// useParam, with the parameter's own usage flag) and binds their material.
func (m *Module) bindParamKeys(s *Session, g *grant, mt ck.Mechanism) error {
	pk := g.mm.ParamKeys
	hs := pk.Handles(mt.Param)
	if len(hs) == 0 {
		return nil
	}
	keys := make([]*mech.Key, 0, len(hs))
	for _, h := range hs {
		o, k, err := m.paramKey(s, pk, h, mt.Type)
		if err != nil {
			return err
		}
		g.named = append(g.named, o)
		keys = append(keys, k)
	}
	p, err := pk.Bind(mt.Param, keys)
	if err != nil {
		return fmt.Errorf("%v: %w", mt.Type, err)
	}
	g.param = p
	return nil
}

// paramKey is the gate for one key a parameter names.
func (m *Module) paramKey(s *Session, pk *mech.ParamKeys, h ck.ObjectHandle, mt ck.MechanismType) (*Object, *mech.Key, error) {
	r := useParam.rule()
	tok := s.tok
	o, err := tok.visible(h)
	if err != nil || !o.isKey() {
		return nil, nil, fmt.Errorf("%v parameter names key %d: %w", mt, h, r.badHandle)
	}
	if o.class != r.class || !slices.Contains(pk.KeyTypes, o.keyType) {
		return nil, nil, fmt.Errorf("%v parameter names a %v %v: %w", mt, o.class, o.keyType, r.badType)
	}
	if !o.boolAttr(pk.Usage) {
		return nil, nil, fmt.Errorf("key %d named in the %v parameter has %v false: %w", h, mt, pk.Usage, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	if allowed, ok := o.clearGet(ck.CKA_ALLOWED_MECHANISMS); ok && len(allowed) > 0 && !allowsMechanism(allowed, mt) {
		return nil, nil, fmt.Errorf("%v not in CKA_ALLOWED_MECHANISMS of key %d named in its parameter: %w", mt, h, ck.CKR_MECHANISM_INVALID)
	}
	if err := tok.ensureUnsealed(o); err != nil {
		return nil, nil, err
	}
	k, err := o.key(m.reg)
	if err != nil {
		return nil, nil, err
	}
	return o, k, nil
}

// checkSize compares the key's size with the mechanism's bounds.
func (m *Module) checkSize(mm *mech.Mechanism, o *Object, k *mech.Key, code ck.RV) error {
	kk, ok := m.reg.KeyKind(o.keyType)
	if !ok || kk.Size == nil {
		return nil
	}
	size := kk.Size(k.Attrs, k.Material)
	if (mm.Info.MinKeySize != 0 && size < mm.Info.MinKeySize) || (mm.Info.MaxKeySize != 0 && size > mm.Info.MaxKeySize) {
		return fmt.Errorf("%v with a key of size %d: %w", mm.Type, size, code)
	}
	return nil
}

func allowsMechanism(list []byte, mt ck.MechanismType) bool {
	for i := 0; i+8 <= len(list); i += 8 {
		v, _ := attr.DecodeULong(ck.CKA_ALLOWED_MECHANISMS, list[i:i+8])
		if ck.MechanismType(v) == mt {
			return true
		}
	}
	return false
}
