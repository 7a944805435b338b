package wire

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// CallID names a call on the wire (spec.md, "Call table").
type CallID uint16

// Retry says whether a client may send a call again after the connection
// dropped while the call was in flight (sent, not answered), when it cannot
// know whether the server ran it (spec.md, "Retry rules").
type Retry uint8

const (
	// Unsafe: never sent twice. Running it twice could differ from running
	// it once (a second key, a PIN counted twice) or it continues an
	// operation that the drop ended anyway.
	Unsafe Retry = iota
	// Safe: running it twice is the same as once. Reads; C_*Init (their
	// only effect is on the session's operation, which the drop ended);
	// opening and closing sessions (the server closes a dropped
	// connection's sessions itself); random numbers; C_WrapKey (it makes
	// nothing on the token).
	Safe
)

// Op is a set of the session operations a call starts or continues. A
// client that re-opened a session after a reconnect knows that operations
// started before it are gone (spec.md, "Reconnection").
type Op uint16

const (
	OpEncrypt Op = 1 << iota
	OpDecrypt
	OpDigest
	OpSign
	OpVerify
	OpSignRecover
	OpVerifyRecover
	OpFind
	OpMessageEncrypt
	OpMessageDecrypt
	OpMessageSign
	OpMessageVerify
)

// Call is one row of the call table.
type Call struct {
	ID   CallID
	Name string // the hsm.Backend method
	// Retry is the re-send rule after a drop.
	Retry Retry
	// Op is the operation the call belongs to; Init says it starts one.
	Op   Op
	Init bool
	// Wipe lists the arguments that hold secrets (PINs): the server
	// zeroises them after the call.
	Wipe []int
	// Args and Results are the wire types of the arguments and of the
	// results (the error excluded), in order.
	Args, Results []*Type
	// InOut lists the arguments whose parameter the engine may write (a
	// MECHANISM or a PARAM): their new value travels back in the result.
	InOut []int
	// Session: Args[0] is a session handle. Slot: Args[0] is a slot id.
	Session, Slot bool
	// Adapted: bound to an adapter with a wire-friendly signature instead
	// of the Backend method itself (C_EncapsulateKey writes into the
	// caller's buffer; on the wire its capacity goes out and the bytes
	// come back as a result).
	Adapted bool

	binding
}

// opt modifies a row.
type opt func(*Call)

func safe(c *Call)         { c.Retry = Safe }
func op(o Op) opt          { return func(c *Call) { c.Op = o } }
func initOp(o Op) opt      { return func(c *Call) { c.Op, c.Init, c.Retry = o, true, Safe } }
func wipe(args ...int) opt { return func(c *Call) { c.Wipe = args } }
func adapted(c *Call)      { c.Adapted = true }
func row(id CallID, name string, b binding, opts ...opt) *Call {
	c := &Call{ID: id, Name: name, binding: b}
	for _, o := range opts {
		o(c)
	}
	return c
}

// calls is the call table: one line per hsm.Backend method, binding a call
// id to the method. Ids are never reused or renumbered; a new Backend method
// is a new line with the next id (TestTableCoversBackend fails until it is
// here, and go generate in firmware-sim/client writes the client's method).
var calls = []*Call{
	row(1, "Initialize", b0r0(hsm.Backend.Initialize), safe),
	row(2, "Finalize", b0r0(hsm.Backend.Finalize), safe),
	row(3, "GetInfo", b0r1(hsm.Backend.GetInfo), safe),
	row(4, "GetSlotList", b1r1(hsm.Backend.GetSlotList), safe),
	row(5, "GetSlotInfo", b1r1(hsm.Backend.GetSlotInfo), safe),
	row(6, "GetTokenInfo", b1r1(hsm.Backend.GetTokenInfo), safe),
	row(7, "GetMechanismList", b1r1(hsm.Backend.GetMechanismList), safe),
	row(8, "GetMechanismInfo", b2r1(hsm.Backend.GetMechanismInfo), safe),
	row(9, "InitToken", b3r0(hsm.Backend.InitToken), wipe(1)),
	row(10, "InitPIN", b2r0(hsm.Backend.InitPIN), wipe(1)),
	row(11, "SetPIN", b3r0(hsm.Backend.SetPIN), wipe(1, 2)),
	row(12, "OpenSession", b2r1(hsm.Backend.OpenSession), safe),
	row(13, "CloseSession", b1r0(hsm.Backend.CloseSession), safe),
	row(14, "CloseAllSessions", b1r0(hsm.Backend.CloseAllSessions), safe),
	row(15, "GetSessionInfo", b1r1(hsm.Backend.GetSessionInfo), safe),
	row(16, "Login", b3r0(hsm.Backend.Login), wipe(2)),
	row(17, "Logout", b1r0(hsm.Backend.Logout), safe),
	row(18, "CreateObject", b2r1(hsm.Backend.CreateObject)),
	row(19, "CopyObject", b3r1(hsm.Backend.CopyObject)),
	row(20, "DestroyObject", b2r0(hsm.Backend.DestroyObject)),
	row(21, "GetObjectSize", b2r1(hsm.Backend.GetObjectSize), safe),
	row(22, "GetAttributeValue", b3r1(hsm.Backend.GetAttributeValue), safe),
	row(23, "SetAttributeValue", b3r0(hsm.Backend.SetAttributeValue)),
	row(24, "FindObjectsInit", b2r0(hsm.Backend.FindObjectsInit), initOp(OpFind)),
	row(25, "FindObjects", b2r1(hsm.Backend.FindObjects), op(OpFind)),
	row(26, "FindObjectsFinal", b1r0(hsm.Backend.FindObjectsFinal), op(OpFind)),
	row(27, "EncryptInit", b3r0(hsm.Backend.EncryptInit), initOp(OpEncrypt)),
	row(28, "Encrypt", b3r2(hsm.Backend.Encrypt), op(OpEncrypt)),
	row(29, "EncryptUpdate", b3r2(hsm.Backend.EncryptUpdate), op(OpEncrypt)),
	row(30, "EncryptFinal", b2r2(hsm.Backend.EncryptFinal), op(OpEncrypt)),
	row(31, "DecryptInit", b3r0(hsm.Backend.DecryptInit), initOp(OpDecrypt)),
	row(32, "Decrypt", b3r2(hsm.Backend.Decrypt), op(OpDecrypt)),
	row(33, "DecryptUpdate", b3r2(hsm.Backend.DecryptUpdate), op(OpDecrypt)),
	row(34, "DecryptFinal", b2r2(hsm.Backend.DecryptFinal), op(OpDecrypt)),
	row(35, "DigestInit", b2r0(hsm.Backend.DigestInit), initOp(OpDigest)),
	row(36, "Digest", b3r2(hsm.Backend.Digest), op(OpDigest)),
	row(37, "DigestUpdate", b2r0(hsm.Backend.DigestUpdate), op(OpDigest)),
	row(38, "DigestKey", b2r0(hsm.Backend.DigestKey), op(OpDigest)),
	row(39, "DigestFinal", b2r2(hsm.Backend.DigestFinal), op(OpDigest)),
	row(40, "SignInit", b3r0(hsm.Backend.SignInit), initOp(OpSign)),
	row(41, "Sign", b3r2(hsm.Backend.Sign), op(OpSign)),
	row(42, "SignUpdate", b2r0(hsm.Backend.SignUpdate), op(OpSign)),
	row(43, "SignFinal", b2r2(hsm.Backend.SignFinal), op(OpSign)),
	row(44, "SignRecoverInit", b3r0(hsm.Backend.SignRecoverInit), initOp(OpSignRecover)),
	row(45, "SignRecover", b3r2(hsm.Backend.SignRecover), op(OpSignRecover)),
	row(46, "VerifyInit", b3r0(hsm.Backend.VerifyInit), initOp(OpVerify)),
	row(47, "Verify", b3r0(hsm.Backend.Verify), op(OpVerify)),
	row(48, "VerifyUpdate", b2r0(hsm.Backend.VerifyUpdate), op(OpVerify)),
	row(49, "VerifyFinal", b2r0(hsm.Backend.VerifyFinal), op(OpVerify)),
	row(50, "VerifyRecoverInit", b3r0(hsm.Backend.VerifyRecoverInit), initOp(OpVerifyRecover)),
	row(51, "VerifyRecover", b3r2(hsm.Backend.VerifyRecover), op(OpVerifyRecover)),
	row(52, "DigestEncryptUpdate", b3r2(hsm.Backend.DigestEncryptUpdate), op(OpDigest|OpEncrypt)),
	row(53, "DecryptDigestUpdate", b3r2(hsm.Backend.DecryptDigestUpdate), op(OpDecrypt|OpDigest)),
	row(54, "SignEncryptUpdate", b3r2(hsm.Backend.SignEncryptUpdate), op(OpSign|OpEncrypt)),
	row(55, "DecryptVerifyUpdate", b3r2(hsm.Backend.DecryptVerifyUpdate), op(OpDecrypt|OpVerify)),
	row(56, "GenerateKey", b3r1(hsm.Backend.GenerateKey)),
	row(57, "GenerateKeyPair", b4r2(hsm.Backend.GenerateKeyPair)),
	row(58, "WrapKey", b5r2(hsm.Backend.WrapKey), safe),
	row(59, "UnwrapKey", b5r1(hsm.Backend.UnwrapKey)),
	row(60, "DeriveKey", b4r1(hsm.Backend.DeriveKey)),
	row(61, "SeedRandom", b2r0(hsm.Backend.SeedRandom), safe),
	row(62, "GenerateRandom", b2r1(hsm.Backend.GenerateRandom), safe),
	row(63, "GetFunctionStatus", b1r0(hsm.Backend.GetFunctionStatus), safe),
	row(64, "CancelFunction", b1r0(hsm.Backend.CancelFunction), safe),
	row(65, "GetOperationState", b2r2(hsm.Backend.GetOperationState)),
	row(66, "SetOperationState", b4r0(hsm.Backend.SetOperationState)),
	row(67, "WaitForSlotEvent", b1r1(hsm.Backend.WaitForSlotEvent), safe),
	row(68, "LoginUser", b4r0(hsm.Backend.LoginUser), wipe(2)),
	row(69, "SessionCancel", b2r0(hsm.Backend.SessionCancel), safe),
	row(70, "MessageEncryptInit", b3r0(hsm.Backend.MessageEncryptInit), initOp(OpMessageEncrypt)),
	row(71, "EncryptMessage", b5r2(hsm.Backend.EncryptMessage), op(OpMessageEncrypt)),
	row(72, "EncryptMessageBegin", b3r0(hsm.Backend.EncryptMessageBegin), op(OpMessageEncrypt)),
	row(73, "EncryptMessageNext", b5r2(hsm.Backend.EncryptMessageNext), op(OpMessageEncrypt)),
	row(74, "MessageEncryptFinal", b1r0(hsm.Backend.MessageEncryptFinal), op(OpMessageEncrypt)),
	row(75, "MessageDecryptInit", b3r0(hsm.Backend.MessageDecryptInit), initOp(OpMessageDecrypt)),
	row(76, "DecryptMessage", b5r2(hsm.Backend.DecryptMessage), op(OpMessageDecrypt)),
	row(77, "DecryptMessageBegin", b3r0(hsm.Backend.DecryptMessageBegin), op(OpMessageDecrypt)),
	row(78, "DecryptMessageNext", b5r2(hsm.Backend.DecryptMessageNext), op(OpMessageDecrypt)),
	row(79, "MessageDecryptFinal", b1r0(hsm.Backend.MessageDecryptFinal), op(OpMessageDecrypt)),
	row(80, "MessageSignInit", b3r0(hsm.Backend.MessageSignInit), initOp(OpMessageSign)),
	row(81, "SignMessage", b4r2(hsm.Backend.SignMessage), op(OpMessageSign)),
	row(82, "SignMessageBegin", b2r0(hsm.Backend.SignMessageBegin), op(OpMessageSign)),
	row(83, "SignMessageNext", b5r2(hsm.Backend.SignMessageNext), op(OpMessageSign)),
	row(84, "MessageSignFinal", b1r0(hsm.Backend.MessageSignFinal), op(OpMessageSign)),
	row(85, "MessageVerifyInit", b3r0(hsm.Backend.MessageVerifyInit), initOp(OpMessageVerify)),
	row(86, "VerifyMessage", b4r0(hsm.Backend.VerifyMessage), op(OpMessageVerify)),
	row(87, "VerifyMessageBegin", b2r0(hsm.Backend.VerifyMessageBegin), op(OpMessageVerify)),
	row(88, "VerifyMessageNext", b5r0(hsm.Backend.VerifyMessageNext), op(OpMessageVerify)),
	row(89, "MessageVerifyFinal", b1r0(hsm.Backend.MessageVerifyFinal), op(OpMessageVerify)),
	row(90, "MessageSignMechanism", b2r1(hsm.Backend.MessageSignMechanism), safe),
	row(91, "VerifySignatureInit", b4r0(hsm.Backend.VerifySignatureInit), initOp(OpVerify)),
	row(92, "VerifySignature", b2r0(hsm.Backend.VerifySignature), op(OpVerify)),
	row(93, "VerifySignatureUpdate", b2r0(hsm.Backend.VerifySignatureUpdate), op(OpVerify)),
	row(94, "VerifySignatureFinal", b1r0(hsm.Backend.VerifySignatureFinal), op(OpVerify)),
	row(95, "GetSessionValidationFlags", b2r1(hsm.Backend.GetSessionValidationFlags), safe),
	row(96, "EncapsulateKey", b5r3(encapsulateKey), adapted),
	row(97, "DecapsulateKey", b5r1(hsm.Backend.DecapsulateKey)),
}

// encapsulateKey is C_EncapsulateKey on the wire: the caller's ciphertext
// buffer goes out as its capacity (-1 for NULL) and the ciphertext comes
// back as a third result, which the client copies into the caller's buffer.
func encapsulateKey(be hsm.Backend, s ck.SessionHandle, m ck.Mechanism, pub ck.ObjectHandle, t []ck.Attribute,
	ctCap int) (int, ck.ObjectHandle, []byte, error) {
	var ct []byte
	if ctCap >= 0 {
		ct = make([]byte, ctCap)
	}
	n, h, err := be.EncapsulateKey(s, m, pub, t, ct)
	if err != nil || ct == nil || n < 0 || n > len(ct) {
		return n, h, nil, err
	}
	return n, h, ct[:n], nil
}

var (
	byID   []*Call
	byName = map[string]*Call{}
)

func init() {
	for _, c := range calls {
		for _, t := range c.binding.args {
			wt := TypeOf(t)
			if wt == nil {
				panic(fmt.Sprintf("wire: %s: no encoding for argument type %v", c.Name, t))
			}
			c.Args = append(c.Args, wt)
		}
		for _, t := range c.binding.results {
			wt := TypeOf(t)
			if wt == nil {
				panic(fmt.Sprintf("wire: %s: no encoding for result type %v", c.Name, t))
			}
			c.Results = append(c.Results, wt)
		}
		for i, t := range c.Args {
			if t == tMechanism || t == tParam {
				c.InOut = append(c.InOut, i)
			}
		}
		if len(c.Args) > 0 {
			c.Session = c.Args[0] == tSessionHandle
			c.Slot = c.Args[0] == tSlotID
		}
		for int(c.ID) >= len(byID) {
			byID = append(byID, nil)
		}
		if byID[c.ID] != nil || byName[c.Name] != nil || c.ID == 0 {
			panic(fmt.Sprintf("wire: call %d %s defined twice", c.ID, c.Name))
		}
		byID[c.ID] = c
		byName[c.Name] = c
	}
}

// Calls returns the call table in id order.
func Calls() []*Call { return append([]*Call(nil), calls...) }

// ByID returns the call with id, or nil.
func ByID(id CallID) *Call {
	if int(id) < len(byID) {
		return byID[id]
	}
	return nil
}

// ByName returns the call bound to the Backend method name, or nil.
func ByName(name string) *Call { return byName[name] }

// MustCall is ByName for names known at compile time.
func MustCall(name string) *Call {
	c := byName[name]
	if c == nil {
		panic("wire: no call " + name)
	}
	return c
}

// Func is the bound function (for tests and the client generator).
func (c *Call) Func() any { return c.binding.fn }

// ArgTypes and ResultTypes are the Go types of the bound function.
func (c *Call) ArgTypes() []reflect.Type    { return c.binding.args }
func (c *Call) ResultTypes() []reflect.Type { return c.binding.results }

// Invoke runs the call on be.
func (c *Call) Invoke(be hsm.Backend, args []any) ([]any, error) { return c.binding.invoke(be, args) }

// SessionOffset is where a CALL payload holds the session handle of a
// call with Session set: right after the call id. A client patches it when
// it re-sends a call on a re-opened session.
const SessionOffset = 2

// AppendCall appends a CALL payload: the call id and the arguments. It
// fails only for a mechanism parameter of a Go type with no encoding.
func (c *Call) AppendCall(dst []byte, args []any) ([]byte, error) {
	if len(args) != len(c.Args) {
		return dst, fmt.Errorf("wire: %s takes %d arguments, got %d", c.Name, len(c.Args), len(args))
	}
	e := getEncoder(dst)
	e.U16(uint16(c.ID))
	for i, t := range c.Args {
		t.enc(e, args[i])
	}
	return putEncoder(e)
}

// Span is the bytes of one in/out parameter in a CALL payload.
type Span struct{ Start, End int }

// Decoded is a decoded CALL payload.
type Decoded struct {
	Call *Call
	Args []any
	// Params holds the encoded parameter of each of Call.InOut, so the
	// server can tell whether the engine changed it. It is a copy, which
	// may hold a secret (a PBKDF2 password): zeroise it after the call.
	Params [][]byte
}

// DecodeCall decodes a CALL payload. limit bounds the int arguments
// (Decoder.Limit): no output capacity, count or random length beyond what
// a frame can carry back. An unknown call id is CKR_FUNCTION_NOT_SUPPORTED;
// a malformed argument CKR_ARGUMENTS_BAD, or CKR_MECHANISM_PARAM_INVALID
// inside a mechanism parameter.
func DecodeCall(p []byte, limit int) (Decoded, error) {
	d := getDecoder(p, limit)
	defer putDecoder(d)
	id := CallID(d.U16())
	if d.err != nil {
		return Decoded{}, d.err
	}
	c := ByID(id)
	if c == nil {
		return Decoded{}, &DecodeError{RV: ck.CKR_FUNCTION_NOT_SUPPORTED, Msg: fmt.Sprintf("unknown call %d", id)}
	}
	out := Decoded{Call: c, Args: make([]any, len(c.Args))}
	if len(c.InOut) > 0 {
		out.Params = make([][]byte, 0, len(c.InOut))
	}
	j := 0
	for i, t := range c.Args {
		start := d.off
		out.Args[i] = t.dec(d)
		if d.err != nil {
			out.zeroise()
			return Decoded{Call: c}, d.err
		}
		if j < len(c.InOut) && c.InOut[j] == i {
			if t == tMechanism {
				start += 8 // the mechanism type; the parameter follows
			}
			// A copy: the caller zeroises the frame, and the server
			// compares the engine's parameter with this after the call.
			out.Params = append(out.Params, append([]byte(nil), p[start:d.off]...))
			j++
		}
	}
	if err := d.Done(); err != nil {
		out.zeroise()
		return Decoded{Call: c}, err
	}
	return out, nil
}

// zeroise clears the byte-string arguments decoded so far and the
// parameter copies, for a call that will not run.
func (dc *Decoded) zeroise() {
	for _, a := range dc.Args {
		if b, ok := a.([]byte); ok {
			clear(b)
		}
	}
	for _, p := range dc.Params {
		clear(p)
	}
}

// paramOf is the parameter inside an in/out argument.
func paramOf(v any) any {
	if m, ok := v.(ck.Mechanism); ok {
		return m.Param
	}
	return v
}

// AppendResult appends a RESULT payload for a call that ran: the return
// code, the results, and for each in/out argument a byte that says whether
// the engine changed its parameter, followed by the new parameter if it
// did. orig is Decoded.Params. The flags of the frame are FlagValues.
func (c *Call) AppendResult(dst []byte, rv ck.RV, results []any, args []any, orig [][]byte) []byte {
	e := getEncoder(dst)
	e.U64(uint64(rv))
	for i, t := range c.Results {
		var v any
		if i < len(results) {
			v = results[i]
		}
		t.enc(e, v)
	}
	for j, i := range c.InOut {
		mark := len(e.B)
		e.U8(1)
		start := len(e.B)
		EncodeParam(e, paramOf(args[i]))
		if j < len(orig) && bytes.Equal(e.B[start:], orig[j]) {
			e.B = e.B[:mark]
			e.U8(0)
		}
	}
	b, _ := putEncoder(e)
	return b
}

// AppendCode appends a RESULT payload that is only a return code (frame
// flags without FlagValues).
func AppendCode(dst []byte, rv ck.RV) []byte {
	return (&Encoder{B: dst}).appendU64(uint64(rv))
}

func (e *Encoder) appendU64(v uint64) []byte { e.U64(v); return e.B }

// Result is a decoded RESULT payload.
type Result struct {
	RV ck.RV
	// Values are the results (nil without FlagValues).
	Values []any
	// Params has one entry per in/out argument: the new parameter, or nil
	// when unchanged; Changed tells the two apart.
	Params  []any
	Changed []bool
}

// DecodeResult decodes the RESULT payload of a call to c.
func (c *Call) DecodeResult(p []byte, flags byte) (Result, error) {
	d := getDecoder(p, 0)
	defer putDecoder(d)
	r := Result{RV: ck.RV(d.U64())}
	if flags&FlagValues == 0 {
		return r, d.Done()
	}
	r.Values = make([]any, len(c.Results))
	for i, t := range c.Results {
		r.Values[i] = t.dec(d)
	}
	if len(c.InOut) > 0 {
		r.Params = make([]any, len(c.InOut))
		r.Changed = make([]bool, len(c.InOut))
		for j := range c.InOut {
			if r.Changed[j] = d.Bool(); r.Changed[j] {
				r.Params[j] = DecodeParam(d)
			}
		}
	}
	if err := d.Done(); err != nil {
		return Result{}, err
	}
	return r, nil
}
