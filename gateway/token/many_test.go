package token_test

import (
	"crypto/sha256"
	"encoding/asn1"
	"fmt"
	"testing"

	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// manyKeys are the keys TestMany's calls use: token objects, so that
// every session of the token sees them.
type manyKeys struct {
	aes1, aes2, ecPriv, ecPub, rsaPub, rsaPriv ck.ObjectHandle
}

func makeManyKeys(t testing.TB, s token.Session) manyKeys {
	t.Helper()
	var k manyKeys
	k.aes1, k.aes2 = aesKey(t, s), aesKey(t, s)
	p256, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
	var err error
	k.ecPub, k.ecPriv, err = s.GenerateKeyPair(ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_VERIFY, Value: attr.Bool(true)}, {Type: ck.CKA_TOKEN, Value: attr.Bool(true)}},
		[]ck.Attribute{{Type: ck.CKA_SIGN, Value: attr.Bool(true)}, {Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)}, {Type: ck.CKA_TOKEN, Value: attr.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	k.rsaPub, k.rsaPriv, err = s.GenerateKeyPair(ck.Mechanism{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_MODULUS_BITS, Value: attr.ULong(2048)}, {Type: ck.CKA_ENCRYPT, Value: attr.Bool(true)}, {Type: ck.CKA_TOKEN, Value: attr.Bool(true)}},
		[]ck.Attribute{{Type: ck.CKA_DECRYPT, Value: attr.Bool(true)}, {Type: ck.CKA_SENSITIVE, Value: attr.Bool(true)}, {Type: ck.CKA_TOKEN, Value: attr.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// manyCalls is a run mixing every kind: seals under two keys (the
// second key's go alone on an appliance), signs with a refused one among
// them (an AES key cannot sign ECDSA), an RSA-OAEP encryption, and a
// seal after the refusal.
func manyCalls(k manyKeys) []token.Call {
	digest := func(i int) []byte { d := sha256.Sum256(fmt.Appendf(nil, "message %d", i)); return d[:] }
	oaep := ck.Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Param: &ck.RSAOAEPParams{HashAlg: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256}}
	return []token.Call{
		{Kind: token.CallSeal, Mech: ck.Mechanism{Type: ck.CKM_AES_GCM}, Key: k.aes1, In: []byte("seal 0"), AAD: []byte("aad 0")},
		{Kind: token.CallSign, Mech: ck.Mechanism{Type: ck.CKM_ECDSA}, Key: k.ecPriv, In: digest(1)},
		{Kind: token.CallSeal, Mech: ck.Mechanism{Type: ck.CKM_AES_GCM}, Key: k.aes2, In: []byte("seal 2"), AAD: []byte("aad 2")},
		{Kind: token.CallSign, Mech: ck.Mechanism{Type: ck.CKM_ECDSA}, Key: k.aes1, In: digest(3)},
		{Kind: token.CallSign, Mech: ck.Mechanism{Type: ck.CKM_ECDSA}, Key: k.ecPriv, In: digest(4)},
		{Kind: token.CallEncrypt, Mech: oaep, Key: k.rsaPub, In: []byte("oaep 5")},
		{Kind: token.CallSeal, Mech: ck.Mechanism{Type: ck.CKM_AES_GCM}, Key: k.aes1, In: []byte("seal 6"), AAD: nil},
	}
}

// checkMany checks each call's result by the inverse operation on s.
func checkMany(t *testing.T, s token.Session, k manyKeys, calls []token.Call) {
	t.Helper()
	for i, c := range calls {
		if i == 3 {
			if c.Err == nil || c.Out != nil {
				t.Errorf("call 3 (ECDSA with an AES key): %x, %v; want a refusal", c.Out, c.Err)
			}
			continue
		}
		if c.Err != nil {
			t.Errorf("call %d: %v", i, c.Err)
			continue
		}
		switch c.Kind {
		case token.CallSeal:
			pt, err := s.Open(nil, ck.CKM_AES_GCM, c.Key, c.AAD, c.Out)
			if err != nil || string(pt) != string(c.In) {
				t.Errorf("call %d: opened %q, %v; sealed %q", i, pt, err, c.In)
			}
		case token.CallSign:
			if err := s.Verify(c.Mech, k.ecPub, c.In, c.Out); err != nil || len(c.Out) != 64 {
				t.Errorf("call %d: signature of %d bytes: %v", i, len(c.Out), err)
			}
		case token.CallEncrypt:
			pt, err := s.Decrypt(c.Mech, k.rsaPriv, c.Out)
			if err != nil || string(pt) != string(c.In) {
				t.Errorf("call %d: decrypted %q, %v", i, pt, err)
			}
		}
	}
}

// TestMany: a run of calls made together on an appliance's session (one
// client.Batch) gives each call the result it gets alone, in-process or
// remote; one refused call leaves the others whole, and a session that
// made a batch goes on making single calls.
func TestMany(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	_, cc := startAppliances(t, dir, 1)
	remote, err := token.OpenRemoteToken(cc, "gw", []byte(gwtest.UserPIN))
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	rs, err := remote.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if _, ok := rs.(token.Batcher); !ok {
		t.Fatal("an appliance's session is no Batcher")
	}
	k := makeManyKeys(t, rs)
	for round := range 2 { // the second finds the message operation begun
		calls := manyCalls(k)
		token.Many(rs, calls)
		checkMany(t, rs, k, calls)
		if want := ck.CKR_KEY_TYPE_INCONSISTENT; token.RV(calls[3].Err) != want {
			t.Errorf("round %d: call 3 remote: %v, want %v", round, calls[3].Err, want)
		}
	}
	// Single calls after the batches, on the same session.
	sealed, err := rs.Seal(nil, ck.CKM_AES_GCM, k.aes2, nil, []byte("alone"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := rs.Open(nil, ck.CKM_AES_GCM, k.aes2, nil, sealed); err != nil || string(pt) != "alone" {
		t.Fatalf("a single seal after the batches: %q %v", pt, err)
	}

	// In-process: the same run, one call after another.
	local := gwtest.Token(t, gwtest.Store(t, "gw"), "gw")
	ls, err := local.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	if _, ok := ls.(token.Batcher); ok {
		t.Fatal("an in-process session claims to batch")
	}
	lk := makeManyKeys(t, ls)
	calls := manyCalls(lk)
	token.Many(ls, calls)
	checkMany(t, ls, lk, calls)
	if want := ck.CKR_KEY_TYPE_INCONSISTENT; token.RV(calls[3].Err) != want {
		t.Errorf("call 3 in-process: %v, want %v", calls[3].Err, want)
	}
}

// BenchmarkRemoteMany is a run of 100 calls on one appliance session over
// loopback TLS, made one after another by the session's single calls (a
// Seal is one C_EncryptMessage, a Sign a batch of one: an exchange each)
// and made together (token.Many: one client.Batch). ns/call is per call.
func BenchmarkRemoteMany(b *testing.B) {
	dir := gwtest.Store(b, "gw")
	_, cc := startAppliances(b, dir, 1)
	remote, err := token.OpenRemoteToken(cc, "gw", []byte(gwtest.UserPIN))
	if err != nil {
		b.Fatal(err)
	}
	defer remote.Close()
	s, err := remote.OpenSession()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	k := makeManyKeys(b, s)
	const n = 100
	for _, kind := range []struct {
		name string
		call token.Call
	}{
		{"seal", token.Call{Kind: token.CallSeal, Mech: ck.Mechanism{Type: ck.CKM_AES_GCM}, Key: k.aes1, In: make([]byte, 64)}},
		{"sign", token.Call{Kind: token.CallSign, Mech: ck.Mechanism{Type: ck.CKM_ECDSA}, Key: k.ecPriv, In: make([]byte, 32)}},
	} {
		for _, mode := range []string{"alone", "many"} {
			b.Run(kind.name+"/"+mode, func(b *testing.B) {
				calls := make([]token.Call, n)
				for b.Loop() {
					for i := range calls {
						calls[i] = kind.call
					}
					if mode == "many" {
						token.Many(s, calls)
					} else {
						for i := range calls {
							c := &calls[i]
							if c.Kind == token.CallSeal {
								c.Out, c.Err = s.Seal(nil, c.Mech.Type, c.Key, c.AAD, c.In)
							} else {
								c.Out, c.Err = s.Sign(c.Mech, c.Key, c.In)
							}
						}
					}
					for i := range calls {
						if calls[i].Err != nil {
							b.Fatal(calls[i].Err)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/call")
			})
		}
	}
}
