package mech

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// acvpPreHash maps an ACVP hashAlg name ("SHA2-256", "SHA3-384",
// "SHAKE-128", "SHA2-512/224") to its PH.
func acvpPreHash(t testing.TB, name string) *preHash {
	t.Helper()
	n := strings.Replace(name, "SHA2-", "SHA-", 1)
	for i := range preHashes {
		if preHashes[i].name == n {
			return &preHashes[i]
		}
	}
	t.Fatalf("hashAlg %q", name)
	return nil
}

func hashCtxParam(ctx []byte, hedge ck.HedgeType, digest ck.MechanismType) any {
	return &ck.HashSignAdditionalContext{Hedge: hedge, Context: ctx, Hash: digest}
}

// phDigest is PH(msg) computed by the test.
func phDigest(p *preHash, msg []byte) []byte {
	w := p.new()
	w.Write(msg)
	return w.digest()
}

// TestACVPHashSLHDSASigGen runs the deterministic "preHash" sigGen groups
// of circl's ACVP data through both mechanisms: CKM_HASH_SLH_DSA_<hash>
// (token hashes; every hashAlg but SHA2-512/224 and SHA2-512/256, which
// have no combined mechanism) and CKM_HASH_SLH_DSA with PH(M) passed in
// (every hashAlg). The second path builds M' itself, so these vectors are
// also the published check of hashMessagePrime, which HashML-DSA shares.
// The "s" sets are left out here for time (see below).
func TestACVPHashSLHDSASigGen(t *testing.T) {
	t.Parallel()
	dir := circlTestdata(t)
	want := slhdsaResults(t, dir, "sigGen_results")
	combined, generic := 0, 0
	for _, raw := range slhdsaACVP(t, dir, "sigGen_prompt") {
		var g struct {
			ParameterSet, SignatureInterface, PreHash string
			Deterministic                             bool
			Tests                                     []map[string]json.RawMessage
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		if g.SignatureInterface != "external" || g.PreHash != "preHash" || !g.Deterministic {
			continue
		}
		s := slhdsaSetByName(t, g.ParameterSet)
		if !slhdsaFast(s) {
			// The "s" sets sign in about a second each; TestACVPSLHDSASigGen
			// covers their signing, sigVer below their pre-hash groups.
			continue
		}
		for _, tc := range g.Tests {
			var id int
			json.Unmarshal(tc["tcId"], &id)
			alg, _ := acvpString(t, tc, "hashAlg")
			p := acvpPreHash(t, alg)
			k, err := slhdsaParse(t, ck.CKO_PRIVATE_KEY, slhdsaTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: hexField(t, tc, "sk")}))
			if err != nil {
				t.Fatalf("%s #%d: %v", s.name, id, err)
			}
			msg, ctx, wsig := hexField(t, tc, "message"), hexField(t, tc, "context"), hexField(t, want[id], "signature")
			if p.slh != 0 {
				combined++
				sg, err := regMech(t, p.slh).Sign(k, ctxParam(ctx, ck.CKH_DETERMINISTIC_REQUIRED))
				if err != nil {
					t.Fatal(err)
				}
				sig, err := sg.Sign(msg)
				if err != nil || !bytes.Equal(sig, wsig) {
					t.Errorf("%s %v #%d: signature differs (%v)", s.name, p.slh, id, err)
				}
			}
			if p.digest == 0 {
				continue // 3.2 has no digest mechanism naming a SHAKE
			}
			generic++
			sg, err := regMech(t, ck.CKM_HASH_SLH_DSA).Sign(k, hashCtxParam(ctx, ck.CKH_DETERMINISTIC_REQUIRED, p.digest))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := sg.Sign(phDigest(p, msg))
			if err != nil || !bytes.Equal(sig, wsig) {
				t.Errorf("%s CKM_HASH_SLH_DSA(%s) #%d: signature differs (%v)", s.name, alg, id, err)
			}
		}
	}
	// 12 deterministic preHash vectors per set, one per hashAlg, for the 6
	// "f" sets; 10 of the 12 hashAlgs have a combined mechanism and 10 a
	// 3.2 digest mechanism.
	wantCount(t, "ACVP HashSLH-DSA sigGen CKM_HASH_SLH_DSA_<hash>", combined, 60)
	wantCount(t, "ACVP HashSLH-DSA sigGen CKM_HASH_SLH_DSA", generic, 60)
}

// TestACVPHashSLHDSASigVer runs every "preHash" sigVer vector through
// CKM_HASH_SLH_DSA (digest in) and, where one exists, the combined
// mechanism.
func TestACVPHashSLHDSASigVer(t *testing.T) {
	t.Parallel()
	dir := circlTestdata(t)
	want := slhdsaResults(t, dir, "verify_results")
	n, generic, combined, pass := 0, 0, 0, 0
	for _, raw := range slhdsaACVP(t, dir, "verify_prompt") {
		var g struct {
			ParameterSet, SignatureInterface, PreHash string
			Tests                                     []map[string]json.RawMessage
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		if g.SignatureInterface != "external" || g.PreHash != "preHash" {
			continue
		}
		s := slhdsaSetByName(t, g.ParameterSet)
		for _, tc := range g.Tests {
			n++
			var id int
			json.Unmarshal(tc["tcId"], &id)
			alg, _ := acvpString(t, tc, "hashAlg")
			p := acvpPreHash(t, alg)
			k, err := slhdsaParse(t, ck.CKO_PUBLIC_KEY, slhdsaTemplate(s, ck.Attribute{Type: ck.CKA_VALUE, Value: hexField(t, tc, "pk")}))
			if err != nil {
				t.Fatalf("%s sigVer #%d: %v", s.name, id, err)
			}
			msg, ctx, sig := hexField(t, tc, "message"), hexField(t, tc, "context"), hexField(t, tc, "signature")
			ok := acvpPassed(t, want[id])
			if ok {
				pass++
			}
			if p.digest != 0 { // 3.2 has no digest mechanism naming a SHAKE
				generic++
				err = sigVerify(t, ck.CKM_HASH_SLH_DSA, hashCtxParam(ctx, ck.CKH_HEDGE_PREFERRED, p.digest), k, phDigest(p, msg), sig)
				if ok != (err == nil) {
					t.Errorf("%s CKM_HASH_SLH_DSA(%s) sigVer #%d: got %v, want pass=%v", s.name, alg, id, err, ok)
				}
			}
			if p.slh != 0 {
				combined++
				err = sigVerify(t, p.slh, ctxParam(ctx, ck.CKH_HEDGE_PREFERRED), k, msg, sig)
				if ok != (err == nil) {
					t.Errorf("%s %v sigVer #%d: got %v, want pass=%v", s.name, p.slh, id, err, ok)
				}
			}
		}
	}
	// 14 preHash vectors per set, all 12 sets: 168. 140 use a hash with a
	// combined mechanism (the rest are SHA2-512/224 and /256), 137 one with
	// a 3.2 digest mechanism (the rest are SHAKE-128 and SHAKE-256).
	wantCount(t, "ACVP HashSLH-DSA sigVer preHash", n, 168)
	wantCount(t, "ACVP HashSLH-DSA sigVer CKM_HASH_SLH_DSA", generic, 137)
	wantCount(t, "ACVP HashSLH-DSA sigVer CKM_HASH_SLH_DSA_<hash>", combined, 140)
	if pass == 0 || pass == n {
		t.Errorf("sigVer: %d of %d pass; the set must hold both verdicts", pass, n)
	}
}

func TestHashSLHDSASignVerify(t *testing.T) {
	t.Parallel()
	pub, priv := genSLHDSA(t, ck.CKP_SLH_DSA_SHA2_128F)
	msg := []byte("HashSLH-DSA through the mechanism registry")
	ctx := []byte("ctx")
	p, _ := preHashOf(ck.CKM_HASH_SLH_DSA_SHA256)

	// Deterministic: the combined mechanism, single- and multi-part, and
	// the digest-taking one agree byte for byte.
	sg, err := regMech(t, ck.CKM_HASH_SLH_DSA_SHA256).Sign(priv, ctxParam(ctx, ck.CKH_DETERMINISTIC_REQUIRED))
	if err != nil {
		t.Fatal(err)
	}
	one, err := sg.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	sg.Update(msg[:5])
	sg.Update(msg[5:])
	multi, err := sg.Final()
	if err != nil {
		t.Fatal(err)
	}
	gs, err := regMech(t, ck.CKM_HASH_SLH_DSA).Sign(priv, hashCtxParam(ctx, ck.CKH_DETERMINISTIC_REQUIRED, ck.CKM_SHA256))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := gs.Sign(phDigest(p, msg))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one, multi) || !bytes.Equal(one, gen) {
		t.Fatal("single-part, multi-part and digest-in signatures differ")
	}

	// Multi-part verification of the combined mechanism.
	v, err := regMech(t, ck.CKM_HASH_SLH_DSA_SHA256).Verify(pub, ctxParam(ctx, ck.CKH_HEDGE_PREFERRED))
	if err != nil {
		t.Fatal(err)
	}
	v.Update(msg[:3])
	v.Update(msg[3:])
	if err := v.Final(one); err != nil {
		t.Fatalf("multi-part verify: %v", err)
	}

	// Hedged signatures differ and verify through both mechanisms.
	hs, _ := regMech(t, ck.CKM_HASH_SLH_DSA).Sign(priv, hashCtxParam(ctx, ck.CKH_HEDGE_REQUIRED, ck.CKM_SHA256))
	h1, err1 := hs.Sign(phDigest(p, msg))
	h2, err2 := hs.Sign(phDigest(p, msg))
	if err1 != nil || err2 != nil || bytes.Equal(h1, h2) || bytes.Equal(h1, one) {
		t.Fatalf("hedged signatures: %v %v, equal=%v", err1, err2, bytes.Equal(h1, h2))
	}
	if err := sigVerify(t, ck.CKM_HASH_SLH_DSA_SHA256, ctxParam(ctx, 0), pub, msg, h1); err != nil {
		t.Fatalf("hedged via combined: %v", err)
	}

	// Pure and pre-hash signatures do not verify as each other, nor with
	// another context or hash.
	ps, _ := regMech(t, ck.CKM_SLH_DSA).Sign(priv, ctxParam(ctx, ck.CKH_DETERMINISTIC_REQUIRED))
	pure, _ := ps.Sign(msg)
	for name, err := range map[string]error{
		"pure as pre-hash":  sigVerify(t, ck.CKM_HASH_SLH_DSA_SHA256, ctxParam(ctx, 0), pub, msg, pure),
		"pre-hash as pure":  sigVerify(t, ck.CKM_SLH_DSA, ctxParam(ctx, 0), pub, msg, one),
		"other context":     sigVerify(t, ck.CKM_HASH_SLH_DSA_SHA256, ctxParam([]byte("ctx2"), 0), pub, msg, one),
		"other hash":        sigVerify(t, ck.CKM_HASH_SLH_DSA_SHA3_256, ctxParam(ctx, 0), pub, msg, one),
		"other hash, in PH": sigVerify(t, ck.CKM_HASH_SLH_DSA, hashCtxParam(ctx, 0, ck.CKM_SHA3_256), pub, phDigest(p, msg), one),
	} {
		if !errors.Is(err, ck.CKR_SIGNATURE_INVALID) {
			t.Errorf("%s: %v, want CKR_SIGNATURE_INVALID", name, err)
		}
	}

	// Errors: wrong digest length, multi-part of the generic mechanism,
	// missing or malformed parameter.
	if _, err := gs.Sign(msg); !errors.Is(err, ck.CKR_DATA_LEN_RANGE) {
		t.Errorf("digest of %d bytes: %v", len(msg), err)
	}
	if err := gs.Update(msg); !errors.Is(err, ck.CKR_FUNCTION_NOT_SUPPORTED) {
		t.Errorf("CKM_HASH_SLH_DSA update: %v", err)
	}
	for name, param := range map[string]any{
		"nil":             nil,
		"plain context":   ctxParam(ctx, 0),
		"SHAKE/other":     hashCtxParam(nil, 0, ck.CKM_SHAKE_128_KEY_DERIVATION),
		"MD5":             hashCtxParam(nil, 0, ck.CKM_MD5),
		"hedge 7":         hashCtxParam(nil, 7, ck.CKM_SHA256),
		"context of 256B": hashCtxParam(make([]byte, 256), 0, ck.CKM_SHA256),
	} {
		if _, err := regMech(t, ck.CKM_HASH_SLH_DSA).Sign(priv, param); !errors.Is(err, ck.CKR_MECHANISM_PARAM_INVALID) {
			t.Errorf("CKM_HASH_SLH_DSA param %s: %v", name, err)
		}
	}
	if _, err := regMech(t, ck.CKM_HASH_SLH_DSA_SHA256).Sign(priv, hashCtxParam(nil, 0, ck.CKM_SHA256)); !errors.Is(err, ck.CKR_MECHANISM_PARAM_INVALID) {
		t.Errorf("CKM_HASH_SLH_DSA_SHA256 with a hash parameter: %v", err)
	}
	if _, err := regMech(t, ck.CKM_HASH_SLH_DSA_SHA256).Sign(pub, nil); !errors.Is(err, ck.CKR_KEY_TYPE_INCONSISTENT) {
		t.Errorf("sign with a public key: %v", err)
	}
}
