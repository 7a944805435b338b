package token_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/firmware-sim/server"
	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/pool"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/testpki"
)

// appliance is an in-process appliance (firmware-sim/server) over a token
// store; conns counts the gateway clients that connected to it.
type appliance struct {
	srv   *server.Server
	cfg   server.Config
	addr  string
	conns atomic.Int32
}

// startAppliances starts n appliances over one token store: as a cluster's
// members are for a client (the same tokens, the same object handles on
// each), without raft. It returns them and the client configuration that
// lists them all.
func startAppliances(t testing.TB, dir string, n int) ([]*appliance, client.Config) {
	t.Helper()
	ca := testpki.NewCA("gateway token test CA")
	srvCert := ca.Issue("localhost", true, time.Time{})
	var apps []*appliance
	var addrs []string
	for range n {
		a := &appliance{}
		cfg := server.DefaultConfig()
		cfg.TLS = testpki.ServerTLS(srvCert, ca)
		cfg.Authorize = func(c *x509.Certificate) (string, []string, bool, bool) {
			return c.Subject.CommonName, []string{"*"}, false, c.Subject.CommonName == "gateway"
		}
		cfg.Open = server.StoreOpener(dir, gwtest.Cheap)
		cfg.Logf = func(format string, args ...any) {
			if strings.Contains(fmt.Sprintf(format, args...), `identity "gateway" connected`) {
				a.conns.Add(1)
			}
		}
		srv, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		a.srv, a.cfg, a.addr = srv, cfg, l.Addr().String()
		t.Cleanup(func() { srv.Close() })
		apps = append(apps, a)
		addrs = append(addrs, a.addr)
	}
	cert := ca.Issue("gateway", false, time.Time{})
	cc := client.DefaultConfig()
	cc.Address = strings.Join(addrs, ",")
	cc.TLS = testpki.ClientTLS(&cert, ca)
	cc.Name = "gateway token test"
	return apps, cc
}

// TestRemoteToken: a token on an appliance, through the appliance's
// client, seals and opens as the in-process engine's does.
func TestRemoteToken(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	_, cc := startAppliances(t, dir, 1)
	if _, err := token.OpenRemoteToken(cc, "nope", []byte(gwtest.UserPIN)); err == nil || !strings.Contains(err.Error(), `no token labelled "nope"`) {
		t.Fatalf("an unknown label: %v", err)
	}
	if _, err := token.OpenRemoteToken(cc, "gw", []byte("wrong pin")); token.RV(err) != ck.CKR_PIN_INCORRECT {
		t.Fatalf("a wrong PIN: %v", err)
	}
	tok, err := token.OpenRemoteToken(cc, "gw", []byte(gwtest.UserPIN))
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if tok.Label() != "gw" || tok.Ping() != nil {
		t.Fatalf("label %q, ping %v", tok.Label(), tok.Ping())
	}
	s, err := tok.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := aesKey(t, s)
	sealed, err := s.Seal(nil, ck.CKM_AES_GCM, k, []byte("aad"), []byte("over the wire"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := s.Open(nil, ck.CKM_AES_GCM, k, []byte("aad"), sealed)
	if err != nil || string(pt) != "over the wire" {
		t.Fatalf("open: %q %v", pt, err)
	}
}

// TestRemoteTokenFailover: a pool whose only token is on two appliances
// (one store, as a cluster's members are) keeps serving when the appliance
// its client is on dies under load: the client moves to the other, the
// token's sessions begin again the operations the move ended, and not one
// call fails (with plain FromBackend the first call after the move fails
// CKR_DEVICE_ERROR). When both are gone calls fail and the token goes out
// of service; when one comes back, so does the token.
func TestRemoteTokenFailover(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	apps, cc := startAppliances(t, dir, 2)
	cc.Timeout = 2 * time.Second
	cc.BackoffMin, cc.BackoffMax = 10*time.Millisecond, 100*time.Millisecond
	tok, err := token.OpenRemoteToken(cc, "gw", []byte(gwtest.UserPIN))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New([]token.Token{tok}, pool.Config{HealthEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	var k ck.ObjectHandle
	var ek manyKeys
	if err := p.Do(ctx, func(s token.Session, _ func([]byte) (ck.ObjectHandle, error)) error {
		k = aesKey(t, s)
		ek = makeManyKeys(t, s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A round seals and opens, and signs (a signing process the session
	// keeps, on the appliance: one the move ends) and verifies.
	round := func(i int) error {
		msg := fmt.Appendf(nil, "message %d", i)
		return p.Do(ctx, func(s token.Session, _ func([]byte) (ck.ObjectHandle, error)) error {
			sealed, err := s.Seal(nil, ck.CKM_AES_GCM, k, nil, msg)
			if err != nil {
				return err
			}
			pt, err := s.Open(nil, ck.CKM_AES_GCM, k, nil, sealed)
			if err != nil {
				return err
			}
			if !bytes.Equal(pt, msg) {
				return fmt.Errorf("opened %q, sealed %q", pt, msg)
			}
			digest := sha256.Sum256(msg)
			sig, err := s.Sign(ck.Mechanism{Type: ck.CKM_ECDSA}, ek.ecPriv, digest[:])
			if err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			if err := s.Verify(ck.Mechanism{Type: ck.CKM_ECDSA}, ek.ecPub, digest[:], sig); err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			return nil
		})
	}
	if err := round(0); err != nil {
		t.Fatal(err)
	}
	on := -1
	for i, a := range apps {
		if a.conns.Load() > 0 {
			on = i
		}
	}
	if on < 0 {
		t.Fatal("no appliance saw the client connect")
	}

	// Load: 8 callers (the pool's sessions), 100 rounds each; the
	// appliance dies after the first 100 rounds.
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := round(w*1000 + i); err != nil {
					errs <- fmt.Errorf("caller %d, round %d: %w", w, i, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for done.Load() < 100 && len(errs) == 0 {
		time.Sleep(time.Millisecond)
	}
	apps[on].srv.Close()
	atKill := done.Load()
	<-finished
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if after := done.Load() - atKill; after < 100 {
		t.Fatalf("only %d rounds after the appliance died: not a failover under load", after)
	}
	if apps[1-on].conns.Load() == 0 {
		t.Fatal("the client never reached the other appliance")
	}
	for _, st := range p.Status() {
		if !st.InService {
			t.Fatalf("token %s out of service after the failover", st.Label)
		}
	}

	// Both gone: calls fail, the token goes out of service.
	apps[1-on].srv.Close()
	if err := round(-1); err == nil {
		t.Fatal("a call succeeded with no appliance")
	}
	waitFor(t, "the token out of service", func() bool { return !p.Status()[0].InService })
	// One back, at its address: the token comes back into service.
	restartAppliance(t, apps[on], dir)
	waitFor(t, "the token back in service", func() bool { return p.Status()[0].InService })
	if err := round(-2); err != nil {
		t.Fatalf("after the appliance came back: %v", err)
	}
}

// restartAppliance serves dir again at a's address, as a restarted
// member does.
func restartAppliance(t *testing.T, a *appliance, dir string) {
	t.Helper()
	cfg := a.cfg
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	a.srv = srv
	t.Cleanup(func() { srv.Close() })
}

// waitFor waits (up to 20 s) for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 20 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func aesKey(t testing.TB, s token.Session) ck.ObjectHandle {
	t.Helper()
	k, err := s.GenerateKey(ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{
		{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
		{Type: ck.CKA_ENCRYPT, Value: attr.Bool(true)},
		{Type: ck.CKA_DECRYPT, Value: attr.Bool(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}
