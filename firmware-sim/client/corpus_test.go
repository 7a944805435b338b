package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
)

// splitter cuts a byte stream into frames.
type splitter struct {
	mu     sync.Mutex
	buf    []byte
	frames [][]byte
}

func (s *splitter) feed(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, b...)
	for len(s.buf) >= wire.HeaderSize {
		n := int(binary.BigEndian.Uint32(s.buf)) + wire.HeaderSize
		if len(s.buf) < n {
			return
		}
		s.frames = append(s.frames, append([]byte(nil), s.buf[:n]...))
		s.buf = s.buf[n:]
	}
}

// tap records both directions of a connection.
type tap struct {
	io.ReadWriteCloser
	out, in *splitter
}

func (t *tap) Write(b []byte) (int, error) {
	t.out.feed(b)
	return t.ReadWriteCloser.Write(b)
}

func (t *tap) Read(b []byte) (int, error) {
	n, err := t.ReadWriteCloser.Read(b)
	t.in.feed(b[:n])
	return n, err
}

// TestRecordWireCorpus records the frames of the equivalence script and
// writes them as the seed corpora of firmware-sim/wire's fuzz targets:
//
//	GOHSM_RECORD_WIRE_CORPUS=1 go test -run TestRecordWireCorpus ./firmware-sim/client
func TestRecordWireCorpus(t *testing.T) {
	if os.Getenv("GOHSM_RECORD_WIRE_CORPUS") == "" {
		t.Skip("set GOHSM_RECORD_WIRE_CORPUS=1 to rewrite firmware-sim/wire/testdata/fuzz")
	}
	a := newAppliance(t, newStore(t, "alpha"), identities{"admin": {"*"}}, nil)
	out, in := &splitter{}, &splitter{}
	cert := a.ca.Issue("admin", false, time.Time{})
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		c, s := net.Pipe()
		go a.server().ServeConn(s, cert.Leaf)
		return &tap{ReadWriteCloser: c, out: out, in: in}, nil
	}
	c, err := NewWithDialer(testConfig(), dial)
	must(t, err)
	must(t, c.Initialize())
	var r recorder
	script(t, c, &r)
	// Some concurrency, so that BATCH frames appear both ways.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				c.GetSlotList(true)
			}
		}()
	}
	wg.Wait()
	c.Finalize()

	corpus := map[string]map[string][]byte{}
	add := func(target string, b []byte) {
		if corpus[target] == nil {
			corpus[target] = map[string][]byte{}
		}
		corpus[target][string(b)] = b
	}
	callOf := map[uint64]wire.CallID{}
	types := wire.Types()
	typeIndex := map[string]int{}
	for i, ty := range types {
		typeIndex[ty.Name] = i
	}
	var visit func(f []byte, fromClient bool)
	visit = func(f []byte, fromClient bool) {
		h, err := wire.ParseHeader(f, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		p := f[wire.HeaderSize:]
		add("FuzzFrame", f)
		switch h.Type {
		case wire.FrameHello, wire.FrameWelcome, wire.FrameGoAway:
			add("FuzzHandshake", p)
		case wire.FrameBatch:
			want := wire.FrameResult
			if fromClient {
				want = wire.FrameCall
			}
			items, err := wire.SplitBatch(p, 1<<30, want)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				visit(wire.AppendFrame(nil, it.Type, it.Flags, it.ID, it.Payload), fromClient)
			}
		case wire.FrameCall:
			add("FuzzCallArgs", p)
			dec, err := wire.DecodeCall(p, wire.DefaultMaxFrame)
			if err != nil {
				t.Fatal(err)
			}
			callOf[h.ID] = dec.Call.ID
			for _, pe := range dec.Params {
				add("FuzzParam", pe)
			}
			for i, ty := range dec.Call.Args {
				var e wire.Encoder
				ty.Encode(&e, dec.Args[i])
				add("FuzzValue", append([]byte{byte(typeIndex[ty.Name])}, e.B...))
				if ty.Name == "MECHANISM" {
					add("FuzzParam", e.B)
				}
			}
		case wire.FrameResult:
			id, ok := callOf[h.ID]
			if !ok {
				return
			}
			b := binary.BigEndian.AppendUint16(nil, uint16(id))
			add("FuzzResult", append(append(b, h.Flags), p...))
			c := wire.ByID(id)
			if r, err := c.DecodeResult(p, h.Flags); err == nil {
				for i, ty := range c.Results {
					if i < len(r.Values) {
						var e wire.Encoder
						ty.Encode(&e, r.Values[i])
						add("FuzzValue", append([]byte{byte(typeIndex[ty.Name])}, e.B...))
					}
				}
			}
		}
	}
	// Calls first, so that results know their call.
	for _, f := range out.frames {
		visit(f, true)
	}
	for _, f := range in.frames {
		visit(f, false)
	}
	root := filepath.Join("..", "wire", "testdata", "fuzz")
	for target, set := range corpus {
		dir := filepath.Join(root, target)
		old, _ := filepath.Glob(filepath.Join(dir, "traffic-*"))
		for _, f := range old {
			os.Remove(f)
		}
		must(t, os.MkdirAll(dir, 0o755))
		// At most 80 seeds per target, the smallest first: they run in
		// every go test.
		list := make([][]byte, 0, len(set))
		for _, b := range set {
			list = append(list, b)
		}
		sort.Slice(list, func(i, j int) bool {
			if len(list[i]) != len(list[j]) {
				return len(list[i]) < len(list[j])
			}
			return string(list[i]) < string(list[j])
		})
		if len(list) > 80 {
			step := float64(len(list)) / 80
			var pick [][]byte
			for i := range 80 {
				pick = append(pick, list[int(float64(i)*step)])
			}
			list = pick
		}
		for _, b := range list {
			sum := sha256.Sum256(b)
			name := filepath.Join(dir, fmt.Sprintf("traffic-%x", sum[:8]))
			must(t, os.WriteFile(name, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644))
		}
		t.Logf("%s: %d seeds", target, len(list))
	}
}
