package mech

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/cloudflare/circl/sign/slhdsa"
)

// circlPinned is the circl version whose unexported functions
// circl_internal.go pulls with go:linkname.
const circlPinned = "v1.6.5"

// pureMessagePrime is M' of pure ML-DSA / SLH-DSA (FIPS 204 Algorithm 2
// step 10, FIPS 205 Algorithm 22 step 8): 0x00 || |ctx| || ctx || M.
func pureMessagePrime(ctx, msg []byte) []byte {
	return append(append([]byte{0x00, byte(len(ctx))}, ctx...), msg...)
}

// TestCirclInternalPinned fails loudly when circl moves: the linked
// functions must be the pinned version's, and each, fed the pure M', must
// give what circl's public pure API gives, byte for byte.
func TestCirclInternalPinned(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", circlModule).Output()
	if v := strings.TrimSpace(string(out)); err != nil || v != circlPinned {
		t.Fatalf("circl is %q (%v), circl_internal.go was checked against %s: re-check the go:linkname targets "+
			"(Sign_internal/Verify_internal of mldsa44/65/87, slhSignInternal/slhVerifyInternal) and update circlPinned", v, err, circlPinned)
	}

	msg := []byte("pinned circl internals")
	ctx := []byte("context")
	mp := pureMessagePrime(ctx, msg)
	var zero32 [32]byte
	seed := bytes.Repeat([]byte{0x42}, 32)

	check := func(name string, internal, public []byte, verifies, verifiesPublic bool) {
		t.Helper()
		if !bytes.Equal(internal, public) {
			t.Errorf("%s: Sign_internal(pure M') differs from the public deterministic signature", name)
		}
		if !verifies || !verifiesPublic {
			t.Errorf("%s: Verify_internal %v, public Verify %v", name, verifies, verifiesPublic)
		}
	}
	{
		pk, sk := mldsa44.NewKeyFromSeed((*[32]byte)(seed))
		pub := make([]byte, mldsa44.SignatureSize)
		if err := mldsa44.SignTo(sk, msg, ctx, false, pub); err != nil {
			t.Fatal(err)
		}
		in := mldsa44SignInternal(sk, mp, zero32)
		check("ML-DSA-44", in, pub, mldsa44VerifyInternal(pk, mp, in), mldsa44.Verify(pk, msg, ctx, in))
	}
	{
		pk, sk := mldsa65.NewKeyFromSeed((*[32]byte)(seed))
		pub := make([]byte, mldsa65.SignatureSize)
		if err := mldsa65.SignTo(sk, msg, ctx, false, pub); err != nil {
			t.Fatal(err)
		}
		in := mldsa65SignInternal(sk, mp, zero32)
		check("ML-DSA-65", in, pub, mldsa65VerifyInternal(pk, mp, in), mldsa65.Verify(pk, msg, ctx, in))
	}
	{
		pk, sk := mldsa87.NewKeyFromSeed((*[32]byte)(seed))
		pub := make([]byte, mldsa87.SignatureSize)
		if err := mldsa87.SignTo(sk, msg, ctx, false, pub); err != nil {
			t.Fatal(err)
		}
		in := mldsa87SignInternal(sk, mp, zero32)
		check("ML-DSA-87", in, pub, mldsa87VerifyInternal(pk, mp, in), mldsa87.Verify(pk, msg, ctx, in))
	}
	{
		pk, sk, err := slhdsa.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{0x42}, 48)), slhdsa.SHA2_128f)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := slhdsa.SignDeterministic(&sk, slhdsa.NewMessage(msg), ctx)
		if err != nil {
			t.Fatal(err)
		}
		pkb, _ := pk.MarshalBinary()
		in, err := slhdsaSignInternal(&sk, mp, pkb[:16]) // opt_rand = PK.seed
		if err != nil {
			t.Fatal(err)
		}
		check("SLH-DSA-SHA2-128f", in, pub, slhdsaVerifyInternal(&pk, mp, in), slhdsa.Verify(&pk, slhdsa.NewMessage(msg), in, ctx))
	}
}

// TestHashMessagePrimeMatchesCircl checks hashMessagePrime (which the
// HashML-DSA path relies on) against circl's own pre-hash encoder
// (slhdsa.PreHash.BuildMessage) for all twelve PH functions: signing M'
// with slh_sign_internal must equal circl's pre-hash signature.
func TestHashMessagePrimeMatchesCircl(t *testing.T) {
	t.Parallel()
	pk, sk, err := slhdsa.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 48)), slhdsa.SHA2_128f)
	if err != nil {
		t.Fatal(err)
	}
	pkb, _ := pk.MarshalBinary()
	msg, ctx := []byte("abc"), []byte{1, 2, 3}
	for i := range preHashes {
		p := &preHashes[i]
		cp, err := circlPreHash(0, p)
		if err != nil {
			t.Fatal(err)
		}
		cp.Write(msg)
		cm, err := cp.BuildMessage()
		if err != nil {
			t.Fatal(err)
		}
		want, err := slhdsa.SignDeterministic(&sk, cm, ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := slhdsaSignInternal(&sk, hashMessagePrime(ctx, p, phDigest(p, msg)), pkb[:16])
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: M' differs from circl's pre-hash encoding (%v)", p.name, err)
		}
	}
}
