package transit

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/gateway/internal/gwtest"
	"github.com/gohsm/gohsm/gateway/kv"
)

// TestConcurrentRotateTwoGateways runs two Engines, each with its own
// in-process engine on one token store (as two gateway processes), with
// the metadata on the token (kv.OnToken): rotations racing on one key all
// land, each version once, no orphan objects are left by the losers, and
// each gateway decrypts what the other made.
func TestConcurrentRotateTwoGateways(t *testing.T) {
	dir := gwtest.Store(t, "gw")
	var engines [2]*Engine
	tok := gwtest.Token(t, dir, "gw")
	for i := range engines {
		tk := gwtest.Token(t, dir, "gw")
		meta, err := kv.OnToken(tk, "test")
		if err != nil {
			t.Fatal(err)
		}
		ex := gwtest.NewExec(tk)
		t.Cleanup(func() { ex.Close() })
		if engines[i], err = New("transit", ex, meta, Config{}); err != nil {
			t.Fatal(err)
		}
	}
	mustOK(engines[0].CreateKey(bg, "k", nil))(t)
	const perGateway = 6
	var mu sync.Mutex
	made := map[string]string{} // ciphertext -> plaintext
	var wg sync.WaitGroup
	errs := make(chan error, 2*perGateway)
	for g, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perGateway {
				if _, err := e.RotateKey(bg, "k", nil); err != nil {
					errs <- fmt.Errorf("gateway %d rotate %d: %w", g, i, err)
					return
				}
				pt := fmt.Sprintf("gateway %d after rotate %d", g, i)
				c, err := e.Encrypt(bg, "k", &EncryptRequest{EncryptItem: EncryptItem{Plaintext: b64s(pt)}})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				made[c.Ciphertext] = pt
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const want = 1 + 2*perGateway
	for g, e := range engines {
		rk, err := e.ReadKey(bg, "k")
		if err != nil {
			t.Fatal(err)
		}
		if rk.LatestVersion < want { // the cache may lag by MetaTTL: read afresh
			r, _, err := e.load("k", true)
			if err != nil {
				t.Fatal(err)
			}
			if rk, err = e.read(r); err != nil {
				t.Fatal(err)
			}
		}
		if rk.LatestVersion != want || len(rk.Keys) != want {
			t.Fatalf("gateway %d: latest %d, %d versions; want %d", g, rk.LatestVersion, len(rk.Keys), want)
		}
	}
	rg, _, err := engines[1].load("k", false)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, tok, "gohsm-transit/transit/k/")
	ids := map[string]bool{}
	for v := 1; v <= want; v++ {
		ver := rg.Versions[v]
		if ver == nil || ids[ver.ID] || !strings.Contains(ver.ID, fmt.Sprintf("/v%d/", v)) {
			t.Fatalf("version %d: %+v", v, ver)
		}
		ids[ver.ID] = true
		for _, id := range ver.ids(engines[0].types.types["aes256-gcm96"]) {
			if _, ok := objs[string(id)]; !ok {
				t.Fatalf("version %d: object %s missing", v, id)
			}
		}
	}
	if len(objs) != 2*want {
		t.Fatalf("%d objects on the token for %d versions of 2: losers left orphans", len(objs), want)
	}
	t.Logf("lost swaps (retried rotations): %d + %d", engines[0].Stats().LostSwaps, engines[1].Stats().LostSwaps)
	if len(made) != 2*perGateway {
		t.Fatal(len(made))
	}
	for ct, pt := range made {
		for g, e := range engines {
			r, err := e.Decrypt(bg, "k", &DecryptRequest{DecryptItem: DecryptItem{Ciphertext: ct}})
			if err != nil || *r.Plaintext != b64s(pt) {
				t.Fatalf("gateway %d decrypting %q: %v", g, pt, err)
			}
		}
	}
}

// hookStore runs before once, just before its next CompareAndSwap: a
// deterministic interleaving of another writer between read and write.
type hookStore struct {
	kv.Swapper
	before func()
}

func (h *hookStore) CompareAndSwap(key string, old, new []byte) (bool, error) {
	if f := h.before; f != nil {
		h.before = nil
		f()
	}
	return h.Swapper.CompareAndSwap(key, old, new)
}

// TestRotateLosesSwapDeterministically forces the race: gateway B
// rotates between gateway A's read and A's write. A's write must fail,
// A's objects for "v2" must go, and A must land as v3.
func TestRotateLosesSwapDeterministically(t *testing.T) {
	f := newFixture(t, Config{})
	mem := kv.NewMem()
	hook := &hookStore{Swapper: mem}
	a, err := New("transit", f.ex, hook, Config{MetaTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New("transit", f.ex, mem, Config{MetaTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustOK(a.CreateKey(bg, "k", &CreateKeyRequest{Type: "ecdsa-p256"}))(t)
	hook.before = func() { mustOK(b.RotateKey(bg, "k", nil))(t) }
	rk := mustOK(a.RotateKey(bg, "k", nil))(t)
	if rk.LatestVersion != 3 || len(rk.Keys) != 3 || a.Stats().LostSwaps != 1 {
		t.Fatalf("latest %d, %d versions, %d lost swaps", rk.LatestVersion, len(rk.Keys), a.Stats().LostSwaps)
	}
	if rk.Keys["2"].Public.PublicKey == rk.Keys["3"].Public.PublicKey {
		t.Fatal("v2 and v3 share a key")
	}
	// ecdsa: private, public and HMAC objects per version, and a public
	// key entry; A's discarded v2 left nothing.
	if n := len(objects(t, f.tok, "gohsm-transit/transit/k/")); n != 9 {
		t.Fatalf("%d objects for 3 versions", n)
	}
	if pubs, _ := mem.List("transit/transit/pub/k/"); len(pubs) != 3 {
		t.Fatalf("%d public key entries for 3 versions: %v", len(pubs), pubs)
	}
	for _, v := range []Int{2, 3} {
		s := mustOK(b.Sign(bg, "k", &SignRequest{SignItem: SignItem{Input: b64s("m")}, KeyVersion: v}))(t)
		if ok := mustOK(a.Verify(bg, "k", &VerifyRequest{VerifyItem: VerifyItem{Input: b64s("m"), Signature: s.Signature}}))(t); !ok.Valid {
			t.Fatalf("v%d signature from B does not verify on A", v)
		}
	}
}

// TestManyVersions: public keys live beside the ring's entry, so a ring
// of large (ML-DSA-87) keys keeps rotating far past what one token data
// object could hold, and trim and delete remove the entries.
func TestManyVersions(t *testing.T) {
	f := newFixture(t, Config{})
	mem := f.e.meta.(*kv.Mem)
	mustOK(f.e.CreateKey(bg, "pq", &CreateKeyRequest{Type: "ml-dsa-87"}))(t)
	const n = 100
	for range n - 1 {
		mustOK(f.e.RotateKey(bg, "pq", nil))(t)
	}
	rk := mustOK(f.e.ReadKey(bg, "pq"))(t)
	if rk.LatestVersion != n || len(rk.Keys) != n || len(rk.Keys["77"].Public.PublicKey) < 3000 {
		t.Fatalf("latest %d, %d keys", rk.LatestVersion, len(rk.Keys))
	}
	raw, _ := mem.Get(f.e.metaKey("pq"))
	t.Logf("ring entry: %d bytes for %d versions (%d per version)", len(raw), n, len(raw)/n)
	if len(raw) > kv.MaxValue/10 {
		t.Fatalf("ring entry of %d bytes", len(raw))
	}
	// A fresh Engine (another gateway) reads the public keys from the
	// store and gets the same.
	e2, err := New("transit", f.ex, mem, Config{})
	if err != nil {
		t.Fatal(err)
	}
	rk2 := mustOK(e2.ReadKey(bg, "pq"))(t)
	if rk2.Keys["42"].Public.PublicKey != rk.Keys["42"].Public.PublicKey {
		t.Fatal("public keys differ between gateways")
	}
	v := Int(n - 1)
	yes := Bool(true)
	mustOK(f.e.ConfigKey(bg, "pq", &ConfigKeyRequest{MinDecryptionVersion: &v, DeletionAllowed: &yes}))(t)
	mustOK(f.e.TrimKey(bg, "pq", &TrimKeyRequest{MinAvailableVersion: v}))(t)
	if pubs, _ := mem.List("transit/transit/pub/pq/"); len(pubs) != 2 {
		t.Fatalf("%d public key entries after trim", len(pubs))
	}
	if err := f.e.DeleteKey(bg, "pq"); err != nil {
		t.Fatal(err)
	}
	if pubs, _ := mem.List("transit/transit/"); len(pubs) != 0 {
		t.Fatalf("entries left after delete: %v", pubs)
	}
	if n := len(objects(t, f.tok, "gohsm-transit/transit/pq/")); n != 0 {
		t.Fatalf("%d objects left after delete", n)
	}
}
