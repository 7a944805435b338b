package wire

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// The fuzz targets cover every decoder a peer reaches. Their seed corpora
// in testdata/fuzz are frames recorded from a real client-server run
// (firmware-sim/client's TestRecordWireCorpus), so fuzzing starts from
// traffic, not from nothing. Beyond "never panics", each checks that a
// decoded value encodes back to exactly the bytes it came from: the
// encoding is canonical, so there is one way to say each thing.

const fuzzLimit = 1 << 20

func FuzzFrame(f *testing.F) {
	f.Add(AppendFrame(nil, FrameCall, 0, 1, []byte{0, 3}))
	f.Add(AppendBatchHeader(nil, 1, 4+HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b, fuzzLimit)
		if err != nil || h.Len > len(b)-HeaderSize {
			return
		}
		p := b[HeaderSize : HeaderSize+h.Len]
		for _, want := range []FrameType{FrameCall, FrameResult} {
			items, err := SplitBatch(p, fuzzLimit, want)
			if err != nil {
				continue
			}
			n := 4
			for _, it := range items {
				if it.Type != want || len(it.Payload) != it.Len {
					t.Fatalf("item %+v", it.Header)
				}
				n += HeaderSize + it.Len
			}
			if n != len(p) {
				t.Fatalf("items cover %d of %d bytes", n, len(p))
			}
		}
	})
}

func FuzzHandshake(f *testing.F) {
	f.Add(AppendHello(nil, Hello{Versions: Versions, MaxFrame: DefaultMaxFrame, Name: "seed"}))
	f.Add(AppendWelcome(nil, Welcome{Version: 1, MaxFrame: DefaultMaxFrame, MaxCalls: 1, Identity: "i"}))
	f.Add(AppendWelcome(nil, Welcome{Version: 2, MaxFrame: DefaultMaxFrame, MaxCalls: 1, Identity: "i",
		Conns: 3, Calls: 7, Status: StatusNoLeader}))
	f.Add(AppendGoAway(nil, GoAway{Reason: GoAwayShutdown, Message: "bye"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := ParseHello(b); err == nil {
			if !bytes.Equal(AppendHello(nil, h), b) {
				t.Fatal("HELLO not canonical")
			}
		}
		if w, err := ParseWelcome(b); err == nil {
			if !bytes.Equal(AppendWelcome(nil, w), b) {
				t.Fatal("WELCOME not canonical")
			}
		}
		if g, err := ParseGoAway(b); err == nil {
			if !bytes.Equal(AppendGoAway(nil, g), b) {
				t.Fatal("GOAWAY not canonical")
			}
		}
	})
}

// FuzzValue decodes one value of the type the first byte picks (every
// wire type: info structures, templates, attribute requests and results,
// lists, mechanisms, parameters, scalars).
func FuzzValue(f *testing.F) {
	for i, ty := range Types() {
		for v := range 3 {
			var e Encoder
			ty.Encode(&e, sample(ty.Go, v))
			f.Add(append([]byte{byte(i)}, e.B...))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		all := Types()
		ty := all[int(b[0])%len(all)]
		d := NewDecoder(b[1:], fuzzLimit)
		v := ty.Decode(d)
		if d.Err() != nil {
			return
		}
		used := b[1 : 1+d.Offset()]
		var e Encoder
		ty.Encode(&e, v)
		if e.Err != nil || !bytes.Equal(e.B, used) {
			t.Fatalf("%s: %x re-encodes as %x", ty.Name, used, e.B)
		}
		d2 := NewDecoder(e.B, fuzzLimit)
		if v2 := ty.Decode(d2); d2.Done() != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("%s: second decoding differs", ty.Name)
		}
	})
}

func FuzzParam(f *testing.F) {
	for _, p := range params() {
		var e Encoder
		EncodeParam(&e, p)
		f.Add(e.B)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b, fuzzLimit)
		p := DecodeParam(d)
		if d.Done() == nil {
			var e Encoder
			EncodeParam(&e, p)
			if !bytes.Equal(e.B, b) {
				t.Fatalf("%x re-encodes as %x", b, e.B)
			}
		}
		d = NewDecoder(b, fuzzLimit)
		m := DecodeMechanism(d)
		if d.Done() == nil {
			var e Encoder
			EncodeMechanism(&e, m)
			if !bytes.Equal(e.B, b) {
				t.Fatalf("mechanism %x re-encodes as %x", b, e.B)
			}
		}
	})
}

// FuzzCallArgs is the server's whole argument decoding: a CALL payload.
func FuzzCallArgs(f *testing.F) {
	for _, c := range Calls() {
		args := make([]any, len(c.Args))
		for i, ty := range c.ArgTypes() {
			args[i] = sample(ty, i)
		}
		p, _ := c.AppendCall(nil, args)
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dec, err := DecodeCall(b, fuzzLimit)
		if err != nil {
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		p, err := dec.Call.AppendCall(nil, dec.Args)
		if err != nil || !bytes.Equal(p, b) {
			t.Fatalf("%s: %x re-encodes as %x (%v)", dec.Call.Name, b, p, err)
		}
	})
}

// FuzzResult is the client's decoding of an answer: two bytes of call id,
// the frame flags, then the RESULT payload.
func FuzzResult(f *testing.F) {
	for _, c := range Calls() {
		results := make([]any, len(c.Results))
		for i, ty := range c.ResultTypes() {
			results[i] = sample(ty, i)
		}
		args := make([]any, len(c.Args))
		for i, ty := range c.ArgTypes() {
			args[i] = sample(ty, i)
		}
		b := binary.BigEndian.AppendUint16(nil, uint16(c.ID))
		b = append(b, FlagValues)
		f.Add(c.AppendResult(b, 0, results, args, nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 3 {
			return
		}
		c := ByID(CallID(binary.BigEndian.Uint16(b)))
		if c == nil {
			return
		}
		r, err := c.DecodeResult(b[3:], b[2])
		if err == nil && b[2]&FlagValues != 0 && len(r.Values) != len(c.Results) {
			t.Fatalf("%s: %d values", c.Name, len(r.Values))
		}
	})
}
