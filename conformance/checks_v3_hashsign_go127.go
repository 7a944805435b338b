package conformance

import (
	_ "embed"
	"encoding/json"

	"github.com/miekg/pkcs11"
)

// HashML-DSA signatures made by an independent implementation, the Go 1.27
// standard library's crypto/mldsa (the Go FIPS 140-3 module) signing an
// external μ, verified through the C ABI. No published ACVP set pinned here
// has pre-hash ML-DSA groups; tests/vectors/hashmldsa generates these
// (make hashmldsa-vectors) and hsm/mech verifies the same file through the
// Go API.

//go:embed testdata/hashmldsa_go127.json
var hashMLDSAGo127 []byte

// hashMLDSAMechs: the combined mechanism (0: none in 3.2) and the digest
// mechanism naming the pre-hash (0: none, the SHAKEs) of each hash name.
var hashMLDSAMechs = map[string][2]uint{
	"SHA2-224": {0x23, 0x255}, "SHA2-256": {0x24, 0x250}, "SHA2-384": {0x25, 0x260}, "SHA2-512": {0x26, 0x270},
	"SHA2-512/224": {0, 0x48}, "SHA2-512/256": {0, 0x4C},
	"SHA3-224": {0x27, 0x2B5}, "SHA3-256": {0x28, 0x2B0}, "SHA3-384": {0x29, 0x2C0}, "SHA3-512": {0x2A, 0x2D0},
	"SHAKE-128": {0x2B, 0}, "SHAKE-256": {0x2C, 0},
}

var mldsaSetCodes = map[string]uint{"ML-DSA-44": 1, "ML-DSA-65": 2, "ML-DSA-87": 3}

func hashSignGo127Checks() []check {
	return []check{{
		id:   "hashmldsa.go127-vectors",
		spec: hashMLDSASpec + ": signatures by Go 1.27 crypto/mldsa (external μ) verify through the combined mechanisms and CKM_HASH_ML_DSA; changed ones fail",
		mech: ckmHashMLDSA,
		fn: func(t *T) {
			var f struct {
				Groups []struct {
					ParameterSet, PK string
					Tests            []struct {
						TcID                                         int
						HashAlg, Message, Context, Digest, Signature string
					}
				}
			}
			if err := json.Unmarshal(hashMLDSAGo127, &f); err != nil {
				t.failf("embedded vectors: %v", err)
			}
			var m cmem
			defer m.free()
			sh := t.open(false)
			n := 0
			for _, g := range f.Groups {
				set, ok := mldsaSetCodes[g.ParameterSet]
				if !ok {
					t.failf("parameter set %q", g.ParameterSet)
				}
				pub := t.create(sh, []*pkcs11.Attribute{
					attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_KEY_TYPE, ckkMLDSA),
					attr(ckaParameterSet, set), attr(pkcs11.CKA_VALUE, t.hx(g.PK)), attr(pkcs11.CKA_VERIFY, true),
				}, g.ParameterSet+" public key")
				for _, tc := range g.Tests {
					ms, ok := hashMLDSAMechs[tc.HashAlg]
					if !ok {
						t.failf("tc %d: hash %q", tc.TcID, tc.HashAlg)
					}
					msg, ctx, digest, sig := t.hx(tc.Message), t.hx(tc.Context), t.hx(tc.Digest), t.hx(tc.Signature)
					bad := append([]byte{}, sig...)
					bad[len(bad)/3] ^= 0x80
					if ms[0] != 0 {
						p := hashCtxParams(&m, ckhHedgePreferred, ctx)
						t.ok(t.verifyWith(sh, ms[0], p, pub, msg, sig, tc.HashAlg), "C_Verify of Go's HashML-DSA signature, "+tc.HashAlg)
						t.expect(t.verifyWith(sh, ms[0], p, pub, msg, bad, tc.HashAlg), "C_Verify of a changed signature", pkcs11.CKR_SIGNATURE_INVALID)
					}
					if ms[1] != 0 {
						p := hashSignParams(&m, ckhHedgePreferred, ctx, ms[1])
						t.ok(t.verifyWith(sh, ckmHashMLDSA, p, pub, digest, sig, "CKM_HASH_ML_DSA"), "C_Verify(CKM_HASH_ML_DSA) of Go's signature, "+tc.HashAlg)
						t.expect(t.verifyWith(sh, ckmHashMLDSA, p, pub, digest, bad, "CKM_HASH_ML_DSA"), "C_Verify(CKM_HASH_ML_DSA) of a changed signature", pkcs11.CKR_SIGNATURE_INVALID)
					}
					n++
				}
			}
			if n < 20 {
				t.failf("only %d vectors", n)
			}
			t.note("%d vectors from Go 1.27 crypto/mldsa", n)
		},
	}}
}
