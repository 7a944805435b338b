package bench

import (
	"bytes"
	"crypto/aes"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// The ops the network comparison adds to the catalogue (ops.go). p11-kit
// 0.24's client carries neither AES-GCM nor AES-CBC (its fixed mechanism
// table refuses them at C_EncryptInit, tests/clients/p11kit.sh), so AES-ECB
// is the AES op every target runs; AES-CBC 64 B is measured where it exists
// (local and remote), next to the AES-GCM.
var remoteOps = []Op{
	{Name: "aes256-ecb-enc-64", Title: "AES-256-ECB encrypt 64 B", Mechanism: "CKM_AES_ECB", Bytes: 64},
	{Name: "aes256-cbc-enc-64", Title: "AES-256-CBC encrypt 64 B", Mechanism: "CKM_AES_CBC", Bytes: 64},
	{Name: "find-key-label", Title: "C_FindObjects: one AES key by label among N", Mechanism: "C_FindObjects"},
}

// remoteOpByName finds an op in either catalogue.
func remoteOpByName(name string) *Op {
	for i := range remoteOps {
		if remoteOps[i].Name == name {
			return &remoteOps[i]
		}
	}
	return opByName(name)
}

// agentModule is a loaded module as an agent process drives it: the
// harness's p11Module, plus the ops above.
type agentModule struct {
	*p11Module
	findKeys      int // session AES keys find-key-label searches
	findKeysReady int
}

func (a *agentModule) prepare(op *Op) error {
	switch op.Name {
	case "aes256-ecb-enc-64", "aes256-cbc-enc-64":
		mech := uint(pkcs11.CKM_AES_ECB)
		if op.Name == "aes256-cbc-enc-64" {
			mech = pkcs11.CKM_AES_CBC
		}
		if !a.mechs[mech] {
			return skipf("module does not list %s", map[uint]string{pkcs11.CKM_AES_ECB: "CKM_AES_ECB", pkcs11.CKM_AES_CBC: "CKM_AES_CBC"}[mech])
		}
		_, err := a.keysFor("aes")
		return err
	case "find-key-label":
		return a.makeFindKeys()
	}
	return a.p11Module.prepare(op)
}

func (a *agentModule) newWorker(op *Op, idx int) (*worker, error) {
	var bind func(pkcs11.SessionHandle) (*worker, error)
	switch op.Name {
	case "aes256-ecb-enc-64", "aes256-cbc-enc-64":
		bind = func(sh pkcs11.SessionHandle) (*worker, error) { return a.bindAES64(op, sh, idx) }
	case "find-key-label":
		bind = func(sh pkcs11.SessionHandle) (*worker, error) { return a.bindFindKey(sh, idx) }
	default:
		return a.p11Module.newWorker(op, idx)
	}
	sh, err := a.openSession()
	if err != nil {
		return nil, err
	}
	w, err := bind(sh)
	if err != nil {
		_ = a.ctx.CloseSession(sh)
		return nil, err
	}
	w.close = func() { _ = a.ctx.CloseSession(sh) }
	return w, nil
}

// bindAES64 is C_EncryptInit + C_Encrypt of 64 bytes in ECB or CBC (no
// padding), checked against Go's AES.
func (a *agentModule) bindAES64(op *Op, sh pkcs11.SessionHandle, idx int) (*worker, error) {
	k, err := a.keysFor("aes")
	if err != nil {
		return nil, err
	}
	ctx := a.ctx
	pt, iv := fill(op.Bytes, byte(idx)), fill(16, 0x44)
	m := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}
	check := func(ct []byte) error { return checkECB(aesKeyValue, pt, ct) }
	if op.Name == "aes256-cbc-enc-64" {
		m = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CBC, iv)}
		check = func(ct []byte) error { return checkCBC(aes.NewCipher, aesKeyValue, iv, pt, ct) }
	}
	enc := func() ([]byte, error) {
		if err := ctx.EncryptInit(sh, m, k.secret); err != nil {
			return nil, fmt.Errorf("C_EncryptInit(%s): %w", op.Mechanism, err)
		}
		ct, err := ctx.Encrypt(sh, pt)
		if err != nil {
			return nil, fmt.Errorf("C_Encrypt(%s): %w", op.Mechanism, err)
		}
		return ct, nil
	}
	return &worker{
		do: func() error { _, err := enc(); return err },
		check: func() error {
			ct, err := enc()
			if err != nil {
				return err
			}
			return check(ct)
		},
	}, nil
}

func checkECB(key, pt, ct []byte) error {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	if len(pt)%16 != 0 {
		return fmt.Errorf("ECB plaintext of %d bytes", len(pt))
	}
	want := make([]byte, len(pt))
	for i := 0; i < len(pt); i += 16 {
		blk.Encrypt(want[i:i+16], pt[i:i+16])
	}
	if !bytes.Equal(ct, want) {
		return errors.New("ECB ciphertext differs from Go's")
	}
	return nil
}

func findKeyLabel(i int) string { return fmt.Sprintf("bench-key-%05d", i) }

// makeFindKeys imports the AES session keys find-key-label searches, once,
// in the setup session (visible to every session of the application).
func (a *agentModule) makeFindKeys() error {
	for a.findKeysReady < a.findKeys {
		v := fill(32, byte(a.findKeysReady))
		t := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, findKeyLabel(a.findKeysReady)),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, v),
		}
		if _, err := a.ctx.CreateObject(a.setup, t); err != nil {
			return fmt.Errorf("C_CreateObject(find key %d): %w", a.findKeysReady, err)
		}
		a.findKeysReady++
	}
	return nil
}

// bindFindKey is C_FindObjectsInit(CKA_CLASS secret key, CKA_LABEL) +
// C_FindObjects + C_FindObjectsFinal; the check reads the label back.
func (a *agentModule) bindFindKey(sh pkcs11.SessionHandle, idx int) (*worker, error) {
	if err := a.makeFindKeys(); err != nil {
		return nil, err
	}
	ctx, n := a.ctx, a.findKeysReady
	if n == 0 {
		return nil, errors.New("find-key-label: no keys to find")
	}
	i := idx * 7919 // workers start at different labels
	find := func() ([]pkcs11.ObjectHandle, string, error) {
		i++
		label := findKeyLabel(i % n)
		t := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}
		if err := ctx.FindObjectsInit(sh, t); err != nil {
			return nil, label, fmt.Errorf("C_FindObjectsInit: %w", err)
		}
		hs, _, err := ctx.FindObjects(sh, 4)
		if ferr := ctx.FindObjectsFinal(sh); err == nil && ferr != nil {
			err = ferr
		}
		if err != nil {
			return nil, label, fmt.Errorf("C_FindObjects: %w", err)
		}
		if len(hs) != 1 {
			return nil, label, fmt.Errorf("C_FindObjects(%s): %d objects, want 1", label, len(hs))
		}
		return hs, label, nil
	}
	return &worker{
		do: func() error { _, _, err := find(); return err },
		check: func() error {
			hs, label, err := find()
			if err != nil {
				return err
			}
			at, err := ctx.GetAttributeValue(sh, hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
			if err != nil {
				return fmt.Errorf("C_GetAttributeValue(CKA_LABEL): %w", err)
			}
			if string(at[0].Value) != label {
				return fmt.Errorf("found %q looking for %q", at[0].Value, label)
			}
			return nil
		},
	}, nil
}
