// Package mech is the mechanism registry: one file per algorithm family and
// one explicit list (registry.go) that names them all; nothing registers
// itself in init().
//
// Concurrency: a Registry is immutable after New and shared by every session.
// Key material (Key.Material) is parsed once per object and shared read-only
// between goroutines, so parsed values must be safe for concurrent use (a
// crypto/aes block is; a cipher with scratch state is not and must be built
// per operation). Operation values (Cipher, Signer, ...) belong to one session
// and are never used by two goroutines at once.
package mech

import (
	"hash"

	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Key is what a mechanism sees of a key object.
type Key struct {
	Class ck.ObjectClass
	Type  ck.KeyType
	// Material is the value returned by the key type's Parse, computed once
	// per object: *rsa.PrivateKey, *ecdsa.PublicKey, []byte for secrets, ...
	Material any
	// Attrs is the object's attribute set (for CKA_VALUE_LEN, CKA_EC_PARAMS...).
	Attrs attr.Template
}

// Cipher is one encryption or decryption in progress. Lengths are exact
// where that is cheap to know (block modes), and otherwise an upper bound
// (PKCS#11 §5.2 allows a size query to overstate).
type Cipher interface {
	UpdateLen(n int) int
	Update(dst, src []byte) ([]byte, error)
	FinalLen() int
	Final(dst []byte) ([]byte, error)
	// OneShotLen bounds OneShot's output for n input bytes.
	OneShotLen(n int) int
	// OneShot is C_Encrypt/C_Decrypt. It must not change the multi-part
	// state and must be repeatable, because the engine may run it again
	// after answering CKR_BUFFER_TOO_SMALL.
	OneShot(dst, src []byte) ([]byte, error)
}

// Signer is a signature or MAC computation in progress.
type Signer interface {
	// Len is the exact signature length.
	Len() int
	// Update feeds multi-part data. Single-part-only mechanisms return
	// ck.CKR_FUNCTION_NOT_SUPPORTED wrapped.
	Update(p []byte) error
	Final() ([]byte, error)
	// Sign is C_Sign; it must not depend on or change the multi-part state.
	Sign(data []byte) ([]byte, error)
}

// Verifier checks a signature or MAC; a mismatch is ck.CKR_SIGNATURE_INVALID
// and a wrong length ck.CKR_SIGNATURE_LEN_RANGE.
type Verifier interface {
	Update(p []byte) error
	Final(sig []byte) error
	Verify(data, sig []byte) error
}

// Mechanism describes one CKM_ value and builds its operations. Nil
// functions mean the mechanism does not support that operation.
type Mechanism struct {
	Type ck.MechanismType
	Info ck.MechanismInfo
	// KeyTypes lists the key types the mechanism accepts; any other is
	// CKR_KEY_TYPE_INCONSISTENT.
	KeyTypes []ck.KeyType

	Encrypt func(k *Key, param any) (Cipher, error)
	Decrypt func(k *Key, param any) (Cipher, error)
	Sign    func(k *Key, param any) (Signer, error)
	Verify  func(k *Key, param any) (Verifier, error)
	Digest  func(param any) (hash.Hash, error)
	// GenerateKey returns the attributes the mechanism sets on a new secret
	// key (CKA_KEY_TYPE, CKA_VALUE, CKA_VALUE_LEN) from the caller's template.
	GenerateKey func(t attr.Template) (attr.Template, error)
	// GenerateKeyParam is GenerateKey for the few generation mechanisms
	// that take a parameter (CKM_PKCS5_PBKD2); the engine prefers it.
	GenerateKeyParam func(t attr.Template, param any) (attr.Template, error)
	// GenerateKeyPair returns the attributes it sets on the public and the
	// private key (CKA_KEY_TYPE, CKA_MODULUS, CKA_EC_POINT, CKA_VALUE, ...).
	GenerateKeyPair func(pub, priv attr.Template) (attr.Template, attr.Template, error)
	// Derive returns the attributes a derived secret key gets from the
	// mechanism (CKA_VALUE, and CKA_KEY_TYPE when the caller gave none);
	// t is the caller's template, for CKA_VALUE_LEN and CKA_KEY_TYPE.
	Derive func(base *Key, param any, t attr.Template) (attr.Template, error)
	// DerivesData marks a Derive that makes a CKO_DATA object rather than
	// a secret key (CKM_HKDF_DATA, 3.0 mechanisms §2.43.4): Derive then
	// returns only CKA_VALUE, and the engine accepts a template whose
	// class is CKO_DATA (and no other).
	DerivesData bool
	// Wrapping uses Encrypt and unwrapping Decrypt (single-part) of
	// mechanisms whose Info has CKF_WRAP / CKF_UNWRAP.

	// Encapsulate is the KEM half of C_EncapsulateKey (3.2): it writes
	// the ciphertext for pub into ciphertext, which is CiphertextLen(pub)
	// bytes long, and returns the shared secret it carries. The engine
	// hands it the caller's buffer, so a ciphertext of a kilobyte or more
	// is neither allocated nor copied again.
	Encapsulate func(pub *Key, param any, ciphertext []byte) (secret []byte, err error)
	// Decapsulate is the KEM half of C_DecapsulateKey: the shared secret
	// carried by ciphertext. A KEM with implicit rejection (ML-KEM) returns
	// a pseudo-random secret, not an error, for a forged ciphertext.
	Decapsulate func(priv *Key, param any, ciphertext []byte) ([]byte, error)
	// CiphertextLen is the exact length of Encapsulate's ciphertext for
	// pub, so that a size query does no work.
	CiphertextLen func(pub *Key) (int, error)

	// Safety properties the engine's one authorisation gate reads
	// (hsm/gate.go). They are declared here, with the mechanism, so that a
	// new mechanism states them in its own file and cannot be forgotten
	// by a check written elsewhere.

	// IV says what a caller-chosen IV or nonce risks (IVKind). A
	// mechanism with CKF_WRAP and IVNonce wraps only under a nonce the
	// token makes (Nonce), and under a key that may wrap sensitive keys it
	// encrypts only so too: otherwise the same nonce used twice, once on a
	// key being wrapped and once on a known one, gives the key away.
	IV IVKind
	// Nonce returns the IV/nonce buffer inside param (the caller's copy,
	// written in place when the token makes the nonce), or nil when param
	// has none. Required for IVNonce mechanisms.
	Nonce func(param any) []byte
	// MessageNonceByToken reports whether a per-message parameter of
	// message-based encryption leaves the whole nonce to the token's
	// random generator (at least 96 free bits), the only kind a key that
	// may wrap sensitive keys encrypts under: a counter restarts with
	// every process and a fixed field is the caller's. Nil: never.
	MessageNonceByToken func(param any) bool
	// WrapPad is the block size a wrap zero-pads a secret key's value to
	// (the raw block modes, ECB and CBC: 2.40 mechanisms §2.10.x "the key
	// is padded with zeros"); on unwrap the value is cut back to the
	// template's CKA_VALUE_LEN or the key type's length. Such mechanisms
	// wrap secret keys only. 0: the mechanism frames the key itself.
	WrapPad int
	// RawPrivate marks a mechanism whose private-key operation is the raw
	// function whichever way it is called (CKM_RSA_X_509: signing computes
	// a decryption and decryption a signature), so that signing needs the
	// key to allow decryption too and decrypting needs it to allow
	// signing: a key that may sign must not become a decryption oracle.
	RawPrivate bool
	// UnwrapFixed, when set, is how C_UnwrapKey decrypts a wrapped secret
	// of exactly n bytes with implicit rejection: a malformed or
	// wrong-length plaintext yields n bytes derived from the private key
	// and the input instead of an error, in constant time, so unwrapping
	// is no padding oracle (CKM_RSA_PKCS: Bleichenbacher; the "implicit
	// rejection" of draft-irtf-cfrg-rsa-guidance, as in OpenSSL 3.2+).
	UnwrapFixed func(k *Key, param any, wrapped []byte, n int) ([]byte, error)
	// WeakDigest marks a digest that must not be computed over a
	// sensitive key's value (C_DigestKey): MD5 and SHA-1 have broken or
	// failing collision resistance and short outputs.
	WeakDigest bool
	// ParamKeys names the keys the mechanism's parameter refers to by
	// handle (CK_HKDF_PARAMS hSaltKey); the gate checks each as it checks
	// the operation's own key and hands Bind their material.
	ParamKeys *ParamKeys

	// MessageEncrypt and MessageDecrypt start a message-based process
	// (C_MessageEncryptInit / C_MessageDecryptInit, 3.0 §5.9-§5.12) for
	// mechanisms whose Info has CKF_MESSAGE_ENCRYPT / CKF_MESSAGE_DECRYPT.
	MessageEncrypt func(k *Key, param any) (MessageCipher, error)
	MessageDecrypt func(k *Key, param any) (MessageCipher, error)
}

// MessageCipher is one message-based encryption or decryption process: one
// key, any number of messages, each with its own parameter (IV, tag). It
// handles one message at a time; the engine buffers a multi-part message
// and hands it over whole, because an AEAD must not release plaintext
// before its tag is checked.
type MessageCipher interface {
	// Begin starts a message. It validates param; for encryption it makes
	// the IV when param asks the token to, and writes it into param.
	Begin(param any, aad []byte) error
	// OutLen is the exact output length of a message of n input bytes.
	OutLen(n int) int
	// Finish encrypts or decrypts the whole message begun last. param is
	// the parameter of the caller's last call: encryption writes the tag
	// into it, decryption reads the tag from it (or, when it is nil, from
	// Begin's). The message ends whatever the result.
	Finish(param any, in []byte) ([]byte, error)
	// Abort forgets the message begun last.
	Abort()
}

// KeyKind tells the engine how to treat one key type: which attributes a
// created object must carry and how to parse its material.
type KeyKind struct {
	Type ck.KeyType
	// Parse turns an object's attributes into its Material. It reports a
	// malformed value as CKR_ATTRIBUTE_VALUE_INVALID and a missing one as
	// CKR_TEMPLATE_INCOMPLETE, so C_CreateObject can call it to validate.
	Parse func(class ck.ObjectClass, a attr.Template) (any, error)
	// Derived returns attributes the token computes for a created or
	// generated object (CKA_VALUE_LEN for secrets, CKA_MODULUS_BITS, a private
	// key's public values...). May be nil.
	Derived func(class ck.ObjectClass, a attr.Template, material any) (attr.Template, error)
	// Secret lists the attributes that are sensitive for this key type
	// (never returned when CKA_SENSITIVE or not CKA_EXTRACTABLE, encrypted
	// at rest).
	Secret []ck.AttributeType
	// Encode serialises a key for C_WrapKey: nil means the CKA_VALUE of a
	// secret key; private keys travel as PKCS#8 PrivateKeyInfo.
	Encode func(k *Key) ([]byte, error)
	// Decode turns an unwrapped PKCS#8 private key into its attributes.
	Decode func(der []byte) (attr.Template, error)
	// ValueLen is the length of a secret key's CKA_VALUE when the key
	// type fixes it (DES3 24, ChaCha20 32, SM4 16); 0 when it varies. A
	// wrapped key that is padded or must be of known length is cut to it.
	ValueLen int
	// Bits reports the key size in the units of CK_MECHANISM_INFO for the
	// mechanism size check (bits for RSA/EC, bytes for AES/DES/generic).
	Size func(a attr.Template, material any) ck.ULong
	// PCT is the pairwise consistency test (FIPS 140-3 IG 10.3.A) the
	// engine runs on every key pair it generates, before committing it;
	// nil for kinds that are not key pairs. New binds it from pct, the one
	// line each key-pair kind declares in its own file (pct.go).
	PCT func(pub, priv *Key) error
	pct pctBinder
}

// IVKind is what a caller-chosen IV or nonce of a mechanism risks.
type IVKind uint8

const (
	// IVNone: no IV, or a fixed one: ECB, the AES key wraps (whose IV is
	// an integrity check value), RSA (its padding randomness is the
	// token's).
	IVNone IVKind = iota
	// IVBlock: a block-chaining IV (CBC). A repeated IV shows only which
	// leading blocks of two plaintexts are equal.
	IVBlock
	// IVNonce: a nonce or counter block (CTR, GCM, CCM,
	// ChaCha20-Poly1305). Two plaintexts under one nonce give away their
	// XOR, and GCM's authentication key with it.
	IVNonce
)

// ParamKeys describes the keys a mechanism parameter names.
type ParamKeys struct {
	// Handles returns the handles param names (none: the parameter names
	// no key this time, e.g. a salt given as data).
	Handles func(param any) []ck.ObjectHandle
	// Usage is the flag each named key must have (CKA_DERIVE for an HKDF
	// salt key: it is keyed into HMAC, which is what deriving with it is).
	Usage ck.AttributeType
	// KeyTypes are the key types the parameter accepts.
	KeyTypes []ck.KeyType
	// Bind returns the parameter with the named keys resolved to their
	// material, in the order Handles gave them.
	Bind func(param any, keys []*Key) (any, error)
}
