package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/wire"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/testpki"
)

// errCut stands for a cluster member's "no leader" error.
var errCut = errors.New("test: no leader")

type cutBackend struct {
	hsm.Backend
	cut *atomic.Bool
}

func (b cutBackend) GetTokenInfo(slot ck.SlotID) (ck.TokenInfo, error) {
	if b.cut.Load() {
		return ck.TokenInfo{}, fmt.Errorf("token info: %w: %w", errCut, ck.CKR_DEVICE_ERROR)
	}
	return b.Backend.GetTokenInfo(slot)
}

// dialHello connects over TLS and sends a HELLO offering versions, with
// HELLO flags.
func (f *fixture) dialHello(versions []uint16, flags byte) (*peer, error) {
	cert := f.ca.Issue("app", false, time.Time{})
	tc, err := tls.Dial("tcp", f.addr, testpki.ClientTLS(&cert, f.ca))
	if err != nil {
		return nil, err
	}
	f.t.Cleanup(func() { tc.Close() })
	p := &peer{t: f.t, rwc: tc, br: bufio.NewReader(tc)}
	h := wire.AppendHello(nil, wire.Hello{Versions: versions, MaxFrame: 1 << 24, Name: "raw peer"})
	if _, err := tc.Write(wire.AppendFrame(nil, wire.FrameHello, flags, 0, h)); err != nil {
		return nil, err
	}
	fr, err := p.read()
	if err != nil {
		return nil, err
	}
	p.w, err = wire.ParseWelcome(fr.Payload)
	return p, err
}

// Version 2's WELCOME reports the load (connections other than the one
// welcomed, calls in flight) and the status; a PROBE HELLO gets WELCOME
// alone, counts as no connection, and is closed. A version-1 peer gets the
// version-1 WELCOME and never the TRY_ELSEWHERE flag; a version-2 peer
// gets it on an error the Unavailable hook recognises.
func TestWelcomeLoadAndTryElsewhere(t *testing.T) {
	var cut atomic.Bool
	f := newFixture(t, map[string][]string{"app": {"*"}}, func(c *Config) {
		c.WrapBackend = func(_ string, be hsm.Backend) hsm.Backend { return cutBackend{be, &cut} }
		c.Unavailable = func(err error) bool { return errors.Is(err, errCut) }
		c.Serving = func() bool { return !cut.Load() }
	})
	v2 := []uint16{2, 1}
	p1, err := f.dialHello(v2, 0)
	must(t, err)
	if p1.w.Version != 2 || p1.w.Conns != 0 || p1.w.Status != 0 {
		t.Fatalf("first WELCOME %+v", p1.w)
	}
	p2, err := f.dialHello(v2, 0)
	must(t, err)
	if p2.w.Conns != 1 {
		t.Fatalf("second WELCOME counts %d other connections, want 1", p2.w.Conns)
	}
	probe, err := f.dialHello(v2, wire.HelloProbe)
	must(t, err)
	if probe.w.Version != 2 || probe.w.Conns != 2 {
		t.Fatalf("probe WELCOME %+v, want version 2 and 2 connections", probe.w)
	}
	if _, err := probe.read(); !errors.Is(err, io.EOF) {
		t.Fatalf("probe connection not closed after WELCOME: %v", err)
	}
	old, err := f.dialHello([]uint16{1}, wire.HelloProbe) // a version-1 server ignores the flag: so does v1 here
	must(t, err)
	if old.w.Version != 1 || old.w.Conns != 0 {
		t.Fatalf("version-1 WELCOME %+v", old.w)
	}
	if r := old.call("GetTokenInfo", ck.SlotID(0)); r.RV != ck.CKR_OK {
		t.Fatalf("version-1 connection with the PROBE flag: %v", r.RV)
	}
	// The probe was not counted; the version-1 connection is.
	if p, err := f.dialHello(v2, wire.HelloProbe); err != nil || p.w.Conns != 3 {
		t.Fatalf("probe after: %+v %v, want 3 connections", p.w, err)
	}

	cut.Store(true)
	r, flags := p1.answer("GetTokenInfo", p1.send("GetTokenInfo", ck.SlotID(0)))
	if r.RV != ck.CKR_DEVICE_ERROR || flags&wire.FlagTryElsewhere == 0 || flags&wire.FlagNotRun != 0 {
		t.Fatalf("version 2: %v, flags %#x; want CKR_DEVICE_ERROR with TRY_ELSEWHERE", r.RV, flags)
	}
	r, flags = old.answer("GetTokenInfo", old.send("GetTokenInfo", ck.SlotID(0)))
	if r.RV != ck.CKR_DEVICE_ERROR || flags&wire.FlagTryElsewhere != 0 {
		t.Fatalf("version 1: %v, flags %#x; want CKR_DEVICE_ERROR alone", r.RV, flags)
	}
	// Another error is not marked.
	r, flags = p1.answer("GetTokenInfo", p1.send("GetTokenInfo", ck.SlotID(77)))
	if r.RV == ck.CKR_OK || flags&wire.FlagTryElsewhere != 0 {
		t.Fatalf("unknown slot: %v, flags %#x", r.RV, flags)
	}
	if p, err := f.dialHello(v2, wire.HelloProbe); err != nil || p.w.Status&wire.StatusNoLeader == 0 {
		t.Fatalf("probe of a member without a leader: %+v %v", p.w, err)
	}
}
