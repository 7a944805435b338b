package hsm

import (
	"bytes"
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
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
	if iterations < 1 {
		return WrappedKey{}, fmt.Errorf("pin kdf: %d iterations: %w", iterations, ck.CKR_GENERAL_ERROR)
	}
	kek := mech.PBKDF2(sha256.New, pin, salt, iterations, tokenKeyLen)
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
	kek := mech.PBKDF2(sha256.New, pin, w.Salt, w.Iterations, tokenKeyLen)
	defer zero(kek)
	key, err := gcmFor(kek).Open(nil, w.Nonce, w.Sealed, []byte("gohsm token key"))
	if err != nil {
		return nil, false
	}
	return key, true
}

// Sealed secrets. A blob is
//
//	"GS2" 0x00 | nonce [12] | AES-256-GCM(secret attributes)
//
// with associated data binding it to its object: the object id, the
// private flag and a digest of the object's clear attributes (sealAD). So
// a blob moved to another object fails to open, and so does one whose
// clear attributes were changed around it: someone who edits the store to
// turn CKA_SENSITIVE off, CKA_EXTRACTABLE on or CKA_TRUSTED on for a key
// with secrets makes the key unusable, not readable (the store's own MAC,
// under a key kept in the store, protects the rest; see tokens/doc.go).
// Blobs written before this format (nonce | ciphertext, the id alone as
// associated data) still open, and are rewritten in it at their next
// change.
var sealV2 = []byte{'G', 'S', '2', 0}

// sealAD is the associated data of a sealed blob.
func sealAD(id uint64, private bool, clear []ck.Attribute) []byte {
	d := clearDigest(clear)
	ad := make([]byte, 0, 16+8+1+len(d))
	ad = append(ad, "gohsm sealed v2\x00"...)
	ad = binary.BigEndian.AppendUint64(ad, id)
	if private {
		ad = append(ad, 1)
	} else {
		ad = append(ad, 0)
	}
	return append(ad, d[:]...)
}

// clearDigest is SHA-256 over the clear attributes in type order, each as
// type | length | value, so the order they are held in does not matter.
func clearDigest(attrs []ck.Attribute) [32]byte {
	sorted := slices.Clone(attrs)
	slices.SortStableFunc(sorted, func(a, b ck.Attribute) int { return cmp.Compare(a.Type, b.Type) })
	h := sha256.New()
	var n [8]byte
	for _, a := range sorted {
		binary.BigEndian.PutUint64(n[:], uint64(a.Type))
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(len(a.Value)))
		h.Write(n[:])
		h.Write(a.Value)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// sealAttrs encrypts secret attributes bound to their object (sealAD).
func sealAttrs(key []byte, id uint64, private bool, clear []ck.Attribute, t attr.Template) []byte {
	plain := attr.EncodeTemplate(t)
	defer zero(plain)
	out := make([]byte, len(sealV2)+12, len(sealV2)+12+len(plain)+16)
	copy(out, sealV2)
	nonce := out[len(sealV2):]
	rand.Read(nonce)
	return gcmFor(key).Seal(out, nonce, plain, sealAD(id, private, clear))
}

func openAttrs(key []byte, id uint64, private bool, clear []ck.Attribute, sealed []byte) (attr.Template, error) {
	var nonce, ct, ad []byte
	if bytes.HasPrefix(sealed, sealV2) && len(sealed) >= len(sealV2)+12 {
		nonce, ct = sealed[len(sealV2):len(sealV2)+12], sealed[len(sealV2)+12:]
		ad = sealAD(id, private, clear)
	} else if len(sealed) >= 12 {
		var v1 [8]byte
		binary.BigEndian.PutUint64(v1[:], id)
		nonce, ct, ad = sealed[:12], sealed[12:], v1[:]
	} else {
		return nil, fmt.Errorf("object %d: sealed attributes truncated: %w", id, ck.CKR_DEVICE_ERROR)
	}
	plain, err := gcmFor(key).Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, fmt.Errorf("object %d: sealed attributes do not authenticate with the object's attributes: %w", id, ck.CKR_DEVICE_ERROR)
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
