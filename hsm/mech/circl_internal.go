package mech

import (
	_ "unsafe" // for go:linkname

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/cloudflare/circl/sign/slhdsa"
)

// The one place where gohsm reaches into circl's unexported functions.
//
// Why: HashML-DSA (FIPS 204 Algorithms 4 and 5) and HashSLH-DSA with a
// caller-supplied digest (FIPS 205 Algorithms 23 and 25) sign a message
// M' = 0x01 || |ctx| || ctx || OID(PH) || PH(M) with the *internal*
// signing function. circl v1.6.5 exposes only the pure forms for ML-DSA
// (its SignTo always prefixes 0x00) and, for SLH-DSA, builds M' only from a
// message it hashes itself (slhdsa.PreHash), so CKM_HASH_ML_DSA* and
// CKM_HASH_SLH_DSA (digest passed in) cannot be built on the public API.
// Building M' is encoding, not cryptography, and is done in hashmldsa.go (hashMessagePrime);
// the functions pulled here are the pinned version's ML-DSA.Sign_internal /
// Verify_internal (FIPS 204 Algorithms 7 and 8) and slh_sign_internal /
// slh_verify_internal (FIPS 205 Algorithms 19 and 20), exactly.
//
// A go:linkname pull breaks silently if circl renames or changes these
// functions: TestCirclInternalPinned (circl_internal_test.go) checks the
// pinned version and that each pulled function, fed the pure M', gives
// byte for byte what circl's public pure API gives. Replace this file with
// the public API once circl exports a pre-hash interface.

//go:linkname mldsa44SignInternal github.com/cloudflare/circl/sign/mldsa/mldsa44.(*PrivateKey).unsafeSignInternal
func mldsa44SignInternal(sk *mldsa44.PrivateKey, msg []byte, rnd [32]byte) []byte

//go:linkname mldsa65SignInternal github.com/cloudflare/circl/sign/mldsa/mldsa65.(*PrivateKey).unsafeSignInternal
func mldsa65SignInternal(sk *mldsa65.PrivateKey, msg []byte, rnd [32]byte) []byte

//go:linkname mldsa87SignInternal github.com/cloudflare/circl/sign/mldsa/mldsa87.(*PrivateKey).unsafeSignInternal
func mldsa87SignInternal(sk *mldsa87.PrivateKey, msg []byte, rnd [32]byte) []byte

//go:linkname mldsa44VerifyInternal github.com/cloudflare/circl/sign/mldsa/mldsa44.unsafeVerifyInternal
func mldsa44VerifyInternal(pk *mldsa44.PublicKey, msg, sig []byte) bool

//go:linkname mldsa65VerifyInternal github.com/cloudflare/circl/sign/mldsa/mldsa65.unsafeVerifyInternal
func mldsa65VerifyInternal(pk *mldsa65.PublicKey, msg, sig []byte) bool

//go:linkname mldsa87VerifyInternal github.com/cloudflare/circl/sign/mldsa/mldsa87.unsafeVerifyInternal
func mldsa87VerifyInternal(pk *mldsa87.PublicKey, msg, sig []byte) bool

//go:linkname slhdsaSignInternal github.com/cloudflare/circl/sign/slhdsa.slhSignInternal
func slhdsaSignInternal(sk *slhdsa.PrivateKey, msg, addRand []byte) ([]byte, error)

//go:linkname slhdsaVerifyInternal github.com/cloudflare/circl/sign/slhdsa.slhVerifyInternal
func slhdsaVerifyInternal(pk *slhdsa.PublicKey, msg, sig []byte) bool
