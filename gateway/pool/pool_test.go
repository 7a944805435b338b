package pool

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/faults"
	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// fixture is a pool over two tokens, each in a store of its own (two
// devices), with the transport key installed by the ceremony and trusted
// by each token's SO. Token "a" runs through a fault injector.
type fixture struct {
	p    *Pool
	inj  *faults.Injector
	dirs []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{inj: faults.New(&faults.Plan{})}
	var toks []token.Token
	value := make([]byte, 32)
	rand.Read(value)
	defer clear(value)
	for _, label := range []string{"a", "b"} {
		dir := gwtest.Store(t, label)
		f.dirs = append(f.dirs, dir)
		be, release, err := token.OpenEngine(dir, gwtest.Cheap)
		if err != nil {
			t.Fatal(err)
		}
		if label == "a" {
			be = faults.Wrap(be, f.inj)
		}
		tok, err := token.FromBackend(be, label, []byte(gwtest.UserPIN), release)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tok.OpenSession()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := InstallTransport(s, []byte(DefaultTransportID), value); err != nil {
			t.Fatal(err)
		}
		s.Close()
		trust(t, dir, label, DefaultTransportID)
		toks = append(toks, tok)
	}
	p, err := New(toks, Config{Sessions: 4, HealthEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	f.p = p
	return f
}

// trust is the SO's half of the ceremony (what `gohsm token trust` does):
// another application on the store, logged in as the SO.
func trust(t *testing.T, dir, label, objLabel string) {
	t.Helper()
	be, release, err := token.OpenEngine(dir, gwtest.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	slots, _ := be.GetSlotList(true)
	for _, sl := range slots {
		info, _ := be.GetTokenInfo(sl)
		if string(bytes.TrimRight([]byte(info.Label), " ")) != label {
			continue
		}
		h, err := be.OpenSession(sl, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		if err := be.Login(h, ck.CKU_SO, []byte(gwtest.SOPIN)); err != nil {
			t.Fatal(err)
		}
		be.FindObjectsInit(h, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte(objLabel)}})
		hs, _ := be.FindObjects(h, 4)
		be.FindObjectsFinal(h)
		if len(hs) != 1 {
			t.Fatalf("SO sees %d objects labelled %q", len(hs), objLabel)
		}
		if err := be.SetAttributeValue(h, hs[0], []ck.Attribute{{Type: ck.CKA_TRUSTED, Value: attr.Bool(true)}}); err != nil {
			t.Fatal(err)
		}
		be.Logout(h)
		be.CloseSession(h)
		return
	}
	t.Fatalf("no token %q", label)
}

type findFunc = func(id []byte) (ck.ObjectHandle, error)

// on runs f on member i only.
func (f *fixture) on(t *testing.T, i int, fn func(s token.Session, find findFunc) error) error {
	t.Helper()
	err, _ := f.p.members[i].run(context.Background(), fn)
	return err
}

// cloneable is the template of a key made for a pool.
func cloneable(id string) []ck.Attribute {
	return []ck.Attribute{
		{Type: ck.CKA_ID, Value: []byte(id)},
		boolAttr(ck.CKA_TOKEN, true),
		boolAttr(ck.CKA_PRIVATE, true),
		boolAttr(ck.CKA_SENSITIVE, true),
		boolAttr(ck.CKA_EXTRACTABLE, true),
		boolAttr(ck.CKA_WRAP_WITH_TRUSTED, true),
	}
}

func aesTemplate(id string) []ck.Attribute {
	return append(cloneable(id),
		ck.Attribute{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		boolAttr(ck.CKA_ENCRYPT, true), boolAttr(ck.CKA_DECRYPT, true))
}

var p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

func TestReplicate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// An AES key and an EC key pair made on token a.
	if err := f.on(t, 0, func(s token.Session, _ findFunc) error {
		if _, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k1/k")); err != nil {
			return err
		}
		_, _, err := s.GenerateKeyPair(ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
			[]ck.Attribute{{Type: ck.CKA_ID, Value: []byte("e1/p")}, {Type: ck.CKA_EC_PARAMS, Value: p256},
				boolAttr(ck.CKA_TOKEN, true), boolAttr(ck.CKA_VERIFY, true)},
			append(cloneable("e1/k"), boolAttr(ck.CKA_SIGN, true)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"k1/k", "e1/k", "e1/p"} {
		if err := f.p.Replicate(ctx, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	// b's copies work with a's originals, both ways.
	var sealed, sig []byte
	digest := sha256.Sum256([]byte("msg"))
	if err := f.on(t, 0, func(s token.Session, find findFunc) error {
		k, err := find([]byte("k1/k"))
		if err != nil {
			return err
		}
		sealed, err = s.Seal(nil, ck.CKM_AES_GCM, k, []byte("aad"), []byte("cloned"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.on(t, 1, func(s token.Session, find findFunc) error {
		k, err := find([]byte("k1/k"))
		if err != nil {
			return err
		}
		pt, err := s.Open(nil, ck.CKM_AES_GCM, k, []byte("aad"), sealed)
		if err != nil || string(pt) != "cloned" {
			return fmt.Errorf("open on b: %q %v", pt, err)
		}
		// The copy is as sensitive as the original.
		v, err := s.GetAttributes(k, ck.CKA_VALUE, ck.CKA_SENSITIVE, ck.CKA_WRAP_WITH_TRUSTED)
		if err != nil || v[0] != nil || !bytes.Equal(v[1], attr.Bool(true)) || !bytes.Equal(v[2], attr.Bool(true)) {
			return fmt.Errorf("copy's attributes: %x %v", v, err)
		}
		pk, err := find([]byte("e1/k"))
		if err != nil {
			return err
		}
		sig, err = s.Sign(ck.Mechanism{Type: ck.CKM_ECDSA}, pk, digest[:])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.on(t, 0, func(s token.Session, find findFunc) error {
		pub, err := find([]byte("e1/p"))
		if err != nil {
			return err
		}
		return s.Verify(ck.Mechanism{Type: ck.CKM_ECDSA}, pub, digest[:], sig)
	}); err != nil {
		t.Fatalf("a's public key does not verify b's copy's signature: %v", err)
	}

	// A non-extractable key stays where it was made, and Replicate says so.
	if err := f.on(t, 0, func(s token.Session, _ findFunc) error {
		tmpl := aesTemplate("k2/k")
		tmpl[4] = boolAttr(ck.CKA_EXTRACTABLE, false)
		_, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Replicate(ctx, []byte("k2/k")); token.RV(err) != ck.CKR_KEY_UNEXTRACTABLE {
		t.Fatalf("non-extractable key replicated: %v", err)
	}
	if err := f.p.Replicate(ctx, []byte("nothing")); !errors.Is(err, ErrNoObject) {
		t.Fatalf("replicate of nothing: %v", err)
	}

	// Destroy leaves no copy.
	if err := f.p.Destroy(ctx, []byte("k1/k")); err != nil {
		t.Fatal(err)
	}
	for i := range f.p.members {
		if err := f.on(t, i, func(s token.Session, find findFunc) error {
			_, err := find([]byte("k1/k"))
			return err
		}); !errors.Is(err, ErrNoObject) {
			t.Fatalf("token %d after destroy: %v", i, err)
		}
	}
}

// TestUntrustedTransport: without the SO's trust the transport key wraps
// no sensitive key (the engine's rule), so a copy of its value imported
// elsewhere is no way out.
func TestUntrustedTransport(t *testing.T) {
	dir := gwtest.Store(t, "x")
	tok := gwtest.Token(t, dir, "x")
	s, _ := tok.OpenSession()
	defer s.Close()
	w, err := InstallTransport(s, []byte(DefaultTransportID), bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WrapKey(wrapMech, w, k); token.RV(err) != ck.CKR_KEY_NOT_WRAPPABLE {
		t.Fatalf("untrusted transport key wrapped a sensitive key: %v", err)
	}
	// And the transport key itself gives nothing out.
	if v, _ := s.GetAttributes(w, ck.CKA_VALUE); v[0] != nil {
		t.Fatal("transport key value readable")
	}
	if _, err := s.Encrypt(ck.Mechanism{Type: ck.CKM_AES_ECB}, w, make([]byte, 16)); err == nil {
		t.Fatal("transport key encrypts")
	}
}

// sealOpen is a request: seal and open with key id on whatever token Do
// picks.
func sealOpen(ctx context.Context, p *Pool, id string) error {
	return p.Do(ctx, func(s token.Session, find findFunc) error {
		k, err := find([]byte(id))
		if err != nil {
			return err
		}
		c, err := s.Seal(nil, ck.CKM_AES_GCM, k, nil, []byte("x"))
		if err != nil {
			return err
		}
		_, err = s.Open(nil, ck.CKM_AES_GCM, k, nil, c)
		return err
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTokenFailure pulls token a out (the fault plan's remove_token: its
// sessions closed, the slot empty) while requests run: none fails, a is
// taken out, and put back when it returns; then a device error on every
// call of a (Ping included) does the same.
func TestTokenFailure(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.on(t, 0, func(s token.Session, _ findFunc) error {
		_, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k/k"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Replicate(ctx, []byte("k/k")); err != nil {
		t.Fatal(err)
	}
	// Warm both tokens' sessions.
	for i := 0; i < 20; i++ {
		if err := sealOpen(ctx, f.p, "k/k"); err != nil {
			t.Fatal(err)
		}
	}

	run := func(stop <-chan struct{}) (ok, failed *atomic.Int64, wg *sync.WaitGroup, errs chan error) {
		ok, failed = new(atomic.Int64), new(atomic.Int64)
		wg = new(sync.WaitGroup)
		errs = make(chan error, 8)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := sealOpen(ctx, f.p, "k/k"); err != nil {
						failed.Add(1)
						select {
						case errs <- err:
						default:
						}
					} else {
						ok.Add(1)
					}
				}
			}()
		}
		return
	}

	for _, tc := range []struct {
		name string
		plan string
	}{
		{"removed", `{"events": [{"event": "remove_token", "token": "a", "after_calls": 0, "for_ms": 400}]}`},
		{"device error", `{"rules": [{"probability": 1, "rv": "CKR_DEVICE_ERROR"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop := make(chan struct{})
			ok, failed, wg, errs := run(stop)
			time.Sleep(50 * time.Millisecond)
			plan, err := faults.Parse([]byte(tc.plan))
			if err != nil {
				t.Fatal(err)
			}
			f.inj.SetPlan(plan)
			waitFor(t, "token a taken out", func() bool { return !f.p.Status()[0].InService })
			before := ok.Load()
			waitFor(t, "requests served by b", func() bool { return ok.Load() > before+50 })
			if tc.name == "device error" {
				f.inj.SetPlan(&faults.Plan{})
			}
			waitFor(t, "token a back in service", func() bool { return f.p.Status()[0].InService })
			// a serves again: some calls land on it.
			waitFor(t, "calls on a", func() bool { return f.p.Status()[0].InFlight > 0 })
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("a request failed: %v", err)
			}
			if failed.Load() > 0 || ok.Load() == 0 {
				t.Fatalf("%d requests failed, %d succeeded", failed.Load(), ok.Load())
			}
			t.Logf("%d requests, none failed", ok.Load())
		})
	}
}

// TestRequestErrorsStay: a request's own failure (a wrong tag, f's own
// error) is returned once, is not retried, and takes no token out.
func TestRequestErrorsStay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.on(t, 0, func(s token.Session, _ findFunc) error {
		_, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("k/k"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.p.Replicate(ctx, []byte("k/k"))
	mine := errors.New("the caller's own error")
	for i := 0; i < 10; i++ {
		calls := 0
		err := f.p.Do(ctx, func(s token.Session, find findFunc) error {
			calls++
			k, err := find([]byte("k/k"))
			if err != nil {
				return err
			}
			if _, err := s.Open(nil, ck.CKM_AES_GCM, k, nil, make([]byte, 40)); err == nil {
				return errors.New("forged message opened")
			}
			return mine
		})
		if err != mine || calls != 1 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	}
	time.Sleep(60 * time.Millisecond) // three health checks
	for _, st := range f.p.Status() {
		if !st.InService {
			t.Fatalf("token %s taken out by request errors", st.Label)
		}
	}
	// An unknown key is the request's too.
	err := f.p.Do(ctx, func(s token.Session, find findFunc) error {
		_, err := find([]byte("no such key"))
		return err
	})
	if !errors.Is(err, ErrNoObject) || token.DeviceFailure(err) {
		t.Fatalf("unknown key: %v", err)
	}
}

// TestLazyReplication: a key made while b was out reaches b on first use.
func TestLazyReplication(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := f.p.members[1]
	b.takeOut()
	// Keep b out while the key is made and "replicated" (b is skipped).
	b.checking.Store(true)
	if err := f.p.Do(ctx, func(s token.Session, _ findFunc) error {
		_, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("late/k"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Replicate(ctx, []byte("late/k")); err != nil {
		t.Fatal(err)
	}
	b.checking.Store(false)
	waitFor(t, "b back", func() bool { return b.inService.Load() })
	if err := f.on(t, 1, func(s token.Session, find findFunc) error {
		k, err := find([]byte("late/k"))
		if err != nil {
			return err
		}
		_, err = s.Seal(nil, ck.CKM_AES_GCM, k, nil, []byte("x"))
		return err
	}); err != nil {
		t.Fatalf("first use on b: %v", err)
	}
}

// TestSpread: concurrent calls use both tokens and several sessions.
func TestSpread(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[token.Session]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.p.Do(ctx, func(s token.Session, _ findFunc) error {
				mu.Lock()
				seen[s.(*tracked).Session] = true
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				return nil
			})
		}()
	}
	wg.Wait()
	if len(seen) < 6 {
		t.Fatalf("16 concurrent calls used %d sessions", len(seen))
	}
	// A call waiting for a session gives up with its context.
	hold := make(chan struct{})
	for i := 0; i < 8; i++ {
		go f.p.Do(ctx, func(token.Session, findFunc) error { <-hold; return nil })
	}
	waitFor(t, "all sessions busy", func() bool {
		st := f.p.Status()
		return st[0].InFlight+st[1].InFlight == 8
	})
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := f.p.Do(short, func(token.Session, findFunc) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("busy pool: %v", err)
	}
	close(hold)
}

// TestTransportAmbiguous: a token with two secret keys under the transport
// key's CKA_ID is refused, not served by whichever the search finds first:
// a second ceremony is refused at install, and a key a user of the token
// made with that CKA_ID (its value known to them) stops replication to
// that token with ErrTransportAmbiguous instead of wrapping or unwrapping
// under a key picked by search order.
func TestTransportAmbiguous(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := gwtest.Token(t, f.dirs[1], "b") // another application on token b's store
	s, err := other.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := InstallTransport(s, []byte(DefaultTransportID), bytes.Repeat([]byte{2}, 32)); !errors.Is(err, ErrTransportAmbiguous) {
		t.Fatalf("second install: %v", err)
	}
	if err := CheckTransport(other, []byte(DefaultTransportID)); err != nil {
		t.Fatalf("one transport key: %v", err)
	}
	if _, err := s.CreateObject([]ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
		{Type: ck.CKA_ID, Value: []byte(DefaultTransportID)},
		{Type: ck.CKA_VALUE, Value: bytes.Repeat([]byte{3}, 32)},
		boolAttr(ck.CKA_TOKEN, true), boolAttr(ck.CKA_PRIVATE, false),
		boolAttr(ck.CKA_WRAP, true), boolAttr(ck.CKA_UNWRAP, true),
	}); err != nil {
		t.Fatal(err)
	}
	if err := CheckTransport(other, []byte(DefaultTransportID)); !errors.Is(err, ErrTransportAmbiguous) ||
		!strings.Contains(err.Error(), `token "b" has 2 secret keys`) {
		t.Fatalf("two transport keys: %v", err)
	}
	if err := f.on(t, 0, func(s token.Session, _ findFunc) error {
		_, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, aesTemplate("amb/k"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Replicate(ctx, []byte("amb/k")); !errors.Is(err, ErrTransportAmbiguous) {
		t.Fatalf("replication to a token with two transport keys: %v", err)
	}
}
