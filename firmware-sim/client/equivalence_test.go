package client

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// recorder writes down what a script saw, one line per step.
type recorder struct{ lines []string }

func (r *recorder) add(step string, vals ...any) {
	var b strings.Builder
	b.WriteString(step)
	for _, v := range vals {
		switch x := v.(type) {
		case error:
			fmt.Fprintf(&b, " rv=%v", hsm.ToRV(x))
		case nil:
			b.WriteString(" rv=CKR_OK")
		default:
			fmt.Fprintf(&b, " %v", x)
		}
	}
	r.lines = append(r.lines, b.String())
}

// random stands for bytes that differ from run to run.
type random []byte

func (r random) String() string {
	return fmt.Sprintf("<%d random bytes, zero=%v>", len(r), bytes.Count(r, []byte{0}) == len(r))
}

var (
	tTrue  = attr.Bool(true)
	tFalse = attr.Bool(false)
)

func aesTemplate(label string, value []byte, extra ...ck.Attribute) []ck.Attribute {
	return append([]ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_TOKEN, Value: tTrue},
		{Type: ck.CKA_LABEL, Value: []byte(label)},
		{Type: ck.CKA_VALUE, Value: value},
	}, extra...)
}

// script runs a representative slice of the Backend surface: info,
// sessions, login, objects, size queries, CKR_BUFFER_TOO_SMALL, single- and
// multi-part operations, message-based encryption with the IV and tag
// written back, C_WrapKey with a token-made GCM nonce written back, a KEM,
// and error codes. Everything random is recorded by length only.
func script(t *testing.T, be hsm.Backend, r *recorder) {
	info, err := be.GetInfo()
	r.add("GetInfo", info, err)
	slots, err := be.GetSlotList(false)
	r.add("GetSlotList", slots, err)
	ti, err := be.GetTokenInfo(0)
	ti.UTCTime, ti.SerialNumber = "", ""
	r.add("GetTokenInfo", ti, err)
	_, err = be.GetTokenInfo(99)
	r.add("GetTokenInfo(99)", err)
	ml, err := be.GetMechanismList(0)
	r.add("GetMechanismList", len(ml), err)
	mi, err := be.GetMechanismInfo(0, ck.CKM_AES_GCM)
	r.add("GetMechanismInfo", mi, err)
	_, err = be.GetMechanismInfo(0, 0x7FFFFFF0)
	r.add("GetMechanismInfo(bad)", err)

	s, err := be.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	r.add("OpenSession", err)
	_, err = be.OpenSession(0, ck.CKF_RW_SESSION)
	r.add("OpenSession(no serial)", err)
	si, err := be.GetSessionInfo(s)
	r.add("GetSessionInfo", si, err)
	r.add("Login(wrong)", be.Login(s, ck.CKU_USER, []byte("wrong-pin")))
	r.add("Login", be.Login(s, ck.CKU_USER, []byte(userPIN)))
	r.add("Login(again)", be.Login(s, ck.CKU_USER, []byte(userPIN)))
	si, err = be.GetSessionInfo(s)
	r.add("GetSessionInfo", si, err)

	key := bytes.Repeat([]byte{0x42}, 32)
	aes, err := be.CreateObject(s, aesTemplate("aes", key,
		ck.Attribute{Type: ck.CKA_ENCRYPT, Value: tTrue}, ck.Attribute{Type: ck.CKA_DECRYPT, Value: tTrue},
		ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tTrue}))
	r.add("CreateObject(aes)", aes, err)
	_, err = be.CreateObject(s, []ck.Attribute{{Type: ck.CKA_CLASS, Value: []byte{1}}})
	r.add("CreateObject(bad)", err)
	res, err := be.GetAttributeValue(s, aes, []ck.AttributeRequest{{Type: ck.CKA_VALUE_LEN, Cap: -1},
		{Type: ck.CKA_LABEL, Cap: -1}, {Type: ck.CKA_LABEL, Cap: 2}, {Type: ck.CKA_LABEL, Cap: 3},
		{Type: ck.CKA_VALUE, Cap: 32}, {Type: 0x7FFF0000, Cap: 8}})
	r.add("GetAttributeValue", res, err)
	size, err := be.GetObjectSize(s, aes)
	r.add("GetObjectSize", size > 0, err)
	r.add("SetAttributeValue", be.SetAttributeValue(s, aes, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("aes2")}}))

	// Single-part AES-GCM: size query, too small, exact.
	iv := bytes.Repeat([]byte{7}, 12)
	gcm := func() ck.Mechanism {
		return ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: iv, IVBits: 96, AAD: []byte("aad"), TagBits: 128}}
	}
	pt := []byte("the quick brown fox jumps over the lazy dog")
	r.add("EncryptInit(GCM)", be.EncryptInit(s, gcm(), aes))
	out, need, err := be.Encrypt(s, pt, -1)
	r.add("Encrypt(size)", out, need, err)
	out, need, err = be.Encrypt(s, pt, 5)
	r.add("Encrypt(small)", out, need, err)
	ct, need, err := be.Encrypt(s, pt, need)
	r.add("Encrypt", ct, need, err)
	_, _, err = be.Encrypt(s, pt, 100)
	r.add("Encrypt(ended)", err)
	r.add("DecryptInit(GCM)", be.DecryptInit(s, gcm(), aes))
	out, need, err = be.Decrypt(s, ct, len(ct))
	r.add("Decrypt", string(out), need, err)
	bad := append([]byte(nil), ct...)
	bad[0] ^= 1
	r.add("DecryptInit(GCM)", be.DecryptInit(s, gcm(), aes))
	_, _, err = be.Decrypt(s, bad, len(bad))
	r.add("Decrypt(tampered)", err)

	// Multi-part AES-CBC-PAD.
	cbc := ck.Mechanism{Type: ck.CKM_AES_CBC_PAD, Param: bytes.Repeat([]byte{9}, 16)}
	r.add("EncryptInit(CBC_PAD)", be.EncryptInit(s, cbc, aes))
	o1, n1, err := be.EncryptUpdate(s, pt[:20], 64)
	r.add("EncryptUpdate", o1, n1, err)
	o2, n2, err := be.EncryptUpdate(s, pt[20:], 64)
	r.add("EncryptUpdate", o2, n2, err)
	o3, n3, err := be.EncryptFinal(s, -1)
	r.add("EncryptFinal(size)", o3, n3, err)
	o3, n3, err = be.EncryptFinal(s, 16)
	r.add("EncryptFinal", o3, n3, err)

	// Multi-part digest.
	r.add("DigestInit", be.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	r.add("DigestUpdate", be.DigestUpdate(s, pt))
	d, n, err := be.DigestFinal(s, -1)
	r.add("DigestFinal(size)", d, n, err)
	d, n, err = be.DigestFinal(s, 10)
	r.add("DigestFinal(small)", d, n, err)
	d, n, err = be.DigestFinal(s, 32)
	r.add("DigestFinal", d, n, err)
	r.add("DigestUpdate(ended)", be.DigestUpdate(s, pt))

	// HMAC.
	hk, err := be.CreateObject(s, []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))},
		{Type: ck.CKA_VALUE, Value: bytes.Repeat([]byte{1}, 32)},
		{Type: ck.CKA_SIGN, Value: tTrue}, {Type: ck.CKA_VERIFY, Value: tTrue}})
	r.add("CreateObject(hmac)", hk, err)
	r.add("SignInit(HMAC)", be.SignInit(s, ck.Mechanism{Type: ck.CKM_SHA256_HMAC}, hk))
	mac, n, err := be.Sign(s, pt, 32)
	r.add("Sign(HMAC)", mac, n, err)
	r.add("VerifyInit(HMAC)", be.VerifyInit(s, ck.Mechanism{Type: ck.CKM_SHA256_HMAC}, hk))
	r.add("Verify(HMAC)", be.Verify(s, pt, mac))
	r.add("VerifyInit(HMAC)", be.VerifyInit(s, ck.Mechanism{Type: ck.CKM_SHA256_HMAC}, hk))
	r.add("Verify(HMAC,bad)", be.Verify(s, pt[1:], mac))
	r.add("SignInit(HMAC_GENERAL)", be.SignInit(s, ck.Mechanism{Type: ck.CKM_SHA256_HMAC_GENERAL, Param: ck.MACGeneralParams(16)}, hk))
	mac, n, err = be.Sign(s, pt, 32)
	r.add("Sign(HMAC_GENERAL)", mac, n, err)

	// Find.
	r.add("FindObjectsInit", be.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))}}))
	hs, err := be.FindObjects(s, 1)
	r.add("FindObjects", hs, err)
	hs, err = be.FindObjects(s, 10)
	r.add("FindObjects", hs, err)
	r.add("FindObjectsFinal", be.FindObjectsFinal(s))
	_, err = be.FindObjects(s, 10)
	r.add("FindObjects(ended)", err)

	// EC key pair: random key, random signature; verification is the check.
	pub, priv, err := be.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256OID}, {Type: ck.CKA_VERIFY, Value: tTrue}},
		[]ck.Attribute{{Type: ck.CKA_SIGN, Value: tTrue}})
	r.add("GenerateKeyPair(EC)", pub, priv, err)
	r.add("SignInit(ECDSA)", be.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, priv))
	sig, n, err := be.Sign(s, make([]byte, 32), -1)
	r.add("Sign(ECDSA,size)", sig, n, err)
	sig, n, err = be.Sign(s, make([]byte, 32), n)
	r.add("Sign(ECDSA)", random(sig), n, err)
	r.add("VerifyInit(ECDSA)", be.VerifyInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, pub))
	r.add("Verify(ECDSA)", be.Verify(s, make([]byte, 32), sig))

	// Message-based GCM: the token makes the IV; IV and tag come back in
	// the parameter.
	r.add("MessageEncryptInit", be.MessageEncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMMessageParams{}}, aes))
	mp := &ck.GCMMessageParams{IV: make([]byte, 12), IVGenerator: ck.CKG_GENERATE_RANDOM, Tag: make([]byte, 16), TagBits: 128}
	mct, n, err := be.EncryptMessage(s, mp, []byte("hdr"), pt, len(pt))
	r.add("EncryptMessage", random(mct), n, random(mp.IV), random(mp.Tag), err)
	r.add("MessageEncryptFinal", be.MessageEncryptFinal(s))
	r.add("MessageDecryptInit", be.MessageDecryptInit(s, ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMMessageParams{}}, aes))
	dp := &ck.GCMMessageParams{IV: mp.IV, Tag: mp.Tag, TagBits: 128}
	mpt, n, err := be.DecryptMessage(s, dp, []byte("hdr"), mct, len(mct))
	r.add("DecryptMessage", string(mpt), n, err)
	r.add("MessageDecryptFinal", be.MessageDecryptFinal(s))

	// C_WrapKey with GCM: a zeroed IV, the token's nonce written back.
	k2, err := be.CreateObject(s, aesTemplate("k2", bytes.Repeat([]byte{0x17}, 16),
		ck.Attribute{Type: ck.CKA_EXTRACTABLE, Value: tTrue}, ck.Attribute{Type: ck.CKA_SENSITIVE, Value: tFalse}))
	r.add("CreateObject(k2)", k2, err)
	wrapper, err := be.CreateObject(s, aesTemplate("wrapper", bytes.Repeat([]byte{0x33}, 32),
		ck.Attribute{Type: ck.CKA_WRAP, Value: tTrue}, ck.Attribute{Type: ck.CKA_UNWRAP, Value: tTrue}))
	r.add("CreateObject(wrapper)", wrapper, err)
	wp := &ck.GCMParams{IV: make([]byte, 12), IVBits: 96, TagBits: 128}
	blob, n, err := be.WrapKey(s, ck.Mechanism{Type: ck.CKM_AES_GCM, Param: wp}, wrapper, k2, -1)
	r.add("WrapKey(size)", blob, n, random(wp.IV), err)
	blob, n, err = be.WrapKey(s, ck.Mechanism{Type: ck.CKM_AES_GCM, Param: wp}, wrapper, k2, n)
	r.add("WrapKey", random(blob), n, random(wp.IV), err)
	uk, err := be.UnwrapKey(s, ck.Mechanism{Type: ck.CKM_AES_GCM, Param: &ck.GCMParams{IV: wp.IV, IVBits: 96, TagBits: 128}},
		wrapper, blob, []ck.Attribute{{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))}, {Type: ck.CKA_SENSITIVE, Value: tFalse},
			{Type: ck.CKA_EXTRACTABLE, Value: tTrue}})
	r.add("UnwrapKey", uk, err)
	res, err = be.GetAttributeValue(s, uk, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 16}})
	r.add("GetAttributeValue(unwrapped)", res, err)

	// ML-KEM: the ciphertext written into the caller's buffer.
	kpub, kpriv, err := be.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_PARAMETER_SET, Value: attr.ULong(ck.ULong(ck.CKP_ML_KEM_768))}, {Type: ck.CKA_ENCAPSULATE, Value: tTrue}},
		[]ck.Attribute{{Type: ck.CKA_DECAPSULATE, Value: tTrue}})
	r.add("GenerateKeyPair(ML-KEM)", kpub, kpriv, err)
	kt := []ck.Attribute{{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_GENERIC_SECRET))},
		{Type: ck.CKA_SENSITIVE, Value: tFalse}, {Type: ck.CKA_EXTRACTABLE, Value: tTrue}}
	n, h, err := be.EncapsulateKey(s, ck.Mechanism{Type: ck.CKM_ML_KEM}, kpub, kt, nil)
	r.add("EncapsulateKey(size)", n, h, err)
	kct := make([]byte, n)
	n, h, err = be.EncapsulateKey(s, ck.Mechanism{Type: ck.CKM_ML_KEM}, kpub, kt, kct)
	r.add("EncapsulateKey", n, h, random(kct), err)
	h2, err := be.DecapsulateKey(s, ck.Mechanism{Type: ck.CKM_ML_KEM}, kpriv, kt, kct)
	r.add("DecapsulateKey", h2, err)
	v1, _ := be.GetAttributeValue(s, h, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
	v2, _ := be.GetAttributeValue(s, h2, []ck.AttributeRequest{{Type: ck.CKA_VALUE, Cap: 64}})
	r.add("KEM keys equal", len(v1) == 1 && len(v2) == 1 && bytes.Equal(v1[0].Value, v2[0].Value) && len(v1[0].Value) == 32)

	sizeScript(be, s, aes, r)

	rnd, err := be.GenerateRandom(s, 33)
	r.add("GenerateRandom", random(rnd), err)
	r.add("DestroyObject", be.DestroyObject(s, k2))
	r.add("DestroyObject(again)", be.DestroyObject(s, k2))
	r.add("SessionCancel", be.SessionCancel(s, ck.CKF_ENCRYPT))
	r.add("Logout", be.Logout(s))
	r.add("Logout(again)", be.Logout(s))
	r.add("CloseSession", be.CloseSession(s))
	r.add("CloseSession(again)", be.CloseSession(s))
	_, err = be.GetSessionInfo(s)
	r.add("GetSessionInfo(closed)", err)
}

// sizeScript asks for sizes as applications do, and then breaks the rules
// around them: the client answers some of these queries itself (sizes.go),
// and every answer and error must be the engine's.
func sizeScript(be hsm.Backend, s ck.SessionHandle, aes ck.ObjectHandle, r *recorder) {
	pub, priv, err := be.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256OID}, {Type: ck.CKA_VERIFY, Value: tTrue}},
		[]ck.Attribute{{Type: ck.CKA_SIGN, Value: tTrue}})
	r.add("GenerateKeyPair(EC)", err)
	ecdsa := ck.Mechanism{Type: ck.CKM_ECDSA}
	digest := make([]byte, 32)
	for i := range 3 { // the first asks the appliance; the others need not
		r.add("SignInit", be.SignInit(s, ecdsa, priv))
		_, n, err := be.Sign(s, digest, -1)
		r.add("Sign(size)", n, err)
		_, n, err = be.Sign(s, digest, 10)
		r.add("Sign(short)", n, err)
		sig, n, err := be.Sign(s, digest, n)
		r.add("Sign", i, n, random(sig), err)
		r.add("VerifyInit", be.VerifyInit(s, ecdsa, pub))
		r.add("Verify", be.Verify(s, digest, sig))
	}
	// A size query claims the operation for single-part use; a multi-part
	// call then ends it.
	r.add("SignInit", be.SignInit(s, ecdsa, priv))
	_, n, err := be.Sign(s, digest, -1)
	r.add("Sign(size)", n, err)
	r.add("SignUpdate(after a size query)", be.SignUpdate(s, digest))
	_, _, err = be.Sign(s, digest, 64)
	r.add("Sign(ended)", err)
	_, n, err = be.Sign(s, digest, -1)
	r.add("Sign(size, ended)", n, err)
	// No operation: the size query is an error.
	r.add("SignInit(wrong key)", be.SignInit(s, ecdsa, pub))
	_, n, err = be.Sign(s, digest, -1)
	r.add("Sign(size, none)", n, err)
	// A second C_SignInit while one is live.
	r.add("SignInit", be.SignInit(s, ecdsa, priv))
	_, n, err = be.Sign(s, digest, -1)
	r.add("Sign(size)", n, err)
	r.add("SignInit(active)", be.SignInit(s, ecdsa, priv))
	_, n, err = be.Sign(s, digest, -1)
	r.add("Sign(size, after)", n, err)
	r.add("SessionCancel(sign)", be.SessionCancel(s, ck.CKF_SIGN))
	_, n, err = be.Sign(s, digest, -1)
	r.add("Sign(size, cancelled)", n, err)
	// Encryption: the answer depends on the input's length.
	cbc := ck.Mechanism{Type: ck.CKM_AES_CBC_PAD, Param: make([]byte, 16)}
	for _, l := range []int{16, 16, 17, 16, 0} {
		r.add("EncryptInit(CBC-PAD)", be.EncryptInit(s, cbc, aes))
		_, n, err := be.Encrypt(s, make([]byte, l), -1)
		r.add("Encrypt(size)", l, n, err)
		ct, n, err := be.Encrypt(s, make([]byte, l), n)
		r.add("Encrypt", l, n, random(ct), err)
	}
	r.add("DecryptInit(CBC-PAD)", be.DecryptInit(s, cbc, aes))
	_, n, err = be.Decrypt(s, make([]byte, 32), -1)
	r.add("Decrypt(size)", n, err)
	r.add("DecryptUpdate(after a size query)", func() error { _, _, err := be.DecryptUpdate(s, make([]byte, 16), 64); return err }())
}

// localEngine is an engine in this process on its own store.
func localEngine(t *testing.T, dir string) hsm.Backend { return localEngineB(t, dir) }

func localEngineB(t testing.TB, dir string) hsm.Backend {
	d, err := tokens.Open(dir)
	must(t, err)
	cfg := hsm.DefaultConfig(d)
	kdfCheap(&cfg)
	m, err := hsm.New(cfg)
	must(t, err)
	must(t, m.Initialize())
	t.Cleanup(func() { m.Finalize(); d.Close() })
	return m
}

// The engine behaves the same through the client as in process, call for
// call, over a pipe and over TLS.
func TestEquivalence(t *testing.T) {
	for _, transport := range []string{"pipe", "tls"} {
		t.Run(transport, func(t *testing.T) {
			var local, remote recorder
			script(t, localEngine(t, newStore(t, "alpha")), &local)
			a := newAppliance(t, newStore(t, "alpha"), identities{"admin": {"*"}}, nil)
			var c *Client
			if transport == "pipe" {
				c = a.pipeClient("admin")
			} else {
				a.listen()
				c = a.tlsClient("admin")
			}
			script(t, c, &remote)
			if len(local.lines) != len(remote.lines) {
				t.Fatalf("%d steps locally, %d remotely", len(local.lines), len(remote.lines))
			}
			for i := range local.lines {
				if local.lines[i] != remote.lines[i] {
					t.Errorf("step %d:\n local: %s\nremote: %s", i, local.lines[i], remote.lines[i])
				}
			}
			if testing.Verbose() {
				for _, l := range remote.lines {
					t.Log(l)
				}
			}
		})
	}
}
