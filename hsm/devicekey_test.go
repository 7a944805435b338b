package hsm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gohsm/gohsm/hsm/ck"
)

func startWithKey(t *testing.T, st Storage, key []byte) *Module {
	t.Helper()
	cfg := DefaultConfig(st)
	cfg.KDFIterations = 10
	cfg.DeviceKey = key
	m, err := New(cfg)
	must(t, err)
	must(t, m.Initialize())
	t.Cleanup(func() { m.Finalize() })
	return m
}

// deviceToken makes a token through an engine with key: a user PIN, a
// private AES key and a public data object with a value; it returns the
// AES key's handle and a block it encrypted.
func deviceToken(t *testing.T, st Storage, key []byte) (ck.ObjectHandle, []byte) {
	m := startWithKey(t, st, key)
	initToken(t, m)
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	k, err := m.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_TOKEN, Value: tb(true)}, {Type: ck.CKA_VALUE_LEN, Value: ul(32)}})
	must(t, err)
	_, err = m.CreateObject(s, dataTemplate("pub", true, false))
	must(t, err)
	must(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_ECB}, k))
	ct, _, err := m.Encrypt(s, make([]byte, 16), 16)
	must(t, err)
	must(t, m.Finalize())
	return k, ct
}

func TestDeviceKeySealsTokenRecords(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	st := NewMemoryStorage()
	k, ct := deviceToken(t, st, key)
	stores, _ := st.Stores()
	rec, _ := stores[0].LoadToken()
	if !TokenRecordSealed(rec) || !strings.HasPrefix(rec.SOKey.KDF, deviceKDFPrefix) || !strings.HasPrefix(rec.UserKey.KDF, deviceKDFPrefix) ||
		!bytes.HasPrefix(rec.PublicKey, devicePublicMagic) {
		t.Fatalf("record not sealed under the device key: %+v", rec)
	}

	// Without the key: the token is listed, nothing opens.
	m := startModule(t, st)
	info, err := m.GetTokenInfo(0)
	must(t, err)
	if strings.TrimRight(info.Label, " ") != "test token" {
		t.Fatalf("label %q", info.Label)
	}
	_, err = m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	if !strings.Contains(err.Error(), "sealed under a device key") {
		t.Fatalf("unclear error: %v", err)
	}
	wantRV(t, m.InitToken(0, []byte(soPIN), "again"), ck.CKR_DEVICE_ERROR)
	must(t, m.Finalize())

	// With another key: refused, named.
	m = startWithKey(t, st, bytes.Repeat([]byte{8}, 32))
	_, err = m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	if !strings.Contains(err.Error(), "another device") {
		t.Fatalf("unclear error: %v", err)
	}
	must(t, m.Finalize())

	// With the key: wrong PINs count, and the sealed values are kept as
	// they are (a counter update rewrites no ciphertext); the key works.
	m = startWithKey(t, st, key)
	s := openRW(t, m, 0)
	wantRV(t, m.Login(s, ck.CKU_USER, []byte("wrong-pin")), ck.CKR_PIN_INCORRECT)
	after, _ := stores[0].LoadToken()
	if after.UserFailures != 1 || !bytes.Equal(after.UserKey.Sealed, rec.UserKey.Sealed) || !bytes.Equal(after.PublicKey, rec.PublicKey) {
		t.Fatalf("counter update: failures %d, sealed values changed %v", after.UserFailures, !bytes.Equal(after.UserKey.Sealed, rec.UserKey.Sealed))
	}
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	must(t, m.EncryptInit(s, ck.Mechanism{Type: ck.CKM_AES_ECB}, k))
	got, _, err := m.Encrypt(s, make([]byte, 16), 16)
	must(t, err)
	if !bytes.Equal(got, ct) {
		t.Fatal("the key encrypts differently")
	}
	// C_SetPIN reseals; the new PIN works after a restart.
	must(t, m.SetPIN(s, []byte(userPIN), []byte("new-pin-1")))
	must(t, m.Finalize())
	rec2, _ := stores[0].LoadToken()
	if !strings.HasPrefix(rec2.UserKey.KDF, deviceKDFPrefix) || bytes.Equal(rec2.UserKey.Sealed, rec.UserKey.Sealed) {
		t.Fatal("C_SetPIN did not reseal the user's wrapped key")
	}
	m = startWithKey(t, st, key)
	s = openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte("new-pin-1")))
}

func TestDeviceKeyRefusesUnadoptedToken(t *testing.T) {
	st := NewMemoryStorage()
	m := startModule(t, st)
	initToken(t, m)
	must(t, m.Finalize())
	key := bytes.Repeat([]byte{9}, 32)
	m = startWithKey(t, st, key)
	_, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	if !strings.Contains(err.Error(), "adopt") {
		t.Fatalf("unclear error: %v", err)
	}
	must(t, m.Finalize())
	stores, _ := st.Stores()
	_, err = stores[0].UpdateToken(func(r *TokenRecord) error { return AdoptTokenRecord(r, key) })
	must(t, err)
	rec, _ := stores[0].LoadToken()
	if err := AdoptTokenRecord(rec, bytes.Repeat([]byte{1}, 32)); err == nil {
		t.Fatal("a token sealed under one key was adopted under another")
	}
	m = startWithKey(t, st, key)
	s := openRW(t, m, 0)
	must(t, m.Login(s, ck.CKU_USER, []byte(userPIN)))
	// A plain engine keeps working on a plain store: nothing changes there.
	st2 := NewMemoryStorage()
	m2 := startModule(t, st2)
	initToken(t, m2)
	s2 := openRW(t, m2, 0)
	must(t, m2.Login(s2, ck.CKU_USER, []byte(userPIN)))
}

func TestDeviceKeyLength(t *testing.T) {
	cfg := DefaultConfig(NewMemoryStorage())
	cfg.DeviceKey = make([]byte, 16)
	if _, err := New(cfg); err == nil {
		t.Fatal("a 16-byte device key was accepted")
	}
}
