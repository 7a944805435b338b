package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gohsm/gohsm/internal/conf"
	"github.com/gohsm/gohsm/tokens"
)

const tokenUsage = `usage: gohsm token <command> [flags]

commands:
  list                               list the tokens in the store
  check [--token T]                  full integrity check of one or all tokens
  backup --out F [--token T] (--passphrase-file P | --recipient PUB.pem)
                                     write one encrypted backup file of a token
  restore --in F (--passphrase-file P | --identity KEY.pem)
                                     add the token in a backup to the store
  keygen --out KEY.pem --pub PUB.pem make an X25519 key pair for --recipient/--identity
  wrapkey --label L --pin-file P [--token T] [--id HEX]
                                     make a local, never-extractable, wrap-only AES-256
                                     key: one that may wrap sensitive keys
  trust --label L --so-pin-file P [--token T]
                                     the SO marks the public objects labelled L
                                     CKA_TRUSTED: they may wrap sensitive keys

Every command takes --dir D (default: the store of GOHSM_CONF / GOHSM_DIR).
--token T picks a token by label or serial; it may be left out when the
store holds one token.`

// tokenCmd is `gohsm token`: offline management of the token store. It
// works on the files through the tokens package, so it is safe to run while
// applications use the tokens (SQLite's locks; backups read one snapshot).
func tokenCmd(args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, tokenUsage)
		return errors.New("no token command")
	}
	cmds := map[string]func([]string) error{
		"list": tokenList, "check": tokenCheck, "backup": tokenBackup,
		"restore": tokenRestore, "keygen": tokenKeygen,
		"wrapkey": tokenWrapKey, "trust": tokenTrust,
	}
	run, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintln(os.Stderr, tokenUsage)
		return fmt.Errorf("unknown token command %q", args[0])
	}
	return run(args[1:])
}

func storeDir(flagDir string) (string, error) {
	if flagDir != "" {
		return flagDir, nil
	}
	cfg, err := conf.Load(os.Getenv)
	if err != nil {
		return "", err
	}
	return cfg.Dir, nil
}

type tokenEntry struct {
	store         *tokens.Store
	label, serial string
	initialised   bool
}

func openTokens(dir string) (*tokens.Dir, []tokenEntry, error) {
	d, err := tokens.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	stores, err := d.Stores()
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	var out []tokenEntry
	for _, st := range stores {
		s := st.(*tokens.Store)
		rec, err := s.LoadToken()
		if err != nil {
			d.Close()
			return nil, nil, err
		}
		e := tokenEntry{store: s}
		if rec != nil {
			e.label, e.serial, e.initialised = rec.Label, rec.Serial, true
		}
		out = append(out, e)
	}
	return d, out, nil
}

// pickToken finds the token named by label or serial, or the only one.
func pickToken(all []tokenEntry, name string) (tokenEntry, error) {
	var match []tokenEntry
	for _, e := range all {
		if !e.initialised {
			continue
		}
		if name == "" || e.label == name || e.serial == name {
			match = append(match, e)
		}
	}
	switch {
	case len(match) == 1:
		return match[0], nil
	case len(match) == 0 && name == "":
		return tokenEntry{}, errors.New("the store holds no initialised token")
	case len(match) == 0:
		return tokenEntry{}, fmt.Errorf("no token with label or serial %q", name)
	case name == "":
		return tokenEntry{}, errors.New("the store holds several tokens: choose one with --token LABEL|SERIAL")
	default:
		return tokenEntry{}, fmt.Errorf("several tokens are labelled %q: name one by serial", name)
	}
}

func tokenList(args []string) error {
	fs := flag.NewFlagSet("token list", flag.ContinueOnError)
	dirFlag := fs.String("dir", "", "token store directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := storeDir(*dirFlag)
	if err != nil {
		return err
	}
	d, all, err := openTokens(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Printf("store %s\n", dir)
	fmt.Printf("%-4s %-12s %-32s %-16s %8s\n", "slot", "file", "label", "serial", "objects")
	for i, e := range all {
		n, err := e.store.Count()
		if err != nil {
			return err
		}
		label := e.label
		if !e.initialised {
			label = "(not initialised)"
		}
		fmt.Printf("%-4d %-12s %-32s %-16s %8d\n", i, filepath.Base(e.store.Path()), label, e.serial, n)
	}
	return nil
}

func tokenCheck(args []string) error {
	fs := flag.NewFlagSet("token check", flag.ContinueOnError)
	dirFlag := fs.String("dir", "", "token store directory")
	name := fs.String("token", "", "label or serial (default: every token)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := storeDir(*dirFlag)
	if err != nil {
		return err
	}
	d, all, err := openTokens(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if *name != "" {
		e, err := pickToken(all, *name)
		if err != nil {
			return err
		}
		all = []tokenEntry{e}
	}
	for _, e := range all {
		if err := e.store.Check(); err != nil {
			return err
		}
		fmt.Printf("%s %q: ok\n", filepath.Base(e.store.Path()), e.label)
	}
	return nil
}

// readPassphrase reads a passphrase file, less one trailing newline.
func readPassphrase(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: empty passphrase", path)
	}
	return b, nil
}

func readPEM(path, want string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != want {
		return nil, fmt.Errorf("%s: no %q PEM block", path, want)
	}
	return blk.Bytes, nil
}

func readRecipient(path string) (*ecdh.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k := k.(type) {
	case *ecdh.PublicKey:
		return k, nil
	case interface {
		ECDH() (*ecdh.PublicKey, error)
	}: // *ecdsa.PublicKey (P-256/384/521)
		return k.ECDH()
	}
	return nil, fmt.Errorf("%s: not an X25519 or NIST EC public key", path)
}

func readIdentity(path string) (*ecdh.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k := k.(type) {
	case *ecdh.PrivateKey:
		return k, nil
	case interface {
		ECDH() (*ecdh.PrivateKey, error)
	}:
		return k.ECDH()
	}
	return nil, fmt.Errorf("%s: not an X25519 or NIST EC private key", path)
}

func tokenBackup(args []string) error {
	fs := flag.NewFlagSet("token backup", flag.ContinueOnError)
	dirFlag := fs.String("dir", "", "token store directory")
	name := fs.String("token", "", "label or serial of the token")
	out := fs.String("out", "", "backup file to write")
	passFile := fs.String("passphrase-file", "", "file holding the passphrase (Argon2id)")
	recipient := fs.String("recipient", "", "PEM public key (X25519 or EC) to encrypt to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || (*passFile == "") == (*recipient == "") {
		return errors.New("need --out and exactly one of --passphrase-file, --recipient")
	}
	var key tokens.BackupKey
	var err error
	if *passFile != "" {
		key.Passphrase, err = readPassphrase(*passFile)
		defer clear(key.Passphrase)
	} else {
		key.Recipient, err = readRecipient(*recipient)
	}
	if err != nil {
		return err
	}
	dir, err := storeDir(*dirFlag)
	if err != nil {
		return err
	}
	d, all, err := openTokens(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	e, err := pickToken(all, *name)
	if err != nil {
		return err
	}
	// Written beside the target and renamed, so a failed backup never
	// leaves a partial file under the name given.
	f, err := os.CreateTemp(filepath.Dir(*out), ".gohsm-backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = e.store.Backup(f, key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), *out)
	}
	if err != nil {
		return err
	}
	fmt.Printf("backed up token %q (serial %s) to %s\n", e.label, e.serial, *out)
	return nil
}

func tokenRestore(args []string) error {
	fs := flag.NewFlagSet("token restore", flag.ContinueOnError)
	dirFlag := fs.String("dir", "", "token store directory")
	in := fs.String("in", "", "backup file to read")
	passFile := fs.String("passphrase-file", "", "file holding the passphrase")
	identity := fs.String("identity", "", "PEM private key the backup was encrypted to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || (*passFile == "") == (*identity == "") {
		return errors.New("need --in and exactly one of --passphrase-file, --identity")
	}
	var key tokens.BackupKey
	var err error
	if *passFile != "" {
		key.Passphrase, err = readPassphrase(*passFile)
		defer clear(key.Passphrase)
	} else {
		key.Identity, err = readIdentity(*identity)
	}
	if err != nil {
		return err
	}
	dir, err := storeDir(*dirFlag)
	if err != nil {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	d, err := tokens.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	s, err := d.Restore(f, key)
	if err != nil {
		return err
	}
	rec, err := s.LoadToken()
	if err != nil {
		return err
	}
	n, err := s.Count()
	if err != nil {
		return err
	}
	fmt.Printf("restored token %q (serial %s, %d objects) as %s\n", rec.Label, rec.Serial, n, filepath.Base(s.Path()))
	return nil
}

func tokenKeygen(args []string) error {
	fs := flag.NewFlagSet("token keygen", flag.ContinueOnError)
	out := fs.String("out", "", "private key file to write (PKCS#8 PEM, mode 0600)")
	pub := fs.String("pub", "", "public key file to write (PKIX PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *pub == "" {
		return errors.New("need --out and --pub")
	}
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	defer clear(der)
	pder, err := x509.MarshalPKIXPublicKey(k.PublicKey())
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(*pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644); err != nil {
		return err
	}
	fmt.Printf("X25519 key pair: %s (private), %s (public, for --recipient; key id %x)\n",
		*out, *pub, tokens.RecipientKeyID(k.PublicKey()))
	return nil
}
