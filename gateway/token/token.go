// Package token is the gateway's view of a PKCS#11 token: a logged-in
// token that opens sessions, and the session calls the gateway makes. Three
// backends implement it: the in-process engine and the appliance's network
// client (both hsm.Backend: FromBackend), and an external PKCS#11 module
// through crypto11 (package token/p11mod). Everything the gateway does to a
// key goes through these calls, so through the token's own authorisation
// gate: the gateway never sees a key's value.
//
// Values are hsm/ck's: attributes in the C encoding of this platform,
// mechanisms with their parameters decoded (ck.GCMParams, ...). Errors keep
// the token's ck.RV (errors.As); RV recovers it.
package token

import (
	"errors"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Token is one token, logged in as its user for as long as it is open.
type Token interface {
	// Label is the token's label (CK_TOKEN_INFO.label, trimmed).
	Label() string
	// OpenSession opens a new read/write session on the logged-in token.
	OpenSession() (Session, error)
	// Ping checks that the token answers: the health check.
	Ping() error
	// Close closes every session, logs out and releases the token.
	Close() error
}

// Session is one PKCS#11 session. A session is used by one goroutine at a
// time (the pool hands it out).
type Session interface {
	CreateObject(t []ck.Attribute) (ck.ObjectHandle, error)
	DestroyObject(h ck.ObjectHandle) error
	// FindObjects returns every object matching t.
	FindObjects(t []ck.Attribute) ([]ck.ObjectHandle, error)
	// GetAttributes reads the attributes; a value the token does not have
	// (or will not show) is nil, with no error.
	GetAttributes(h ck.ObjectHandle, types ...ck.AttributeType) ([][]byte, error)
	SetAttributes(h ck.ObjectHandle, t []ck.Attribute) error

	GenerateKey(m ck.Mechanism, t []ck.Attribute) (ck.ObjectHandle, error)
	GenerateKeyPair(m ck.Mechanism, pub, priv []ck.Attribute) (ck.ObjectHandle, ck.ObjectHandle, error)
	// WrapKey wraps key under wrapping. For a mechanism whose IV the token
	// makes (CKM_AES_GCM with a zeroed IV), the parameter holds it after.
	WrapKey(m ck.Mechanism, wrapping, key ck.ObjectHandle) ([]byte, error)
	UnwrapKey(m ck.Mechanism, unwrapping ck.ObjectHandle, wrapped []byte, t []ck.Attribute) (ck.ObjectHandle, error)
	DeriveKey(m ck.Mechanism, base ck.ObjectHandle, t []ck.Attribute) (ck.ObjectHandle, error)

	// Encrypt, Decrypt, Sign and Verify are single-part: Init and the call.
	Encrypt(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error)
	Decrypt(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error)
	Sign(m ck.Mechanism, key ck.ObjectHandle, in []byte) ([]byte, error)
	Verify(m ck.Mechanism, key ck.ObjectHandle, in, sig []byte) error

	// Seal encrypts plaintext with the AEAD mechanism (CKM_AES_GCM,
	// CKM_CHACHA20_POLY1305, the profile's SM4-GCM) under a 96-bit nonce
	// the token makes, and appends nonce || ciphertext || 16-byte tag to
	// dst. The caller never chooses the nonce.
	Seal(dst []byte, mech ck.MechanismType, key ck.ObjectHandle, aad, plaintext []byte) ([]byte, error)
	// Open is Seal's inverse on nonce || ciphertext || tag.
	Open(dst []byte, mech ck.MechanismType, key ck.ObjectHandle, aad, sealed []byte) ([]byte, error)

	Random(n int) ([]byte, error)
	Close() error
}

// NonceSize and TagSize are Seal's framing.
const (
	NonceSize = 12
	TagSize   = 16
)

// RV is the PKCS#11 code an error carries; CKR_GENERAL_ERROR for one that
// carries none (a transport failure).
func RV(err error) ck.RV {
	if err == nil {
		return ck.CKR_OK
	}
	var rv ck.RV
	if errors.As(err, &rv) {
		return rv
	}
	return ck.CKR_GENERAL_ERROR
}

// DeviceFailure reports whether err says the token (or the way to it)
// failed, rather than the request: the pool takes such a token out and
// runs the request on another. A wrong key, a bad tag or a refused
// mechanism is the request's; a lost session, a removed token, a device
// error or an error with no code (transport) is the token's.
func DeviceFailure(err error) bool {
	if err == nil {
		return false
	}
	switch RV(err) {
	case ck.CKR_DEVICE_ERROR, ck.CKR_DEVICE_REMOVED, ck.CKR_DEVICE_MEMORY, ck.CKR_GENERAL_ERROR,
		ck.CKR_TOKEN_NOT_PRESENT, ck.CKR_TOKEN_NOT_RECOGNIZED, ck.CKR_SESSION_CLOSED,
		ck.CKR_SESSION_HANDLE_INVALID, ck.CKR_CRYPTOKI_NOT_INITIALIZED, ck.CKR_USER_NOT_LOGGED_IN,
		ck.CKR_SLOT_ID_INVALID, ck.CKR_HOST_MEMORY:
		return true
	}
	return false
}
