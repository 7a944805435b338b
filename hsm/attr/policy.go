package attr

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Rule is a set of footnote rules from the PKCS#11 3.0 base spec, table 10
// ("Common footnotes for object attribute tables", §4.2). The engine
// interprets the bits; this file only states them, as data.
type Rule uint32

const (
	// MustCreate: must be specified when the object is created with
	// C_CreateObject (footnote 1).
	MustCreate Rule = 1 << iota
	// NoCreate: must not be specified with C_CreateObject; the token sets it
	// (footnote 2).
	NoCreate
	// MustGenerate: must be specified with C_GenerateKey/KeyPair (footnote 3).
	MustGenerate
	// NoGenerate: must not be specified with C_GenerateKey/KeyPair (footnote 4).
	NoGenerate
	// NoUnwrap: must not be specified with C_UnwrapKey (footnote 6).
	NoUnwrap
	// Sensitive: cannot be revealed if CKA_SENSITIVE is true or
	// CKA_EXTRACTABLE false (footnote 7). Also sealed at rest.
	Sensitive
	// Modifiable: may be changed with C_SetAttributeValue or C_CopyObject
	// when CKA_MODIFIABLE is true (footnote 8).
	Modifiable
	// CopyOnly: may be changed in C_CopyObject only (§5.7.3: CKA_TOKEN,
	// CKA_PRIVATE, CKA_MODIFIABLE...).
	CopyOnly
	// SOOnly: may only be set to true by the SO (footnote 10).
	SOOnly
	// StickyTrue: cannot be changed once true (footnote 11).
	StickyTrue
	// StickyFalse: cannot be changed once false (footnote 12).
	StickyFalse
)

// Kind is the C type of an attribute value, for validation.
type Kind uint8

const (
	KindBytes Kind = iota
	KindBool
	KindULong
	KindString
	KindDate
	KindULongArray
	KindAttrArray
)

// ClassSet is a set of object classes.
type ClassSet uint16

const (
	Data ClassSet = 1 << iota
	Certificate
	PublicKey
	PrivateKey
	SecretKey
	Storage = Data | Certificate | PublicKey | PrivateKey | SecretKey
	Keys    = PublicKey | PrivateKey | SecretKey
)

// ClassBit maps a CKO_ value to its bit; zero for classes the token does
// not store.
func ClassBit(c ck.ObjectClass) ClassSet {
	switch c {
	case ck.CKO_DATA:
		return Data
	case ck.CKO_CERTIFICATE:
		return Certificate
	case ck.CKO_PUBLIC_KEY:
		return PublicKey
	case ck.CKO_PRIVATE_KEY:
		return PrivateKey
	case ck.CKO_SECRET_KEY:
		return SecretKey
	}
	return 0
}

// Policy is one row of the table: the rules for an attribute on a set of
// classes, optionally only for some key types (nil means all).
type Policy struct {
	Type     ck.AttributeType
	Kind     Kind
	Classes  ClassSet
	KeyTypes []ck.KeyType
	Rules    Rule
	// Default is the value a new object gets when the template omits the
	// attribute; nil means the attribute is absent (empty) by default.
	Default []byte
}

var (
	vTrue  = Bool(true)
	vFalse = Bool(false)
	vEmpty = []byte{}
)

// Table is the policy of every attribute gohsm stores, after the
// attribute tables of PKCS#11 3.0 base spec chapter 4. Key-type specific
// rows follow the mechanisms spec (RSA §2.1.2-3, EC §2.3.3-4, secret keys).
// Where the spec leaves a default "token-specific" the choice is noted.
var Table = []Policy{
	// Common (§4.2, §4.4).
	{Type: ck.CKA_CLASS, Kind: KindULong, Classes: Storage, Rules: MustCreate},
	{Type: ck.CKA_TOKEN, Kind: KindBool, Classes: Storage, Rules: CopyOnly, Default: vFalse},
	// Keys that hold secrets default to private so they are invisible
	// before login; everything else defaults to public (SoftHSMv2 agrees).
	{Type: ck.CKA_PRIVATE, Kind: KindBool, Classes: PrivateKey | SecretKey, Rules: CopyOnly, Default: vTrue},
	{Type: ck.CKA_PRIVATE, Kind: KindBool, Classes: Data | Certificate | PublicKey, Rules: CopyOnly, Default: vFalse},
	{Type: ck.CKA_MODIFIABLE, Kind: KindBool, Classes: Storage, Rules: CopyOnly | StickyFalse, Default: vTrue},
	{Type: ck.CKA_COPYABLE, Kind: KindBool, Classes: Storage, Rules: CopyOnly | StickyFalse, Default: vTrue},
	{Type: ck.CKA_DESTROYABLE, Kind: KindBool, Classes: Storage, Rules: CopyOnly | StickyFalse, Default: vTrue},
	{Type: ck.CKA_LABEL, Kind: KindString, Classes: Storage, Rules: Modifiable, Default: vEmpty},
	{Type: ck.CKA_UNIQUE_ID, Kind: KindString, Classes: Storage, Rules: NoCreate | NoGenerate | NoUnwrap},

	// Data objects (§4.5).
	{Type: ck.CKA_APPLICATION, Kind: KindString, Classes: Data, Rules: Modifiable, Default: vEmpty},
	{Type: ck.CKA_OBJECT_ID, Kind: KindBytes, Classes: Data, Rules: Modifiable, Default: vEmpty},
	{Type: ck.CKA_VALUE, Kind: KindBytes, Classes: Data, Rules: Modifiable, Default: vEmpty},

	// Certificates (§4.6, X.509 public key certificates §4.6.3).
	{Type: ck.CKA_CERTIFICATE_TYPE, Kind: KindULong, Classes: Certificate, Rules: MustCreate},
	{Type: ck.CKA_TRUSTED, Kind: KindBool, Classes: Certificate | PublicKey | SecretKey, Rules: SOOnly | Modifiable, Default: vFalse},
	{Type: ck.CKA_CERTIFICATE_CATEGORY, Kind: KindULong, Classes: Certificate, Rules: Modifiable, Default: ULong(0)},
	{Type: ck.CKA_CHECK_VALUE, Kind: KindBytes, Classes: Certificate | SecretKey},
	{Type: ck.CKA_START_DATE, Kind: KindDate, Classes: Certificate | Keys, Rules: Modifiable, Default: vEmpty},
	{Type: ck.CKA_END_DATE, Kind: KindDate, Classes: Certificate | Keys, Rules: Modifiable, Default: vEmpty},
	{Type: ck.CKA_PUBLIC_KEY_INFO, Kind: KindBytes, Classes: Certificate | PublicKey | PrivateKey, Default: vEmpty},
	{Type: ck.CKA_SUBJECT, Kind: KindBytes, Classes: Certificate, Rules: MustCreate},
	{Type: ck.CKA_ID, Kind: KindBytes, Classes: Certificate | Keys, Rules: Modifiable, Default: vEmpty},
	{Type: ck.CKA_ISSUER, Kind: KindBytes, Classes: Certificate, Rules: Modifiable, Default: vEmpty},
	{Type: ck.CKA_SERIAL_NUMBER, Kind: KindBytes, Classes: Certificate, Rules: Modifiable, Default: vEmpty},
	{Type: ck.CKA_VALUE, Kind: KindBytes, Classes: Certificate, Rules: MustCreate},
	{Type: ck.CKA_URL, Kind: KindString, Classes: Certificate, Default: vEmpty},
	{Type: ck.CKA_HASH_OF_SUBJECT_PUBLIC_KEY, Kind: KindBytes, Classes: Certificate, Default: vEmpty},
	{Type: ck.CKA_HASH_OF_ISSUER_PUBLIC_KEY, Kind: KindBytes, Classes: Certificate, Default: vEmpty},
	{Type: ck.CKA_JAVA_MIDP_SECURITY_DOMAIN, Kind: KindULong, Classes: Certificate, Default: ULong(0)},
	{Type: ck.CKA_NAME_HASH_ALGORITHM, Kind: KindULong, Classes: Certificate},

	// Keys (§4.7).
	{Type: ck.CKA_KEY_TYPE, Kind: KindULong, Classes: Keys, Rules: MustCreate},
	{Type: ck.CKA_DERIVE, Kind: KindBool, Classes: Keys, Rules: Modifiable, Default: vFalse},
	{Type: ck.CKA_LOCAL, Kind: KindBool, Classes: Keys, Rules: NoCreate | NoGenerate | NoUnwrap},
	{Type: ck.CKA_KEY_GEN_MECHANISM, Kind: KindULong, Classes: Keys, Rules: NoCreate | NoGenerate | NoUnwrap},
	{Type: ck.CKA_ALLOWED_MECHANISMS, Kind: KindULongArray, Classes: Keys, Default: vEmpty},

	// Public keys (§4.8). Usage defaults are token-specific; true matches
	// SoftHSMv2 so applications that rely on it keep working.
	{Type: ck.CKA_SUBJECT, Kind: KindBytes, Classes: PublicKey | PrivateKey, Rules: Modifiable, Default: vEmpty},
	{Type: ck.CKA_ENCRYPT, Kind: KindBool, Classes: PublicKey, Rules: Modifiable, Default: vTrue},
	// On secret and private keys the four roles below can be given up but
	// never gained after creation, by C_SetAttributeValue or by copying:
	// otherwise a copy of a wrap-only key could be made able to decrypt
	// what it wrapped (the Tookan wrap/decrypt attack; see hsm/wrap.go).
	{Type: ck.CKA_ENCRYPT, Kind: KindBool, Classes: SecretKey, Rules: Modifiable | StickyFalse, Default: vTrue},
	{Type: ck.CKA_VERIFY, Kind: KindBool, Classes: PublicKey | SecretKey, Rules: Modifiable, Default: vTrue},
	{Type: ck.CKA_VERIFY_RECOVER, Kind: KindBool, Classes: PublicKey, Rules: Modifiable, Default: vTrue},
	{Type: ck.CKA_WRAP, Kind: KindBool, Classes: PublicKey, Rules: Modifiable, Default: vTrue},
	{Type: ck.CKA_WRAP, Kind: KindBool, Classes: SecretKey, Rules: Modifiable | StickyFalse, Default: vTrue},
	{Type: ck.CKA_WRAP_TEMPLATE, Kind: KindAttrArray, Classes: PublicKey | SecretKey},

	// Private keys (§4.9) and secret keys (§4.10). A key is sensitive
	// unless the caller asks otherwise: the safe token-specific default.
	{Type: ck.CKA_SENSITIVE, Kind: KindBool, Classes: PrivateKey | SecretKey, Rules: Modifiable | StickyTrue, Default: vTrue},
	{Type: ck.CKA_DECRYPT, Kind: KindBool, Classes: PrivateKey | SecretKey, Rules: Modifiable | StickyFalse, Default: vTrue},
	{Type: ck.CKA_SIGN, Kind: KindBool, Classes: PrivateKey | SecretKey, Rules: Modifiable, Default: vTrue},
	{Type: ck.CKA_SIGN_RECOVER, Kind: KindBool, Classes: PrivateKey, Rules: Modifiable, Default: vTrue},
	{Type: ck.CKA_UNWRAP, Kind: KindBool, Classes: PrivateKey | SecretKey, Rules: Modifiable | StickyFalse, Default: vTrue},
	{Type: ck.CKA_EXTRACTABLE, Kind: KindBool, Classes: PrivateKey | SecretKey, Rules: Modifiable | StickyFalse, Default: vTrue},
	{Type: ck.CKA_ALWAYS_SENSITIVE, Kind: KindBool, Classes: PrivateKey | SecretKey, Rules: NoCreate | NoGenerate | NoUnwrap},
	{Type: ck.CKA_NEVER_EXTRACTABLE, Kind: KindBool, Classes: PrivateKey | SecretKey, Rules: NoCreate | NoGenerate | NoUnwrap},
	{Type: ck.CKA_WRAP_WITH_TRUSTED, Kind: KindBool, Classes: PrivateKey | SecretKey, Rules: Modifiable | StickyTrue, Default: vFalse},
	{Type: ck.CKA_UNWRAP_TEMPLATE, Kind: KindAttrArray, Classes: PrivateKey | SecretKey},
	{Type: ck.CKA_DERIVE_TEMPLATE, Kind: KindAttrArray, Classes: PrivateKey | SecretKey},
	{Type: ck.CKA_ALWAYS_AUTHENTICATE, Kind: KindBool, Classes: PrivateKey, Default: vFalse},

	// RSA (mechanisms spec §2.1.2, §2.1.3).
	{Type: ck.CKA_MODULUS, Kind: KindBytes, Classes: PublicKey | PrivateKey, KeyTypes: rsa, Rules: MustCreate | NoGenerate | NoUnwrap},
	{Type: ck.CKA_MODULUS_BITS, Kind: KindULong, Classes: PublicKey, KeyTypes: rsa, Rules: NoCreate | MustGenerate},
	{Type: ck.CKA_PUBLIC_EXPONENT, Kind: KindBytes, Classes: PublicKey, KeyTypes: rsa, Rules: MustCreate},
	{Type: ck.CKA_PUBLIC_EXPONENT, Kind: KindBytes, Classes: PrivateKey, KeyTypes: rsa, Rules: NoGenerate | NoUnwrap},
	{Type: ck.CKA_PRIVATE_EXPONENT, Kind: KindBytes, Classes: PrivateKey, KeyTypes: rsa, Rules: MustCreate | NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_PRIME_1, Kind: KindBytes, Classes: PrivateKey, KeyTypes: rsa, Rules: NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_PRIME_2, Kind: KindBytes, Classes: PrivateKey, KeyTypes: rsa, Rules: NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_EXPONENT_1, Kind: KindBytes, Classes: PrivateKey, KeyTypes: rsa, Rules: NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_EXPONENT_2, Kind: KindBytes, Classes: PrivateKey, KeyTypes: rsa, Rules: NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_COEFFICIENT, Kind: KindBytes, Classes: PrivateKey, KeyTypes: rsa, Rules: NoGenerate | NoUnwrap | Sensitive},

	// EC and the curves that share its attributes (§2.3.3, §2.3.4).
	{Type: ck.CKA_EC_PARAMS, Kind: KindBytes, Classes: PublicKey, KeyTypes: ec, Rules: MustCreate | MustGenerate},
	{Type: ck.CKA_EC_PARAMS, Kind: KindBytes, Classes: PrivateKey, KeyTypes: ec, Rules: MustCreate | NoGenerate},
	{Type: ck.CKA_EC_POINT, Kind: KindBytes, Classes: PublicKey, KeyTypes: ec, Rules: MustCreate | NoGenerate},
	{Type: ck.CKA_EC_POINT, Kind: KindBytes, Classes: PrivateKey, KeyTypes: ec, Rules: NoCreate | NoGenerate | NoUnwrap},
	{Type: ck.CKA_VALUE, Kind: KindBytes, Classes: PrivateKey, KeyTypes: ec, Rules: MustCreate | NoGenerate | NoUnwrap | Sensitive},

	// ML-DSA and SLH-DSA (3.2 "ML-DSA public/private key objects" and the
	// SLH-DSA equivalents, footnotes of table 13). The ML-DSA private
	// CKA_VALUE is not MustCreate: 3.2 accepts CKA_SEED or CKA_VALUE or
	// both, and the key kind's Parse requires one of them. SLH-DSA has no
	// CKA_SEED (its seeds are in CKA_VALUE), so there the value is required.
	{Type: ck.CKA_PARAMETER_SET, Kind: KindULong, Classes: PublicKey, KeyTypes: pqSig, Rules: MustCreate | MustGenerate},
	{Type: ck.CKA_PARAMETER_SET, Kind: KindULong, Classes: PrivateKey, KeyTypes: pqSig, Rules: MustCreate | NoGenerate | NoUnwrap},
	{Type: ck.CKA_VALUE, Kind: KindBytes, Classes: PublicKey, KeyTypes: pqSig, Rules: MustCreate | NoGenerate},
	{Type: ck.CKA_VALUE, Kind: KindBytes, Classes: PrivateKey, KeyTypes: mldsa, Rules: NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_SEED, Kind: KindBytes, Classes: PrivateKey, KeyTypes: mldsa, Rules: NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_VALUE, Kind: KindBytes, Classes: PrivateKey, KeyTypes: slhdsa, Rules: MustCreate | NoGenerate | NoUnwrap | Sensitive},

	// ML-KEM (3.2 "ML-KEM public/private key objects"): as for ML-DSA, the
	// private CKA_VALUE is not MustCreate because CKA_SEED (d||z) may stand
	// in for it. CKA_ENCAPSULATE / CKA_DECAPSULATE are the 3.2 usage flags
	// C_EncapsulateKey / C_DecapsulateKey check; their defaults follow the
	// other usage flags, and decapsulation, like decryption, can be given
	// up but never regained.
	{Type: ck.CKA_PARAMETER_SET, Kind: KindULong, Classes: PublicKey, KeyTypes: pqKEM, Rules: MustCreate | MustGenerate},
	{Type: ck.CKA_PARAMETER_SET, Kind: KindULong, Classes: PrivateKey, KeyTypes: pqKEM, Rules: MustCreate | NoGenerate | NoUnwrap},
	{Type: ck.CKA_VALUE, Kind: KindBytes, Classes: PublicKey, KeyTypes: pqKEM, Rules: MustCreate | NoGenerate},
	{Type: ck.CKA_VALUE, Kind: KindBytes, Classes: PrivateKey, KeyTypes: pqKEM, Rules: NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_SEED, Kind: KindBytes, Classes: PrivateKey, KeyTypes: pqKEM, Rules: NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_ENCAPSULATE, Kind: KindBool, Classes: PublicKey, KeyTypes: pqKEM, Rules: Modifiable, Default: vTrue},
	{Type: ck.CKA_DECAPSULATE, Kind: KindBool, Classes: PrivateKey, KeyTypes: pqKEM, Rules: Modifiable | StickyFalse, Default: vTrue},

	// Secret keys: the value, and its length where the key type varies.
	{Type: ck.CKA_VALUE, Kind: KindBytes, Classes: SecretKey, Rules: MustCreate | NoGenerate | NoUnwrap | Sensitive},
	{Type: ck.CKA_VALUE_LEN, Kind: KindULong, Classes: SecretKey, Rules: NoCreate},
}

// ec lists the key types that carry CKA_EC_PARAMS and CKA_EC_POINT. The
// engine adds the vendor SM2 code at run time (see Lookup's extra).
var ec = []ck.KeyType{ck.CKK_EC, ck.CKK_EC_EDWARDS, ck.CKK_EC_MONTGOMERY}

var rsa = []ck.KeyType{ck.CKK_RSA}

// pqSig lists the 3.2 signature key types whose CKA_VALUE is the key.
var pqSig = []ck.KeyType{ck.CKK_ML_DSA, ck.CKK_SLH_DSA}

// mldsa and slhdsa split pqSig where the two differ (CKA_SEED).
var (
	mldsa  = []ck.KeyType{ck.CKK_ML_DSA}
	slhdsa = []ck.KeyType{ck.CKK_SLH_DSA}
)

// pqKEM lists the 3.2 KEM key types.
var pqKEM = []ck.KeyType{ck.CKK_ML_KEM}

// ECLike reports whether kt uses the EC attribute rows; vendor SM2 key
// types are EC-like, which the caller says through extraEC.
func ECLike(kt ck.KeyType, extraEC []ck.KeyType) bool {
	for _, k := range ec {
		if k == kt {
			return true
		}
	}
	for _, k := range extraEC {
		if k == kt {
			return true
		}
	}
	return false
}

// byType indexes Table by attribute type, built on first use: Lookup runs
// for every attribute of every template and every C_GetAttributeValue.
var byType = sync.OnceValue(func() map[ck.AttributeType][]*Policy {
	m := map[ck.AttributeType][]*Policy{}
	for i := range Table {
		m[Table[i].Type] = append(m[Table[i].Type], &Table[i])
	}
	return m
})

// Lookup returns the policy of t for an object of class c and key type kt,
// or nil if t does not apply to such an object (CKR_ATTRIBUTE_TYPE_INVALID).
// extraEC lists vendor key types that follow the EC rows (SM2).
func Lookup(t ck.AttributeType, c ck.ObjectClass, kt ck.KeyType, extraEC []ck.KeyType) *Policy {
	bit := ClassBit(c)
	for _, p := range byType()[t] {
		if p.Classes&bit == 0 {
			continue
		}
		if p.KeyTypes != nil && !keyTypeMatches(p.KeyTypes, kt, extraEC) {
			continue
		}
		return p
	}
	return nil
}

func keyTypeMatches(list []ck.KeyType, kt ck.KeyType, extraEC []ck.KeyType) bool {
	for _, k := range list {
		if k == kt {
			return true
		}
	}
	// The EC rows also govern vendor EC-like key types.
	if len(list) > 0 && list[0] == ck.CKK_EC {
		for _, k := range extraEC {
			if k == kt {
				return true
			}
		}
	}
	return false
}

// ForClass returns the policies that apply to an object of class c and
// key type kt, in table order. Every object made walks this list, so the
// answer is computed once per (class, key type, EC-like vendor type) and
// shared: callers must not modify the slice.
func ForClass(c ck.ObjectClass, kt ck.KeyType, extraEC []ck.KeyType) []*Policy {
	return classRowsFor(c, kt, extraEC).policies
}

// SensitiveFor lists the attribute types that are sealed at rest on an
// object of class c and key type kt (the Sensitive rule, footnote 7):
// CKA_VALUE of a secret key, the private numbers of an RSA key. Shared;
// callers must not modify it.
func SensitiveFor(c ck.ObjectClass, kt ck.KeyType, extraEC []ck.KeyType) []ck.AttributeType {
	return classRowsFor(c, kt, extraEC).sensitive
}

// classRows is what ForClass, SensitiveFor and Rows answer for one class
// and key type.
type classRows struct {
	policies  []*Policy
	sensitive []ck.AttributeType
	defaults  Template
	index     map[ck.AttributeType]int // type → position in policies
}

// Rows is the policy rows of one class and key type with an index by
// type: what the engine consults for every attribute of every object it
// makes. Shared; read-only.
type Rows struct{ r *classRows }

// RowsFor returns the rows of class c and key type kt (cached as ForClass).
func RowsFor(c ck.ObjectClass, kt ck.KeyType, extraEC []ck.KeyType) Rows {
	return Rows{classRowsFor(c, kt, extraEC)}
}

// Policies are the rows in table order, one per attribute type.
func (r Rows) Policies() []*Policy { return r.r.policies }

// Defaults are the default values of the class and key type, one per
// attribute that has one, sorted by type: the lower layer of every new
// object's attributes (Layered). Shared with every such object; read-only.
func (r Rows) Defaults() Template { return r.r.defaults }

// Find returns the row of t and its position in Policies; it is Lookup for
// this class and key type.
func (r Rows) Find(t ck.AttributeType) (*Policy, int, bool) {
	i, ok := r.r.index[t]
	if !ok {
		return nil, -1, false
	}
	return r.r.policies[i], i, true
}

func classRowsFor(c ck.ObjectClass, kt ck.KeyType, extraEC []ck.KeyType) *classRows {
	key := forClassKey{c: c, kt: kt}
	if len(extraEC) == 1 {
		key.ec = extraEC[0]
	} else if len(extraEC) > 1 {
		return newClassRows(c, kt, extraEC)
	}
	if m := forClassCache.Load(); m != nil {
		if r, ok := (*m)[key]; ok {
			return r
		}
	}
	out := newClassRows(c, kt, extraEC)
	forClassMu.Lock()
	defer forClassMu.Unlock()
	old := forClassCache.Load()
	if old == nil {
		old = &map[forClassKey]*classRows{}
	}
	if r, ok := (*old)[key]; ok {
		return r
	}
	if len(*old) < forClassCacheMax {
		next := make(map[forClassKey]*classRows, len(*old)+1)
		for k, v := range *old {
			next[k] = v
		}
		next[key] = out
		forClassCache.Store(&next)
	}
	return out
}

type forClassKey struct {
	c  ck.ObjectClass
	kt ck.KeyType
	ec ck.KeyType
}

// forClassCache holds classRows, read without a lock on every object made
// and replaced whole (copy on write) when a new class and key type turn
// up, which after the first few objects is never. Class and key type come
// from callers' templates, so the number of entries is capped: past the
// cap an unseen pair is computed each time, as before there was a cache.
var (
	forClassCache atomic.Pointer[map[forClassKey]*classRows]
	forClassMu    sync.Mutex
)

const forClassCacheMax = 512

func newClassRows(c ck.ObjectClass, kt ck.KeyType, extraEC []ck.KeyType) *classRows {
	r := &classRows{policies: forClass(c, kt, extraEC), index: map[ck.AttributeType]int{}}
	// Lookup takes the first row that applies; do the same here, so a type
	// with several rows is sensitive exactly when Lookup's row says so.
	for i, p := range r.policies {
		if _, seen := r.index[p.Type]; seen {
			continue
		}
		r.index[p.Type] = i
		if p.Rules&Sensitive != 0 {
			r.sensitive = append(r.sensitive, p.Type)
		}
		if p.Default != nil {
			// Capacity clipped: an append to a shared value reallocates.
			r.defaults = append(r.defaults, ck.Attribute{Type: p.Type, Value: p.Default[:len(p.Default):len(p.Default)]})
		}
	}
	slices.SortFunc(r.defaults, func(a, b ck.Attribute) int { return cmp.Compare(a.Type, b.Type) })
	return r
}

func forClass(c ck.ObjectClass, kt ck.KeyType, extraEC []ck.KeyType) []*Policy {
	bit := ClassBit(c)
	var out []*Policy
	for i := range Table {
		p := &Table[i]
		if p.Classes&bit == 0 {
			continue
		}
		if p.KeyTypes != nil && !keyTypeMatches(p.KeyTypes, kt, extraEC) {
			continue
		}
		out = append(out, p)
	}
	return out
}
