package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Token keys are 256-bit AES keys. A PIN never unlocks data directly: it
// derives (PBKDF2-SHA256) a key-encryption key that unwraps the token key,
// so C_SetPIN rewraps 32 bytes and nothing else.

const tokenKeyLen = 32

func newKey() []byte {
	k := make([]byte, tokenKeyLen)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return k
}

func gcmFor(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // key length is ours
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

// wrapKey seals key under a KEK derived from pin.
func wrapKey(key, pin []byte, iterations int) (WrappedKey, error) {
	salt := make([]byte, 16)
	nonce := make([]byte, 12)
	rand.Read(salt)
	rand.Read(nonce)
	kek, err := pbkdf2.Key(sha256.New, string(pin), salt, iterations, tokenKeyLen)
	if err != nil {
		return WrappedKey{}, fmt.Errorf("pin kdf: %w", ck.CKR_GENERAL_ERROR)
	}
	defer zero(kek)
	return WrappedKey{
		KDF: "pbkdf2-sha256", Salt: salt, Iterations: iterations, Nonce: nonce,
		Sealed: gcmFor(kek).Seal(nil, nonce, key, []byte("gohsm token key")),
	}, nil
}

// unwrapKey returns the token key if pin is right. A wrong PIN fails GCM
// authentication, so the check is exactly as strong as the KDF and no
// separate verifier is stored.
func unwrapKey(w WrappedKey, pin []byte) ([]byte, bool) {
	if w.KDF != "pbkdf2-sha256" || w.Iterations < 1 || len(w.Nonce) != 12 {
		return nil, false
	}
	kek, err := pbkdf2.Key(sha256.New, string(pin), w.Salt, w.Iterations, tokenKeyLen)
	if err != nil {
		return nil, false
	}
	defer zero(kek)
	key, err := gcmFor(kek).Open(nil, w.Nonce, w.Sealed, []byte("gohsm token key"))
	if err != nil {
		return nil, false
	}
	return key, true
}

// sealAttrs encrypts secret attributes with the object id as associated
// data, so a sealed blob moved to another object fails to open.
func sealAttrs(key []byte, id uint64, t attr.Template) []byte {
	plain := attr.EncodeTemplate(t)
	defer zero(plain)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	var ad [8]byte
	binary.BigEndian.PutUint64(ad[:], id)
	return gcmFor(key).Seal(nonce, nonce, plain, ad[:])
}

func openAttrs(key []byte, id uint64, sealed []byte) (attr.Template, error) {
	if len(sealed) < 12 {
		return nil, fmt.Errorf("object %d: sealed attributes truncated: %w", id, ck.CKR_DEVICE_ERROR)
	}
	var ad [8]byte
	binary.BigEndian.PutUint64(ad[:], id)
	plain, err := gcmFor(key).Open(nil, sealed[:12], sealed[12:], ad[:])
	if err != nil {
		return nil, fmt.Errorf("object %d: sealed attributes do not authenticate: %w", id, ck.CKR_DEVICE_ERROR)
	}
	defer zero(plain)
	t, err := attr.DecodeTemplate(plain)
	if err != nil {
		return nil, fmt.Errorf("object %d: sealed attributes: %w", id, ck.CKR_DEVICE_ERROR)
	}
	return t.Clone(), nil // plain is wiped on return
}

func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
