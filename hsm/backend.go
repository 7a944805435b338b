package hsm

import (
	"github.com/gohsm/gohsm/hsm/ck"
)

// Backend is the transport-neutral PKCS#11 surface. The local engine
// (*Module) implements it, and so will the appliance's network client; the C
// shim and the wire server only ever see this interface.
//
// Output buffers follow one convention everywhere: outCap is the size of the
// caller's buffer, or -1 when the caller passed NULL to ask for the length.
// The result is (data, need, err): on a length query data is nil and need is
// the length (an upper bound where §5.2 allows); on ck.CKR_BUFFER_TOO_SMALL
// need is the length required and the operation stays active.
//
// Errors are ck.RV values, possibly wrapped; callers recover the code with
// ToRV.
type Backend interface {
	Initialize() error
	Finalize() error
	GetInfo() (ck.Info, error)
	GetSlotList(tokenPresent bool) ([]ck.SlotID, error)
	GetSlotInfo(slot ck.SlotID) (ck.SlotInfo, error)
	GetTokenInfo(slot ck.SlotID) (ck.TokenInfo, error)
	GetMechanismList(slot ck.SlotID) ([]ck.MechanismType, error)
	GetMechanismInfo(slot ck.SlotID, m ck.MechanismType) (ck.MechanismInfo, error)
	InitToken(slot ck.SlotID, soPIN []byte, label string) error
	InitPIN(s ck.SessionHandle, pin []byte) error
	SetPIN(s ck.SessionHandle, oldPIN, newPIN []byte) error

	OpenSession(slot ck.SlotID, flags ck.Flags) (ck.SessionHandle, error)
	CloseSession(s ck.SessionHandle) error
	CloseAllSessions(slot ck.SlotID) error
	GetSessionInfo(s ck.SessionHandle) (ck.SessionInfo, error)
	Login(s ck.SessionHandle, user ck.UserType, pin []byte) error
	Logout(s ck.SessionHandle) error

	CreateObject(s ck.SessionHandle, t []ck.Attribute) (ck.ObjectHandle, error)
	CopyObject(s ck.SessionHandle, o ck.ObjectHandle, t []ck.Attribute) (ck.ObjectHandle, error)
	DestroyObject(s ck.SessionHandle, o ck.ObjectHandle) error
	GetObjectSize(s ck.SessionHandle, o ck.ObjectHandle) (ck.ULong, error)
	// GetAttributeValue answers every request (results has one entry per
	// request, Len = CK_UNAVAILABLE_INFORMATION where it cannot), and returns
	// the error §5.7.5 prescribes: CKR_ATTRIBUTE_SENSITIVE,
	// CKR_ATTRIBUTE_TYPE_INVALID or CKR_BUFFER_TOO_SMALL, else nil.
	GetAttributeValue(s ck.SessionHandle, o ck.ObjectHandle, req []ck.AttributeRequest) ([]ck.AttributeResult, error)
	SetAttributeValue(s ck.SessionHandle, o ck.ObjectHandle, t []ck.Attribute) error
	FindObjectsInit(s ck.SessionHandle, t []ck.Attribute) error
	FindObjects(s ck.SessionHandle, max int) ([]ck.ObjectHandle, error)
	FindObjectsFinal(s ck.SessionHandle) error

	EncryptInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	Encrypt(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	EncryptUpdate(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	EncryptFinal(s ck.SessionHandle, outCap int) ([]byte, int, error)
	DecryptInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	Decrypt(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	DecryptUpdate(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	DecryptFinal(s ck.SessionHandle, outCap int) ([]byte, int, error)

	DigestInit(s ck.SessionHandle, m ck.Mechanism) error
	Digest(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	DigestUpdate(s ck.SessionHandle, in []byte) error
	DigestKey(s ck.SessionHandle, key ck.ObjectHandle) error
	DigestFinal(s ck.SessionHandle, outCap int) ([]byte, int, error)

	SignInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	Sign(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	SignUpdate(s ck.SessionHandle, in []byte) error
	SignFinal(s ck.SessionHandle, outCap int) ([]byte, int, error)
	SignRecoverInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	SignRecover(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	VerifyInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	Verify(s ck.SessionHandle, in, sig []byte) error
	VerifyUpdate(s ck.SessionHandle, in []byte) error
	VerifyFinal(s ck.SessionHandle, sig []byte) error
	VerifyRecoverInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	VerifyRecover(s ck.SessionHandle, sig []byte, outCap int) ([]byte, int, error)

	DigestEncryptUpdate(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	DecryptDigestUpdate(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	SignEncryptUpdate(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)
	DecryptVerifyUpdate(s ck.SessionHandle, in []byte, outCap int) ([]byte, int, error)

	GenerateKey(s ck.SessionHandle, m ck.Mechanism, t []ck.Attribute) (ck.ObjectHandle, error)
	GenerateKeyPair(s ck.SessionHandle, m ck.Mechanism, pub, priv []ck.Attribute) (ck.ObjectHandle, ck.ObjectHandle, error)
	WrapKey(s ck.SessionHandle, m ck.Mechanism, wrapping, key ck.ObjectHandle, outCap int) ([]byte, int, error)
	UnwrapKey(s ck.SessionHandle, m ck.Mechanism, unwrapping ck.ObjectHandle, wrapped []byte, t []ck.Attribute) (ck.ObjectHandle, error)
	DeriveKey(s ck.SessionHandle, m ck.Mechanism, base ck.ObjectHandle, t []ck.Attribute) (ck.ObjectHandle, error)

	SeedRandom(s ck.SessionHandle, seed []byte) error
	GenerateRandom(s ck.SessionHandle, n int) ([]byte, error)
	GetFunctionStatus(s ck.SessionHandle) error
	CancelFunction(s ck.SessionHandle) error
	GetOperationState(s ck.SessionHandle, outCap int) ([]byte, int, error)
	SetOperationState(s ck.SessionHandle, state []byte, encKey, authKey ck.ObjectHandle) error
	WaitForSlotEvent(flags ck.Flags) (ck.SlotID, error)

	// PKCS#11 3.0 session functions the engine supports.
	LoginUser(s ck.SessionHandle, user ck.UserType, pin []byte, username []byte) error
	SessionCancel(s ck.SessionHandle, flags ck.Flags) error

	// PKCS#11 3.0 message-based encryption (§5.9-§5.12). param is the
	// per-message parameter (*ck.GCMMessageParams,
	// *ck.ChaCha20Poly1305MsgParams): it is in and out, and on success an
	// encryption leaves the generated IV and the tag in it for the
	// boundary to copy back to its caller. Output lengths are exact.
	MessageEncryptInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	EncryptMessage(s ck.SessionHandle, param any, aad, plaintext []byte, outCap int) ([]byte, int, error)
	EncryptMessageBegin(s ck.SessionHandle, param any, aad []byte) error
	EncryptMessageNext(s ck.SessionHandle, param any, in []byte, outCap int, flags ck.Flags) ([]byte, int, error)
	MessageEncryptFinal(s ck.SessionHandle) error
	MessageDecryptInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	DecryptMessage(s ck.SessionHandle, param any, aad, ciphertext []byte, outCap int) ([]byte, int, error)
	DecryptMessageBegin(s ck.SessionHandle, param any, aad []byte) error
	DecryptMessageNext(s ck.SessionHandle, param any, in []byte, outCap int, flags ck.Flags) ([]byte, int, error)
	MessageDecryptFinal(s ck.SessionHandle) error

	// PKCS#11 3.0 message-based signing and verification (§5.15, §5.17).
	// param is the per-message parameter, of the type of the mechanism's
	// own parameter (*ck.SignAdditionalContext, *ck.EDDSAParams, ...) and
	// applied to that message only; nil keeps the init parameter.
	// SignMessageNext's last is the C caller's non-NULL pulSignatureLen:
	// without it outCap is ignored and nothing is output.
	// VerifyMessageNext's last is its non-NULL pSignature.
	MessageSignInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	SignMessage(s ck.SessionHandle, param any, data []byte, outCap int) ([]byte, int, error)
	SignMessageBegin(s ck.SessionHandle, param any) error
	SignMessageNext(s ck.SessionHandle, param any, in []byte, last bool, outCap int) ([]byte, int, error)
	MessageSignFinal(s ck.SessionHandle) error
	MessageVerifyInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle) error
	VerifyMessage(s ck.SessionHandle, param any, data, sig []byte) error
	VerifyMessageBegin(s ck.SessionHandle, param any) error
	VerifyMessageNext(s ck.SessionHandle, param any, in, sig []byte, last bool) error
	MessageVerifyFinal(s ck.SessionHandle) error
	// MessageSignMechanism is the mechanism of the session's message sign
	// (or verify) process, CKR_OPERATION_NOT_INITIALIZED without one: a
	// transport decodes the per-message parameter by it (the C structures
	// cannot be told apart by size) without keeping session state itself.
	MessageSignMechanism(s ck.SessionHandle, verify bool) (ck.MechanismType, error)

	// PKCS#11 3.2 verification with the signature given at init; it is
	// the session's verify operation, as C_VerifyInit's.
	VerifySignatureInit(s ck.SessionHandle, m ck.Mechanism, key ck.ObjectHandle, sig []byte) error
	VerifySignature(s ck.SessionHandle, data []byte) error
	VerifySignatureUpdate(s ck.SessionHandle, in []byte) error
	VerifySignatureFinal(s ck.SessionHandle) error
	// GetSessionValidationFlags is C_GetSessionValidationFlags (3.2); typ
	// is a CK_SESSION_VALIDATION_FLAGS_TYPE.
	GetSessionValidationFlags(s ck.SessionHandle, typ ck.ULong) (ck.Flags, error)

	// PKCS#11 3.2 key encapsulation. EncapsulateKey writes the ciphertext
	// into ct, the caller's buffer, and returns its length with the new
	// key's handle; a nil ct asks for the length (nothing is created then,
	// nor on CKR_BUFFER_TOO_SMALL, which also returns the length). Unlike
	// the other outputs it is written in place: an ML-KEM-1024 ciphertext
	// is 1568 bytes, made once per call.
	EncapsulateKey(s ck.SessionHandle, m ck.Mechanism, pub ck.ObjectHandle, t []ck.Attribute, ct []byte) (int, ck.ObjectHandle, error)
	DecapsulateKey(s ck.SessionHandle, m ck.Mechanism, priv ck.ObjectHandle, t []ck.Attribute, ciphertext []byte) (ck.ObjectHandle, error)
}
