package policy

import (
	"sort"
	"strings"
)

// ACL is the set of policies on one token, compiled for evaluation. It is
// immutable and safe for concurrent use.
type ACL struct {
	root bool
	// exact rules by path; prefix (plain glob) rules longest first; "+" rules.
	exact    map[string]uint32
	prefixes []prefixRule
	wild     []wildRule
	names    []string
}

type prefixRule struct {
	prefix string // the pattern without its '*'
	bits   uint32
}

// wildRule is a pattern with a "+" segment (Vault's segment wildcard path),
// with or without a trailing glob.
type wildRule struct {
	full      string   // the pattern as written: the merge key
	wcPath    string   // without the trailing '*'
	segs      []string // wcPath split on '/'
	isPrefix  bool     // ended in '*'
	firstWC   int      // index of the first '+' in full
	wildcards int      // number of "+" segments
	bits      uint32
}

// merge combines a rule's capabilities with those of the same pattern in
// another policy: union, but deny is exclusive and wins.
func merge(old, add uint32) uint32 {
	if old&bitDeny != 0 || add&bitDeny != 0 {
		return bitDeny
	}
	return old | add
}

// hasSegmentWildcards is Vault's test for a "+" path: the pattern is "+",
// starts with "+/", or has "/+" anywhere.
func hasSegmentWildcards(p string) bool {
	return p == "+" || strings.HasPrefix(p, "+/") || strings.Contains(p, "/+")
}

// NewACL compiles policies into an ACL. nil policies are skipped; the root
// policy makes the ACL allow everything; templated paths are left out (they
// never match).
func NewACL(policies ...*Policy) *ACL {
	a := &ACL{exact: map[string]uint32{}}
	prefixes := map[string]uint32{}
	wild := map[string]uint32{}
	for _, p := range policies {
		if p == nil {
			continue
		}
		a.names = append(a.names, p.Name)
		if p.root {
			a.root = true
			continue
		}
		for _, r := range p.Paths {
			if r.Templated {
				continue
			}
			var m map[string]uint32
			key := r.Path
			switch {
			case hasSegmentWildcards(key):
				m = wild // the trailing '*' stays in the key
			case strings.HasSuffix(key, "*"):
				m, key = prefixes, strings.TrimSuffix(key, "*")
			default:
				m = a.exact
			}
			if old, ok := m[key]; ok {
				m[key] = merge(old, r.bits)
			} else {
				m[key] = r.bits
			}
		}
	}
	for p, b := range prefixes {
		a.prefixes = append(a.prefixes, prefixRule{p, b})
	}
	// Longest first, so the first match is the longest prefix (ties cannot
	// both match unless equal, and equal prefixes were merged).
	sort.Slice(a.prefixes, func(i, j int) bool {
		if len(a.prefixes[i].prefix) != len(a.prefixes[j].prefix) {
			return len(a.prefixes[i].prefix) > len(a.prefixes[j].prefix)
		}
		return a.prefixes[i].prefix < a.prefixes[j].prefix
	})
	for full, b := range wild {
		w := wildRule{full: full, wcPath: full, firstWC: strings.Index(full, "+"), bits: b}
		if strings.HasSuffix(full, "*") {
			w.isPrefix, w.wcPath = true, strings.TrimSuffix(full, "*")
		}
		w.segs = strings.Split(w.wcPath, "/")
		for _, s := range w.segs {
			if s == "+" {
				w.wildcards++
			}
		}
		a.wild = append(a.wild, w)
	}
	sort.Slice(a.wild, func(i, j int) bool { return a.wild[i].full < a.wild[j].full })
	return a
}

// IsRoot reports whether the ACL holds the root policy.
func (a *ACL) IsRoot() bool { return a.root }

// Policies returns the names of the policies the ACL was built from.
func (a *ACL) Policies() []string { return append([]string(nil), a.names...) }

// Allowed reports whether the ACL grants capability c on path (a Vault
// request path, without "/v1/": "transit/encrypt/k"). deny, root and unknown
// capabilities are never "allowed". For List, path is taken as Vault's HTTP
// layer makes a list request's path: with a trailing slash (added if
// missing). A nil ACL allows nothing.
func (a *ACL) Allowed(path string, c Capability) bool {
	if a == nil {
		return false
	}
	b := c.bit()
	if b == 0 || b == bitDeny {
		return false
	}
	if a.root {
		return true
	}
	list := c == List
	if list && !strings.HasSuffix(path, "/") {
		path += "/"
	}
	bits, ok := a.lookup(path, list)
	return ok && bits&bitDeny == 0 && bits&b != 0
}

// Capabilities returns the capabilities the ACL grants on path, as Vault's
// sys/capabilities-self reports them: ["root"] for the root policy, ["deny"]
// when nothing is granted, else in Vault's order (sudo, read, list, update,
// delete, create, patch, subscribe, recover). The path is looked up as Vault
// does for this endpoint (list-style fallbacks, the path as given).
func (a *ACL) Capabilities(path string) []Capability {
	if a == nil {
		return []Capability{Deny}
	}
	if a.root {
		return []Capability{Root}
	}
	bits, _ := a.lookup(path, true)
	if bits&bitDeny != 0 {
		return []Capability{Deny}
	}
	var out []Capability
	for _, r := range reportOrder {
		if bits&r.bit != 0 {
			out = append(out, r.c)
		}
	}
	if len(out) == 0 {
		return []Capability{Deny}
	}
	return out
}

// lookup finds the one rule that decides path: an exact rule, else the
// highest-priority glob or "+" rule. list adds Vault's list fallbacks.
func (a *ACL) lookup(path string, list bool) (uint32, bool) {
	for len(path) > 0 && path[0] == '/' {
		path = path[1:]
	}
	if b, ok := a.exact[path]; ok {
		return b, true
	}
	if list {
		if b, ok := a.exact[strings.TrimSuffix(path, "/")]; ok {
			return b, true
		}
		if strings.HasSuffix(path, "/") {
			if b, ok := a.nonExact(strings.TrimSuffix(path, "/")); ok {
				return b, true
			}
		}
	}
	return a.nonExact(path)
}

// candidate is a matching non-exact rule, described for the priority order.
type candidate struct {
	firstWC   int
	isPrefix  bool
	wildcards int
	wcPath    string
	bits      uint32
}

// lower reports whether x has lower priority than y (Vault's five rules).
func lower(x, y *candidate) bool {
	if x.firstWC != y.firstWC {
		return x.firstWC < y.firstWC // 1. first wildcard earlier: lower
	}
	if x.isPrefix != y.isPrefix {
		return x.isPrefix // 2. ends in '*' and the other does not: lower
	}
	if x.wildcards != y.wildcards {
		return x.wildcards > y.wildcards // 3. more '+' segments: lower
	}
	if len(x.wcPath) != len(y.wcPath) {
		return len(x.wcPath) < len(y.wcPath) // 4. shorter: lower
	}
	return x.wcPath < y.wcPath // 5. lexicographically smaller: lower
}

func (a *ACL) nonExact(path string) (uint32, bool) {
	var best candidate
	found := false
	for i := range a.prefixes {
		if p := &a.prefixes[i]; strings.HasPrefix(path, p.prefix) {
			best = candidate{firstWC: len(p.prefix), isPrefix: true, wcPath: p.prefix, bits: p.bits}
			found = true
			break
		}
	}
	if len(a.wild) == 0 {
		return best.bits, found
	}
	nparts := strings.Count(path, "/") + 1
	for i := range a.wild {
		w := &a.wild[i]
		if !w.matches(path, nparts) {
			continue
		}
		c := candidate{firstWC: w.firstWC, isPrefix: w.isPrefix, wildcards: w.wildcards, wcPath: w.wcPath, bits: w.bits}
		if !found || lower(&best, &c) {
			best, found = c, true
		}
	}
	return best.bits, found
}

// matches is Vault's segment wildcard match: as many segments as the pattern
// (or at least as many for a trailing glob), each "+" matching any one
// segment, others equal, and a trailing glob's last segment a prefix.
func (w *wildRule) matches(path string, nparts int) bool {
	if nparts < len(w.segs) || (!w.isPrefix && nparts != len(w.segs)) {
		return false
	}
	rest := path
	last := len(w.segs) - 1
	for i, seg := range w.segs {
		part := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			part, rest = rest[:j], rest[j+1:]
		} else {
			rest = ""
		}
		switch {
		case seg == "+", seg == part:
		case w.isPrefix && i == last && strings.HasPrefix(part, seg):
		default:
			return false
		}
	}
	return true
}
