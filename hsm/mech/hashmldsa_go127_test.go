package mech

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// hashAlgMechs maps the vector file's hash names to the combined mechanism
// (0: none in 3.2, e.g. SHA-512/224) and the digest mechanism that names the
// pre-hash in CK_HASH_SIGN_ADDITIONAL_CONTEXT (0: none, the SHAKEs).
var hashAlgMechs = map[string]struct{ combined, digest ck.MechanismType }{
	"SHA2-224":     {ck.CKM_HASH_ML_DSA_SHA224, ck.CKM_SHA224},
	"SHA2-256":     {ck.CKM_HASH_ML_DSA_SHA256, ck.CKM_SHA256},
	"SHA2-384":     {ck.CKM_HASH_ML_DSA_SHA384, ck.CKM_SHA384},
	"SHA2-512":     {ck.CKM_HASH_ML_DSA_SHA512, ck.CKM_SHA512},
	"SHA2-512/224": {0, ck.CKM_SHA512_224},
	"SHA2-512/256": {0, ck.CKM_SHA512_256},
	"SHA3-224":     {ck.CKM_HASH_ML_DSA_SHA3_224, ck.CKM_SHA3_224},
	"SHA3-256":     {ck.CKM_HASH_ML_DSA_SHA3_256, ck.CKM_SHA3_256},
	"SHA3-384":     {ck.CKM_HASH_ML_DSA_SHA3_384, ck.CKM_SHA3_384},
	"SHA3-512":     {ck.CKM_HASH_ML_DSA_SHA3_512, ck.CKM_SHA3_512},
	"SHAKE-128":    {ck.CKM_HASH_ML_DSA_SHAKE128, 0},
	"SHAKE-256":    {ck.CKM_HASH_ML_DSA_SHAKE256, 0},
}

// TestHashMLDSAGoStdlibVectors verifies HashML-DSA signatures made by an
// independent implementation, the Go 1.27 standard library's crypto/mldsa
// (FIPS 140-3 module) signing an external μ (tests/vectors/hashmldsa writes
// conformance/testdata/hashmldsa_go127.json). Each verifies through the combined
// mechanism (the token hashes the message) and through CKM_HASH_ML_DSA (the
// caller passes the digest); a changed signature, context or message fails;
// and the private key from the same seed signs what that public key accepts.
func TestHashMLDSAGoStdlibVectors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../conformance/testdata/hashmldsa_go127.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			ParameterSet, Seed, PK string
			Tests                  []struct {
				TcID                                         int
				HashAlg, Message, Context, Digest, Signature string
			}
		}
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	verifies := func(m ck.MechanismType, param any, pub *Key, data, sig []byte) error {
		v, err := regMech(t, m).Verify(pub, param)
		if err != nil {
			return err
		}
		return v.Verify(data, sig)
	}
	n, checks := 0, 0
	for _, g := range f.Groups {
		set := mldsaSetByName(t, g.ParameterSet)
		pub, err := mldsaParse(t, ck.CKO_PUBLIC_KEY, mldsaTemplate(set, ck.Attribute{Type: ck.CKA_VALUE, Value: mustHex(t, g.PK)}))
		if err != nil {
			t.Fatal(err)
		}
		priv, err := mldsaParse(t, ck.CKO_PRIVATE_KEY, mldsaTemplate(set, ck.Attribute{Type: ck.CKA_SEED, Value: mustHex(t, g.Seed)}))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range g.Tests {
			n++
			ms, ok := hashAlgMechs[tc.HashAlg]
			if !ok {
				t.Fatalf("tc %d: hash %q", tc.TcID, tc.HashAlg)
			}
			msg, ctx, digest, sig := mustHex(t, tc.Message), mustHex(t, tc.Context), mustHex(t, tc.Digest), mustHex(t, tc.Signature)
			bad := append([]byte{}, sig...)
			bad[len(bad)/2] ^= 0x01
			if ms.combined != 0 {
				p := ctxParam(ctx, ck.CKH_HEDGE_PREFERRED)
				if err := verifies(ms.combined, p, pub, msg, sig); err != nil {
					t.Errorf("tc %d %s %v: %v", tc.TcID, g.ParameterSet, ms.combined, err)
				}
				if err := verifies(ms.combined, p, pub, msg, bad); !errors.Is(err, ck.CKR_SIGNATURE_INVALID) {
					t.Errorf("tc %d %v: changed signature gave %v", tc.TcID, ms.combined, err)
				}
				if err := verifies(ms.combined, ctxParam(append(ctx, 'x'), ck.CKH_HEDGE_PREFERRED), pub, msg, sig); !errors.Is(err, ck.CKR_SIGNATURE_INVALID) {
					t.Errorf("tc %d %v: other context gave %v", tc.TcID, ms.combined, err)
				}
				if err := verifies(ms.combined, p, pub, append(msg, 0), sig); !errors.Is(err, ck.CKR_SIGNATURE_INVALID) {
					t.Errorf("tc %d %v: other message gave %v", tc.TcID, ms.combined, err)
				}
				// Our signature under the same key, in the same mode, is
				// what the vector's public key accepts.
				sg, err := regMech(t, ms.combined).Sign(priv, p)
				if err != nil {
					t.Fatal(err)
				}
				own, err := sg.Sign(msg)
				if err != nil {
					t.Fatal(err)
				}
				if err := verifies(ms.combined, p, pub, msg, own); err != nil {
					t.Errorf("tc %d %v: own signature: %v", tc.TcID, ms.combined, err)
				}
				checks += 5
			}
			if ms.digest != 0 {
				p := &ck.HashSignAdditionalContext{Hedge: ck.CKH_HEDGE_PREFERRED, Context: ctx, Hash: ms.digest}
				if err := verifies(ck.CKM_HASH_ML_DSA, p, pub, digest, sig); err != nil {
					t.Errorf("tc %d %s CKM_HASH_ML_DSA(%v): %v", tc.TcID, g.ParameterSet, ms.digest, err)
				}
				if err := verifies(ck.CKM_HASH_ML_DSA, p, pub, digest, bad); !errors.Is(err, ck.CKR_SIGNATURE_INVALID) {
					t.Errorf("tc %d CKM_HASH_ML_DSA(%v): changed signature gave %v", tc.TcID, ms.digest, err)
				}
				checks += 2
			}
			// As pure ML-DSA the same signature must fail: the 0x01 prefix
			// separates the two.
			if err := verifies(ck.CKM_ML_DSA, ctxParam(ctx, ck.CKH_HEDGE_PREFERRED), pub, msg, sig); !errors.Is(err, ck.CKR_SIGNATURE_INVALID) {
				t.Errorf("tc %d: verified as pure ML-DSA (%v)", tc.TcID, err)
			}
			checks++
		}
	}
	wantCount(t, "HashML-DSA vectors from Go 1.27 crypto/mldsa", n, 22)
	t.Logf("%d vectors, %d checks", n, checks)
}
