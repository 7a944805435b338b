package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Frame layout (spec.md, "Frames"): a 16-byte header and a payload.
//
//	offset  size  field
//	0       4     payload length (big-endian), at most the receiver's MaxFrame
//	4       1     type
//	5       1     flags
//	6       2     reserved, zero
//	8       8     request id (big-endian)
//	16      n     payload
const HeaderSize = 16

// FrameType is the header's type byte.
type FrameType byte

// Frame types.
const (
	FrameHello   FrameType = 0x01 // client → server, first frame
	FrameWelcome FrameType = 0x02 // server → client, answer to HELLO
	FrameCall    FrameType = 0x03 // client → server: one call
	FrameResult  FrameType = 0x04 // server → client: one call's answer
	FrameBatch   FrameType = 0x05 // either way: several CALL or RESULT frames in one
	FramePing    FrameType = 0x06 // either way: keepalive
	FramePong    FrameType = 0x07 // answer to PING, same id and payload
	FrameGoAway  FrameType = 0x08 // server → client: no new calls; closing
)

func (t FrameType) String() string {
	switch t {
	case FrameHello:
		return "HELLO"
	case FrameWelcome:
		return "WELCOME"
	case FrameCall:
		return "CALL"
	case FrameResult:
		return "RESULT"
	case FrameBatch:
		return "BATCH"
	case FramePing:
		return "PING"
	case FramePong:
		return "PONG"
	case FrameGoAway:
		return "GOAWAY"
	}
	return fmt.Sprintf("FRAME_%#02x", byte(t))
}

// RESULT flags.
const (
	// FlagNotRun: the server did not execute the call (saturated, or
	// shutting down). The client may send it again, to this server later
	// or to another connection.
	FlagNotRun byte = 0x01
	// FlagValues: the payload carries the call's result values after the
	// return code. Without it the payload is the return code alone (the
	// call was not run, or its arguments did not decode).
	FlagValues byte = 0x02
	// FlagTryElsewhere (version 2): the call ran and failed (the return
	// code says how, CKR_DEVICE_ERROR) because this member of a cluster
	// cannot reach its leader; another member may serve it. A client may
	// move to another member and send the call again there if it is safe
	// to run twice (spec.md, "Retry rules"). Never set on a version-1
	// connection.
	FlagTryElsewhere byte = 0x04
)

// Limits.
const (
	// DefaultMaxFrame is the payload size a peer accepts unless it says
	// otherwise in the handshake.
	DefaultMaxFrame = 16 << 20
	// MinMaxFrame is the smallest limit a peer may announce: every call
	// with small arguments must fit.
	MinMaxFrame = 64 << 10
	// MaxBatchItems bounds the frames in one BATCH.
	MaxBatchItems = 4096
	// PingMax bounds a PING payload.
	PingMax = 8
)

// Header is a parsed frame header.
type Header struct {
	Len   int
	Type  FrameType
	Flags byte
	ID    uint64
}

// ParseHeader parses the first HeaderSize bytes of b. A payload longer than
// max, a reserved field that is not zero or an unknown type is a protocol
// error: the receiver drops the connection (after GOAWAY where it can).
func ParseHeader(b []byte, max int) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("wire: short header (%d bytes)", len(b))
	}
	h := Header{
		Len:   int(binary.BigEndian.Uint32(b[0:4])),
		Type:  FrameType(b[4]),
		Flags: b[5],
		ID:    binary.BigEndian.Uint64(b[8:16]),
	}
	if uint32(h.Len) > uint32(max) || binary.BigEndian.Uint32(b[0:4]) > uint32(max) {
		return h, &FrameTooLarge{Len: int64(binary.BigEndian.Uint32(b[0:4])), Max: max}
	}
	if b[6] != 0 || b[7] != 0 {
		return h, fmt.Errorf("wire: reserved header bytes %#x %#x", b[6], b[7])
	}
	if h.Type < FrameHello || h.Type > FrameGoAway {
		return h, fmt.Errorf("wire: unknown frame type %#x", byte(h.Type))
	}
	return h, nil
}

// FrameTooLarge is a header announcing more than the receiver accepts.
type FrameTooLarge struct {
	Len int64
	Max int
}

func (e *FrameTooLarge) Error() string {
	return fmt.Sprintf("wire: frame of %d bytes exceeds the limit of %d", e.Len, e.Max)
}

// AppendHeader appends a header for a payload of n bytes.
func AppendHeader(dst []byte, t FrameType, flags byte, id uint64, n int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, byte(t), flags, 0, 0)
	return binary.BigEndian.AppendUint64(dst, id)
}

// AppendFrame appends a whole frame.
func AppendFrame(dst []byte, t FrameType, flags byte, id uint64, payload []byte) []byte {
	return append(AppendHeader(dst, t, flags, id, len(payload)), payload...)
}

// BeginFrame appends a header with a zero length and returns its offset;
// EndFrame fills in the length once the payload is appended. This builds a
// frame in place with no copy of the payload.
func BeginFrame(dst []byte, t FrameType, flags byte, id uint64) ([]byte, int) {
	return AppendHeader(dst, t, flags, id, 0), len(dst)
}

// EndFrame sets the length of the frame that starts at off.
func EndFrame(b []byte, off int) {
	binary.BigEndian.PutUint32(b[off:off+4], uint32(len(b)-off-HeaderSize))
}

// Frame is a parsed frame whose payload aliases the buffer it was parsed
// from.
type Frame struct {
	Header
	Payload []byte
}

// SplitBatch parses a BATCH payload: a count and that many complete frames
// (header and payload) back to back. Items may be CALL frames (client to
// server) or RESULT frames (server to client), never BATCH; each is at most
// max bytes of payload, and they fill the payload exactly.
func SplitBatch(payload []byte, max int, want FrameType) ([]Frame, error) {
	return AppendBatchItems(nil, payload, max, want)
}

// AppendBatchItems is SplitBatch appending the items to dst, so that a
// reader can reuse one slice for every batch it receives. On error it
// returns dst as it was given.
func AppendBatchItems(dst []Frame, payload []byte, max int, want FrameType) ([]Frame, error) {
	if len(payload) < 4 {
		return dst, fmt.Errorf("wire: short batch")
	}
	n := binary.BigEndian.Uint32(payload)
	if n == 0 || n > MaxBatchItems || uint64(n)*HeaderSize > uint64(len(payload)-4) {
		return dst, fmt.Errorf("wire: batch of %d items in %d bytes", n, len(payload))
	}
	out := slices.Grow(dst, int(n))
	rest := payload[4:]
	for range n {
		h, err := ParseHeader(rest, max)
		if err != nil {
			return dst, err
		}
		if h.Type != want {
			return dst, fmt.Errorf("wire: %v inside a batch of %v", h.Type, want)
		}
		if h.Len > len(rest)-HeaderSize {
			return dst, fmt.Errorf("wire: batch item of %d bytes overruns the batch", h.Len)
		}
		out = append(out, Frame{Header: h, Payload: rest[HeaderSize : HeaderSize+h.Len : HeaderSize+h.Len]})
		rest = rest[HeaderSize+h.Len:]
	}
	if len(rest) != 0 {
		return dst, fmt.Errorf("wire: %d bytes after the last batch item", len(rest))
	}
	return out, nil
}

// AppendBatchHeader starts a BATCH frame of n items whose total payload
// (the count word included) is size bytes; append the n frames after it.
func AppendBatchHeader(dst []byte, n, size int) []byte {
	dst = AppendHeader(dst, FrameBatch, 0, 0, size)
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// BatchOverhead is the bytes a BATCH adds around its items.
const BatchOverhead = HeaderSize + 4
