package conformance

import (
	"bytes"
	"encoding/binary"

	"github.com/miekg/pkcs11"
)

var aesKey128 = []byte{0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c}

func attr(typ uint, v any) *pkcs11.Attribute { return pkcs11.NewAttribute(typ, v) }

// secretTemplate is a session AES key with a known value; extra overrides.
func secretTemplate(value []byte, extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	base := []*pkcs11.Attribute{
		attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		attr(pkcs11.CKA_TOKEN, false),
		attr(pkcs11.CKA_VALUE, value),
	}
	return merge(base, extra)
}

// merge returns base with the attributes of extra replacing same-typed ones.
func merge(base, extra []*pkcs11.Attribute) []*pkcs11.Attribute {
	out := make([]*pkcs11.Attribute, 0, len(base)+len(extra))
	for _, b := range base {
		dup := false
		for _, e := range extra {
			dup = dup || e.Type == b.Type
		}
		if !dup {
			out = append(out, b)
		}
	}
	return append(out, extra...)
}

func (t *T) create(sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute, what string) pkcs11.ObjectHandle {
	h, err := t.s.ctx.CreateObject(sh, tmpl)
	t.ok(err, "C_CreateObject("+what+")")
	return h
}

func (t *T) getAttr(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle, typ uint, name string) []byte {
	as, err := t.s.ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{attr(typ, nil)})
	t.ok(err, "C_GetAttributeValue("+name+")")
	return as[0].Value
}

func (t *T) getBool(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle, typ uint, name string) bool {
	v := t.getAttr(sh, h, typ, name)
	if len(v) != 1 {
		t.failf("%s: CK_BBOOL of %d bytes", name, len(v))
	}
	return v[0] != 0
}

func (t *T) getULong(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle, typ uint, name string) uint {
	v := t.getAttr(sh, h, typ, name)
	if len(v) != 8 {
		t.failf("%s: CK_ULONG of %d bytes", name, len(v))
	}
	return uint(binary.LittleEndian.Uint64(v))
}

func (t *T) setAttr(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle, a ...*pkcs11.Attribute) error {
	return t.s.ctx.SetAttributeValue(sh, h, a)
}

// genAES generates a session AES-128 key with extra attributes.
func (t *T) genAES(sh pkcs11.SessionHandle, extra ...*pkcs11.Attribute) pkcs11.ObjectHandle {
	if !t.s.mechs[pkcs11.CKM_AES_KEY_GEN] {
		t.skipf("CKM_AES_KEY_GEN not in C_GetMechanismList")
	}
	tmpl := merge([]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE_LEN, 16)}, extra)
	h, err := t.s.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
	t.ok(err, "C_GenerateKey(CKM_AES_KEY_GEN)")
	return h
}

// readOnlyCheck asserts that changing typ on a fresh key is refused with
// CKR_ATTRIBUTE_READ_ONLY.
func readOnlyCheck(id, spec string, typ uint, v any) check {
	return check{id: id, spec: spec, fn: func(t *T) {
		sh := t.open(true)
		h := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_SENSITIVE, false)), "AES key")
		t.expect(t.setAttr(sh, h, attr(typ, v)), "C_SetAttributeValue", pkcs11.CKR_ATTRIBUTE_READ_ONLY)
	}}
}

// Base 4 (objects) and 5.7 (object management functions).
func objectChecks() []check {
	return []check{
		{id: "obj.data.create-read", spec: "base 4.5 data objects, 5.7.1 C_CreateObject, 5.7.5", fn: func(t *T) {
			sh := t.open(true)
			h := t.createData(sh, false, false, "d1")
			if v := t.getAttr(sh, h, pkcs11.CKA_VALUE, "CKA_VALUE"); string(v) != "conformance data" {
				t.failf("CKA_VALUE %q", v)
			}
			if c := t.getULong(sh, h, pkcs11.CKA_CLASS, "CKA_CLASS"); c != pkcs11.CKO_DATA {
				t.failf("CKA_CLASS %d", c)
			}
		}},
		{id: "obj.data.defaults", spec: "base 4.4 storage objects (CKA_MODIFIABLE, CKA_COPYABLE, CKA_DESTROYABLE default TRUE)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), attr(pkcs11.CKA_PRIVATE, false)}, "minimal data object")
			if t.getBool(sh, h, pkcs11.CKA_TOKEN, "CKA_TOKEN") {
				t.failf("CKA_TOKEN defaults to TRUE")
			}
			if !t.getBool(sh, h, pkcs11.CKA_MODIFIABLE, "CKA_MODIFIABLE") {
				t.failf("CKA_MODIFIABLE defaults to FALSE")
			}
		}},
		{id: "obj.create.no-class", spec: "base 4.1.1 (CKR_TEMPLATE_INCOMPLETE)", fn: func(t *T) {
			_, err := t.s.ctx.CreateObject(t.open(true), []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, "x")})
			t.expect(err, "C_CreateObject without CKA_CLASS", pkcs11.CKR_TEMPLATE_INCOMPLETE)
		}},
		{id: "obj.create.unknown-class", spec: "base 4.1.1 (CKR_ATTRIBUTE_VALUE_INVALID)", fn: func(t *T) {
			_, err := t.s.ctx.CreateObject(t.open(true), []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, 0x7ff0)})
			t.expect(err, "C_CreateObject(CKA_CLASS 0x7ff0)", pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_TEMPLATE_INCONSISTENT)
		}},
		{id: "obj.create.unknown-attribute", spec: "base 4.1.1 (CKR_ATTRIBUTE_TYPE_INVALID)", fn: func(t *T) {
			tmpl := append(dataTemplate(false, false, "x"), attr(0x7ff1, []byte{1}))
			_, err := t.s.ctx.CreateObject(t.open(true), tmpl)
			t.expect(err, "C_CreateObject with attribute type 0x7ff1", pkcs11.CKR_ATTRIBUTE_TYPE_INVALID)
		}},
		{id: "obj.create.bad-bool-length", spec: "base 4.1.1 (CKR_ATTRIBUTE_VALUE_INVALID)", fn: func(t *T) {
			tmpl := merge(dataTemplate(false, false, "x"), []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, []byte{0, 0, 0, 0})})
			_, err := t.s.ctx.CreateObject(t.open(true), tmpl)
			t.expect(err, "C_CreateObject with a 4-byte CKA_TOKEN", pkcs11.CKR_ATTRIBUTE_VALUE_INVALID)
		}},
		{id: "obj.create.token-readonly-session", spec: "base 5.7.1 C_CreateObject (CKR_SESSION_READ_ONLY)", fn: func(t *T) {
			_, err := t.s.ctx.CreateObject(t.open(false), dataTemplate(true, false, "x"))
			t.expect(err, "C_CreateObject(token object) in a R/O session", pkcs11.CKR_SESSION_READ_ONLY)
		}},
		{id: "obj.secret.value-len-derived", spec: "curr 2.8.2 AES secret key objects (CKA_VALUE_LEN)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, secretTemplate(aesKey128), "AES key")
			if n := t.getULong(sh, h, pkcs11.CKA_VALUE_LEN, "CKA_VALUE_LEN"); n != 16 {
				t.failf("CKA_VALUE_LEN %d, want 16", n)
			}
		}},
		{id: "obj.secret.bad-aes-length", spec: "curr 2.8.2 AES secret key objects (16, 24 or 32 bytes)", fn: func(t *T) {
			_, err := t.s.ctx.CreateObject(t.open(true), secretTemplate(aesKey128[:15]))
			t.expect(err, "C_CreateObject(15-byte AES key)", pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_TEMPLATE_INCONSISTENT, pkcs11.CKR_KEY_SIZE_RANGE)
		}},
		{id: "obj.secret.no-value", spec: "base 4.1.1, curr 2.8.2 (CKA_VALUE required)", fn: func(t *T) {
			tmpl := []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES), attr(pkcs11.CKA_TOKEN, false)}
			_, err := t.s.ctx.CreateObject(t.open(true), tmpl)
			t.expect(err, "C_CreateObject(AES key without CKA_VALUE)", pkcs11.CKR_TEMPLATE_INCOMPLETE)
		}},
		{id: "obj.secret.created-not-local", spec: "base 4.7 CKA_LOCAL, 4.10 (imported keys)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, secretTemplate(aesKey128), "AES key")
			if t.getBool(sh, h, pkcs11.CKA_LOCAL, "CKA_LOCAL") {
				t.failf("C_CreateObject key has CKA_LOCAL TRUE")
			}
			if t.getBool(sh, h, pkcs11.CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE") || t.getBool(sh, h, pkcs11.CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE") {
				t.failf("a key whose value came from outside claims CKA_ALWAYS_SENSITIVE or CKA_NEVER_EXTRACTABLE")
			}
		}},
		{id: "obj.secret.generated-local", spec: "base 4.7 CKA_LOCAL, CKA_KEY_GEN_MECHANISM", fn: func(t *T) {
			sh := t.open(true)
			h := t.genAES(sh)
			if !t.getBool(sh, h, pkcs11.CKA_LOCAL, "CKA_LOCAL") {
				t.failf("generated key has CKA_LOCAL FALSE")
			}
			if m := t.getULong(sh, h, pkcs11.CKA_KEY_GEN_MECHANISM, "CKA_KEY_GEN_MECHANISM"); m != pkcs11.CKM_AES_KEY_GEN {
				t.failf("CKA_KEY_GEN_MECHANISM 0x%x", m)
			}
		}},
		{id: "obj.secret.always-sensitive-on-create", spec: "base 4.10 secret keys (CKA_ALWAYS_SENSITIVE set by the token)", fn: func(t *T) {
			_, err := t.s.ctx.CreateObject(t.open(true), secretTemplate(aesKey128, attr(pkcs11.CKA_ALWAYS_SENSITIVE, true)))
			t.expect(err, "C_CreateObject with CKA_ALWAYS_SENSITIVE", pkcs11.CKR_ATTRIBUTE_READ_ONLY, pkcs11.CKR_TEMPLATE_INCONSISTENT)
		}},
		readOnlyCheck("obj.readonly.class", "base 4.2 CKA_CLASS, 5.7.6 (CKR_ATTRIBUTE_READ_ONLY)", pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		readOnlyCheck("obj.readonly.key-type", "base 4.7 CKA_KEY_TYPE, 5.7.6", pkcs11.CKA_KEY_TYPE, pkcs11.CKK_DES3),
		readOnlyCheck("obj.readonly.local", "base 4.7 CKA_LOCAL, 5.7.6", pkcs11.CKA_LOCAL, true),
		readOnlyCheck("obj.readonly.always-sensitive", "base 4.10 CKA_ALWAYS_SENSITIVE, 5.7.6", pkcs11.CKA_ALWAYS_SENSITIVE, true),
		readOnlyCheck("obj.readonly.never-extractable", "base 4.10 CKA_NEVER_EXTRACTABLE, 5.7.6", pkcs11.CKA_NEVER_EXTRACTABLE, true),
		readOnlyCheck("obj.readonly.value", "base 4.10 secret key CKA_VALUE, 5.7.6", pkcs11.CKA_VALUE, make([]byte, 16)),
		{id: "obj.label.modifiable", spec: "base 5.7.6 C_SetAttributeValue", fn: func(t *T) {
			sh := t.open(true)
			h := t.createData(sh, false, false, "before")
			t.ok(t.setAttr(sh, h, attr(pkcs11.CKA_LABEL, "after")), "C_SetAttributeValue(CKA_LABEL)")
			if v := t.getAttr(sh, h, pkcs11.CKA_LABEL, "CKA_LABEL"); string(v) != "after" {
				t.failf("CKA_LABEL %q after set", v)
			}
		}},
		{id: "obj.modifiable-false", spec: "base 4.4 CKA_MODIFIABLE, 5.7.6 (CKR_ACTION_PROHIBITED)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, append(dataTemplate(false, false, "frozen"), attr(pkcs11.CKA_MODIFIABLE, false)), "CKA_MODIFIABLE FALSE")
			t.expect(t.setAttr(sh, h, attr(pkcs11.CKA_LABEL, "thawed")), "C_SetAttributeValue on an unmodifiable object", pkcs11.CKR_ACTION_PROHIBITED, pkcs11.CKR_ATTRIBUTE_READ_ONLY)
		}},
		{id: "obj.get.sensitive", spec: "base 5.7.5 C_GetAttributeValue (CKR_ATTRIBUTE_SENSITIVE, CK_UNAVAILABLE_INFORMATION)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_SENSITIVE, true)), "sensitive AES key")
			n, rv := t.s.raw.attrLen(uint(sh), uint(h), pkcs11.CKA_VALUE)
			t.expectRV(rv, "C_GetAttributeValue(CKA_VALUE) of a sensitive key", pkcs11.CKR_ATTRIBUTE_SENSITIVE)
			if n != pkcs11.CK_UNAVAILABLE_INFORMATION {
				t.failf("ulValueLen %d, want CK_UNAVAILABLE_INFORMATION", n)
			}
		}},
		{id: "obj.get.unextractable", spec: "base 5.7.5 C_GetAttributeValue (unextractable CKA_VALUE)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, false)), "unextractable AES key")
			_, rv := t.s.raw.attrLen(uint(sh), uint(h), pkcs11.CKA_VALUE)
			t.expectRV(rv, "C_GetAttributeValue(CKA_VALUE) of an unextractable key", pkcs11.CKR_ATTRIBUTE_SENSITIVE)
		}},
		{id: "obj.get.invalid-type", spec: "base 5.7.5 C_GetAttributeValue (CKR_ATTRIBUTE_TYPE_INVALID)", fn: func(t *T) {
			sh := t.open(true)
			h := t.createData(sh, false, false, "d")
			n, rv := t.s.raw.attrLen(uint(sh), uint(h), 0x7ff2)
			t.expectRV(rv, "C_GetAttributeValue(type 0x7ff2)", pkcs11.CKR_ATTRIBUTE_TYPE_INVALID)
			if n != pkcs11.CK_UNAVAILABLE_INFORMATION {
				t.failf("ulValueLen %d, want CK_UNAVAILABLE_INFORMATION", n)
			}
		}},
		{id: "obj.get.length-query", spec: "base 5.7.5 C_GetAttributeValue (pValue NULL gives the length)", fn: func(t *T) {
			sh := t.open(true)
			h := t.createData(sh, false, false, "d")
			n, rv := t.s.raw.attrLen(uint(sh), uint(h), pkcs11.CKA_VALUE)
			t.okRV(rv, "C_GetAttributeValue(CKA_VALUE, NULL)")
			if n != uint(len("conformance data")) {
				t.failf("ulValueLen %d, want %d", n, len("conformance data"))
			}
		}},
		{id: "obj.get.invalid-handle", spec: "base 5.7.5 C_GetAttributeValue (CKR_OBJECT_HANDLE_INVALID)", fn: func(t *T) {
			_, err := t.s.ctx.GetAttributeValue(t.open(true), bogusHandle, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, nil)})
			t.expect(err, "C_GetAttributeValue(bogus handle)", pkcs11.CKR_OBJECT_HANDLE_INVALID)
		}},
		{id: "obj.sensitive.one-way", spec: "base 4.10 CKA_SENSITIVE (can only be changed to TRUE)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_SENSITIVE, false)), "AES key")
			t.ok(t.setAttr(sh, h, attr(pkcs11.CKA_SENSITIVE, true)), "C_SetAttributeValue(CKA_SENSITIVE=TRUE)")
			t.expect(t.setAttr(sh, h, attr(pkcs11.CKA_SENSITIVE, false)), "C_SetAttributeValue(CKA_SENSITIVE=FALSE)", pkcs11.CKR_ATTRIBUTE_READ_ONLY)
		}},
		{id: "obj.extractable.one-way", spec: "base 4.10 CKA_EXTRACTABLE (can only be changed to FALSE)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_EXTRACTABLE, true)), "AES key")
			t.ok(t.setAttr(sh, h, attr(pkcs11.CKA_EXTRACTABLE, false)), "C_SetAttributeValue(CKA_EXTRACTABLE=FALSE)")
			t.expect(t.setAttr(sh, h, attr(pkcs11.CKA_EXTRACTABLE, true)), "C_SetAttributeValue(CKA_EXTRACTABLE=TRUE)", pkcs11.CKR_ATTRIBUTE_READ_ONLY)
		}},
		{id: "obj.always-sensitive.generated", spec: "base 4.10 CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE", fn: func(t *T) {
			sh := t.open(true)
			h := t.genAES(sh, attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false))
			if !t.getBool(sh, h, pkcs11.CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE") {
				t.failf("generated sensitive key has CKA_ALWAYS_SENSITIVE FALSE")
			}
			if !t.getBool(sh, h, pkcs11.CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE") {
				t.failf("generated unextractable key has CKA_NEVER_EXTRACTABLE FALSE")
			}
		}},
		{id: "obj.always-sensitive.late", spec: "base 4.10 CKA_ALWAYS_SENSITIVE (stays FALSE once the key was not sensitive)", fn: func(t *T) {
			sh := t.open(true)
			h := t.genAES(sh, attr(pkcs11.CKA_SENSITIVE, false), attr(pkcs11.CKA_EXTRACTABLE, true))
			t.ok(t.setAttr(sh, h, attr(pkcs11.CKA_SENSITIVE, true), attr(pkcs11.CKA_EXTRACTABLE, false)), "C_SetAttributeValue(SENSITIVE=TRUE, EXTRACTABLE=FALSE)")
			if t.getBool(sh, h, pkcs11.CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE") {
				t.failf("CKA_ALWAYS_SENSITIVE TRUE on a key that was once readable")
			}
			if t.getBool(sh, h, pkcs11.CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE") {
				t.failf("CKA_NEVER_EXTRACTABLE TRUE on a key that was once extractable")
			}
		}},
		{id: "obj.copy.basic", spec: "base 5.7.2 C_CopyObject", fn: func(t *T) {
			sh := t.open(true)
			h := t.createData(sh, false, false, "orig")
			c, err := t.s.ctx.CopyObject(sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, "copy")})
			t.ok(err, "C_CopyObject")
			if c == h {
				t.failf("copy has the original's handle")
			}
			if v := t.getAttr(sh, c, pkcs11.CKA_VALUE, "CKA_VALUE"); string(v) != "conformance data" {
				t.failf("copy CKA_VALUE %q", v)
			}
			if v := t.getAttr(sh, h, pkcs11.CKA_LABEL, "CKA_LABEL"); string(v) != "orig" {
				t.failf("original's label changed to %q", v)
			}
		}},
		{id: "obj.copy.unsensitive", spec: "base 5.7.2 C_CopyObject, 4.10 CKA_SENSITIVE (no way back to FALSE)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_SENSITIVE, true)), "sensitive AES key")
			c, err := t.s.ctx.CopyObject(sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_SENSITIVE, false)})
			if err == nil {
				if v, _ := t.s.ctx.GetAttributeValue(sh, c, []*pkcs11.Attribute{attr(pkcs11.CKA_VALUE, nil)}); len(v) == 1 && bytes.Equal(v[0].Value, aesKey128) {
					t.failf("C_CopyObject(CKA_SENSITIVE=FALSE) of a sensitive key leaked its value")
				}
			}
			t.refused(err, "C_CopyObject(CKA_SENSITIVE=FALSE) of a sensitive key")
		}},
		{id: "obj.copy.extractable", spec: "base 5.7.2 C_CopyObject, 4.10 CKA_EXTRACTABLE (no way back to TRUE)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_EXTRACTABLE, false)), "unextractable AES key")
			_, err := t.s.ctx.CopyObject(sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_EXTRACTABLE, true)})
			t.refused(err, "C_CopyObject(CKA_EXTRACTABLE=TRUE) of an unextractable key")
		}},
		{id: "obj.copy.copyable-false", spec: "base 4.4 CKA_COPYABLE, 5.7.2 (CKR_ACTION_PROHIBITED)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, append(dataTemplate(false, false, "nocopy"), attr(pkcs11.CKA_COPYABLE, false)), "CKA_COPYABLE FALSE")
			_, err := t.s.ctx.CopyObject(sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, "copy")})
			t.expect(err, "C_CopyObject of an uncopyable object", pkcs11.CKR_ACTION_PROHIBITED)
		}},
		{id: "obj.destroy.basic", spec: "base 5.7.3 C_DestroyObject", fn: func(t *T) {
			sh := t.open(true)
			h := t.createData(sh, false, false, "doomed")
			t.ok(t.s.ctx.DestroyObject(sh, h), "C_DestroyObject")
			_, err := t.s.ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, nil)})
			t.expect(err, "C_GetAttributeValue after C_DestroyObject", pkcs11.CKR_OBJECT_HANDLE_INVALID)
		}},
		{id: "obj.destroy.invalid-handle", spec: "base 5.7.3 C_DestroyObject (CKR_OBJECT_HANDLE_INVALID)", fn: func(t *T) {
			t.expect(t.s.ctx.DestroyObject(t.open(true), bogusHandle), "C_DestroyObject(bogus handle)", pkcs11.CKR_OBJECT_HANDLE_INVALID)
		}},
		{id: "obj.destroy.destroyable-false", spec: "base 4.4 CKA_DESTROYABLE, 5.7.3 (CKR_ACTION_PROHIBITED)", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, append(dataTemplate(false, false, "nodestroy"), attr(pkcs11.CKA_DESTROYABLE, false)), "CKA_DESTROYABLE FALSE")
			t.expect(t.s.ctx.DestroyObject(sh, h), "C_DestroyObject of an undestroyable object", pkcs11.CKR_ACTION_PROHIBITED)
		}},
		{id: "obj.cert.x509", spec: "base 4.6.3 X.509 public key certificate objects", fn: func(t *T) {
			sh := t.open(true)
			h := t.create(sh, []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE), attr(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
				attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_SUBJECT, []byte{0x30, 0}), attr(pkcs11.CKA_VALUE, []byte{0x30, 0}),
			}, "X.509 certificate")
			if v := t.getULong(sh, h, pkcs11.CKA_CERTIFICATE_TYPE, "CKA_CERTIFICATE_TYPE"); v != pkcs11.CKC_X_509 {
				t.failf("CKA_CERTIFICATE_TYPE %d", v)
			}
		}},
		{id: "obj.cert.no-type", spec: "base 4.6.1 (CKA_CERTIFICATE_TYPE required: CKR_TEMPLATE_INCOMPLETE)", fn: func(t *T) {
			_, err := t.s.ctx.CreateObject(t.open(true), []*pkcs11.Attribute{
				attr(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE), attr(pkcs11.CKA_TOKEN, false), attr(pkcs11.CKA_VALUE, []byte{0x30, 0}),
			})
			t.expect(err, "C_CreateObject(certificate without CKA_CERTIFICATE_TYPE)", pkcs11.CKR_TEMPLATE_INCOMPLETE)
		}},
	}
}

// Base 5.7.7-5.7.9 (C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal).
func findChecks() []check {
	three := func(t *T, sh pkcs11.SessionHandle, label string) []pkcs11.ObjectHandle {
		var hs []pkcs11.ObjectHandle
		for i := 0; i < 3; i++ {
			hs = append(hs, t.createData(sh, false, false, label))
		}
		return hs
	}
	return []check{
		{id: "find.by-label", spec: "base 5.7.7 C_FindObjectsInit (attribute match)", fn: func(t *T) {
			sh := t.open(true)
			three(t, sh, "find-a")
			t.createData(sh, false, false, "find-b")
			if n := len(t.findLabel(sh, "find-a")); n != 3 {
				t.failf("found %d, want 3", n)
			}
		}},
		{id: "find.no-match", spec: "base 5.7.8 C_FindObjects", fn: func(t *T) {
			if n := len(t.findLabel(t.open(true), "no-such-label")); n != 0 {
				t.failf("found %d objects for an unused label", n)
			}
		}},
		{id: "find.empty-template", spec: "base 5.7.7 C_FindObjectsInit (ulCount 0 matches every object)", fn: func(t *T) {
			sh := t.open(true)
			want := three(t, sh, "find-all")
			got := map[pkcs11.ObjectHandle]bool{}
			for _, h := range t.find(sh, nil) {
				got[h] = true
			}
			for _, h := range want {
				if !got[h] {
					t.failf("empty template misses object %d", h)
				}
			}
		}},
		{id: "find.batches", spec: "base 5.7.8 C_FindObjects (ulMaxObjectCount)", fn: func(t *T) {
			sh := t.open(true)
			three(t, sh, "find-batch")
			t.ok(t.s.ctx.FindObjectsInit(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_LABEL, "find-batch")}), "C_FindObjectsInit")
			seen := map[pkcs11.ObjectHandle]bool{}
			for i := 0; i < 3; i++ {
				hs, _, err := t.s.ctx.FindObjects(sh, 1)
				t.ok(err, "C_FindObjects(1)")
				if len(hs) != 1 || seen[hs[0]] {
					t.failf("call %d returned %v", i+1, hs)
				}
				seen[hs[0]] = true
			}
			hs, _, err := t.s.ctx.FindObjects(sh, 1)
			t.ok(err, "C_FindObjects after the last match")
			if len(hs) != 0 {
				t.failf("fourth call returned %v, want none", hs)
			}
			t.ok(t.s.ctx.FindObjectsFinal(sh), "C_FindObjectsFinal")
		}},
		{id: "find.active", spec: "base 5.7.7 C_FindObjectsInit (CKR_OPERATION_ACTIVE)", fn: func(t *T) {
			sh := t.open(true)
			t.ok(t.s.ctx.FindObjectsInit(sh, nil), "C_FindObjectsInit")
			t.expect(t.s.ctx.FindObjectsInit(sh, nil), "second C_FindObjectsInit", pkcs11.CKR_OPERATION_ACTIVE)
		}},
		{id: "find.not-initialized", spec: "base 5.7.8 C_FindObjects (CKR_OPERATION_NOT_INITIALIZED)", fn: func(t *T) {
			_, _, err := t.s.ctx.FindObjects(t.open(true), 4)
			t.expect(err, "C_FindObjects without C_FindObjectsInit", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		}},
		{id: "find.final-not-initialized", spec: "base 5.7.9 C_FindObjectsFinal (CKR_OPERATION_NOT_INITIALIZED)", fn: func(t *T) {
			t.expect(t.s.ctx.FindObjectsFinal(t.open(true)), "C_FindObjectsFinal without C_FindObjectsInit", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		}},
		{id: "find.final-ends", spec: "base 5.7.9 C_FindObjectsFinal", fn: func(t *T) {
			sh := t.open(true)
			t.ok(t.s.ctx.FindObjectsInit(sh, nil), "C_FindObjectsInit")
			t.ok(t.s.ctx.FindObjectsFinal(sh), "C_FindObjectsFinal")
			_, _, err := t.s.ctx.FindObjects(sh, 4)
			t.expect(err, "C_FindObjects after C_FindObjectsFinal", pkcs11.CKR_OPERATION_NOT_INITIALIZED)
		}},
		{id: "find.by-class", spec: "base 5.7.7 C_FindObjectsInit (CKA_CLASS match)", fn: func(t *T) {
			sh := t.open(true)
			k := t.create(sh, secretTemplate(aesKey128, attr(pkcs11.CKA_LABEL, "find-class")), "AES key")
			t.createData(sh, false, false, "find-class")
			hs := t.find(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), attr(pkcs11.CKA_LABEL, "find-class")})
			if len(hs) != 1 || hs[0] != k {
				t.failf("found %v, want [%d]", hs, k)
			}
		}},
		{id: "find.token-flag", spec: "base 5.7.7 C_FindObjectsInit (CKA_TOKEN match)", fn: func(t *T) {
			sh := t.open(true)
			t.createData(sh, true, false, "find-tok")
			t.createData(sh, false, false, "find-tok")
			hs := t.find(sh, []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_LABEL, "find-tok")})
			if len(hs) != 1 {
				t.failf("CKA_TOKEN=TRUE found %d, want 1", len(hs))
			}
		}},
		{id: "find.after-destroy", spec: "base 5.7.3, 5.7.8 (destroyed objects are not found)", fn: func(t *T) {
			sh := t.open(true)
			h := t.createData(sh, false, false, "find-gone")
			t.ok(t.s.ctx.DestroyObject(sh, h), "C_DestroyObject")
			if n := len(t.findLabel(sh, "find-gone")); n != 0 {
				t.failf("found %d destroyed objects", n)
			}
		}},
		{id: "find.unknown-attribute", spec: "base 5.7.7 C_FindObjectsInit (unknown attribute matches nothing)", fn: func(t *T) {
			sh := t.open(true)
			t.createData(sh, false, false, "find-unk")
			err := t.s.ctx.FindObjectsInit(sh, []*pkcs11.Attribute{attr(0x7ff3, []byte{1}), attr(pkcs11.CKA_LABEL, "find-unk")})
			if rvOf(err) == pkcs11.CKR_ATTRIBUTE_TYPE_INVALID {
				t.note("C_FindObjectsInit: CKR_ATTRIBUTE_TYPE_INVALID")
				return
			}
			t.ok(err, "C_FindObjectsInit")
			hs, _, err := t.s.ctx.FindObjects(sh, 4)
			t.ok(err, "C_FindObjects")
			t.s.ctx.FindObjectsFinal(sh)
			if len(hs) != 0 {
				t.failf("an attribute the objects lack matched %d objects", len(hs))
			}
		}},
	}
}
