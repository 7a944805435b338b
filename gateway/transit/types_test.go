package transit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// sigBytes is a signature's payload, decoded (std or raw URL base64).
func sigBytes(t *testing.T, s string, jws bool) []byte {
	t.Helper()
	_, p, perr := parseVersioned("vault:", s, "signature")
	if perr != nil {
		t.Fatal(perr)
	}
	enc := base64.StdEncoding
	if jws {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parsePEM(t *testing.T, s string) any {
	t.Helper()
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("public key is not PEM PUBLIC KEY: %.60q", s)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return blk.Bytes // SM2 and ML-DSA: Go's x509 does not know them
	}
	return k
}

// TestEveryKeyType makes a key of each type, reads it, and runs each
// operation the type supports. Signatures of the standard types are
// checked by Go's own verifiers against the public key read returns, so
// the token, the marshaling and the export agree with the outside world.
func TestEveryKeyType(t *testing.T) {
	f := newFixture(t, Config{})
	msg := []byte("the quick brown fox")
	in := base64.StdEncoding.EncodeToString(msg)
	for _, typ := range f.e.Types() {
		t.Run(typ, func(t *testing.T) {
			if testing.Short() && (typ == "rsa-3072" || typ == "rsa-4096") {
				t.Skip("slow key generation")
			}
			kt := f.e.types.types[typ]
			name := "k-" + typ
			rk := mustOK(f.e.CreateKey(bg, name, &CreateKeyRequest{Type: typ}))(t)
			if rk.Type != typ || rk.LatestVersion != 1 || rk.Exportable || rk.DeletionAllowed {
				t.Fatalf("read: %+v", rk)
			}
			if rk.SupportsEncryption != kt.supportsEncryption || rk.SupportsSigning != kt.supportsSigning {
				t.Fatalf("supports_*: %+v", rk)
			}
			var pub any
			if kt.asymmetric() {
				e := rk.Keys["1"].Public
				if e == nil || e.PublicKey == "" || e.Name != kt.pubName || e.CreationTime == "" {
					t.Fatalf("keys[1] = %+v", rk.Keys["1"])
				}
				if kt.pubFormat == "base64" {
					b, err := base64.StdEncoding.DecodeString(e.PublicKey)
					if err != nil || len(b) != ed25519.PublicKeySize {
						t.Fatalf("ed25519 public key %q", e.PublicKey)
					}
					pub = ed25519.PublicKey(b)
				} else {
					pub = parsePEM(t, e.PublicKey)
				}
			} else if rk.Keys["1"].Created == 0 {
				t.Fatalf("keys[1] = %+v", rk.Keys["1"])
			}

			// Every type has HMAC, as in Vault.
			for _, algo := range []string{"sha2-256", "sha2-512", "sha3-256"} {
				h := mustOK(f.e.HMAC(bg, name, &HMACRequest{HMACItem: HMACItem{Input: in}, Algorithm: algo}))(t)
				if !strings.HasPrefix(h.HMAC, "vault:v1:") {
					t.Fatalf("hmac %q", h.HMAC)
				}
				v := mustOK(f.e.Verify(bg, name, &VerifyRequest{VerifyItem: VerifyItem{Input: in, HMAC: h.HMAC}, HashAlgorithm: algo}))(t)
				if !v.Valid {
					t.Fatalf("%s hmac does not verify", algo)
				}
				v = mustOK(f.e.Verify(bg, name, &VerifyRequest{VerifyItem: VerifyItem{Input: b64s("other"), HMAC: h.HMAC}, HashAlgorithm: algo}))(t)
				if v.Valid {
					t.Fatalf("%s hmac of other input verifies", algo)
				}
			}

			if kt.supportsEncryption {
				ct := mustOK(f.e.Encrypt(bg, name, &EncryptRequest{EncryptItem: EncryptItem{Plaintext: in, Context: b64s("ctx")}}))(t)
				pt := mustOK(f.e.Decrypt(bg, name, &DecryptRequest{DecryptItem: DecryptItem{Ciphertext: ct.Ciphertext, Context: b64s("ctx")}}))(t)
				if *pt.Plaintext != in {
					t.Fatalf("decrypt gave %q", *pt.Plaintext)
				}
				_, err := f.e.Decrypt(bg, name, &DecryptRequest{DecryptItem: DecryptItem{Ciphertext: ct.Ciphertext, Context: b64s("ctX")}})
				wantErr(t, err, 400, "invalid ciphertext")
				rw := mustOK(f.e.Rewrap(bg, name, &RewrapRequest{RewrapItem: RewrapItem{Ciphertext: ct.Ciphertext, Context: b64s("ctx")}}))(t)
				if rw.Ciphertext == ct.Ciphertext || rw.KeyVersion != 1 {
					t.Fatalf("rewrap %+v", rw)
				}
				for _, bits := range []Int{128, 256, 512} {
					dk := mustOK(f.e.DataKey(bg, name, true, &DataKeyRequest{Bits: bits}))(t)
					raw, _ := base64.StdEncoding.DecodeString(dk.Plaintext)
					if len(raw) != int(bits)/8 {
						t.Fatalf("datakey of %d bits: %d bytes", bits, len(raw))
					}
					back := mustOK(f.e.Decrypt(bg, name, &DecryptRequest{DecryptItem: DecryptItem{Ciphertext: dk.Ciphertext}}))(t)
					if *back.Plaintext != dk.Plaintext {
						t.Fatal("datakey ciphertext does not decrypt to its plaintext")
					}
					w := mustOK(f.e.DataKey(bg, name, false, &DataKeyRequest{Bits: bits}))(t)
					if w.Plaintext != "" || w.Ciphertext == "" {
						t.Fatalf("wrapped datakey %+v", w)
					}
				}
			} else {
				_, err := f.e.Encrypt(bg, name, &EncryptRequest{EncryptItem: EncryptItem{Plaintext: in}})
				wantErr(t, err, 400, "does not support encryption")
				_, err = f.e.DataKey(bg, name, true, &DataKeyRequest{})
				wantErr(t, err, 400, "does not support encryption")
			}

			if !kt.supportsSigning {
				_, err := f.e.Sign(bg, name, &SignRequest{SignItem: SignItem{Input: in}})
				wantErr(t, err, 400, "does not support signing")
				return
			}
			type variant struct {
				hash, sigAlg, marshal string
				prehashed             bool
			}
			vs := []variant{{}}
			switch kt.kind {
			case kindECDSA:
				vs = []variant{{"sha2-256", "", "asn1", false}, {"sha2-384", "", "jws", false}, {"sha3-256", "", "", false}, {"sha2-256", "", "", true}}
			case kindRSA:
				vs = []variant{{"sha2-256", "pss", "", false}, {"sha2-512", "pkcs1v15", "", false}, {"sha3-256", "pss", "", false}, {"sha2-256", "pkcs1v15", "", true}, {"none", "pkcs1v15", "", false}}
			case kindMLDSA:
				vs = []variant{{}, {"sha2-256", "", "", true}}
			case kindSM2:
				vs = []variant{{}, {"", "", "jws", false}}
			}
			for _, v := range vs {
				input := in
				if v.prehashed {
					d := sha256.Sum256(msg)
					input = base64.StdEncoding.EncodeToString(d[:])
				}
				req := &SignRequest{SignItem: SignItem{Input: input}, HashAlgorithm: v.hash, SignatureAlgorithm: v.sigAlg, MarshalingAlgorithm: v.marshal, Prehashed: Bool(v.prehashed)}
				s := mustOK(f.e.Sign(bg, name, req))(t)
				if !strings.HasPrefix(s.Signature, "vault:v1:") || s.KeyVersion != 1 {
					t.Fatalf("%+v: signature %q v%d", v, s.Signature, s.KeyVersion)
				}
				vr := &VerifyRequest{VerifyItem: VerifyItem{Input: input, Signature: s.Signature}, HashAlgorithm: v.hash, SignatureAlgorithm: v.sigAlg, MarshalingAlgorithm: v.marshal, Prehashed: Bool(v.prehashed)}
				if ok := mustOK(f.e.Verify(bg, name, vr))(t); !ok.Valid {
					t.Fatalf("%+v: own signature does not verify", v)
				}
				bad := *vr
				if v.prehashed {
					d := sha256.Sum256([]byte("other"))
					bad.Input = base64.StdEncoding.EncodeToString(d[:])
				} else {
					bad.Input = b64s("other")
				}
				if ok := mustOK(f.e.Verify(bg, name, &bad))(t); ok.Valid {
					t.Fatalf("%+v: signature verifies for other input", v)
				}
				sig := sigBytes(t, s.Signature, v.marshal == "jws")
				checkStd(t, kt, pub, v.hash, v.sigAlg, v.marshal, v.prehashed, msg, sig)
			}
		})
	}
}

// checkStd verifies a signature with Go's standard library.
func checkStd(t *testing.T, kt *keyType, pub any, hash, sigAlg, marshal string, prehashed bool, msg, sig []byte) {
	t.Helper()
	digest := func(h crypto.Hash) []byte {
		switch h {
		case crypto.SHA256:
			d := sha256.Sum256(msg)
			return d[:]
		case crypto.SHA384:
			d := sha512.Sum384(msg)
			return d[:]
		case crypto.SHA512:
			d := sha512.Sum512(msg)
			return d[:]
		case crypto.SHA3_256:
			d := sha3.Sum256(msg)
			return d[:]
		}
		t.Fatalf("hash %v", h)
		return nil
	}
	hashOf := map[string]crypto.Hash{"": crypto.SHA256, "sha2-256": crypto.SHA256, "sha2-384": crypto.SHA384, "sha2-512": crypto.SHA512, "sha3-256": crypto.SHA3_256}
	switch kt.kind {
	case kindECDSA:
		k := pub.(*ecdsa.PublicKey)
		d := digest(hashOf[hash])
		if marshal == "jws" {
			n := len(sig) / 2
			if !ecdsa.Verify(k, d, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])) {
				t.Fatal("Go rejects the jws ECDSA signature")
			}
		} else if !ecdsa.VerifyASN1(k, d, sig) {
			t.Fatal("Go rejects the ASN.1 ECDSA signature")
		}
	case kindRSA:
		k := pub.(*rsa.PublicKey)
		if k.N.BitLen() != kt.size {
			t.Fatalf("modulus of %d bits", k.N.BitLen())
		}
		if hash == "none" {
			return // PKCS#1 v1.5 of raw input: no Go verifier
		}
		h := hashOf[hash]
		d := digest(h)
		var err error
		if sigAlg == "pkcs1v15" {
			err = rsa.VerifyPKCS1v15(k, h, d, sig)
		} else {
			err = rsa.VerifyPSS(k, h, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		if err != nil {
			t.Fatalf("Go rejects the RSA %s signature: %v", sigAlg, err)
		}
	case kindEdDSA:
		if !ed25519.Verify(pub.(ed25519.PublicKey), msg, sig) {
			t.Fatal("Go rejects the Ed25519 signature")
		}
	case kindSM2:
		// emmansun/gmsm checks the SPKI export and the signature.
		k, err := smx509.ParsePKIXPublicKey(pub.([]byte))
		if err != nil {
			t.Fatalf("gmsm cannot parse the SM2 public key: %v", err)
		}
		if marshal == "jws" {
			if len(sig) != 64 {
				t.Fatalf("SM2 jws signature of %d bytes", len(sig))
			}
			sig, _ = asn1.Marshal(ecdsaSig{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
		}
		if !sm2.VerifyASN1WithSM2(k.(*ecdsa.PublicKey), nil, msg, sig) {
			t.Fatal("gmsm rejects the SM2 signature")
		}
	case kindMLDSA:
		// circl checks the SPKI export (FIPS 204 pk, no parameters) and
		// the pure ML-DSA signature.
		var spki struct {
			Alg struct{ OID asn1.ObjectIdentifier }
			Key asn1.BitString
		}
		if rest, err := asn1.Unmarshal(pub.([]byte), &spki); err != nil || len(rest) != 0 || !spki.Alg.OID.Equal(kt.spkiAlg) {
			t.Fatalf("ML-DSA SPKI: %v %v", err, spki.Alg.OID)
		}
		if prehashed {
			return
		}
		var ok bool
		switch kt.name {
		case "ml-dsa-44":
			var pk mldsa44.PublicKey
			ok = pk.UnmarshalBinary(spki.Key.Bytes) == nil && mldsa44.Verify(&pk, msg, nil, sig)
		case "ml-dsa-65":
			var pk mldsa65.PublicKey
			ok = pk.UnmarshalBinary(spki.Key.Bytes) == nil && mldsa65.Verify(&pk, msg, nil, sig)
		case "ml-dsa-87":
			var pk mldsa87.PublicKey
			ok = pk.UnmarshalBinary(spki.Key.Bytes) == nil && mldsa87.Verify(&pk, msg, nil, sig)
		}
		if !ok {
			t.Fatalf("circl rejects the %s signature", kt.name)
		}
	}
}
