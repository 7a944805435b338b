package mech

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

type wpRSAKey struct {
	Modulus, PublicExponent, PrivateExponent string
	Prime1, Prime2, Exponent1, Exponent2     string
	Coefficient                              string
}

func (k wpRSAKey) key(t testing.TB, private bool) *Key {
	t.Helper()
	a := attr.Template{
		{Type: ck.CKA_MODULUS, Value: mustHex(t, k.Modulus)},
		{Type: ck.CKA_PUBLIC_EXPONENT, Value: mustHex(t, k.PublicExponent)},
	}
	if !private {
		return keyOf(t, ck.CKK_RSA, ck.CKO_PUBLIC_KEY, a)
	}
	a = append(a, ck.Attribute{Type: ck.CKA_PRIVATE_EXPONENT, Value: mustHex(t, k.PrivateExponent)})
	for _, e := range []struct {
		t ck.AttributeType
		v string
	}{{ck.CKA_PRIME_1, k.Prime1}, {ck.CKA_PRIME_2, k.Prime2}, {ck.CKA_EXPONENT_1, k.Exponent1},
		{ck.CKA_EXPONENT_2, k.Exponent2}, {ck.CKA_COEFFICIENT, k.Coefficient}} {
		if e.v != "" {
			a = append(a, ck.Attribute{Type: e.t, Value: mustHex(t, e.v)})
		}
	}
	return keyOf(t, ck.CKK_RSA, ck.CKO_PRIVATE_KEY, a)
}

var wpHash = map[string]struct {
	h    crypto.Hash
	dig  ck.MechanismType
	mgf  ck.MGF
	pkcs ck.MechanismType
	pss  ck.MechanismType
}{
	"SHA-1":   {crypto.SHA1, ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA1_RSA_PKCS_PSS},
	"SHA-224": {crypto.SHA224, ck.CKM_SHA224, ck.CKG_MGF1_SHA224, ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224_RSA_PKCS_PSS},
	"SHA-256": {crypto.SHA256, ck.CKM_SHA256, ck.CKG_MGF1_SHA256, ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256_RSA_PKCS_PSS},
	"SHA-384": {crypto.SHA384, ck.CKM_SHA384, ck.CKG_MGF1_SHA384, ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384_RSA_PKCS_PSS},
	"SHA-512": {crypto.SHA512, ck.CKM_SHA512, ck.CKG_MGF1_SHA512, ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512_RSA_PKCS_PSS},
}

// sigVerify verifies one-shot and multi-part and insists they agree.
func sigVerify(t *testing.T, m ck.MechanismType, param any, k *Key, msg, sig []byte) error {
	t.Helper()
	mm := regMech(t, m)
	v, err := mm.Verify(k, param)
	if err != nil {
		return err
	}
	err = v.Verify(msg, sig)
	v2, _ := mm.Verify(k, param)
	if uerr := v2.Update(msg); uerr == nil {
		if err2 := v2.Final(sig); (err == nil) != (err2 == nil) {
			t.Fatalf("%v: one-shot %v, multi-part %v", m, err, err2)
		}
	}
	return err
}

func TestWycheproofRSAPKCS1Verify(t *testing.T) {
	t.Parallel()
	n := 0
	for _, file := range []string{
		"rsa_signature_2048_sha224_test.json", "rsa_signature_2048_sha256_test.json",
		"rsa_signature_2048_sha384_test.json", "rsa_signature_2048_sha512_test.json",
		"rsa_signature_3072_sha256_test.json", "rsa_signature_3072_sha384_test.json", "rsa_signature_3072_sha512_test.json",
		"rsa_signature_4096_sha256_test.json", "rsa_signature_4096_sha384_test.json", "rsa_signature_4096_sha512_test.json",
		"rsa_signature_8192_sha256_test.json", "rsa_signature_8192_sha384_test.json", "rsa_signature_8192_sha512_test.json",
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
				wpCheck(t, file, tc, sigVerify(t, wpHash[g.Sha].pkcs, nil, k, mustHex(t, tc.Msg), mustHex(t, tc.Sig)))
			}
		}
	}
	wantCount(t, "Wycheproof RSA PKCS#1 v1.5 verify", n, 3364)
}

func TestWycheproofRSAPKCS1SigGen(t *testing.T) {
	t.Parallel()
	n := 0
	for _, bits := range []int{1024, 1536, 2048, 3072} { // 4096 without CRT costs seconds
		file := fmt.Sprintf("rsa_pkcs1_%d_sig_gen_test.json", bits)
		f := wpLoad(t, file)
		for _, raw := range f.TestGroups {
			g := wpGroup[struct {
				PrivateKey wpRSAKey
				Sha        string
				Tests      []wpTest
			}](t, raw)
			e, ok := wpHash[g.Sha]
			if !ok {
				continue
			}
			k := g.PrivateKey.key(t, true) // no CRT values: exercises the plain-exponent path
			for _, tc := range g.Tests {
				n++
				s, err := regMech(t, e.pkcs).Sign(k, nil)
				if err != nil {
					t.Fatal(err)
				}
				msg := mustHex(t, tc.Msg)
				got, err := s.Sign(msg)
				multi, err2 := got, error(nil)
				if tc.TcID == g.Tests[0].TcID { // keys without CRT are slow: multi-part once per group
					s.Update(msg)
					multi, err2 = s.Final()
				}
				if err != nil || err2 != nil || !bytes.Equal(got, mustHex(t, tc.Sig)) || !bytes.Equal(multi, got) {
					t.Errorf("%s #%d: sig %x / %x, %v %v", file, tc.TcID, got, multi, err, err2)
				}
			}
		}
	}
	wantCount(t, "Wycheproof RSA PKCS#1 v1.5 sign", n, 134)
}

func TestWycheproofRSAPKCS1Decrypt(t *testing.T) {
	t.Parallel()
	n := 0
	for _, bits := range []int{2048, 3072, 4096} {
		file := fmt.Sprintf("rsa_pkcs1_%d_test.json", bits)
		f := wpLoad(t, file)
		for _, raw := range f.TestGroups {
			g := wpGroup[struct {
				PrivateKey wpRSAKey
				Tests      []wpTest
			}](t, raw)
			k := g.PrivateKey.key(t, true)
			for _, tc := range g.Tests {
				n++
				dec, _ := regMech(t, ck.CKM_RSA_PKCS).Decrypt(k, nil)
				pt, err := dec.OneShot(nil, mustHex(t, tc.Ct))
				if err == nil && !bytes.Equal(pt, mustHex(t, tc.Msg)) {
					err = fmt.Errorf("plaintext %x", pt)
				}
				wpCheck(t, file, tc, err)
			}
		}
	}
	wantCount(t, "Wycheproof RSA PKCS#1 v1.5 decrypt", n, 201)
}

func TestWycheproofRSAOAEP(t *testing.T) {
	t.Parallel()
	n := 0
	dir := []string{}
	for _, bits := range []int{2048, 3072, 4096} {
		for _, h := range []string{"sha1", "sha224", "sha256", "sha384", "sha512"} {
			mgfs := []string{h}
			if bits == 2048 { // cross-hash MGF1 at one size keeps the suite fast
				mgfs = append(mgfs, "sha1")
			}
			for _, mg := range mgfs {
				dir = append(dir, fmt.Sprintf("rsa_oaep_%d_%s_mgf1%s_test.json", bits, h, mg))
			}
		}
	}
	dir = append(dir, "rsa_oaep_misc_test.json")
	seen := map[string]bool{}
	for _, file := range dir {
		if seen[file] {
			continue
		}
		seen[file] = true
		if !wpExists(t, file) {
			continue
		}
		f := wpLoad(t, file)
		for _, raw := range f.TestGroups {
			g := wpGroup[struct {
				PrivateKey  wpRSAKey
				Sha, MgfSha string
				Tests       []wpTest
			}](t, raw)
			h, ok1 := wpHash[g.Sha]
			mg, ok2 := wpHash[g.MgfSha]
			if !ok1 || !ok2 {
				continue
			}
			k := g.PrivateKey.key(t, true)
			for _, tc := range g.Tests {
				n++
				p := ck.RSAOAEPParams{HashAlg: h.dig, MGF: mg.mgf, Source: ck.CKZ_DATA_SPECIFIED, SourceData: mustHex(t, tc.Label)}
				dec, err := regMech(t, ck.CKM_RSA_PKCS_OAEP).Decrypt(k, p)
				if err != nil {
					t.Fatalf("%s #%d: %v", file, tc.TcID, err)
				}
				pt, err := dec.OneShot(nil, mustHex(t, tc.Ct))
				if err == nil && !bytes.Equal(pt, mustHex(t, tc.Msg)) {
					err = fmt.Errorf("plaintext %x", pt)
				}
				wpCheck(t, file, tc, err)
			}
		}
	}
	wantCount(t, "Wycheproof RSA OAEP", n, 837)
}

func wpExists(t testing.TB, file string) bool {
	for _, e := range wpFileList(t) {
		if e == file {
			return true
		}
	}
	return false
}

var wpFiles []string
var wpFilesOnce sync.Once

func wpFileList(t testing.TB) []string {
	wpFilesOnce.Do(func() {
		d := vectorsDirList(t)
		wpFiles = d
	})
	return wpFiles
}

func TestWycheproofRSAPSS(t *testing.T) {
	t.Parallel()
	n := 0
	for _, file := range []string{
		"rsa_pss_2048_sha1_mgf1_20_test.json", "rsa_pss_2048_sha256_mgf1_0_test.json",
		"rsa_pss_2048_sha256_mgf1_32_test.json", "rsa_pss_2048_sha384_mgf1_48_test.json",
		"rsa_pss_3072_sha256_mgf1_32_test.json", "rsa_pss_4096_sha256_mgf1_32_test.json",
		"rsa_pss_4096_sha384_mgf1_48_test.json", "rsa_pss_4096_sha512_mgf1_32_test.json",
		"rsa_pss_4096_sha512_mgf1_64_test.json", "rsa_pss_misc_test.json",
	} {
		f := wpLoad(t, file)
		for _, raw := range f.TestGroups {
			g := wpGroup[struct {
				PublicKey   wpRSAKey
				Sha, MgfSha string
				SLen        int
				Tests       []wpTest
			}](t, raw)
			h, ok := wpHash[g.Sha]
			if !ok || g.MgfSha != g.Sha {
				continue
			}
			k := g.PublicKey.key(t, false)
			p := ck.RSAPSSParams{HashAlg: h.dig, MGF: h.mgf, SaltLen: ck.ULong(g.SLen)}
			for _, tc := range g.Tests {
				n++
				msg, sig := mustHex(t, tc.Msg), mustHex(t, tc.Sig)
				err := sigVerify(t, h.pss, p, k, msg, sig)
				d := h.h.New()
				d.Write(msg)
				errRaw := sigVerify(t, ck.CKM_RSA_PKCS_PSS, p, k, d.Sum(nil), sig)
				if (err == nil) != (errRaw == nil) {
					t.Fatalf("%s #%d: hashing %v, raw %v", file, tc.TcID, err, errRaw)
				}
				wpCheck(t, file, tc, err)
			}
		}
	}
	wantCount(t, "Wycheproof RSA PSS", n, 1183)

	// An MGF that differs from the hash is refused at init.
	f := wpLoad(t, "rsa_pss_2048_sha256_mgf1sha1_20_test.json")
	g := wpGroup[struct{ PublicKey wpRSAKey }](t, f.TestGroups[0])
	_, err := regMech(t, ck.CKM_SHA256_RSA_PKCS_PSS).Verify(g.PublicKey.key(t, false),
		ck.RSAPSSParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA1, SaltLen: 20})
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "PSS with MGF1-SHA1 over SHA-256")
}

func TestACVPRSASigVer(t *testing.T) {
	t.Parallel()
	hashes := map[string]string{"SHA2-224": "SHA-224", "SHA2-256": "SHA-256", "SHA2-384": "SHA-384", "SHA2-512": "SHA-512"}
	sets, exp := acvpLoad(t, "RSA")
	n := 0
	for si, s := range sets {
		if s.Mode != "sigVer" {
			continue
		}
		for _, raw := range s.TestGroups {
			var g struct {
				SigType, HashAlg, N, E string
				SaltLen                int
				Tests                  []struct {
					TcID               int
					Message, Signature string
				}
			}
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatal(err)
			}
			h, ok := wpHash[hashes[g.HashAlg]]
			if !ok {
				continue
			}
			k := wpRSAKey{Modulus: g.N, PublicExponent: g.E}.key(t, false)
			m, param := h.pkcs, any(nil)
			if g.SigType == "pss" {
				m, param = h.pss, ck.RSAPSSParams{HashAlg: h.dig, MGF: h.mgf, SaltLen: ck.ULong(g.SaltLen)}
			}
			for _, tc := range g.Tests {
				n++
				err := sigVerify(t, m, param, k, mustHex(t, tc.Message), mustHex(t, tc.Signature))
				if want := acvpPassed(t, exp[si][tc.TcID]); want != (err == nil) {
					t.Errorf("RSA sigVer #%d (%s %s): %v, want pass=%v", tc.TcID, g.SigType, g.HashAlg, err, want)
				}
			}
		}
	}
	wantCount(t, "ACVP RSA sigVer", n, 72)
}

var rsaTestKey = sync.OnceValues(func() (attr.Template, attr.Template) {
	pub, priv, err := generateRSA(attr.Template{{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(2048)},
		{Type: ck.CKA_PUBLIC_EXPONENT, Value: []byte{0, 1, 0, 1}}}, nil)
	if err != nil {
		panic(err)
	}
	return pub, priv
})

func rsaTestKeys(t testing.TB) (pub, priv *Key) {
	pa, pr := rsaTestKey()
	return keyOf(t, ck.CKK_RSA, ck.CKO_PUBLIC_KEY, pa), keyOf(t, ck.CKK_RSA, ck.CKO_PRIVATE_KEY, pr)
}

func TestRSAKeyGen(t *testing.T) {
	pa, pr := rsaTestKey()
	for _, want := range []ck.AttributeType{ck.CKA_KEY_TYPE, ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT, ck.CKA_MODULUS_BITS} {
		if !pa.Has(want) {
			t.Errorf("public template lacks %v", want)
		}
	}
	kk, _ := classicReg().KeyKind(ck.CKK_RSA)
	for _, want := range kk.Secret {
		if !pr.Has(want) {
			t.Errorf("private template lacks %v", want)
		}
	}
	if bitsV, _, _ := pa.ULong(ck.CKA_MODULUS_BITS); bitsV != 2048 {
		t.Fatalf("CKA_MODULUS_BITS %d", bitsV)
	}
	pub, priv := rsaTestKeys(t)
	if kk.Size(priv.Attrs, priv.Material) != 2048 {
		t.Fatal("private Size")
	}
	d, _ := kk.Derived(ck.CKO_PUBLIC_KEY, pub.Attrs, pub.Material)
	if v, _, _ := d.ULong(ck.CKA_MODULUS_BITS); v != 2048 {
		t.Fatalf("derived CKA_MODULUS_BITS %d", v)
	}
	gen := regMech(t, ck.CKM_RSA_PKCS_KEY_PAIR_GEN)
	_, _, err := gen.GenerateKeyPair(nil, nil)
	expectRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "no CKA_MODULUS_BITS")
	for _, b := range []ck.ULong{512, 1023, 8192} {
		_, _, err = gen.GenerateKeyPair(attr.Template{{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(b)}}, nil)
		expectRV(t, err, ck.CKR_KEY_SIZE_RANGE, fmt.Sprintf("%d bits", b))
	}
	for _, e := range [][]byte{{2}, {1}, {0x01, 0x00, 0x00, 0x00, 0x00}} {
		_, _, err = gen.GenerateKeyPair(attr.Template{{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(2048)},
			{Type: ck.CKA_PUBLIC_EXPONENT, Value: e}}, nil)
		expectRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, fmt.Sprintf("e=%x", e))
	}
	// Other odd exponents are the caller's choice (miekg/pkcs11's own tests
	// ask for e = 3): the key must come out with that exponent and work.
	pub3, priv3, err := gen.GenerateKeyPair(attr.Template{{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(1024)},
		{Type: ck.CKA_PUBLIC_EXPONENT, Value: []byte{3}}}, nil)
	if err != nil {
		t.Fatalf("e=3: %v", err)
	}
	if e, _ := pub3.Get(ck.CKA_PUBLIC_EXPONENT); !bytes.Equal(e, []byte{3}) {
		t.Fatalf("e=3 key has exponent %x", e)
	}
	if _, err := parseRSA(ck.CKO_PRIVATE_KEY, priv3); err != nil {
		t.Fatalf("e=3 private key does not parse: %v", err)
	}

	// A private key missing its CRT values still works; a wrong one is refused.
	var slim attr.Template
	for _, a := range pr {
		if a.Type == ck.CKA_MODULUS || a.Type == ck.CKA_PUBLIC_EXPONENT || a.Type == ck.CKA_PRIVATE_EXPONENT {
			slim = append(slim, a)
		}
	}
	slimKey := keyOf(t, ck.CKK_RSA, ck.CKO_PRIVATE_KEY, slim)
	s, _ := regMech(t, ck.CKM_SHA256_RSA_PKCS).Sign(slimKey, nil)
	sig, err := s.Sign([]byte("x"))
	if err != nil || sigVerify(t, ck.CKM_SHA256_RSA_PKCS, nil, pub, []byte("x"), sig) != nil {
		t.Fatalf("sign without CRT: %v", err)
	}
	bad := pr.Clone()
	v, _ := bad.Get(ck.CKA_PRIVATE_EXPONENT)
	v[len(v)-1] ^= 2
	_, err = kk.Parse(ck.CKO_PRIVATE_KEY, bad)
	expectRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "inconsistent private exponent")
	_, err = kk.Parse(ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_MODULUS, Value: []byte{1, 2, 3}}})
	expectRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "public key without exponent")
}

func TestRSARoundTrips(t *testing.T) {
	pub, priv := rsaTestKeys(t)
	oaep := ck.RSAOAEPParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA1, Source: ck.CKZ_DATA_SPECIFIED, SourceData: []byte("label")}
	for _, e := range []struct {
		m     ck.MechanismType
		param any
		max   int
	}{
		{ck.CKM_RSA_PKCS, nil, 256 - 11},
		{ck.CKM_RSA_PKCS_OAEP, oaep, 256 - 2*32 - 2},
		{ck.CKM_RSA_PKCS_OAEP, &ck.RSAOAEPParams{HashAlg: ck.CKM_SHA_1, MGF: ck.CKG_MGF1_SHA1}, 256 - 2*20 - 2},
		{ck.CKM_RSA_X_509, nil, 256},
	} {
		enc, err := regMech(t, e.m).Encrypt(pub, e.param)
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := regMech(t, e.m).Decrypt(priv, e.param)
		msg := randBytes(e.max)
		if e.m == ck.CKM_RSA_X_509 {
			msg[0] = 0 // below the modulus
		}
		ct, err := enc.OneShot(nil, msg)
		if err != nil || len(ct) != 256 || enc.OneShotLen(len(msg)) < len(ct) {
			t.Fatalf("%v: %d bytes, %v", e.m, len(ct), err)
		}
		pt, err := dec.OneShot(nil, ct)
		if err != nil || !bytes.Equal(pt, msg) || dec.OneShotLen(len(ct)) < len(pt) {
			t.Fatalf("%v: decrypt %v", e.m, err)
		}
		_, err = enc.OneShot(nil, randBytes(e.max+1))
		expectRV(t, err, ck.CKR_DATA_LEN_RANGE, fmt.Sprintf("%v: too long", e.m))
		_, err = dec.OneShot(nil, ct[1:])
		expectRV(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, fmt.Sprintf("%v: short ciphertext", e.m))
		_, err = enc.Update(nil, msg)
		expectRV(t, err, ck.CKR_FUNCTION_NOT_SUPPORTED, fmt.Sprintf("%v: multi-part", e.m))
		if e.m != ck.CKM_RSA_X_509 {
			ct[5] ^= 1
			_, err = dec.OneShot(nil, ct)
			expectRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, fmt.Sprintf("%v: corrupted", e.m))
		}
	}
	// X.509 raw: short input is left-padded; out-of-range values refused.
	enc, _ := regMech(t, ck.CKM_RSA_X_509).Encrypt(pub, nil)
	dec, _ := regMech(t, ck.CKM_RSA_X_509).Decrypt(priv, nil)
	ct, _ := enc.OneShot(nil, []byte{1, 2, 3})
	pt, _ := dec.OneShot(nil, ct)
	if len(pt) != 256 || !bytes.Equal(pt, leftPad([]byte{1, 2, 3}, 256)) {
		t.Fatalf("X.509 short input: %x", pt)
	}
	_, err := enc.OneShot(nil, bytes.Repeat([]byte{0xFF}, 256))
	expectRV(t, err, ck.CKR_DATA_INVALID, "X.509 input above modulus")

	for _, p := range []any{nil, ck.RSAOAEPParams{HashAlg: ck.CKM_MD5, MGF: ck.CKG_MGF1_SHA1},
		ck.RSAOAEPParams{HashAlg: ck.CKM_SHA256, MGF: 99},
		ck.RSAOAEPParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: 0, SourceData: []byte("x")},
		ck.RSAOAEPParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: 7}} {
		_, err := regMech(t, ck.CKM_RSA_PKCS_OAEP).Encrypt(pub, p)
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, fmt.Sprintf("OAEP param %+v", p))
	}
}

func TestRSASignatures(t *testing.T) {
	pub, priv := rsaTestKeys(t)
	goPriv := priv.Material.(*rsa.PrivateKey)
	msg := []byte("the quick brown fox")
	pss := func(h ck.MechanismType, g ck.MGF, s ck.ULong) ck.RSAPSSParams {
		return ck.RSAPSSParams{HashAlg: h, MGF: g, SaltLen: s}
	}
	for _, e := range []struct {
		m     ck.MechanismType
		param any
	}{
		{ck.CKM_SHA1_RSA_PKCS, nil}, {ck.CKM_SHA256_RSA_PKCS, nil}, {ck.CKM_SHA512_RSA_PKCS, nil},
		{ck.CKM_SHA256_RSA_PKCS_PSS, pss(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 32)},
		{ck.CKM_SHA256_RSA_PKCS_PSS, pss(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 0)},
		{ck.CKM_SHA384_RSA_PKCS_PSS, &ck.RSAPSSParams{HashAlg: ck.CKM_SHA384, MGF: ck.CKG_MGF1_SHA384, SaltLen: 10}},
	} {
		s, err := regMech(t, e.m).Sign(priv, e.param)
		if err != nil {
			t.Fatalf("%v: %v", e.m, err)
		}
		one, err := s.Sign(msg)
		if err != nil || len(one) != s.Len() {
			t.Fatalf("%v: %v", e.m, err)
		}
		s.Update(msg[:4])
		s.Update(msg[4:])
		multi, _ := s.Final()
		for _, sig := range [][]byte{one, multi} {
			if err := sigVerify(t, e.m, e.param, pub, msg, sig); err != nil {
				t.Fatalf("%v: %v", e.m, err)
			}
		}
		expectRV(t, sigVerify(t, e.m, e.param, pub, []byte("other"), one), ck.CKR_SIGNATURE_INVALID, e.m.String())
		expectRV(t, sigVerify(t, e.m, e.param, pub, msg, one[1:]), ck.CKR_SIGNATURE_LEN_RANGE, e.m.String())
	}
	// An empty PSS salt goes through this package's EMSA-PSS; crypto/rsa
	// (salt length auto-detected) must accept it.
	digest := crypto.SHA256.New()
	digest.Write(msg)
	h := digest.Sum(nil)
	s, _ := regMech(t, ck.CKM_RSA_PKCS_PSS).Sign(priv, pss(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 0))
	sig, _ := s.Sign(h)
	if err := rsa.VerifyPSS(&goPriv.PublicKey, crypto.SHA256, h, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
		t.Fatalf("salt-0 PSS rejected by crypto/rsa: %v", err)
	}
	again, _ := s.Sign(h)
	if !bytes.Equal(sig, again) {
		t.Fatal("salt-0 PSS not deterministic")
	}
	expectRV(t, s.Update(h), ck.CKR_FUNCTION_NOT_SUPPORTED, "CKM_RSA_PKCS_PSS update")
	_, err := s.Sign(h[1:])
	expectRV(t, err, ck.CKR_DATA_LEN_RANGE, "PSS digest of the wrong length")
	for _, p := range []any{nil, pss(ck.CKM_SHA256, ck.CKG_MGF1_SHA1, 32), pss(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 300),
		pss(ck.CKM_MD5, ck.CKG_MGF1_SHA256, 16)} {
		_, err := regMech(t, ck.CKM_RSA_PKCS_PSS).Sign(priv, p)
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, fmt.Sprintf("PSS param %+v", p))
	}
	_, err = regMech(t, ck.CKM_SHA256_RSA_PKCS_PSS).Sign(priv, pss(ck.CKM_SHA384, ck.CKG_MGF1_SHA384, 48))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "hashAlg differs from the mechanism's hash")

	// CKM_RSA_PKCS signs a caller-built DigestInfo: equal to crypto/rsa's
	// SHA-256 PKCS#1 v1.5 signature, and so is CKM_RSA_X_509 over the
	// fully padded block (checks the blinded math/big path).
	prefix := mustHex(t, "3031300d060960864801650304020105000420")
	di := append(bytes.Clone(prefix), h...)
	want, _ := rsa.SignPKCS1v15(nil, goPriv, crypto.SHA256, h)
	s, _ = regMech(t, ck.CKM_RSA_PKCS).Sign(priv, nil)
	got, err := s.Sign(di)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("CKM_RSA_PKCS: %v", err)
	}
	expectRV(t, s.Update(di), ck.CKR_FUNCTION_NOT_SUPPORTED, "CKM_RSA_PKCS update")
	_, err = s.Sign(make([]byte, 256-10))
	expectRV(t, err, ck.CKR_DATA_LEN_RANGE, "CKM_RSA_PKCS too long")
	em := append(append([]byte{0, 1}, bytes.Repeat([]byte{0xFF}, 256-3-len(di))...), 0)
	em = append(em, di...)
	s, _ = regMech(t, ck.CKM_RSA_X_509).Sign(priv, nil)
	got, err = s.Sign(em)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("CKM_RSA_X_509 sign: %v", err)
	}
	if err := sigVerify(t, ck.CKM_RSA_X_509, nil, pub, em[1:], got); err != nil {
		t.Fatalf("X.509 verify with stripped leading zero: %v", err)
	}
	expectRV(t, sigVerify(t, ck.CKM_RSA_X_509, nil, pub, em[2:], got), ck.CKR_SIGNATURE_INVALID, "X.509 wrong data")
	// Key-less raw op sanity: a private key without primes takes the
	// plain-exponent branch of rsaRawPrivate.
	np := &rsa.PrivateKey{PublicKey: goPriv.PublicKey, D: goPriv.D}
	out, err := rsaRawPrivate(np, em)
	if err != nil || !bytes.Equal(out, want) {
		t.Fatalf("raw private without CRT: %v", err)
	}
}

func BenchmarkRSA2048Sign(b *testing.B) {
	_, priv := rsaTestKeys(b)
	m := regMech(b, ck.CKM_SHA256_RSA_PKCS)
	msg := bytes.Repeat([]byte{1}, 64)
	b.ReportAllocs()
	for b.Loop() {
		s, err := m.Sign(priv, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}
