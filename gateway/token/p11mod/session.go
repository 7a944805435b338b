package p11mod

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// session is one module session.
type session struct {
	ctx *pkcs11.Ctx
	h   pkcs11.SessionHandle
	wmu *sync.RWMutex
}

var _ token.Session = (*session)(nil)

func attrs(t []ck.Attribute) []*pkcs11.Attribute {
	out := make([]*pkcs11.Attribute, len(t))
	for i, a := range t {
		// Values are already in the C encoding of this platform.
		out[i] = &pkcs11.Attribute{Type: uint(a.Type), Value: a.Value}
	}
	return out
}

// mechanism converts a ck mechanism to miekg's. g is the GCM parameter
// if there is one (its Free releases C memory; Free on nil is a no-op).
// A parameter the binding cannot carry is CKR_MECHANISM_PARAM_INVALID,
// before the module sees anything.
func mechanism(m ck.Mechanism) (mm []*pkcs11.Mechanism, g *pkcs11.GCMParams, err error) {
	var p any
	switch v := m.Param.(type) {
	case nil:
	case []byte:
		p = v
	case *ck.GCMParams:
		g = pkcs11.NewGCMParams(v.IV, v.AAD, int(v.TagBits))
		p = g
	case ck.GCMParams:
		g = pkcs11.NewGCMParams(v.IV, v.AAD, int(v.TagBits))
		p = g
	case *ck.RSAOAEPParams:
		p = pkcs11.NewOAEPParams(uint(v.HashAlg), uint(v.MGF), uint(v.Source), v.SourceData)
	case *ck.RSAPSSParams:
		p = pkcs11.NewPSSParams(uint(v.HashAlg), uint(v.MGF), uint(v.SaltLen))
	case *ck.ECDH1DeriveParams:
		p = pkcs11.NewECDH1DeriveParams(uint(v.KDF), v.SharedData, v.PublicData)
	case *ck.CTRParams:
		// CK_AES_CTR_PARAMS: a CK_ULONG and 16 bytes, no pointers.
		b := make([]byte, 8+16)
		binary.NativeEndian.PutUint64(b, uint64(v.CounterBits))
		copy(b[8:], v.CB[:])
		p = b
	case *ck.EDDSAParams:
		if v.PHFlag || len(v.ContextData) > 0 {
			return nil, nil, fmt.Errorf("EdDSA context or prehash through the module binding: %w", ck.CKR_MECHANISM_PARAM_INVALID)
		}
	default:
		return nil, nil, fmt.Errorf("parameter %T through the module binding: %w", m.Param, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(uint(m.Type), p)}, g, nil
}

func (s *session) CreateObject(t []ck.Attribute) (ck.ObjectHandle, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	h, err := s.ctx.CreateObject(s.h, attrs(t))
	return ck.ObjectHandle(h), convErr(err)
}

func (s *session) DestroyObject(h ck.ObjectHandle) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return convErr(s.ctx.DestroyObject(s.h, pkcs11.ObjectHandle(h)))
}

// FindObjects holds the store lock shared: no write of this module runs
// during a search (package doc).
func (s *session) FindObjects(t []ck.Attribute) ([]ck.ObjectHandle, error) {
	s.wmu.RLock()
	defer s.wmu.RUnlock()
	if err := s.ctx.FindObjectsInit(s.h, attrs(t)); err != nil {
		return nil, convErr(err)
	}
	var all []ck.ObjectHandle
	for {
		hs, _, err := s.ctx.FindObjects(s.h, 256)
		if err != nil {
			s.ctx.FindObjectsFinal(s.h)
			return nil, convErr(err)
		}
		for _, h := range hs {
			all = append(all, ck.ObjectHandle(h))
		}
		if len(hs) < 256 {
			break
		}
	}
	return all, convErr(s.ctx.FindObjectsFinal(s.h))
}

// GetAttributes reads all at once; when the module refuses one (sensitive
// or unknown), which miekg reports for the whole call, it reads them one
// by one so the others still come back.
func (s *session) GetAttributes(h ck.ObjectHandle, types ...ck.AttributeType) ([][]byte, error) {
	req := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		req[i] = pkcs11.NewAttribute(uint(t), nil)
	}
	out := make([][]byte, len(types))
	res, err := s.ctx.GetAttributeValue(s.h, pkcs11.ObjectHandle(h), req)
	if err == nil {
		for i, a := range res {
			if i < len(out) {
				out[i] = append([]byte{}, a.Value...)
			}
		}
		return out, nil
	}
	if rv := rvOf(err); rv != ck.CKR_ATTRIBUTE_SENSITIVE && rv != ck.CKR_ATTRIBUTE_TYPE_INVALID {
		return nil, convErr(err)
	}
	for i, t := range types {
		res, err := s.ctx.GetAttributeValue(s.h, pkcs11.ObjectHandle(h), []*pkcs11.Attribute{pkcs11.NewAttribute(uint(t), nil)})
		switch rvOf(err) {
		case ck.CKR_ATTRIBUTE_SENSITIVE, ck.CKR_ATTRIBUTE_TYPE_INVALID:
			continue
		}
		if err != nil {
			return nil, convErr(err)
		}
		out[i] = append([]byte{}, res[0].Value...)
	}
	return out, nil
}

func (s *session) SetAttributes(h ck.ObjectHandle, t []ck.Attribute) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return convErr(s.ctx.SetAttributeValue(s.h, pkcs11.ObjectHandle(h), attrs(t)))
}

func (s *session) GenerateKey(m ck.Mechanism, t []ck.Attribute) (ck.ObjectHandle, error) {
	mm, g, err := mechanism(m)
	if err != nil {
		return 0, err
	}
	defer g.Free()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	h, err := s.ctx.GenerateKey(s.h, mm, attrs(t))
	return ck.ObjectHandle(h), convErr(err)
}

func (s *session) GenerateKeyPair(m ck.Mechanism, pub, priv []ck.Attribute) (ck.ObjectHandle, ck.ObjectHandle, error) {
	mm, g, err := mechanism(m)
	if err != nil {
		return 0, 0, err
	}
	defer g.Free()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	pu, pr, err := s.ctx.GenerateKeyPair(s.h, mm, attrs(pub), attrs(priv))
	return ck.ObjectHandle(pu), ck.ObjectHandle(pr), convErr(err)
}

// WrapKey: for CKM_AES_GCM, a module that makes the IV itself writes it
// into the parameter; it is copied back into the caller's ck.GCMParams.
func (s *session) WrapKey(m ck.Mechanism, wrapping, key ck.ObjectHandle) ([]byte, error) {
	mm, g, err := mechanism(m)
	if err != nil {
		return nil, err
	}
	defer g.Free()
	out, err := s.ctx.WrapKey(s.h, mm, pkcs11.ObjectHandle(wrapping), pkcs11.ObjectHandle(key))
	if err != nil {
		return nil, convErr(err)
	}
	if p, ok := m.Param.(*ck.GCMParams); ok && g != nil {
		copy(p.IV, g.IV())
	}
	return out, nil
}

func (s *session) UnwrapKey(m ck.Mechanism, unwrapping ck.ObjectHandle, wrapped []byte, t []ck.Attribute) (ck.ObjectHandle, error) {
	mm, g, err := mechanism(m)
	if err != nil {
		return 0, err
	}
	defer g.Free()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	h, err := s.ctx.UnwrapKey(s.h, mm, pkcs11.ObjectHandle(unwrapping), wrapped, attrs(t))
	return ck.ObjectHandle(h), convErr(err)
}

func (s *session) DeriveKey(m ck.Mechanism, base ck.ObjectHandle, t []ck.Attribute) (ck.ObjectHandle, error) {
	mm, g, err := mechanism(m)
	if err != nil {
		return 0, err
	}
	defer g.Free()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	h, err := s.ctx.DeriveKey(s.h, mm, pkcs11.ObjectHandle(base), attrs(t))
	return ck.ObjectHandle(h), convErr(err)
}

func (s *session) Encrypt(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	mm, g, err := mechanism(m)
	if err != nil {
		return nil, err
	}
	defer g.Free()
	if err := s.ctx.EncryptInit(s.h, mm, pkcs11.ObjectHandle(key)); err != nil {
		return nil, convErr(err)
	}
	out, err := s.ctx.Encrypt(s.h, in)
	return out, convErr(err)
}

func (s *session) Decrypt(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	mm, g, err := mechanism(m)
	if err != nil {
		return nil, err
	}
	defer g.Free()
	if err := s.ctx.DecryptInit(s.h, mm, pkcs11.ObjectHandle(key)); err != nil {
		return nil, convErr(err)
	}
	out, err := s.ctx.Decrypt(s.h, in)
	if err != nil && g != nil {
		return nil, s.tagErr(err)
	}
	return out, convErr(err)
}

func (s *session) Sign(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error) {
	mm, g, err := mechanism(m)
	if err != nil {
		return nil, err
	}
	defer g.Free()
	if err := s.ctx.SignInit(s.h, mm, pkcs11.ObjectHandle(key)); err != nil {
		return nil, convErr(err)
	}
	out, err := s.ctx.Sign(s.h, in)
	return out, convErr(err)
}

func (s *session) Verify(m ck.Mechanism, key ck.ObjectHandle, in, sig []byte) error {
	mm, g, err := mechanism(m)
	if err != nil {
		return err
	}
	defer g.Free()
	if err := s.ctx.VerifyInit(s.h, mm, pkcs11.ObjectHandle(key)); err != nil {
		return convErr(err)
	}
	return convErr(s.ctx.Verify(s.h, in, sig))
}

// Seal: modules differ in who makes a GCM IV. PKCS#11 2.40 lets the
// caller pass it, and SoftHSMv2 (2.6) takes the caller's and never makes
// one; CloudHSM-style modules ignore it and write their own. The gateway
// never invents a nonce in its own memory: it asks the token's generator
// (C_GenerateRandom) for 96 random bits, passes them as the IV, and then
// reads the parameter back, so a module that replaced the IV is honoured
// too. Random 96-bit nonces keep GCM safe for 2^32 messages per key
// (NIST SP 800-38D §8.3); key rotation must come before that.
func (s *session) Seal(dst []byte, mech ck.MechanismType, key ck.ObjectHandle, aad, plaintext []byte) ([]byte, error) {
	switch mech {
	case ck.CKM_AES_GCM:
	default:
		// ChaCha20-Poly1305's and SM4-GCM's parameters hold pointers
		// the binding cannot carry, and SoftHSMv2 has neither.
		return nil, fmt.Errorf("seal with mechanism %v through a module: %w", mech, ck.CKR_MECHANISM_INVALID)
	}
	nonce, err := s.ctx.GenerateRandom(s.h, token.NonceSize)
	if err != nil {
		return nil, convErr(err)
	}
	if len(nonce) != token.NonceSize {
		return nil, fmt.Errorf("token returned %d random bytes: %w", len(nonce), ck.CKR_DEVICE_ERROR)
	}
	g := pkcs11.NewGCMParams(nonce, aad, token.TagSize*8)
	defer g.Free()
	mm := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, g)}
	if err := s.ctx.EncryptInit(s.h, mm, pkcs11.ObjectHandle(key)); err != nil {
		return nil, convErr(err)
	}
	ct, err := s.ctx.Encrypt(s.h, plaintext)
	if err != nil {
		return nil, convErr(err)
	}
	if len(ct) != len(plaintext)+token.TagSize {
		return nil, fmt.Errorf("module returned %d bytes for %d: %w", len(ct), len(plaintext), ck.CKR_DEVICE_ERROR)
	}
	if iv := g.IV(); len(iv) == token.NonceSize {
		nonce = iv
	}
	dst = append(dst, nonce...)
	return append(dst, ct...), nil
}

func (s *session) Open(dst []byte, mech ck.MechanismType, key ck.ObjectHandle, aad, sealed []byte) ([]byte, error) {
	if mech != ck.CKM_AES_GCM {
		return nil, fmt.Errorf("open with mechanism %v through a module: %w", mech, ck.CKR_MECHANISM_INVALID)
	}
	if len(sealed) < token.NonceSize+token.TagSize {
		return nil, fmt.Errorf("sealed message of %d bytes: %w", len(sealed), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	}
	g := pkcs11.NewGCMParams(sealed[:token.NonceSize], aad, token.TagSize*8)
	defer g.Free()
	mm := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, g)}
	if err := s.ctx.DecryptInit(s.h, mm, pkcs11.ObjectHandle(key)); err != nil {
		return nil, convErr(err)
	}
	pt, err := s.ctx.Decrypt(s.h, sealed[token.NonceSize:])
	if err != nil {
		return nil, s.tagErr(err)
	}
	return append(dst, pt...), nil
}

// tagErr: SoftHSMv2 answers a GCM tag that does not verify with
// CKR_GENERAL_ERROR, a code the pool reads as the token failing; then
// anyone could knock tokens out of a pool with tampered ciphertexts. When
// the session still answers, the failure was the message's:
// CKR_ENCRYPTED_DATA_INVALID.
func (s *session) tagErr(err error) error {
	if rvOf(err) == ck.CKR_GENERAL_ERROR {
		if _, serr := s.ctx.GetSessionInfo(s.h); serr == nil {
			return fmt.Errorf("authentication failed (module said %v): %w", convErr(err), ck.CKR_ENCRYPTED_DATA_INVALID)
		}
	}
	return convErr(err)
}

func (s *session) Random(n int) ([]byte, error) {
	b, err := s.ctx.GenerateRandom(s.h, n)
	return b, convErr(err)
}

func (s *session) Close() error { return convErr(s.ctx.CloseSession(s.h)) }
