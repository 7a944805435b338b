package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/gateway/kv"
)

func mustPolicy(t *testing.T, name, doc string) *Policy {
	t.Helper()
	p, err := Parse(name, doc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// TestACLVaultPriority checks the evaluation rules against the examples
// of Vault's policy documentation.
func TestACLVaultPriority(t *testing.T) {
	acl := NewACL(mustPolicy(t, "p", `
path "secret/*" { capabilities = ["read"] }
path "secret/super-secret" { capabilities = ["deny"] }
path "secret/restricted" { capabilities = ["create"] }
path "secret/+/teamb" { capabilities = ["update"] }
path "secret/+/foo/*" { capabilities = ["list"] }
path "secret/zip-*" { capabilities = ["delete"] }
path "transit/keys" { capabilities = ["list"] }
path "transit/encrypt/k" { capabilities = ["update"] }
path "transit/sign/+/sha2-256" { capabilities = ["update"] }
`))
	cases := []struct {
		path string
		c    Capability
		want bool
	}{
		{"secret/foo", Read, true},
		{"secret/foo/bar", Read, true},
		{"secret/super-secret", Read, false}, // exact deny beats the glob
		{"secret/restricted", Read, false},   // exact rule decides alone
		{"secret/restricted", Create, true},
		{"secret/a/teamb", Update, true},
		{"secret/a/teamb", Read, false},     // "+" rule is more specific than secret/*
		{"secret/a/b/teamb", Update, false}, // + is one segment
		// Equal first wildcard, both globs: more "+" segments is lower
		// priority (rule 3), so secret/* decides, not secret/+/foo/*.
		{"secret/x/foo/bar", List, false},
		{"secret/x/foo/bar", Read, true},
		{"secret/zip-zap", Delete, true},
		{"secret/zip-zap", Read, false},
		{"transit/keys", List, true},
		{"transit/keys/", List, true},
		{"transit/encrypt/k", Update, true},
		{"transit/encrypt/k", Create, false},
		{"transit/decrypt/k", Update, false}, // deny by default
		{"transit/encrypt/k2", Update, false},
		{"transit/sign/key1/sha2-256", Update, true},
		{"transit/sign/key1/sha2-512", Update, false},
		{"/transit/encrypt/k", Update, true}, // a leading slash is ignored
		{"transit/encrypt/k", Deny, false},
		{"transit/encrypt/k", Capability("fly"), false},
	}
	for _, c := range cases {
		if got := acl.Allowed(c.path, c.c); got != c.want {
			t.Errorf("Allowed(%q, %s) = %v, want %v", c.path, c.c, got, c.want)
		}
	}
	if got := fmt.Sprint(acl.Capabilities("secret/super-secret")); got != "[deny]" {
		t.Errorf("capabilities: %s", got)
	}
	if got := fmt.Sprint(acl.Capabilities("secret/foo")); got != "[read]" {
		t.Errorf("capabilities: %s", got)
	}
	var nilACL *ACL
	if nilACL.Allowed("a", Read) {
		t.Error("nil ACL allows")
	}
}

func TestACLMergeAndRoot(t *testing.T) {
	a := mustPolicy(t, "a", `path "transit/*" { capabilities = ["read"] }
path "transit/encrypt/k" { capabilities = ["update"] }`)
	b := mustPolicy(t, "b", `path "transit/*" { capabilities = ["list"] }`)
	d := mustPolicy(t, "d", `path "transit/*" { capabilities = ["deny"] }`)
	acl := NewACL(a, b)
	if !acl.Allowed("transit/x", Read) || !acl.Allowed("transit/x", List) {
		t.Error("same patterns in two policies are not unioned")
	}
	acl = NewACL(a, b, d)
	if acl.Allowed("transit/x", Read) {
		t.Error("deny on the same pattern does not win")
	}
	if !acl.Allowed("transit/encrypt/k", Update) {
		t.Error("a deny on a glob took away a more specific exact grant (Vault keeps it)")
	}
	root := NewACL(RootPolicy())
	if !root.IsRoot() || !root.Allowed("anything/at/all", Sudo) || fmt.Sprint(root.Capabilities("x")) != "[root]" {
		t.Error("root")
	}
	def := NewACL(DefaultPolicy())
	if !def.Allowed("auth/token/lookup-self", Read) || def.Allowed("transit/encrypt/k", Update) {
		t.Error("default policy")
	}
}

func TestParseForms(t *testing.T) {
	// JSON form, the old policy = "write" form, comments, heredocs.
	p := mustPolicy(t, "J", `{"path": {"transit/keys/*": {"capabilities": ["read", "list", "read"]}}}`)
	if p.Name != "j" || len(p.Paths) != 1 || fmt.Sprint(p.Paths[0].Capabilities) != "[read list]" {
		t.Fatalf("%+v", p)
	}
	p = mustPolicy(t, "old", `path "a/*" { policy = "write" }  # comment`)
	if fmt.Sprint(p.Paths[0].Capabilities) != "[create read update delete list]" {
		t.Fatalf("%v", p.Paths[0].Capabilities)
	}
	p = mustPolicy(t, "tpl", `path "secret/{{identity.entity.id}}/*" { capabilities = ["read"] }`)
	if !p.Paths[0].Templated || NewACL(p).Allowed("secret/x/y", Read) {
		t.Fatal("templated paths must never match")
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`path "a" { capabilities = ["fly"] }`, `invalid capability "fly"`},
		{"\n\npath \"a\" {\n capabilities = [\"read\"]\n allowed_parameters = { \"x\" = [] }\n}", "line 3"},
		{`path "a" { allowed_parameters = {} capabilities = ["read"] }`, "not supported"},
		{`path "a" {}`, "no capabilities"},
		{`path "a+*" { capabilities = ["read"] }`, "+*"},
		{`path "a" { capabilities = "read" }`, "must be a list"},
		{`key "a" { capabilities = ["read"] }`, "invalid key"},
		{`path "a" { capabilities = ["read"]`, "line"},
		{`path "a" { policy = "admin" }`, "invalid policy"},
		{`path "{{x" { capabilities = ["read"] }`, "not closed"},
	}
	for _, c := range cases {
		_, err := Parse("p", c.doc)
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.doc, err, c.want)
		}
	}
	if _, err := Parse("root", `path "a" { capabilities = ["read"] }`); err == nil {
		t.Error("root policy replaced")
	}
	if _, err := Parse("big", strings.Repeat(" ", MaxDocument+1)); err == nil {
		t.Error("oversized document accepted")
	}
	for _, n := range []string{"", "root", "a/b", "a?b", strings.Repeat("x", 129), "a\x01"} {
		if ValidateName(n) == nil {
			t.Errorf("name %q accepted", n)
		}
	}
}

func TestStore(t *testing.T) {
	s := NewStore(kv.NewMem(), kv.ErrNotFound, -1)
	if _, err := s.Put("enc", `path "transit/encrypt/*" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("bad", `path "x" {`); err == nil {
		t.Fatal("bad document stored")
	}
	names, _ := s.List()
	if fmt.Sprint(names) != "[default enc root]" {
		t.Fatalf("list %v", names)
	}
	acl, err := s.ACL([]string{"enc", "missing", "default"})
	if err != nil || !acl.Allowed("transit/encrypt/k", Update) || !acl.Allowed("auth/token/lookup-self", Read) {
		t.Fatalf("acl %v", err)
	}
	if err := s.Delete("default"); err == nil {
		t.Fatal("default deleted")
	}
	s.Delete("enc")
	if _, err := s.Get("enc"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	// A written default replaces the built-in one.
	s.Put("default", `path "sys/health" { capabilities = ["read"] }`)
	acl, _ = s.ACL([]string{"default"})
	if acl.Allowed("auth/token/lookup-self", Read) || !acl.Allowed("sys/health", Read) {
		t.Fatal("stored default not used")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`path "a/*" { capabilities = ["read"] }`, `{"path":{"a":{"capabilities":["deny"]}}}`,
		`path "a" { policy = "sudo" }`, `path "+/b/*" { capabilities = ["list"] comment = "x" }`,
		`path "a" { capabilities = [1] }`, "path \"a\" { capabilities = [<<EOT\nread\nEOT\n] }", `x = 1e999999`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := Parse("f", doc)
		if err != nil {
			return
		}
		acl := NewACL(p)
		for _, r := range p.Paths {
			acl.Allowed(r.Path, Read)
			acl.Capabilities(r.Path)
		}
	})
}
