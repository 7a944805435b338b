package tokens_test

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/tokens"
)

// Large tokens are filled through the store in batches (one transaction
// per 5,000 objects), not through the engine, which would cost one commit
// per object. The objects are shaped like EC P-256 private keys: 20 clear
// attributes and a sealed blob. The blobs are not sealed under the token
// key (the test cannot reach it), which doubles as a check that opening and
// searching decrypt nothing: a decryption would fail.

func scaleKey(id uint64) *hsm.ObjectRecord {
	a := []ck.Attribute{
		{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))},
		{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_EC))},
		{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("key-%07d", id))},
		{Type: ck.CKA_ID, Value: []byte(fmt.Sprintf("id-%07d", id))},
		{Type: ck.CKA_EC_PARAMS, Value: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}},
		{Type: ck.CKA_KEY_GEN_MECHANISM, Value: attr.ULong(ck.ULong(ck.CKM_EC_KEY_PAIR_GEN))},
	}
	for _, t := range []ck.AttributeType{ck.CKA_TOKEN, ck.CKA_PRIVATE, ck.CKA_MODIFIABLE, ck.CKA_COPYABLE,
		ck.CKA_DESTROYABLE, ck.CKA_SENSITIVE, ck.CKA_SIGN, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_NEVER_EXTRACTABLE,
		ck.CKA_LOCAL, ck.CKA_DERIVE} {
		a = append(a, ck.Attribute{Type: t, Value: attr.Bool(true)})
	}
	for _, t := range []ck.AttributeType{ck.CKA_EXTRACTABLE, ck.CKA_DECRYPT, ck.CKA_UNWRAP} {
		a = append(a, ck.Attribute{Type: t, Value: attr.Bool(false)})
	}
	return &hsm.ObjectRecord{ID: id, Private: true, Attrs: a, Sealed: bytes.Repeat([]byte{0xa5}, 80)}
}

var (
	scaleMu   sync.Mutex
	scaleDirs = map[int]string{}
)

// scaleToken returns an initialised token directory (user PIN "user-pin")
// holding n scaleKey objects. It is built once per size and kept while
// the test or benchmark that first asked for it runs.
func scaleToken(tb testing.TB, n int) string {
	tb.Helper()
	scaleMu.Lock()
	defer scaleMu.Unlock()
	if d, ok := scaleDirs[n]; ok {
		return d
	}
	dir, err := os.MkdirTemp("", "gohsm-scale-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		scaleMu.Lock()
		defer scaleMu.Unlock()
		os.RemoveAll(dir)
		delete(scaleDirs, n)
	})
	fail := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	st, err := tokens.Open(dir)
	fail(err)
	cfg := hsm.DefaultConfig(st)
	cfg.KDFIterations = tortureKDF
	m, err := hsm.New(cfg)
	fail(err)
	fail(m.Initialize())
	fail(m.InitToken(0, []byte("so-pin-1"), "scale"))
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	fail(err)
	fail(m.Login(s, ck.CKU_SO, []byte("so-pin-1")))
	fail(m.InitPIN(s, []byte("user-pin")))
	fail(m.Finalize())

	d, err := tokens.Open(dir)
	fail(err)
	stores, err := d.Stores()
	fail(err)
	ts := stores[0].(*tokens.Store)
	const batch = 5000
	for i := 1; i <= n; i += batch {
		objs := make([]*hsm.ObjectRecord, 0, batch)
		for j := i; j < i+batch && j <= n; j++ {
			objs = append(objs, scaleKey(uint64(j)))
		}
		fail(ts.Commit(&hsm.Change{Put: objs}))
	}
	fail(d.Close())
	scaleDirs[n] = dir
	return dir
}

func openScale(tb testing.TB, dir string) (*hsm.Module, ck.SessionHandle) {
	tb.Helper()
	m, err := tortureEngine(dir)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := m.OpenSession(0, ck.CKF_SERIAL_SESSION)
	if err == nil {
		err = m.Login(s, ck.CKU_USER, []byte("user-pin"))
	}
	if err != nil {
		tb.Fatal(err)
	}
	return m, s
}

func findOne(m *hsm.Module, s ck.SessionHandle, tmpl []ck.Attribute) ([]ck.ObjectHandle, error) {
	if err := m.FindObjectsInit(s, tmpl); err != nil {
		return nil, err
	}
	hs, err := m.FindObjects(s, 10)
	if err != nil {
		return nil, err
	}
	return hs, m.FindObjectsFinal(s)
}

// TestScaleOpenFind opens a 20,000-object token through the engine and
// finds single objects by label and by id. It asserts what can be
// asserted without a clock: the right object comes back, and opening
// decrypted nothing. BenchmarkOpen and BenchmarkFind give the times.
func TestScaleOpenFind(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	dir := scaleToken(t, n)
	start := time.Now()
	m, s := openScale(t, dir)
	defer m.Finalize()
	t.Logf("open of %d objects (Initialize + login): %v", n, time.Since(start))
	for _, i := range []int{1, n / 3, n} {
		for _, tmpl := range [][]ck.Attribute{
			{{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("key-%07d", i))}},
			{{Type: ck.CKA_ID, Value: []byte(fmt.Sprintf("id-%07d", i))}},
			{{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_PRIVATE_KEY))}, {Type: ck.CKA_ID, Value: []byte(fmt.Sprintf("id-%07d", i))}},
		} {
			hs, err := findOne(m, s, tmpl)
			check(t, err)
			if len(hs) != 1 {
				t.Fatalf("find %v: %d objects", tmpl, len(hs))
			}
			res, err := m.GetAttributeValue(s, hs[0], []ck.AttributeRequest{{Type: ck.CKA_LABEL, Cap: 32}})
			check(t, err)
			if want := fmt.Sprintf("key-%07d", i); string(res[0].Value) != want {
				t.Fatalf("found %q, want %q", res[0].Value, want)
			}
		}
	}
	hs, err := findOne(m, s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("no such key")}})
	check(t, err)
	if len(hs) != 0 {
		t.Fatalf("found %d objects for a label nobody has", len(hs))
	}
	// Only now is a secret needed, and only now does the bad blob show:
	// as an error, not as a key.
	hs, err = findOne(m, s, []ck.Attribute{{Type: ck.CKA_LABEL, Value: []byte("key-0000001")}})
	check(t, err)
	if err := m.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, hs[0]); err == nil {
		if _, _, err := m.Sign(s, make([]byte, 32), 128); err == nil {
			t.Fatal("signed with a key whose sealed value is junk")
		}
	}
}

var scaleSizes = []int{1_000, 10_000, 100_000}

// BenchmarkOpen is C_Initialize on a token of 1k, 10k and 100k objects:
// tokens.Open, quick_check, loading every object's clear attributes into
// the engine's index. Run: go test -run '^$' -bench 'Open|Find' ./tokens
func BenchmarkOpen(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			dir := scaleToken(b, n)
			b.ResetTimer()
			for range b.N {
				st, err := tokens.Open(dir)
				if err != nil {
					b.Fatal(err)
				}
				cfg := hsm.DefaultConfig(st)
				m, err := hsm.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Initialize(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				m.Finalize()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkFind is C_FindObjectsInit + C_FindObjects + C_FindObjectsFinal
// for one object by CKA_LABEL and by CKA_ID, on a token of 1k, 10k and 100k
// objects.
func BenchmarkFind(b *testing.B) {
	for _, n := range scaleSizes {
		for _, by := range []ck.AttributeType{ck.CKA_LABEL, ck.CKA_ID} {
			name := "label"
			if by == ck.CKA_ID {
				name = "id"
			}
			b.Run(fmt.Sprintf("%dk/%s", n/1000, name), func(b *testing.B) {
				dir := scaleToken(b, n)
				m, s := openScale(b, dir)
				defer m.Finalize()
				b.ResetTimer()
				for i := range b.N {
					k := 1 + (i*7919)%n
					v := fmt.Sprintf("key-%07d", k)
					if by == ck.CKA_ID {
						v = fmt.Sprintf("id-%07d", k)
					}
					hs, err := findOne(m, s, []ck.Attribute{{Type: by, Value: []byte(v)}})
					if err != nil || len(hs) != 1 {
						b.Fatalf("find %s: %d, %v", v, len(hs), err)
					}
				}
			})
		}
	}
}

// BenchmarkCreate is C_CreateObject of one token AES key per operation
// through the engine: seal, one SQLite transaction, index. Reports
// objects/s.
func BenchmarkCreate(b *testing.B) {
	dir := b.TempDir()
	st, err := tokens.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	cfg := hsm.DefaultConfig(st)
	cfg.KDFIterations = tortureKDF
	m, err := hsm.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Initialize(); err != nil {
		b.Fatal(err)
	}
	defer m.Finalize()
	if err := m.InitToken(0, []byte("so-pin-1"), "bench"); err != nil {
		b.Fatal(err)
	}
	s, _ := m.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err := m.Login(s, ck.CKU_SO, []byte("so-pin-1")); err != nil {
		b.Fatal(err)
	}
	if err := m.InitPIN(s, []byte("user-pin")); err != nil {
		b.Fatal(err)
	}
	m.Logout(s)
	if err := m.Login(s, ck.CKU_USER, []byte("user-pin")); err != nil {
		b.Fatal(err)
	}
	val := bytes.Repeat([]byte{7}, 32)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := m.CreateObject(s, []ck.Attribute{
			{Type: ck.CKA_CLASS, Value: attr.ULong(ck.ULong(ck.CKO_SECRET_KEY))},
			{Type: ck.CKA_KEY_TYPE, Value: attr.ULong(ck.ULong(ck.CKK_AES))},
			{Type: ck.CKA_TOKEN, Value: attr.Bool(true)},
			{Type: ck.CKA_PRIVATE, Value: attr.Bool(true)},
			{Type: ck.CKA_LABEL, Value: []byte(fmt.Sprintf("k%d", i))},
			{Type: ck.CKA_VALUE, Value: val},
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "objects/s")
}
