package hsm

import (
	"fmt"
	"strings"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// Policy is the token's security profile (configuration `policy =`).
//
// The default profile keeps every mechanism a PKCS#11 application may
// reasonably ask for and closes the attacks that need no mistake by the
// key's owner: keys are authorised by one gate (gate.go), wrapping is
// Tookan-resistant (wrap.go), caller-chosen nonces never meet a wrapping
// key, raw RSA needs a key that may both sign and decrypt, CKM_RSA_PKCS
// unwrapping rejects implicitly, and C_DigestKey refuses MD5 and SHA-1 over
// sensitive keys.
//
// PolicyStrict is for deployments that can give up legacy mechanisms for a
// smaller attack surface. On top of the default it refuses:
//   - CKM_RSA_X_509 (raw RSA) for every use: it is the private function
//     itself, with no padding to check;
//   - CKM_RSA_PKCS for decryption and unwrapping: PKCS #1 v1.5 encryption
//     is a padding-oracle waiting to happen (NIST SP 800-131A Rev. 2
//     disallows it for key transport after 2023); OAEP remains;
//   - wrapping and unwrapping with unauthenticated modes (ECB, CBC,
//     CBC_PAD): an attacker may flip bits of a wrapped key, or learn which
//     blocks of two keys are equal; the AES key wraps (KW, KWP), GCM with
//     the token's IV and OAEP remain;
//   - C_DigestKey of any sensitive key, whatever the digest: a digest of a
//     low-entropy secret is an offline guessing oracle;
//   - sensitive or non-extractable keys that are not CKA_PRIVATE: such a
//     key's secret is sealed under a key kept beside it in the store, and
//     it can be used before login.
//
// The default stays the default because each of those breaks real clients
// (pkcs11-tool --test decrypts with CKM_RSA_PKCS; OpenSSL's pkcs11 engine
// uses CKM_RSA_X_509 for RSA_NO_PADDING; pkcs11-tool unwraps with AES-CBC).
type Policy uint8

const (
	PolicyDefault Policy = iota
	PolicyStrict
)

// ParsePolicy reads a configuration value.
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "default":
		return PolicyDefault, nil
	case "strict":
		return PolicyStrict, nil
	}
	return 0, fmt.Errorf("policy %q: want default or strict", s)
}

func (p Policy) String() string {
	if p == PolicyStrict {
		return "strict"
	}
	return "default"
}

// strictRefusal is one row of the strict profile's table: a mechanism
// (or every mechanism of a kind) refused for some uses.
type strictRefusal struct {
	mech func(*mech.Mechanism) bool
	uses []use
	why  string
}

var (
	allUses     = []use{useEncrypt, useDecrypt, useSign, useVerify, useMessageEncrypt, useMessageDecrypt, useMessageSign, useMessageVerify, useWrap, useUnwrap}
	wrapUses    = []use{useWrap, useUnwrap}
	isMechanism = func(t ck.MechanismType) func(*mech.Mechanism) bool {
		return func(mm *mech.Mechanism) bool { return mm.Type == t }
	}
	strictTable = []strictRefusal{
		{mech: isMechanism(ck.CKM_RSA_X_509), uses: allUses, why: "raw RSA"},
		{mech: isMechanism(ck.CKM_RSA_PKCS), uses: []use{useDecrypt, useUnwrap}, why: "PKCS #1 v1.5 decryption"},
		{mech: func(mm *mech.Mechanism) bool { return mm.IV == mech.IVBlock || mm.WrapPad > 0 }, uses: wrapUses,
			why: "key wrapping without authentication"},
	}
)

// permits is the profile's part of the gate.
func (p Policy) permits(u use, mm *mech.Mechanism, o *Object) error {
	if p != PolicyStrict {
		return nil
	}
	if u == useDigestKey && o.sensitive() {
		return fmt.Errorf("policy strict: no digest of a sensitive key: %w", ck.CKR_KEY_INDIGESTIBLE)
	}
	for _, r := range strictTable {
		for _, ru := range r.uses {
			if ru == u && r.mech(mm) {
				return fmt.Errorf("policy strict: %v (%s) refused: %w", mm.Type, r.why, ck.CKR_MECHANISM_INVALID)
			}
		}
	}
	return nil
}

// permitsObject is the profile's rule on what objects may be: under the
// strict profile a sensitive or non-extractable key must be private.
func (p Policy) permitsObject(cls ck.ObjectClass, private, sensitive, extractable bool) error {
	if p != PolicyStrict || (cls != ck.CKO_PRIVATE_KEY && cls != ck.CKO_SECRET_KEY) {
		return nil
	}
	if !private && (sensitive || !extractable) {
		return fmt.Errorf("policy strict: a sensitive or non-extractable key must be CKA_PRIVATE: %w", ck.CKR_TEMPLATE_INCONSISTENT)
	}
	return nil
}
