package hsm

import (
	"bytes"
	"crypto/rand"
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// keyTemplateClass checks a key generation template's CKA_CLASS, if any,
// against the class the mechanism makes.
func keyTemplateClass(t attr.Template, want ck.ObjectClass) error {
	c, ok, err := t.ULong(ck.CKA_CLASS)
	if err != nil {
		return err
	}
	if ok && ck.ObjectClass(c) != want {
		return fmt.Errorf("CKA_CLASS %v where %v is made: %w", ck.ObjectClass(c), want, ck.CKR_TEMPLATE_INCONSISTENT)
	}
	return nil
}

// keyTypeOf returns the CKA_KEY_TYPE the mechanism set, checking the
// caller's value, if any, agrees.
func keyTypeOf(t, gen attr.Template) (ck.KeyType, error) {
	g, ok, err := gen.ULong(ck.CKA_KEY_TYPE)
	if err != nil || !ok {
		return 0, fmt.Errorf("mechanism set no key type: %w", ck.CKR_GENERAL_ERROR)
	}
	if c, ok, err := t.ULong(ck.CKA_KEY_TYPE); err != nil {
		return 0, err
	} else if ok && c != g {
		return 0, fmt.Errorf("CKA_KEY_TYPE %v for a %v key: %w", ck.KeyType(c), ck.KeyType(g), ck.CKR_TEMPLATE_INCONSISTENT)
	}
	return ck.KeyType(g), nil
}

// GenerateKey is C_GenerateKey (§5.14).
func (m *Module) GenerateKey(h ck.SessionHandle, mt ck.Mechanism, tmpl []ck.Attribute) (ck.ObjectHandle, error) {
	s, err := m.lock(h)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	t := attr.Template(tmpl)
	if err := keyTemplateClass(t, ck.CKO_SECRET_KEY); err != nil {
		return 0, err
	}
	token, private, err := flagsOf(t, ck.CKO_SECRET_KEY)
	if err != nil {
		return 0, err
	}
	so, err := s.mayCreate(token, private)
	if err != nil {
		return 0, err
	}
	mm, ok := m.reg.Mechanism(mt.Type)
	if !ok || (mm.GenerateKey == nil && mm.GenerateKeyParam == nil) {
		return 0, fmt.Errorf("%v: %w", mt.Type, ck.CKR_MECHANISM_INVALID)
	}
	if err := checkDuplicates(t); err != nil {
		return 0, err
	}
	var gen attr.Template
	if mm.GenerateKeyParam != nil {
		gen, err = mm.GenerateKeyParam(t, mt.Param)
	} else {
		gen, err = mm.GenerateKey(t)
	}
	if err != nil {
		return 0, fmt.Errorf("%v: %w", mt.Type, err)
	}
	defer zeroTemplate(gen)
	kt, err := keyTypeOf(t, gen)
	if err != nil {
		return 0, err
	}
	gen = append(gen, localAttrs(ck.CKO_SECRET_KEY, mt.Type)...)
	all, err := m.build(t, ck.CKO_SECRET_KEY, kt, fromGenerate, so, gen)
	if err != nil {
		return 0, err
	}
	o, err := m.newObject(all, ck.CKO_SECRET_KEY, kt)
	if err != nil {
		return 0, err
	}
	if err := m.commitLocked(s, so, o); err != nil {
		return 0, err
	}
	return o.handle, nil
}

// localAttrs are what the token sets on keys it made itself.
func localAttrs(cls ck.ObjectClass, mt ck.MechanismType) attr.Template {
	return attr.Template{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(cls))},
		{Type: ck.CKA_LOCAL, Value: attr.Bool(true)},
		{Type: ck.CKA_KEY_GEN_MECHANISM, Value: attr.ULong(ck.ULong(mt))},
	}
}

func zeroTemplate(t attr.Template) {
	for _, a := range t {
		zero(a.Value)
	}
}

// GenerateKeyPair is C_GenerateKeyPair (§5.14). Both keys are committed or
// neither is.
func (m *Module) GenerateKeyPair(h ck.SessionHandle, mt ck.Mechanism, pubT, privT []ck.Attribute) (ck.ObjectHandle, ck.ObjectHandle, error) {
	s, err := m.lock(h)
	if err != nil {
		return 0, 0, err
	}
	defer s.mu.Unlock()
	pub, priv := attr.Template(pubT), attr.Template(privT)
	if err := keyTemplateClass(pub, ck.CKO_PUBLIC_KEY); err != nil {
		return 0, 0, err
	}
	if err := keyTemplateClass(priv, ck.CKO_PRIVATE_KEY); err != nil {
		return 0, 0, err
	}
	pubToken, pubPrivate, err := flagsOf(pub, ck.CKO_PUBLIC_KEY)
	if err != nil {
		return 0, 0, err
	}
	privToken, privPrivate, err := flagsOf(priv, ck.CKO_PRIVATE_KEY)
	if err != nil {
		return 0, 0, err
	}
	so, err := s.mayCreate(pubToken, pubPrivate)
	if err != nil {
		return 0, 0, err
	}
	if _, err := s.mayCreate(privToken, privPrivate); err != nil {
		return 0, 0, err
	}
	mm, ok := m.reg.Mechanism(mt.Type)
	if !ok || mm.GenerateKeyPair == nil {
		return 0, 0, fmt.Errorf("%v: %w", mt.Type, ck.CKR_MECHANISM_INVALID)
	}
	if err := checkDuplicates(pub); err != nil {
		return 0, 0, err
	}
	if err := checkDuplicates(priv); err != nil {
		return 0, 0, err
	}
	// Several clients (Java among them) repeat the domain parameters in
	// the private template; accept that when it agrees with the public one.
	priv = dropEqual(priv, pub, ck.CKA_EC_PARAMS)
	genPub, genPriv, err := mm.GenerateKeyPair(pub, priv)
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %w", mt.Type, err)
	}
	defer zeroTemplate(genPriv)
	kt, err := keyTypeOf(pub, genPub)
	if err != nil {
		return 0, 0, err
	}
	if _, err := keyTypeOf(priv, genPriv); err != nil {
		return 0, 0, err
	}
	genPub = append(genPub, localAttrs(ck.CKO_PUBLIC_KEY, mt.Type)...)
	genPriv = append(genPriv, localAttrs(ck.CKO_PRIVATE_KEY, mt.Type)...)
	allPub, err := m.build(pub, ck.CKO_PUBLIC_KEY, kt, fromGenerate, so, genPub)
	if err != nil {
		return 0, 0, err
	}
	allPriv, err := m.build(priv, ck.CKO_PRIVATE_KEY, kt, fromGenerate, so, genPriv)
	if err != nil {
		return 0, 0, err
	}
	po, err := m.newObject(allPub, ck.CKO_PUBLIC_KEY, kt)
	if err != nil {
		return 0, 0, err
	}
	ko, err := m.newObject(allPriv, ck.CKO_PRIVATE_KEY, kt)
	if err != nil {
		return 0, 0, err
	}
	if err := m.pairwiseConsistency(kt, po, ko); err != nil {
		return 0, 0, err
	}
	if err := m.commitLocked(s, so, po, ko); err != nil {
		return 0, 0, err
	}
	return po.handle, ko.handle, nil
}

// pairwiseConsistency is the pairwise consistency test of a new key pair
// (FIPS 140-3 IG 10.3.A): the key kind's PCT (mech.KeyKind.PCT: a
// signature made and verified, an encapsulation decapsulated, a public
// value recomputed) runs on the parsed halves before anything is
// committed. A failure is the device's, CKR_DEVICE_ERROR, and the pair is
// never stored nor returned.
func (m *Module) pairwiseConsistency(kt ck.KeyType, pub, priv *Object) error {
	kk, ok := m.reg.KeyKind(kt)
	if !ok || kk.PCT == nil {
		return nil
	}
	pk, sk := pub.material.Load(), priv.material.Load()
	if pk == nil || sk == nil {
		return fmt.Errorf("%v key pair: pairwise consistency test: key not parsed: %w", kt, ck.CKR_DEVICE_ERROR)
	}
	if err := kk.PCT(pk, sk); err != nil {
		priv.forget()
		return fmt.Errorf("%v key pair: %v: %w", kt, err, ck.CKR_DEVICE_ERROR)
	}
	return nil
}

func dropEqual(t, ref attr.Template, at ck.AttributeType) attr.Template {
	v, ok := t.Get(at)
	r, rok := ref.Get(at)
	if !ok || !rok || !bytes.Equal(v, r) {
		return t
	}
	out := make(attr.Template, 0, len(t))
	for _, a := range t {
		if a.Type != at {
			out = append(out, a)
		}
	}
	return out
}

// SeedRandom is C_SeedRandom: the generator is the operating system's and
// takes no seed (§5.15 allows CKR_RANDOM_SEED_NOT_SUPPORTED).
func (m *Module) SeedRandom(h ck.SessionHandle, seed []byte) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	return ck.CKR_RANDOM_SEED_NOT_SUPPORTED
}

// GenerateRandom is C_GenerateRandom, from crypto/rand.
func (m *Module) GenerateRandom(h ck.SessionHandle, n int) ([]byte, error) {
	if _, err := m.session(h); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, ck.CKR_ARGUMENTS_BAD
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random: %w", ck.CKR_DEVICE_ERROR)
	}
	return b, nil
}
