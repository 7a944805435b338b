// Package ck holds the PKCS#11 constants with the specification's names and
// Go types, and the plain data structures every face of gohsm exchanges (info
// structures, mechanism parameters). It has no behaviour beyond naming, so the
// engine, the C shim, the wire codec and the gateway can all share it.
package ck

import (
	"fmt"
	"sync"
)

// ULong is CK_ULONG. gohsm always carries it as 64 bits; the C shim narrows
// nothing because every supported platform is LP64.
type ULong uint64

type (
	RV              ULong
	AttributeType   ULong
	MechanismType   ULong
	ObjectClass     ULong
	KeyType         ULong
	Flags           ULong
	UserType        ULong
	State           ULong
	CertificateType ULong
	MGF             ULong
	EC_KDF          ULong //nolint:revive // spec name CK_EC_KDF_TYPE
	HWFeatureType   ULong
	SlotID          ULong
	SessionHandle   ULong
	ObjectHandle    ULong
)

// Error makes RV the engine's error type: wrap it with %w for context and
// recover it with errors.As (see ToRV) only at a boundary.
func (r RV) Error() string { return r.String() }

func lookup[T comparable](table []struct {
	v T
	n string
}) func(T) (string, bool) {
	m := sync.OnceValue(func() map[T]string {
		out := make(map[T]string, len(table))
		for _, e := range table {
			if _, dup := out[e.v]; !dup {
				out[e.v] = e.n
			}
		}
		return out
	})
	return func(v T) (string, bool) { s, ok := m()[v]; return s, ok }
}

// The 3.x names come first so that a 3.0 renaming wins (CKF_EC_OID...).
var (
	rvName        = lookup(join(v3RVNames, rvNames))
	attributeName = lookup(join(v3AttributeNames, attributeNames))
	mechanismName = lookup(join(v3MechanismNames, mechanismNames))
	className     = lookup(join(v3ClassNames, classNames))
	keyTypeName   = lookup(join(v3KeyTypeNames, keyTypeNames))
)

func join[T any](a, b []T) []T { return append(append(make([]T, 0, len(a)+len(b)), a...), b...) }

func name[T ~uint64](f func(T) (string, bool), v T) string {
	if s, ok := f(v); ok {
		return s
	}
	return fmt.Sprintf("0x%08X", uint64(v))
}

func (r RV) String() string            { return name(rvName, r) }
func (a AttributeType) String() string { return name(attributeName, a) }
func (m MechanismType) String() string {
	if s, ok := vendorMechanismName(m); ok {
		return s
	}
	return name(mechanismName, m)
}
func (c ObjectClass) String() string { return name(className, c) }
func (k KeyType) String() string {
	if s, ok := vendorKeyTypeName(k); ok {
		return s
	}
	return name(keyTypeName, k)
}

// Version is CK_VERSION.
type Version struct{ Major, Minor byte }

// Info is CK_INFO. Strings are unpadded here; the C shim blank-pads them.
type Info struct {
	CryptokiVersion    Version
	ManufacturerID     string
	Flags              Flags
	LibraryDescription string
	LibraryVersion     Version
}

// SlotInfo is CK_SLOT_INFO.
type SlotInfo struct {
	SlotDescription string
	ManufacturerID  string
	Flags           Flags
	HardwareVersion Version
	FirmwareVersion Version
}

// TokenInfo is CK_TOKEN_INFO. Counts use CK_UNAVAILABLE_INFORMATION and
// CK_EFFECTIVELY_INFINITE as the spec does.
type TokenInfo struct {
	Label              string
	ManufacturerID     string
	Model              string
	SerialNumber       string
	Flags              Flags
	MaxSessionCount    ULong
	SessionCount       ULong
	MaxRwSessionCount  ULong
	RwSessionCount     ULong
	MaxPinLen          ULong
	MinPinLen          ULong
	TotalPublicMemory  ULong
	FreePublicMemory   ULong
	TotalPrivateMemory ULong
	FreePrivateMemory  ULong
	HardwareVersion    Version
	FirmwareVersion    Version
	UTCTime            string
}

// SessionInfo is CK_SESSION_INFO.
type SessionInfo struct {
	SlotID      SlotID
	State       State
	Flags       Flags
	DeviceError ULong
}

// MechanismInfo is CK_MECHANISM_INFO.
type MechanismInfo struct {
	MinKeySize ULong
	MaxKeySize ULong
	Flags      Flags
}

// Attribute is one CK_ATTRIBUTE with its value in the C encoding of this
// platform: CK_ULONG as 8 little-endian bytes, CK_BBOOL as one byte.
type Attribute struct {
	Type  AttributeType
	Value []byte
}

// AttributeRequest asks for one attribute in C_GetAttributeValue. Cap is the
// caller's buffer size, or -1 when the caller passed a NULL pValue and only
// wants the length (PKCS#11 3.0 §5.7.5).
type AttributeRequest struct {
	Type AttributeType
	Cap  int
}

// AttributeResult answers one AttributeRequest. Len is the value length, or
// CK_UNAVAILABLE_INFORMATION; Value is nil for a length query.
type AttributeResult struct {
	Type  AttributeType
	Len   ULong
	Value []byte
}

// Mechanism is CK_MECHANISM with its parameter decoded into a Go value: nil,
// []byte for mechanisms whose parameter is an opaque string (an IV), or one
// of the *Params structs in params.go. ParamKind tells which.
type Mechanism struct {
	Type  MechanismType
	Param any
}

// SessionFlags the engine accepts from C_OpenSession.
const (
	CKF_RW_SESSION_ Flags = CKF_RW_SESSION
)
