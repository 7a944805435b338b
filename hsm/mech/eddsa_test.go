package mech

import (
	"bytes"
	"encoding/asn1"
	"encoding/json"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

var (
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidEd448   = asn1.ObjectIdentifier{1, 3, 101, 113}
)

func edPub(t testing.TB, params, point []byte) *Key {
	return keyOf(t, ck.CKK_EC_EDWARDS, ck.CKO_PUBLIC_KEY, attr.Template{
		{Type: ck.CKA_EC_PARAMS, Value: params}, {Type: ck.CKA_EC_POINT, Value: point}})
}

func edPriv(t testing.TB, params, seed []byte) *Key {
	return keyOf(t, ck.CKK_EC_EDWARDS, ck.CKO_PRIVATE_KEY, attr.Template{
		{Type: ck.CKA_EC_PARAMS, Value: params}, {Type: ck.CKA_VALUE, Value: seed}})
}

func TestWycheproofEdDSA(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file  string
		oid   asn1.ObjectIdentifier
		name  string
		count int
	}{
		{"ed25519_test.json", oidEd25519, "edwards25519", 150},
		{"ed448_test.json", oidEd448, "edwards448", 86},
	} {
		f := wpLoad(t, c.file)
		n := 0
		for gi, raw := range f.TestGroups {
			g := wpGroup[struct {
				PublicKey struct{ Pk string }
				Tests     []wpTest
			}](t, raw)
			// Alternate the accepted spellings of CKA_EC_PARAMS and
			// CKA_EC_POINT across groups.
			params := curveParams(t, c.oid)
			point := mustHex(t, g.PublicKey.Pk)
			if gi%2 == 1 {
				params = mustMarshal(t, c.name)
				point = mustMarshal(t, point)
			}
			k := edPub(t, params, point)
			for _, tc := range g.Tests {
				n++
				wpCheck(t, c.file, tc, sigVerify(t, ck.CKM_EDDSA, nil, k, mustHex(t, tc.Msg), mustHex(t, tc.Sig)))
			}
		}
		wantCount(t, "Wycheproof "+c.file, n, c.count)
	}
}

func TestACVPEdDSASigVer(t *testing.T) {
	t.Parallel()
	sets, exp := acvpLoad(t, "EDDSA")
	n := 0
	for si, s := range sets {
		if s.Mode != "sigVer" {
			continue
		}
		for _, raw := range s.TestGroups {
			var g struct {
				Curve   string
				PreHash bool
				Tests   []struct {
					TcID                  int
					Message, Q, Signature string
				}
			}
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatal(err)
			}
			if g.Curve != "ED-25519" {
				continue
			}
			var param any
			if g.PreHash {
				param = &ck.EDDSAParams{PHFlag: true}
			}
			for _, tc := range g.Tests {
				n++
				k := edPub(t, curveParams(t, oidEd25519), mustHex(t, tc.Q))
				err := sigVerify(t, ck.CKM_EDDSA, param, k, mustHex(t, tc.Message), mustHex(t, tc.Signature))
				if want := acvpPassed(t, exp[si][tc.TcID]); want != (err == nil) {
					t.Errorf("EDDSA sigVer #%d (ph %v): got %v, want pass=%v", tc.TcID, g.PreHash, err, want)
				}
			}
		}
	}
	wantCount(t, "ACVP EDDSA sigVer", n, 2)
}

// TestEdDSARFC8032 checks the prehash variant against RFC 8032 §7.3
// (Ed25519ph, message "abc"); EdDSA is deterministic, so the bytes match.
func TestEdDSARFC8032(t *testing.T) {
	k := edPriv(t, curveParams(t, oidEd25519), mustHex(t, "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"))
	want := mustHex(t, "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"+
		"31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406")
	s, err := regMech(t, ck.CKM_EDDSA).Sign(k, ck.EDDSAParams{PHFlag: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sign([]byte("abc"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Ed25519ph: %x, %v", got, err)
	}
	pub := edPub(t, curveParams(t, oidEd25519), mustHex(t, "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"))
	if err := sigVerify(t, ck.CKM_EDDSA, &ck.EDDSAParams{PHFlag: true}, pub, []byte("abc"), want); err != nil {
		t.Fatal(err)
	}
	// The same signature is not a pure Ed25519 signature.
	expectRV(t, sigVerify(t, ck.CKM_EDDSA, nil, pub, []byte("abc"), want), ck.CKR_SIGNATURE_INVALID, "pure vs ph")
}

func genEd(t testing.TB, params []byte) (pub, priv *Key) {
	t.Helper()
	pa, pr, err := regMech(t, ck.CKM_EC_EDWARDS_KEY_PAIR_GEN).GenerateKeyPair(attr.Template{{Type: ck.CKA_EC_PARAMS, Value: params}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return keyOf(t, ck.CKK_EC_EDWARDS, ck.CKO_PUBLIC_KEY, pa), keyOf(t, ck.CKK_EC_EDWARDS, ck.CKO_PRIVATE_KEY, pr)
}

// TestEdDSAVariants signs and verifies every RFC 8032 variant on both
// curves, single- and multi-part, and checks that the variants (and
// contexts) do not verify each other's signatures.
func TestEdDSAVariants(t *testing.T) {
	msg := bytes.Repeat([]byte("edwards "), 33)
	for _, c := range []struct {
		oid    asn1.ObjectIdentifier
		sigLen int
	}{{oidEd25519, 64}, {oidEd448, 114}} {
		pub, priv := genEd(t, curveParams(t, c.oid))
		params := []any{nil, ck.EDDSAParams{ContextData: []byte("ctx one")}, &ck.EDDSAParams{PHFlag: true},
			&ck.EDDSAParams{PHFlag: true, ContextData: []byte("ctx two")}}
		sigs := make([][]byte, len(params))
		for i, p := range params {
			s, err := regMech(t, ck.CKM_EDDSA).Sign(priv, p)
			if err != nil {
				t.Fatal(err)
			}
			if s.Len() != c.sigLen {
				t.Fatalf("Len %d", s.Len())
			}
			one, err := s.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			s.Update(msg[:7])
			s.Update(msg[7:])
			multi, err := s.Final()
			if err != nil || !bytes.Equal(one, multi) { // deterministic
				t.Fatalf("%v param %d: one-shot %x, multi-part %x (%v)", c.oid, i, one, multi, err)
			}
			sigs[i] = one
			if err := sigVerify(t, ck.CKM_EDDSA, p, pub, msg, one); err != nil {
				t.Fatalf("%v param %d: %v", c.oid, i, err)
			}
		}
		for i := range params {
			for j := range params {
				if i != j && sigVerify(t, ck.CKM_EDDSA, params[j], pub, msg, sigs[i]) == nil {
					t.Errorf("%v: signature of variant %d verifies as variant %d", c.oid, i, j)
				}
			}
		}
		v, _ := regMech(t, ck.CKM_EDDSA).Verify(pub, nil)
		expectRV(t, v.Verify(msg, sigs[0][1:]), ck.CKR_SIGNATURE_LEN_RANGE, "short signature")
		_, err := regMech(t, ck.CKM_EDDSA).Sign(priv, ck.EDDSAParams{ContextData: make([]byte, 256)})
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "context of 256 bytes")
		_, err = regMech(t, ck.CKM_EDDSA).Sign(pub, nil)
		expectRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT, "sign with a public key")
		_, err = regMech(t, ck.CKM_EDDSA).Sign(priv, ck.GCMParams{})
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "wrong parameter type")
	}
}

func TestEdDSAKeys(t *testing.T) {
	kk, _ := classicReg().KeyKind(ck.CKK_EC_EDWARDS)
	p25519 := curveParams(t, oidEd25519)
	pub, priv := genEd(t, p25519)
	if kk.Size(pub.Attrs, pub.Material) != 255 || kk.Size(nil, nil) != 0 {
		t.Fatal("size")
	}
	// The generated public point is a DER OCTET STRING of the key, and the
	// private CKA_VALUE is the 32-byte seed that derives it.
	point, _ := pub.Attrs.Get(ck.CKA_EC_POINT)
	seed, _ := priv.Attrs.Get(ck.CKA_VALUE)
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) != 0 || len(raw) != 32 || len(seed) != 32 {
		t.Fatalf("point %x seed %d bytes", point, len(seed))
	}
	if !bytes.Equal(priv.Material.(*edKey).pub, raw) {
		t.Fatal("private key does not derive the public key")
	}
	// Gnu's Ed25519 OID is accepted; curves that are not Edwards are not.
	if _, err := kk.Parse(ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: curveParams(t, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 15, 1})},
		{Type: ck.CKA_EC_POINT, Value: raw}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		class ck.ObjectClass
		a     attr.Template
		rv    ck.RV
		what  string
	}{
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_POINT, Value: raw}}, ck.CKR_TEMPLATE_INCOMPLETE, "no params"},
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p25519}}, ck.CKR_TEMPLATE_INCOMPLETE, "no point"},
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: curveParams(t, ecCurves[0].oid)}, {Type: ck.CKA_EC_POINT, Value: raw}}, ck.CKR_CURVE_NOT_SUPPORTED, "NIST curve"},
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: mustMarshal(t, "curve25519")}, {Type: ck.CKA_EC_POINT, Value: raw}}, ck.CKR_CURVE_NOT_SUPPORTED, "Montgomery name"},
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: []byte{6, 1}}, {Type: ck.CKA_EC_POINT, Value: raw}}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "bad DER"},
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p25519}, {Type: ck.CKA_EC_POINT, Value: raw[:31]}}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "short point"},
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: curveParams(t, oidEd448)}, {Type: ck.CKA_EC_POINT, Value: raw}}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "Ed25519 point on Ed448"},
		{ck.CKO_PRIVATE_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p25519}, {Type: ck.CKA_VALUE, Value: seed[:31]}}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "short seed"},
		// y = 2 has no x on either curve (RFC 8032 decoding fails): not a
		// public key (NIST ACVP EDDSA keyVer refuses such keys).
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p25519}, {Type: ck.CKA_EC_POINT, Value: append([]byte{2}, make([]byte, 31)...)}}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "Ed25519 encoding of no point"},
		{ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: curveParams(t, oidEd448)}, {Type: ck.CKA_EC_POINT, Value: append([]byte{2}, make([]byte, 56)...)}}, ck.CKR_ATTRIBUTE_VALUE_INVALID, "Ed448 encoding of no point"},
		{ck.CKO_SECRET_KEY, attr.Template{{Type: ck.CKA_EC_PARAMS, Value: p25519}}, ck.CKR_TEMPLATE_INCONSISTENT, "secret class"},
	} {
		_, err := kk.Parse(c.class, c.a)
		expectRV(t, err, c.rv, c.what)
	}
	_, _, err := regMech(t, ck.CKM_EC_EDWARDS_KEY_PAIR_GEN).GenerateKeyPair(nil, nil)
	expectRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE, "keygen without params")
	_, _, err = regMech(t, ck.CKM_EC_EDWARDS_KEY_PAIR_GEN).GenerateKeyPair(attr.Template{{Type: ck.CKA_EC_PARAMS, Value: []byte{1}}}, nil)
	expectRV(t, err, ck.CKR_DOMAIN_PARAMS_INVALID, "keygen with bad params")
}

func BenchmarkEd25519Sign(b *testing.B) {
	_, priv := genEd(b, curveParams(b, oidEd25519))
	s, err := regMech(b, ck.CKM_EDDSA).Sign(priv, nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}
