package hsm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// The attacks of the key-protection issue, and their generalisations,
// through the engine's Go API. conformance/ runs the same attacks through
// the C ABI against any module.

var (
	aesKeyTmpl = []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
	}
	gcmWrap = func(iv []byte) ck.Mechanism {
		return ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: iv, IVBits: ck.ULong(len(iv) * 8), TagBits: 128}}
	}
)

// knownKey is an AES key whose value the attacker chose.
func knownKey(t *testing.T, m *Module, s ck.SessionHandle, v []byte, more ...ck.Attribute) ck.ObjectHandle {
	t.Helper()
	h, err := m.CreateObject(s, append(append(append([]ck.Attribute{}, aesKeyTmpl...),
		ck.Attribute{Type: ck.CKA_VALUE, Value: v}, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)}), more...))
	must(t, err)
	return h
}

// ecbBlock encrypts one zero block with key k (which must allow it).
func ecbBlock(t *testing.T, m *Module, s ck.SessionHandle, k ck.ObjectHandle) []byte {
	t.Helper()
	must(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_ECB}, k))
	out, _, err := m.Encrypt(s, make([]byte, 16), 16)
	must(t, err)
	return out
}

// Attack 1: T = wrap(T) xor wrap(N) xor N when both are wrapped under one
// caller-chosen GCM IV by a key the policy trusts to wrap T.
func TestGCMWrapKeystreamReuse(t *testing.T) {
	m, s := userSession(t)
	w := wrapOnlyKey(t, m, s)
	target := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32) // sensitive, extractable
	nVal := bytes.Repeat([]byte{0x42}, 32)
	known := knownKey(t, m, s, nVal)

	chosen := bytes.Repeat([]byte{7}, 12)
	_, _, err := m.WrapKey(s, gcmWrap(chosen), w, target, 1024)
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	_, _, err = m.WrapKey(s, gcmWrap(chosen), w, known, 1024)
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)

	// A zeroed buffer asks the token for the IV; the size query makes none.
	ivT, ivN := make([]byte, 12), make([]byte, 12)
	_, need, err := m.WrapKey(s, gcmWrap(ivT), w, target, -1)
	must(t, err)
	if !bytes.Equal(ivT, make([]byte, 12)) {
		t.Fatal("a size query made an IV")
	}
	_, _, err = m.WrapKey(s, gcmWrap(ivT), w, target, need-1)
	wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
	if !bytes.Equal(ivT, make([]byte, 12)) {
		t.Fatal("CKR_BUFFER_TOO_SMALL left a used IV in the caller's buffer")
	}
	wT, _, err := m.WrapKey(s, gcmWrap(ivT), w, target, need)
	must(t, err)
	wN, _, err := m.WrapKey(s, gcmWrap(ivN), w, known, need)
	must(t, err)
	if bytes.Equal(ivT, make([]byte, 12)) || bytes.Equal(ivT, ivN) {
		t.Fatalf("token IVs %x and %x: want fresh, distinct IVs", ivT, ivN)
	}
	cand := make([]byte, 32)
	for i := range cand {
		cand[i] = wT[i] ^ wN[i] ^ nVal[i]
	}
	if bytes.Equal(ecbBlock(t, m, s, knownKey(t, m, s, cand)), ecbBlock(t, m, s, target)) {
		t.Fatal("keystream reuse recovered the sensitive key")
	}

	// Generalisation: the same key, allowed to encrypt too, must not hand
	// out keystream under the IV a wrap returned: under a key that may
	// wrap sensitive keys every nonce is the token's, in every call.
	w2 := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32,
		ck.Attribute{Type: ck.CKA_EXTRACTABLE, Value: tb(false)}, ck.Attribute{Type: ck.CKA_WRAP, Value: tb(true)},
		ck.Attribute{Type: ck.CKA_ENCRYPT, Value: tb(true)}, ck.Attribute{Type: ck.CKA_DECRYPT, Value: tb(false)},
		ck.Attribute{Type: ck.CKA_UNWRAP, Value: tb(false)})
	iv := make([]byte, 12)
	_, _, err = m.WrapKey(s, gcmWrap(iv), w2, target, need)
	must(t, err)
	wantRV(t, m.EncryptInit(s, gcmWrap(bytes.Clone(iv)), w2), ck.CKR_MECHANISM_PARAM_INVALID)
	ctr := &ck.CTRParams{CounterBits: 32}
	ctr.CB[15] = 1
	wantRV(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_CTR, Param: ctr}, w2), ck.CKR_MECHANISM_PARAM_INVALID)
	fresh := make([]byte, 12)
	must(t, m.EncryptInit(s, gcmWrap(fresh), w2))
	if bytes.Equal(fresh, make([]byte, 12)) {
		t.Fatal("C_EncryptInit under a wrapping key made no IV")
	}
	_, _, err = m.Encrypt(s, []byte("x"), 64)
	must(t, err)
	// Message-based: only CKG_GENERATE_RANDOM over the whole IV.
	must(t, m.MessageEncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_GCM}, w2))
	for _, c := range []struct {
		gen   ck.GeneratorFunction
		fixed ck.ULong
		want  ck.RV
	}{{ck.CKG_NO_GENERATE, 0, ck.CKR_MECHANISM_PARAM_INVALID}, {ck.CKG_GENERATE_COUNTER, 32, ck.CKR_MECHANISM_PARAM_INVALID},
		{ck.CKG_GENERATE_RANDOM, 32, ck.CKR_MECHANISM_PARAM_INVALID}, {ck.CKG_GENERATE_RANDOM, 0, ck.CKR_OK}} {
		p := &ck.GCMMessageParams{IV: bytes.Clone(iv), IVFixedBits: c.fixed, IVGenerator: c.gen, Tag: make([]byte, 16), TagBits: 128}
		_, _, err := m.EncryptMessage(s, p, nil, []byte("known plaintext"), 64)
		wantRV(t, err, c.want)
	}
	must(t, m.MessageEncryptFinal(s))
	// An ordinary key (it may decrypt, so it may not wrap sensitive keys)
	// keeps taking the caller's IV.
	plain := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32)
	must(t, m.EncryptInit(s, gcmWrap(bytes.Clone(chosen)), plain))
}

// Attack 2: an HKDF salt key is HMAC's key; a key that may neither sign
// nor derive must not key HMAC over the caller's data.
func TestHKDFSaltKeyNeedsDerive(t *testing.T) {
	m, s := userSession(t)
	secret := func(kt ck.KeyType, more ...ck.Attribute) ck.ObjectHandle {
		h, err := m.CreateObject(s, append([]ck.Attribute{
			{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(kt))},
			{Type: ck.CKA_VALUE, Value: bytes.Repeat([]byte{3}, 32)},
		}, more...))
		must(t, err)
		return h
	}
	no := func(a ck.AttributeType) ck.Attribute { return ck.Attribute{Type: a, Value: tb(false)} }
	yes := func(a ck.AttributeType) ck.Attribute { return ck.Attribute{Type: a, Value: tb(true)} }
	victim := secret(ck.CKK_GENERIC_SECRET, yes(ck.CKA_SENSITIVE), no(ck.CKA_SIGN), no(ck.CKA_DERIVE))
	base := secret(ck.CKK_GENERIC_SECRET, yes(ck.CKA_DERIVE), no(ck.CKA_SENSITIVE))
	params := func(salt ck.ObjectHandle) *ck.HKDFParams {
		return &ck.HKDFParams{Extract: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_KEY, SaltKey: salt}
	}
	data := []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_DATA))}}
	for _, mt := range []ck.MechanismType{ck.CKM_HKDF_DATA, ck.CKM_HKDF_DERIVE} {
		var tmpl []ck.Attribute
		if mt == ck.CKM_HKDF_DATA {
			tmpl = data
		}
		_, err := m.DeriveKey(s, ck.Mechanism{Type: mt, Param: params(victim)}, base, tmpl)
		wantRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	}
	// Generalisations: the salt key's own mechanism list, its handle and
	// its type are checked like the base key's.
	listed := secret(ck.CKK_GENERIC_SECRET, yes(ck.CKA_DERIVE),
		ck.Attribute{Type: ck.CKA_ALLOWED_MECHANISMS, Value: ul(ck.ULong(ck.CKM_HKDF_DERIVE))})
	_, err := m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_HKDF_DATA, Param: params(listed)}, base, data)
	wantRV(t, err, ck.CKR_MECHANISM_INVALID)
	_, err = m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_HKDF_DATA, Param: params(9999)}, base, data)
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	aesKey := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32, yes(ck.CKA_DERIVE))
	_, err = m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_HKDF_DATA, Param: params(aesKey)}, base, data)
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	// Allowed, it works; the derived key's provenance is the weakest of
	// base and salt key (the salt key was imported: not ALWAYS_SENSITIVE).
	base2 := genSecret(t, m, s, ck.CKM_GENERIC_SECRET_KEY_GEN, 32, yes(ck.CKA_DERIVE), no(ck.CKA_EXTRACTABLE))
	k, err := m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_HKDF_DERIVE, Param: params(listed)}, base2,
		[]ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ul(32)}, no(ck.CKA_EXTRACTABLE)})
	must(t, err)
	if getAttr(t, m, s, k, ck.CKA_ALWAYS_SENSITIVE)[0] != 0 || getAttr(t, m, s, k, ck.CKA_NEVER_EXTRACTABLE)[0] != 0 {
		t.Fatal("a key derived with an imported salt key claims ALWAYS_SENSITIVE / NEVER_EXTRACTABLE")
	}
}

// Attack 3: CKA_ALLOWED_MECHANISMS binds wrapping, unwrapping and derive
// keys too.
func TestAllowedMechanismsEverywhere(t *testing.T) {
	m, s := userSession(t)
	only := func(mt ck.MechanismType) ck.Attribute {
		return ck.Attribute{Type: ck.CKA_ALLOWED_MECHANISMS, Value: ul(ck.ULong(mt))}
	}
	kw := ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP}
	kwp := ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP}
	kek := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32, only(ck.CKM_AES_KEY_WRAP_KWP))
	k := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	_, _, err := m.WrapKey(s, kw, kek, k, 1024)
	wantRV(t, err, ck.CKR_MECHANISM_INVALID)
	blob, _, err := m.WrapKey(s, kwp, kek, k, 1024)
	must(t, err)
	tmpl := append(append([]ck.Attribute{}, aesKeyTmpl...), ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	_, err = m.UnwrapKey(s, kw, kek, blob, tmpl)
	wantRV(t, err, ck.CKR_MECHANISM_INVALID)
	_, err = m.UnwrapKey(s, kwp, kek, blob, tmpl)
	must(t, err)
	base := genSecret(t, m, s, ck.CKM_GENERIC_SECRET_KEY_GEN, 32, ck.Attribute{Type: ck.CKA_DERIVE, Value: tb(true)}, only(ck.CKM_HKDF_DERIVE))
	_, err = m.DeriveKey(s, ck.Mechanism{Type: ck.CKM_HKDF_DATA, Param: &ck.HKDFParams{Extract: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_NULL}},
		base, []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_DATA))}})
	wantRV(t, err, ck.CKR_MECHANISM_INVALID)
	// Key size: an RSA key below CKM_RSA_PKCS_OAEP's floor cannot be made,
	// so the size rule is shown with the gate's table: the wrapping key's
	// code is CKR_WRAPPING_KEY_SIZE_RANGE.
	if useWrap.rule().badSize != ck.CKR_WRAPPING_KEY_SIZE_RANGE || useUnwrap.rule().badSize != ck.CKR_UNWRAPPING_KEY_SIZE_RANGE {
		t.Fatal("wrap and unwrap report key sizes with their own codes")
	}
}

// Raw RSA is both directions: a key that may sign but not decrypt must not
// become a decryption oracle through CKM_RSA_X_509, nor the reverse.
func TestRawRSANeedsSignAndDecrypt(t *testing.T) {
	m, s := userSession(t)
	pubT := []ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(false)}, {Type: ck.CKA_MODULUS_BITS, Value: ul(2048)}}
	raw := ck.Mechanism{Type: ck.CKM_RSA_X_509}
	_, signOnly := genPair(t, m, s, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, pubT, ck.Attribute{Type: ck.CKA_DECRYPT, Value: tb(false)})
	wantRV(t, m.SignInit(s, raw, signOnly), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	wantRV(t, m.MessageSignInit(s, raw, signOnly), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	must(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_SHA256_RSA_PKCS}, signOnly))
	_, _, err := m.Sign(s, []byte("x"), 512)
	must(t, err)
	_, decOnly := genPair(t, m, s, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, pubT, ck.Attribute{Type: ck.CKA_SIGN, Value: tb(false)})
	wantRV(t, m.DecryptInit(s, raw, decOnly), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	_, both := genPair(t, m, s, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, pubT)
	must(t, m.SignInit(s, raw, both))
	must(t, m.DecryptInit(s, raw, both))
}

// CKM_RSA_PKCS unwrapping rejects implicitly: no code tells a forged block
// from a good one.
func TestRSAPKCSUnwrapImplicitRejection(t *testing.T) {
	m, s := userSession(t)
	pub, priv := genPair(t, m, s, ck.CKM_RSA_PKCS_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(false)}, {Type: ck.CKA_MODULUS_BITS, Value: ul(2048)}})
	v := bytes.Repeat([]byte{0x11}, 16)
	k := knownKey(t, m, s, v)
	rsaPKCS := ck.Mechanism{Type: ck.CKM_RSA_PKCS}
	blob, _, err := m.WrapKey(s, rsaPKCS, pub, k, 512)
	must(t, err)
	tmpl := append(append([]ck.Attribute{}, aesKeyTmpl...),
		ck.Attribute{Type: ck.CKA_VALUE_LEN, Value: ul(16)}, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	good, err := m.UnwrapKey(s, rsaPKCS, priv, blob, tmpl)
	must(t, err)
	if !bytes.Equal(getAttr(t, m, s, good, ck.CKA_VALUE), v) {
		t.Fatal("unwrap of a good block")
	}
	bad := bytes.Clone(blob)
	bad[10] ^= 0x80
	f1, err := m.UnwrapKey(s, rsaPKCS, priv, bad, tmpl)
	must(t, err)
	f2, err := m.UnwrapKey(s, rsaPKCS, priv, bad, tmpl)
	must(t, err)
	v1, v2 := getAttr(t, m, s, f1, ck.CKA_VALUE), getAttr(t, m, s, f2, ck.CKA_VALUE)
	if bytes.Equal(v1, v) || !bytes.Equal(v1, v2) {
		t.Fatalf("forged block: %x then %x; want one synthetic key, not the real one", v1, v2)
	}
	// A message of another length is rejected the same way.
	tmpl24 := append(append([]ck.Attribute{}, aesKeyTmpl...),
		ck.Attribute{Type: ck.CKA_VALUE_LEN, Value: ul(24)}, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	f3, err := m.UnwrapKey(s, rsaPKCS, priv, blob, tmpl24)
	must(t, err)
	if v3 := getAttr(t, m, s, f3, ck.CKA_VALUE); bytes.HasPrefix(v3, v) {
		t.Fatal("a length mismatch released the key")
	}
	// Without a length there is no constant-time answer: refused first.
	_, err = m.UnwrapKey(s, rsaPKCS, priv, blob, aesKeyTmpl)
	wantRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
}

func TestDigestKeyRefusesWeakDigestsOfSensitiveKeys(t *testing.T) {
	m, s := userSession(t)
	sens := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16)
	open := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	for _, c := range []struct {
		mt   ck.MechanismType
		key  ck.ObjectHandle
		want ck.RV
	}{{ck.CKM_MD5, sens, ck.CKR_KEY_INDIGESTIBLE}, {ck.CKM_SHA_1, sens, ck.CKR_KEY_INDIGESTIBLE},
		{ck.CKM_SHA256, sens, ck.CKR_OK}, {ck.CKM_MD5, open, ck.CKR_OK}} {
		must(t, m.DigestInit(s, ck.Mechanism{Type: c.mt}))
		wantRV(t, m.DigestKey(s, c.key), c.want)
		_, _, err := m.DigestFinal(s, 64)
		if c.want != ck.CKR_OK {
			wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED) // the refusal ended it
		} else {
			must(t, err)
		}
	}
}

// Copying a sensitive or non-extractable key to CKA_PRIVATE false would put
// it under the store's public-object key, usable before login.
func TestSensitiveKeysStayPrivate(t *testing.T) {
	m, s := userSession(t)
	public := []ck.Attribute{{Type: ck.CKA_PRIVATE, Value: tb(false)}}
	for _, extra := range [][]ck.Attribute{nil, {{Type: ck.CKA_SENSITIVE, Value: tb(false)}, {Type: ck.CKA_EXTRACTABLE, Value: tb(false)}}} {
		k := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16, extra...)
		_, err := m.CopyObject(s, k, public)
		wantRV(t, err, ck.CKR_ATTRIBUTE_READ_ONLY)
		wantRV(t, m.SetAttributeValue(s, k, public), ck.CKR_ATTRIBUTE_READ_ONLY)
	}
	// Making the copy sensitive at the same time does not help.
	open := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	_, err := m.CopyObject(s, open, append(public, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(true)}))
	wantRV(t, err, ck.CKR_ATTRIBUTE_READ_ONLY)
	// A key that can be read anyway may be copied out of the private space.
	_, err = m.CopyObject(s, open, public)
	must(t, err)
}

// trust makes the SO mark key k CKA_TRUSTED; k must be a public object
// (the SO sees no private ones). The user is logged in again after.
func trust(t *testing.T, m *Module, s ck.SessionHandle, k ck.ObjectHandle) {
	t.Helper()
	must(t, m.Logout(s))
	must(t, m.Login(s, ck.CKU_SO, []byte(soPIN)))
	must(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_TRUSTED, Value: tb(true)}}))
	must(t, m.Logout(s))
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
}

// A trusted key that may decrypt cannot wrap sensitive keys, and what a
// trusted key unwraps is sensitive (Tookan's attacks with the SO's help).
func TestTrustedWrappingKeys(t *testing.T) {
	m, s := userSession(t)
	kw := ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP}
	mk := func(decrypt bool) ck.ObjectHandle {
		return genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32, ck.Attribute{Type: ck.CKA_PRIVATE, Value: tb(false)},
			ck.Attribute{Type: ck.CKA_DECRYPT, Value: tb(decrypt)}, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	}
	dec, transport := mk(true), mk(false)
	trust(t, m, s, dec)
	trust(t, m, s, transport)
	target := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32)
	_, _, err := m.WrapKey(s, kw, dec, target, 1024)
	wantRV(t, err, ck.CKR_KEY_NOT_WRAPPABLE)
	blob, _, err := m.WrapKey(s, kw, transport, target, 1024)
	must(t, err)
	_, err = m.UnwrapKey(s, kw, transport, blob, append(append([]ck.Attribute{}, aesKeyTmpl...), ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)}))
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	u, err := m.UnwrapKey(s, kw, transport, blob, aesKeyTmpl)
	must(t, err)
	res, err := m.GetAttributeValue(s, u, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_SENSITIVE)
	_ = res
}

// The raw block modes wrap secret keys zero-padded to the block, and unwrap
// them cut to CKA_VALUE_LEN or the key type's length (2.40 mechanisms).
func TestBlockModeWrap(t *testing.T) {
	m, s := userSession(t)
	aesKEK := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32)
	des3KEK := genSecret(t, m, s, ck.CKM_DES3_KEY_GEN, 0)
	gen20 := bytes.Repeat([]byte{0x5c}, 20)
	g, err := m.CreateObject(s, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))}, {Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_GENERIC_SECRET))},
		{Type: ck.CKA_VALUE, Value: gen20}, {Type: ck.CKA_SENSITIVE, Value: tb(false)},
	})
	must(t, err)
	aesIV, desIV := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 8)
	genTmpl := []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_GENERIC_SECRET))}, {Type: ck.CKA_SENSITIVE, Value: tb(false)}}
	for _, c := range []struct {
		mech ck.Mechanism
		kek  ck.ObjectHandle
		bs   int
	}{
		{ck.Mechanism{Type: ck.CKM_AES_ECB}, aesKEK, 16}, {ck.Mechanism{Type: ck.CKM_AES_CBC, Param: aesIV}, aesKEK, 16},
		{ck.Mechanism{Type: ck.CKM_DES3_ECB}, des3KEK, 8}, {ck.Mechanism{Type: ck.CKM_DES3_CBC, Param: desIV}, des3KEK, 8},
	} {
		blob, _, err := m.WrapKey(s, c.mech, c.kek, g, 1024)
		must(t, err)
		if len(blob) != (20+c.bs-1)/c.bs*c.bs {
			t.Fatalf("%v: %d bytes wrapped", c.mech.Type, len(blob))
		}
		u, err := m.UnwrapKey(s, c.mech, c.kek, blob, append(genTmpl, ck.Attribute{Type: ck.CKA_VALUE_LEN, Value: ul(20)}))
		must(t, err)
		if got := getAttr(t, m, s, u, ck.CKA_VALUE); !bytes.Equal(got, gen20) {
			t.Fatalf("%v: unwrapped %x", c.mech.Type, got)
		}
	}
	// Private keys travel only in mechanisms that frame them.
	_, ec := genPair(t, m, s, ck.CKM_EC_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(false)},
		{Type: ck.CKA_EC_PARAMS, Value: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}},
		ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	_, _, err = m.WrapKey(s, ck.Mechanism{Type: ck.CKM_AES_ECB}, aesKEK, ec, 4096)
	wantRV(t, err, ck.CKR_KEY_NOT_WRAPPABLE)
}

func TestStrictPolicy(t *testing.T) {
	st := NewMemoryStorage()
	cfg := DefaultConfig(st)
	cfg.KDFIterations, cfg.Policy = 10, PolicyStrict
	m, err := New(cfg)
	must(t, err)
	must(t, m.Initialize())
	t.Cleanup(func() { m.Finalize() })
	initToken(t, m)
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	pubT := []ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(false)}, {Type: ck.CKA_MODULUS_BITS, Value: ul(2048)}}
	pub, priv := genPair(t, m, s, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, pubT)
	wantRV(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_RSA_X_509}, priv), ck.CKR_MECHANISM_INVALID)
	wantRV(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_RSA_X_509}, pub), ck.CKR_MECHANISM_INVALID)
	wantRV(t, m.DecryptInit(s, ck.Mechanism{Type: ck.CKM_RSA_PKCS}, priv), ck.CKR_MECHANISM_INVALID)
	must(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_RSA_PKCS}, pub))
	kek := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32)
	k := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)})
	for _, mech := range []ck.Mechanism{{Type: ck.CKM_AES_ECB}, {Type: ck.CKM_AES_CBC, Param: make([]byte, 16)}, {Type: ck.CKM_AES_CBC_PAD, Param: make([]byte, 16)}} {
		_, _, err := m.WrapKey(s, mech, kek, k, 1024)
		wantRV(t, err, ck.CKR_MECHANISM_INVALID)
	}
	_, _, err = m.WrapKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP_KWP}, kek, k, 1024)
	must(t, err)
	sens := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16)
	must(t, m.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	wantRV(t, m.DigestKey(s, sens), ck.CKR_KEY_INDIGESTIBLE)
	_, err = m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ul(16)},
		{Type: ck.CKA_PRIVATE, Value: tb(false)}})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	if p, err := ParsePolicy("strict"); err != nil || p != PolicyStrict {
		t.Fatal("ParsePolicy")
	}
	if _, err := ParsePolicy("lax"); err == nil {
		t.Fatal("ParsePolicy accepted an unknown profile")
	}
}

// §5.2 and §5.8-§5.12: an operation used single-part stays so and one used
// multi-part stays so; crossing over is CKR_OPERATION_ACTIVE and ends it.
func TestSinglePartMultiPartCrossing(t *testing.T) {
	m, s := userSession(t)
	k := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16)
	ecb := ck.Mechanism{Type: ck.CKM_AES_ECB}
	block := make([]byte, 16)

	must(t, m.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	must(t, m.DigestUpdate(s, block))
	_, _, err := m.Digest(s, block, 64)
	wantRV(t, err, ck.CKR_OPERATION_ACTIVE)
	_, _, err = m.DigestFinal(s, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	must(t, m.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	_, _, err = m.Digest(s, block, -1) // a size query claims it single-part
	must(t, err)
	_, _, err = m.DigestFinal(s, 64)
	wantRV(t, err, ck.CKR_OPERATION_ACTIVE)
	wantRV(t, m.DigestUpdate(s, block), ck.CKR_OPERATION_NOT_INITIALIZED)

	must(t, m.EncryptInit(s, ecb, k))
	_, _, err = m.Encrypt(s, block, -1)
	must(t, err)
	_, _, err = m.EncryptUpdate(s, block, 64)
	wantRV(t, err, ck.CKR_OPERATION_ACTIVE)
	_, _, err = m.Encrypt(s, block, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	must(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_SHA256_HMAC}, genSecret(t, m, s, ck.CKM_GENERIC_SECRET_KEY_GEN, 32)))
	must(t, m.SignUpdate(s, block))
	_, _, err = m.Sign(s, block, 64)
	wantRV(t, err, ck.CKR_OPERATION_ACTIVE)
	_, _, err = m.SignFinal(s, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	// With nothing active there is no state to save.
	_, _, err = m.GetOperationState(s, -1)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, m.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	_, _, err = m.GetOperationState(s, -1)
	wantRV(t, err, ck.CKR_STATE_UNSAVEABLE)
}

// Every mechanism that takes a nonce says so, and every wrapping mechanism
// is wrap-safe by its declaration: deterministic, a block-chaining IV, or
// a nonce the token makes (it must say where the nonce is).
func TestMechanismsDeclareWrapSafety(t *testing.T) {
	for _, p := range []*ck.Profile{ck.DefaultProfile} {
		reg := mech.New(p)
		for _, mt := range reg.List() {
			mm, _ := reg.Mechanism(mt)
			switch ck.ParamKindOf(mt) {
			case ck.ParamGCM, ck.ParamCCM, ck.ParamCTR, ck.ParamChaCha20Poly1305:
				if mm.Encrypt != nil && (mm.IV != mech.IVNonce || mm.Nonce == nil) {
					t.Errorf("%v takes a nonce but does not declare IVNonce with its Nonce", mt)
				}
			}
			if mm.IV == mech.IVNonce && mm.Nonce == nil {
				t.Errorf("%v: IVNonce without Nonce", mt)
			}
			if mm.Info.Flags&(ck.CKF_WRAP|ck.CKF_UNWRAP) != 0 && mm.WrapPad > 0 && mm.IV == mech.IVNonce {
				t.Errorf("%v pads keys for a nonce mode", mt)
			}
			if mm.MessageEncrypt != nil && mm.Info.Flags&ck.CKF_WRAP != 0 && mm.MessageNonceByToken == nil {
				t.Errorf("%v wraps and encrypts messages but cannot tell a token nonce", mt)
			}
		}
	}
}

// Each key type's secret attributes (mech.KeyKind.Secret) are the ones the
// attribute policy table marks Sensitive, so what is sealed at rest and
// what C_GetAttributeValue refuses are the same set.
func TestKeyKindSecretsMatchPolicy(t *testing.T) {
	m, _ := newModule(t)
	reg := m.Registry()
	checked := 0
	for _, cls := range []ck.ObjectClass{ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY} {
		for _, kt := range keyTypesOf(reg) {
			kk, _ := reg.KeyKind(kt)
			// The kind's parser tells whether the class is one it makes:
			// a missing value (incomplete), not a wrong class.
			if _, err := kk.Parse(cls, nil); errors.Is(err, ck.CKR_TEMPLATE_INCONSISTENT) {
				continue
			}
			checked++
			policy := attr.SensitiveFor(cls, kt, m.ecLikeKeyTypes())
			var want []ck.AttributeType
			for _, a := range kk.Secret {
				if attr.Lookup(a, cls, kt, m.ecLikeKeyTypes()) != nil {
					want = append(want, a)
				}
			}
			for _, a := range want {
				if !containsType(policy, a) {
					t.Errorf("%v %v: %v is secret for the key kind but not Sensitive in the policy table", cls, kt, a)
				}
			}
			for _, a := range policy {
				if !containsType(kk.Secret, a) {
					t.Errorf("%v %v: %v is Sensitive in the policy table but the key kind does not seal it", cls, kt, a)
				}
			}
		}
	}
	if checked < 15 {
		t.Fatalf("only %d key kinds checked", checked)
	}
}

func keyTypesOf(reg *mech.Registry) []ck.KeyType {
	var out []ck.KeyType
	for kt := ck.KeyType(0); kt < 0x100; kt++ {
		if _, ok := reg.KeyKind(kt); ok {
			out = append(out, kt)
		}
	}
	for _, name := range []string{"CKK_SM2", "CKK_SM4"} {
		if kt, ok := reg.Profile.KeyType(name); ok {
			out = append(out, kt)
		}
	}
	return out
}

func containsType(list []ck.AttributeType, a ck.AttributeType) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// A stored key that lacks its policy attributes (a damaged or forged
// record) fails closed: no CKA_SENSITIVE reads as sensitive, no
// CKA_EXTRACTABLE as unextractable, no CKA_COPYABLE / CKA_MODIFIABLE /
// CKA_DESTROYABLE as false, no CKA_WRAP_WITH_TRUSTED as true.
func TestMissingPolicyAttributesFailClosed(t *testing.T) {
	m, st := newModule(t)
	initToken(t, m)
	tok := m.slots[0]
	stores, err := st.Stores()
	must(t, err)
	clear := []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_TOKEN, Value: tb(true)},
		{Type: ck.CKA_PRIVATE, Value: tb(false)},
		{Type: ck.CKA_LABEL, Value: []byte("bare")},
		{Type: ck.CKA_ENCRYPT, Value: tb(true)},
	}
	id, err := stores[0].NewObjectID()
	must(t, err)
	sealed := sealAttrs(tok.rec.PublicKey, id, false, clear, attr.Template{{Type: ck.CKA_VALUE, Value: bytes.Repeat([]byte{9}, 16)}})
	must(t, stores[0].Commit(&Change{Put: []*ObjectRecord{{ID: id, Private: false, Attrs: clear, Sealed: sealed}}}))
	m.Finalize()
	m2 := startModule(t, st)
	s := openRW(t, m2, 0)
	must(t, m2.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("bare")}}))
	hs, err := m2.FindObjects(s, 2)
	must(t, err)
	must(t, m2.FindObjectsFinal(s))
	if len(hs) != 1 {
		t.Fatalf("found %d", len(hs))
	}
	k := hs[0]
	_, err = m2.GetAttributeValue(s, k, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_SENSITIVE)
	_, err = m2.CopyObject(s, k, nil)
	wantRV(t, err, ck.CKR_ACTION_PROHIBITED)
	wantRV(t, m2.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("x")}}), ck.CKR_ACTION_PROHIBITED)
	wantRV(t, m2.DestroyObject(s, k), ck.CKR_ACTION_PROHIBITED)
	must(t, m2.Login(s, ck.CKU_USER, []byte(userPIN)))
	w := wrapOnlyKey(t, m2, s)
	_, _, err = m2.WrapKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP}, w, k, 1024)
	wantRV(t, err, ck.CKR_KEY_UNEXTRACTABLE)
	// Still usable for what it explicitly allows.
	ecbBlock(t, m2, s, k)
}

// Changing a clear attribute around a sealed blob (what an attacker with
// the store file, but not the token key, could do) makes the key
// unusable, not readable: the seal binds the clear attributes.
func TestSealBindsClearAttributes(t *testing.T) {
	m, st := newModule(t)
	initToken(t, m)
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	_, err := m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ul(16)},
		{Type: ck.CKA_TOKEN, Value: tb(true)}, {Type: ck.CKA_LABEL, Value: []byte("bound")}})
	must(t, err)
	m.Finalize()
	stores, err := st.Stores()
	must(t, err)
	var rec *ObjectRecord
	must(t, stores[0].Objects(func(r *ObjectRecord) error {
		if v, _ := attr.Template(r.Attrs).Get(ck.CKA_LABEL); string(v) == "bound" {
			rec = r
		}
		return nil
	}))
	if rec == nil || len(rec.Sealed) == 0 {
		t.Fatal("no sealed record")
	}
	forged := *rec
	forged.Attrs = attr.Template(rec.Attrs).Clone()
	for i := range forged.Attrs {
		if forged.Attrs[i].Type == ck.CKA_SENSITIVE {
			forged.Attrs[i].Value = tb(false)
		}
	}
	must(t, stores[0].Commit(&Change{Put: []*ObjectRecord{&forged}}))
	m2 := startModule(t, st)
	s2 := openRW(t, m2, 0)
	must(t, m2.Login(s2, ck.CKU_USER, []byte(userPIN)))
	must(t, m2.FindObjectsInit(s2, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("bound")}}))
	hs, err := m2.FindObjects(s2, 2)
	must(t, err)
	must(t, m2.FindObjectsFinal(s2))
	if len(hs) != 1 {
		t.Fatalf("found %d", len(hs))
	}
	_, err = m2.GetAttributeValue(s2, hs[0], []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	wantRV(t, m2.EncryptInit(s2, ck.Mechanism{Type: ck.CKM_AES_ECB}, hs[0]), ck.CKR_DEVICE_ERROR)
}
