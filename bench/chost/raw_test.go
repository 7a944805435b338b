// Package chost holds a C host for the module (chost.c) and, for the same
// machine and run, the raw Go library baselines it is compared with; see
// scripts/bench-chost.sh (make bench-chost).
package chost

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Run with -cpu 1,2: ns/op of a parallel benchmark is wall time per op, so
// ops/s at N threads is 1e9 / ns.

func BenchmarkRawEd25519SignParallel(b *testing.B) {
	_, k, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ed25519.Sign(k, msg)
		}
	})
}

func BenchmarkRawMLDSA65SignParallel(b *testing.B) {
	_, sk, _ := mldsa65.GenerateKey(nil)
	msg := make([]byte, 32)
	b.RunParallel(func(pb *testing.PB) {
		sig := make([]byte, mldsa65.SignatureSize)
		for pb.Next() {
			if err := mldsa65.SignTo(sk, msg, nil, true, sig); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRawECDSAP256SignParallel(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := make([]byte, 32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ecdsa.SignASN1(rand.Reader, k, digest); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRawMLKEM768EncapsParallel is circl's Encapsulate through the KEM
// scheme, randomness included: what CKM_ML_KEM calls.
func BenchmarkRawMLKEM768EncapsParallel(b *testing.B) {
	pk, _, err := mlkem768.Scheme().GenerateKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := mlkem768.Scheme().Encapsulate(pk); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
