package faults

import (
	"slices"
	"strings"

	"github.com/gohsm/gohsm/hsm/ck"
)

// A Profile is a named set of latency rules taken from published figures
// of a real device, so that a test suite feels that device's timing:
// `{"profile": "cloudhsm"}`. The latency is added to the engine's own time
// (microseconds for most operations here). Figures not published for a
// call are not invented: such calls get no delay, and where a figure
// stands in for a neighbouring call the rule's comment says so.
type Profile struct {
	Name    string
	Aliases []string
	// Device is what the figures were measured on.
	Device string
	// Sources are where the figures come from (also in docs/firmware.md).
	Sources []string
	specs   []profileRule
}

type profileRule struct {
	functions  []string
	mechanisms []ck.MechanismType
	dist       Dist
	comment    string
}

// Calls that make one device round trip and one private- or secret-key
// operation: where a profile has one figure for "an operation", it applies
// to these (single-part calls and the last call of a multi-part one; an
// Update moves data and is not timed by any source).
var oneOperation = []string{
	"C_Sign", "C_SignFinal", "C_SignMessage", "C_SignRecover",
	"C_Verify", "C_VerifyFinal", "C_VerifyRecover", "C_VerifySignature", "C_VerifySignatureFinal", "C_VerifyMessage",
	"C_Encrypt", "C_EncryptFinal", "C_EncryptMessage", "C_Decrypt", "C_DecryptFinal", "C_DecryptMessage",
	"C_Digest", "C_DigestFinal",
	"C_GenerateKey", "C_GenerateKeyPair", "C_WrapKey", "C_UnwrapKey", "C_DeriveKey",
	"C_EncapsulateKey", "C_DecapsulateKey", "C_GenerateRandom",
}

var rsaSign = []ck.MechanismType{ck.CKM_RSA_PKCS, ck.CKM_RSA_X_509, ck.CKM_RSA_PKCS_PSS,
	ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA512_RSA_PKCS,
	ck.CKM_SHA1_RSA_PKCS_PSS, ck.CKM_SHA224_RSA_PKCS_PSS, ck.CKM_SHA256_RSA_PKCS_PSS, ck.CKM_SHA384_RSA_PKCS_PSS, ck.CKM_SHA512_RSA_PKCS_PSS}

var rsaDecrypt = []ck.MechanismType{ck.CKM_RSA_PKCS, ck.CKM_RSA_X_509, ck.CKM_RSA_PKCS_OAEP}

var ecdsaSign = []ck.MechanismType{ck.CKM_ECDSA, ck.CKM_ECDSA_SHA1, ck.CKM_ECDSA_SHA224, ck.CKM_ECDSA_SHA256,
	ck.CKM_ECDSA_SHA384, ck.CKM_ECDSA_SHA512}

// profiles: a cloud HSM, a network HSM and a USB token.
var profiles = []*Profile{
	{
		Name:    "cloudhsm",
		Aliases: []string{"cloud"},
		Device:  "AWS CloudHSM (hsm1, Cavium/Marvell LiquidSecurity), 6-HSM cluster, client on a c5.large in the same region",
		Sources: []string{
			"KibanLabsInc/cloudhsm_eval README (github.com/KibanLabsInc/cloudhsm_eval): 1,000 ECDSA P-256 signatures of 32 bytes at 2 threads, CloudHSM V2: min 7 ms, mean 8 ms, max 20 ms",
			"AWS CloudHSM User Guide, \"AWS CloudHSM performance information\" (docs.aws.amazon.com/cloudhsm/latest/userguide/performance.html): two-HSM hsm1.medium cluster 2,000 RSA-2048 and 500 EC P-256 signatures per second (capacity, not latency: context only)",
		},
		specs: []profileRule{{
			functions: oneOperation,
			dist:      Dist{Kind: DistLognormal, Median: 8, Sigma: 0.394},
			comment:   "measured ECDSA P-256 sign (min 7, mean 8, max 20 ms): lognormal, median 8 ms, p99 20 ms; the other single operations are given the same round trip (no per-operation latency is published)",
		}},
	},
	{
		Name:    "luna",
		Aliases: []string{"network"},
		Device:  "Thales (SafeNet) Luna SA network HSM, as AWS CloudHSM Classic, client on a c5.large",
		Sources: []string{
			"KibanLabsInc/cloudhsm_eval README (github.com/KibanLabsInc/cloudhsm_eval): 1,000 ECDSA P-256 signatures of 32 bytes at 2 threads, CloudHSM Classic (Luna): min 6 ms, mean 12 ms, max 21 ms",
		},
		specs: []profileRule{{
			functions: oneOperation,
			dist:      Dist{Kind: DistLognormal, Median: 11.5, Sigma: 0.26},
			comment:   "measured ECDSA P-256 sign (min 6, mean 12, max 21 ms): lognormal, median 11.5 ms, p99 21 ms; the other single operations are given the same round trip (no per-operation latency is published)",
		}},
	},
	{
		Name:    "yubikey",
		Aliases: []string{"usb", "usbtoken"},
		Device:  "Yubico YubiKey 5 NFC, PIV application, firmware 5.1.2, over USB",
		Sources: []string{
			"jsign benchmarks (github.com/ebourg/jsign, jsign-benchmark/README.md), JMH average time per operation: RSA-2048 sign 138.5 ms, ECDSA P-256 sign 71.6 ms, P-384 118.6 ms, RSA-1024 56.2 ms, PIN verification 9.1 ms",
		},
		specs: []profileRule{
			{functions: []string{"C_Sign", "C_SignFinal"}, mechanisms: rsaSign,
				dist:    Dist{Kind: DistNormal, Mean: 138.5, Stddev: 1.4},
				comment: "RSA-2048 sign 138.5 ms (the key size is not in the mechanism: 2048 assumed); spread 1% assumed"},
			{functions: []string{"C_Decrypt", "C_DecryptFinal"}, mechanisms: rsaDecrypt,
				dist:    Dist{Kind: DistNormal, Mean: 138.5, Stddev: 1.4},
				comment: "RSA-2048 decryption: the same private-key operation on the card as a signature (no separate figure)"},
			{functions: []string{"C_Sign", "C_SignFinal"}, mechanisms: ecdsaSign,
				dist:    Dist{Kind: DistNormal, Mean: 71.6, Stddev: 0.7},
				comment: "ECDSA P-256 sign 71.6 ms (P-384 is 118.6 ms; the curve is not in the mechanism); spread 1% assumed"},
			{functions: []string{"C_Login"},
				dist:    Dist{Kind: DistNormal, Mean: 9.1, Stddev: 0.1},
				comment: "PIN verification 9.1 ms"},
		},
	},
}

// Profiles lists the latency profiles.
func Profiles() []*Profile { return profiles }

// ProfileNames lists the profiles' names (not their aliases).
func ProfileNames() []string {
	var out []string
	for _, p := range profiles {
		out = append(out, p.Name)
	}
	return out
}

// ProfileByName finds a profile by name or alias, in any case.
func ProfileByName(name string) (*Profile, bool) {
	name = strings.ToLower(name)
	for _, p := range profiles {
		if p.Name == name || slices.Contains(p.Aliases, name) {
			return p, true
		}
	}
	return nil, false
}

// rules are the profile's rules, as Parse appends them to a plan.
func (p *Profile) rules() []Rule {
	var out []Rule
	for _, s := range p.specs {
		r := Rule{Probability: -1, Source: "profile " + p.Name, Comment: s.comment, Mechanisms: s.mechanisms}
		for _, n := range s.functions {
			f, err := lookupFunction(n)
			if err != nil {
				panic("faults: profile " + p.Name + ": " + err.Error())
			}
			r.Functions = append(r.Functions, f)
		}
		d := s.dist
		r.Latency = &d
		out = append(out, r)
	}
	return out
}
