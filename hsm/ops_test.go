package hsm

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

var p256Params = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

func genSecret(t testing.TB, m *Module, s ck.SessionHandle, mt ck.MechanismType, n int, extra ...ck.Attribute) ck.ObjectHandle {
	t.Helper()
	tmpl := []ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(false)}}
	if n > 0 {
		tmpl = append(tmpl, ck.Attribute{Type: ck.CKA_VALUE_LEN, Value: ul(ck.ULong(n))})
	}
	h, err := m.GenerateKey(s, ck.Mechanism{Type: mt}, append(tmpl, extra...))
	must(t, err)
	return h
}

func genPair(t testing.TB, m *Module, s ck.SessionHandle, mt ck.MechanismType, pub []ck.Attribute, privExtra ...ck.Attribute) (ck.ObjectHandle, ck.ObjectHandle) {
	t.Helper()
	p, k, err := m.GenerateKeyPair(s, ck.Mechanism{Type: mt}, pub, append([]ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(false)}}, privExtra...))
	must(t, err)
	return p, k
}

type cipherCase struct {
	name  string
	mech  ck.Mechanism
	key   func(testing.TB, *Module, ck.SessionHandle) (enc, dec ck.ObjectHandle)
	input []byte
	multi bool
}

func cipherCases() []cipherCase {
	aes := func(n int) func(testing.TB, *Module, ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
		return func(t testing.TB, m *Module, s ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
			k := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, n)
			return k, k
		}
	}
	des3 := func(t testing.TB, m *Module, s ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
		k := genSecret(t, m, s, ck.CKM_DES3_KEY_GEN, 0)
		return k, k
	}
	rsa := func(t testing.TB, m *Module, s ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
		return genPair(t, m, s, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_MODULUS_BITS, Value: ul(2048)}})
	}
	iv := bytes.Repeat([]byte{7}, 16)
	data := bytes.Repeat([]byte("gohsm-data-"), 9) // 99 bytes
	return []cipherCase{
		{"AES-ECB", ck.Mechanism{Type: ck.CKM_AES_ECB}, aes(32), data[:96], true},
		{"AES-CBC", ck.Mechanism{Type: ck.CKM_AES_CBC, Param: iv}, aes(16), data[:96], true},
		{"AES-CBC-PAD", ck.Mechanism{Type: ck.CKM_AES_CBC_PAD, Param: iv}, aes(24), data, true},
		{"AES-CTR", ck.Mechanism{Type: ck.CKM_AES_CTR, Param: &ck.CTRParams{CounterBits: 64, CB: [16]byte{1, 2, 3}}}, aes(32), data, true},
		{"AES-GCM", ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: iv[:12], AAD: []byte("aad"), TagBits: 128}}, aes(32), data, true},
		{"AES-GCM-tag96", ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: iv[:12], TagBits: 96}}, aes(16), data, true},
		{"DES3-CBC-PAD", ck.Mechanism{Type: ck.CKM_DES3_CBC_PAD, Param: iv[:8]}, des3, data, true},
		{"RSA-PKCS", ck.Mechanism{Type: ck.CKM_RSA_PKCS}, rsa, data[:40], false},
		{"RSA-OAEP-SHA256", ck.Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Param: &ck.RSAOAEPParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED, SourceData: []byte("label")}}, rsa, data[:40], false},
	}
}

// TestCipherSemantics drives every cipher through the Module API: size
// queries, short buffers that keep the operation, one-shot and multi-part
// agreement, and the operation ending as §5.2 says.
func TestCipherSemantics(t *testing.T) {
	for _, c := range cipherCases() {
		t.Run(c.name, func(t *testing.T) {
			m, s := userSession(t)
			ek, dk := c.key(t, m, s)
			must(t, m.EncryptInit(s, c.mech, ek))
			wantRV(t, m.EncryptInit(s, c.mech, ek), ck.CKR_OPERATION_ACTIVE)
			_, need, err := m.Encrypt(s, c.input, -1)
			must(t, err)
			if need < len(c.input) {
				t.Fatalf("size query %d for %d bytes", need, len(c.input))
			}
			_, need2, err := m.Encrypt(s, c.input, 1)
			wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
			if need2 > need {
				t.Fatalf("too-small answer %d exceeds the bound %d", need2, need)
			}
			ct, _, err := m.Encrypt(s, c.input, need)
			must(t, err)
			_, _, err = m.Encrypt(s, c.input, need)
			wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

			must(t, m.DecryptInit(s, c.mech, dk))
			pt, _, err := m.Decrypt(s, ct, len(ct)+16)
			must(t, err)
			if !bytes.Equal(pt, c.input) {
				t.Fatal("round trip failed")
			}
			if !c.multi {
				return
			}
			// Multi-part in uneven pieces equals one-shot (CBC/ECB
			// inputs are block multiples, pieces need not be).
			var mp []byte
			// A single-part call cannot finish a multi-part operation,
			// and the refusal ends it (§5.2, §5.8).
			must(t, m.EncryptInit(s, c.mech, ek))
			_, _, err = m.EncryptUpdate(s, c.input[:5], 4096)
			must(t, err)
			_, err = func() ([]byte, error) { o, _, e := m.Encrypt(s, c.input, 4096); return o, e }()
			wantRV(t, err, ck.CKR_OPERATION_ACTIVE)
			_, _, err = m.EncryptFinal(s, -1)
			wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
			must(t, m.EncryptInit(s, c.mech, ek))
			mp = nil
			for _, part := range [][]byte{c.input[:5], c.input[5:37], c.input[37:]} {
				out, _, err := m.EncryptUpdate(s, part, 4096)
				must(t, err)
				mp = append(mp, out...)
			}
			_, fneed, err := m.EncryptFinal(s, -1)
			must(t, err)
			if fneed > 0 {
				_, _, err = m.EncryptFinal(s, fneed-1)
				wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
			}
			out, _, err := m.EncryptFinal(s, fneed)
			must(t, err)
			mp = append(mp, out...)
			if !bytes.Equal(mp, ct) && c.mech.Type != ck.CKM_RSA_PKCS {
				t.Fatalf("multi-part ciphertext differs from one-shot")
			}
			must(t, m.DecryptInit(s, c.mech, dk))
			var back []byte
			for _, part := range [][]byte{mp[:3], mp[3:50], mp[50:]} {
				out, _, err := m.DecryptUpdate(s, part, 4096)
				must(t, err)
				back = append(back, out...)
			}
			out, _, err = m.DecryptFinal(s, 4096)
			must(t, err)
			back = append(back, out...)
			if !bytes.Equal(back, c.input) {
				t.Fatal("multi-part decrypt failed")
			}
		})
	}
}

func TestDecryptErrorEndsOperation(t *testing.T) {
	m, s := userSession(t)
	k := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32)
	mt := ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	must(t, m.EncryptInit(s, mt, k))
	ct, _, err := m.Encrypt(s, []byte("attack at dawn"), 100)
	must(t, err)
	ct[0] ^= 1
	must(t, m.DecryptInit(s, mt, k))
	_, _, err = m.Decrypt(s, ct, 100)
	wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
	_, _, err = m.Decrypt(s, ct, 100)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
}

type signCase struct {
	name string
	mech ck.Mechanism
	key  func(testing.TB, *Module, ck.SessionHandle) (sign, verify ck.ObjectHandle)
	data []byte
	// multi: the mechanism hashes, so Update/Final apply.
	multi bool
}

func signCases() []signCase {
	ec := func(t testing.TB, m *Module, s ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
		p, k := genPair(t, m, s, ck.CKM_EC_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}})
		return k, p
	}
	rsa := func(t testing.TB, m *Module, s ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
		p, k := genPair(t, m, s, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_MODULUS_BITS, Value: ul(2048)}})
		return k, p
	}
	hmac := func(t testing.TB, m *Module, s ck.SessionHandle) (ck.ObjectHandle, ck.ObjectHandle) {
		k := genSecret(t, m, s, ck.CKM_GENERIC_SECRET_KEY_GEN, 32)
		return k, k
	}
	digest := sha256.Sum256([]byte("message"))
	msg := bytes.Repeat([]byte("message-"), 40)
	return append([]signCase{
		{"ECDSA", ck.Mechanism{Type: ck.CKM_ECDSA}, ec, digest[:], false},
		{"ECDSA-SHA256", ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, ec, msg, true},
		{"ECDSA-SHA384", ck.Mechanism{Type: ck.CKM_ECDSA_SHA384}, ec, msg, true},
		{"SHA256-RSA-PKCS", ck.Mechanism{Type: ck.CKM_SHA256_RSA_PKCS}, rsa, msg, true},
		{"SHA256-RSA-PSS", ck.Mechanism{Type: ck.CKM_SHA256_RSA_PKCS_PSS, Param: &ck.RSAPSSParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32}}, rsa, msg, true},
		{"RSA-PSS", ck.Mechanism{Type: ck.CKM_RSA_PKCS_PSS, Param: &ck.RSAPSSParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32}}, rsa, digest[:], false},
		{"HMAC-SHA256", ck.Mechanism{Type: ck.CKM_SHA256_HMAC}, hmac, msg, true},
	}, signCases3()...)
}

func TestSignSemantics(t *testing.T) {
	for _, c := range signCases() {
		t.Run(c.name, func(t *testing.T) {
			m, s := userSession(t)
			sk, vk := c.key(t, m, s)
			must(t, m.SignInit(s, c.mech, sk))
			_, need, err := m.Sign(s, c.data, -1)
			must(t, err)
			_, need2, err := m.Sign(s, c.data, need-1)
			wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
			if need2 != need {
				t.Fatalf("size %d then %d", need, need2)
			}
			sig, _, err := m.Sign(s, c.data, need)
			must(t, err)
			must(t, m.VerifyInit(s, c.mech, vk))
			must(t, m.Verify(s, c.data, sig))
			bad := append([]byte{}, sig...)
			bad[len(bad)/2] ^= 0x40
			must(t, m.VerifyInit(s, c.mech, vk))
			wantRV(t, m.Verify(s, c.data, bad), ck.CKR_SIGNATURE_INVALID)
			wantRV(t, m.Verify(s, c.data, sig), ck.CKR_OPERATION_NOT_INITIALIZED)
			if !c.multi {
				must(t, m.SignInit(s, c.mech, sk))
				wantRV(t, m.SignUpdate(s, c.data), ck.CKR_FUNCTION_NOT_SUPPORTED)
				_, _, err = m.SignFinal(s, 1024)
				wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
				return
			}
			must(t, m.SignInit(s, c.mech, sk))
			must(t, m.SignUpdate(s, c.data[:10]))
			_, _, err = m.Sign(s, c.data, 1024)
			wantRV(t, err, ck.CKR_OPERATION_ACTIVE)
			wantRV(t, m.SignUpdate(s, c.data[10:]), ck.CKR_OPERATION_NOT_INITIALIZED)
			must(t, m.SignInit(s, c.mech, sk))
			must(t, m.SignUpdate(s, c.data[:10]))
			must(t, m.SignUpdate(s, c.data[10:]))
			sig2, _, err := m.SignFinal(s, 1024)
			must(t, err)
			must(t, m.VerifyInit(s, c.mech, vk))
			must(t, m.VerifyUpdate(s, c.data[:100]))
			must(t, m.VerifyUpdate(s, c.data[100:]))
			must(t, m.VerifyFinal(s, sig2))
		})
	}
}

func TestKeyUsageEnforced(t *testing.T) {
	m, s := userSession(t)
	p, k := genPair(t, m, s, ck.CKM_EC_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}, {Type: ck.CKA_VERIFY, Value: tb(false)}},
		ck.Attribute{Type: ck.CKA_SIGN, Value: tb(false)})
	wantRV(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, k), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	wantRV(t, m.VerifyInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, p), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	aes := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16, ck.Attribute{Type: ck.CKA_ENCRYPT, Value: tb(false)})
	wantRV(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_ECB}, aes), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	// Wrong key type for the mechanism.
	must(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_SIGN, Value: tb(true)}}))
	wantRV(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_SHA256_RSA_PKCS}, k), ck.CKR_KEY_TYPE_INCONSISTENT)
	// A mechanism outside CKA_ALLOWED_MECHANISMS.
	_, k2 := genPair(t, m, s, ck.CKM_EC_KEY_PAIR_GEN,
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}},
		ck.Attribute{Type: ck.CKA_ALLOWED_MECHANISMS, Value: ul(ck.ULong(ck.CKM_ECDSA_SHA256))})
	must(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, k2))
	wantRV(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, k2), ck.CKR_OPERATION_ACTIVE)
	must(t, m.SessionCancel(s, ck.CKF_SIGN))
	wantRV(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, k2), ck.CKR_MECHANISM_INVALID)
}

func TestGeneratedKeyBookkeeping(t *testing.T) {
	m, s := userSession(t)
	k := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32)
	for _, c := range []struct {
		a    ck.AttributeType
		want byte
	}{{ck.CKA_LOCAL, 1}, {ck.CKA_SENSITIVE, 1}, {ck.CKA_ALWAYS_SENSITIVE, 1}, {ck.CKA_EXTRACTABLE, 1}, {ck.CKA_NEVER_EXTRACTABLE, 0}} {
		if got := getAttr(t, m, s, k, c.a); len(got) != 1 || got[0] != c.want {
			t.Errorf("%v = %v, want %d", c.a, got, c.want)
		}
	}
	if got := getAttr(t, m, s, k, ck.CKA_KEY_GEN_MECHANISM); !bytes.Equal(got, ul(ck.ULong(ck.CKM_AES_KEY_GEN))) {
		t.Errorf("CKA_KEY_GEN_MECHANISM %x", got)
	}
	_, err := m.GetAttributeValue(s, k, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_SENSITIVE)
	// Generation templates may not carry what generation computes.
	_, err = m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_VALUE_LEN, Value: ul(16)}, {Type: ck.CKA_VALUE, Value: make([]byte, 16)}})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_VALUE_LEN, Value: ul(16)}, {Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_PUBLIC_KEY))}})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, nil)
	wantRV(t, err, ck.CKR_MECHANISM_INVALID)
}

func TestLogoutEndsPrivateOperations(t *testing.T) {
	m, s := userSession(t)
	_, k := genPair(t, m, s, ck.CKM_EC_KEY_PAIR_GEN, []ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256Params}})
	must(t, m.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, k))
	must(t, m.Logout(s))
	_, _, err := m.Sign(s, []byte("x"), 100)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
}

func TestDigestSemantics(t *testing.T) {
	m, s := userSession(t)
	must(t, m.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	_, need, err := m.Digest(s, []byte("abc"), -1)
	must(t, err)
	if need != 32 {
		t.Fatalf("SHA-256 size %d", need)
	}
	_, _, err = m.Digest(s, []byte("abc"), 31)
	wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
	d, _, err := m.Digest(s, []byte("abc"), 32)
	must(t, err)
	want := sha256.Sum256([]byte("abc"))
	if !bytes.Equal(d, want[:]) {
		t.Fatal("digest wrong")
	}
	must(t, m.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	must(t, m.DigestUpdate(s, []byte("a")))
	must(t, m.DigestUpdate(s, []byte("bc")))
	d, _, err = m.DigestFinal(s, 64)
	must(t, err)
	if !bytes.Equal(d, want[:]) {
		t.Fatal("multi-part digest wrong")
	}
}

func TestGenerateRandom(t *testing.T) {
	m, s := userSession(t)
	a, err := m.GenerateRandom(s, 32)
	must(t, err)
	b, err := m.GenerateRandom(s, 32)
	must(t, err)
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Fatal("random is not random")
	}
	wantRV(t, m.SeedRandom(s, []byte("seed")), ck.CKR_RANDOM_SEED_NOT_SUPPORTED)
}
