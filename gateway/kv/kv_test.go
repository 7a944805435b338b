package kv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/gateway/token/p11mod"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

// contract runs the Store and Swapper contract on s.
func contract(t *testing.T, s Swapper) {
	t.Helper()
	if _, err := s.Get("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	for k, v := range map[string]string{"keys/a": "1", "keys/b": "2", "other/c": "3", "empty": ""} {
		if err := s.Put(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := s.Get("keys/b"); err != nil || string(v) != "2" {
		t.Fatalf("get: %q %v", v, err)
	}
	if v, err := s.Get("empty"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value: %#v %v", v, err)
	}
	if err := s.Put("keys/b", []byte("22")); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("keys/b"); string(v) != "22" {
		t.Fatalf("overwrite: %q", v)
	}
	keys, err := s.List("keys/")
	if err != nil || fmt.Sprint(keys) != "[keys/a keys/b]" {
		t.Fatalf("list: %v %v", keys, err)
	}
	all, _ := s.List("")
	if fmt.Sprint(all) != "[empty keys/a keys/b other/c]" {
		t.Fatalf("list all: %v", all)
	}
	if err := s.Delete("keys/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("keys/never"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	if _, err := s.Get("keys/a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if keys, _ := s.List("keys/"); fmt.Sprint(keys) != "[keys/b]" {
		t.Fatalf("list after delete: %v", keys)
	}
	// A deleted key comes back with Put.
	if err := s.Put("keys/a", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("keys/a"); string(v) != "again" {
		t.Fatalf("re-put: %q", v)
	}

	// CompareAndSwap: create-if-absent, swap, stale old, delete.
	if ok, err := s.CompareAndSwap("ring", nil, []byte("v1")); !ok || err != nil {
		t.Fatalf("cas create: %v %v", ok, err)
	}
	if ok, err := s.CompareAndSwap("ring", nil, []byte("v1b")); ok || err != nil {
		t.Fatalf("cas create over existing: %v %v", ok, err)
	}
	if ok, err := s.CompareAndSwap("ring", []byte("v0"), []byte("v2")); ok || err != nil {
		t.Fatalf("cas stale: %v %v", ok, err)
	}
	if ok, err := s.CompareAndSwap("ring", []byte("v1"), []byte("v2")); !ok || err != nil {
		t.Fatalf("cas: %v %v", ok, err)
	}
	if v, _ := s.Get("ring"); string(v) != "v2" {
		t.Fatalf("after cas: %q", v)
	}
	if ok, err := s.CompareAndSwap("ring", []byte("v2"), nil); !ok || err != nil {
		t.Fatalf("cas delete: %v %v", ok, err)
	}
	if _, err := s.Get("ring"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after cas delete: %v", err)
	}
	if ok, _ := s.CompareAndSwap("ring", []byte("v2"), []byte("v3")); ok {
		t.Fatal("cas on deleted key with an old value")
	}

	// Bad keys and values are refused, and nothing is written.
	if err := s.Put("", []byte("x")); err == nil {
		t.Fatal("empty key accepted")
	}
	if err := s.Put(string(bytes.Repeat([]byte("k"), MaxKey+1)), nil); err == nil {
		t.Fatal("oversized key accepted")
	}
	if err := s.Put("big", make([]byte, MaxValue+1)); err == nil {
		t.Fatal("oversized value accepted")
	}
	if _, err := s.Get("big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oversized value stored: %v", err)
	}
}

func TestMem(t *testing.T) { contract(t, NewMem()) }

func onToken(t *testing.T, tok token.Token, ns string) *tokenStore {
	t.Helper()
	s, err := OnToken(tok, ns)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*tokenStore)
}

func TestOnToken(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	tok := gwtest.Token(t, dir, "gw")
	s := onToken(t, tok, "test")
	contract(t, s)

	// The entries are private token data objects of our application,
	// one live record per key (older versions reaped).
	sess, err := tok.OpenSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	hs, err := sess.FindObjects([]ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("keys/b")}})
	if err != nil || len(hs) != 1 {
		t.Fatalf("objects of keys/b: %v %v", hs, err)
	}
	v, err := sess.GetAttributes(hs[0], ck.CKA_CLASS, ck.CKA_TOKEN, ck.CKA_PRIVATE, ck.CKA_APPLICATION)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v[0], attr.ULong(ck.ULong(ck.CKO_DATA))) || !bytes.Equal(v[1], attr.Bool(true)) ||
		!bytes.Equal(v[2], attr.Bool(true)) || string(v[3]) != "gohsm-gateway/test" {
		t.Fatalf("attributes: %x", v)
	}

	// Another namespace on the same token sees nothing of ours; another
	// gateway (its own engine on the same store) sees everything.
	if keys, _ := onToken(t, tok, "other").List(""); len(keys) != 0 {
		t.Fatalf("other namespace sees %v", keys)
	}
	other := onToken(t, gwtest.Token(t, dir, "gw"), "test")
	if v, err := other.Get("keys/b"); err != nil || string(v) != "22" {
		t.Fatalf("second gateway: %q %v", v, err)
	}

	// An object of someone else's in our namespace is ignored.
	if _, err := sess.CreateObject(append(s.template("keys/z"),
		ck.Attribute{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		ck.Attribute{Type: ck.CKA_VALUE, Value: []byte("not a record")})); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.List("keys/"); fmt.Sprint(keys) != "[keys/a keys/b]" {
		t.Fatalf("foreign object listed: %v", keys)
	}
}

// TestCASTwoGateways runs increments from two gateways (two engines on one
// store, as two processes are) and several goroutines each: with a
// read-modify-CAS loop no increment may be lost.
func TestCASTwoGateways(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	stores := []*tokenStore{
		onToken(t, gwtest.Token(t, dir, "gw"), "cas"),
		onToken(t, gwtest.Token(t, dir, "gw"), "cas"),
	}
	const workers, each = 3, 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for _, s := range stores {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					for {
						old, err := s.Get("counter")
						n := 0
						switch {
						case errors.Is(err, ErrNotFound):
							old = nil
						case err != nil:
							errs <- err
							return
						default:
							n, _ = strconv.Atoi(string(old))
						}
						ok, err := s.CompareAndSwap("counter", old, []byte(strconv.Itoa(n+1)))
						if err != nil {
							errs <- err
							return
						}
						if ok {
							break
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, err := stores[1].Get("counter")
	if err != nil || string(v) != strconv.Itoa(2*workers*each) {
		t.Fatalf("counter %q (want %d): %v", v, 2*workers*each, err)
	}
}

// TestAbandonedTentative: a writer that died between create and commit
// blocks the key's writers only until its record is Lease old; readers
// never see it.
func TestAbandonedTentative(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	tok := gwtest.Token(t, dir, "gw")
	s := onToken(t, tok, "t")
	clock := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return clock }
	if err := s.Put("k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	sess, _ := tok.OpenSession()
	defer sess.Close()
	dead := record{version: 2, at: clock.UnixNano(), value: []byte("dead")}
	if _, err := sess.CreateObject(append(s.template("k"+pendingSuffix),
		ck.Attribute{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
		ck.Attribute{Type: ck.CKA_VALUE, Value: dead.encode()})); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("k"); string(v) != "v1" {
		t.Fatalf("reader saw a tentative record: %q", v)
	}
	// Blocked while the dead writer's lease runs (the loop gives up).
	s2 := &tokenStore{t: tok, app: s.app, now: s.now, attempts: 3}
	if _, err := s2.write("k", nil, []byte("v2")); !errors.Is(err, ErrContended) {
		t.Fatalf("write through a live tentative record: %v", err)
	}
	clock = clock.Add(Lease)
	if err := s.Put("k", []byte("v3")); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("k"); string(v) != "v3" {
		t.Fatalf("after lease: %q", v)
	}
	if hs, _ := sess.FindObjects(s.template("")); len(hs) != 1 {
		t.Fatalf("%d records left, want 1", len(hs))
	}
	// An old tombstone alone is reaped by List.
	if err := s.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if hs, _ := sess.FindObjects(s.template("k")); len(hs) != 1 {
		t.Fatalf("tombstone: %d records", len(hs))
	}
	clock = clock.Add(Lease)
	s.List("")
	if hs, _ := sess.FindObjects(s.template("k")); len(hs) != 0 {
		t.Fatalf("old tombstone not reaped: %d records", len(hs))
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	gwtest.CleanupSoftHSM()
	os.Exit(code)
}

// TestOnSoftHSM runs the contract on an external module's token, and the
// two-writer increments through two module contexts.
func TestOnSoftHSM(t *testing.T) {
	mod := gwtest.SoftHSM(t, "kv")
	openTok := func() token.Token {
		tok, err := p11mod.Open(p11mod.Config{Path: mod, Label: "kv", PIN: []byte(gwtest.UserPIN)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tok.Close() })
		return tok
	}
	tok := openTok()
	contract(t, onToken(t, tok, gwtest.Fresh("test")))
	cas := gwtest.Fresh("cas")
	a, b := onToken(t, tok, cas), onToken(t, openTok(), cas)
	var wg sync.WaitGroup
	for _, s := range []*tokenStore{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				for {
					old, err := s.Get("n")
					if errors.Is(err, ErrNotFound) {
						old = nil
					} else if err != nil {
						t.Error(err)
						return
					}
					n, _ := strconv.Atoi(string(old))
					ok, err := s.CompareAndSwap("n", old, []byte(strconv.Itoa(n+1)))
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if v, err := a.Get("n"); err != nil || string(v) != "20" {
		t.Fatalf("counter %q %v", v, err)
	}
}

// TestReapedTombstone: a writer that read a key's tombstone must not
// commit over the key made again (from version 1) after another gateway
// reaped the tombstone: its version would hide the new value.
func TestReapedTombstone(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	tok := gwtest.Token(t, dir, "gw")
	t0 := time.Unix(2_000_000, 0)
	a := onToken(t, tok, "t")
	a.now = func() time.Time { return t0 }
	b := onToken(t, tok, "t")
	b.now = func() time.Time { return t0.Add(Lease) } // the reaper's clock: the tombstone is old
	if err := a.Put("k", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete("k"); err != nil {
		t.Fatal(err)
	}
	calls := 0
	ok, err := a.write("k", func(cur *record) bool {
		calls++
		if calls == 1 {
			// Between a's read (the tombstone) and a's commit.
			b.List("")
			if err := b.Put("k", []byte("b")); err != nil {
				t.Fatal(err)
			}
		}
		return cur == nil || cur.flags&tombstone != 0 // "create if absent"
	}, []byte("c"))
	if err != nil || ok {
		t.Fatalf("create-if-absent over a re-made key: %v %v", ok, err)
	}
	if v, err := a.Get("k"); err != nil || string(v) != "b" {
		t.Fatalf("value %q %v, want b", v, err)
	}
}
