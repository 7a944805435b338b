package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
	"github.com/gohsm/gohsm/tokens"
)

// The two ways to have a key that may wrap sensitive keys (hsm/wrap.go),
// as administrator commands: generic PKCS#11 tools cannot make either
// (pkcs11-tool's --usage-wrap leaves CKA_DECRYPT and CKA_UNWRAP on, and no
// tool sets CKA_TRUSTED). Both work through the engine on the store, so
// every rule of the engine applies; PINs come from files, never argv.

// tokenWrapKey is `gohsm token wrapkey`: a local, never-extractable AES-256
// token key with CKA_WRAP and nothing else.
func tokenWrapKey(args []string) error {
	fs := flag.NewFlagSet("token wrapkey", flag.ContinueOnError)
	dir := fs.String("dir", "", "token store directory")
	name := fs.String("token", "", "token label or serial")
	label := fs.String("label", "", "CKA_LABEL of the new key")
	id := fs.String("id", "", "CKA_ID of the new key, hex")
	pinFile := fs.String("pin-file", "", "file holding the user PIN")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *label == "" || *pinFile == "" {
		return errors.New("need --label and --pin-file")
	}
	pin, err := readPassphrase(*pinFile)
	if err != nil {
		return err
	}
	defer clear(pin)
	tmpl := []ck.Attribute{
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_LABEL, Value: []byte(*label)},
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)},
		{Type: ck.CKA_EXTRACTABLE, Value: attr.Bool(false)},
		{Type: ck.CKA_WRAP, Value: attr.Bool(true)},
		{Type: ck.CKA_UNWRAP, Value: attr.Bool(false)},
		{Type: ck.CKA_ENCRYPT, Value: attr.Bool(false)},
		{Type: ck.CKA_DECRYPT, Value: attr.Bool(false)},
		{Type: ck.CKA_SIGN, Value: attr.Bool(false)},
		{Type: ck.CKA_VERIFY, Value: attr.Bool(false)},
		{Type: ck.CKA_DERIVE, Value: attr.Bool(false)},
	}
	if *id != "" {
		v, err := hex.DecodeString(*id)
		if err != nil {
			return fmt.Errorf("--id: %w", err)
		}
		tmpl = append(tmpl, ck.Attribute{Type: ck.CKA_ID, Value: v})
	}
	return withSession(*dir, *name, ck.CKU_USER, pin, func(m *hsm.Module, s ck.SessionHandle) error {
		if _, err := m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		fmt.Printf("made %q: a local, never-extractable AES-256 key that may only wrap; it wraps sensitive keys\n", *label)
		return nil
	})
}

// tokenTrust is `gohsm token trust`: the SO sets CKA_TRUSTED on the public
// objects (public keys, secret keys made with CKA_PRIVATE false,
// certificates) labelled --label.
func tokenTrust(args []string) error {
	fs := flag.NewFlagSet("token trust", flag.ContinueOnError)
	dir := fs.String("dir", "", "token store directory")
	name := fs.String("token", "", "token label or serial")
	label := fs.String("label", "", "CKA_LABEL of the key to trust")
	pinFile := fs.String("so-pin-file", "", "file holding the SO PIN")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *label == "" || *pinFile == "" {
		return errors.New("need --label and --so-pin-file")
	}
	pin, err := readPassphrase(*pinFile)
	if err != nil {
		return err
	}
	defer clear(pin)
	return withSession(*dir, *name, ck.CKU_SO, pin, func(m *hsm.Module, s ck.SessionHandle) error {
		if err := m.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(*label)}}); err != nil {
			return err
		}
		hs, err := m.FindObjects(s, 16)
		m.FindObjectsFinal(s)
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("no public object labelled %q (the SO sees no private objects)", *label)
		}
		for _, h := range hs {
			if err := m.SetAttributeValue(s, h, []ck.Attribute{{Type: ck.CKA_TRUSTED, Value: attr.Bool(true)}}); err != nil {
				return fmt.Errorf("trust object %d: %w", h, err)
			}
		}
		fmt.Printf("CKA_TRUSTED set on %d object(s) labelled %q\n", len(hs), *label)
		return nil
	})
}

// withSession runs f in an R/W session logged in as user on the token.
func withSession(dirFlag, name string, user ck.UserType, pin []byte, f func(*hsm.Module, ck.SessionHandle) error) error {
	dir, err := storeDir(dirFlag)
	if err != nil {
		return err
	}
	cfg, err := conf.Load(os.Getenv)
	if err != nil {
		return err
	}
	st, err := tokens.Open(dir)
	if err != nil {
		return err
	}
	hc := hsm.DefaultConfig(st)
	hc.Profile = cfg.Profile
	if cfg.KDFIterations > 0 {
		hc.KDFIterations = cfg.KDFIterations
	}
	if hc.Policy, err = hsm.ParsePolicy(cfg.Policy); err != nil {
		return err
	}
	m, err := hsm.New(hc)
	if err != nil {
		return err
	}
	if err := m.Initialize(); err != nil {
		return err
	}
	defer m.Finalize()
	slots, err := m.GetSlotList(true)
	if err != nil {
		return err
	}
	var match []ck.SlotID
	for _, sl := range slots {
		info, err := m.GetTokenInfo(sl)
		if err != nil || info.Flags&ck.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if name == "" || info.Label == name || info.SerialNumber == name {
			match = append(match, sl)
		}
	}
	if len(match) != 1 {
		return fmt.Errorf("%d tokens match %q: name one with --token LABEL|SERIAL", len(match), name)
	}
	s, err := m.OpenSession(match[0], ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		return err
	}
	if err := m.Login(s, user, pin); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	return f(m, s)
}
