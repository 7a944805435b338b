package mech

import (
	"bytes"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// FuzzMechanismParams throws caller-controlled mechanism parameters and data
// at every registered mechanism, the way the shim hands them over (a decoded
// CK_*_PARAMS struct, a byte string, or nothing) and the way it never should
// (a wrong parameter type, a typed nil). Whatever the caller sends, a
// mechanism must answer with an error that carries a PKCS#11 code (anything
// else surfaces as CKR_GENERAL_ERROR at the boundary) or with output that
// keeps the promises of its size queries; and what one half of a pair makes
// (a signature, a ciphertext, an encapsulation) the other half must accept.
//
// Input: the mechanism (its CKM_ code, or an index into List when the value
// is no registered code), the parameter bytes that fuzzReader decodes, the
// data, and an operation selector (which operation, which key, and whether
// to hand over a key of the wrong class).
func FuzzMechanismParams(f *testing.F) {
	for _, s := range fuzzParamSeeds(f) {
		f.Add(s.mech, s.param, s.data, s.op)
	}
	f.Fuzz(func(t *testing.T, mt uint64, param, data []byte, op uint8) {
		fx := fuzzFixture()
		if fx.err != nil {
			t.Fatal(fx.err)
		}
		if len(data) > 4096 {
			data = data[:4096]
		}
		m, ok := fx.reg.Mechanism(ck.MechanismType(mt))
		if !ok {
			list := fx.reg.List()
			m, _ = fx.reg.Mechanism(list[mt%uint64(len(list))])
		}
		fuzzOne(t, fx, m, &fuzzReader{b: param}, data, op)
	})
}

// Operation selectors: op%fuzzOps picks one; op/fuzzOps picks the key.
const (
	fopEncrypt = iota
	fopDecrypt
	fopSign
	fopVerify
	fopDerive
	fopEncapsulate
	fopDecapsulate
	fopMessage
	fopDigest
	fopGenerate
	fuzzOps
)

// fuzzKeys are the keys one key type offers: a pair, or one secret as both.
type fuzzKeys struct{ pub, priv *Key }

type fuzzFix struct {
	reg  *Registry
	keys map[ck.KeyType][]fuzzKeys
	err  error
}

// fuzzFixture generates one key (pair) per key type once per process, with
// the registry's own generators and the smallest sizes the mechanisms take.
var fuzzFixture = sync.OnceValue(func() *fuzzFix {
	fx := &fuzzFix{reg: New(ck.DefaultProfile), keys: map[ck.KeyType][]fuzzKeys{}}
	fx.err = fx.generate()
	return fx
})

func (fx *fuzzFix) parse(kt ck.KeyType, class ck.ObjectClass, a attr.Template) (*Key, error) {
	kk, ok := fx.reg.KeyKind(kt)
	if !ok {
		return nil, fmt.Errorf("key kind %v not registered", kt)
	}
	m, err := kk.Parse(class, a)
	if err != nil {
		return nil, fmt.Errorf("parse %v %v: %w", class, kt, err)
	}
	return &Key{Class: class, Type: kt, Material: m, Attrs: a}, nil
}

func (fx *fuzzFix) secret(gen ck.MechanismType, kts []ck.KeyType, t attr.Template) error {
	m, ok := fx.reg.Mechanism(gen)
	if !ok {
		return fmt.Errorf("%v not registered", gen)
	}
	a, err := m.GenerateKey(t)
	if err != nil {
		return fmt.Errorf("%v: %w", gen, err)
	}
	v, _ := a.Get(ck.CKA_VALUE)
	for _, kt := range kts {
		k, err := fx.parse(kt, ck.CKO_SECRET_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: v}})
		if err != nil {
			return err
		}
		fx.keys[kt] = append(fx.keys[kt], fuzzKeys{k, k})
	}
	return nil
}

func (fx *fuzzFix) pair(gen ck.MechanismType, kt ck.KeyType, pubT attr.Template) error {
	m, ok := fx.reg.Mechanism(gen)
	if !ok {
		return fmt.Errorf("%v not registered", gen)
	}
	pa, pr, err := m.GenerateKeyPair(pubT, nil)
	if err != nil {
		return fmt.Errorf("%v: %w", gen, err)
	}
	// The engine stores the caller's template with what the mechanism
	// sets (an X25519 generator leaves CKA_EC_PARAMS to it).
	for _, a := range pubT {
		if !pa.Has(a.Type) {
			pa = append(pa, a)
		}
		if !pr.Has(a.Type) {
			pr = append(pr, a)
		}
	}
	pub, err := fx.parse(kt, ck.CKO_PUBLIC_KEY, pa)
	if err != nil {
		return err
	}
	priv, err := fx.parse(kt, ck.CKO_PRIVATE_KEY, pr)
	if err != nil {
		return err
	}
	fx.keys[kt] = append(fx.keys[kt], fuzzKeys{pub, priv})
	return nil
}

func (fx *fuzzFix) generate() error {
	p := ck.DefaultProfile
	valueLen := func(n ck.ULong) attr.Template { return attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(n)}} }
	ecParams := func(v any) attr.Template {
		der, _ := asn1.Marshal(v)
		return attr.Template{{Type: ck.CKA_EC_PARAMS, Value: der}}
	}
	set := func(s ck.ParameterSet) attr.Template {
		return attr.Template{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(ck.ULong(s))}}
	}
	generic := append([]ck.KeyType{ck.CKK_GENERIC_SECRET}, hmacKeyTypes...)
	sm4, _ := p.KeyType("CKK_SM4")
	sm4Gen, _ := p.Mechanism("CKM_SM4_KEY_GEN")
	sm2, _ := p.KeyType("CKK_SM2")
	sm2Gen, _ := p.Mechanism("CKM_SM2_KEY_PAIR_GEN")
	steps := []func() error{
		func() error { return fx.secret(ck.CKM_AES_KEY_GEN, []ck.KeyType{ck.CKK_AES}, valueLen(16)) },
		func() error { return fx.secret(ck.CKM_GENERIC_SECRET_KEY_GEN, generic, valueLen(32)) },
		func() error { return fx.secret(ck.CKM_DES3_KEY_GEN, []ck.KeyType{ck.CKK_DES3}, nil) },
		func() error { return fx.secret(ck.CKM_CHACHA20_KEY_GEN, []ck.KeyType{ck.CKK_CHACHA20}, nil) },
		func() error { return fx.secret(ck.CKM_HKDF_KEY_GEN, []ck.KeyType{ck.CKK_HKDF}, valueLen(32)) },
		func() error { return fx.secret(sm4Gen, []ck.KeyType{sm4}, nil) },
		func() error {
			return fx.pair(ck.CKM_EC_KEY_PAIR_GEN, ck.CKK_EC, ecParams(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}))
		},
		func() error { return fx.pair(ck.CKM_EC_KEY_PAIR_GEN, ck.CKK_EC, ecParams("secp256k1")) },
		func() error {
			return fx.pair(ck.CKM_EC_EDWARDS_KEY_PAIR_GEN, ck.CKK_EC_EDWARDS, ecParams(asn1.ObjectIdentifier{1, 3, 101, 112}))
		},
		func() error {
			return fx.pair(ck.CKM_EC_MONTGOMERY_KEY_PAIR_GEN, ck.CKK_EC_MONTGOMERY, ecParams(asn1.ObjectIdentifier{1, 3, 101, 110}))
		},
		func() error {
			m, _ := fx.reg.Mechanism(ck.CKM_RSA_PKCS)
			bits := m.Info.MinKeySize
			return fx.pair(ck.CKM_RSA_PKCS_KEY_PAIR_GEN, ck.CKK_RSA,
				attr.Template{{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(bits)}})
		},
		func() error { return fx.pair(ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKK_ML_DSA, set(ck.CKP_ML_DSA_44)) },
		func() error { return fx.pair(ck.CKM_ML_KEM_KEY_PAIR_GEN, ck.CKK_ML_KEM, set(ck.CKP_ML_KEM_512)) },
		func() error {
			return fx.pair(ck.CKM_SLH_DSA_KEY_PAIR_GEN, ck.CKK_SLH_DSA, set(ck.CKP_SLH_DSA_SHA2_128F))
		},
		func() error { return fx.pair(sm2Gen, sm2, nil) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// keyFor picks a key the engine would hand m (a type in m.KeyTypes, of a
// size within m.Info's range), or nil when the fixture has none.
func (fx *fuzzFix) keyFor(m *Mechanism, sel uint8) *fuzzKeys {
	var cands []*fuzzKeys
	for _, kt := range m.KeyTypes {
		kk, _ := fx.reg.KeyKind(kt)
		for i := range fx.keys[kt] {
			k := &fx.keys[kt][i]
			if kk != nil && kk.Size != nil {
				size := kk.Size(k.priv.Attrs, k.priv.Material)
				if (m.Info.MinKeySize != 0 && size < m.Info.MinKeySize) || (m.Info.MaxKeySize != 0 && size > m.Info.MaxKeySize) {
					continue
				}
			}
			cands = append(cands, k)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[int(sel)%len(cands)]
}

// fuzzReader decodes parameter fields from fuzz bytes; past the end every
// read is zero, so any input decodes.
type fuzzReader struct {
	b []byte
	i int
}

func (r *fuzzReader) u8() uint8 {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *fuzzReader) u16() uint16 { return uint16(r.u8()) | uint16(r.u8())<<8 }

func (r *fuzzReader) u64() uint64 {
	var v [8]byte
	for i := range v {
		v[i] = r.u8()
	}
	return binary.LittleEndian.Uint64(v[:])
}

// fuzzInteresting are values worth trying in any CK_ULONG field: lengths,
// bit counts, and the enum codes the parameter structs name.
var fuzzInteresting = []uint64{
	0, 1, 2, 3, 4, 7, 8, 12, 13, 15, 16, 24, 31, 32, 33, 48, 63, 64, 65, 96, 104, 112, 120, 127, 128, 129,
	255, 256, 1024, 1 << 31, 1<<32 - 1, 1 << 32, 1<<63 - 1, 1 << 63, 1<<64 - 1,
	uint64(ck.CKM_SHA_1), uint64(ck.CKM_SHA224), uint64(ck.CKM_SHA256), uint64(ck.CKM_SHA384), uint64(ck.CKM_SHA512),
	uint64(ck.CKM_SHA3_256), uint64(ck.CKM_SHA3_512), uint64(ck.CKM_MD5), uint64(ck.CKM_AES_CBC),
	uint64(ck.CKG_MGF1_SHA1), uint64(ck.CKG_MGF1_SHA256), uint64(ck.CKG_MGF1_SHA512), uint64(ck.CKG_MGF1_SHA3_256),
	uint64(ck.CKD_NULL), uint64(ck.CKD_SHA256_KDF_SP800), uint64(ck.CKD_BLAKE2B_256_KDF),
	uint64(ck.CKF_HKDF_SALT_NULL), uint64(ck.CKF_HKDF_SALT_DATA), uint64(ck.CKF_HKDF_SALT_KEY),
	uint64(ck.CKG_GENERATE), uint64(ck.CKG_GENERATE_COUNTER), uint64(ck.CKG_GENERATE_RANDOM), uint64(ck.CKG_GENERATE_COUNTER_XOR),
	uint64(ck.CKH_HEDGE_REQUIRED), uint64(ck.CKH_DETERMINISTIC_REQUIRED),
	uint64(ck.CKK_AES), uint64(ck.CKK_DES3), uint64(ck.CKK_GENERIC_SECRET), uint64(ck.CKK_HKDF), uint64(ck.CKK_RSA),
	uint64(ck.CKO_DATA), uint64(ck.CKO_SECRET_KEY),
}

// Field encodings, for the seeds: ulong tag 2 is a raw 8-byte value, bytes
// tag 2 a 2-byte length and that many bytes.
func (r *fuzzReader) ulong() ck.ULong {
	switch r.u8() % 4 {
	case 0:
		return ck.ULong(fuzzInteresting[int(r.u8())%len(fuzzInteresting)])
	case 1:
		return ck.ULong(r.u8())
	case 2:
		return ck.ULong(r.u64())
	default:
		return ck.ULong(r.u16())
	}
}

// bytes is nil, empty, caller bytes, or a long filled buffer: lengths stay
// within 1 KiB, as the shim's bounded copies do.
func (r *fuzzReader) bytes() []byte {
	switch r.u8() % 5 {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		n := min(int(r.u16())%1025, len(r.b)-r.i)
		out := append([]byte{}, r.b[r.i:r.i+n]...)
		r.i += n
		return out
	case 3:
		n := int(r.u16()) % 1025
		return bytes.Repeat([]byte{r.u8()}, n)
	default:
		n := min(int(r.u8())%64, len(r.b)-r.i)
		out := append([]byte{}, r.b[r.i:r.i+n]...)
		r.i += n
		return out
	}
}

func (r *fuzzReader) bool() bool { return r.u8()&1 != 0 }

// paramOf decodes the parameter a mechanism of kind kind gets: usually that
// kind, as the shim builds it (a pointer, or a []byte / MACGeneralParams),
// sometimes the struct by value, sometimes any other shape.
func (r *fuzzReader) paramOf(kind ck.ParamKind) any {
	switch s := r.u8(); {
	case s%8 < 6:
		return r.kind(int(kind), true)
	case s%8 == 6:
		return r.kind(int(kind), false)
	default:
		return r.kind(int(r.u8()), true)
	}
}

// kind decodes shape k: the ParamKinds, then shapes the shim never makes.
func (r *fuzzReader) kind(k int, ptr bool) any {
	val := func(p any) any {
		if ptr {
			return p
		}
		switch v := p.(type) {
		case *ck.GCMParams:
			return *v
		case *ck.CCMParams:
			return *v
		case *ck.CTRParams:
			return *v
		case *ck.RSAOAEPParams:
			return *v
		case *ck.RSAPSSParams:
			return *v
		case *ck.ECDH1DeriveParams:
			return *v
		case *ck.EDDSAParams:
			return *v
		case *ck.SignAdditionalContext:
			return *v
		case *ck.HashSignAdditionalContext:
			return *v
		case *ck.ChaCha20Poly1305Params:
			return *v
		case *ck.HKDFParams:
			return *v
		case *ck.PBKD2Params:
			return *v
		}
		return p
	}
	switch ck.ParamKind(k % 24) {
	case ck.ParamBytes:
		return r.bytes()
	case ck.ParamGCM:
		return val(&ck.GCMParams{IV: r.bytes(), IVBits: r.ulong(), AAD: r.bytes(), TagBits: r.ulong()})
	case ck.ParamCCM:
		return val(&ck.CCMParams{DataLen: r.ulong(), Nonce: r.bytes(), AAD: r.bytes(), MACLen: r.ulong()})
	case ck.ParamCTR:
		p := &ck.CTRParams{CounterBits: r.ulong()}
		copy(p.CB[:], r.bytes())
		return val(p)
	case ck.ParamRSAOAEP:
		return val(&ck.RSAOAEPParams{HashAlg: ck.MechanismType(r.ulong()), MGF: ck.MGF(r.ulong()), Source: r.ulong(), SourceData: r.bytes()})
	case ck.ParamRSAPSS:
		return val(&ck.RSAPSSParams{HashAlg: ck.MechanismType(r.ulong()), MGF: ck.MGF(r.ulong()), SaltLen: r.ulong()})
	case ck.ParamECDH1:
		return val(&ck.ECDH1DeriveParams{KDF: ck.EC_KDF(r.ulong()), SharedData: r.bytes(), PublicData: r.bytes()})
	case ck.ParamEDDSA:
		return val(&ck.EDDSAParams{PHFlag: r.bool(), ContextData: r.bytes()})
	case ck.ParamULong:
		return ck.MACGeneralParams(r.ulong())
	case ck.ParamSignContext:
		return val(&ck.SignAdditionalContext{Hedge: ck.HedgeType(r.ulong()), Context: r.bytes()})
	case ck.ParamHashSignContext:
		return val(&ck.HashSignAdditionalContext{Hedge: ck.HedgeType(r.ulong()), Context: r.bytes(), Hash: ck.MechanismType(r.ulong())})
	case ck.ParamChaCha20Poly1305:
		return val(&ck.ChaCha20Poly1305Params{Nonce: r.bytes(), AAD: r.bytes()})
	case ck.ParamHKDF:
		return val(&ck.HKDFParams{Extract: r.bool(), Expand: r.bool(), PRF: ck.MechanismType(r.ulong()),
			SaltType: ck.Flags(r.ulong()), Salt: r.bytes(), SaltKey: ck.ObjectHandle(r.ulong()), Info: r.bytes()})
	case ck.ParamPBKD2:
		p := &ck.PBKD2Params{SaltSource: r.ulong(), Salt: r.bytes(), Iterations: r.ulong(), PRF: r.ulong(),
			PRFData: r.bytes(), Password: r.bytes()}
		// PBKDF2 runs as many iterations as asked (pbkdf2.go has no
		// cap); keep the fuzzer fast, but keep counts that wrap
		// negative as an int.
		if p.Iterations > 4 && p.Iterations < 1<<63 {
			p.Iterations %= 5
		}
		return val(p)
	case 14:
		return r.msgParam()
	case 15:
		return nil
	case 16:
		return ck.ULong(r.ulong())
	case 17:
		return (*ck.GCMParams)(nil)
	case 18:
		return (*ck.RSAPSSParams)(nil)
	case 19:
		return (*ck.HKDFParams)(nil)
	case 20:
		return (*ck.SignAdditionalContext)(nil)
	case 21:
		return (*ck.GCMMessageParams)(nil)
	case 22:
		return string(r.bytes())
	default:
		return []any{r.bytes()}
	}
}

// msgParam is a per-message parameter of the message-based functions.
func (r *fuzzReader) msgParam() any {
	switch r.u8() % 4 {
	case 0, 1:
		return &ck.GCMMessageParams{IV: r.bytes(), IVFixedBits: r.ulong(), IVGenerator: ck.GeneratorFunction(r.ulong()),
			Tag: r.bytes(), TagBits: r.ulong()}
	case 2:
		return &ck.ChaCha20Poly1305MsgParams{Nonce: r.bytes(), Tag: r.bytes()}
	default:
		return r.kind(int(r.u8()), true)
	}
}

// msgInitParam is what C_MessageEncryptInit passes on: only a shape.
func (r *fuzzReader) msgInitParam() any {
	switch r.u8() % 5 {
	case 0:
		return nil
	case 1:
		return &ck.GCMMessageParams{}
	case 2:
		return &ck.ChaCha20Poly1305MsgParams{}
	case 3:
		return r.bytes()
	default:
		return r.kind(int(r.u8()), true)
	}
}

// template is a derivation or generation template with fuzzed values,
// including malformed CK_ULONG encodings.
func (r *fuzzReader) template() attr.Template {
	types := []ck.AttributeType{ck.CKA_VALUE_LEN, ck.CKA_KEY_TYPE, ck.CKA_CLASS, ck.CKA_VALUE}
	var t attr.Template
	for n := r.u8() % 4; n > 0; n-- {
		typ := types[int(r.u8())%len(types)]
		if r.bool() {
			t = append(t, ck.Attribute{Type: typ, Value: attr.ULong(r.ulong())})
		} else {
			t = append(t, ck.Attribute{Type: typ, Value: r.bytes()})
		}
	}
	return t
}

// fuzzCheck fails unless err is nil or carries a PKCS#11 code other than
// CKR_OK.
func fuzzCheck(t *testing.T, m *Mechanism, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var rv ck.RV
	if !errors.As(err, &rv) {
		t.Fatalf("%v %s: error without a PKCS#11 code: %v", m.Type, what, err)
	}
	if rv == ck.CKR_OK {
		t.Fatalf("%v %s: error wraps CKR_OK: %v", m.Type, what, err)
	}
}

func fuzzOne(t *testing.T, fx *fuzzFix, m *Mechanism, r *fuzzReader, data []byte, op uint8) {
	kind := ck.ParamKindOf(m.Type)
	// op/fuzzOps picks the key; its top value hands each operation the
	// key of the other class (the engine checks type and usage, not class).
	keys := fx.keyFor(m, op/fuzzOps)
	wrongClass := op/fuzzOps == 255/fuzzOps
	var priv, pub *Key
	if keys != nil {
		priv, pub = keys.priv, keys.pub
		if wrongClass {
			priv, pub = pub, priv
		}
	}
	switch op % fuzzOps {
	case fopEncrypt, fopDecrypt:
		if m.Encrypt == nil && m.Decrypt == nil || keys == nil {
			return
		}
		param := r.paramOf(kind)
		chunk := 1 + int(r.u8()%32)
		if op%fuzzOps == fopDecrypt || m.Encrypt == nil {
			if m.Decrypt != nil {
				fuzzCipher(t, m, "decrypt", func() (Cipher, error) { return m.Decrypt(priv, param) }, data, chunk)
			}
			if m.UnwrapFixed != nil {
				// Implicit rejection: any input of the right length gives
				// exactly n bytes, never a padding error.
				n := 1 + int(r.u8()%64)
				out, err := m.UnwrapFixed(priv, param, data, n)
				fuzzCheck(t, m, "unwrap", err)
				if err == nil && len(out) != n {
					t.Fatalf("%v: unwrapped %d bytes, want %d", m.Type, len(out), n)
				}
			}
			return
		}
		ct, ok := fuzzCipher(t, m, "encrypt", func() (Cipher, error) { return m.Encrypt(pub, param) }, data, chunk)
		if !ok || m.Decrypt == nil || wrongClass {
			return
		}
		// Raw RSA loses the plaintext's leading zeros; everything else
		// must decrypt its own ciphertext to the data.
		pt, ok := fuzzCipher(t, m, "decrypt", func() (Cipher, error) { return m.Decrypt(priv, param) }, ct, chunk)
		if m.Type != ck.CKM_RSA_X_509 && (!ok || !bytes.Equal(pt, data)) {
			t.Fatalf("%v: decrypting its own ciphertext gave %x (ok %v), want %x", m.Type, pt, ok, data)
		}
	case fopSign, fopVerify:
		if m.Sign == nil && m.Verify == nil || keys == nil {
			return
		}
		param := r.paramOf(kind)
		chunk := 1 + int(r.u8()%32)
		if op%fuzzOps == fopVerify || m.Sign == nil {
			if m.Verify != nil {
				fuzzVerify(t, m, func() (Verifier, error) { return m.Verify(pub, param) }, data, r.bytes(), chunk, false)
			}
			return
		}
		sig := fuzzSign(t, m, func() (Signer, error) { return m.Sign(priv, param) }, data, chunk)
		if sig != nil && m.Verify != nil && !wrongClass {
			fuzzVerify(t, m, func() (Verifier, error) { return m.Verify(pub, param) }, data, sig, chunk, true)
		}
	case fopDerive:
		if m.Derive == nil || keys == nil {
			return
		}
		param := r.paramOf(kind)
		tmpl := r.template()
		out, err := m.Derive(priv, param, tmpl)
		fuzzCheck(t, m, "derive", err)
		if err == nil && !m.DerivesData {
			n, ok, _ := tmpl.ULong(ck.CKA_VALUE_LEN)
			v, _ := out.Get(ck.CKA_VALUE)
			if ok && ck.ULong(len(v)) != n {
				t.Fatalf("%v: derived %d bytes for CKA_VALUE_LEN %d", m.Type, len(v), n)
			}
		}
	case fopEncapsulate, fopDecapsulate:
		if keys == nil || m.Encapsulate == nil && m.Decapsulate == nil {
			return
		}
		param := r.paramOf(kind)
		if op%fuzzOps == fopDecapsulate || m.Encapsulate == nil {
			if m.Decapsulate != nil {
				_, err := m.Decapsulate(priv, param, data)
				fuzzCheck(t, m, "decapsulate", err)
			}
			return
		}
		if m.CiphertextLen == nil {
			t.Fatalf("%v encapsulates but cannot say the ciphertext length", m.Type)
		}
		n, err := m.CiphertextLen(pub)
		fuzzCheck(t, m, "ciphertext length", err)
		if err != nil {
			return
		}
		ct := make([]byte, n)
		secret, err := m.Encapsulate(pub, param, ct)
		fuzzCheck(t, m, "encapsulate", err)
		if err != nil {
			return
		}
		if m.Decapsulate != nil && !wrongClass {
			got, err := m.Decapsulate(priv, param, ct)
			fuzzCheck(t, m, "decapsulate", err)
			if err == nil && !bytes.Equal(got, secret) {
				t.Fatalf("%v: decapsulation differs from encapsulation", m.Type)
			}
		}
	case fopMessage:
		if m.MessageEncrypt == nil && m.MessageDecrypt == nil || keys == nil {
			return
		}
		fuzzMessage(t, m, r, priv, data)
	case fopDigest:
		if m.Digest == nil {
			return
		}
		h, err := m.Digest(r.paramOf(kind))
		fuzzCheck(t, m, "digest", err)
		if err == nil {
			h.Write(data)
			if got := h.Sum(nil); len(got) != h.Size() {
				t.Fatalf("%v: digest of %d bytes, Size %d", m.Type, len(got), h.Size())
			}
		}
	case fopGenerate:
		if m.GenerateKeyParam == nil {
			return
		}
		_, err := m.GenerateKeyParam(r.template(), r.paramOf(kind))
		fuzzCheck(t, m, "generate", err)
	}
}

// fuzzCipher runs data through one cipher in one part and another in
// chunks, checks the size queries, and returns the one-part output and
// whether it succeeded.
func fuzzCipher(t *testing.T, m *Mechanism, what string, mk func() (Cipher, error), data []byte, chunk int) (out []byte, ok bool) {
	t.Helper()
	c, err := mk()
	fuzzCheck(t, m, what+" init", err)
	if err != nil {
		return nil, false
	}
	bound := c.OneShotLen(len(data))
	out, err = c.OneShot(nil, data)
	fuzzCheck(t, m, what+" one-shot", err)
	if err == nil && len(out) > bound {
		t.Fatalf("%v %s: one-shot output %d bytes, OneShotLen(%d) = %d", m.Type, what, len(out), len(data), bound)
	}
	ok = err == nil
	c2, err := mk()
	fuzzCheck(t, m, what+" init", err)
	if err != nil {
		return out, ok
	}
	for rest := data; len(rest) > 0; {
		n := min(chunk, len(rest))
		want := c2.UpdateLen(n)
		got, err := c2.Update(nil, rest[:n])
		fuzzCheck(t, m, what+" update", err)
		if err != nil {
			return out, ok
		}
		if len(got) > want {
			t.Fatalf("%v %s: update output %d bytes, UpdateLen(%d) = %d", m.Type, what, len(got), n, want)
		}
		rest = rest[n:]
	}
	want := c2.FinalLen()
	got, err := c2.Final(nil)
	fuzzCheck(t, m, what+" final", err)
	if err == nil && len(got) > want {
		t.Fatalf("%v %s: final output %d bytes, FinalLen() = %d", m.Type, what, len(got), want)
	}
	return out, ok
}

// fuzzSign signs in one part and in chunks; both signatures must have
// Len() bytes. It returns the one-part signature.
func fuzzSign(t *testing.T, m *Mechanism, mk func() (Signer, error), data []byte, chunk int) []byte {
	t.Helper()
	s, err := mk()
	fuzzCheck(t, m, "sign init", err)
	if err != nil {
		return nil
	}
	sig, err := s.Sign(data)
	fuzzCheck(t, m, "sign", err)
	if err == nil && len(sig) != s.Len() {
		t.Fatalf("%v: signature of %d bytes, Len() = %d", m.Type, len(sig), s.Len())
	}
	if err != nil {
		sig = nil
	}
	s2, err := mk()
	fuzzCheck(t, m, "sign init", err)
	if err != nil {
		return sig
	}
	for rest := data; len(rest) > 0; rest = rest[min(chunk, len(rest)):] {
		if err := s2.Update(rest[:min(chunk, len(rest))]); err != nil {
			fuzzCheck(t, m, "sign update", err)
			return sig
		}
	}
	sig2, err := s2.Final()
	fuzzCheck(t, m, "sign final", err)
	if err == nil && len(sig2) != s2.Len() {
		t.Fatalf("%v: multi-part signature of %d bytes, Len() = %d", m.Type, len(sig2), s2.Len())
	}
	return sig
}

// fuzzVerify checks sig over data in one part and in chunks; when the
// signature is the mechanism's own (valid), both must accept it.
func fuzzVerify(t *testing.T, m *Mechanism, mk func() (Verifier, error), data, sig []byte, chunk int, valid bool) {
	t.Helper()
	v, err := mk()
	fuzzCheck(t, m, "verify init", err)
	if err != nil {
		if valid {
			t.Fatalf("%v: verify init refuses the parameter sign accepted: %v", m.Type, err)
		}
		return
	}
	err = v.Verify(data, sig)
	fuzzCheck(t, m, "verify", err)
	if valid && err != nil {
		t.Fatalf("%v: own signature does not verify: %v", m.Type, err)
	}
	v2, err := mk()
	fuzzCheck(t, m, "verify init", err)
	if err != nil {
		return
	}
	for rest := data; len(rest) > 0; rest = rest[min(chunk, len(rest)):] {
		if err := v2.Update(rest[:min(chunk, len(rest))]); err != nil {
			fuzzCheck(t, m, "verify update", err)
			return
		}
	}
	err = v2.Final(sig)
	fuzzCheck(t, m, "verify final", err)
	// Single-part-only mechanisms refuse Final as they refuse Update.
	if valid && err != nil && !errors.Is(err, ck.CKR_FUNCTION_NOT_SUPPORTED) {
		t.Fatalf("%v: own signature does not verify in parts: %v", m.Type, err)
	}
}

// fuzzMessage runs one message-based encryption and decrypts its output
// with the parameter encryption filled in, then a decryption of the data
// as a forged message.
func fuzzMessage(t *testing.T, m *Mechanism, r *fuzzReader, k *Key, data []byte) {
	t.Helper()
	init := r.msgInitParam()
	param := r.msgParam()
	aad := data[:min(int(r.u8()), len(data))]
	in := data[len(aad):]
	if m.MessageEncrypt != nil {
		c, err := m.MessageEncrypt(k, init)
		fuzzCheck(t, m, "message encrypt init", err)
		if err != nil {
			return
		}
		if err := c.Begin(param, aad); err != nil {
			fuzzCheck(t, m, "message encrypt begin", err)
			return
		}
		want := c.OutLen(len(in))
		ct, err := c.Finish(param, in)
		fuzzCheck(t, m, "message encrypt", err)
		if err != nil {
			return
		}
		if len(ct) != want {
			t.Fatalf("%v: message ciphertext %d bytes, OutLen(%d) = %d", m.Type, len(ct), len(in), want)
		}
		if m.MessageDecrypt != nil {
			d, err := m.MessageDecrypt(k, init)
			fuzzCheck(t, m, "message decrypt init", err)
			if err != nil {
				t.Fatalf("%v: message decrypt init refuses what encrypt init took: %v", m.Type, err)
			}
			if err := d.Begin(param, aad); err != nil {
				t.Fatalf("%v: message decrypt refuses the parameter encryption filled in: %v", m.Type, err)
			}
			pt, err := d.Finish(param, ct)
			if err != nil || !bytes.Equal(pt, in) {
				t.Fatalf("%v: message decryption of its own ciphertext: %x, %v", m.Type, pt, err)
			}
		}
	}
	if m.MessageDecrypt != nil {
		d, err := m.MessageDecrypt(k, init)
		fuzzCheck(t, m, "message decrypt init", err)
		if err != nil {
			return
		}
		fparam := r.msgParam()
		if err := d.Begin(fparam, aad); err != nil {
			fuzzCheck(t, m, "message decrypt begin", err)
			return
		}
		want := d.OutLen(len(in))
		pt, err := d.Finish(r.msgParam(), in)
		fuzzCheck(t, m, "message decrypt", err)
		if err == nil && len(pt) != want {
			t.Fatalf("%v: message plaintext %d bytes, OutLen(%d) = %d", m.Type, len(pt), len(in), want)
		}
		d.Abort()
	}
}

// fuzzHas reports whether m has operation op.
func fuzzHas(m *Mechanism, op uint8) bool {
	switch op {
	case fopEncrypt:
		return m.Encrypt != nil
	case fopDecrypt:
		return m.Decrypt != nil
	case fopSign:
		return m.Sign != nil
	case fopVerify:
		return m.Verify != nil
	case fopDerive:
		return m.Derive != nil
	case fopEncapsulate:
		return m.Encapsulate != nil
	case fopDecapsulate:
		return m.Decapsulate != nil
	case fopMessage:
		return m.MessageEncrypt != nil || m.MessageDecrypt != nil
	case fopDigest:
		return m.Digest != nil
	default:
		return m.GenerateKeyParam != nil
	}
}

// fuzzWriter encodes seed parameters in fuzzReader's format.
type fuzzWriter struct{ b []byte }

func (w *fuzzWriter) u8(v uint8) *fuzzWriter { w.b = append(w.b, v); return w }
func (w *fuzzWriter) ulong(v uint64) *fuzzWriter {
	w.b = binary.LittleEndian.AppendUint64(append(w.b, 2), v)
	return w
}
func (w *fuzzWriter) bytes(p []byte) *fuzzWriter {
	if p == nil {
		return w.u8(0)
	}
	w.b = append(binary.LittleEndian.AppendUint16(append(w.b, 2), uint16(len(p))), p...)
	return w
}
func (w *fuzzWriter) bool(v bool) *fuzzWriter {
	if v {
		return w.u8(1)
	}
	return w.u8(0)
}

type fuzzSeed struct {
	mech  uint64
	param []byte
	data  []byte
	op    uint8
}

// fuzzParamSeeds gives every mechanism a valid parameter of its kind for
// each operation it has, so the fuzzer starts where the parsing succeeds.
func fuzzParamSeeds(f *testing.F) []fuzzSeed {
	fx := fuzzFixture()
	if fx.err != nil {
		f.Fatal(fx.err)
	}
	pssHash := map[ck.MechanismType]ck.MechanismType{
		ck.CKM_SHA1_RSA_PKCS_PSS: ck.CKM_SHA_1, ck.CKM_SHA224_RSA_PKCS_PSS: ck.CKM_SHA224,
		ck.CKM_SHA384_RSA_PKCS_PSS: ck.CKM_SHA384, ck.CKM_SHA512_RSA_PKCS_PSS: ck.CKM_SHA512,
		ck.CKM_SHA3_224_RSA_PKCS_PSS: ck.CKM_SHA3_224, ck.CKM_SHA3_256_RSA_PKCS_PSS: ck.CKM_SHA3_256,
		ck.CKM_SHA3_384_RSA_PKCS_PSS: ck.CKM_SHA3_384, ck.CKM_SHA3_512_RSA_PKCS_PSS: ck.CKM_SHA3_512,
	}
	pssMGF := map[ck.MechanismType]ck.MGF{
		ck.CKM_SHA_1: ck.CKG_MGF1_SHA1, ck.CKM_SHA224: ck.CKG_MGF1_SHA224, ck.CKM_SHA256: ck.CKG_MGF1_SHA256,
		ck.CKM_SHA384: ck.CKG_MGF1_SHA384, ck.CKM_SHA512: ck.CKG_MGF1_SHA512, ck.CKM_SHA3_224: ck.CKG_MGF1_SHA3_224,
		ck.CKM_SHA3_256: ck.CKG_MGF1_SHA3_256, ck.CKM_SHA3_384: ck.CKG_MGF1_SHA3_384, ck.CKM_SHA3_512: ck.CKG_MGF1_SHA3_512,
	}
	data := []byte("the quick brown fox jumps over the lazy dog, twice!") // 51 bytes
	block := bytes.Repeat([]byte("0123456789abcdef"), 2)                  // two blocks
	tmpl := func(w *fuzzWriter, n uint64) {
		// CKA_VALUE_LEN n, CKA_KEY_TYPE generic secret.
		w.u8(2).u8(0).u8(1).ulong(n).u8(1).u8(1).ulong(uint64(ck.CKK_GENERIC_SECRET))
	}
	var seeds []fuzzSeed
	for _, mt := range fx.reg.List() {
		m, _ := fx.reg.Mechanism(mt)
		kind := ck.ParamKindOf(mt)
		add := func(op uint8, d []byte, enc func(w *fuzzWriter)) {
			if !fuzzHas(m, op%fuzzOps) {
				return
			}
			w := &fuzzWriter{}
			w.u8(0) // the mechanism's own kind, as a pointer
			enc(w)
			seeds = append(seeds, fuzzSeed{uint64(mt), w.b, d, op})
		}
		var enc func(w *fuzzWriter)
		switch kind {
		case ck.ParamGCM:
			enc = func(w *fuzzWriter) {
				w.bytes(make([]byte, 12)).ulong(96).bytes([]byte("header")).ulong(128).u8(16)
			}
		case ck.ParamCTR:
			enc = func(w *fuzzWriter) { w.ulong(128).bytes(make([]byte, 16)).u8(5) }
		case ck.ParamChaCha20Poly1305:
			enc = func(w *fuzzWriter) { w.bytes(make([]byte, 12)).bytes([]byte("header")).u8(7) }
		case ck.ParamRSAOAEP:
			enc = func(w *fuzzWriter) {
				w.ulong(uint64(ck.CKM_SHA256)).ulong(uint64(ck.CKG_MGF1_SHA256)).ulong(uint64(ck.CKZ_DATA_SPECIFIED)).bytes([]byte("label")).u8(3)
			}
		case ck.ParamRSAPSS:
			h := ck.CKM_SHA256
			if v, ok := pssHash[mt]; ok {
				h = v
			}
			enc = func(w *fuzzWriter) { w.ulong(uint64(h)).ulong(uint64(pssMGF[h])).ulong(20).u8(9) }
		case ck.ParamEDDSA:
			enc = func(w *fuzzWriter) { w.bool(true).bytes([]byte("context")).u8(11) }
			add(fopSign, data, func(w *fuzzWriter) { w.bool(false).bytes(nil).u8(1) })
		case ck.ParamULong:
			enc = func(w *fuzzWriter) { w.ulong(12).u8(4) }
		case ck.ParamSignContext:
			enc = func(w *fuzzWriter) {
				w.ulong(uint64(ck.CKH_DETERMINISTIC_REQUIRED)).bytes([]byte("context")).u8(13)
			}
		case ck.ParamHashSignContext:
			enc = func(w *fuzzWriter) {
				w.ulong(uint64(ck.CKH_HEDGE_PREFERRED)).bytes([]byte("context")).ulong(uint64(ck.CKM_SHA256)).u8(31)
			}
			data := block // a SHA-256 digest's length
			add(fopSign, data, enc)
			continue
		case ck.ParamHKDF:
			enc = func(w *fuzzWriter) {
				w.bool(true).bool(true).ulong(uint64(ck.CKM_SHA256)).ulong(uint64(ck.CKF_HKDF_SALT_DATA)).
					bytes([]byte("salt")).ulong(0).bytes([]byte("info"))
				tmpl(w, 32)
			}
		case ck.ParamPBKD2:
			enc = func(w *fuzzWriter) {
				tmpl(w, 32)
				w.u8(0) // own kind
				w.ulong(uint64(ck.CKZ_SALT_SPECIFIED)).bytes([]byte("salt")).ulong(2).
					ulong(uint64(ck.CKP_PKCS5_PBKD2_HMAC_SHA256)).bytes(nil).bytes([]byte("password"))
			}
			w := &fuzzWriter{}
			enc(w)
			seeds = append(seeds, fuzzSeed{uint64(mt), w.b, nil, fopGenerate})
			continue
		case ck.ParamECDH1:
			// One seed per base key: the peer is the key's own public half.
			for sel := range uint8(3) {
				k := fx.keyFor(m, sel)
				if k == nil {
					continue
				}
				point, _ := k.pub.Attrs.Get(ck.CKA_EC_POINT)
				add(uint8(fopDerive)+fuzzOps*sel, nil, func(w *fuzzWriter) {
					w.ulong(uint64(ck.CKD_NULL)).bytes(nil).bytes(point)
					tmpl(w, 32)
				})
			}
			continue
		default: // ParamBytes: none, and an IV of the block size.
			iv := make([]byte, 16)
			if bytes.Contains([]byte(mt.String()), []byte("DES3")) {
				iv = iv[:8]
			}
			enc = func(w *fuzzWriter) { w.bytes(iv).u8(6) }
			noIV := func(w *fuzzWriter) { w.bytes(nil).u8(6) }
			for _, op := range []uint8{fopEncrypt, fopSign, fopDigest} {
				add(op, block, noIV)
			}
		}
		for _, op := range []uint8{fopEncrypt, fopDecrypt, fopSign, fopVerify, fopDerive, fopEncapsulate, fopDecapsulate} {
			d := data
			if op == fopEncrypt || op == fopDecrypt {
				d = block
			}
			add(op, d, enc)
		}
		if m.MessageEncrypt != nil {
			// Shape of the init parameter, then the per-message one.
			w := &fuzzWriter{}
			if mt == ck.CKM_CHACHA20_POLY1305 {
				w.u8(2).u8(2).bytes(make([]byte, 12)).bytes(make([]byte, 16))
			} else {
				w.u8(1).u8(0).bytes(make([]byte, 12)).ulong(0).ulong(uint64(ck.CKG_NO_GENERATE)).bytes(make([]byte, 16)).ulong(128)
			}
			w.u8(6) // 6 bytes of AAD
			seeds = append(seeds, fuzzSeed{uint64(mt), w.b, data, fopMessage})
		}
	}
	// Wrong shapes: a GCM struct to RSA, a byte string to GCM, nil to OAEP.
	seeds = append(seeds,
		fuzzSeed{uint64(ck.CKM_RSA_PKCS), (&fuzzWriter{}).u8(7).u8(byte(ck.ParamGCM)).bytes(make([]byte, 12)).b, data, fopEncrypt},
		fuzzSeed{uint64(ck.CKM_AES_GCM), (&fuzzWriter{}).u8(7).u8(0).bytes(make([]byte, 12)).b, block, fopEncrypt},
		fuzzSeed{uint64(ck.CKM_RSA_PKCS_OAEP), (&fuzzWriter{}).u8(7).u8(15).b, data, fopEncrypt},
		fuzzSeed{uint64(ck.CKM_ECDSA_SHA256), (&fuzzWriter{}).u8(7).u8(17).b, data, fopSign},
		// Found by this fuzzer: a MAC length of 2^63 turned negative as an
		// int and passed the range check (hmac.go).
		fuzzSeed{uint64(ck.CKM_SHA_1_HMAC_GENERAL), (&fuzzWriter{}).u8(0).ulong(1 << 63).b, []byte("0"), fopVerify},
	)
	return seeds
}
