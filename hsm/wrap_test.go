package hsm

import (
	"bytes"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// wrapOnlyKey generates an AES key that may wrap sensitive keys under the
// policy of wrap.go: local, never extractable, no decrypt or unwrap.
func wrapOnlyKey(t *testing.T, m *Module, s ck.SessionHandle) ck.ObjectHandle {
	t.Helper()
	return genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32,
		ck.Attribute{Type: ck.CKA_EXTRACTABLE, Value: tb(false)},
		ck.Attribute{Type: ck.CKA_WRAP, Value: tb(true)},
		ck.Attribute{Type: ck.CKA_ENCRYPT, Value: tb(false)},
		ck.Attribute{Type: ck.CKA_DECRYPT, Value: tb(false)},
		ck.Attribute{Type: ck.CKA_UNWRAP, Value: tb(false)})
}

func TestWrapUnwrapRoundTrip(t *testing.T) {
	m, s := userSession(t)
	value := bytes.Repeat([]byte{0x5a}, 32)
	// A non-sensitive, extractable key can be wrapped by any wrapping key.
	k, err := m.CreateObject(s, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_VALUE, Value: value},
		{Type: ck.CKA_SENSITIVE, Value: tb(false)},
	})
	must(t, err)
	kek := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32)
	for _, mt := range []ck.MechanismType{ck.CKM_AES_KEY_WRAP, ck.CKM_AES_KEY_WRAP_KWP, ck.CKM_AES_KEY_WRAP_PAD} {
		_, need, err := m.WrapKey(s, ck.Mechanism{Type: mt}, kek, k, -1)
		must(t, err)
		_, _, err = m.WrapKey(s, ck.Mechanism{Type: mt}, kek, k, need-9)
		wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
		blob, _, err := m.WrapKey(s, ck.Mechanism{Type: mt}, kek, k, need)
		must(t, err)
		if bytes.Contains(blob, value[:8]) {
			t.Fatalf("%v: key value visible in the wrapped blob", mt)
		}
		tmpl := []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
			{Type: ck.CKA_SENSITIVE, Value: tb(false)},
		}
		u, err := m.UnwrapKey(s, ck.Mechanism{Type: mt}, kek, blob, tmpl)
		must(t, err)
		if !bytes.Equal(getAttr(t, m, s, u, ck.CKA_VALUE), value) {
			t.Fatalf("%v: unwrapped value differs", mt)
		}
		if getAttr(t, m, s, u, ck.CKA_LOCAL)[0] != 0 {
			t.Fatalf("%v: unwrapped key claims CKA_LOCAL", mt)
		}
		blob[len(blob)-1] ^= 1
		_, err = m.UnwrapKey(s, ck.Mechanism{Type: mt}, kek, blob, tmpl)
		wantRV(t, err, ck.CKR_WRAPPED_KEY_INVALID)
	}
}

// TestTookanAttacksFail replays the attacks of Bortolozzo et al. (CCS
// 2010) against the wrap policy.
func TestTookanAttacksFail(t *testing.T) {
	m, s := userSession(t)
	secret := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32) // sensitive by default
	aes := ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP}

	// 1. Wrap the sensitive key under a key whose value the attacker knows.
	known, err := m.CreateObject(s, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_VALUE, Value: make([]byte, 32)},
		{Type: ck.CKA_WRAP, Value: tb(true)},
	})
	must(t, err)
	_, _, err = m.WrapKey(s, aes, known, secret, 1024)
	wantRV(t, err, ck.CKR_KEY_NOT_WRAPPABLE)

	// 2. Wrap with a key that can also decrypt, then decrypt the blob.
	both := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32, ck.Attribute{Type: ck.CKA_EXTRACTABLE, Value: tb(false)})
	_, _, err = m.WrapKey(s, aes, both, secret, 1024)
	wantRV(t, err, ck.CKR_KEY_NOT_WRAPPABLE)

	// 3. A proper wrap-only key cannot be copied or changed into a
	// decryption key.
	w := wrapOnlyKey(t, m, s)
	blob, _, err := m.WrapKey(s, aes, w, secret, 1024)
	must(t, err)
	_, err = m.CopyObject(s, w, []ck.Attribute{{Type: ck.CKA_DECRYPT, Value: tb(true)}, {Type: ck.CKA_WRAP, Value: tb(false)}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_READ_ONLY)
	wantRV(t, m.SetAttributeValue(s, w, []ck.Attribute{{Type: ck.CKA_DECRYPT, Value: tb(true)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
	wantRV(t, m.SetAttributeValue(s, w, []ck.Attribute{{Type: ck.CKA_UNWRAP, Value: tb(true)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
	wantRV(t, m.DecryptInit(s, ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP}, w), ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
	_, err = m.UnwrapKey(s, aes, w, blob, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_SENSITIVE, Value: tb(false)},
	})
	wantRV(t, err, ck.CKR_KEY_FUNCTION_NOT_PERMITTED)

	// 4. A key unwrapped from attacker-chosen bytes (its value is known)
	// is not local, so it cannot wrap the sensitive key either.
	kek := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32, ck.Attribute{Type: ck.CKA_DECRYPT, Value: tb(false)})
	must(t, m.EncryptInit(s, aes, kek))
	chosen, _, err := m.Encrypt(s, make([]byte, 32), 1024)
	must(t, err)
	imported, err := m.UnwrapKey(s, aes, kek, chosen, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_WRAP, Value: tb(true)},
		{Type: ck.CKA_DECRYPT, Value: tb(false)},
		{Type: ck.CKA_UNWRAP, Value: tb(false)},
		{Type: ck.CKA_EXTRACTABLE, Value: tb(false)},
	})
	must(t, err)
	_, _, err = m.WrapKey(s, aes, imported, secret, 1024)
	wantRV(t, err, ck.CKR_KEY_NOT_WRAPPABLE)

	// 5. Non-extractable keys are never wrapped; WRAP_WITH_TRUSTED needs
	// a trusted wrapping key.
	fixed := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16, ck.Attribute{Type: ck.CKA_EXTRACTABLE, Value: tb(false)})
	_, _, err = m.WrapKey(s, aes, w, fixed, 1024)
	wantRV(t, err, ck.CKR_KEY_UNEXTRACTABLE)
	guarded := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16, ck.Attribute{Type: ck.CKA_WRAP_WITH_TRUSTED, Value: tb(true)})
	_, _, err = m.WrapKey(s, aes, w, guarded, 1024)
	wantRV(t, err, ck.CKR_KEY_NOT_WRAPPABLE)
}

// TestWrapAndUnwrapTemplates: CKA_WRAP_TEMPLATE limits what a key may wrap,
// CKA_UNWRAP_TEMPLATE imposes attributes on what it unwraps (§4.8-4.10).
func TestWrapAndUnwrapTemplates(t *testing.T) {
	m, s := userSession(t)
	onlyLabelled := attr.EncodeTemplate([]ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("exportable")}})
	kek := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 32,
		ck.Attribute{Type: ck.CKA_WRAP_TEMPLATE, Value: onlyLabelled},
		ck.Attribute{Type: ck.CKA_UNWRAP_TEMPLATE, Value: attr.EncodeTemplate([]ck.Attribute{
			{Type: ck.CKA_EXTRACTABLE, Value: tb(false)}})})
	plain := func(label string) ck.ObjectHandle {
		return genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)},
			ck.Attribute{Type: ck.CKA_LABEL, Value: []byte(label)})
	}
	aes := ck.Mechanism{Type: ck.CKM_AES_KEY_WRAP}
	_, _, err := m.WrapKey(s, aes, kek, plain("other"), 1024)
	wantRV(t, err, ck.CKR_KEY_NOT_WRAPPABLE)
	blob, _, err := m.WrapKey(s, aes, kek, plain("exportable"), 1024)
	must(t, err)
	base := []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
	}
	_, err = m.UnwrapKey(s, aes, kek, blob, append(base, ck.Attribute{Type: ck.CKA_EXTRACTABLE, Value: tb(true)}))
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	u, err := m.UnwrapKey(s, aes, kek, blob, base)
	must(t, err)
	if getAttr(t, m, s, u, ck.CKA_EXTRACTABLE)[0] != 0 {
		t.Fatal("CKA_UNWRAP_TEMPLATE was not imposed")
	}
	// Nested templates and malformed encodings are refused at creation.
	_, err = m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ul(16)},
		{Type: ck.CKA_WRAP_TEMPLATE, Value: attr.EncodeTemplate([]ck.Attribute{{Type: ck.CKA_WRAP_TEMPLATE, Value: onlyLabelled}})}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ul(16)},
		{Type: ck.CKA_WRAP_TEMPLATE, Value: []byte{1, 2, 3}}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
}
