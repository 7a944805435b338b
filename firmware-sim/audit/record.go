package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Format constants of the records (see the package documentation).
const (
	// FormatVersion is the genesis record's "version".
	FormatVersion = "1"
	// MaxLine bounds one record's line, newline included. Append refuses a
	// longer record (ErrTooLarge) and Verify reports one as broken.
	MaxLine = 1 << 20

	// The phases of an audited call.
	PhaseIntent = "intent"
	PhaseResult = "result"

	// The log's own events (Call of a record with no Phase).
	CallGenesis = "audit.genesis" // first record of a file: chain id, format, MAC
	CallOpen    = "audit.open"    // the log was reopened (a restart): the chain continues
	CallClose   = "audit.close"   // the log was closed cleanly

	// MACSHA256 and MACHMAC are the genesis record's "mac".
	MACSHA256 = "sha256"
	MACHMAC   = "hmac-sha256"

	// timeFormat is RFC 3339 in UTC with exactly nine fractional digits,
	// so that every time has the same width.
	timeFormat = "2006-01-02T15:04:05.000000000Z"
)

// zeroHash is the genesis record's prev.
var zeroHash = strings.Repeat("0", 64)

// Record is one line of the audit log. The zero value of an optional field
// is absent from the line. Log.Append fills Seq, Time, Prev and Hash;
// everything else is the caller's. Numbers are the PKCS#11 values (slot ids,
// session and object handles, CKF_ flags); names are the specification's
// (CKU_USER, CKM_AES_KEY_GEN, CKA_VALUE, CKR_PIN_INCORRECT), a vendor-defined
// code as 0x%08X.
type Record struct {
	Seq  uint64 `json:"seq"`  // 1 for the genesis record, then +1 per record
	Time string `json:"time"` // RFC 3339, UTC, nanoseconds
	Who  string `json:"who"`  // the client certificate's identity, or "local"
	Call string `json:"call"` // C_Login, ..., or audit.genesis/open/close

	Phase string `json:"phase"` // intent | result; empty for the log's own events
	Ref   uint64 `json:"ref"`   // a result's intent record

	Slot     *uint64 `json:"slot"`
	Session  *uint64 `json:"session"` // in a C_OpenSession result: the new session
	Flags    *uint64 `json:"flags"`   // C_OpenSession's flags
	User     string  `json:"user"`    // CKU_SO, CKU_USER, CKU_CONTEXT_SPECIFIC
	Username string  `json:"username"`
	Label    string  `json:"label"` // C_InitToken's token label (never an object's)
	Mech     string  `json:"mech"`  // the mechanism type, never its parameter
	Key      *uint64 `json:"key"`   // the key a call uses: wrapping, unwrapping, base, KEM key
	Object   *uint64 `json:"object"`
	// Templates as attribute types, never values.
	Template     []string `json:"template"`
	PubTemplate  []string `json:"pub_template"`
	PrivTemplate []string `json:"priv_template"`
	Query        bool     `json:"query"`   // a length query: nothing was output or created
	Created      []uint64 `json:"created"` // objects the call made (key pair: public, private)
	RV           string   `json:"rv"`      // the call's result, in result records

	Chain   string `json:"chain"`   // genesis: random chain id
	Version string `json:"version"` // genesis: FormatVersion
	MAC     string `json:"mac"`     // genesis: MACSHA256 or MACHMAC
	KeyID   string `json:"key_id"`  // genesis with MACHMAC: KeyID(key)
	Note    string `json:"note"`    // the log's own events: free text

	Prev string `json:"prev"` // Hash of the previous record; 64 zeros for the genesis record
	Hash string `json:"hash"` // SHA-256 or HMAC-SHA256 of this line without ,"hash":"..."
}

// body appends the canonical encoding of r without its hash member: a JSON
// object in the fixed member order of the Record type, no white space,
// optional members left out when zero.
func (r *Record) body(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = member(b, "time", r.Time)
	b = member(b, "who", r.Who)
	b = member(b, "call", r.Call)
	b = optString(b, "phase", r.Phase)
	if r.Ref != 0 {
		b = numMember(b, "ref", r.Ref)
	}
	b = optNum(b, "slot", r.Slot)
	b = optNum(b, "session", r.Session)
	b = optNum(b, "flags", r.Flags)
	b = optString(b, "user", r.User)
	b = optString(b, "username", r.Username)
	b = optString(b, "label", r.Label)
	b = optString(b, "mech", r.Mech)
	b = optNum(b, "key", r.Key)
	b = optNum(b, "object", r.Object)
	b = optStrings(b, "template", r.Template)
	b = optStrings(b, "pub_template", r.PubTemplate)
	b = optStrings(b, "priv_template", r.PrivTemplate)
	if r.Query {
		b = append(b, `,"query":true`...)
	}
	if r.Created != nil {
		b = append(b, `,"created":[`...)
		for i, v := range r.Created {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, v, 10)
		}
		b = append(b, ']')
	}
	b = optString(b, "rv", r.RV)
	b = optString(b, "chain", r.Chain)
	b = optString(b, "version", r.Version)
	b = optString(b, "mac", r.MAC)
	b = optString(b, "key_id", r.KeyID)
	b = optString(b, "note", r.Note)
	b = member(b, "prev", r.Prev)
	return append(b, '}')
}

// line returns the record's line, newline included, with Hash set.
func (r *Record) line() []byte {
	b := r.body(make([]byte, 0, 256))
	b = b[:len(b)-1]
	b = member(b, "hash", r.Hash)
	return append(b, "}\n"...)
}

func member(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func numMember(b []byte, name string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

func optString(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return member(b, name, v)
}

func optNum(b []byte, name string, v *uint64) []byte {
	if v == nil {
		return b
	}
	return numMember(b, name, *v)
}

func optStrings(b []byte, name string, v []string) []byte {
	if v == nil {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":[`...)
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString writes s as a JSON string in the one canonical form: invalid
// UTF-8 replaced by U+FFFD, '"' and '\' escaped with a backslash, control
// characters and DEL as \u00XX, everything else as it is.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// ParseRecord parses one line (without its newline) into a record. It
// accepts only the canonical encoding: the line must be exactly what the
// writer would write for the record it decodes to (member order, no white
// space, no unknown or duplicate members, no absent required member, the
// canonical string escapes), so that what is hashed and what is read can
// never differ. It checks the form only; Verify checks the chain.
func ParseRecord(line []byte) (*Record, error) {
	if len(line) == 0 {
		return nil, errors.New("empty line")
	}
	if len(line) >= MaxLine {
		return nil, fmt.Errorf("line of %d bytes, more than the %d allowed", len(line), MaxLine-1)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("not a record: %v", err)
	}
	if canon := r.line(); !bytes.Equal(canon[:len(canon)-1], line) {
		return nil, errors.New("not in the canonical encoding (member order, spacing, escapes, duplicate or null members)")
	}
	if !isHash(r.Hash) || !isHash(r.Prev) {
		return nil, errors.New("hash and prev must be 64 lowercase hex digits")
	}
	if t, err := time.Parse(timeFormat, r.Time); err != nil || t.Format(timeFormat) != r.Time {
		return nil, fmt.Errorf("time %q is not RFC 3339 UTC with nine fractional digits", r.Time)
	}
	return &r, nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// linkHash is the link function: SHA-256 of the body, or HMAC-SHA256 under
// key when there is one.
func linkHash(key, body []byte) string {
	var h hash.Hash
	if key != nil {
		h = hmac.New(sha256.New, key)
	} else {
		h = sha256.New()
	}
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// KeyID names an HMAC key without revealing it: the first 8 bytes of
// HMAC-SHA256(key, "gohsm audit key id"), in hex. The genesis record of a
// keyed log carries it, so that a verifier given the wrong key says so
// instead of reporting every record altered.
func KeyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("gohsm audit key id"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}
