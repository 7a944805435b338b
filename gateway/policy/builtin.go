package policy

// DefaultPolicyHCL is the built-in default policy: the token self-service
// paths of Vault's default policy (look up, renew and revoke the calling
// token, and ask what it may do). Vault's default policy also grants
// cubbyhole, response wrapping, leases, identity and control-group paths,
// which the gateway does not have. Like Vault's, it may be overwritten
// (sys/policy/default) but not deleted; every token gets it unless created
// with no_default_policy.
const DefaultPolicyHCL = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}
`

var (
	rootPolicy    = &Policy{Name: "root", root: true}
	defaultPolicy = mustParse("default", DefaultPolicyHCL)
)

func mustParse(name, doc string) *Policy {
	p, err := Parse(name, doc)
	if err != nil {
		panic(err)
	}
	return p
}

// RootPolicy returns the built-in root policy: everything, sudo included. It
// has no document (Raw is empty) and cannot be changed or deleted.
func RootPolicy() *Policy { return rootPolicy }

// DefaultPolicy returns the built-in default policy (DefaultPolicyHCL),
// parsed. The core serves a stored "default" instead if one was written.
func DefaultPolicy() *Policy { return defaultPolicy }

// IsRoot reports whether p is the built-in root policy.
func (p *Policy) IsRoot() bool { return p != nil && p.root }
