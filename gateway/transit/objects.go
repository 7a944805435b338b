package transit

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// finder maps a CKA_ID to the object's handle on the session's token.
type finder = func(id []byte) (ck.ObjectHandle, error)

// newStem is a version's CKA_ID stem: readable (mount, name and version,
// so an operator listing the token sees what an object is) and with 48
// random bits, so that two gateways making "the same" version at once
// (a rotate race; one of them will lose the swap) never share an ID.
func (e *Engine) newStem(name string, v int) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("gohsm-transit/%s/%s/v%d/%s", e.mount, name, v, hex.EncodeToString(b[:]))
}

func allowed(m mechs) []byte {
	b := make([]byte, 0, 8*len(m))
	for _, t := range m {
		b = binary.LittleEndian.AppendUint64(b, uint64(t))
	}
	return b
}

// The templates. Every key object is a private token object; secret and
// private keys are sensitive, extractable only when the ring was created
// exportable, and carry only the usage flags (and allowed mechanisms)
// their type's operations need, so the token refuses anything else.

// leaving is how a secret or private key may leave its token (see
// Config.Cloneable): CKA_EXTRACTABLE and CKA_WRAP_WITH_TRUSTED.
func (e *Engine) leaving(exportable bool) []ck.Attribute {
	return []ck.Attribute{
		{Type: ck.CKA_EXTRACTABLE, Value: attr.Bool(exportable || e.cfg.Cloneable)},
		{Type: ck.CKA_WRAP_WITH_TRUSTED, Value: attr.Bool(!exportable && e.cfg.Cloneable)},
	}
}

func secretTemplate(id []byte, ckk ck.KeyType, size int, leave []ck.Attribute, usage []ck.AttributeType, m mechs) []ck.Attribute {
	t := []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ckk))},
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(ck.ULong(size))},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		{Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)},
		{Type: ck.CKA_ID, Value: id},
		{Type: ck.CKA_LABEL, Value: id},
		{Type: ck.CKA_ALLOWED_MECHANISMS, Value: allowed(m)},
	}
	t = append(t, leave...)
	return append(t, usageAttrs(secretUsage, usage)...)
}

// The usage flags of each class (PKCS#11 3.0 §4.8-4.10).
var (
	secretUsage  = []ck.AttributeType{ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_VERIFY, ck.CKA_WRAP, ck.CKA_UNWRAP, ck.CKA_DERIVE}
	publicUsage  = []ck.AttributeType{ck.CKA_ENCRYPT, ck.CKA_VERIFY, ck.CKA_VERIFY_RECOVER, ck.CKA_WRAP, ck.CKA_DERIVE}
	privateUsage = []ck.AttributeType{ck.CKA_DECRYPT, ck.CKA_SIGN, ck.CKA_SIGN_RECOVER, ck.CKA_UNWRAP, ck.CKA_DERIVE}
)

// usageAttrs sets the class's usage flags: those listed true, the others
// false.
func usageAttrs(all, on []ck.AttributeType) []ck.Attribute {
	out := make([]ck.Attribute, 0, len(all))
	for _, a := range all {
		v := false
		for _, o := range on {
			v = v || o == a
		}
		out = append(out, ck.Attribute{Type: a, Value: attr.Bool(v)})
	}
	return out
}

func pairTemplates(kt *keyType, idPub, idPriv []byte, leave []ck.Attribute) (pub, priv []ck.Attribute) {
	pubUse := []ck.AttributeType{ck.CKA_VERIFY}
	privUse := []ck.AttributeType{ck.CKA_SIGN}
	m := append(append(mechs(nil), kt.sign...), kt.enc...)
	if len(kt.enc) > 0 {
		pubUse = append(pubUse, ck.CKA_ENCRYPT)
		privUse = append(privUse, ck.CKA_DECRYPT)
	}
	pub = []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_PUBLIC_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(kt.ckk))},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		{Type: ck.CKA_ID, Value: idPub},
		{Type: ck.CKA_LABEL, Value: idPub},
		{Type: ck.CKA_ALLOWED_MECHANISMS, Value: allowed(m)},
	}
	pub = append(pub, usageAttrs(publicUsage, pubUse)...)
	priv = []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(kt.ckk))},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		{Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)},
		{Type: ck.CKA_ID, Value: idPriv},
		{Type: ck.CKA_LABEL, Value: idPriv},
		{Type: ck.CKA_ALLOWED_MECHANISMS, Value: allowed(m)},
	}
	priv = append(priv, leave...)
	priv = append(priv, usageAttrs(privateUsage, privUse)...)
	switch kt.kind {
	case kindRSA:
		pub = append(pub,
			ck.Attribute{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(ck.ULong(kt.size))},
			ck.Attribute{Type: ck.CKA_PUBLIC_EXPONENT, Value: []byte{1, 0, 1}})
	case kindECDSA, kindEdDSA, kindSM2:
		der, _ := asn1.Marshal(kt.curve)
		pub = append(pub, ck.Attribute{Type: ck.CKA_EC_PARAMS, Value: der})
	case kindMLDSA:
		pub = append(pub, ck.Attribute{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(ck.ULong(kt.paramSet))})
	}
	return pub, priv
}

// companionSize is the companion HMAC key's length: Vault's 32 bytes.
const companionSize = 32

// makeVersion makes version v's objects on a token and replicates them
// to the pool. On failure it destroys what it made.
func (e *Engine) makeVersion(ctx context.Context, name string, kt *keyType, v int, exportable bool, keySize int) (*version, error) {
	ver := &version{ID: e.newStem(name, v), Created: time.Now().UTC().Truncate(time.Second), HMAC: kt.kind != kindHMAC}
	var pk string
	err := e.ex.Do(ctx, func(s token.Session, _ finder) error {
		var made []ck.ObjectHandle
		fail := func(err error) error {
			for _, h := range made {
				s.DestroyObject(h)
			}
			return err
		}
		switch kt.kind {
		case kindAEAD, kindHMAC:
			size, use, m := kt.size, []ck.AttributeType{ck.CKA_ENCRYPT, ck.CKA_DECRYPT}, kt.aead
			if kt.kind == kindHMAC {
				size, use, m = keySize, []ck.AttributeType{ck.CKA_SIGN, ck.CKA_VERIFY}, e.types.hmac
			}
			h, err := s.GenerateKey(ck.Mechanism{Type: kt.gen}, secretTemplate(ver.id(objKey), kt.ckk, size, e.leaving(exportable), use, m))
			if err != nil {
				return fail(err)
			}
			made = append(made, h)
		default:
			pubT, privT := pairTemplates(kt, ver.id(objPub), ver.id(objKey), e.leaving(exportable))
			pub, priv, err := s.GenerateKeyPair(ck.Mechanism{Type: kt.gen}, pubT, privT)
			if err != nil {
				return fail(err)
			}
			made = append(made, pub, priv)
			if pk, err = publicKey(s, kt, pub); err != nil {
				return fail(err)
			}
		}
		if ver.HMAC {
			h, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN},
				secretTemplate(ver.id(objHMAC), ck.CKK_GENERIC_SECRET, companionSize, e.leaving(exportable),
					[]ck.AttributeType{ck.CKA_SIGN, ck.CKA_VERIFY}, e.types.hmac))
			if err != nil {
				return fail(err)
			}
			made = append(made, h)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("make %s key version %d: %w", kt.name, v, err)
	}
	if pk != "" {
		ver.PubRef = e.pubRef(ver.ID)
		if err := e.meta.Put(ver.PubRef, []byte(pk)); err != nil {
			e.destroy(ctx, kt, []*version{ver})
			return nil, fmt.Errorf("store public key of version %d: %w", v, err)
		}
		e.pubs.Store(ver.PubRef, pk)
	}
	for _, id := range ver.ids(kt) {
		if err := e.ex.Replicate(ctx, id); err != nil {
			e.destroy(ctx, kt, []*version{ver})
			return nil, fmt.Errorf("replicate key version %d: %w", v, err)
		}
	}
	return ver, nil
}

// Destroyer is an Exec that destroys the objects with a CKA_ID on every
// token of its pool and forgets their cached handles (gateway/pool
// implements it): a trimmed or deleted key version must leave no copy.
// With an Exec that lacks it, destroy reaches the token Do picks.
type Destroyer interface {
	Destroy(ctx context.Context, id []byte) error
}

// destroy removes the versions' objects from the tokens. Every object
// with the ID is destroyed (a token may hold a stray copy from a retried
// replication). Errors are returned after trying every object.
func (e *Engine) destroy(ctx context.Context, kt *keyType, vs []*version) error {
	var ids [][]byte
	var errs []error
	for _, v := range vs {
		ids = append(ids, v.ids(kt)...)
		if v.PubRef != "" {
			errs = append(errs, e.meta.Delete(v.PubRef))
			e.pubs.Delete(v.PubRef)
		}
	}
	if len(ids) == 0 {
		return errors.Join(errs...)
	}
	if d, ok := e.ex.(Destroyer); ok {
		for _, id := range ids {
			errs = append(errs, d.Destroy(ctx, id))
		}
		return errors.Join(errs...)
	}
	return errors.Join(errors.Join(errs...), e.ex.Do(ctx, func(s token.Session, _ finder) error {
		var errs []error
		for _, id := range ids {
			hs, err := s.FindObjects([]ck.Attribute{{Type: ck.CKA_ID, Value: id}})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, h := range hs {
				if err := s.DestroyObject(h); err != nil && token.RV(err) != ck.CKR_OBJECT_HANDLE_INVALID {
					errs = append(errs, err)
				}
			}
		}
		// A message operation may still hold a destroyed key's handle.
		if f, ok := s.(interface{ Forget() }); ok {
			f.Forget()
		}
		return errors.Join(errs...)
	}))
}

// publicKey reads the public key object and writes it as Vault shows it.
func publicKey(s token.Session, kt *keyType, h ck.ObjectHandle) (string, error) {
	switch kt.kind {
	case kindRSA:
		a, err := s.GetAttributes(h, ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT)
		if err != nil {
			return "", err
		}
		if a[0] == nil || a[1] == nil {
			return "", fmt.Errorf("rsa public key: modulus or exponent unavailable: %w", ck.CKR_DEVICE_ERROR)
		}
		e := new(big.Int).SetBytes(a[1])
		if !e.IsInt64() || e.Int64() > 1<<31 {
			return "", fmt.Errorf("rsa public exponent too large: %w", ck.CKR_DEVICE_ERROR)
		}
		der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(a[0]), E: int(e.Int64())})
		if err != nil {
			return "", err
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
	case kindMLDSA:
		a, err := s.GetAttributes(h, ck.CKA_VALUE)
		if err != nil {
			return "", err
		}
		if len(a[0]) == 0 {
			return "", fmt.Errorf("ml-dsa public key unavailable: %w", ck.CKR_DEVICE_ERROR)
		}
		return spkiPEM(pkix.AlgorithmIdentifier{Algorithm: kt.spkiAlg}, a[0])
	default: // EC-like: CKA_EC_POINT
		a, err := s.GetAttributes(h, ck.CKA_EC_POINT)
		if err != nil {
			return "", err
		}
		pt := ecPoint(a[0])
		if len(pt) == 0 {
			return "", fmt.Errorf("public key point unavailable: %w", ck.CKR_DEVICE_ERROR)
		}
		if kt.pubFormat == "base64" {
			return base64.StdEncoding.EncodeToString(pt), nil
		}
		params, _ := asn1.Marshal(kt.curve)
		return spkiPEM(pkix.AlgorithmIdentifier{Algorithm: kt.spkiAlg, Parameters: asn1.RawValue{FullBytes: params}}, pt)
	}
}

// ecPoint is CKA_EC_POINT without its DER OCTET STRING wrapping (tokens
// differ: the spec says DER, some give the raw point).
func ecPoint(v []byte) []byte {
	var p []byte
	if rest, err := asn1.Unmarshal(v, &p); err == nil && len(rest) == 0 {
		return p
	}
	return v
}

func spkiPEM(alg pkix.AlgorithmIdentifier, key []byte) (string, error) {
	der, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{alg, asn1.BitString{Bytes: key, BitLength: 8 * len(key)}})
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
