package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	hclparser "github.com/hashicorp/hcl/hcl/parser"
	"github.com/hashicorp/hcl/hcl/token"
)

// Capability is one of Vault's policy capabilities.
type Capability string

// The capabilities. Root is never written in a policy: Capabilities reports
// it for a token with the root policy, as Vault's sys/capabilities does.
const (
	Create    Capability = "create"
	Read      Capability = "read"
	Update    Capability = "update"
	Delete    Capability = "delete"
	List      Capability = "list"
	Sudo      Capability = "sudo"
	Deny      Capability = "deny"
	Patch     Capability = "patch"     // accepted, grants nothing in the gateway
	Subscribe Capability = "subscribe" // accepted, grants nothing in the gateway
	Recover   Capability = "recover"   // accepted, grants nothing in the gateway
	Root      Capability = "root"      // reported only
)

// Capability bits. deny is exclusive: a merged rule holding it holds nothing else.
const (
	bitDeny uint32 = 1 << iota
	bitCreate
	bitRead
	bitUpdate
	bitDelete
	bitList
	bitSudo
	bitPatch
	bitSubscribe
	bitRecover
)

// reportOrder is the order in which Capabilities lists a rule's
// capabilities: Vault's sys/capabilities order.
var reportOrder = []struct {
	c   Capability
	bit uint32
}{
	{Sudo, bitSudo}, {Read, bitRead}, {List, bitList}, {Update, bitUpdate}, {Delete, bitDelete},
	{Create, bitCreate}, {Patch, bitPatch}, {Subscribe, bitSubscribe}, {Recover, bitRecover},
}

// bit returns the capability's bit, 0 for an unknown one (a switch: no map
// lookup on the request path).
func (c Capability) bit() uint32 {
	switch c {
	case Deny:
		return bitDeny
	case Create:
		return bitCreate
	case Read:
		return bitRead
	case Update:
		return bitUpdate
	case Delete:
		return bitDelete
	case List:
		return bitList
	case Sudo:
		return bitSudo
	case Patch:
		return bitPatch
	case Subscribe:
		return bitSubscribe
	case Recover:
		return bitRecover
	}
	return 0
}

// Valid reports whether c is a capability a policy may grant.
func (c Capability) Valid() bool { return c.bit() != 0 }

// Policy is a parsed policy document.
type Policy struct {
	// Name is the name given to Parse, normalised (NormalizeName).
	Name string
	// Raw is the document as given, for reading it back (sys/policy/:name).
	Raw string
	// Paths are the document's path blocks in document order.
	Paths []PathRule

	root bool // the built-in root policy
}

// PathRule is one path block.
type PathRule struct {
	// Path is the pattern as written, without a leading '/'.
	Path string
	// Capabilities are the block's capabilities, deduplicated, in document
	// order; just [deny] if the block lists deny.
	Capabilities []Capability
	// Line is the block's line in the document (0 when the JSON form gives
	// no position).
	Line int
	// Templated reports a {{...}} template in the path: such a rule never
	// matches, since gateway tokens have no identity entity to fill it.
	Templated bool

	bits uint32
}

// ParseError is Parse's error: the policy, the line (0 if unknown) and what
// is wrong.
type ParseError struct {
	Policy string
	Line   int
	Column int
	Msg    string
}

func (e *ParseError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("policy %q: line %d, column %d: %s", e.Policy, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("policy %q: line %d: %s", e.Policy, e.Line, e.Msg)
	}
	return fmt.Sprintf("policy %q: %s", e.Policy, e.Msg)
}

// MaxDocument bounds a policy document's size (Vault has no explicit limit;
// its request body limit is 32 MiB). The gateway's body limit applies first.
const MaxDocument = 1 << 20

// NormalizeName returns a policy name as Vault stores it: trimmed and
// lower-cased.
func NormalizeName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// ValidateName checks a policy name given to sys/policies/acl/:name: not
// empty, not "root" (built in, immutable), and without characters that
// cannot appear in one URL path segment.
func ValidateName(name string) error {
	n := NormalizeName(name)
	switch {
	case n == "":
		return errors.New("policy name is empty")
	case n == "root":
		return errors.New("cannot update the root policy")
	case len(n) > 128:
		return errors.New("policy name is longer than 128 characters")
	case strings.ContainsAny(n, "/?#%\x00") || strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("policy name %q has a character not allowed in a name", name)
	}
	return nil
}

// Keys of a path block.
var (
	validPathKeys = map[string]bool{"capabilities": true, "policy": true, "comment": true, "subscribe_event_types": true}
	// refusedPathKeys narrow a grant; ignoring them would grant more than written.
	refusedPathKeys = map[string]string{
		"allowed_parameters":  "parameter constraints",
		"denied_parameters":   "parameter constraints",
		"required_parameters": "parameter constraints",
		"min_wrapping_ttl":    "response wrapping",
		"max_wrapping_ttl":    "response wrapping",
		"mfa_methods":         "MFA (Vault Enterprise)",
		"control_group":       "control groups (Vault Enterprise)",
	}
)

var templateRE = regexp.MustCompile(`\{\{[^{}]*\}\}`)

// Parse parses a policy document, HCL or JSON, as Vault's sys/policy
// endpoints take it. name is the policy's name (normalised with
// NormalizeName; "root" is refused: it is built in). Errors are
// *ParseError with the line of the problem where the document gives one.
func Parse(name, doc string) (p *Policy, err error) {
	name = NormalizeName(name)
	perr := func(line, col int, format string, a ...any) error {
		return &ParseError{Policy: name, Line: line, Column: col, Msg: fmt.Sprintf(format, a...)}
	}
	if name == "root" {
		return nil, perr(0, 0, "the root policy is built in and cannot be changed")
	}
	if len(doc) > MaxDocument {
		return nil, perr(0, 0, "document of %d bytes, more than the %d allowed", len(doc), MaxDocument)
	}
	defer func() {
		// hcl v1's token decoder panics on some malformed literals (a number
		// out of range, a broken escape); that is a malformed document.
		if r := recover(); r != nil {
			p, err = nil, perr(0, 0, "malformed document: %v", r)
		}
	}()
	file, err := hcl.Parse(doc)
	if err != nil {
		return nil, hclError(name, err)
	}
	list, ok := file.Node.(*ast.ObjectList)
	if !ok {
		return nil, perr(0, 0, "the document is not a list of path blocks")
	}
	p = &Policy{Name: name, Raw: doc}
	for _, item := range list.Items {
		line := itemLine(item)
		if len(item.Keys) == 0 {
			return nil, perr(line, 0, "an item without a key")
		}
		key, err := keyString(item.Keys[0])
		if err != nil {
			return nil, perr(line, 0, "%v", err)
		}
		switch strings.ToLower(key) {
		case "name":
			continue // Vault ignores it too: the name is the API's
		case "path":
		default:
			return nil, perr(line, 0, "invalid key %q (a policy holds path blocks)", key)
		}
		if len(item.Keys) != 2 {
			return nil, perr(line, 0, `a path block takes one path: path "transit/encrypt/k" { capabilities = ["update"] }`)
		}
		rule, err := parsePath(item, line)
		if err != nil {
			return nil, &ParseError{Policy: name, Line: line, Msg: err.Error()}
		}
		p.Paths = append(p.Paths, rule)
	}
	return p, nil
}

func parsePath(item *ast.ObjectItem, line int) (PathRule, error) {
	path, err := keyString(item.Keys[1])
	if err != nil {
		return PathRule{}, err
	}
	// Vault strips one leading '/': paths start after /v1/.
	path = strings.TrimPrefix(path, "/")
	r := PathRule{Path: path, Line: line}
	if strings.Contains(path, "+*") {
		return r, fmt.Errorf("path %q: invalid use of wildcards ('+*' is forbidden)", path)
	}
	if strings.Contains(path, "{{") || strings.Contains(path, "}}") {
		rest := templateRE.ReplaceAllString(path, "")
		if strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
			return r, fmt.Errorf("path %q: a template {{...}} is not closed", path)
		}
		r.Templated = true
	}
	obj, ok := item.Val.(*ast.ObjectType)
	if !ok {
		return r, fmt.Errorf(`path %q: want a block: path %q { capabilities = ["read"] }`, path, path)
	}
	var caps []string
	seenCaps := false
	for _, a := range obj.List.Items {
		if len(a.Keys) != 1 {
			return r, fmt.Errorf("path %q: malformed item", path)
		}
		k, err := keyString(a.Keys[0])
		if err != nil {
			return r, fmt.Errorf("path %q: %v", path, err)
		}
		k = strings.ToLower(k)
		if what, refused := refusedPathKeys[k]; refused {
			return r, fmt.Errorf("path %q: %s is not supported by the gohsm gateway (%s would be ignored, granting more than the policy says); remove it", path, k, what)
		}
		if !validPathKeys[k] {
			return r, fmt.Errorf("path %q: invalid key %q (want capabilities)", path, k)
		}
		switch k {
		case "capabilities":
			l, ok := a.Val.(*ast.ListType)
			if !ok {
				return r, fmt.Errorf(`path %q: capabilities must be a list of strings: capabilities = ["read"]`, path)
			}
			seenCaps = true
			for _, e := range l.List {
				s, ok := stringLit(e)
				if !ok {
					return r, fmt.Errorf(`path %q: capabilities must be a list of strings: capabilities = ["read"]`, path)
				}
				caps = append(caps, s)
			}
		case "policy":
			s, ok := stringLit(a.Val)
			if !ok {
				return r, fmt.Errorf("path %q: policy must be a string", path)
			}
			// Vault's mapping of the old single-word policies.
			switch s {
			case "deny":
				caps = append(caps, "deny")
			case "read":
				caps = append(caps, "read", "list")
			case "write":
				caps = append(caps, "create", "read", "update", "delete", "list")
			case "sudo":
				caps = append(caps, "create", "read", "update", "delete", "list", "sudo")
			default:
				return r, fmt.Errorf("path %q: invalid policy %q (want deny, read, write or sudo)", path, s)
			}
			seenCaps = true
		case "comment":
			if _, ok := stringLit(a.Val); !ok {
				return r, fmt.Errorf("path %q: comment must be a string", path)
			}
		case "subscribe_event_types":
			// Accepted and ignored: it only widens "subscribe".
		}
	}
	if !seenCaps {
		return r, fmt.Errorf(`path %q: no capabilities (write capabilities = ["read"], or ["deny"])`, path)
	}
	for _, c := range caps {
		b := Capability(c).bit()
		if b == 0 {
			return r, fmt.Errorf("path %q: invalid capability %q (want create, read, update, patch, delete, list, sudo, deny)", path, c)
		}
		if b == bitDeny {
			r.Capabilities, r.bits = []Capability{Deny}, bitDeny
			return r, nil
		}
		if r.bits&b == 0 {
			r.bits |= b
			r.Capabilities = append(r.Capabilities, Capability(c))
		}
	}
	if r.Capabilities == nil {
		r.Capabilities = []Capability{}
	}
	return r, nil
}

// keyString is an object key's text: a quoted string or a bare identifier.
func keyString(k *ast.ObjectKey) (string, error) {
	switch k.Token.Type {
	case token.STRING, token.IDENT:
		return k.Token.Value().(string), nil
	}
	return "", fmt.Errorf("a key must be a string, not %s", k.Token.Type)
}

// stringLit returns a string literal's value (a quoted string or heredoc).
func stringLit(n ast.Node) (string, bool) {
	lit, ok := n.(*ast.LiteralType)
	if !ok {
		return "", false
	}
	switch lit.Token.Type {
	case token.STRING, token.HEREDOC:
		return lit.Token.Value().(string), true
	}
	return "", false
}

// itemLine is the first known line of an item: its key, else its value, else
// anything inside it (the JSON parser leaves flattened keys without one).
func itemLine(item *ast.ObjectItem) int {
	line := 0
	ast.Walk(item, func(n ast.Node) (ast.Node, bool) {
		if line != 0 || n == nil {
			return n, false
		}
		if pos := n.Pos(); pos.Line > 0 {
			line = pos.Line
			return n, false
		}
		return n, true
	})
	return line
}

// hcl v1 reports "At L:C: msg" (hcl parser) or "L:C: msg" (JSON parser), and
// duplicate attributes as "... at L:C was already set ...".
var posRE = regexp.MustCompile(`(?:^|at |At )(\d+):(\d+)`)

func hclError(name string, err error) error {
	msg := err.Error()
	var pe *hclparser.PosError
	if errors.As(err, &pe) && pe.Pos.Line > 0 {
		return &ParseError{Policy: name, Line: pe.Pos.Line, Column: pe.Pos.Column, Msg: pe.Err.Error()}
	}
	pe2 := &ParseError{Policy: name, Msg: msg}
	if m := posRE.FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &pe2.Line)
		fmt.Sscan(m[2], &pe2.Column)
		if strings.HasPrefix(msg, m[0]) {
			pe2.Msg = strings.TrimPrefix(strings.TrimPrefix(msg, m[0]), ": ")
		}
	}
	return pe2
}
