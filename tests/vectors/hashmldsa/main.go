// Command hashmldsa writes HashML-DSA (FIPS 204 §5.4) test vectors made with
// an implementation independent of gohsm's: the Go 1.27 standard library's
// crypto/mldsa (the Go FIPS 140-3 module), which signs an external μ. The
// published NIST ACVP sets pinned in internal/vectors have no pre-hash
// ML-DSA groups, and circl, which gohsm uses, has no HashML-DSA at all; so
// these vectors are the cross-implementation check. μ is computed here from
// the FIPS 204 definitions with crypto/sha3:
//
//	M' = 0x01 || len(ctx) || ctx || OID(PH) || PH(M)
//	tr = SHAKE256(pk, 64), μ = SHAKE256(tr || M', 64)
//
// Run with a Go 1.27 toolchain (make hashmldsa-vectors):
//
//	GOTOOLCHAIN=go1.27.3 go run . > ../../../conformance/testdata/hashmldsa_go127.json
package main

import (
	"crypto"
	"crypto/mldsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"hash"
	"log"
	"os"
)

type preHash struct {
	name string
	oid  string // DER, 2.16.840.1.101.3.4.2.n
	sum  func([]byte) []byte
}

func fixed(h func() hash.Hash) func([]byte) []byte {
	return func(m []byte) []byte { d := h(); d.Write(m); return d.Sum(nil) }
}

func shake(n int, h func() *sha3.SHAKE) func([]byte) []byte {
	return func(m []byte) []byte { x := h(); x.Write(m); out := make([]byte, n); x.Read(out); return out }
}

var hashes = []preHash{
	{"SHA2-224", "0609608648016503040204", fixed(sha256.New224)},
	{"SHA2-256", "0609608648016503040201", fixed(sha256.New)},
	{"SHA2-384", "0609608648016503040202", fixed(sha512.New384)},
	{"SHA2-512", "0609608648016503040203", fixed(sha512.New)},
	{"SHA2-512/224", "0609608648016503040205", fixed(sha512.New512_224)},
	{"SHA2-512/256", "0609608648016503040206", fixed(sha512.New512_256)},
	{"SHA3-224", "0609608648016503040207", fixed(func() hash.Hash { return sha3.New224() })},
	{"SHA3-256", "0609608648016503040208", fixed(func() hash.Hash { return sha3.New256() })},
	{"SHA3-384", "0609608648016503040209", fixed(func() hash.Hash { return sha3.New384() })},
	{"SHA3-512", "060960864801650304020a", fixed(func() hash.Hash { return sha3.New512() })},
	{"SHAKE-128", "060960864801650304020b", shake(32, sha3.NewSHAKE128)},
	{"SHAKE-256", "060960864801650304020c", shake(64, sha3.NewSHAKE256)},
}

type group struct {
	Set   string   `json:"parameterSet"`
	Seed  string   `json:"seed"` // the private key (FIPS 204 ξ)
	PK    string   `json:"pk"`
	Tests []vector `json:"tests"`
}

type vector struct {
	TcID      int    `json:"tcId"`
	HashAlg   string `json:"hashAlg"`
	Message   string `json:"message"`
	Context   string `json:"context"`
	Digest    string `json:"digest"`
	Signature string `json:"signature"`
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func main() {
	// Every pre-hash function with ML-DSA-44; every other one with the
	// larger sets, to keep the file small.
	sets := []struct {
		name string
		p    mldsa.Parameters
		step int
	}{{"ML-DSA-44", mldsa.MLDSA44(), 1}, {"ML-DSA-65", mldsa.MLDSA65(), 2}, {"ML-DSA-87", mldsa.MLDSA87(), 3}}
	var out []group
	id := 0
	for _, s := range sets {
		seed := make([]byte, mldsa.PrivateKeySize)
		rand.Read(seed)
		sk, err := mldsa.NewPrivateKey(s.p, seed)
		must(err)
		pk := sk.PublicKey().Bytes()
		g := group{Set: s.name, Seed: hex.EncodeToString(seed), PK: hex.EncodeToString(pk)}
		for i, h := range hashes {
			if i%s.step != 0 {
				continue
			}
			msg := make([]byte, 1+17*i)
			rand.Read(msg)
			ctx := []byte{}
			if i%2 == 1 {
				ctx = []byte("gohsm HashML-DSA")
			}
			digest := h.sum(msg)
			oid, _ := hex.DecodeString(h.oid)
			mp := append([]byte{1, byte(len(ctx))}, ctx...)
			mp = append(append(mp, oid...), digest...)
			tr := make([]byte, 64)
			x := sha3.NewSHAKE256()
			x.Write(pk)
			x.Read(tr)
			mu := make([]byte, 64)
			x = sha3.NewSHAKE256()
			x.Write(tr)
			x.Write(mp)
			x.Read(mu)
			sig, err := sk.Sign(rand.Reader, mu, crypto.MLDSAMu)
			must(err)
			id++
			g.Tests = append(g.Tests, vector{id, h.name,
				hex.EncodeToString(msg), hex.EncodeToString(ctx), hex.EncodeToString(digest), hex.EncodeToString(sig)})
		}
		out = append(out, g)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	must(enc.Encode(map[string]any{
		"source": "Go 1.27 crypto/mldsa (external mu), tests/vectors/hashmldsa",
		"groups": out,
	}))
}
