// Package policy is the gateway's authorisation: Vault's ACL policies, parsed
// as Vault parses them and evaluated with Vault's rules, so that a policy
// written for Vault's Transit engine means the same thing here.
//
// # Documents
//
// A policy is an HCL document of path blocks, or the same in JSON:
//
//	path "transit/encrypt/payments" { capabilities = ["update"] }
//	path "transit/keys/*"           { capabilities = ["read", "list"] }
//	path "transit/+/payments"       { capabilities = ["deny"] }
//
//	{"path": {"transit/encrypt/payments": {"capabilities": ["update"]}}}
//
// The parser is github.com/hashicorp/hcl v1 at the tag Vault itself pins
// (v1.0.1-vault-7, the module path github.com/hashicorp/hcl; it is also what
// github.com/hashicorp/vault/api v1.23 pulls in). It is the parser Vault
// runs on policies, so a document Vault accepts parses the same way here:
// HCL v1 syntax (HCL v2's native syntax is a different language — it has no
// JSON auto-detection, reads `key = { ... }` maps differently and would need
// a schema-driven JSON decoder), the JSON form detected by a leading '{', and
// the vault-7 tag's rule that an attribute set twice in one block (two
// `capabilities`) is an error while repeated `path` blocks are not. hcl v1 is
// in maintenance (archived upstream), which is acceptable for a frozen
// grammar that Vault keeps using; Parse recovers from the few panics its
// token decoder can raise on malformed literals, so a bad document is an
// error, never a crash (FuzzParse).
//
// Keys: at the top level "path" and "name" ("name" is ignored: the name is
// the one given to Parse, as in Vault). In a path block "capabilities",
// "policy" (Vault's pre-0.6 form: deny, read, write, sudo, mapped to
// capabilities as Vault maps them) and "comment". The parameter and
// response-wrapping constraints (allowed_parameters, denied_parameters,
// required_parameters, min_wrapping_ttl, max_wrapping_ttl) and Enterprise
// keys (mfa_methods, control_group) are refused with an error naming the
// line: each one narrows a grant, so ignoring it would grant more than the
// document says. subscribe_event_types is accepted and ignored (it only
// widens "subscribe", which no gateway endpoint uses).
//
// Capabilities: create, read, update, delete, list, sudo, deny, and Vault's
// newer patch, subscribe and recover, which are accepted and kept (Allowed
// and Capabilities report them) but grant nothing here, since no gateway
// endpoint maps to them. An unknown capability is an error. "deny" in a
// list makes the whole list deny, as in Vault. A path block with an empty
// capability list is a rule that matches and grants nothing (it hides less
// specific rules), as in Vault.
//
// Templated paths (`{{identity.entity.id}}` and the like): gateway tokens
// have no identity entity, so, as Vault does for a token whose template
// cannot be filled, such a path never matches. It is accepted (so Vault
// policies that carry one, like many default policies, can be stored) and
// reported by PathRule.Templated; a "{{" without its "}}" is an error.
//
// # Evaluation (https://developer.hashicorp.com/vault/docs/concepts/policies)
//
//   - Deny by default: a path no rule matches has no capability.
//   - Path forms: "a/b" exact; "a/b*" a prefix glob (the '*' only as the last
//     character: "secret/bar/*" matches "secret/bar/zip/zap" but not
//     "secret/bars/zip"; "secret/zip-*" matches "secret/zip-zap"); a "+"
//     segment matches exactly one segment ("secret/+/teamb"), and may be
//     combined with a trailing glob ("secret/+/foo/*"); "+*" is an error, as
//     in Vault. A '*' elsewhere is a literal character.
//   - One rule decides: an exact rule for the path if there is one (for any
//     capability); otherwise the highest-priority matching glob or "+" rule,
//     where for two matching patterns P1 and P2 (the docs' list, in order):
//     1. if the first "+" or "*" occurs earlier in P1, P1 is lower priority;
//     2. if P1 ends in "*" and P2 does not, P1 is lower priority;
//     3. if P1 has more "+" segments, P1 is lower priority;
//     4. if P1 is shorter, it is lower priority;
//     5. if P1 is smaller lexicographically, it is lower priority.
//     (A plain glob "a/b*" counts its '*' position as its first wildcard; only
//     the longest matching plain glob competes, as in Vault's radix tree.)
//   - Several policies on one token: rules with the same pattern are merged
//     (union of capabilities, but deny if any of them says deny: "deny
//     always takes precedence"); different patterns are not merged — only the
//     highest-priority one applies. So a deny on "transit/*" does NOT take
//     away an exact "transit/encrypt/k" grant in another policy, exactly as
//     in Vault: deny wins between equal patterns and wherever it is the most
//     specific match.
//   - LIST: Vault's HTTP layer gives list requests a trailing slash; Allowed
//     adds it if missing, and then, as Vault does, an exact rule for the path
//     with or without the slash applies, and glob rules are tried on the path
//     without the slash before the path with it (so "transit/keys" and
//     "transit/keys/*" both grant listing "transit/keys").
//   - The root policy allows everything, sudo included; the default policy
//     grants the token self-service paths (DefaultPolicyHCL).
//
// An ACL is immutable and safe for concurrent use; build a new one when the
// policies change (Vault re-reads policies on every request; the core may
// cache an ACL per policy set and rebuild it when a policy is written).
// Allowed allocates nothing.
package policy
