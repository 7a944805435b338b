package conformance

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/miekg/pkcs11"
)

// The vectors group runs published test vectors (Wycheproof) through the
// module's C ABI: keys are imported with C_CreateObject as a client would,
// the operation runs through C_Verify, C_DeriveKey, C_Decrypt, ... and the
// result is compared with the vector. It is opt-in (Options.WycheproofDir):
// the suite must run anywhere, and the vector sets are fetched, not shipped.
//
// Wycheproof's verdicts: "valid" must succeed with the exact output,
// "invalid" must fail with a code the spec allows for that failure,
// "acceptable" may do either (when it succeeds, the output must still be
// the vector's).

// vectorsChecks is the group's check list, in the order of the brief:
// signatures, key agreement, key wrap, MACs, KDF, then PQC, RSA and SM4.
func vectorsChecks() []check {
	var cs []check
	cs = append(cs, vecSigChecks()...)
	cs = append(cs, vecKexChecks()...)
	cs = append(cs, vecSymChecks()...)
	cs = append(cs, vecPQCChecks()...)
	cs = append(cs, vecMiscChecks()...)
	cs = append(cs, vecRSAPrivChecks()...) // issue 15: the RSA private-key operation
	cs = append(cs, vecACVPChecks()...)    // NIST ACVP: Options.ACVPDir
	return cs
}

// wpFile is the common shape of a Wycheproof v1 file.
type wpFile struct {
	Algorithm     string            `json:"algorithm"`
	NumberOfTests int               `json:"numberOfTests"`
	TestGroups    []json.RawMessage `json:"testGroups"`
}

// wpCase is what every Wycheproof test carries.
type wpCase struct {
	TcID    int    `json:"tcId"`
	Comment string `json:"comment"`
	Result  string `json:"result"`
}

// wycheproof loads testvectors_v1/<name> from the directory given in
// Options.WycheproofDir (the module root, or testvectors_v1 itself), and
// skips the check when no directory was given.
func (t *T) wycheproof(name string) wpFile {
	dir := t.s.opts.WycheproofDir
	if dir == "" {
		t.skipf("no Wycheproof directory (Options.WycheproofDir, -wycheproof): vector checks are opt-in")
	}
	p := filepath.Join(dir, "testvectors_v1", name)
	if _, err := os.Stat(p); err != nil {
		p = filepath.Join(dir, name)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.failf("Wycheproof file %s: %v", name, err)
	}
	var f wpFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.failf("Wycheproof file %s: %v", name, err)
	}
	if len(f.TestGroups) == 0 {
		t.failf("Wycheproof file %s has no test groups", name)
	}
	return f
}

// wpGroup decodes one test group of a Wycheproof file into g.
func (t *T) wpGroup(raw json.RawMessage, g any) {
	if err := json.Unmarshal(raw, g); err != nil {
		t.failf("Wycheproof test group: %v", err)
	}
}

// hx decodes a Wycheproof hex field; the files are well-formed, so a bad
// one is a loader defect and fails the check.
func (t *T) hx(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.failf("Wycheproof hex field %q: %v", s, err)
	}
	return b
}

// vecRun tallies one family's vectors. A family passes only if every
// vector does; its note is the count run and how the invalid ones were
// refused.
type vecRun struct {
	t       *T
	sh      pkcs11.SessionHandle
	family  string
	n       int
	results map[string]int // by Wycheproof verdict
	refused map[uint]int   // CK_RV of the refused invalid/acceptable vectors
	skipped map[string]int // vectors PKCS#11 cannot express, by reason
	bad     []string
	objs    []pkcs11.ObjectHandle
}

func (t *T) vecRun(family string) *vecRun {
	return &vecRun{t: t, sh: t.open(true), family: family,
		results: map[string]int{}, refused: map[uint]int{}, skipped: map[string]int{}}
}

// outcome is what the module did with one vector.
type outcome struct {
	rv    uint   // first failing CK_RV, 0 when every call succeeded
	stage string // the call that failed (or the last call made)
	got   []byte // the output to compare with the vector's
}

// judge applies the vector's verdict to o. want is the expected output of
// a vector that succeeds (nil: nothing to compare); allowed are the codes
// the spec allows for refusing an invalid vector.
func (v *vecRun) judge(tc wpCase, o outcome, want []byte, allowed ...uint) {
	v.n++
	v.results[tc.Result]++
	id := fmt.Sprintf("tcId %d", tc.TcID)
	if tc.Comment != "" {
		id += " (" + tc.Comment + ")"
	}
	switch {
	case o.rv == 0 && tc.Result == "invalid":
		v.badf("%s: invalid vector accepted by %s", id, o.stage)
	case o.rv == 0 && want != nil && !bytes.Equal(o.got, want):
		v.badf("%s: %s returned %x, want %x", id, o.stage, clip(o.got), clip(want))
	case o.rv == 0:
	case tc.Result == "valid":
		v.badf("%s: valid vector refused: %s returned %s", id, o.stage, rvName(o.rv))
	case tc.Result == "acceptable":
		v.refused[o.rv]++
	default:
		if hasRV(allowed, o.rv) {
			v.refused[o.rv]++
			return
		}
		v.badf("%s: %s refused the invalid vector with %s, want %s", id, o.stage, rvName(o.rv), rvNames(allowed))
	}
}

// skip counts a vector PKCS#11 has no way to express (e.g. an empty key
// value); such vectors are reported, never silently dropped.
func (v *vecRun) skip(why string) { v.n++; v.skipped[why]++ }

func (v *vecRun) badf(format string, args ...any) {
	v.bad = append(v.bad, fmt.Sprintf(format, args...))
}

// create imports a session object for the current vector.
func (v *vecRun) create(tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, uint) {
	h, err := v.t.s.ctx.CreateObject(v.sh, append([]*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)}, tmpl...))
	if err == nil {
		v.objs = append(v.objs, h)
	}
	return h, rvOf(err)
}

// track records an object the module made (derived, unwrapped) for clean-up.
func (v *vecRun) track(h pkcs11.ObjectHandle) { v.objs = append(v.objs, h) }

// value reads CKA_VALUE of an object the vector made.
func (v *vecRun) value(h pkcs11.ObjectHandle) ([]byte, uint) {
	as, err := v.t.s.ctx.GetAttributeValue(v.sh, h, []*pkcs11.Attribute{attr(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, rvOf(err)
	}
	return as[0].Value, 0
}

// cleanup destroys the objects of the vector just run, so thousands of
// vectors do not pile up in the session.
func (v *vecRun) cleanup() {
	for _, h := range v.objs {
		v.t.s.ctx.DestroyObject(v.sh, h)
	}
	v.objs = v.objs[:0]
}

// done fails the check on any bad vector (listing the first ones) or when
// nothing ran, and otherwise notes the count.
func (v *vecRun) done() {
	v.cleanup()
	if v.n == 0 {
		v.t.failf("%s: no vectors ran (loader found nothing)", v.family)
	}
	if len(v.bad) > 0 {
		show := v.bad
		if len(show) > 8 {
			show = show[:8]
		}
		v.t.failf("%s: %d of %d vectors wrong: %s", v.family, len(v.bad), v.n, strings.Join(show, "; "))
	}
	v.t.note("%s", v.summary())
}

// summary is "<family>: N vectors (valid a, invalid b, ...; refused: ...)".
func (v *vecRun) summary() string {
	var parts []string
	for _, r := range []string{"valid", "invalid", "acceptable"} {
		if v.results[r] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, v.results[r]))
		}
	}
	s := fmt.Sprintf("%s: %d vectors (%s)", v.family, v.n, strings.Join(parts, ", "))
	if len(v.refused) > 0 {
		var rs []string
		for rv, n := range v.refused {
			rs = append(rs, fmt.Sprintf("%s %d", rvName(rv), n))
		}
		sort.Strings(rs)
		s += "; refused with " + strings.Join(rs, ", ")
	}
	if len(v.skipped) > 0 {
		var ks []string
		for why, n := range v.skipped {
			ks = append(ks, fmt.Sprintf("%d %s", n, why))
		}
		sort.Strings(ks)
		s += "; not expressible: " + strings.Join(ks, ", ")
	}
	return s
}

// clip shortens long outputs in failure details.
func clip(b []byte) []byte {
	if len(b) > 48 {
		return b[:48]
	}
	return b
}

// derOctets wraps b in a DER OCTET STRING (CKA_EC_POINT, curr 2.3.3).
func derOctets(b []byte) []byte {
	switch n := len(b); {
	case n < 0x80:
		return append([]byte{0x04, byte(n)}, b...)
	case n < 0x100:
		return append([]byte{0x04, 0x81, byte(n)}, b...)
	default:
		return append([]byte{0x04, 0x82, byte(n >> 8), byte(n)}, b...)
	}
}

// Refusal codes the spec allows, by kind of failure.
var (
	// base 5.15.2 C_Verify: a wrong signature, or one of the wrong length.
	refuseSig = []uint{pkcs11.CKR_SIGNATURE_INVALID, pkcs11.CKR_SIGNATURE_LEN_RANGE}
	// base 5.8 C_Decrypt of a ciphertext that fails its integrity check.
	refuseDecrypt = []uint{pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE, ckrAEADDecryptFailed}
	// base 5.18.4 C_UnwrapKey.
	refuseUnwrap = []uint{pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE}
	// A key value the key type cannot hold (base 4.1: C_CreateObject).
	refuseKey = []uint{pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_TEMPLATE_INCONSISTENT,
		pkcs11.CKR_DOMAIN_PARAMS_INVALID, ckrPublicKeyInvalid}
	// A peer public value that is not a point of the curve (3.0 curr:
	// CKR_PUBLIC_KEY_INVALID; 2.40 tokens answer with a parameter error).
	refusePeer = []uint{ckrPublicKeyInvalid, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_DOMAIN_PARAMS_INVALID,
		pkcs11.CKR_ARGUMENTS_BAD}
)

const ckrPublicKeyInvalid = 0x1B9

func hasRV(set []uint, rv uint) bool {
	for _, r := range set {
		if r == rv {
			return true
		}
	}
	return false
}

func joinRV(sets ...[]uint) []uint {
	var out []uint
	for _, s := range sets {
		for _, rv := range s {
			if !hasRV(out, rv) {
				out = append(out, rv)
			}
		}
	}
	return out
}
