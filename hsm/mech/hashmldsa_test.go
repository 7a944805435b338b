package mech

import (
	"bytes"
	"crypto"
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// hashMLDSAKAT is the test's own, independent statement of FIPS 204 §5.4.1:
// the DER OID of each PH (NIST CSOR, 2.16.840.1.101.3.4.2.x) and how to
// compute PH(M). It deliberately does not use the preHashes table.
var hashMLDSAKAT = []struct {
	mech   ck.MechanismType
	digest ck.MechanismType
	oid    string
	ph     func(m []byte) []byte
}{
	{ck.CKM_HASH_ML_DSA_SHA224, ck.CKM_SHA224, "0609608648016503040204", hashFn(crypto.SHA224)},
	{ck.CKM_HASH_ML_DSA_SHA256, ck.CKM_SHA256, "0609608648016503040201", hashFn(crypto.SHA256)},
	{ck.CKM_HASH_ML_DSA_SHA384, ck.CKM_SHA384, "0609608648016503040202", hashFn(crypto.SHA384)},
	{ck.CKM_HASH_ML_DSA_SHA512, ck.CKM_SHA512, "0609608648016503040203", hashFn(crypto.SHA512)},
	{ck.CKM_HASH_ML_DSA_SHA3_224, ck.CKM_SHA3_224, "0609608648016503040207", hashFn(crypto.SHA3_224)},
	{ck.CKM_HASH_ML_DSA_SHA3_256, ck.CKM_SHA3_256, "0609608648016503040208", hashFn(crypto.SHA3_256)},
	{ck.CKM_HASH_ML_DSA_SHA3_384, ck.CKM_SHA3_384, "0609608648016503040209", hashFn(crypto.SHA3_384)},
	{ck.CKM_HASH_ML_DSA_SHA3_512, ck.CKM_SHA3_512, "060960864801650304020a", hashFn(crypto.SHA3_512)},
	{ck.CKM_HASH_ML_DSA_SHAKE128, 0, "060960864801650304020b", func(m []byte) []byte { return sha3.SumSHAKE128(m, 32) }},
	{ck.CKM_HASH_ML_DSA_SHAKE256, 0, "060960864801650304020c", func(m []byte) []byte { return sha3.SumSHAKE256(m, 64) }},
}

func hashFn(h crypto.Hash) func([]byte) []byte {
	return func(m []byte) []byte { w := h.New(); w.Write(m); return w.Sum(nil) }
}

// TestHashMLDSACrossCheck: no published HashML-DSA vectors are in the
// pinned sets (circl's ML-DSA ACVP data predates the preHash groups, and
// the geomys set has only pure and external-mu groups), so every combined
// mechanism, for every parameter set, is checked against an independent
// computation: M' assembled here from the FIPS 204 definition, signed with
// Sign_internal (itself pinned to circl's pure API by
// TestCirclInternalPinned) with rnd = 0^32, must equal the mechanism's
// deterministic signature, single- and multi-part, and the digest-taking
// CKM_HASH_ML_DSA must give the same bytes. hashMessagePrime is also
// covered by the SLH-DSA ACVP preHash vectors (hashslhdsa_test.go).
func TestHashMLDSACrossCheck(t *testing.T) {
	t.Parallel()
	msg := []byte("HashML-DSA cross-check message")
	ctx := []byte("gohsm")
	n := 0
	for _, s := range mldsaSets {
		pub, priv := genMLDSA(t, s.set)
		mk := priv.Material.(*mldsaKey)
		for _, kat := range hashMLDSAKAT {
			n++
			oid, _ := hex.DecodeString(kat.oid)
			digest := kat.ph(msg)
			mp := append(append(append([]byte{0x01, byte(len(ctx))}, ctx...), oid...), digest...)
			want, err := mldsaSignInternal(mk.priv, mp, [32]byte{})
			if err != nil {
				t.Fatal(err)
			}
			sg, err := regMech(t, kat.mech).Sign(priv, ctxParam(ctx, ck.CKH_DETERMINISTIC_REQUIRED))
			if err != nil {
				t.Fatal(err)
			}
			one, err := sg.Sign(msg)
			if err != nil || !bytes.Equal(one, want) {
				t.Errorf("%s %v: single-part signature differs (%v)", s.name, kat.mech, err)
			}
			sg.Update(msg[:7])
			sg.Update(nil)
			sg.Update(msg[7:])
			multi, err := sg.Final()
			if err != nil || !bytes.Equal(multi, want) {
				t.Errorf("%s %v: multi-part signature differs (%v)", s.name, kat.mech, err)
			}
			if err := sigVerify(t, kat.mech, ctxParam(ctx, ck.CKH_HEDGE_PREFERRED), pub, msg, want); err != nil {
				t.Errorf("%s %v: verify: %v", s.name, kat.mech, err)
			}
			if kat.digest == 0 {
				continue // 3.2 has no digest mechanism naming a SHAKE
			}
			gs, err := regMech(t, ck.CKM_HASH_ML_DSA).Sign(priv, hashCtxParam(ctx, ck.CKH_DETERMINISTIC_REQUIRED, kat.digest))
			if err != nil {
				t.Fatal(err)
			}
			gen, err := gs.Sign(digest)
			if err != nil || !bytes.Equal(gen, want) {
				t.Errorf("%s CKM_HASH_ML_DSA(%v): signature differs (%v)", s.name, kat.digest, err)
			}
			if err := sigVerify(t, ck.CKM_HASH_ML_DSA, hashCtxParam(ctx, 0, kat.digest), pub, digest, want); err != nil {
				t.Errorf("%s CKM_HASH_ML_DSA(%v): verify: %v", s.name, kat.digest, err)
			}
		}
	}
	wantCount(t, "HashML-DSA cross-check (3 sets x 10 hashes)", n, 30)
}

func TestHashMLDSASignVerify(t *testing.T) {
	t.Parallel()
	pub, priv := genMLDSA(t, ck.CKP_ML_DSA_65)
	msg := []byte("HashML-DSA through the registry")
	ctx := []byte("ctx")
	digest := hashFn(crypto.SHA256)(msg)

	ds, _ := regMech(t, ck.CKM_HASH_ML_DSA_SHA256).Sign(priv, ctxParam(ctx, ck.CKH_DETERMINISTIC_REQUIRED))
	det, err := ds.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	// No parameter means hedged with an empty context (3.2).
	hs, err := regMech(t, ck.CKM_HASH_ML_DSA_SHA256).Sign(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	h1, err1 := hs.Sign(msg)
	h2, err2 := hs.Sign(msg)
	if err1 != nil || err2 != nil || bytes.Equal(h1, h2) {
		t.Fatalf("hedged signatures: %v %v, equal=%v", err1, err2, bytes.Equal(h1, h2))
	}
	if err := sigVerify(t, ck.CKM_HASH_ML_DSA, hashCtxParam(nil, 0, ck.CKM_SHA256), pub, digest, h2); err != nil {
		t.Fatalf("hedged, empty context, via CKM_HASH_ML_DSA: %v", err)
	}

	// Multi-part verification of the combined mechanism.
	v, err := regMech(t, ck.CKM_HASH_ML_DSA_SHA256).Verify(pub, ctxParam(ctx, ck.CKH_HEDGE_PREFERRED))
	if err != nil {
		t.Fatal(err)
	}
	v.Update(msg[:3])
	v.Update(msg[3:])
	if err := v.Final(det); err != nil {
		t.Fatalf("multi-part verify: %v", err)
	}

	// Pure and pre-hash signatures never verify as each other.
	ps, _ := regMech(t, ck.CKM_ML_DSA).Sign(priv, ctxParam(ctx, ck.CKH_DETERMINISTIC_REQUIRED))
	pure, _ := ps.Sign(msg)
	pureOfDigest, _ := ps.Sign(digest)
	for name, err := range map[string]error{
		"pure as pre-hash":            sigVerify(t, ck.CKM_HASH_ML_DSA_SHA256, ctxParam(ctx, 0), pub, msg, pure),
		"pure(PH) as CKM_HASH_ML_DSA": sigVerify(t, ck.CKM_HASH_ML_DSA, hashCtxParam(ctx, 0, ck.CKM_SHA256), pub, digest, pureOfDigest),
		"pre-hash as pure":            sigVerify(t, ck.CKM_ML_DSA, ctxParam(ctx, 0), pub, msg, det),
		"pre-hash as pure of PH":      sigVerify(t, ck.CKM_ML_DSA, ctxParam(ctx, 0), pub, digest, det),
		"other context":               sigVerify(t, ck.CKM_HASH_ML_DSA_SHA256, ctxParam(nil, 0), pub, msg, det),
		"other hash":                  sigVerify(t, ck.CKM_HASH_ML_DSA_SHA3_256, ctxParam(ctx, 0), pub, msg, det),
		"other message":               sigVerify(t, ck.CKM_HASH_ML_DSA_SHA256, ctxParam(ctx, 0), pub, append(msg, '!'), det),
	} {
		if !errors.Is(err, ck.CKR_SIGNATURE_INVALID) {
			t.Errorf("%s: %v, want CKR_SIGNATURE_INVALID", name, err)
		}
	}
	if err := sigVerify(t, ck.CKM_HASH_ML_DSA_SHA256, ctxParam(ctx, 0), pub, msg, det[1:]); !errors.Is(err, ck.CKR_SIGNATURE_LEN_RANGE) {
		t.Errorf("short signature: %v", err)
	}

	// CKM_HASH_ML_DSA: digest length, single-part only, parameter rules.
	gs, err := regMech(t, ck.CKM_HASH_ML_DSA).Sign(priv, hashCtxParam(ctx, 0, ck.CKM_SHA256))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range [][]byte{nil, digest[:31], append(digest, 0), msg} {
		if _, err := gs.Sign(d); !errors.Is(err, ck.CKR_DATA_LEN_RANGE) {
			t.Errorf("digest of %d bytes: %v", len(d), err)
		}
	}
	if err := gs.Update(digest); !errors.Is(err, ck.CKR_FUNCTION_NOT_SUPPORTED) {
		t.Errorf("CKM_HASH_ML_DSA update: %v", err)
	}
	if _, err := gs.Final(); !errors.Is(err, ck.CKR_FUNCTION_NOT_SUPPORTED) {
		t.Errorf("CKM_HASH_ML_DSA final: %v", err)
	}
	gv, _ := regMech(t, ck.CKM_HASH_ML_DSA).Verify(pub, hashCtxParam(ctx, 0, ck.CKM_SHA256))
	if err := gv.Update(digest); !errors.Is(err, ck.CKR_FUNCTION_NOT_SUPPORTED) {
		t.Errorf("CKM_HASH_ML_DSA verify update: %v", err)
	}
	for name, param := range map[string]any{
		"nil":             nil,
		"plain context":   ctxParam(ctx, 0),
		"SHAKE/other":     hashCtxParam(nil, 0, ck.CKM_SHAKE_256_KEY_DERIVATION),
		"SHA-1":           hashCtxParam(nil, 0, ck.CKM_SHA_1),
		"hedge 3":         hashCtxParam(nil, 3, ck.CKM_SHA256),
		"context of 256B": hashCtxParam(make([]byte, 256), 0, ck.CKM_SHA256),
	} {
		if _, err := regMech(t, ck.CKM_HASH_ML_DSA).Sign(priv, param); !errors.Is(err, ck.CKR_MECHANISM_PARAM_INVALID) {
			t.Errorf("CKM_HASH_ML_DSA param %s: %v", name, err)
		}
		if _, err := regMech(t, ck.CKM_HASH_ML_DSA).Verify(pub, param); !errors.Is(err, ck.CKR_MECHANISM_PARAM_INVALID) {
			t.Errorf("CKM_HASH_ML_DSA verify param %s: %v", name, err)
		}
	}
	// The full 255-byte context is allowed.
	if s, err := regMech(t, ck.CKM_HASH_ML_DSA_SHA512).Sign(priv, ctxParam(bytes.Repeat([]byte{1}, 255), 0)); err != nil {
		t.Errorf("255-byte context: %v", err)
	} else if _, err := s.Sign(msg); err != nil {
		t.Errorf("255-byte context sign: %v", err)
	}
	if _, err := regMech(t, ck.CKM_HASH_ML_DSA_SHA256).Sign(pub, nil); !errors.Is(err, ck.CKR_KEY_TYPE_INCONSISTENT) {
		t.Errorf("sign with a public key: %v", err)
	}
	// CKM_SHA512_224 and CKM_SHA512_256 are FIPS 204 approved PH functions
	// with no combined mechanism; CKM_HASH_ML_DSA takes them.
	for _, dm := range []ck.MechanismType{ck.CKM_SHA512_224, ck.CKM_SHA512_256} {
		p, _ := preHashByDigest(dm)
		d := phDigest(p, msg)
		s, err := regMech(t, ck.CKM_HASH_ML_DSA).Sign(priv, hashCtxParam(nil, 0, dm))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := sigVerify(t, ck.CKM_HASH_ML_DSA, hashCtxParam(nil, 0, dm), pub, d, sig); err != nil {
			t.Errorf("%v: %v", dm, err)
		}
	}
}

// TestHashSignRegistered checks the registry entries: flags, key types and
// key size ranges of the pure mechanisms.
func TestHashSignRegistered(t *testing.T) {
	pureML, pureSLH := regMech(t, ck.CKM_ML_DSA), regMech(t, ck.CKM_SLH_DSA)
	n := 0
	for _, m := range []ck.MechanismType{ck.CKM_HASH_ML_DSA, ck.CKM_HASH_ML_DSA_SHA224, ck.CKM_HASH_ML_DSA_SHA256,
		ck.CKM_HASH_ML_DSA_SHA384, ck.CKM_HASH_ML_DSA_SHA512, ck.CKM_HASH_ML_DSA_SHA3_224, ck.CKM_HASH_ML_DSA_SHA3_256,
		ck.CKM_HASH_ML_DSA_SHA3_384, ck.CKM_HASH_ML_DSA_SHA3_512, ck.CKM_HASH_ML_DSA_SHAKE128, ck.CKM_HASH_ML_DSA_SHAKE256} {
		mm := regMech(t, m)
		n++
		if mm.Info != pureML.Info || len(mm.KeyTypes) != 1 || mm.KeyTypes[0] != ck.CKK_ML_DSA || mm.Sign == nil || mm.Verify == nil {
			t.Errorf("%v: info %+v key types %v", m, mm.Info, mm.KeyTypes)
		}
	}
	for _, m := range []ck.MechanismType{ck.CKM_HASH_SLH_DSA, ck.CKM_HASH_SLH_DSA_SHA224, ck.CKM_HASH_SLH_DSA_SHA256,
		ck.CKM_HASH_SLH_DSA_SHA384, ck.CKM_HASH_SLH_DSA_SHA512, ck.CKM_HASH_SLH_DSA_SHA3_224, ck.CKM_HASH_SLH_DSA_SHA3_256,
		ck.CKM_HASH_SLH_DSA_SHA3_384, ck.CKM_HASH_SLH_DSA_SHA3_512, ck.CKM_HASH_SLH_DSA_SHAKE128, ck.CKM_HASH_SLH_DSA_SHAKE256} {
		mm := regMech(t, m)
		n++
		if mm.Info != pureSLH.Info || len(mm.KeyTypes) != 1 || mm.KeyTypes[0] != ck.CKK_SLH_DSA || mm.Sign == nil || mm.Verify == nil {
			t.Errorf("%v: info %+v key types %v", m, mm.Info, mm.KeyTypes)
		}
	}
	if pureML.Info.Flags != ck.CKF_SIGN|ck.CKF_VERIFY|ck.CKF_MESSAGE_SIGN|ck.CKF_MESSAGE_VERIFY {
		t.Errorf("CKM_ML_DSA flags %v", pureML.Info.Flags)
	}
	wantCount(t, "pre-hash mechanisms registered", n, 22)
}
