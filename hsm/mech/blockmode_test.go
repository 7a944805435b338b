package mech

import (
	"bytes"
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

// multiPart runs src through c in random chunks, checking that UpdateLen
// and FinalLen predict exactly what Update and Final emit (for ciphers
// whose lengths are exact) or bound it.
func multiPart(t testing.TB, c Cipher, src []byte, rng *mrand.Rand, exact bool) ([]byte, error) {
	t.Helper()
	var out []byte
	for len(src) > 0 {
		n := 1 + rng.IntN(min(len(src), 40))
		want := c.UpdateLen(n)
		before := len(out)
		var err error
		out, err = c.Update(out, src[:n])
		if err != nil {
			return out, err
		}
		if got := len(out) - before; got != want {
			t.Fatalf("Update emitted %d bytes, UpdateLen said %d", got, want)
		}
		src = src[n:]
	}
	want := c.FinalLen()
	before := len(out)
	out, err := c.Final(out)
	if err != nil {
		return out, err
	}
	if got := len(out) - before; (exact && got != want) || got > want {
		t.Fatalf("Final emitted %d bytes, FinalLen said %d", got, want)
	}
	return out, nil
}

// cipherCheck encrypts and decrypts data through mechanism m both ways,
// asserting multi-part == one-shot, OneShotLen bounds, OneShot repeatable
// and independent of an operation in progress, and the round trip.
func cipherCheck(t *testing.T, m ck.MechanismType, k *Key, param any, data []byte, deterministic bool) []byte {
	t.Helper()
	mm := regMech(t, m)
	rng := mrand.New(mrand.NewPCG(uint64(len(data)), 7))
	exact := m != ck.CKM_AES_GCM
	enc, err := mm.Encrypt(k, param)
	if err != nil {
		t.Fatalf("%v encrypt init: %v", m, err)
	}
	// Start a multi-part operation, then interleave a one-shot.
	half := len(data) / 2
	prefix, err := enc.Update(nil, data[:half])
	if err != nil {
		t.Fatalf("%v update: %v", m, err)
	}
	one, err := enc.OneShot([]byte("hdr"), data)
	if err != nil {
		t.Fatalf("%v one-shot: %v", m, err)
	}
	if !bytes.HasPrefix(one, []byte("hdr")) {
		t.Fatalf("%v: OneShot did not append to dst", m)
	}
	one = one[3:]
	if len(one) > enc.OneShotLen(len(data)) {
		t.Fatalf("%v: one-shot %d bytes > OneShotLen %d", m, len(one), enc.OneShotLen(len(data)))
	}
	again, err := enc.OneShot(nil, data)
	if err != nil || (deterministic && !bytes.Equal(again, one)) {
		t.Fatalf("%v: OneShot not repeatable: %v", m, err)
	}
	rest, err := multiPart(t, enc, data[half:], rng, exact)
	if err != nil {
		t.Fatalf("%v multi-part: %v", m, err)
	}
	multi := append(prefix, rest...)
	if deterministic && !bytes.Equal(multi, one) {
		t.Fatalf("%v: multi-part %x != one-shot %x", m, multi, one)
	}
	for _, ct := range [][]byte{one, multi} {
		dec, err := mm.Decrypt(k, param)
		if err != nil {
			t.Fatalf("%v decrypt init: %v", m, err)
		}
		pt, err := dec.OneShot(nil, ct)
		if err != nil || !bytes.Equal(pt, data) {
			t.Fatalf("%v: one-shot decrypt %x, %v; want %x", m, pt, err, data)
		}
		if len(pt) > dec.OneShotLen(len(ct)) {
			t.Fatalf("%v: decrypt %d bytes > OneShotLen %d", m, len(pt), dec.OneShotLen(len(ct)))
		}
		pt, err = multiPart(t, dec, ct, rng, exact)
		if err != nil || !bytes.Equal(pt, data) {
			t.Fatalf("%v: multi-part decrypt %x, %v; want %x", m, pt, err, data)
		}
	}
	return one
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestBlockModesRoundTrip(t *testing.T) {
	aes256 := secretKeyOf(t, ck.CKK_AES, randBytes(32))
	des3k := secretKeyOf(t, ck.CKK_DES3, randBytes(24))
	ctr := ck.CTRParams{CounterBits: 32}
	copy(ctr.CB[:], randBytes(12))
	gcm := ck.GCMParams{IV: randBytes(12), AAD: []byte("hdr"), TagBits: 128}
	cases := []struct {
		m      ck.MechanismType
		k      *Key
		param  any
		blocks bool // input must be whole blocks
		bs     int
	}{
		{ck.CKM_AES_ECB, aes256, nil, true, 16},
		{ck.CKM_AES_CBC, aes256, randBytes(16), true, 16},
		{ck.CKM_AES_CBC_PAD, aes256, randBytes(16), false, 16},
		{ck.CKM_AES_CTR, aes256, ctr, false, 16},
		{ck.CKM_AES_CTR, aes256, &ctr, false, 16},
		{ck.CKM_AES_GCM, aes256, gcm, false, 16},
		{ck.CKM_AES_GCM, aes256, &ck.GCMParams{IV: randBytes(1), TagBits: 32}, false, 16},
		{ck.CKM_AES_GCM, aes256, ck.GCMParams{IV: randBytes(60), AAD: randBytes(5), TagBits: 96}, false, 16},
		{ck.CKM_DES3_ECB, des3k, []byte{}, true, 8},
		{ck.CKM_DES3_CBC, des3k, randBytes(8), true, 8},
		{ck.CKM_DES3_CBC_PAD, des3k, randBytes(8), false, 8},
	}
	for _, c := range cases {
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 160} {
			if c.blocks && n%c.bs != 0 {
				continue
			}
			ct := cipherCheck(t, c.m, c.k, c.param, randBytes(n), true)
			if c.m == ck.CKM_AES_CBC_PAD || c.m == ck.CKM_DES3_CBC_PAD {
				if want := n + c.bs - n%c.bs; len(ct) != want {
					t.Fatalf("%v: %d bytes padded to %d, want %d", c.m, n, len(ct), want)
				}
			}
		}
	}
}

func TestBlockModeErrors(t *testing.T) {
	k := secretKeyOf(t, ck.CKK_AES, randBytes(16))
	iv := randBytes(16)
	cbc := regMech(t, ck.CKM_AES_CBC)
	pad := regMech(t, ck.CKM_AES_CBC_PAD)

	enc, _ := cbc.Encrypt(k, iv)
	_, err := enc.OneShot(nil, make([]byte, 17))
	expectRV(t, err, ck.CKR_DATA_LEN_RANGE, "CBC one-shot partial block")
	if _, err := enc.Update(nil, make([]byte, 20)); err != nil {
		t.Fatal(err)
	}
	_, err = enc.Final(nil)
	expectRV(t, err, ck.CKR_DATA_LEN_RANGE, "CBC final partial block")
	dec, _ := cbc.Decrypt(k, iv)
	_, err = dec.OneShot(nil, make([]byte, 15))
	expectRV(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "CBC decrypt partial block")

	_, err = cbc.Encrypt(k, randBytes(8))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "short IV")
	_, err = cbc.Encrypt(k, nil)
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "no IV")
	_, err = regMech(t, ck.CKM_AES_ECB).Encrypt(k, iv)
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "ECB with IV")

	// Bad padding: a ciphertext whose last block decrypts to junk.
	pe, _ := pad.Encrypt(k, iv)
	ct, _ := pe.OneShot(nil, []byte("sixteen byte msg"))
	ct[len(ct)-1] ^= 1
	pd, _ := pad.Decrypt(k, iv)
	out, err := pd.OneShot([]byte("x"), ct)
	expectRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, "bad padding one-shot")
	if string(out) != "x" {
		t.Fatalf("failed OneShot changed dst: %q", out)
	}
	pd, _ = pad.Decrypt(k, iv)
	_, err = multiPart(t, pd, ct, mrand.New(mrand.NewPCG(1, 2)), true)
	expectRV(t, err, ck.CKR_ENCRYPTED_DATA_INVALID, "bad padding multi-part")
	pd, _ = pad.Decrypt(k, iv)
	_, err = pd.OneShot(nil, nil)
	expectRV(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "empty CBC_PAD ciphertext")
	_, err = pd.OneShot(nil, ct[:20])
	expectRV(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "partial CBC_PAD ciphertext")

	// pkcs7Pad itself, exhaustively over the pad byte.
	for p := 0; p < 256; p++ {
		blk := bytes.Repeat([]byte{byte(p)}, 16)
		got, ok := pkcs7Pad(blk)
		if ok != (p >= 1 && p <= 16) || (ok && got != p) {
			t.Fatalf("pad byte %d: %d %v", p, got, ok)
		}
	}
	blk := bytes.Repeat([]byte{4}, 16)
	blk[12] = 5
	if _, ok := pkcs7Pad(blk); ok {
		t.Fatal("inconsistent padding accepted")
	}
}

func TestCTRCounterSpace(t *testing.T) {
	k := secretKeyOf(t, ck.CKK_AES, randBytes(16))
	m := regMech(t, ck.CKM_AES_CTR)
	for _, bad := range []ck.ULong{0, 129} {
		_, err := m.Encrypt(k, ck.CTRParams{CounterBits: bad})
		expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "counter bits")
	}
	_, err := m.Encrypt(k, []byte("not ctr params"))
	expectRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID, "wrong param type")

	// 8 counter bits starting at 0xFE: two blocks left.
	p := ck.CTRParams{CounterBits: 8}
	p.CB[15] = 0xFE
	enc, _ := m.Encrypt(k, p)
	if _, err := enc.OneShot(nil, make([]byte, 32)); err != nil {
		t.Fatalf("32 bytes in two blocks: %v", err)
	}
	_, err = enc.OneShot(nil, make([]byte, 33))
	expectRV(t, err, ck.CKR_DATA_LEN_RANGE, "third block")
	if _, err := enc.Update(nil, make([]byte, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Update(nil, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	_, err = enc.Update(nil, make([]byte, 1))
	expectRV(t, err, ck.CKR_DATA_LEN_RANGE, "multi-part past counter space")
	dec, _ := m.Decrypt(k, p)
	_, err = dec.OneShot(nil, make([]byte, 40))
	expectRV(t, err, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "decrypt past counter space")

	// The bits above the counter field do not count: 1 counter bit set
	// leaves one block whatever the nonce bytes are.
	p = ck.CTRParams{CounterBits: 1}
	copy(p.CB[:], bytes.Repeat([]byte{0xFF}, 16))
	enc, _ = m.Encrypt(k, p)
	if _, err := enc.OneShot(nil, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	_, err = enc.OneShot(nil, make([]byte, 17))
	expectRV(t, err, ck.CKR_DATA_LEN_RANGE, "1-bit counter")

	// Within the space, results equal a plain 128-bit counter (no carry).
	p = ck.CTRParams{CounterBits: 16}
	p.CB[14], p.CB[15] = 0x00, 0xF0
	enc, _ = m.Encrypt(k, p)
	p128 := p
	p128.CounterBits = 128
	enc128, _ := m.Encrypt(k, p128)
	a, _ := enc.OneShot(nil, make([]byte, 64*16))
	b, _ := enc128.OneShot(nil, make([]byte, 64*16))
	if !bytes.Equal(a, b) {
		t.Fatal("16-bit counter differs from full-width counter within its space")
	}
}
