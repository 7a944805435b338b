package bench

import (
	"crypto/sha256"
	"encoding/asn1"
	"fmt"
	"math/big"
)

// Fixed inputs: what is signed, hashed and encrypted does not change the
// cost of any op here, so they are constants shared by every target.
var (
	signMsg    = []byte("gohsm bench: the quick brown fox jumps over the lazy dog, twice.")
	signDigest = sha256.Sum256(signMsg)
	// Key values for the imported secret keys; the harness knows them so
	// that Go can check what a module computed.
	aesKeyValue  = fill(32, 0x11)
	hmacKeyValue = fill(32, 0x22)
	sm4KeyValue  = fill(16, 0x33)
)

// fill returns n bytes of a cheap deterministic pattern.
func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// gcmIV makes a distinct 12-byte IV per (worker, counter): GCM must never
// reuse an IV under one key, and a module may rightly refuse it.
func gcmIV(worker int, n uint64) []byte {
	iv := make([]byte, 12)
	iv[0], iv[1], iv[2], iv[3] = byte(worker>>24), byte(worker>>16), byte(worker>>8), byte(worker)
	for i := 0; i < 8; i++ {
		iv[4+i] = byte(n >> (56 - 8*i))
	}
	return iv
}

var (
	oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidSM2  = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301}
)

func mustDER(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// rsToDER turns a PKCS#11 r||s signature (§2.3.1) into the ASN.1 form the Go
// libraries verify.
func rsToDER(sig []byte) ([]byte, error) {
	if len(sig) == 0 || len(sig)%2 != 0 {
		return nil, fmt.Errorf("signature of %d bytes is not r||s", len(sig))
	}
	h := len(sig) / 2
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:h]), new(big.Int).SetBytes(sig[h:])})
}

// ecPoint unwraps CKA_EC_POINT: a DER OCTET STRING around the uncompressed
// point (PKCS#11 §2.3.3); a few modules return the raw point, accept both.
func ecPoint(v []byte) []byte {
	var raw []byte
	if rest, err := asn1.Unmarshal(v, &raw); err == nil && len(rest) == 0 {
		return raw
	}
	return v
}
