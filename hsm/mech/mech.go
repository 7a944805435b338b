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
	// Bits reports the key size in the units of CK_MECHANISM_INFO for the
	// mechanism size check (bits for RSA/EC, bytes for AES/DES/generic).
	Size func(a attr.Template, material any) ck.ULong
}
