package mech

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"testing"

	tjsm4 "github.com/tjfoc/gmsm/sm4"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

func sm4TestKey(t testing.TB, v []byte) *Key {
	t.Helper()
	kt, _ := ck.DefaultProfile.KeyType("CKK_SM4")
	a := attr.Template{{Type: ck.CKA_VALUE, Value: v}}
	kk := sm4KeyKinds(ck.DefaultProfile)[0]
	m, err := kk.Parse(ck.CKO_SECRET_KEY, a)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Class: ck.CKO_SECRET_KEY, Type: kt, Material: m, Attrs: a}
}

func sm4Op(t testing.TB, name string, k *Key, param any, encrypt bool) Cipher {
	t.Helper()
	m := smMech(t, ck.DefaultProfile, name)
	f := m.Decrypt
	if encrypt {
		f = m.Encrypt
	}
	c, err := f(k, param)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func oneShot(t testing.TB, c Cipher, src []byte) []byte {
	t.Helper()
	out, err := c.OneShot(nil, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > c.OneShotLen(len(src)) {
		t.Fatalf("OneShot gave %d bytes, OneShotLen said %d", len(out), c.OneShotLen(len(src)))
	}
	return out
}

// GB/T 32907-2016 Appendix A example 1 (and example 2 below).
func TestSM4StandardVector(t *testing.T) {
	v := unhex(t, "0123456789abcdeffedcba9876543210")
	k := sm4TestKey(t, v)
	ct := oneShot(t, sm4Op(t, "CKM_SM4_ECB", k, nil, true), v)
	if hex.EncodeToString(ct) != "681edf34d206965e86b3e94f536e4246" {
		t.Fatalf("SM4 = %x", ct)
	}
	if pt := oneShot(t, sm4Op(t, "CKM_SM4_ECB", k, nil, false), ct); !bytes.Equal(pt, v) {
		t.Fatalf("SM4^-1 = %x", pt)
	}
}

// GB/T 32907-2016 example 2: the same block encrypted 1,000,000 times.
func TestSM4MillionIterations(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000,000 SM4 blocks")
	}
	v := unhex(t, "0123456789abcdeffedcba9876543210")
	b, err := sm4Block(sm4TestKey(t, v))
	if err != nil {
		t.Fatal(err)
	}
	x := append([]byte(nil), v...)
	for range 1000000 {
		b.Encrypt(x, x)
	}
	if hex.EncodeToString(x) != "595298c7c6fd271f0402f804c33d3f66" {
		t.Fatalf("after 10^6 rounds: %x", x)
	}
}

// ECB, CBC and CBC_PAD against tjfoc/gmsm's independent SM4, both ways.
func TestSM4CrossTjfoc(t *testing.T) {
	for i := range 50 {
		key, iv := make([]byte, 16), make([]byte, 16)
		rand.Read(key)
		rand.Read(iv)
		k := sm4TestKey(t, key)
		tb, err := tjsm4.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		blocks := make([]byte, 16*(1+i%7))
		rand.Read(blocks)

		// ECB: tjfoc's block one block at a time (its cipher has scratch
		// state, so it is used from this goroutine only).
		want := make([]byte, len(blocks))
		for j := 0; j < len(blocks); j += 16 {
			tb.Encrypt(want[j:j+16], blocks[j:j+16])
		}
		got := oneShot(t, sm4Op(t, "CKM_SM4_ECB", k, nil, true), blocks)
		if !bytes.Equal(got, want) {
			t.Fatalf("ECB differs from tjfoc")
		}
		if pt := oneShot(t, sm4Op(t, "CKM_SM4_ECB", k, nil, false), want); !bytes.Equal(pt, blocks) {
			t.Fatalf("ECB decrypt of tjfoc ciphertext")
		}

		// CBC: stdlib chaining over tjfoc's block.
		want = make([]byte, len(blocks))
		cipher.NewCBCEncrypter(tb, iv).CryptBlocks(want, blocks)
		if got := oneShot(t, sm4Op(t, "CKM_SM4_CBC", k, iv, true), blocks); !bytes.Equal(got, want) {
			t.Fatalf("CBC differs from tjfoc")
		}
		if pt := oneShot(t, sm4Op(t, "CKM_SM4_CBC", k, iv, false), want); !bytes.Equal(pt, blocks) {
			t.Fatalf("CBC decrypt of tjfoc ciphertext")
		}

		// CBC_PAD: tjfoc's own CBC with PKCS#7 (it keeps the IV globally).
		msg := blocks[:len(blocks)-i%16]
		if err := tjsm4.SetIV(iv); err != nil {
			t.Fatal(err)
		}
		want, err = tjsm4.Sm4Cbc(key, msg, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := oneShot(t, sm4Op(t, "CKM_SM4_CBC_PAD", k, iv, true), msg); !bytes.Equal(got, want) {
			t.Fatalf("CBC_PAD differs from tjfoc for %d bytes", len(msg))
		}
		if pt := oneShot(t, sm4Op(t, "CKM_SM4_CBC_PAD", k, iv, false), want); !bytes.Equal(pt, msg) {
			t.Fatalf("CBC_PAD decrypt of tjfoc ciphertext")
		}

		// CTR: stdlib CTR over tjfoc's block.
		cb := [16]byte(iv)
		want = make([]byte, len(msg))
		cipher.NewCTR(tb, cb[:]).XORKeyStream(want, msg)
		p := ck.CTRParams{CounterBits: 128, CB: cb}
		if got := oneShot(t, sm4Op(t, "CKM_SM4_CTR", k, p, true), msg); !bytes.Equal(got, want) {
			t.Fatalf("CTR differs from tjfoc")
		}
	}
	tjsm4.SetIV(make([]byte, 16))
}

// Multi-part in random chunks equals one-shot, for every mode.
func TestSM4MultiPartEqualsOneShot(t *testing.T) {
	key, iv := make([]byte, 16), make([]byte, 16)
	rand.Read(key)
	rand.Read(iv)
	k := sm4TestKey(t, key)
	ctr := ck.CTRParams{CounterBits: 32, CB: [16]byte(iv)}
	gcm := ck.GCMParams{IV: iv[:12], AAD: []byte("aad"), TagBits: 96}
	r := mrand.New(mrand.NewPCG(1, 2))
	for _, tc := range []struct {
		name  string
		param any
		block bool // input must be whole blocks
	}{
		{"CKM_SM4_ECB", nil, true}, {"CKM_SM4_CBC", iv, true}, {"CKM_SM4_CBC_PAD", iv, false},
		{"CKM_SM4_CTR", &ctr, false}, {"CKM_SM4_GCM", &gcm, false},
	} {
		for trial := range 40 {
			n := r.IntN(200)
			if tc.block {
				n -= n % 16
			}
			msg := make([]byte, n)
			rand.Read(msg)
			var chunks []int
			for range r.IntN(6) {
				chunks = append(chunks, r.IntN(40))
			}
			ct1 := oneShot(t, sm4Op(t, tc.name, k, tc.param, true), msg)
			ct2, err := runCipher(t, sm4Op(t, tc.name, k, tc.param, true), msg, chunks)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !bytes.Equal(ct1, ct2) {
				t.Fatalf("%s trial %d: multi-part ciphertext differs", tc.name, trial)
			}
			pt, err := runCipher(t, sm4Op(t, tc.name, k, tc.param, false), ct1, chunks)
			if err != nil {
				t.Fatalf("%s: decrypt: %v", tc.name, err)
			}
			if !bytes.Equal(pt, msg) {
				t.Fatalf("%s trial %d: multi-part decrypt differs", tc.name, trial)
			}
		}
	}
}

func TestSM4Errors(t *testing.T) {
	key := make([]byte, 16)
	rand.Read(key)
	k := sm4TestKey(t, key)
	iv := make([]byte, 16)

	_, err := sm4Op(t, "CKM_SM4_ECB", k, nil, true).OneShot(nil, make([]byte, 15))
	wantRV(t, err, ck.CKR_DATA_LEN_RANGE)
	_, err = sm4Op(t, "CKM_SM4_CBC", k, iv, false).OneShot(nil, make([]byte, 17))
	wantRV(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
	c := sm4Op(t, "CKM_SM4_ECB", k, nil, true)
	c.Update(nil, make([]byte, 20))
	_, err = c.Final(nil)
	wantRV(t, err, ck.CKR_DATA_LEN_RANGE)

	_, err = smMech(t, ck.DefaultProfile, "CKM_SM4_CBC").Encrypt(k, iv[:8])
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	_, err = smMech(t, ck.DefaultProfile, "CKM_SM4_ECB").Encrypt(k, iv)
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)

	// CBC_PAD: a last block whose padding is wrong, made with raw CBC so
	// the failure is certain rather than likely.
	for _, last := range []byte{0, 17, 3} {
		blk := bytes.Repeat([]byte{last}, 16)
		if last == 3 {
			blk[13] = 2 // 03 03 expected in the pad, one byte wrong
		}
		ct := oneShot(t, sm4Op(t, "CKM_SM4_CBC", k, iv, true), blk)
		_, err = sm4Op(t, "CKM_SM4_CBC_PAD", k, iv, false).OneShot(nil, ct)
		wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
	}

	// CTR refuses to wrap the counter: 8-bit counter at 0xFE leaves 2 blocks.
	cb := [16]byte{15: 0xFE}
	p := ck.CTRParams{CounterBits: 8, CB: cb}
	if _, err := sm4Op(t, "CKM_SM4_CTR", k, p, true).OneShot(nil, make([]byte, 32)); err != nil {
		t.Fatalf("two blocks under an 8-bit counter at 0xFE: %v", err)
	}
	_, err = sm4Op(t, "CKM_SM4_CTR", k, p, true).OneShot(nil, make([]byte, 33))
	wantRV(t, err, ck.CKR_DATA_LEN_RANGE)

	// Key objects.
	kk := sm4KeyKinds(ck.DefaultProfile)[0]
	_, err = kk.Parse(ck.CKO_SECRET_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: make([]byte, 24)}})
	wantRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = kk.Parse(ck.CKO_SECRET_KEY, nil)
	wantRV(t, err, ck.CKR_TEMPLATE_INCOMPLETE)
	_, err = kk.Parse(ck.CKO_PUBLIC_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: key}})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
}

func TestSM4KeyGen(t *testing.T) {
	m := smMech(t, ck.DefaultProfile, "CKM_SM4_KEY_GEN")
	kt, _ := ck.DefaultProfile.KeyType("CKK_SM4")
	a, err := m.GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := a.Get(ck.CKA_VALUE)
	ty, _, _ := a.ULong(ck.CKA_KEY_TYPE)
	if len(v) != 16 || ck.KeyType(ty) != kt || bytes.Equal(v, make([]byte, 16)) {
		t.Fatalf("generated %x of type %v", v, ck.KeyType(ty))
	}
	b, _ := m.GenerateKey(nil)
	if w, _ := b.Get(ck.CKA_VALUE); bytes.Equal(v, w) {
		t.Fatal("two generated keys are equal")
	}
	_, err = m.GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)}})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	_, err = m.GenerateKey(attr.Template{{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))}})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
	d, _ := sm4KeyKinds(ck.DefaultProfile)[0].Derived(ck.CKO_SECRET_KEY, a, nil)
	if n, _, _ := d.ULong(ck.CKA_VALUE_LEN); n != 16 {
		t.Errorf("derived CKA_VALUE_LEN %d", n)
	}
}

// RFC 8998 Appendix A.1, SM4-GCM.
func TestSM4GCMRFC8998(t *testing.T) {
	k := sm4TestKey(t, unhex(t, "0123456789ABCDEFFEDCBA9876543210"))
	p := ck.GCMParams{IV: unhex(t, "00001234567800000000ABCD"), AAD: unhex(t, "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2"), TagBits: 128}
	pt := unhex(t, "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
	want := unhex(t, "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"+
		"83DE3541E4C2B58177E065A9BF7B62EC")
	if got := oneShot(t, sm4Op(t, "CKM_SM4_GCM", k, p, true), pt); !bytes.Equal(got, want) {
		t.Fatalf("SM4-GCM = %x", got)
	}
	if got := oneShot(t, sm4Op(t, "CKM_SM4_GCM", k, &p, false), want); !bytes.Equal(got, pt) {
		t.Fatalf("SM4-GCM decrypt = %x", got)
	}
	// Truncated tags are prefixes of the full one, and are checked.
	for _, tb := range []ck.ULong{32, 64, 96, 120} {
		q := p
		q.TagBits = tb
		ct := oneShot(t, sm4Op(t, "CKM_SM4_GCM", k, q, true), pt)
		if !bytes.Equal(ct, want[:len(pt)+int(tb/8)]) {
			t.Fatalf("%d-bit tag is not the prefix", tb)
		}
		if got := oneShot(t, sm4Op(t, "CKM_SM4_GCM", k, q, false), ct); !bytes.Equal(got, pt) {
			t.Fatalf("%d-bit tag decrypt", tb)
		}
		ct[len(ct)-1] ^= 1
		_, err := sm4Op(t, "CKM_SM4_GCM", k, q, false).OneShot(nil, ct)
		wantRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	for _, bad := range []ck.GCMParams{{IV: p.IV, TagBits: 24}, {IV: p.IV, TagBits: 100}, {IV: nil, TagBits: 128}} {
		_, err := smMech(t, ck.DefaultProfile, "CKM_SM4_GCM").Encrypt(k, bad)
		wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	_, err := sm4Op(t, "CKM_SM4_GCM", k, p, false).OneShot(nil, want[:15])
	wantRV(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
}

type wycheproofAEAD struct {
	TestGroups []struct {
		IvSize, TagSize int
		Tests           []struct {
			TcID                       int `json:"tcId"`
			Key, Iv, Aad, Msg, Ct, Tag string
			Result                     string
		}
	}
}

// Wycheproof sm4_gcm_test.json. IVs longer than 256 bytes are outside what
// PKCS#11 2.40 allows for GCM and must be refused as a parameter error.
func TestSM4GCMWycheproof(t *testing.T) {
	var f wycheproofAEAD
	loadJSON(t, "testdata/wycheproof/sm4_gcm_test.json", &f)
	m := smMech(t, ck.DefaultProfile, "CKM_SM4_GCM")
	n := 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			n++
			k := sm4TestKey(t, unhex(t, tc.Key))
			p := ck.GCMParams{IV: unhex(t, tc.Iv), AAD: unhex(t, tc.Aad), TagBits: ck.ULong(g.TagSize)}
			ctTag := append(unhex(t, tc.Ct), unhex(t, tc.Tag)...)
			dec, err := m.Decrypt(k, p)
			if err != nil {
				if len(p.IV) == 0 || len(p.IV) > 256 {
					wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
					continue
				}
				t.Fatalf("tc %d: %v", tc.TcID, err)
			}
			pt, derr := dec.OneShot(nil, ctTag)
			if tc.Result == "invalid" {
				if derr == nil {
					t.Errorf("tc %d: invalid ciphertext decrypted", tc.TcID)
				}
				continue
			}
			if derr != nil || !bytes.Equal(pt, unhex(t, tc.Msg)) {
				t.Errorf("tc %d: decrypt %x, %v", tc.TcID, pt, derr)
			}
			enc, _ := m.Encrypt(k, p)
			if got := oneShot(t, enc, unhex(t, tc.Msg)); !bytes.Equal(got, ctTag) {
				t.Errorf("tc %d: encrypt %x", tc.TcID, got)
			}
		}
	}
	if n != 104 {
		t.Errorf("ran %d Wycheproof SM4-GCM cases, file has 104", n)
	}
}

// CKM_SM4_MAC against CBC-MAC computed with tjfoc's block.
func TestSM4MAC(t *testing.T) {
	key := make([]byte, 16)
	rand.Read(key)
	k := sm4TestKey(t, key)
	tb, _ := tjsm4.NewCipher(key)
	ref := func(msg []byte) []byte {
		var st [16]byte
		if len(msg) == 0 {
			return st[:]
		}
		padded := append(append([]byte(nil), msg...), make([]byte, (16-len(msg)%16)%16)...)
		for i := 0; i < len(padded); i += 16 {
			for j := range 16 {
				st[j] ^= padded[i+j]
			}
			tb.Encrypt(st[:], st[:])
		}
		return st[:]
	}
	mac := smMech(t, ck.DefaultProfile, "CKM_SM4_MAC")
	gen := smMech(t, ck.DefaultProfile, "CKM_SM4_MAC_GENERAL")
	for _, n := range []int{0, 1, 15, 16, 17, 32, 100} {
		msg := make([]byte, n)
		rand.Read(msg)
		s, _ := mac.Sign(k, nil)
		got, _ := s.Sign(msg)
		if want := ref(msg)[:8]; !bytes.Equal(got, want) {
			t.Fatalf("SM4_MAC(%d bytes) = %x, want %x", n, got, want)
		}
		s.Update(msg[:n/3])
		s.Update(msg[n/3:])
		if mp, _ := s.Final(); !bytes.Equal(mp, got) {
			t.Fatalf("multi-part SM4_MAC differs")
		}
		g, _ := gen.Sign(k, ck.MACGeneralParams(16))
		full, _ := g.Sign(msg)
		if !bytes.Equal(full, ref(msg)) {
			t.Fatalf("SM4_MAC_GENERAL(16) differs")
		}
		v, _ := gen.Verify(k, ck.MACGeneralParams(16))
		if err := v.Verify(msg, full); err != nil {
			t.Fatal(err)
		}
		full[3] ^= 1
		wantRV(t, v.Verify(msg, full), ck.CKR_SIGNATURE_INVALID)
	}
	_, err := gen.Sign(k, ck.MACGeneralParams(17))
	wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
}

// The parsed key (a cipher.Block) is shared: many goroutines encrypting
// with it at once must agree (run with -race to check for shared state).
func TestSM4KeyShared(t *testing.T) {
	key := make([]byte, 16)
	rand.Read(key)
	k := sm4TestKey(t, key)
	msg := make([]byte, 4096)
	rand.Read(msg)
	iv := make([]byte, 16)
	want := oneShot(t, sm4Op(t, "CKM_SM4_CBC", k, iv, true), msg)
	m := smMech(t, ck.DefaultProfile, "CKM_SM4_CBC")
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				c, err := m.Encrypt(k, iv)
				if err != nil {
					errs <- err
					return
				}
				got, err := c.OneShot(nil, msg)
				if err == nil && !bytes.Equal(got, want) {
					err = errBadShared
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

var errBadShared = errors.New("shared key gave a different ciphertext")
