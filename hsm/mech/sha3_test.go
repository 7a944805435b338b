package mech

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestACVPSHA3(t *testing.T) {
	t.Parallel()
	n := 0
	for _, e := range sha3Set {
		file := fmt.Sprintf("SHA3-%d", e.h.Size()*8)
		sets, exp := acvpLoad(t, file)
		for si, s := range sets {
			for _, raw := range s.TestGroups {
				var g struct {
					TestType string
					Tests    []struct {
						TcID int
						Len  int
						Msg  string
					}
				}
				if err := json.Unmarshal(raw, &g); err != nil {
					t.Fatal(err)
				}
				if g.TestType != "AFT" {
					continue
				}
				for _, tc := range g.Tests {
					msg := mustHex(t, tc.Msg)
					if tc.Len%8 != 0 || tc.Len/8 != len(msg) {
						continue // bit-oriented messages are not a PKCS#11 input
					}
					n++
					h, err := regMech(t, e.digest).Digest(nil)
					if err != nil {
						t.Fatal(err)
					}
					h.Write(msg)
					md, _ := acvpString(t, exp[si][tc.TcID], "md")
					if got := h.Sum(nil); !bytes.Equal(got, mustHex(t, md)) {
						t.Errorf("%s #%d: %x, want %s", file, tc.TcID, got, md)
					}
				}
			}
		}
	}
	wantCount(t, "ACVP SHA3", n, 4)
}

func TestSHA3KnownAnswers(t *testing.T) {
	// FIPS 202 examples: SHA3-256("") and SHA3-512("abc").
	for _, c := range []struct {
		m        ck.MechanismType
		msg, out string
	}{
		{ck.CKM_SHA3_256, "", "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"},
		{ck.CKM_SHA3_512, "abc", "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0"},
	} {
		h, _ := regMech(t, c.m).Digest(nil)
		h.Write([]byte(c.msg))
		if got := h.Sum(nil); !bytes.Equal(got, mustHex(t, c.out)) {
			t.Errorf("%v(%q) = %x", c.m, c.msg, got)
		}
	}
	_, err := regMech(t, ck.CKM_SHA3_256).Digest([]byte{1})
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "digest parameter")
}

func TestWycheproofHMACSHA3(t *testing.T) {
	t.Parallel()
	n := 0
	for _, e := range sha3Set {
		file := fmt.Sprintf("hmac_sha3_%d_test.json", e.h.Size()*8)
		f := wpLoad(t, file)
		for gi, raw := range f.TestGroups {
			g := wpGroup[struct {
				TagSize int
				Tests   []wpTest
			}](t, raw)
			m, param := macMech(e.hmac, e.general, e.h.Size(), g.TagSize/8)
			kt := ck.CKK_GENERIC_SECRET
			if gi%2 == 1 {
				kt = e.kt // the CKK_SHA3_*_HMAC key type works the same
			}
			for _, tc := range g.Tests {
				n++
				wpCheck(t, file, tc, macCheck(t, m, param, secretKeyOf(t, kt, mustHex(t, tc.Key)), mustHex(t, tc.Msg), mustHex(t, tc.Tag)))
			}
		}
	}
	wantCount(t, "Wycheproof HMAC-SHA3", n, 694)
}

func TestACVPHMACSHA3(t *testing.T) {
	t.Parallel()
	n := 0
	for _, e := range sha3Set {
		file := fmt.Sprintf("HMAC-SHA3-%d", e.h.Size()*8)
		sets, exp := acvpLoad(t, file)
		for si, s := range sets {
			for _, raw := range s.TestGroups {
				var g struct {
					MacLen int
					Tests  []struct {
						TcID     int
						Key, Msg string
					}
				}
				if err := json.Unmarshal(raw, &g); err != nil {
					t.Fatal(err)
				}
				m, param := macMech(e.hmac, e.general, e.h.Size(), g.MacLen/8)
				for _, tc := range g.Tests {
					n++
					mac, _ := acvpString(t, exp[si][tc.TcID], "mac")
					k := secretKeyOf(t, e.kt, mustHex(t, tc.Key))
					if err := macCheck(t, m, param, k, mustHex(t, tc.Msg), mustHex(t, mac)); err != nil {
						t.Errorf("%s #%d: %v", file, tc.TcID, err)
					}
				}
			}
		}
	}
	wantCount(t, "ACVP HMAC-SHA3", n, 52)
}

func TestSHA3KeyGen(t *testing.T) {
	for _, e := range sha3Set {
		a, err := regMech(t, e.keyGen).GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)}})
		if err != nil {
			t.Fatal(err)
		}
		if kt, _, _ := a.ULong(ck.CKA_KEY_TYPE); ck.KeyType(kt) != e.kt {
			t.Fatalf("%v made %v", e.keyGen, ck.KeyType(kt))
		}
		_, err = regMech(t, e.keyGen).GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
			{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))}})
		expectRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT, "AES key type")
	}
	// CKM_GENERIC_SECRET_KEY_GEN may make them too.
	a, err := regMech(t, ck.CKM_GENERIC_SECRET_KEY_GEN).GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_SHA3_384_HMAC))}})
	if err != nil {
		t.Fatal(err)
	}
	if kt, _, _ := a.ULong(ck.CKA_KEY_TYPE); ck.KeyType(kt) != ck.CKK_SHA3_384_HMAC {
		t.Fatalf("key type %v", ck.KeyType(kt))
	}
}

// derToP1363 turns a DER ECDSA-Sig-Value into r||s with strict DER rules
// (cryptobyte rejects non-minimal integers and lengths), or nil.
func derToP1363(der []byte, size int) []byte {
	var inner cryptobyte.String
	s := cryptobyte.String(der)
	var r, sv []byte
	if !s.ReadASN1(&inner, cbasn1.SEQUENCE) || !s.Empty() ||
		!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&sv) || !inner.Empty() {
		return nil
	}
	out := make([]byte, 0, 2*size)
	for _, x := range [][]byte{r, sv} {
		x = bytes.TrimLeft(x, "\x00")
		if len(x) > size {
			return nil
		}
		out = append(out, make([]byte, size-len(x))...)
		out = append(out, x...)
	}
	return out
}

var wpSHA3ECDSA = map[string]ck.MechanismType{
	"SHA3-224": ck.CKM_ECDSA_SHA3_224, "SHA3-256": ck.CKM_ECDSA_SHA3_256,
	"SHA3-384": ck.CKM_ECDSA_SHA3_384, "SHA3-512": ck.CKM_ECDSA_SHA3_512,
	"SHA-256": ck.CKM_ECDSA_SHA256, "SHA-512": ck.CKM_ECDSA_SHA512,
}

// wpECDSAFiles runs Wycheproof ECDSA files (DER or P1363) through the
// hashing ECDSA mechanisms and CKM_ECDSA over the digest.
func wpECDSAFiles(t *testing.T, files []string) int {
	n := 0
	for _, file := range files {
		f := wpLoad(t, file)
		p1363 := bytes.Contains([]byte(file), []byte("p1363"))
		for gi, raw := range f.TestGroups {
			g := wpGroup[struct {
				PublicKey struct {
					Curve, Uncompressed string
					KeySize             int
				}
				Sha   string
				Tests []wpTest
			}](t, raw)
			params := mustMarshal(t, g.PublicKey.Curve)
			point := mustHex(t, g.PublicKey.Uncompressed)
			if gi%2 == 0 {
				point = ecPointDER(point)
			}
			k := ecPubKey(t, params, point)
			m, ok := wpSHA3ECDSA[g.Sha]
			if !ok {
				t.Fatalf("%s: hash %s", file, g.Sha)
			}
			h, _ := hashOf(map[string]ck.MechanismType{"SHA3-224": ck.CKM_SHA3_224, "SHA3-256": ck.CKM_SHA3_256,
				"SHA3-384": ck.CKM_SHA3_384, "SHA3-512": ck.CKM_SHA3_512, "SHA-256": ck.CKM_SHA256, "SHA-512": ck.CKM_SHA512}[g.Sha])
			size := (g.PublicKey.KeySize + 7) / 8
			for _, tc := range g.Tests {
				n++
				sig := mustHex(t, tc.Sig)
				if !p1363 {
					if sig = derToP1363(sig, size); sig == nil {
						if tc.Result == "valid" {
							t.Errorf("%s #%d: valid DER signature rejected by the test's decoder", file, tc.TcID)
						}
						continue
					}
				}
				wpCheck(t, file, tc, ecVerify(t, k, m, h, mustHex(t, tc.Msg), sig))
			}
		}
	}
	return n
}

func TestWycheproofECDSASHA3(t *testing.T) {
	t.Parallel()
	n := wpECDSAFiles(t, []string{
		"ecdsa_secp224r1_sha3_224_test.json", "ecdsa_secp224r1_sha3_256_test.json", "ecdsa_secp224r1_sha3_512_test.json",
		"ecdsa_secp256r1_sha3_256_test.json", "ecdsa_secp256r1_sha3_512_test.json",
		"ecdsa_secp384r1_sha3_384_test.json", "ecdsa_secp384r1_sha3_512_test.json",
		"ecdsa_secp521r1_sha3_512_test.json",
	})
	wantCount(t, "Wycheproof ECDSA SHA-3", n, 4097)
}

func TestWycheproofRSASHA3(t *testing.T) {
	t.Parallel()
	byHash := map[string]ck.MechanismType{}
	for _, e := range sha3Set {
		byHash[fmt.Sprintf("SHA3-%d", e.h.Size()*8)] = e.rsa
	}
	n := 0
	for _, file := range []string{
		"rsa_signature_2048_sha3_224_test.json", "rsa_signature_2048_sha3_256_test.json",
		"rsa_signature_2048_sha3_384_test.json", "rsa_signature_2048_sha3_512_test.json",
		"rsa_signature_3072_sha3_256_test.json", "rsa_signature_3072_sha3_384_test.json", "rsa_signature_3072_sha3_512_test.json",
	} {
		f := wpLoad(t, file)
		for _, raw := range f.TestGroups {
			g := wpGroup[struct {
				PublicKey wpRSAKey
				Sha       string
				Tests     []wpTest
			}](t, raw)
			k := g.PublicKey.key(t, false)
			for _, tc := range g.Tests {
				n++
				wpCheck(t, file, tc, sigVerify(t, byHash[g.Sha], nil, k, mustHex(t, tc.Msg), mustHex(t, tc.Sig)))
			}
		}
	}
	wantCount(t, "Wycheproof RSA PKCS#1 v1.5 SHA-3", n, 1807)
}

// TestRSASHA3PSSAndOAEP: no published vectors combine PSS or OAEP with
// SHA-3, so this round-trips through the mechanisms and checks the
// parameter rules (hashAlg and MGF must name the mechanism's SHA-3).
func TestRSASHA3PSSAndOAEP(t *testing.T) {
	pub, priv := rsaTestKeys(t)
	msg := []byte("sha-3 everywhere")
	for _, e := range sha3Set {
		p := &ck.RSAPSSParams{HashAlg: e.digest, MGF: e.mgf, SaltLen: ck.ULong(e.h.Size())}
		s, err := regMech(t, e.pss).Sign(priv, p)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := sigVerify(t, e.pss, p, pub, msg, sig); err != nil {
			t.Fatalf("%v: %v", e.pss, err)
		}
		// CKM_RSA_PKCS_PSS over the SHA-3 digest agrees.
		d := e.h.New()
		d.Write(msg)
		if err := sigVerify(t, ck.CKM_RSA_PKCS_PSS, p, pub, d.Sum(nil), sig); err != nil {
			t.Fatalf("raw PSS with %v: %v", e.digest, err)
		}
		_, err = regMech(t, e.pss).Sign(priv, &ck.RSAPSSParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32})
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "SHA-256 parameters on a SHA-3 PSS mechanism")
		_, err = regMech(t, e.pss).Sign(priv, &ck.RSAPSSParams{HashAlg: e.digest, MGF: ck.CKG_MGF1_SHA256, SaltLen: 32})
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "MGF1-SHA-256 with a SHA-3 hash")

		op := &ck.RSAOAEPParams{HashAlg: e.digest, MGF: e.mgf, Source: ck.CKZ_DATA_SPECIFIED, SourceData: []byte("label")}
		enc, err := regMech(t, ck.CKM_RSA_PKCS_OAEP).Encrypt(pub, op)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := enc.OneShot(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := regMech(t, ck.CKM_RSA_PKCS_OAEP).Decrypt(priv, op)
		if pt, err := dec.OneShot(nil, ct); err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("OAEP %v: %q %v", e.digest, pt, err)
		}
		ps, _ := regMech(t, e.rsa).Sign(priv, nil)
		sig, _ = ps.Sign(msg)
		if err := sigVerify(t, e.rsa, nil, pub, msg, sig); err != nil {
			t.Fatalf("%v: %v", e.rsa, err)
		}
	}
	if h, ok := hashOf(ck.CKM_SHA3_256); !ok || h != crypto.SHA3_256 {
		t.Fatal("hashOf(CKM_SHA3_256)")
	}
}

// TestV3FamiliesRegistry checks the families added beyond the classic set
// (SHA-3, EdDSA, CMAC, ML-DSA) are registered with coherent flags.
func TestV3FamiliesRegistry(t *testing.T) {
	r := classicReg()
	n := 0
	for _, fam := range [][]Mechanism{sha3Mechanisms(), eddsaMechanisms(), cmacMechanisms(), mldsaMechanisms()} {
		for _, m := range fam {
			n++
			got, ok := r.Mechanism(m.Type)
			if !ok {
				t.Errorf("%v missing from registry", m.Type)
				continue
			}
			f := got.Info.Flags
			for _, c := range []struct {
				flag ck.Flags
				has  bool
			}{
				{ck.CKF_SIGN, got.Sign != nil}, {ck.CKF_VERIFY, got.Verify != nil}, {ck.CKF_DIGEST, got.Digest != nil},
				{ck.CKF_GENERATE, got.GenerateKey != nil}, {ck.CKF_GENERATE_KEY_PAIR, got.GenerateKeyPair != nil},
				{ck.CKF_ENCRYPT, got.Encrypt != nil},
			} {
				if (f&c.flag != 0) != c.has {
					t.Errorf("%v: flag %#x is %v but function present is %v", m.Type, c.flag, f&c.flag != 0, c.has)
				}
			}
			if got.Sign != nil && len(got.KeyTypes) == 0 {
				t.Errorf("%v: no key types", m.Type)
			}
			if got.Info.MinKeySize > got.Info.MaxKeySize {
				t.Errorf("%v: min key size above max", m.Type)
			}
		}
	}
	// SHA-3 7 per hash (digest, HMAC, HMAC_GENERAL, KEY_GEN, ECDSA, RSA
	// PKCS, RSA PSS) x 4, EdDSA 2, CMAC 2, ML-DSA 2.
	if n != 34 {
		t.Fatalf("%d mechanisms, want 34", n)
	}
	for _, kt := range []ck.KeyType{ck.CKK_EC_EDWARDS, ck.CKK_ML_DSA, ck.CKK_SHA3_224_HMAC, ck.CKK_SHA3_512_HMAC} {
		if _, ok := r.KeyKind(kt); !ok {
			t.Errorf("key kind %v missing", kt)
		}
	}
}
