package wire

import (
	"fmt"
	"slices"
)

// Magic opens the HELLO and WELCOME payloads: a peer speaking another
// protocol is told apart at once.
const Magic = "GHSM"

// Version is the newest protocol version this package implements.
// Version 2 is version 1 plus what a cluster's clients need to spread
// and fail over (spec.md, "Versioning"): the load and status fields at the
// end of WELCOME, the PROBE flag of HELLO, and the TRY_ELSEWHERE flag of
// RESULT. Every other byte is the same in both.
const Version uint16 = 2

// Versions lists the versions this package can speak, best first.
var Versions = []uint16{2, 1}

// HELLO flags (the frame header's flags byte).
const (
	// HelloProbe asks for WELCOME only: a server speaking version 2 answers
	// WELCOME, opens no engine, and closes the connection. A client
	// measures members' load this way (spec.md, "Probes"). A version-1
	// server ignores the flag (HELLO had no flags) and opens the
	// connection as usual; the client closes it after WELCOME.
	HelloProbe byte = 0x01
)

// WELCOME status bits (version 2).
const (
	// StatusNoLeader: the member cannot reach its cluster's leader now,
	// so calls that need the cluster (a read barrier, a write) fail; a
	// client should prefer another member.
	StatusNoLeader uint32 = 1 << 0
)

// MaxName bounds the free-text names in the handshake.
const MaxName = 256

// Hello is the client's first frame (spec.md, "Handshake").
type Hello struct {
	// Versions the client speaks, in its order of preference.
	Versions []uint16
	// MaxFrame is the largest payload the client accepts.
	MaxFrame uint32
	// Name says who the client is, for the server's log (a program name).
	Name string
}

// Welcome is the server's answer.
type Welcome struct {
	// Version chosen; 0 when the client offered none the server speaks,
	// after which the server closes the connection.
	Version uint16
	// MaxFrame is the largest payload the server accepts.
	MaxFrame uint32
	// MaxCalls is the number of calls the client may have in flight on the
	// connection; more are answered busy.
	MaxCalls uint32
	// IdleMillis is how long the server waits for a frame before it closes
	// an idle connection; a client sends PING well within it.
	IdleMillis uint32
	// CallMillis is the server's per-call deadline.
	CallMillis uint32
	// Identity is the name the server gave the client's certificate.
	Identity string
	// Server names the appliance, for the client's log.
	Server string

	// Version 2 only (absent from a version-1 WELCOME): the appliance's
	// load when it answered, for clients that choose among the members
	// of a cluster. Conns is the connections it serves other than this
	// one (those that opened an engine: probes are not counted), Calls
	// the calls in flight over all its connections; their sum is the
	// member's load. Status holds Status* bits.
	Conns, Calls, Status uint32
}

// Load is the member's load as WELCOME reports it: connections plus
// calls in flight (spec.md, "Handshake").
func (w Welcome) Load() uint64 { return uint64(w.Conns) + uint64(w.Calls) }

// AppendHello appends a HELLO payload.
func AppendHello(dst []byte, h Hello) []byte {
	e := Encoder{B: append(dst, Magic...)}
	e.U16(uint16(len(h.Versions)))
	for _, v := range h.Versions {
		e.U16(v)
	}
	e.U32(h.MaxFrame)
	e.String(h.Name)
	return e.B
}

// ParseHello parses a HELLO payload.
func ParseHello(p []byte) (Hello, error) {
	d := NewDecoder(p, 0)
	if string(d.take(len(Magic))) != Magic {
		return Hello{}, fmt.Errorf("wire: not a gohsm HELLO")
	}
	n := int(d.U16())
	if n == 0 || n > 64 || d.Remaining() < 2*n {
		return Hello{}, fmt.Errorf("wire: HELLO with %d versions", n)
	}
	h := Hello{Versions: make([]uint16, n)}
	for i := range h.Versions {
		h.Versions[i] = d.U16()
	}
	h.MaxFrame = d.U32()
	h.Name = d.String()
	if err := d.Done(); err != nil {
		return Hello{}, err
	}
	if h.MaxFrame < MinMaxFrame {
		return Hello{}, fmt.Errorf("wire: HELLO max frame %d below %d", h.MaxFrame, MinMaxFrame)
	}
	if len(h.Name) > MaxName {
		return Hello{}, fmt.Errorf("wire: HELLO name of %d bytes", len(h.Name))
	}
	return h, nil
}

// Choose picks the first of the client's versions the server speaks, or 0.
func Choose(offered []uint16) uint16 {
	for _, v := range offered {
		if slices.Contains(Versions, v) {
			return v
		}
	}
	return 0
}

// AppendWelcome appends a WELCOME payload.
func AppendWelcome(dst []byte, w Welcome) []byte {
	e := Encoder{B: append(dst, Magic...)}
	e.U16(w.Version)
	e.U32(w.MaxFrame)
	e.U32(w.MaxCalls)
	e.U32(w.IdleMillis)
	e.U32(w.CallMillis)
	e.String(w.Identity)
	e.String(w.Server)
	if w.Version >= 2 {
		e.U32(w.Conns)
		e.U32(w.Calls)
		e.U32(w.Status)
	}
	return e.B
}

// ParseWelcome parses a WELCOME payload.
func ParseWelcome(p []byte) (Welcome, error) {
	d := NewDecoder(p, 0)
	if string(d.take(len(Magic))) != Magic {
		return Welcome{}, fmt.Errorf("wire: not a gohsm WELCOME")
	}
	w := Welcome{Version: d.U16(), MaxFrame: d.U32(), MaxCalls: d.U32(), IdleMillis: d.U32(), CallMillis: d.U32(),
		Identity: d.String(), Server: d.String()}
	if w.Version >= 2 {
		w.Conns, w.Calls, w.Status = d.U32(), d.U32(), d.U32()
	}
	if err := d.Done(); err != nil {
		return Welcome{}, err
	}
	if w.Version != 0 && (w.MaxFrame < MinMaxFrame || w.MaxCalls == 0) {
		return Welcome{}, fmt.Errorf("wire: WELCOME limits: max frame %d, %d calls", w.MaxFrame, w.MaxCalls)
	}
	if len(w.Identity) > MaxName || len(w.Server) > MaxName {
		return Welcome{}, fmt.Errorf("wire: WELCOME names too long")
	}
	return w, nil
}

// GoAway reasons.
const (
	GoAwayShutdown      uint32 = 0 // the server is stopping; reconnect later
	GoAwayProtocolError uint32 = 1 // the client broke the protocol
	GoAwayIdle          uint32 = 2 // no frame within the idle timeout
	GoAwayFrameTooLarge uint32 = 3 // a frame exceeded the server's MaxFrame
)

// GoAway is the GOAWAY payload.
type GoAway struct {
	Reason  uint32
	Message string
}

// AppendGoAway appends a GOAWAY payload.
func AppendGoAway(dst []byte, g GoAway) []byte {
	e := Encoder{B: dst}
	e.U32(g.Reason)
	e.String(g.Message)
	return e.B
}

// ParseGoAway parses a GOAWAY payload.
func ParseGoAway(p []byte) (GoAway, error) {
	d := NewDecoder(p, 0)
	g := GoAway{Reason: d.U32(), Message: d.String()}
	if err := d.Done(); err != nil {
		return GoAway{}, err
	}
	if len(g.Message) > MaxName {
		return GoAway{}, fmt.Errorf("wire: GOAWAY message too long")
	}
	return g, nil
}
