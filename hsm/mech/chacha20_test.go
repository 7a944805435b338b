package mech

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// sealMessage runs one whole message through a MessageCipher the way the
// engine's C_EncryptMessage does.
func sealMessage(t testing.TB, c MessageCipher, p any, aad, pt []byte) ([]byte, error) {
	t.Helper()
	if err := c.Begin(p, aad); err != nil {
		return nil, err
	}
	return c.Finish(p, pt)
}

// TestWycheproofChaCha20Poly1305 runs the RFC 8439 and XChaCha vectors
// through C_Encrypt/C_Decrypt (tag appended) and through the message API
// (tag in the parameter).
func TestWycheproofChaCha20Poly1305(t *testing.T) {
	t.Parallel()
	m := regMech(t, ck.CKM_CHACHA20_POLY1305)
	for _, file := range []string{"chacha20_poly1305_test.json", "xchacha20_poly1305_test.json"} {
		f := wpLoad(t, file)
		n := 0
		for _, raw := range f.TestGroups {
			g := wpGroup[struct {
				IvSize, KeySize int
				Tests           []wpTest
			}](t, raw)
			for _, tc := range g.Tests {
				key := mustHex(t, tc.Key)
				if len(key) != chachaKeyLen {
					continue
				}
				k := secretKeyOf(t, ck.CKK_CHACHA20, key)
				nonce, aad := mustHex(t, tc.Iv), mustHex(t, tc.Aad)
				msg, ct, tag := mustHex(t, tc.Msg), mustHex(t, tc.Ct), mustHex(t, tc.Tag)
				p := &ck.ChaCha20Poly1305Params{Nonce: nonce, AAD: aad}
				if len(nonce) != 12 && len(nonce) != 24 {
					_, err := m.Encrypt(k, p)
					expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, fmt.Sprintf("%s #%d nonce of %d bytes", file, tc.TcID, len(nonce)))
					continue
				}
				n++
				dec, err := m.Decrypt(k, p)
				if err != nil {
					t.Fatalf("%s #%d: %v", file, tc.TcID, err)
				}
				pt, err := dec.OneShot(nil, append(bytes.Clone(ct), tag...))
				if err == nil && !bytes.Equal(pt, msg) {
					err = fmt.Errorf("plaintext %x", pt)
				}
				wpCheck(t, file, tc, err)

				md, err := m.MessageDecrypt(k, nil)
				if err != nil {
					t.Fatal(err)
				}
				pt, err = sealMessage(t, md, &ck.ChaCha20Poly1305MsgParams{Nonce: nonce, Tag: tag}, aad, ct)
				if err == nil && !bytes.Equal(pt, msg) {
					err = fmt.Errorf("message plaintext %x", pt)
				}
				wpCheck(t, file+" (message)", tc, err)

				if tc.Result == "valid" {
					enc, _ := m.Encrypt(k, p)
					got, err := enc.OneShot(nil, msg)
					if err != nil || !bytes.Equal(got, append(bytes.Clone(ct), tag...)) {
						t.Errorf("%s #%d: encrypt %x, %v", file, tc.TcID, got, err)
					}
					me, _ := m.MessageEncrypt(k, nil)
					mp := &ck.ChaCha20Poly1305MsgParams{Nonce: nonce}
					got, err = sealMessage(t, me, mp, aad, msg)
					if err != nil || !bytes.Equal(got, ct) || !bytes.Equal(mp.Tag, tag) {
						t.Errorf("%s #%d: message encrypt %x tag %x, %v", file, tc.TcID, got, mp.Tag, err)
					}
				}
			}
		}
		if n < 100 {
			t.Fatalf("%s: only %d vectors", file, n)
		}
	}
}

func TestChaCha20KeyGen(t *testing.T) {
	m := regMech(t, ck.CKM_CHACHA20_KEY_GEN)
	a, err := m.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get(ck.CKA_VALUE); len(v) != 32 {
		t.Fatalf("key of %d bytes", len(v))
	}
	_, err = m.GenerateKey(attr.Template{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)}})
	expectRV(t, err, ck.CKR_KEY_SIZE_RANGE, "16-byte ChaCha20 key")
	_, err = parseChaCha20(ck.CKO_SECRET_KEY, attr.Template{{Type: ck.CKA_VALUE, Value: make([]byte, 31)}})
	expectRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID, "31-byte ChaCha20 value")
}

// TestGCMMessageMatchesGCM: a message sealed through the message API is
// the classic CKM_AES_GCM ciphertext split into ciphertext and tag, for
// every tag length, and decrypts back; a changed tag is refused.
func TestGCMMessageMatchesGCM(t *testing.T) {
	k := secretKeyOf(t, ck.CKK_AES, bytes.Repeat([]byte{7}, 16))
	m := regMech(t, ck.CKM_AES_GCM)
	iv := bytes.Repeat([]byte{9}, 12)
	aad, pt := []byte("header"), []byte("a message of some length")
	for _, bits := range []ck.ULong{32, 64, 96, 104, 128} {
		enc, _ := m.Encrypt(k, ck.GCMParams{IV: iv, AAD: aad, TagBits: bits})
		want, _ := enc.OneShot(nil, pt)
		me, err := m.MessageEncrypt(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := &ck.GCMMessageParams{IV: iv, TagBits: bits}
		ct, err := sealMessage(t, me, p, aad, pt)
		if err != nil || !bytes.Equal(append(bytes.Clone(ct), p.Tag...), want) {
			t.Fatalf("%d-bit tag: %x %x, %v", bits, ct, p.Tag, err)
		}
		md, _ := m.MessageDecrypt(k, &ck.GCMMessageParams{})
		got, err := sealMessage(t, md, &ck.GCMMessageParams{IV: iv, TagBits: bits, Tag: p.Tag}, aad, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d-bit tag: decrypt %q, %v", bits, got, err)
		}
		bad := bytes.Clone(p.Tag)
		bad[0] ^= 1
		_, err = sealMessage(t, md, &ck.GCMMessageParams{IV: iv, TagBits: bits, Tag: bad}, aad, ct)
		expectRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, "changed tag")
	}
	me, _ := m.MessageEncrypt(k, nil)
	_, err := sealMessage(t, me, ck.GCMMessageParams{IV: iv, TagBits: 128}, aad, pt)
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "parameter by value (no way to return the tag)")
	_, err = sealMessage(t, me, &ck.GCMMessageParams{IV: iv, TagBits: 120 + 4}, aad, pt)
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "124-bit tag")
	_, err = m.MessageEncrypt(k, &ck.RSAPSSParams{})
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "init parameter of another mechanism")
}

// TestIVGenerator: generated IVs keep the fixed bits, never repeat within
// an operation, and the counter refuses to wrap.
func TestIVGenerator(t *testing.T) {
	k := secretKeyOf(t, ck.CKK_AES, bytes.Repeat([]byte{7}, 32))
	m := regMech(t, ck.CKM_AES_GCM)
	for _, c := range []struct {
		gen   ck.GeneratorFunction
		fixed ck.ULong
		n     int // messages before exhaustion, 0: not reached
	}{
		{ck.CKG_GENERATE, 0, 0},
		{ck.CKG_GENERATE_COUNTER, 36, 0},
		{ck.CKG_GENERATE_COUNTER, 92, 16},
		{ck.CKG_GENERATE_COUNTER_XOR, 90, 64},
		{ck.CKG_GENERATE_RANDOM, 0, 0},
		{ck.CKG_GENERATE_RANDOM, 20, 0},
	} {
		me, _ := m.MessageEncrypt(k, nil)
		base := bytes.Repeat([]byte{0xA5}, 12)
		seen := map[string]bool{}
		limit := 300
		for i := 0; i < limit; i++ {
			p := &ck.GCMMessageParams{IV: bytes.Clone(base), IVFixedBits: c.fixed, IVGenerator: c.gen, TagBits: 128}
			_, err := sealMessage(t, me, p, nil, []byte("x"))
			if c.n != 0 && i == c.n {
				expectRV(t, err, ck.CKR_KEY_EXHAUSTED, fmt.Sprintf("gen %d fixed %d message %d", c.gen, c.fixed, i))
				break
			}
			if err != nil {
				t.Fatalf("gen %d fixed %d message %d: %v", c.gen, c.fixed, i, err)
			}
			if seen[string(p.IV)] {
				t.Fatalf("gen %d fixed %d: IV %x repeated at message %d", c.gen, c.fixed, p.IV, i)
			}
			seen[string(p.IV)] = true
			// The fixed bits are the caller's.
			for b := 0; b < int(c.fixed); b++ {
				mask := byte(0x80 >> (b % 8))
				if p.IV[b/8]&mask != base[b/8]&mask {
					t.Fatalf("gen %d fixed %d: fixed bit %d changed: %x", c.gen, c.fixed, b, p.IV)
				}
			}
			if c.gen == ck.CKG_GENERATE_COUNTER && c.fixed == 36 && i == 1 {
				want := bytes.Clone(base)
				want[4] &^= 0x0f
				copy(want[5:], []byte{0, 0, 0, 0, 0, 0, 1})
				if !bytes.Equal(p.IV, want) {
					t.Fatalf("counter IV 1 = %x, want %x", p.IV, want)
				}
			}
		}
	}
	me, _ := m.MessageEncrypt(k, nil)
	for _, p := range []*ck.GCMMessageParams{
		{IV: make([]byte, 12), IVFixedBits: 96, IVGenerator: ck.CKG_GENERATE, TagBits: 128},
		{IV: make([]byte, 12), IVFixedBits: 40, IVGenerator: ck.CKG_GENERATE_RANDOM, TagBits: 128},
		{IV: make([]byte, 12), IVGenerator: 9, TagBits: 128},
	} {
		_, err := sealMessage(t, me, p, nil, nil)
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, fmt.Sprintf("generator %d, %d fixed bits", p.IVGenerator, p.IVFixedBits))
	}
	// Decryption ignores the generator and uses the IV as given.
	p := &ck.GCMMessageParams{IV: make([]byte, 12), IVGenerator: ck.CKG_GENERATE_RANDOM, TagBits: 128}
	ct, err := sealMessage(t, me, p, nil, []byte("msg"))
	if err != nil {
		t.Fatal(err)
	}
	md, _ := m.MessageDecrypt(k, nil)
	got, err := sealMessage(t, md, &ck.GCMMessageParams{IV: p.IV, IVGenerator: ck.CKG_GENERATE, Tag: p.Tag, TagBits: 128}, nil, ct)
	if err != nil || string(got) != "msg" {
		t.Fatalf("decrypt with generated IV: %q, %v", got, err)
	}
}
