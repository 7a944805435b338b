package mech

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
	"github.com/cloudflare/circl/ecc/goldilocks"
	"github.com/cloudflare/circl/sign/ed448"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// EdDSA (PKCS#11 3.0 Current Mechanisms §2.3.14, CKM_EDDSA, and §2.3.4
// "Edwards Elliptic curve" keys, CKK_EC_EDWARDS) over Ed25519 (crypto/ed25519)
// and Ed448 (circl). CK_EDDSA_PARAMS picks the RFC 8032 variant: no
// parameter is Ed25519 / Ed448 with an empty context; phFlag false with a
// context is Ed25519ctx / Ed448 with that context; phFlag true is Ed25519ph
// / Ed448ph, where the token applies the prehash (SHA-512 / SHAKE256-64) to
// the data it is given.
//
// Keys: CKA_EC_PARAMS is the curve's OID (RFC 8410: 1.3.101.112 /
// 1.3.101.113) or its name as a PrintableString ("edwards25519" /
// "edwards448", the form the 3.0 spec shows); CKA_EC_POINT is the RFC 8032
// public key in a DER OCTET STRING, or bare (OpenSC sends it so); a private
// key's CKA_VALUE is the RFC 8032 private key, i.e. the seed. Sizes are in
// bits (255.. for Ed25519, 448 for Ed448), as for the other EC families.
//
// Both libraries sign in constant time; keys are immutable after parsing
// and safe to share between sessions.

type edCurve struct {
	name    string
	oids    []asn1.ObjectIdentifier
	names   []string
	bits    int
	keyLen  int // public key and seed bytes
	sigLen  int
	maxCtx  int
	ed25519 bool
}

var edCurves = []edCurve{
	{"Ed25519", []asn1.ObjectIdentifier{{1, 3, 101, 112}, {1, 3, 6, 1, 4, 1, 11591, 15, 1}}, []string{"edwards25519", "Ed25519"}, 255, 32, 64, 255, true},
	{"Ed448", []asn1.ObjectIdentifier{{1, 3, 101, 113}}, []string{"edwards448", "Ed448"}, 448, 57, 114, 255, false},
}

// edCurveOf decodes CKA_EC_PARAMS for an Edwards key (the second OID for
// Ed25519 is GnuPG's, which OpenSC and some tokens use).
func edCurveOf(params []byte) (*edCurve, error) {
	var raw asn1.RawValue
	if rest, err := asn1.Unmarshal(params, &raw); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("CKA_EC_PARAMS: not one DER value: %w", ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	switch {
	case raw.Class == asn1.ClassUniversal && raw.Tag == asn1.TagOID:
		var oid asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(params, &oid); err != nil {
			return nil, fmt.Errorf("CKA_EC_PARAMS: %v: %w", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		for i := range edCurves {
			for _, o := range edCurves[i].oids {
				if o.Equal(oid) {
					return &edCurves[i], nil
				}
			}
		}
		return nil, fmt.Errorf("CKA_EC_PARAMS: Edwards curve %v: %w", oid, ck.CKR_CURVE_NOT_SUPPORTED)
	case raw.Class == asn1.ClassUniversal && raw.Tag == asn1.TagPrintableString:
		for i := range edCurves {
			for _, n := range edCurves[i].names {
				if n == string(raw.Bytes) {
					return &edCurves[i], nil
				}
			}
		}
		return nil, fmt.Errorf("CKA_EC_PARAMS: Edwards curve %q: %w", raw.Bytes, ck.CKR_CURVE_NOT_SUPPORTED)
	}
	return nil, fmt.Errorf("CKA_EC_PARAMS: only named curves: %w", ck.CKR_CURVE_NOT_SUPPORTED)
}

// edKey is the material of a CKK_EC_EDWARDS object.
type edKey struct {
	curve *edCurve
	pub   []byte
	priv  crypto.Signer // ed25519.PrivateKey or ed448.PrivateKey; nil for public keys
}

func edPointRaw(c *edCurve, v []byte) ([]byte, error) {
	if len(v) == c.keyLen {
		return v, nil
	}
	var p []byte
	if rest, err := asn1.Unmarshal(v, &p); err != nil || len(rest) != 0 || len(p) != c.keyLen {
		return nil, fmt.Errorf("CKA_EC_POINT: not a %d-byte %s key: %w", c.keyLen, c.name, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return p, nil
}

// edOnCurve checks that a public key decodes to a point of the curve
// (RFC 8032 §5.1.3 / §5.2.3 decoding, FIPS 186-5 §7.6): an encoding that is
// not one is refused at import (NIST ACVP EDDSA keyVer) rather than
// failing every verification later. PKCS#11 lets a token skip the check
// (§5.1, CKR_PUBLIC_KEY_INVALID "may" be returned); SoftHSMv2 does.
// Ed25519 decodes with filippo.io/edwards25519 (the standard library's own
// implementation, exported), which accepts non-canonical encodings of valid
// points as most verifiers do; Ed448 with circl's goldilocks.
func edOnCurve(c *edCurve, p []byte) error {
	var err error
	if c.ed25519 {
		_, err = new(edwards25519.Point).SetBytes(p)
	} else {
		_, err = goldilocks.FromBytes(p)
	}
	if err != nil {
		return fmt.Errorf("CKA_EC_POINT: not a point of %s: %w", c.name, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	}
	return nil
}

func parseEdwards(class ck.ObjectClass, a attr.Template) (any, error) {
	params, ok := a.Get(ck.CKA_EC_PARAMS)
	if !ok {
		return nil, fmt.Errorf("CKK_EC_EDWARDS: CKA_EC_PARAMS: %w", ck.CKR_TEMPLATE_INCOMPLETE)
	}
	c, err := edCurveOf(params)
	if err != nil {
		return nil, err
	}
	switch class {
	case ck.CKO_PUBLIC_KEY:
		v, ok := a.Get(ck.CKA_EC_POINT)
		if !ok {
			return nil, fmt.Errorf("CKK_EC_EDWARDS: CKA_EC_POINT: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		p, err := edPointRaw(c, v)
		if err != nil {
			return nil, err
		}
		if err := edOnCurve(c, p); err != nil {
			return nil, err
		}
		return &edKey{curve: c, pub: append([]byte(nil), p...)}, nil
	case ck.CKO_PRIVATE_KEY:
		v, ok := a.Get(ck.CKA_VALUE)
		if !ok {
			return nil, fmt.Errorf("CKK_EC_EDWARDS: CKA_VALUE: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
		if len(v) != c.keyLen {
			return nil, fmt.Errorf("CKK_EC_EDWARDS: %s seed of %d bytes: %w", c.name, len(v), ck.CKR_ATTRIBUTE_VALUE_INVALID)
		}
		return edFromSeed(c, v), nil
	}
	return nil, fmt.Errorf("CKK_EC_EDWARDS: class %v: %w", class, ck.CKR_TEMPLATE_INCONSISTENT)
}

func edFromSeed(c *edCurve, seed []byte) *edKey {
	if c.ed25519 {
		priv := ed25519.NewKeyFromSeed(seed)
		return &edKey{curve: c, priv: priv, pub: append([]byte(nil), priv[32:]...)}
	}
	priv := ed448.NewKeyFromSeed(seed)
	return &edKey{curve: c, priv: priv, pub: append([]byte(nil), priv.Public().(ed448.PublicKey)...)}
}

func edKeyKinds() []KeyKind {
	return []KeyKind{{
		Type:   ck.CKK_EC_EDWARDS,
		pct:    signPCT(ck.CKM_EDDSA, nil),
		Parse:  parseEdwards,
		Secret: []ck.AttributeType{ck.CKA_VALUE},
		Size: func(a attr.Template, m any) ck.ULong {
			if k, ok := m.(*edKey); ok {
				return ck.ULong(k.curve.bits)
			}
			p, _ := a.Get(ck.CKA_EC_PARAMS)
			if c, err := edCurveOf(p); err == nil {
				return ck.ULong(c.bits)
			}
			return 0
		},
	}}
}

func eddsaMechanisms() []Mechanism {
	info := func(f ck.Flags) ck.MechanismInfo {
		return ck.MechanismInfo{MinKeySize: 255, MaxKeySize: 448, Flags: f | ck.CKF_EC_F_P | ck.CKF_EC_NAMEDCURVE | ck.CKF_EC_CURVENAME}
	}
	kts := []ck.KeyType{ck.CKK_EC_EDWARDS}
	return []Mechanism{{
		Type:            ck.CKM_EC_EDWARDS_KEY_PAIR_GEN,
		Info:            info(ck.CKF_GENERATE_KEY_PAIR),
		GenerateKeyPair: generateEdwards,
	}, {
		Type: ck.CKM_EDDSA, Info: info(ck.CKF_SIGN | ck.CKF_VERIFY), KeyTypes: kts,
		Sign: func(k *Key, param any) (Signer, error) {
			op, err := newEdOp(k, param, true)
			if err != nil {
				return nil, err
			}
			return &edSigner{op}, nil
		},
		Verify: func(k *Key, param any) (Verifier, error) {
			op, err := newEdOp(k, param, false)
			if err != nil {
				return nil, err
			}
			return &edVerifier{op}, nil
		},
	}}
}

func generateEdwards(pubT, privT attr.Template) (attr.Template, attr.Template, error) {
	params, ok := pubT.Get(ck.CKA_EC_PARAMS)
	if !ok {
		if params, ok = privT.Get(ck.CKA_EC_PARAMS); !ok {
			return nil, nil, fmt.Errorf("edwards key gen: CKA_EC_PARAMS: %w", ck.CKR_TEMPLATE_INCOMPLETE)
		}
	}
	c, err := edCurveOf(params)
	if err != nil {
		if errors.Is(err, ck.CKR_ATTRIBUTE_VALUE_INVALID) {
			return nil, nil, fmt.Errorf("edwards key gen: %v: %w", err, ck.CKR_DOMAIN_PARAMS_INVALID)
		}
		return nil, nil, err
	}
	for _, t := range []attr.Template{pubT, privT} {
		if _, err := templateKeyType(t, ck.CKK_EC_EDWARDS); err != nil {
			return nil, nil, err
		}
	}
	seed := make([]byte, c.keyLen)
	if _, err := rand.Read(seed); err != nil {
		return nil, nil, fmt.Errorf("edwards key gen: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	k := edFromSeed(c, seed)
	kt := attr.ULong(ck.ULong(ck.CKK_EC_EDWARDS))
	point, _ := asn1.Marshal(k.pub)
	return attr.Template{
			{Type: ck.CKA_KEY_TYPE, Value: kt},
			{Type: ck.CKA_EC_PARAMS, Value: append([]byte(nil), params...)},
			{Type: ck.CKA_EC_POINT, Value: point},
		}, attr.Template{
			{Type: ck.CKA_KEY_TYPE, Value: kt},
			{Type: ck.CKA_EC_PARAMS, Value: append([]byte(nil), params...)},
			{Type: ck.CKA_VALUE, Value: seed},
		}, nil
}

// edOp is one EdDSA signature or verification. EdDSA hashes the message
// twice (pure variants), so multi-part input is buffered and signed at
// Final; the prehash variants could stream, but one path keeps it simple.
type edOp struct {
	key *edKey
	ph  bool
	ctx []byte
	buf []byte
}

func newEdOp(k *Key, param any, sign bool) (*edOp, error) {
	m, err := keyMaterial(k, parseEdwards)
	if err != nil {
		return nil, err
	}
	ek, ok := m.(*edKey)
	if !ok {
		return nil, fmt.Errorf("CKM_EDDSA: key material %T: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	if sign && ek.priv == nil {
		return nil, fmt.Errorf("CKM_EDDSA: signing needs a private key: %w", ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	op := &edOp{key: ek}
	if noParam(ck.CKM_EDDSA, param) != nil {
		p, ok := paramAs[ck.EDDSAParams](param)
		if !ok {
			return nil, fmt.Errorf("CKM_EDDSA: parameter %T: %w", param, ck.CKR_MECHANISM_PARAM_INVALID)
		}
		if len(p.ContextData) > ek.curve.maxCtx {
			return nil, fmt.Errorf("CKM_EDDSA: context of %d bytes: %w", len(p.ContextData), ck.CKR_MECHANISM_PARAM_INVALID)
		}
		op.ph, op.ctx = p.PHFlag, append([]byte(nil), p.ContextData...)
	}
	return op, nil
}

func (o *edOp) Update(p []byte) error { o.buf = append(o.buf, p...); return nil }

func (o *edOp) sign(msg []byte) ([]byte, error) {
	c := o.key.curve
	if c.ed25519 {
		opts := &ed25519.Options{Context: string(o.ctx)}
		if o.ph {
			h := crypto.SHA512.New()
			h.Write(msg)
			msg, opts.Hash = h.Sum(nil), crypto.SHA512
		}
		sig, err := o.key.priv.(ed25519.PrivateKey).Sign(nil, msg, opts)
		if err != nil {
			return nil, fmt.Errorf("CKM_EDDSA: %v: %w", err, ck.CKR_FUNCTION_FAILED)
		}
		return sig, nil
	}
	priv := o.key.priv.(ed448.PrivateKey)
	if o.ph {
		return ed448.SignPh(priv, msg, string(o.ctx)), nil
	}
	return ed448.Sign(priv, msg, string(o.ctx)), nil
}

func (o *edOp) verify(msg, sig []byte) error {
	c := o.key.curve
	if len(sig) != c.sigLen {
		return fmt.Errorf("CKM_EDDSA: signature of %d bytes: %w", len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	var ok bool
	if c.ed25519 {
		opts := &ed25519.Options{Context: string(o.ctx)}
		if o.ph {
			h := crypto.SHA512.New()
			h.Write(msg)
			msg, opts.Hash = h.Sum(nil), crypto.SHA512
		}
		ok = ed25519.VerifyWithOptions(ed25519.PublicKey(o.key.pub), msg, sig, opts) == nil
	} else if o.ph {
		ok = ed448.VerifyPh(ed448.PublicKey(o.key.pub), msg, sig, string(o.ctx))
	} else {
		ok = ed448.Verify(ed448.PublicKey(o.key.pub), msg, sig, string(o.ctx))
	}
	if !ok {
		return fmt.Errorf("CKM_EDDSA: %w", ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}

func (o *edOp) drain() []byte {
	b := o.buf
	o.buf = nil
	return b
}

type edSigner struct{ *edOp }

func (s *edSigner) Len() int                         { return s.key.curve.sigLen }
func (s *edSigner) Sign(data []byte) ([]byte, error) { return s.sign(data) }
func (s *edSigner) Final() ([]byte, error) {
	b := s.drain()
	defer zero(b)
	return s.sign(b)
}

type edVerifier struct{ *edOp }

func (v *edVerifier) Verify(data, sig []byte) error { return v.verify(data, sig) }
func (v *edVerifier) Final(sig []byte) error {
	b := v.drain()
	defer zero(b)
	return v.verify(b, sig)
}
