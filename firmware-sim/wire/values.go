package wire

import (
	"fmt"
	"reflect"
	"sort"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Type is the wire encoding of one Go type of the hsm.Backend surface. The
// call table is built from these: a call's arguments and results are the
// concatenation of their types' encodings, in order.
type Type struct {
	// Name is the type's name in spec.md.
	Name string
	// Go is the Go type.
	Go  reflect.Type
	enc func(*Encoder, any)
	dec func(*Decoder) any
	// min is the smallest encoding, for list counts.
	min int
}

// Encode appends v (a value of t.Go; nil is its zero value).
func (t *Type) Encode(e *Encoder, v any) { t.enc(e, v) }

// Decode reads a value of t.Go.
func (t *Type) Decode(d *Decoder) any { return t.dec(d) }

var types = map[reflect.Type]*Type{}

// TypeOf returns the wire type of a Go type, or nil.
func TypeOf(t reflect.Type) *Type { return types[t] }

// Types lists the wire types, by name.
func Types() []*Type {
	out := make([]*Type, 0, len(types))
	for _, t := range types {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func register[T any](name string, min int, enc func(*Encoder, T), dec func(*Decoder) T) *Type {
	t := &Type{Name: name, Go: reflect.TypeFor[T](), min: min,
		enc: func(e *Encoder, v any) { x, _ := v.(T); enc(e, x) },
		dec: func(d *Decoder) any { return dec(d) }}
	if _, dup := types[t.Go]; dup {
		panic("wire: type registered twice: " + t.Go.String())
	}
	types[t.Go] = t
	return t
}

// ulong registers a CK_ULONG-based type: 8 bytes.
func ulong[T ~uint64](name string) *Type {
	return register(name, 8, func(e *Encoder, v T) { e.U64(uint64(v)) }, func(d *Decoder) T { return T(d.U64()) })
}

// list registers []T as a count and the elements.
func list[T any](name string, elem *Type) *Type {
	return register(name, 4,
		func(e *Encoder, v []T) {
			if v == nil {
				e.U32(NilLen)
				return
			}
			e.U32(uint32(len(v)))
			for _, x := range v {
				elem.enc(e, x)
			}
		},
		func(d *Decoder) []T {
			if d.peekNil() {
				return nil
			}
			n := d.Count(elem.min)
			if d.err != nil {
				return nil
			}
			out := make([]T, n)
			for i := range out {
				out[i], _ = elem.dec(d).(T)
				if d.err != nil {
					return nil
				}
			}
			return out
		})
}

// peekNil consumes an absent-list length word.
func (d *Decoder) peekNil() bool {
	if d.err != nil || d.Remaining() < 4 {
		return false
	}
	if d.b[d.off] == 0xFF && d.b[d.off+1] == 0xFF && d.b[d.off+2] == 0xFF && d.b[d.off+3] == 0xFF {
		d.off += 4
		return true
	}
	return false
}

func encVersion(e *Encoder, v ck.Version) { e.U8(v.Major); e.U8(v.Minor) }
func decVersion(d *Decoder) ck.Version    { return ck.Version{Major: d.U8(), Minor: d.U8()} }

// The value types of the Backend surface. The order of fields in each
// encoding is the order of the C structure's fields (spec.md, "Values").
var (
	tBool   = register("BOOL", 1, (*Encoder).Bool, (*Decoder).Bool)
	tInt    = register("INT", 8, (*Encoder).Int, (*Decoder).Int)
	tBytes  = register("BYTES", 4, (*Encoder).Bytes, (*Decoder).Bytes)
	tString = register("STRING", 4, (*Encoder).String, (*Decoder).String)

	tULong         = ulong[ck.ULong]("ULONG")
	tSlotID        = ulong[ck.SlotID]("SLOT_ID")
	tSessionHandle = ulong[ck.SessionHandle]("SESSION_HANDLE")
	tObjectHandle  = ulong[ck.ObjectHandle]("OBJECT_HANDLE")
	tMechanismType = ulong[ck.MechanismType]("MECHANISM_TYPE")
	tUserType      = ulong[ck.UserType]("USER_TYPE")
	tFlags         = ulong[ck.Flags]("FLAGS")
	tAttrType      = ulong[ck.AttributeType]("ATTRIBUTE_TYPE")

	tSlotList   = list[ck.SlotID]("SLOT_ID_LIST", tSlotID)
	tMechList   = list[ck.MechanismType]("MECHANISM_TYPE_LIST", tMechanismType)
	tObjectList = list[ck.ObjectHandle]("OBJECT_HANDLE_LIST", tObjectHandle)

	tAttribute = register("ATTRIBUTE", 12,
		func(e *Encoder, a ck.Attribute) { e.U64(uint64(a.Type)); e.Bytes(a.Value) },
		func(d *Decoder) ck.Attribute { return ck.Attribute{Type: ck.AttributeType(d.U64()), Value: d.Bytes()} })
	tTemplate = list[ck.Attribute]("TEMPLATE", tAttribute)

	tAttrRequest = register("ATTRIBUTE_REQUEST", 16,
		func(e *Encoder, r ck.AttributeRequest) { e.U64(uint64(r.Type)); e.Int(r.Cap) },
		func(d *Decoder) ck.AttributeRequest {
			return ck.AttributeRequest{Type: ck.AttributeType(d.U64()), Cap: d.Int()}
		})
	tAttrRequests = list[ck.AttributeRequest]("ATTRIBUTE_REQUEST_LIST", tAttrRequest)

	tAttrResult = register("ATTRIBUTE_RESULT", 20,
		func(e *Encoder, r ck.AttributeResult) { e.U64(uint64(r.Type)); e.U64(uint64(r.Len)); e.Bytes(r.Value) },
		func(d *Decoder) ck.AttributeResult {
			return ck.AttributeResult{Type: ck.AttributeType(d.U64()), Len: ck.ULong(d.U64()), Value: d.Bytes()}
		})
	tAttrResults = list[ck.AttributeResult]("ATTRIBUTE_RESULT_LIST", tAttrResult)

	tInfo = register("INFO", 2+4+8+4+2,
		func(e *Encoder, v ck.Info) {
			encVersion(e, v.CryptokiVersion)
			e.String(v.ManufacturerID)
			e.U64(uint64(v.Flags))
			e.String(v.LibraryDescription)
			encVersion(e, v.LibraryVersion)
		},
		func(d *Decoder) ck.Info {
			return ck.Info{CryptokiVersion: decVersion(d), ManufacturerID: d.String(), Flags: ck.Flags(d.U64()),
				LibraryDescription: d.String(), LibraryVersion: decVersion(d)}
		})

	tSlotInfo = register("SLOT_INFO", 4+4+8+2+2,
		func(e *Encoder, v ck.SlotInfo) {
			e.String(v.SlotDescription)
			e.String(v.ManufacturerID)
			e.U64(uint64(v.Flags))
			encVersion(e, v.HardwareVersion)
			encVersion(e, v.FirmwareVersion)
		},
		func(d *Decoder) ck.SlotInfo {
			return ck.SlotInfo{SlotDescription: d.String(), ManufacturerID: d.String(), Flags: ck.Flags(d.U64()),
				HardwareVersion: decVersion(d), FirmwareVersion: decVersion(d)}
		})

	tTokenInfo = register("TOKEN_INFO", 4*4+8*11+2+2+4,
		func(e *Encoder, v ck.TokenInfo) {
			e.String(v.Label)
			e.String(v.ManufacturerID)
			e.String(v.Model)
			e.String(v.SerialNumber)
			for _, u := range [...]ck.ULong{ck.ULong(v.Flags), v.MaxSessionCount, v.SessionCount, v.MaxRwSessionCount,
				v.RwSessionCount, v.MaxPinLen, v.MinPinLen, v.TotalPublicMemory, v.FreePublicMemory,
				v.TotalPrivateMemory, v.FreePrivateMemory} {
				e.U64(uint64(u))
			}
			encVersion(e, v.HardwareVersion)
			encVersion(e, v.FirmwareVersion)
			e.String(v.UTCTime)
		},
		func(d *Decoder) ck.TokenInfo {
			v := ck.TokenInfo{Label: d.String(), ManufacturerID: d.String(), Model: d.String(), SerialNumber: d.String()}
			v.Flags = ck.Flags(d.U64())
			for _, p := range [...]*ck.ULong{&v.MaxSessionCount, &v.SessionCount, &v.MaxRwSessionCount,
				&v.RwSessionCount, &v.MaxPinLen, &v.MinPinLen, &v.TotalPublicMemory, &v.FreePublicMemory,
				&v.TotalPrivateMemory, &v.FreePrivateMemory} {
				*p = ck.ULong(d.U64())
			}
			v.HardwareVersion = decVersion(d)
			v.FirmwareVersion = decVersion(d)
			v.UTCTime = d.String()
			return v
		})

	tSessionInfo = register("SESSION_INFO", 32,
		func(e *Encoder, v ck.SessionInfo) {
			e.U64(uint64(v.SlotID))
			e.U64(uint64(v.State))
			e.U64(uint64(v.Flags))
			e.U64(uint64(v.DeviceError))
		},
		func(d *Decoder) ck.SessionInfo {
			return ck.SessionInfo{SlotID: ck.SlotID(d.U64()), State: ck.State(d.U64()), Flags: ck.Flags(d.U64()),
				DeviceError: ck.ULong(d.U64())}
		})

	tMechInfo = register("MECHANISM_INFO", 24,
		func(e *Encoder, v ck.MechanismInfo) {
			e.U64(uint64(v.MinKeySize))
			e.U64(uint64(v.MaxKeySize))
			e.U64(uint64(v.Flags))
		},
		func(d *Decoder) ck.MechanismInfo {
			return ck.MechanismInfo{MinKeySize: ck.ULong(d.U64()), MaxKeySize: ck.ULong(d.U64()), Flags: ck.Flags(d.U64())}
		})

	tMechanism = register("MECHANISM", 9, EncodeMechanism, DecodeMechanism)
	tParam     = register("PARAM", 1, EncodeParam, DecodeParam)
)

// EncodeMechanism is the mechanism type and its parameter.
func EncodeMechanism(e *Encoder, m ck.Mechanism) {
	e.U64(uint64(m.Type))
	EncodeParam(e, m.Param)
}

// DecodeMechanism reads a mechanism and checks that its parameter has a
// structure the mechanism can take (spec.md, "MECHANISM").
func DecodeMechanism(d *Decoder) ck.Mechanism {
	m := ck.Mechanism{Type: ck.MechanismType(d.U64())}
	if d.err != nil {
		return m
	}
	start := d.off
	m.Param = DecodeParam(d)
	if d.err != nil {
		return m
	}
	if tag := ParamTag(d.b[start]); !paramFits(m.Type, tag) {
		d.inParam++
		d.Fail("parameter %s for %v, which takes %s", tag, m.Type, kindTag[ck.ParamKindOf(m.Type)])
		d.inParam--
	}
	return m
}

// paramFits: a mechanism takes no parameter, its own structure, an opaque
// string, or (in C_Message*Init, where the C module passes only the shape
// of the per-message structure) a per-message structure.
func paramFits(m ck.MechanismType, tag ParamTag) bool {
	switch tag {
	case ParamNone, ParamBytes, ParamGCMMessage, ParamChaCha20Poly1305Message:
		return true
	}
	return kindTag[ck.ParamKindOf(m)] == tag
}

// ParamTag names a parameter structure on the wire.
type ParamTag byte

// Parameter tags (spec.md, "PARAM").
const (
	ParamNone ParamTag = iota
	ParamBytes
	ParamGCM
	ParamCCM
	ParamCTR
	ParamRSAOAEP
	ParamRSAPSS
	ParamECDH1
	ParamEDDSA
	ParamMACGeneral
	ParamSignContext
	ParamHashSignContext
	ParamChaCha20Poly1305
	ParamHKDF
	ParamPBKD2
	ParamGCMMessage
	ParamChaCha20Poly1305Message
	paramTagCount
)

var paramTagNames = [...]string{"NONE", "BYTES", "GCM", "CCM", "CTR", "RSA_OAEP", "RSA_PSS", "ECDH1", "EDDSA",
	"MAC_GENERAL", "SIGN_CONTEXT", "HASH_SIGN_CONTEXT", "CHACHA20_POLY1305", "HKDF", "PBKD2", "GCM_MESSAGE",
	"CHACHA20_POLY1305_MESSAGE"}

func (t ParamTag) String() string {
	if int(t) < len(paramTagNames) {
		return paramTagNames[t]
	}
	return fmt.Sprintf("PARAM_%d", byte(t))
}

// kindTag maps the engine's parameter kinds to wire tags: every ck.ParamKind
// has one (TestEveryParamKindHasATag).
var kindTag = map[ck.ParamKind]ParamTag{
	ck.ParamBytes:            ParamBytes,
	ck.ParamGCM:              ParamGCM,
	ck.ParamCCM:              ParamCCM,
	ck.ParamCTR:              ParamCTR,
	ck.ParamRSAOAEP:          ParamRSAOAEP,
	ck.ParamRSAPSS:           ParamRSAPSS,
	ck.ParamECDH1:            ParamECDH1,
	ck.ParamEDDSA:            ParamEDDSA,
	ck.ParamULong:            ParamMACGeneral,
	ck.ParamSignContext:      ParamSignContext,
	ck.ParamHashSignContext:  ParamHashSignContext,
	ck.ParamChaCha20Poly1305: ParamChaCha20Poly1305,
	ck.ParamHKDF:             ParamHKDF,
	ck.ParamPBKD2:            ParamPBKD2,
}

// ErrUnencodable is set on an Encoder given a parameter of a Go type the
// protocol has no encoding for; the client answers the call with
// CKR_MECHANISM_PARAM_INVALID without sending it.
var ErrUnencodable = &DecodeError{RV: ck.CKR_MECHANISM_PARAM_INVALID, Msg: "parameter type has no wire encoding"}

// EncodeParam writes a mechanism parameter or a per-message parameter: a
// tag and the structure's fields in C order. A typed nil pointer is no
// parameter. A value of any other Go type cannot be sent: ok is false and
// nothing is written.
func EncodeParam(e *Encoder, p any) {
	if !AppendParam(e, p) {
		e.B = append(e.B, byte(ParamNone))
		if e.Err == nil {
			e.Err = ErrUnencodable
		}
	}
}

// AppendParam is EncodeParam reporting an unencodable type.
func AppendParam(e *Encoder, p any) bool {
	tag := func(t ParamTag) { e.U8(byte(t)) }
	switch v := p.(type) {
	case nil:
		tag(ParamNone)
	case []byte:
		tag(ParamBytes)
		e.Bytes(v)
	case *ck.GCMParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamGCM)
		e.Bytes(v.IV)
		e.U64(uint64(v.IVBits))
		e.Bytes(v.AAD)
		e.U64(uint64(v.TagBits))
	case *ck.CCMParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamCCM)
		e.U64(uint64(v.DataLen))
		e.Bytes(v.Nonce)
		e.Bytes(v.AAD)
		e.U64(uint64(v.MACLen))
	case *ck.CTRParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamCTR)
		e.U64(uint64(v.CounterBits))
		e.B = append(e.B, v.CB[:]...)
	case *ck.RSAOAEPParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamRSAOAEP)
		e.U64(uint64(v.HashAlg))
		e.U64(uint64(v.MGF))
		e.U64(uint64(v.Source))
		e.Bytes(v.SourceData)
	case *ck.RSAPSSParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamRSAPSS)
		e.U64(uint64(v.HashAlg))
		e.U64(uint64(v.MGF))
		e.U64(uint64(v.SaltLen))
	case *ck.ECDH1DeriveParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamECDH1)
		e.U64(uint64(v.KDF))
		e.Bytes(v.SharedData)
		e.Bytes(v.PublicData)
	case *ck.EDDSAParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamEDDSA)
		e.Bool(v.PHFlag)
		e.Bytes(v.ContextData)
	case ck.MACGeneralParams:
		tag(ParamMACGeneral)
		e.U64(uint64(v))
	case *ck.SignAdditionalContext:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamSignContext)
		e.U64(uint64(v.Hedge))
		e.Bytes(v.Context)
	case *ck.HashSignAdditionalContext:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamHashSignContext)
		e.U64(uint64(v.Hedge))
		e.Bytes(v.Context)
		e.U64(uint64(v.Hash))
	case *ck.ChaCha20Poly1305Params:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamChaCha20Poly1305)
		e.Bytes(v.Nonce)
		e.Bytes(v.AAD)
	case *ck.HKDFParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamHKDF)
		e.Bool(v.Extract)
		e.Bool(v.Expand)
		e.U64(uint64(v.PRF))
		e.U64(uint64(v.SaltType))
		e.Bytes(v.Salt)
		e.U64(uint64(v.SaltKey))
		e.Bytes(v.Info)
	case *ck.PBKD2Params:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamPBKD2)
		e.U64(uint64(v.SaltSource))
		e.Bytes(v.Salt)
		e.U64(uint64(v.Iterations))
		e.U64(uint64(v.PRF))
		e.Bytes(v.PRFData)
		e.Bytes(v.Password)
	case *ck.GCMMessageParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamGCMMessage)
		e.Bytes(v.IV)
		e.U64(uint64(v.IVFixedBits))
		e.U64(uint64(v.IVGenerator))
		e.Bytes(v.Tag)
		e.U64(uint64(v.TagBits))
	case *ck.ChaCha20Poly1305MsgParams:
		if v == nil {
			tag(ParamNone)
			break
		}
		tag(ParamChaCha20Poly1305Message)
		e.Bytes(v.Nonce)
		e.Bytes(v.Tag)
	default:
		return false
	}
	return true
}

// DecodeParam reads a parameter and applies the structural checks of
// spec.md ("PARAM"): what the C module's own decoding guarantees (a tag
// buffer of the declared length, booleans 0 or 1, a counter of at most 128
// bits) so the engine receives exactly what it would receive from C.
func DecodeParam(d *Decoder) any {
	d.inParam++
	defer func() { d.inParam-- }()
	t := ParamTag(d.U8())
	if d.err != nil {
		return nil
	}
	switch t {
	case ParamNone:
		return nil
	case ParamBytes:
		return d.Bytes()
	case ParamGCM:
		v := &ck.GCMParams{IV: d.Bytes(), IVBits: ck.ULong(d.U64()), AAD: d.Bytes(), TagBits: ck.ULong(d.U64())}
		return checked(d, v)
	case ParamCCM:
		v := &ck.CCMParams{DataLen: ck.ULong(d.U64()), Nonce: d.Bytes(), AAD: d.Bytes(), MACLen: ck.ULong(d.U64())}
		return checked(d, v)
	case ParamCTR:
		v := &ck.CTRParams{CounterBits: ck.ULong(d.U64())}
		copy(v.CB[:], d.take(16))
		if d.err == nil && v.CounterBits > 128 {
			d.Fail("CTR counter of %d bits", v.CounterBits)
		}
		return checked(d, v)
	case ParamRSAOAEP:
		v := &ck.RSAOAEPParams{HashAlg: ck.MechanismType(d.U64()), MGF: ck.MGF(d.U64()), Source: ck.ULong(d.U64()),
			SourceData: d.Bytes()}
		return checked(d, v)
	case ParamRSAPSS:
		v := &ck.RSAPSSParams{HashAlg: ck.MechanismType(d.U64()), MGF: ck.MGF(d.U64()), SaltLen: ck.ULong(d.U64())}
		return checked(d, v)
	case ParamECDH1:
		v := &ck.ECDH1DeriveParams{KDF: ck.EC_KDF(d.U64()), SharedData: d.Bytes(), PublicData: d.Bytes()}
		return checked(d, v)
	case ParamEDDSA:
		v := &ck.EDDSAParams{PHFlag: d.Bool(), ContextData: d.Bytes()}
		return checked(d, v)
	case ParamMACGeneral:
		v := ck.MACGeneralParams(d.U64())
		if d.err != nil {
			return nil
		}
		return v
	case ParamSignContext:
		v := &ck.SignAdditionalContext{Hedge: ck.HedgeType(d.U64()), Context: d.Bytes()}
		return checked(d, v)
	case ParamHashSignContext:
		v := &ck.HashSignAdditionalContext{Hedge: ck.HedgeType(d.U64()), Context: d.Bytes(), Hash: ck.MechanismType(d.U64())}
		return checked(d, v)
	case ParamChaCha20Poly1305:
		v := &ck.ChaCha20Poly1305Params{Nonce: d.Bytes(), AAD: d.Bytes()}
		return checked(d, v)
	case ParamHKDF:
		v := &ck.HKDFParams{Extract: d.Bool(), Expand: d.Bool(), PRF: ck.MechanismType(d.U64()),
			SaltType: ck.Flags(d.U64()), Salt: d.Bytes(), SaltKey: ck.ObjectHandle(d.U64()), Info: d.Bytes()}
		return checked(d, v)
	case ParamPBKD2:
		v := &ck.PBKD2Params{SaltSource: ck.ULong(d.U64()), Salt: d.Bytes(), Iterations: ck.ULong(d.U64()),
			PRF: ck.ULong(d.U64()), PRFData: d.Bytes(), Password: d.Bytes()}
		return checked(d, v)
	case ParamGCMMessage:
		v := &ck.GCMMessageParams{IV: d.Bytes(), IVFixedBits: ck.ULong(d.U64()),
			IVGenerator: ck.GeneratorFunction(d.U64()), Tag: d.Bytes(), TagBits: ck.ULong(d.U64())}
		if d.err == nil {
			// The C structure has no tag length: the tag buffer is
			// ulTagBits/8 bytes, and the fixed IV bits lie in the IV.
			if uint64(len(v.Tag)) != uint64(v.TagBits)/8 {
				d.Fail("GCM message tag of %d bytes for %d bits", len(v.Tag), v.TagBits)
			} else if uint64(v.IVFixedBits) > 8*uint64(len(v.IV)) {
				d.Fail("GCM message IV: %d fixed bits in %d bytes", v.IVFixedBits, len(v.IV))
			}
		}
		return checked(d, v)
	case ParamChaCha20Poly1305Message:
		v := &ck.ChaCha20Poly1305MsgParams{Nonce: d.Bytes(), Tag: d.Bytes()}
		if d.err == nil && len(v.Tag) != 16 {
			// The C structure's tag buffer is always 16 bytes.
			d.Fail("ChaCha20-Poly1305 message tag of %d bytes", len(v.Tag))
		}
		return checked(d, v)
	}
	d.Fail("unknown parameter tag %d", byte(t))
	return nil
}

// checked returns v, or nil after an error (never a half-read structure).
func checked[T any](d *Decoder, v *T) any {
	if d.err != nil {
		return nil
	}
	return v
}

// UpdateParam copies the fields of src, a parameter decoded from a result,
// into dst, the caller's parameter of the same type, in place: a byte
// string of unchanged length is overwritten where it is (the caller may
// hold it, as the C module's caller holds its IV buffer), any other field is
// assigned. This is how a token-generated IV or a message tag reaches the
// caller as it would from the local engine, which writes into the
// structure it was given. It reports false when the types differ or dst
// cannot be written (a parameter passed by value).
func UpdateParam(dst, src any) bool {
	if b, ok := dst.([]byte); ok {
		s, ok := src.([]byte)
		if !ok || len(s) != len(b) {
			return false
		}
		copy(b, s)
		return true
	}
	dv, sv := reflect.ValueOf(dst), reflect.ValueOf(src)
	if !dv.IsValid() || !sv.IsValid() || dv.Type() != sv.Type() || dv.Kind() != reflect.Pointer || dv.IsNil() || sv.IsNil() {
		return false
	}
	de, se := dv.Elem(), sv.Elem()
	if de.Kind() != reflect.Struct {
		return false
	}
	for i := range de.NumField() {
		df, sf := de.Field(i), se.Field(i)
		if df.Kind() == reflect.Slice && df.Type().Elem().Kind() == reflect.Uint8 && df.Len() == sf.Len() && !df.IsNil() && !sf.IsNil() {
			reflect.Copy(df, sf)
			continue
		}
		df.Set(sf)
	}
	return true
}
