package conformance

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// keyFx is a key (or key pair) made once per group in the keeper session,
// so session objects outlive the checks that use them.
type keyFx struct {
	pub, priv pkcs11.ObjectHandle // for secret keys both are the key
	value     []byte              // secret keys: the known value
	rsaPub    *rsa.PublicKey
	ecPub     *ecdsa.PublicKey
	err       error
}

var (
	des3Key  = []byte("0123456789abcdefFEDCBA98")
	hmacKey  = []byte("conformance HMAC key: 64 bytes, as long as SHA-512 output.......")
	p256OID  = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	usageOff = []*pkcs11.Attribute{
		attr(pkcs11.CKA_ENCRYPT, false), attr(pkcs11.CKA_DECRYPT, false),
		attr(pkcs11.CKA_SIGN, false), attr(pkcs11.CKA_VERIFY, false),
		attr(pkcs11.CKA_WRAP, false), attr(pkcs11.CKA_UNWRAP, false),
	}
)

// key returns the named fixture, making it on first use. Fixture names:
// aes, des3, hmac, rsa, ec, each with a "-nouse" twin whose usage flags
// (encrypt, decrypt, sign, verify) are all FALSE.
func (t *T) key(name string) *keyFx {
	if k, ok := t.s.fx[name].(*keyFx); ok {
		if k.err != nil {
			t.failf("fixture %s: %v", name, k.err)
		}
		return k
	}
	k := t.s.makeKey(name)
	t.s.fx[name] = k
	if k.err != nil {
		t.failf("fixture %s: %v", name, k.err)
	}
	return k
}

func (s *suite) makeKey(name string) *keyFx {
	base, nouse := name, false
	if n := len(name) - len("-nouse"); n > 0 && name[n:] == "-nouse" {
		base, nouse = name[:n], true
	}
	usage := []*pkcs11.Attribute{
		attr(pkcs11.CKA_ENCRYPT, true), attr(pkcs11.CKA_DECRYPT, true),
		attr(pkcs11.CKA_SIGN, true), attr(pkcs11.CKA_VERIFY, true),
	}
	if nouse {
		usage = usageOff[:4]
	}
	sh := s.keeper
	secret := func(kt uint, v []byte) *keyFx {
		tmpl := merge([]*pkcs11.Attribute{
			attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, kt),
			attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, v), attr(pkcs11.CKA_LABEL, name),
		}, usage)
		if kt == pkcs11.CKK_GENERIC_SECRET {
			tmpl = merge(tmpl, []*pkcs11.Attribute{attr(pkcs11.CKA_ENCRYPT, false), attr(pkcs11.CKA_DECRYPT, false)})
		}
		h, err := s.ctx.CreateObject(sh, tmpl)
		if err != nil {
			return &keyFx{err: fmt.Errorf("C_CreateObject: %s", rvName(rvOf(err)))}
		}
		return &keyFx{pub: h, priv: h, value: v}
	}
	switch base {
	case "aes":
		return secret(pkcs11.CKK_AES, aesKey128)
	case "des3":
		return secret(pkcs11.CKK_DES3, des3Key)
	case "hmac":
		return secret(pkcs11.CKK_GENERIC_SECRET, hmacKey)
	case "rsa":
		return s.genPair(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, []*pkcs11.Attribute{
			attr(pkcs11.CKA_MODULUS_BITS, 2048), attr(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		}, usage, name)
	case "ec":
		return s.genPair(pkcs11.CKM_EC_KEY_PAIR_GEN, []*pkcs11.Attribute{attr(pkcs11.CKA_EC_PARAMS, p256OID)}, usage, name)
	}
	return &keyFx{err: fmt.Errorf("unknown fixture %q", name)}
}

func (s *suite) genPair(mech uint, pubExtra, usage []*pkcs11.Attribute, label string) *keyFx {
	if !s.mechs[mech] {
		return &keyFx{err: fmt.Errorf("%s not in C_GetMechanismList", mechName(mech))}
	}
	var pubUse, privUse []*pkcs11.Attribute
	for _, a := range usage {
		switch a.Type {
		case pkcs11.CKA_ENCRYPT, pkcs11.CKA_VERIFY:
			pubUse = append(pubUse, a)
		default:
			privUse = append(privUse, a)
		}
	}
	pubT := merge(append([]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_LABEL, label)}, pubExtra...), pubUse)
	privT := merge([]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_LABEL, label),
		attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true)}, privUse)
	if mech == pkcs11.CKM_EC_KEY_PAIR_GEN {
		// ECDSA keys take no encrypt/decrypt flags.
		pubT = drop(pubT, pkcs11.CKA_ENCRYPT)
		privT = drop(privT, pkcs11.CKA_DECRYPT)
	}
	pub, priv, err := s.ctx.GenerateKeyPair(s.keeper, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pubT, privT)
	if err != nil {
		return &keyFx{err: fmt.Errorf("C_GenerateKeyPair(%s): %s", mechName(mech), rvName(rvOf(err)))}
	}
	k := &keyFx{pub: pub, priv: priv}
	if mech == pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN {
		as, err := s.ctx.GetAttributeValue(s.keeper, pub, []*pkcs11.Attribute{attr(pkcs11.CKA_MODULUS, nil), attr(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
		if err != nil {
			return &keyFx{err: fmt.Errorf("reading the RSA public key: %s", rvName(rvOf(err)))}
		}
		k.rsaPub = &rsa.PublicKey{N: new(big.Int).SetBytes(as[0].Value), E: int(new(big.Int).SetBytes(as[1].Value).Int64())}
		return k
	}
	as, err := s.ctx.GetAttributeValue(s.keeper, pub, []*pkcs11.Attribute{attr(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return &keyFx{err: fmt.Errorf("reading CKA_EC_POINT: %s", rvName(rvOf(err)))}
	}
	pt, err := ecPoint(as[0].Value)
	if err != nil {
		return &keyFx{err: err}
	}
	k.ecPub = pt
	return k
}

func drop(tmpl []*pkcs11.Attribute, typ uint) []*pkcs11.Attribute {
	out := tmpl[:0:0]
	for _, a := range tmpl {
		if a.Type != typ {
			out = append(out, a)
		}
	}
	return out
}

// ecPoint decodes CKA_EC_POINT: a DER OCTET STRING holding an uncompressed
// P-256 point (curr 2.3.3); the raw point is tolerated too but checked
// separately by gen.ec.point-der.
func ecPoint(v []byte) (*ecdsa.PublicKey, error) {
	raw := v
	if len(v) == 67 && v[0] == 0x04 && v[1] == 0x41 {
		raw = v[2:]
	}
	if _, err := ecdh.P256().NewPublicKey(raw); err != nil {
		return nil, fmt.Errorf("CKA_EC_POINT %x is not a P-256 point: %v", v, err)
	}
	x, y := new(big.Int).SetBytes(raw[1:33]), new(big.Int).SetBytes(raw[33:])
	return &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, nil
}
