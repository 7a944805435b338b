package hsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestObjectAccessRules(t *testing.T) {
	m, _ := newModule(t)
	initToken(t, m)
	ro, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	must(t, err)
	rw := openRW(t, m, 0)

	// R/O sessions create session objects but not token objects.
	_, err = m.CreateObject(ro, dataTemplate("t", true, false))
	wantRV(t, err, ck.CKR_SESSION_READ_ONLY)
	sessObj, err := m.CreateObject(ro, dataTemplate("s", false, false))
	must(t, err)
	// Private objects need the user.
	_, err = m.CreateObject(rw, dataTemplate("p", true, true))
	wantRV(t, err, ck.CKR_USER_NOT_LOGGED_IN)
	pub, err := m.CreateObject(rw, dataTemplate("pub", true, false))
	must(t, err)

	must(t, m.Login(rw, ck.CKU_USER, []byte(userPIN)))
	priv, err := m.CreateObject(rw, dataTemplate("p", true, true))
	must(t, err)
	// R/O user session still cannot destroy or modify token objects.
	wantRV(t, m.DestroyObject(ro, pub), ck.CKR_SESSION_READ_ONLY)
	wantRV(t, m.SetAttributeValue(ro, pub, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("x")}}), ck.CKR_SESSION_READ_ONLY)
	must(t, m.Logout(rw))

	// Private objects are invisible before login: to find and to handles.
	must(t, m.FindObjectsInit(rw, nil))
	hs, err := m.FindObjects(rw, 100)
	must(t, err)
	must(t, m.FindObjectsFinal(rw))
	for _, h := range hs {
		if h == priv {
			t.Fatal("private object found before login")
		}
	}
	if len(hs) != 2 {
		t.Fatalf("public search found %d objects, want 2 (token and session data)", len(hs))
	}
	_, err = m.GetAttributeValue(rw, priv, []ck.AttributeRequest{{Type: ck.CKA_LABEL, Cap: -1}})
	wantRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)

	// The SO sees public objects only.
	must(t, m.CloseSession(ro))
	must(t, m.Login(rw, ck.CKU_SO, []byte(soPIN)))
	_, err = m.GetAttributeValue(rw, priv, []ck.AttributeRequest{{Type: ck.CKA_LABEL, Cap: -1}})
	wantRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
	_, err = m.CreateObject(rw, dataTemplate("so-private", true, true))
	wantRV(t, err, ck.CKR_USER_NOT_LOGGED_IN)
	// Session objects die with their session.
	_, err = m.GetAttributeValue(rw, sessObj, []ck.AttributeRequest{{Type: ck.CKA_LABEL, Cap: -1}})
	wantRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
}

func TestCreateTemplateErrors(t *testing.T) {
	m, s := userSession(t)
	cases := []struct {
		name string
		tmpl []ck.Attribute
		want ck.RV
	}{
		{"no class", []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("x")}}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"bad class", []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(0x1234)}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"short class", []ck.Attribute{{Type: ck.CKA_CLASS, Value: []byte{0}}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"bool of 2 bytes", append(dataTemplate("x", false, false), ck.Attribute{Type: ck.CKA_MODIFIABLE, Value: []byte{1, 0}}), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"attr of other class", append(dataTemplate("x", false, false), ck.Attribute{Type: ck.CKA_MODULUS, Value: []byte{1}}), ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"unknown attr", append(dataTemplate("x", false, false), ck.Attribute{Type: 0x7123, Value: []byte{1}}), ck.CKR_ATTRIBUTE_TYPE_INVALID},
		{"conflicting duplicate", append(dataTemplate("x", false, false), ck.Attribute{Type: ck.CKA_LABEL, Value: []byte("y")}), ck.CKR_TEMPLATE_INCONSISTENT},
		{"key without type", []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))}}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"secret without value", []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_GENERIC_SECRET))}}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"token-set attribute", append(secretTemplate("k", []byte("0123456789abcdef")), ck.Attribute{Type: ck.CKA_LOCAL, Value: tb(true)}), ck.CKR_ATTRIBUTE_READ_ONLY},
		{"always sensitive", append(secretTemplate("k", []byte("0123456789abcdef")), ck.Attribute{Type: ck.CKA_ALWAYS_SENSITIVE, Value: tb(true)}), ck.CKR_ATTRIBUTE_READ_ONLY},
		{"trusted by user", append(secretTemplate("k", []byte("0123456789abcdef")), ck.Attribute{Type: ck.CKA_TRUSTED, Value: tb(true)}), ck.CKR_ATTRIBUTE_READ_ONLY},
		{"certificate without subject", []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_CERTIFICATE))},
			{Type: ck.CKA_CERTIFICATE_TYPE, Value: ul(ck.ULong(ck.CKC_X_509))},
			{Type: ck.CKA_VALUE, Value: []byte{0x30}}}, ck.CKR_TEMPLATE_INCOMPLETE},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.CreateObject(s, c.tmpl)
			wantRV(t, err, c.want)
		})
	}
}

func secretTemplate(label string, value []byte) []ck.Attribute {
	return []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_GENERIC_SECRET))},
		{Type: ck.CKA_TOKEN, Value: tb(true)},
		{Type: ck.CKA_LABEL, Value: []byte(label)},
		{Type: ck.CKA_VALUE, Value: value},
	}
}

func TestGetAttributeValueRules(t *testing.T) {
	m, s := userSession(t)
	o, err := m.CreateObject(s, dataTemplate("label", true, false))
	must(t, err)
	res, err := m.GetAttributeValue(s, o, []ck.AttributeRequest{
		{Type: ck.CKA_LABEL, Cap: -1},
		{Type: ck.CKA_VALUE, Cap: 2},
		{Type: ck.CKA_MODULUS, Cap: 100},
		{Type: ck.CKA_CLASS, Cap: 8},
	})
	// Both an invalid type and a short buffer: §5.7.5 lets either code
	// be returned; gohsm reports the invalid type.
	wantRV(t, err, ck.CKR_ATTRIBUTE_TYPE_INVALID)
	if res[0].Len != 5 || res[0].Value != nil {
		t.Fatalf("length query: %+v", res[0])
	}
	if res[1].Len != ck.CK_UNAVAILABLE_INFORMATION {
		t.Fatalf("short buffer: %+v", res[1])
	}
	if res[2].Len != ck.CK_UNAVAILABLE_INFORMATION {
		t.Fatalf("invalid type: %+v", res[2])
	}
	if !bytes.Equal(res[3].Value, ul(ck.ULong(ck.CKO_DATA))) {
		t.Fatalf("class: %+v", res[3])
	}
	_, err = m.GetAttributeValue(s, o, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 1}})
	wantRV(t, err, ck.CKR_BUFFER_TOO_SMALL)
}

func TestSensitiveAndExtractable(t *testing.T) {
	m, s := userSession(t)
	value := []byte("0123456789abcdef0123456789abcdef")
	k, err := m.CreateObject(s, append(secretTemplate("k", value), ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tb(false)}))
	must(t, err)
	if got := getAttr(t, m, s, k, ck.CKA_VALUE); !bytes.Equal(got, value) {
		t.Fatal("non-sensitive value not readable")
	}
	// Imported keys are never ALWAYS_SENSITIVE / NEVER_EXTRACTABLE.
	if getAttr(t, m, s, k, ck.CKA_ALWAYS_SENSITIVE)[0] != 0 || getAttr(t, m, s, k, ck.CKA_NEVER_EXTRACTABLE)[0] != 0 {
		t.Fatal("imported key claims ALWAYS_SENSITIVE or NEVER_EXTRACTABLE")
	}
	must(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_SENSITIVE, Value: tb(true)}}))
	res, err := m.GetAttributeValue(s, k, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}, {Type: ck.CKA_LABEL, Cap: 64}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_SENSITIVE)
	if res[0].Len != ck.CK_UNAVAILABLE_INFORMATION || res[0].Value != nil || string(res[1].Value) != "k" {
		t.Fatalf("sensitive read: %+v", res)
	}
	// One way only.
	wantRV(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_SENSITIVE, Value: tb(false)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
	must(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_EXTRACTABLE, Value: tb(false)}}))
	wantRV(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_EXTRACTABLE, Value: tb(true)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
	// A copy cannot undo it either.
	_, err = m.CopyObject(s, k, []ck.Attribute{{Type: ck.CKA_SENSITIVE, Value: tb(false)}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_READ_ONLY)
	// Searching by the secret value must not find a sensitive key.
	must(t, m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_VALUE, Value: value}}))
	hs, _ := m.FindObjects(s, 10)
	must(t, m.FindObjectsFinal(s))
	if len(hs) != 0 {
		t.Fatal("search by value found a sensitive key")
	}
	// Read-only attributes.
	wantRV(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_VALUE, Value: value}}), ck.CKR_ATTRIBUTE_READ_ONLY)
	wantRV(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(0)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
	wantRV(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_KEY_TYPE, Value: ul(0)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
}

func TestModifiableCopyableDestroyable(t *testing.T) {
	m, s := userSession(t)
	o, err := m.CreateObject(s, append(dataTemplate("fixed", true, false),
		ck.Attribute{Type: ck.CKA_MODIFIABLE, Value: tb(false)},
		ck.Attribute{Type: ck.CKA_COPYABLE, Value: tb(false)},
		ck.Attribute{Type: ck.CKA_DESTROYABLE, Value: tb(false)}))
	must(t, err)
	wantRV(t, m.SetAttributeValue(s, o, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("x")}}), ck.CKR_ACTION_PROHIBITED)
	_, err = m.CopyObject(s, o, nil)
	wantRV(t, err, ck.CKR_ACTION_PROHIBITED)
	wantRV(t, m.DestroyObject(s, o), ck.CKR_ACTION_PROHIBITED)

	o2, err := m.CreateObject(s, dataTemplate("free", true, false))
	must(t, err)
	c, err := m.CopyObject(s, o2, []ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(false)}, {Type: ck.CKA_LABEL, Value: []byte("copy")}})
	must(t, err)
	if string(getAttr(t, m, s, c, ck.CKA_LABEL)) != "copy" || getAttr(t, m, s, c, ck.CKA_TOKEN)[0] != 0 {
		t.Fatal("copy did not take its template")
	}
	if string(getAttr(t, m, s, c, ck.CKA_VALUE)) != "value of free" {
		t.Fatal("copy lost the value")
	}
	// CKA_TOKEN is changeable by copying only.
	wantRV(t, m.SetAttributeValue(s, o2, []ck.Attribute{{Type: ck.CKA_TOKEN, Value: tb(false)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
	must(t, m.DestroyObject(s, o2))
	wantRV(t, m.DestroyObject(s, o2), ck.CKR_OBJECT_HANDLE_INVALID)
}

func TestFindIndexedAndPersistent(t *testing.T) {
	m, st := newModule(t)
	initToken(t, m)
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	for i := 0; i < 500; i++ {
		_, err := m.CreateObject(s, dataTemplate(fmt.Sprintf("obj-%d", i), true, i%2 == 0))
		must(t, err)
	}
	find := func(m *Module, s ck.SessionHandle, tmpl []ck.Attribute) []ck.ObjectHandle {
		t.Helper()
		must(t, m.FindObjectsInit(s, tmpl))
		wantRV(t, m.FindObjectsInit(s, tmpl), ck.CKR_OPERATION_ACTIVE)
		var all []ck.ObjectHandle
		for {
			hs, err := m.FindObjects(s, 7)
			must(t, err)
			if len(hs) == 0 {
				break
			}
			all = append(all, hs...)
		}
		must(t, m.FindObjectsFinal(s))
		return all
	}
	if n := len(find(m, s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("obj-42")}})); n != 1 {
		t.Fatalf("by label: %d", n)
	}
	if n := len(find(m, s, []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_DATA))}})); n != 500 {
		t.Fatalf("by class: %d", n)
	}
	if n := len(find(m, s, []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_DATA))}, {Type: ck.CKA_PRIVATE, Value: tb(false)}})); n != 250 {
		t.Fatalf("public by class: %d", n)
	}
	// Relabelling moves the object in the index.
	h := find(m, s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("obj-7")}})[0]
	must(t, m.SetAttributeValue(s, h, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("renamed")}}))
	if n := len(find(m, s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("obj-7")}})); n != 0 {
		t.Fatal("old label still indexed")
	}
	must(t, m.Finalize())
	m2 := startModule(t, st)
	s2 := openRW(t, m2, 0)
	if n := len(find(m2, s2, nil)); n != 250 {
		t.Fatalf("after restart, before login: %d objects visible, want 250", n)
	}
	must(t, m2.Login(s2, ck.CKU_USER, []byte(userPIN)))
	got := find(m2, s2, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("renamed")}})
	if len(got) != 1 || string(getAttr(t, m2, s2, got[0], ck.CKA_VALUE)) != "value of obj-7" {
		t.Fatal("renamed object lost across restart")
	}
}

// TestSessionObjectsForgottenOnDestroy: a session remembers its session
// objects only while they exist, whichever session destroys them, so a
// long-lived session that makes and destroys keys (one per KEM call) does
// not grow; closing it still removes what is left.
func TestSessionObjectsForgottenOnDestroy(t *testing.T) {
	m, s := userSession(t)
	other, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	must(t, err)
	var keep ck.ObjectHandle
	for i := 0; i < 100; i++ {
		k := genSecret(t, m, s, ck.CKM_AES_KEY_GEN, 16)
		if i == 99 {
			keep = k
			break
		}
		by := s
		if i%2 == 1 {
			by = other
		}
		must(t, m.DestroyObject(by, k))
	}
	sess, _ := m.session(s)
	sess.own.mu.Lock()
	n, indexed := len(sess.own.set), len(sess.own.ix.sets)+len(sess.own.ix.ulong)
	sess.own.mu.Unlock()
	// The index keeps a set per class and key type, none per label.
	if n != 1 || indexed > 2 {
		t.Fatalf("session remembers %d objects (want 1) in %d index sets", n, indexed)
	}
	must(t, m.CloseSession(s))
	if _, err := m.GetAttributeValue(other, keep, []ck.AttributeRequest{{Type: ck.CKA_CLASS}}); !errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID) {
		t.Fatalf("session object after close: %v", err)
	}
}

// TestPrivateDataValueSealedAtRest: a private data object's CKA_VALUE is
// shown only to the logged-in user (§4.4), so the store never holds it in
// the clear: not when created, not after C_SetAttributeValue. The user
// reads it back across a logout, and finds the object by it; a public data
// object's value stays in the clear.
func TestPrivateDataValueSealedAtRest(t *testing.T) {
	m, st := newModule(t)
	initToken(t, m)
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	priv, err := m.CreateObject(s, dataTemplate("secret note", true, true))
	must(t, err)
	pub, err := m.CreateObject(s, dataTemplate("public note", true, false))
	must(t, err)
	stored := func(label string) *ObjectRecord {
		t.Helper()
		stores, err := st.Stores()
		must(t, err)
		var found *ObjectRecord
		must(t, stores[0].Objects(func(r *ObjectRecord) error {
			if v, _ := attr.Template(r.Attrs).Get(ck.CKA_LABEL); string(v) == label {
				found = r
			}
			return nil
		}))
		if found == nil {
			t.Fatalf("no stored object %q", label)
		}
		return found
	}
	check := func(want string) {
		t.Helper()
		r := stored("secret note")
		if _, ok := attr.Template(r.Attrs).Get(ck.CKA_VALUE); ok || len(r.Sealed) == 0 {
			t.Fatalf("private data value stored in the clear (sealed %d bytes)", len(r.Sealed))
		}
		if got := getAttr(t, m, s, priv, ck.CKA_VALUE); string(got) != want {
			t.Fatalf("value %q, want %q", got, want)
		}
	}
	check("value of secret note")
	if v, ok := attr.Template(stored("public note").Attrs).Get(ck.CKA_VALUE); !ok || string(v) != "value of public note" {
		t.Fatalf("public data value %q %v", v, ok)
	}
	must(t, m.SetAttributeValue(s, priv, []ck.Attribute{{Type: ck.CKA_VALUE, Value: []byte("rewritten")}}))
	check("rewritten")
	must(t, m.Logout(s))
	if _, err := m.GetAttributeValue(s, priv, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}}); !errors.Is(err, ck.CKR_OBJECT_HANDLE_INVALID) {
		t.Fatalf("private object after logout: %v", err)
	}
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	check("rewritten")
	must(t, m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_VALUE, Value: []byte("rewritten")}}))
	hs, err := m.FindObjects(s, 10)
	must(t, err)
	must(t, m.FindObjectsFinal(s))
	if len(hs) != 1 || hs[0] != priv {
		t.Fatalf("find by value: %v, want [%d]", hs, priv)
	}
	_ = pub
}

// TestDefaultsActAsOwnValues: a new object keeps only the attributes it
// was given over its class's shared defaults (attr.Layered). Every path
// must see a default as the object's value: reads, searches, the sticky
// rules of C_SetAttributeValue, the stored record and a reload.
func TestDefaultsActAsOwnValues(t *testing.T) {
	m, st := newModule(t)
	initToken(t, m)
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	pub, _ := mlkemPair(t, m, s, ck.CKP_ML_KEM_768)
	_, k, err := encapsulate(m, s, pub, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_TOKEN, Value: tb(true)},
	})
	must(t, err)
	want := map[ck.AttributeType][]byte{
		ck.CKA_SENSITIVE: tb(true), ck.CKA_EXTRACTABLE: tb(true), ck.CKA_PRIVATE: tb(true),
		ck.CKA_MODIFIABLE: tb(true), ck.CKA_TRUSTED: tb(false), ck.CKA_LABEL: {}, ck.CKA_DERIVE: tb(false),
	}
	check := func(m *Module, s ck.SessionHandle, k ck.ObjectHandle) {
		t.Helper()
		for at, v := range want {
			if got := getAttr(t, m, s, k, at); !bytes.Equal(got, v) {
				t.Errorf("%v = %x, want %x", at, got, v)
			}
		}
		must(t, m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte{}},
			{Type: ck.CKA_SENSITIVE, Value: tb(true)}, {Type: ck.CKA_KEY_TYPE, Value: ul(ck.ULong(ck.CKK_AES))}}))
		found, err := m.FindObjects(s, 10)
		must(t, err)
		must(t, m.FindObjectsFinal(s))
		if len(found) != 1 || found[0] != k {
			t.Errorf("search by default values found %v, want [%d]", found, k)
		}
	}
	check(m, s, k)
	size, err := m.GetObjectSize(s, k)
	must(t, err)

	// The stored record holds every attribute: another module reads the
	// same values.
	m2 := startModule(t, st)
	s2 := openRW(t, m2, 0)
	must(t, m2.Login(s2, ck.CKU_USER, []byte(userPIN)))
	must(t, m2.FindObjectsInit(s2, []ck.Attribute{{Type: ck.CKA_CLASS, Value: ul(ck.ULong(ck.CKO_SECRET_KEY))}}))
	found, err := m2.FindObjects(s2, 10)
	must(t, err)
	must(t, m2.FindObjectsFinal(s2))
	if len(found) != 1 {
		t.Fatalf("reloaded token has %d secret keys", len(found))
	}
	check(m2, s2, found[0])
	if reloaded, err := m2.GetObjectSize(s2, found[0]); err != nil || reloaded != size {
		t.Errorf("reloaded object size %d, was %d (%v)", reloaded, size, err)
	}

	// CKA_SENSITIVE true by default is as sticky as a given true.
	wantRV(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_SENSITIVE, Value: tb(false)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
	must(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_EXTRACTABLE, Value: tb(false)}}))
	want[ck.CKA_EXTRACTABLE] = tb(false)
	wantRV(t, m.SetAttributeValue(s, k, []ck.Attribute{{Type: ck.CKA_EXTRACTABLE, Value: tb(true)}}), ck.CKR_ATTRIBUTE_READ_ONLY)
	check(m, s, k)
	if after, err := m.GetObjectSize(s, k); err != nil || after != size {
		t.Errorf("object size %d after changing one value, was %d (%v)", after, size, err)
	}
}

// TestIndexedDefaultsEmpty: the index reads an object's own attributes
// only, which finds every indexed value as long as no indexed attribute
// has a non-empty default (an empty value is never indexed).
func TestIndexedDefaultsEmpty(t *testing.T) {
	for _, p := range attr.Table {
		if slices.Contains(indexed[:], p.Type) && len(p.Default) != 0 {
			t.Errorf("%v is indexed and defaults to %x", p.Type, p.Default)
		}
	}
}

// TestFindSessionObjectsOfOtherSessions: session objects live with the
// session that made them (sessionObjects) but every session of the
// application finds them, by indexed attributes and by others, and sees
// them go when any session destroys them or their session closes.
func TestFindSessionObjectsOfOtherSessions(t *testing.T) {
	m, a := userSession(t)
	b := openRW(t, m, 0)
	find := func(s ck.SessionHandle, tmpl []ck.Attribute) []ck.ObjectHandle {
		t.Helper()
		must(t, m.FindObjectsInit(s, tmpl))
		hs, err := m.FindObjects(s, 100)
		must(t, err)
		must(t, m.FindObjectsFinal(s))
		return hs
	}
	label := func(l string) []ck.Attribute { return []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(l)}} }
	var mine []ck.ObjectHandle
	for _, l := range []string{"x", "y", "x"} {
		h, err := m.CreateObject(a, dataTemplate(l, false, false))
		must(t, err)
		mine = append(mine, h)
	}
	tokenX, err := m.CreateObject(b, dataTemplate("x", true, false))
	must(t, err)
	if got := find(b, label("x")); !slices.Equal(got, slices.Sorted(slices.Values([]ck.ObjectHandle{mine[0], mine[2], tokenX}))) {
		t.Fatalf("by label from another session: %v, want %v and %d", got, mine, tokenX)
	}
	// CKA_APPLICATION (empty by default) is not indexed: every object is considered.
	app := []ck.Attribute{{Type: ck.CKA_APPLICATION, Value: []byte{}}}
	if got := find(b, app); len(got) != 4 {
		t.Fatalf("by an unindexed attribute: %v", got)
	}
	// The first search built the session's index; later objects join it.
	late, err := m.CreateObject(a, dataTemplate("x", false, false))
	must(t, err)
	must(t, m.DestroyObject(b, mine[0]))
	wantRV(t, m.DestroyObject(a, mine[0]), ck.CKR_OBJECT_HANDLE_INVALID)
	if got := find(a, label("x")); !slices.Equal(got, slices.Sorted(slices.Values([]ck.ObjectHandle{mine[2], tokenX, late}))) {
		t.Fatalf("after another session destroyed one and made one: %v", got)
	}
	must(t, m.CloseSession(a))
	if got := find(b, label("x")); !slices.Equal(got, []ck.ObjectHandle{tokenX}) {
		t.Fatalf("after the owner closed: %v", got)
	}
}

// A token object keeps its handle across a restart of the engine (its
// store id): the appliance's client re-opens sessions after a restart and
// the application goes on with the handles it found. Session objects take
// handles of their own range, never a token object's.
func TestTokenObjectHandlesSurviveRestart(t *testing.T) {
	m, st := newModule(t)
	initToken(t, m)
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	var handles []ck.ObjectHandle
	for _, l := range []string{"a", "b", "c"} {
		h, err := m.CreateObject(s, dataTemplate(l, true, true))
		must(t, err)
		handles = append(handles, h)
	}
	must(t, m.DestroyObject(s, handles[1]))
	sess, err := m.CreateObject(s, dataTemplate("s", false, false))
	must(t, err)
	if sess < sessionHandleBase || handles[2] >= sessionHandleBase {
		t.Fatalf("handles %v and session object %d share a range", handles, sess)
	}
	must(t, m.Finalize())
	m2 := startModule(t, st)
	s2 := openRW(t, m2, 0)
	must(t, m2.Login(s2, ck.CKU_USER, []byte(userPIN)))
	for i, l := range []string{"a", "c"} {
		want := handles[2*i]
		if got := getAttr(t, m2, s2, want, ck.CKA_LABEL); string(got) != l {
			t.Fatalf("handle %d after restart: label %q, want %q", want, got, l)
		}
	}
	_, err = m2.GetAttributeValue(s2, handles[1], []ck.AttributeRequest{{Type: ck.CKA_LABEL, Cap: 8}})
	wantRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
}
