package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/gohsm/gohsm/hsm/ck"
)

// NilLen is the length word of an absent byte string (a NULL pointer in C,
// a nil slice in Go), as opposed to a present, empty one. The engine tells
// the two apart in a few places (C_EncapsulateKey's ciphertext buffer, a
// mechanism parameter given as an empty string), so the wire does too.
const NilLen = 0xFFFFFFFF

// Encoder appends values to B in the wire encoding (spec.md, "Values").
// Appending cannot fail; limits are the receiver's to check.
type Encoder struct {
	B []byte
	// Err is set when a value has no encoding (a mechanism parameter of a
	// Go type the protocol does not know); the bytes are then unusable.
	Err error
}

func (e *Encoder) U8(v byte)    { e.B = append(e.B, v) }
func (e *Encoder) U16(v uint16) { e.B = binary.BigEndian.AppendUint16(e.B, v) }
func (e *Encoder) U32(v uint32) { e.B = binary.BigEndian.AppendUint32(e.B, v) }
func (e *Encoder) U64(v uint64) { e.B = binary.BigEndian.AppendUint64(e.B, v) }

// Bool is one byte, 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.U8(1)
	} else {
		e.U8(0)
	}
}

// Int is a Go int (a buffer capacity, a count) as a signed 64-bit integer.
func (e *Encoder) Int(v int) { e.U64(uint64(int64(v))) }

// Bytes is a length word and the bytes; nil is the length word NilLen.
func (e *Encoder) Bytes(b []byte) {
	if b == nil {
		e.U32(NilLen)
		return
	}
	e.U32(uint32(len(b)))
	e.B = append(e.B, b...)
}

// String is a length word and the bytes (never absent).
func (e *Encoder) String(s string) {
	e.U32(uint32(len(s)))
	e.B = append(e.B, s...)
}

// DecodeError is a malformed value. RV is what a server answers the call
// with: CKR_MECHANISM_PARAM_INVALID inside a mechanism parameter (what the C
// module answers for a malformed structure), CKR_ARGUMENTS_BAD elsewhere.
type DecodeError struct {
	RV  ck.RV
	Msg string
}

func (e *DecodeError) Error() string { return fmt.Sprintf("wire: %s (%v)", e.Msg, e.RV) }

// Unwrap makes the error carry its code for hsm.ToRV.
func (e *DecodeError) Unwrap() error { return e.RV }

// Decoder reads values from a buffer. The first error sticks: later reads
// return zero values, so a decoding function can read a whole structure and
// check Err once.
//
// Byte strings are copied out of the buffer, so the caller may zeroise the
// frame as soon as it is decoded (it may hold a PIN or plaintext) and the
// engine may keep what it was given, as it may from the C module.
type Decoder struct {
	b   []byte
	off int
	err error
	// Limit bounds the int values an argument may carry (-1..Limit) and so
	// what an engine may be asked to allocate for an output; 0 means no
	// bound beyond the platform's int (used for results).
	Limit int
	// inParam > 0 while a mechanism parameter is decoded.
	inParam int
}

// NewDecoder reads b; limit is Decoder.Limit.
func NewDecoder(b []byte, limit int) *Decoder { return &Decoder{b: b, Limit: limit} }

// The call and result paths (DecodeCall, AppendResult, AppendCall,
// DecodeResult) reuse their Decoders and Encoders: a value's coder takes
// them through a function value, so they escape to the heap, and a batch
// makes thousands of them a second (BenchmarkSignBatch). A reused one is
// reset, so it holds no reference to the bytes it read or wrote.
var (
	decoders = sync.Pool{New: func() any { return new(Decoder) }}
	encoders = sync.Pool{New: func() any { return new(Encoder) }}
)

func getDecoder(b []byte, limit int) *Decoder {
	d := decoders.Get().(*Decoder)
	*d = Decoder{b: b, Limit: limit}
	return d
}

func putDecoder(d *Decoder) {
	*d = Decoder{}
	decoders.Put(d)
}

func getEncoder(dst []byte) *Encoder {
	e := encoders.Get().(*Encoder)
	*e = Encoder{B: dst}
	return e
}

// putEncoder returns e's bytes and error and gives e back.
func putEncoder(e *Encoder) ([]byte, error) {
	b, err := e.B, e.Err
	*e = Encoder{}
	encoders.Put(e)
	return b, err
}

// Err is the first error, or nil.
func (d *Decoder) Err() error { return d.err }

// Remaining is the number of unread bytes.
func (d *Decoder) Remaining() int { return len(d.b) - d.off }

// Offset is the read position.
func (d *Decoder) Offset() int { return d.off }

// Fail records a malformed input (the first failure wins).
func (d *Decoder) Fail(format string, args ...any) {
	if d.err != nil {
		return
	}
	rv := ck.CKR_ARGUMENTS_BAD
	if d.inParam > 0 {
		rv = ck.CKR_MECHANISM_PARAM_INVALID
	}
	d.err = &DecodeError{RV: rv, Msg: fmt.Sprintf(format, args...)}
}

// Done fails unless every byte was read: trailing bytes are an encoding
// error, not padding.
func (d *Decoder) Done() error {
	if d.err == nil && d.off != len(d.b) {
		d.Fail("%d trailing bytes", len(d.b)-d.off)
	}
	return d.err
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.Fail("truncated: need %d bytes at offset %d, have %d", n, d.off, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

func (d *Decoder) U8() byte {
	p := d.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *Decoder) U16() uint16 {
	p := d.take(2)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func (d *Decoder) U32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (d *Decoder) U64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// Bool accepts only 0 and 1.
func (d *Decoder) Bool() bool {
	switch v := d.U8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.Fail("boolean %d", v)
		return false
	}
}

// Int accepts -1 and 0..Limit (or, with no Limit, any value an int holds).
func (d *Decoder) Int() int {
	v := int64(d.U64())
	if d.err != nil {
		return 0
	}
	hi := int64(math.MaxInt)
	if d.Limit > 0 {
		hi = int64(d.Limit)
	}
	if v < -1 || v > hi {
		d.Fail("integer %d outside -1..%d", v, hi)
		return 0
	}
	return int(v)
}

// Bytes returns a copy of a byte string; nil for an absent one.
func (d *Decoder) Bytes() []byte {
	n := d.U32()
	if d.err != nil || n == NilLen {
		return nil
	}
	p := d.take(int(n))
	if p == nil {
		return nil
	}
	return append(make([]byte, 0, len(p)), p...)
}

// String reads a string; the absent length is malformed here.
func (d *Decoder) String() string {
	n := d.U32()
	if d.err != nil {
		return ""
	}
	if n == NilLen {
		d.Fail("absent string")
		return ""
	}
	return string(d.take(int(n)))
}

// Count reads a list length and checks that the list can fit: each element
// takes at least minSize bytes, so a count the remaining input cannot hold
// is refused before anything is allocated for it.
func (d *Decoder) Count(minSize int) int {
	n := d.U32()
	if d.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if uint64(n)*uint64(minSize) > uint64(d.Remaining()) {
		d.Fail("list of %d elements in %d bytes", n, d.Remaining())
		return 0
	}
	return int(n)
}
