package client

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/testpki"
)

// ecKey makes a token EC key pair (as the user) and returns the private key.
func ecKey(t testing.TB, be hsm.Backend, s ck.SessionHandle) (pub, priv ck.ObjectHandle) {
	t.Helper()
	pub, priv, err := be.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256OID}, {Type: ck.CKA_VERIFY, Value: tTrue}, {Type: ck.CKA_TOKEN, Value: tTrue}},
		[]ck.Attribute{{Type: ck.CKA_SIGN, Value: tTrue}, {Type: ck.CKA_TOKEN, Value: tTrue}, {Type: ck.CKA_PRIVATE, Value: tTrue}})
	must(t, err)
	return pub, priv
}

func sign(be hsm.Backend, s ck.SessionHandle, key ck.ObjectHandle) error {
	if err := be.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, key); err != nil {
		return err
	}
	_, _, err := be.Sign(s, make([]byte, 32), 64)
	return err
}

// The appliance dies under load from 8 goroutines (each with its own
// session, the token logged in once), and comes back on the same store and
// address. While it is down every call returns within the client's bound
// with an error; afterwards every goroutine signs again with the session
// handle it had, and no goroutine logs in again: the client re-opened the
// sessions and logged the token back in. The crash again with callers
// waiting in the kernel (Config.WaitInKernel, as libgohsm.so's do).
func TestReconnectUnderLoad(t *testing.T) {
	for _, mode := range []string{"crash", "graceful", "crash-kernel-wait"} {
		t.Run(mode, func(t *testing.T) { reconnectUnderLoad(t, mode) })
	}
}

func reconnectUnderLoad(t *testing.T, mode string) {
	a := newAppliance(t, newStore(t, "alpha"), identities{"app": {"alpha"}}, nil)
	a.listen()
	kernel := strings.HasSuffix(mode, "-kernel-wait")
	mode = strings.TrimSuffix(mode, "-kernel-wait")
	c := a.tlsClient("app", func(cfg *Config) { cfg.WaitInKernel = kernel })
	bound := c.cfg.Timeout
	setup := userSession(t, c, 0)
	_, priv := ecKey(t, c, setup)

	const workers = 8
	type call struct {
		start, end time.Time
		err        error
	}
	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		calls   [workers][]call
		handles [workers]ck.SessionHandle
	)
	for w := range workers {
		s, err := c.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		must(t, err)
		handles[w] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				err := sign(c, s, priv)
				mu.Lock()
				calls[w] = append(calls[w], call{start, time.Now(), err})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	down := time.Now()
	if mode == "crash" {
		a.server().Close()
	} else {
		a.stop()
	}
	time.Sleep(2 * bound) // longer than the bound: every call must give up
	a.start()
	a.listen()
	back := time.Now()
	deadline := back.Add(10 * time.Second)
	var recovered time.Duration
	for w := 0; w < workers; {
		mu.Lock()
		ok := false
		for _, x := range calls[w] {
			if x.err == nil && x.start.After(back) {
				ok = true
				recovered = max(recovered, x.end.Sub(back))
			}
		}
		mu.Unlock()
		if ok {
			w++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %d never signed again after the restart", w)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	var slowest time.Duration
	errs := map[ck.RV]int{}
	for w := range workers {
		failed := false
		for _, x := range calls[w] {
			d := x.end.Sub(x.start)
			if x.end.After(down) && x.start.Before(back) {
				slowest = max(slowest, d)
				if x.err != nil {
					errs[hsm.ToRV(x.err)]++
					failed = true
				}
			} else if x.err != nil {
				t.Errorf("worker %d: %v outside the outage", w, x.err)
			}
		}
		if !failed {
			t.Errorf("worker %d: no call failed while the appliance was down", w)
		}
		info, err := c.GetSessionInfo(handles[w])
		must(t, err)
		if info.State != ck.CKS_RW_USER_FUNCTIONS {
			t.Errorf("worker %d: session state %v after the restart, want logged in", w, info.State)
		}
	}
	if slowest > bound+500*time.Millisecond {
		t.Errorf("a call took %v around the outage; the bound is %v", slowest, bound)
	}
	for rv := range errs {
		if rv != ck.CKR_DEVICE_ERROR {
			t.Errorf("calls failed with %v around the outage: %v", rv, errs)
		}
	}
	t.Logf("%s: down %v; slowest call around the outage %v (bound %v); errors %v; all %d workers signing again within %v of the restart",
		mode, back.Sub(down).Round(time.Millisecond), slowest.Round(time.Millisecond), bound, errs, workers, recovered.Round(time.Millisecond))
}

// An operation begun before a reconnect is gone: its next call answers
// CKR_DEVICE_ERROR once, then the session works normally.
func TestOperationLostOnReconnect(t *testing.T) {
	a := newAppliance(t, newStore(t, "alpha"), identities{"app": {"alpha"}}, nil)
	c := a.pipeClient("app")
	s := userSession(t, c, 0)
	must(t, c.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	must(t, c.DigestUpdate(s, []byte("abc")))
	a.restart()
	wantRV(t, c.DigestUpdate(s, []byte("def")), ck.CKR_DEVICE_ERROR)
	wantRV(t, c.DigestUpdate(s, []byte("def")), ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, c.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	_, _, err := c.Digest(s, []byte("abc"), 32)
	must(t, err)
	// Session objects die with the appliance's session; token objects do
	// not, and keep their handles.
	so, err := c.CreateObject(s, []ck.Attribute{{Type: ck.CKA_CLASS, Value: ulong(ck.CKO_DATA)}, {Type: ck.CKA_TOKEN, Value: tFalse}})
	must(t, err)
	to, err := c.CreateObject(s, []ck.Attribute{{Type: ck.CKA_CLASS, Value: ulong(ck.CKO_DATA)}, {Type: ck.CKA_TOKEN, Value: tTrue}})
	must(t, err)
	a.restart()
	_, err = c.GetObjectSize(s, so)
	wantRV(t, err, ck.CKR_OBJECT_HANDLE_INVALID)
	_, err = c.GetObjectSize(s, to)
	must(t, err)
}

// A call in flight at the drop that continues an operation reports the
// operation's end itself; the next call of it is then the plain
// CKR_OPERATION_NOT_INITIALIZED, not a second CKR_DEVICE_ERROR.
func TestOperationLostReportedOnce(t *testing.T) {
	var gate atomic.Pointer[chan struct{}]
	entered := make(chan struct{}, 1)
	wrap := func(c *server.Config) {
		c.WrapBackend = func(_ string, be hsm.Backend) hsm.Backend {
			return &holdDigest{Backend: be, hold: func() {
				if g := gate.Load(); g != nil {
					entered <- struct{}{}
					<-*g
				}
			}}
		}
	}
	a := newAppliance(t, newStore(t, "alpha"), identities{"app": {"alpha"}}, wrap)
	c := a.pipeClient("app")
	s := userSession(t, c, 0)
	must(t, c.DigestInit(s, ck.Mechanism{Type: ck.CKM_SHA256}))
	g := make(chan struct{})
	gate.Store(&g)
	done := make(chan error, 1)
	go func() { done <- c.DigestUpdate(s, []byte("abc")) }()
	<-entered
	gate.Store(nil)
	go a.server().Close()
	time.Sleep(50 * time.Millisecond)
	a.start()
	wantRV(t, <-done, ck.CKR_DEVICE_ERROR)
	close(g)
	wantRV(t, c.DigestUpdate(s, []byte("def")), ck.CKR_OPERATION_NOT_INITIALIZED)
}

type holdDigest struct {
	hsm.Backend
	hold func()
}

func (h *holdDigest) DigestUpdate(s ck.SessionHandle, in []byte) error {
	h.hold()
	return h.Backend.DigestUpdate(s, in)
}

func ulong[T ~uint64](v T) []byte {
	b := make([]byte, 8)
	for i := range 8 {
		b[i] = byte(uint64(v) >> (8 * i))
	}
	return b
}

// blocking wraps an engine so a test can hold chosen calls.
type blocking struct {
	hsm.Backend
	hold    func(name string) // called before the engine
	entered chan string
}

func (b *blocking) GetTokenInfo(slot ck.SlotID) (ck.TokenInfo, error) {
	b.hold("GetTokenInfo")
	return b.Backend.GetTokenInfo(slot)
}

func (b *blocking) GenerateKey(s ck.SessionHandle, m ck.Mechanism, t []ck.Attribute) (ck.ObjectHandle, error) {
	b.hold("GenerateKey")
	return b.Backend.GenerateKey(s, m, t)
}

// A call in flight when the connection drops is sent again once if
// running it twice is the same as once (C_GetTokenInfo), and fails with
// CKR_DEVICE_ERROR otherwise (C_GenerateKey: a key may have been made).
func TestInFlightRetryRules(t *testing.T) {
	var gate atomic.Pointer[chan struct{}]
	entered := make(chan string, 4)
	hold := func(name string) {
		if g := gate.Load(); g != nil {
			entered <- name
			<-*g
		}
	}
	wrap := func(c *server.Config) {
		c.WrapBackend = func(_ string, be hsm.Backend) hsm.Backend { return &blocking{Backend: be, hold: hold} }
	}
	a := newAppliance(t, newStore(t, "alpha"), identities{"app": {"alpha"}}, wrap)
	c := a.pipeClient("app")
	s := userSession(t, c, 0)

	for _, tc := range []struct {
		name string
		call func() error
		want ck.RV
	}{
		{"GetTokenInfo", func() error { _, err := c.GetTokenInfo(0); return err }, ck.CKR_OK},
		{"GenerateKey", func() error {
			_, err := c.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN},
				[]ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: ulong(ck.ULong(32))}})
			return err
		}, ck.CKR_DEVICE_ERROR},
	} {
		g := make(chan struct{})
		gate.Store(&g)
		done := make(chan error, 1)
		go func() { done <- tc.call() }()
		if got := <-entered; got != tc.name {
			t.Fatalf("held %s, want %s", got, tc.name)
		}
		gate.Store(nil)
		old := a.server()
		go old.Close() // the old server waits for nothing; the held call is orphaned
		time.Sleep(50 * time.Millisecond)
		a.start()
		err := <-done
		close(g)
		wantRV(t, err, tc.want)
	}
	// The session survived both drops.
	info, err := c.GetSessionInfo(s)
	must(t, err)
	if info.State != ck.CKS_RW_USER_FUNCTIONS {
		t.Fatalf("state %v", info.State)
	}
}

// While the appliance is unreachable, calls from 8 goroutines fail within
// the bound with CKR_DEVICE_ERROR and never hang, whether the callers wait
// on a channel or in the kernel.
func TestUnreachableBound(t *testing.T) {
	for _, kernel := range []bool{false, true} {
		t.Run(fmt.Sprintf("kernel-wait=%v", kernel), func(t *testing.T) { unreachableBound(t, kernel) })
	}
}

func unreachableBound(t *testing.T, kernel bool) {
	a := newAppliance(t, newStore(t, "alpha"), identities{"app": {"alpha"}}, nil)
	a.listen()
	c := a.tlsClient("app", func(cfg *Config) { cfg.Timeout, cfg.WaitInKernel = time.Second, kernel })
	s := userSession(t, c, 0)
	a.server().Close()
	var wg sync.WaitGroup
	var worst atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				start := time.Now()
				_, err := c.GetSessionInfo(s)
				d := time.Since(start)
				if d > time.Duration(worst.Load()) {
					worst.Store(int64(d))
				}
				if !errors.Is(err, ck.CKR_DEVICE_ERROR) {
					t.Errorf("got %v, want CKR_DEVICE_ERROR", err)
				}
			}
		}()
	}
	wg.Wait()
	if w := time.Duration(worst.Load()); w > 1500*time.Millisecond {
		t.Errorf("slowest call %v, bound 1s", w)
	}
	t.Logf("slowest call while unreachable: %v (bound 1s)", time.Duration(worst.Load()).Round(time.Millisecond))
}

// A certificate the appliance refuses (from another CA, or a name it does
// not know) fails C_Initialize at once: waiting out the timeout cannot
// change the answer. An appliance that is down is waited for.
func TestRefusedCertificateFailsFast(t *testing.T) {
	a := newAppliance(t, newStore(t, "alpha"), identities{"app": {"alpha"}}, nil)
	a.listen()
	other := testpki.NewCA("another CA")
	for _, c := range []struct {
		name string
		ca   *testpki.CA
		cn   string
	}{{"another CA", other, "app"}, {"unknown name", a.ca, "stranger"}} {
		cert := c.ca.Issue(c.cn, false, time.Time{})
		cfg := testConfig()
		cfg.Timeout = 5 * time.Second
		cfg.Address = a.addr
		cfg.TLS = testpki.ClientTLS(&cert, a.ca)
		cl, err := New(cfg)
		must(t, err)
		start := time.Now()
		err = cl.Initialize()
		if !errors.Is(err, ck.CKR_DEVICE_ERROR) {
			t.Fatalf("%s: Initialize: %v", c.name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: refused after %v; a refusal is final, want well under the 5s timeout", c.name, d)
		}
	}
}
