package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// gohsm transit: the common gateway calls from a shell, through
// github.com/hashicorp/vault/api (so exactly what a Vault client sends).
const transitUsage = `usage: gohsm transit [--addr URL] [--token T | --token-file F] [--mount M] COMMAND ARGS

  create NAME [--type T]         make a key (aes256-gcm96 by default; docs/gateway.md lists the types)
  read NAME                      the key's versions, public keys, supports_*
  list                           key names
  rotate NAME                    add a version
  encrypt NAME [TEXT]            TEXT (or standard input) -> vault:vN:...
  decrypt NAME CIPHERTEXT        -> the plaintext, raw, on standard output
  rewrap NAME CIPHERTEXT         -> the ciphertext under the latest version
  sign NAME [TEXT]               -> vault:vN:signature
  verify NAME SIGNATURE [TEXT]   valid or invalid (exit 1); --hmac: SIGNATURE is an HMAC
  hmac NAME [TEXT]               -> vault:vN:hmac
  datakey NAME [--plaintext]     a data key: wrapped, and with --plaintext its base64 plaintext too
  policy NAME FILE               write an ACL policy (HCL) from FILE
  token [--policy P,...] [--ttl 1h] [--uses N]   a new token (printed once)

--addr defaults to $VAULT_ADDR, else http://127.0.0.1:8200; the token to $VAULT_TOKEN
(or --token-file, e.g. D/token of gohsm serve --dev); --mount to transit.`

func transitCmd(args []string) error { return transitMain(args, os.Stdin, os.Stdout, os.Stderr) }

func transitMain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("transit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, transitUsage) }
	addr := fs.String("addr", os.Getenv("VAULT_ADDR"), "the gateway's URL")
	tok := fs.String("token", "", "the token (default $VAULT_TOKEN)")
	tokFile := fs.String("token-file", "", "read the token from this file")
	mount := fs.String("mount", "transit", "the transit mount")
	typ := fs.String("type", "", "create: the key type")
	plaintext := fs.Bool("plaintext", false, "datakey: also return the plaintext key")
	pols := fs.String("policy", "", "token: policies, comma-separated")
	ttl := fs.String("ttl", "", "token: TTL (1h, 30m, ...)")
	uses := fs.Int("uses", 0, "token: number of uses (0: unlimited)")
	isHMAC := fs.Bool("hmac", false, "verify: SIGNATURE is an HMAC (from hmac)")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, transitUsage)
		return errors.New("no command")
	}
	cfg := vault.DefaultConfig()
	cfg.Address = *addr
	if cfg.Address == "" {
		cfg.Address = "http://" + devHTTP
	}
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		return err
	}
	switch {
	case *tok != "":
		c.SetToken(*tok)
	case *tokFile != "":
		b, err := os.ReadFile(*tokFile)
		if err != nil {
			return err
		}
		c.SetToken(strings.TrimSpace(string(b)))
	}
	m := strings.Trim(*mount, "/") + "/"
	cmd, rest := pos[0], pos[1:]
	need := func(n int, what string) error {
		if len(rest) < n {
			return fmt.Errorf("%s: want %s", cmd, what)
		}
		return nil
	}
	// input is TEXT from the arguments, else standard input.
	input := func(i int) (string, error) {
		if len(rest) > i {
			return base64.StdEncoding.EncodeToString([]byte(rest[i])), nil
		}
		b, err := io.ReadAll(io.LimitReader(stdin, 32<<20))
		return base64.StdEncoding.EncodeToString(b), err
	}
	write := func(path string, data map[string]any) (map[string]any, error) {
		s, err := c.Logical().Write(m+path, data)
		if err != nil {
			return nil, err
		}
		if s == nil {
			return map[string]any{}, nil
		}
		return s.Data, nil
	}
	show := func(v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	switch cmd {
	case "create":
		if err := need(1, "NAME"); err != nil {
			return err
		}
		d := map[string]any{}
		if *typ != "" {
			d["type"] = *typ
		}
		r, err := write("keys/"+rest[0], d)
		if err != nil {
			return err
		}
		return show(r)
	case "read":
		if err := need(1, "NAME"); err != nil {
			return err
		}
		s, err := c.Logical().Read(m + "keys/" + rest[0])
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("no key %q", rest[0])
		}
		return show(s.Data)
	case "list":
		s, err := c.Logical().List(m + "keys")
		if err != nil {
			return err
		}
		if s != nil {
			if keys, ok := s.Data["keys"].([]any); ok {
				for _, k := range keys {
					fmt.Fprintln(stdout, k)
				}
			}
		}
		return nil
	case "rotate":
		if err := need(1, "NAME"); err != nil {
			return err
		}
		r, err := write("keys/"+rest[0]+"/rotate", nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: latest version %v\n", rest[0], r["latest_version"])
		return nil
	case "encrypt", "sign", "hmac":
		if err := need(1, "NAME [TEXT]"); err != nil {
			return err
		}
		in, err := input(1)
		if err != nil {
			return err
		}
		field, out := "plaintext", "ciphertext"
		if cmd != "encrypt" {
			field, out = "input", map[string]string{"sign": "signature", "hmac": "hmac"}[cmd]
		}
		r, err := write(cmd+"/"+rest[0], map[string]any{field: in})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, r[out])
		return nil
	case "decrypt":
		if err := need(2, "NAME CIPHERTEXT"); err != nil {
			return err
		}
		r, err := write("decrypt/"+rest[0], map[string]any{"ciphertext": rest[1]})
		if err != nil {
			return err
		}
		pt, err := base64.StdEncoding.DecodeString(fmt.Sprint(r["plaintext"]))
		if err != nil {
			return fmt.Errorf("the gateway's plaintext is not base64: %w", err)
		}
		_, err = stdout.Write(pt)
		return err
	case "rewrap":
		if err := need(2, "NAME CIPHERTEXT"); err != nil {
			return err
		}
		r, err := write("rewrap/"+rest[0], map[string]any{"ciphertext": rest[1]})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, r["ciphertext"])
		return nil
	case "verify":
		if err := need(2, "NAME SIGNATURE [TEXT]"); err != nil {
			return err
		}
		in, err := input(2)
		if err != nil {
			return err
		}
		field := "signature"
		if *isHMAC {
			field = "hmac"
		}
		r, err := write("verify/"+rest[0], map[string]any{"input": in, field: rest[1]})
		if err != nil {
			return err
		}
		if r["valid"] != true {
			fmt.Fprintln(stdout, "invalid")
			return errors.New("the signature does not verify")
		}
		fmt.Fprintln(stdout, "valid")
		return nil
	case "datakey":
		if err := need(1, "NAME"); err != nil {
			return err
		}
		kind := "wrapped"
		if *plaintext {
			kind = "plaintext"
		}
		r, err := write("datakey/"+kind+"/"+rest[0], nil)
		if err != nil {
			return err
		}
		return show(r)
	case "policy":
		if err := need(2, "NAME FILE"); err != nil {
			return err
		}
		doc, err := os.ReadFile(rest[1])
		if err != nil {
			return err
		}
		if err := c.Sys().PutPolicy(rest[0], string(doc)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "policy %s written\n", rest[0])
		return nil
	case "token":
		req := &vault.TokenCreateRequest{TTL: *ttl, NumUses: *uses}
		if *pols != "" {
			req.Policies = strings.Split(*pols, ",")
		}
		s, err := c.Auth().Token().Create(req)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\naccessor %s, policies %s\n", s.Auth.ClientToken, s.Auth.Accessor, strings.Join(s.Auth.Policies, ","))
		return nil
	}
	fmt.Fprintln(stderr, transitUsage)
	return fmt.Errorf("unknown command %q", cmd)
}
