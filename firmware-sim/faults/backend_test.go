package faults

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/attr"
	"github.com/gohsm/gohsm/hsm/ck"
)

const (
	soPIN   = "so-pin-1"
	userPIN = "user-pin"
	label   = "faults-token"
)

var p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantRV(t testing.TB, err error, rv ck.RV) {
	t.Helper()
	if got := hsm.ToRV(err); got != rv {
		t.Fatalf("got %v (%v), want %v", got, err, rv)
	}
}

func mustPlan(t testing.TB, s string) *Plan {
	t.Helper()
	p, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fixture is an in-process engine (memory storage) behind the decorator,
// with an initialised token in slot 0, a user session logged in, an EC key
// pair (token objects) and an AES key. It is set up under the empty plan;
// tests then set theirs, so counting starts at their first call.
type fixture struct {
	eng       *hsm.Module
	inj       *Injector
	be        *Backend
	s         ck.SessionHandle
	ecPriv    ck.ObjectHandle
	ecPub     ck.ObjectHandle
	aes       ck.ObjectHandle
	digest    []byte
	tokenSlot ck.SlotID
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	cfg := hsm.DefaultConfig(hsm.NewMemoryStorage())
	cfg.KDFIterations = 10
	eng, err := hsm.New(cfg)
	must(t, err)
	f := &fixture{eng: eng, inj: New(nil)}
	f.be = Wrap(eng, f.inj)
	t.Cleanup(func() { f.be.Finalize(); f.inj.SetPlan(nil) })
	must(t, f.be.Initialize())
	must(t, f.be.InitToken(0, []byte(soPIN), label))
	s, err := f.be.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	must(t, f.be.Login(s, ck.CKU_SO, []byte(soPIN)))
	must(t, f.be.InitPIN(s, []byte(userPIN)))
	must(t, f.be.Logout(s))
	must(t, f.be.Login(s, ck.CKU_USER, []byte(userPIN)))
	f.s = s
	f.ecPub, f.ecPriv, err = f.be.GenerateKeyPair(s, ck.Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN},
		[]ck.Attribute{{Type: ck.CKA_EC_PARAMS, Value: p256}, {Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_VERIFY, Value: attr.Bool(true)}},
		[]ck.Attribute{{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_SIGN, Value: attr.Bool(true)}})
	must(t, err)
	f.aes, err = f.be.GenerateKey(s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(32)},
		{Type: ck.CKA_ENCRYPT, Value: attr.Bool(true)}, {Type: ck.CKA_DECRYPT, Value: attr.Bool(true)}})
	must(t, err)
	d := sha256.Sum256([]byte("message"))
	f.digest = d[:]
	return f
}

// sign is one signature as miekg/pkcs11 (and so crypto11) makes it:
// C_SignInit, C_Sign with a NULL buffer (the size query), C_Sign.
func (f *fixture) sign(m ck.MechanismType) error {
	if err := f.be.SignInit(f.s, ck.Mechanism{Type: m}, f.ecPriv); err != nil {
		return err
	}
	_, need, err := f.be.Sign(f.s, f.digest, -1)
	if err != nil {
		return err
	}
	_, _, err = f.be.Sign(f.s, f.digest, need)
	return err
}

// nth counts a function's calls from 1, size queries included; the
// injected error is the planned CKR on exactly that call, it never reaches
// the engine, and it ends the operation as the engine's own errors do: the
// next C_SignInit starts afresh (no CKR_OPERATION_ACTIVE) and signing goes
// on.
func TestNth(t *testing.T) {
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, `{"rules": [{"function": "C_Sign", "nth": 3, "rv": "CKR_DEVICE_ERROR"}]}`))
	must(t, f.sign(ck.CKM_ECDSA)) // C_Sign calls 1, 2
	err := f.sign(ck.CKM_ECDSA)   // call 3: the size query
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	var fault *Fault
	if !errors.As(err, &fault) || fault.N != 3 || fault.Function != "C_Sign" || fault.Rule != "rules[0]" {
		t.Fatalf("fault %+v", fault)
	}
	if !strings.Contains(err.Error(), "rules[0]") {
		t.Errorf("error %q does not name its rule", err)
	}
	// The operation ended: C_Sign now has none, C_SignInit is accepted.
	_, _, err = f.be.Sign(f.s, f.digest, 64) // call 4
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	for range 3 {
		must(t, f.sign(ck.CKM_ECDSA))
	}
	// count widens nth to a run of calls; count 0 is "from the nth on".
	f.inj.SetPlan(mustPlan(t, `{"rules": [{"function": "C_GenerateRandom", "nth": 2, "count": 3, "rv": "CKR_DEVICE_MEMORY"},
		{"function": "C_SeedRandom", "nth": 2, "count": 0, "rv": "CKR_FUNCTION_FAILED"}]}`))
	var got []ck.RV
	var seeds []ck.RV
	for range 7 {
		_, err := f.be.GenerateRandom(f.s, 8)
		got = append(got, hsm.ToRV(err))
		seeds = append(seeds, hsm.ToRV(f.be.SeedRandom(f.s, []byte{1})))
	}
	ok, mem, failed := ck.CKR_OK, ck.CKR_DEVICE_MEMORY, ck.CKR_FUNCTION_FAILED
	if !slices.Equal(got, []ck.RV{ok, mem, mem, mem, ok, ok, ok}) {
		t.Errorf("nth 2 count 3: %v", got)
	}
	// The engine answers C_SeedRandom CKR_RANDOM_SEED_NOT_SUPPORTED or OK;
	// from the 2nd call on the plan answers.
	for i, rv := range seeds[1:] {
		if rv != failed {
			t.Errorf("C_SeedRandom call %d: %v", i+2, rv)
		}
	}
	if seeds[0] == failed {
		t.Error("C_SeedRandom call 1 failed")
	}
}

// Multi-part errors end the operation too (Update and Final), and dual
// functions end both their operations.
func TestErrorsEndOperations(t *testing.T) {
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, `{"rules": [{"function": "C_SignUpdate", "nth": 2, "rv": "CKR_DEVICE_ERROR"},
		{"function": "C_EncryptFinal", "nth": 1, "rv": "CKR_DEVICE_REMOVED"},
		{"function": "C_DigestEncryptUpdate", "nth": 1, "rv": "CKR_DEVICE_ERROR"}]}`))
	must(t, f.be.SignInit(f.s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, f.ecPriv))
	must(t, f.be.SignUpdate(f.s, []byte("a")))
	wantRV(t, f.be.SignUpdate(f.s, []byte("b")), ck.CKR_DEVICE_ERROR)
	_, _, err := f.be.SignFinal(f.s, 128)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	iv := make([]byte, 16)
	must(t, f.be.EncryptInit(f.s, ck.Mechanism{Type: ck.CKM_AES_CBC_PAD, Param: iv}, f.aes))
	_, _, err = f.be.EncryptUpdate(f.s, []byte("0123456789abcdef0123"), 64)
	must(t, err)
	_, _, err = f.be.EncryptFinal(f.s, 64)
	wantRV(t, err, ck.CKR_DEVICE_REMOVED)
	_, _, err = f.be.EncryptFinal(f.s, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	must(t, f.be.DigestInit(f.s, ck.Mechanism{Type: ck.CKM_SHA256}))
	must(t, f.be.EncryptInit(f.s, ck.Mechanism{Type: ck.CKM_AES_CBC, Param: iv}, f.aes))
	_, _, err = f.be.DigestEncryptUpdate(f.s, make([]byte, 16), 64)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	_, _, err = f.be.DigestFinal(f.s, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	_, _, err = f.be.EncryptFinal(f.s, 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)

	// An injected error in a C_*Init leaves no operation (the call never
	// ran), and the next C_*Init works.
	f.inj.SetPlan(mustPlan(t, `{"rules": [{"function": "C_SignInit", "nth": 1, "rv": "CKR_DEVICE_ERROR"}]}`))
	wantRV(t, f.be.SignInit(f.s, ck.Mechanism{Type: ck.CKM_ECDSA}, f.ecPriv), ck.CKR_DEVICE_ERROR)
	must(t, f.sign(ck.CKM_ECDSA))
}

// A part of a multi-part message: the decorator ends the message-based
// process (documented), a whole message or a Begin ends nothing.
func TestMessageErrors(t *testing.T) {
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, `{"rules": [{"function": "C_EncryptMessage", "nth": 1, "rv": "CKR_DEVICE_ERROR"},
		{"function": "C_EncryptMessageNext", "nth": 1, "rv": "CKR_DEVICE_ERROR"}]}`))
	must(t, f.be.MessageEncryptInit(f.s, ck.Mechanism{Type: ck.CKM_AES_GCM}, f.aes))
	param := func() *ck.GCMMessageParams {
		return &ck.GCMMessageParams{IV: bytes.Repeat([]byte{0x42}, 12), TagBits: 128, Tag: make([]byte, 16)}
	}
	_, _, err := f.be.EncryptMessage(f.s, param(), nil, []byte("one"), 64)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	_, _, err = f.be.EncryptMessage(f.s, param(), nil, []byte("two"), 64)
	must(t, err) // the process lives on
	p := param()
	must(t, f.be.EncryptMessageBegin(f.s, p, nil))
	_, _, err = f.be.EncryptMessageNext(f.s, p, []byte("part"), 64, 0)
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	_, _, err = f.be.EncryptMessage(f.s, param(), nil, []byte("three"), 64)
	wantRV(t, err, ck.CKR_OPERATION_NOT_INITIALIZED)
	must(t, f.be.MessageEncryptInit(f.s, ck.Mechanism{Type: ck.CKM_AES_GCM}, f.aes))
}

// CKR_SESSION_CLOSED (and _HANDLE_INVALID) leave the session closed: the
// application's next call on it is CKR_SESSION_HANDLE_INVALID, as after a
// real device closed it.
func TestSessionClosed(t *testing.T) {
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, `{"rules": [{"function": "C_GenerateRandom", "nth": 1, "rv": "CKR_SESSION_CLOSED"}]}`))
	_, err := f.be.GenerateRandom(f.s, 8)
	wantRV(t, err, ck.CKR_SESSION_CLOSED)
	_, err = f.be.GetSessionInfo(f.s)
	wantRV(t, err, ck.CKR_SESSION_HANDLE_INVALID)
}

// failures runs n calls of C_GenerateRandom and lists the numbers of those
// that failed, with their codes.
func failures(t testing.TB, f *fixture, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		if _, err := f.be.GenerateRandom(f.s, 4); err != nil {
			out = append(out, strings.Join([]string{strconv.Itoa(i), hsm.ToRV(err).String()}, ":"))
		}
	}
	return out
}

// With a seed, two runs fail identically (1,000 calls, two probability
// rules); another seed fails differently; the rate is the probability's.
func TestDeterminism(t *testing.T) {
	plan := func(seed string) string {
		return `{"seed": ` + seed + `, "rules": [{"function": "C_GenerateRandom", "probability": 0.1, "rv": "CKR_DEVICE_MEMORY"},
			{"function": "C_GenerateRandom", "probability": 0.05, "rv": "CKR_DEVICE_ERROR"}]}`
	}
	run := func(seed string) []string {
		f := newFixture(t)
		f.inj.SetPlan(mustPlan(t, plan(seed)))
		return failures(t, f, 1000)
	}
	a, b, c := run("7"), run("7"), run("8")
	if !slices.Equal(a, b) {
		t.Fatalf("seed 7 twice:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatal("seeds 7 and 8 fail identically")
	}
	if n := len(a); n < 100 || n > 200 {
		t.Fatalf("%d of 1000 failed, want about 145", n)
	}
	mem := 0
	for _, s := range a {
		if strings.HasSuffix(s, "CKR_DEVICE_MEMORY") {
			mem++
		}
	}
	if mem < 70 || mem > 130 {
		t.Fatalf("%d CKR_DEVICE_MEMORY, want about 100 (the first rule wins when both pick a call)", mem)
	}
	// Other functions' calls and other threads do not move a rule's
	// draws: interleaving C_GetSessionInfo calls, or making the calls from
	// several goroutines, fails the same numbered calls.
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, plan("7")))
	var mixed []string
	for i := 1; i <= 1000; i++ {
		f.be.GetSessionInfo(f.s)
		if _, err := f.be.GenerateRandom(f.s, 4); err != nil {
			mixed = append(mixed, strconv.Itoa(i)+":"+hsm.ToRV(err).String())
		}
	}
	if !slices.Equal(a, mixed) {
		t.Fatal("calls of another function changed the failures")
	}
	f.inj.SetPlan(mustPlan(t, plan("7")))
	var mu sync.Mutex
	count := map[ck.RV]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 250 {
				_, err := f.be.GenerateRandom(f.s, 4)
				mu.Lock()
				count[hsm.ToRV(err)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if count[ck.CKR_DEVICE_MEMORY] != mem || count[ck.CKR_DEVICE_ERROR] != len(a)-mem {
		t.Fatalf("4 threads: %v, one thread: %d + %d", count, mem, len(a)-mem)
	}
}

// A rule's mechanism matches the mechanism argument of C_*Init and the
// like, and for an operation's calls the mechanism it was begun with.
func TestMechanism(t *testing.T) {
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, `{"rules": [{"function": "C_SignInit", "mechanism": "CKM_ECDSA_SHA256", "rv": "CKR_DEVICE_ERROR"},
		{"function": "C_Sign", "mechanism": "CKM_ECDSA", "nth": 2, "rv": "CKR_FUNCTION_FAILED"},
		{"mechanism": "CKM_AES_KEY_GEN", "rv": "CKR_DEVICE_MEMORY"}]}`))
	wantRV(t, f.be.SignInit(f.s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA256}, f.ecPriv), ck.CKR_DEVICE_ERROR)
	// ECDSA_SHA384 operations are not counted by the CKM_ECDSA C_Sign rule.
	must(t, f.be.SignInit(f.s, ck.Mechanism{Type: ck.CKM_ECDSA_SHA384}, f.ecPriv))
	_, _, err := f.be.Sign(f.s, []byte("x"), 128)
	must(t, err)
	// C_Sign of a CKM_ECDSA operation: the size query is match 1, the
	// signature match 2, which fails.
	wantRV(t, f.sign(ck.CKM_ECDSA), ck.CKR_FUNCTION_FAILED)
	must(t, f.sign(ck.CKM_ECDSA))
	// A rule with a mechanism and no function: every call that takes one.
	_, err = f.be.GenerateKey(f.s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)}})
	wantRV(t, err, ck.CKR_DEVICE_MEMORY)
	_, err = f.be.GenerateKey(f.s, ck.Mechanism{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)}})
	must(t, err)
}

// Latency rules delay the picked calls by their distribution's draw; the
// draws repeat with the seed.
func TestLatency(t *testing.T) {
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, `{"rules": [{"function": "C_GenerateRandom", "latency_ms": 30},
		{"function": "C_GenerateRandom", "nth": 2, "latency": {"dist": "uniform", "min_ms": 40, "max_ms": 50}}]}`))
	for i, want := range []time.Duration{30 * time.Millisecond, 70 * time.Millisecond, 30 * time.Millisecond} {
		start := time.Now()
		_, err := f.be.GenerateRandom(f.s, 4)
		must(t, err)
		if got := time.Since(start); got < want || got > want+200*time.Millisecond {
			t.Errorf("call %d took %v, want %v and a little", i+1, got, want)
		}
	}
	// Samples: every distribution within its bounds, repeatable.
	for _, js := range []string{
		`{"dist": "fixed", "ms": 3}`,
		`{"dist": "uniform", "min_ms": 1, "max_ms": 2}`,
		`{"dist": "normal", "mean_ms": 5, "stddev_ms": 2, "min_ms": 1, "max_ms": 9}`,
		`{"dist": "lognormal", "median_ms": 5, "sigma": 0.5, "max_ms": 40}`,
		`{"dist": "lognormal", "median_ms": 5, "p99_ms": 10}`,
	} {
		p := mustPlan(t, `{"rules": [{"latency": `+js+`}]}`)
		d := p.Rules[0].Latency
		var sum float64
		for n := uint64(1); n <= 2000; n++ {
			x := d.sample(uniform(3, 1, n), uniform(3, 2, n))
			if x != d.sample(uniform(3, 1, n), uniform(3, 2, n)) {
				t.Fatal("a sample is not a function of its draw")
			}
			ms := float64(x) / float64(time.Millisecond)
			lo, hi := d.Min, d.Max
			if d.Kind == DistFixed {
				lo, hi = d.MS, d.MS
			}
			if ms < lo-1e-6 || (hi > 0 && ms > hi+1e-6) {
				t.Fatalf("%s: sample %v outside [%v, %v]", js, ms, lo, hi)
			}
			sum += ms
		}
		if mean, want := sum/2000, d.MeanMS(); (d.Kind == DistUniform || d.Kind == DistFixed || strings.Contains(js, "p99")) && (mean < want*0.95 || mean > want*1.05) {
			t.Errorf("%s: mean %.3f, want %.3f", js, mean, want)
		}
	}
	// A profile delays by its figure: yubikey's ECDSA signature ~71.6 ms,
	// only for CKM_ECDSA operations' C_Sign.
	f.inj.SetPlan(mustPlan(t, `{"profile": "yubikey"}`))
	must(t, f.be.SignInit(f.s, ck.Mechanism{Type: ck.CKM_ECDSA}, f.ecPriv))
	start := time.Now()
	_, _, err := f.be.Sign(f.s, f.digest, 128)
	must(t, err)
	if got := time.Since(start); got < 68*time.Millisecond || got > 300*time.Millisecond {
		t.Errorf("yubikey ECDSA sign took %v, want about 71.6 ms", got)
	}
	start = time.Now()
	_, err = f.be.GenerateRandom(f.s, 4)
	must(t, err)
	if got := time.Since(start); got > 20*time.Millisecond {
		t.Errorf("yubikey profile delayed C_GenerateRandom by %v: no figure, no delay", got)
	}
}

// Token removal: at the planned call the token's sessions die
// (CKR_SESSION_HANDLE_INVALID, its login with them), CKF_TOKEN_PRESENT goes
// off, the slot leaves the list of slots with a token, token calls answer
// CKR_TOKEN_NOT_PRESENT, and C_WaitForSlotEvent reports the slot, at once
// with CKF_DONT_BLOCK and by waking a blocked caller; after for_ms the
// token is back, and a new session logs in and signs.
func TestTokenRemoval(t *testing.T) {
	f := newFixture(t)
	other, err := f.be.OpenSession(0, ck.CKF_SERIAL_SESSION)
	must(t, err)
	info, err := f.be.GetSlotInfo(0)
	must(t, err)
	if info.Flags&ck.CKF_REMOVABLE_DEVICE != 0 {
		t.Fatal("CKF_REMOVABLE_DEVICE before any plan")
	}
	_, err = f.be.WaitForSlotEvent(ck.CKF_DONT_BLOCK)
	wantRV(t, err, ck.CKR_NO_EVENT)

	f.inj.SetPlan(mustPlan(t, `{"events": [{"event": "remove_token", "slot": 0, "after_calls": 3, "for_ms": 400}]}`))
	for range 3 {
		_, err := f.be.GenerateRandom(f.s, 4)
		must(t, err)
	}
	_, err = f.be.GenerateRandom(f.s, 4) // call 4: the token is out before it runs
	wantRV(t, err, ck.CKR_SESSION_HANDLE_INVALID)
	_, err = f.be.GetSessionInfo(other)
	wantRV(t, err, ck.CKR_SESSION_HANDLE_INVALID)
	info, err = f.be.GetSlotInfo(0)
	must(t, err)
	if info.Flags&ck.CKF_TOKEN_PRESENT != 0 || info.Flags&ck.CKF_REMOVABLE_DEVICE == 0 {
		t.Fatalf("slot flags %#x while removed", info.Flags)
	}
	present, err := f.be.GetSlotList(true)
	must(t, err)
	all, err := f.be.GetSlotList(false)
	must(t, err)
	if slices.Contains(present, 0) || !slices.Contains(all, 0) {
		t.Fatalf("slot lists while removed: present %v, all %v", present, all)
	}
	_, err = f.be.GetTokenInfo(0)
	wantRV(t, err, ck.CKR_TOKEN_NOT_PRESENT)
	_, err = f.be.OpenSession(0, ck.CKF_SERIAL_SESSION)
	wantRV(t, err, ck.CKR_TOKEN_NOT_PRESENT)
	_, err = f.be.GetMechanismList(0)
	wantRV(t, err, ck.CKR_TOKEN_NOT_PRESENT)
	// The free slot (1) is untouched.
	if _, err := f.be.GetTokenInfo(1); err != nil {
		t.Fatal(err)
	}
	// The removal is an event, reported once.
	slot, err := f.be.WaitForSlotEvent(ck.CKF_DONT_BLOCK)
	must(t, err)
	if slot != 0 {
		t.Fatalf("event on slot %d", slot)
	}
	_, err = f.be.WaitForSlotEvent(ck.CKF_DONT_BLOCK)
	wantRV(t, err, ck.CKR_NO_EVENT)
	// A blocking wait returns at the re-insertion.
	start := time.Now()
	slot, err = f.be.WaitForSlotEvent(0)
	must(t, err)
	if slot != 0 || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("blocking wait: slot %d after %v", slot, time.Since(start))
	}
	info, err = f.be.GetSlotInfo(0)
	must(t, err)
	if info.Flags&ck.CKF_TOKEN_PRESENT == 0 {
		t.Fatal("token still absent after for_ms")
	}
	s, err := f.be.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	must(t, err)
	// The login went with the sessions.
	si, err := f.be.GetSessionInfo(s)
	must(t, err)
	if si.State != ck.CKS_RW_PUBLIC_SESSION {
		t.Fatalf("session state %v after re-insertion, want RW public (logged out)", si.State)
	}
	must(t, f.be.Login(s, ck.CKU_USER, []byte(userPIN)))
	f.s = s
	must(t, f.sign(ck.CKM_ECDSA))
}

// By label and by time; C_Finalize ends a blocked wait.
func TestTokenRemovalByLabelAndTime(t *testing.T) {
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, `{"events": [{"event": "remove_token", "token": "`+label+`", "after_ms": 50}]}`))
	slot, err := f.be.WaitForSlotEvent(0)
	must(t, err)
	if slot != 0 {
		t.Fatalf("event on slot %d", slot)
	}
	_, err = f.be.GenerateRandom(f.s, 4)
	wantRV(t, err, ck.CKR_SESSION_HANDLE_INVALID)
	done := make(chan error, 1)
	go func() { _, err := f.be.WaitForSlotEvent(0); done <- err }()
	time.Sleep(50 * time.Millisecond)
	must(t, f.be.Finalize())
	select {
	case err := <-done:
		wantRV(t, err, ck.CKR_CRYPTOKI_NOT_INITIALIZED)
	case <-time.After(5 * time.Second):
		t.Fatal("C_Finalize did not end the blocked C_WaitForSlotEvent")
	}
}

// Several Backends on one Injector (an appliance's connections): one
// removal closes every one's sessions on the token, and each is told.
func TestTokenRemovalShared(t *testing.T) {
	f := newFixture(t)
	g := Wrap(f.eng, f.inj) // a second application on the same engine's view
	s2, err := g.OpenSession(0, ck.CKF_SERIAL_SESSION)
	must(t, err)
	f.inj.SetPlan(mustPlan(t, `{"events": [{"event": "remove_token", "slot": 0, "after_calls": 0}]}`))
	_, err = f.be.GetSessionInfo(f.s)
	wantRV(t, err, ck.CKR_SESSION_HANDLE_INVALID)
	_, err = g.GetSessionInfo(s2)
	wantRV(t, err, ck.CKR_SESSION_HANDLE_INVALID)
	for _, b := range []*Backend{f.be, g} {
		slot, err := b.WaitForSlotEvent(ck.CKF_DONT_BLOCK)
		must(t, err)
		if slot != 0 {
			t.Fatalf("slot %d", slot)
		}
	}
}

// The key-sync lag: a new token key is found at once by the session that
// made it, by others only after key_sync_lag_ms; session objects and
// existing keys are not affected.
func TestKeySyncLag(t *testing.T) {
	f := newFixture(t)
	s2, err := f.be.OpenSession(0, ck.CKF_SERIAL_SESSION)
	must(t, err)
	other := Wrap(f.eng, f.inj) // another connection of the appliance
	s3, err := other.OpenSession(0, ck.CKF_SERIAL_SESSION)
	must(t, err)
	f.inj.SetPlan(mustPlan(t, `{"key_sync_lag_ms": 300}`))
	find := func(b *Backend, s ck.SessionHandle, id string) []ck.ObjectHandle {
		t.Helper()
		must(t, b.FindObjectsInit(s, []ck.Attribute{{Type: ck.CKA_ID, Value: []byte(id)}}))
		defer b.FindObjectsFinal(s)
		var all []ck.ObjectHandle
		for {
			hs, err := b.FindObjects(s, 1)
			must(t, err)
			if len(hs) == 0 {
				return all
			}
			all = append(all, hs...)
		}
	}
	made := time.Now()
	k, err := f.be.GenerateKey(f.s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)},
		{Type: ck.CKA_TOKEN, Value: attr.Bool(true)}, {Type: ck.CKA_PRIVATE, Value: attr.Bool(false)}, {Type: ck.CKA_ID, Value: []byte("new")}})
	must(t, err)
	sk, err := f.be.GenerateKey(f.s, ck.Mechanism{Type: ck.CKM_AES_KEY_GEN}, []ck.Attribute{{Type: ck.CKA_VALUE_LEN, Value: attr.ULong(16)},
		{Type: ck.CKA_ID, Value: []byte("sess")}})
	must(t, err)
	if got := find(f.be, f.s, "new"); !slices.Equal(got, []ck.ObjectHandle{k}) {
		t.Fatalf("the maker's session finds %v", got)
	}
	if got := find(f.be, f.s, "sess"); !slices.Equal(got, []ck.ObjectHandle{sk}) {
		t.Fatalf("session key: %v", got)
	}
	if got := find(f.be, s2, "new"); len(got) != 0 && time.Since(made) < 300*time.Millisecond {
		t.Fatalf("another session finds the new key at once: %v", got)
	}
	if got := find(other, s3, "new"); len(got) != 0 && time.Since(made) < 300*time.Millisecond {
		t.Fatalf("another connection finds the new key at once: %v", got)
	}
	time.Sleep(time.Until(made.Add(310 * time.Millisecond)))
	if got := find(f.be, s2, "new"); !slices.Equal(got, []ck.ObjectHandle{k}) {
		t.Fatalf("after the lag another session finds %v", got)
	}
	if got := find(other, s3, "new"); !slices.Equal(got, []ck.ObjectHandle{k}) {
		t.Fatalf("after the lag another connection finds %v", got)
	}
}

// Shared is the module's process-wide injector: the same file keeps its
// counts across C_Finalize/C_Initialize, a changed file starts afresh.
func TestShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.json")
	must(t, os.WriteFile(path, []byte(`{"rules": [{"function": "C_GetInfo", "nth": 2, "rv": "CKR_DEVICE_ERROR"}]}`), 0o600))
	a, err := Shared(path)
	must(t, err)
	f := newFixture(t)
	be := Wrap(f.eng, a)
	_, err = be.GetInfo()
	must(t, err)
	b, err := Shared(path)
	must(t, err)
	if a != b {
		t.Fatal("the same file gave another injector")
	}
	_, err = Wrap(f.eng, b).GetInfo()
	wantRV(t, err, ck.CKR_DEVICE_ERROR)
	must(t, os.WriteFile(path, []byte(`{"rules": [{"function": "C_GetInfo", "nth": 1, "rv": "CKR_GENERAL_ERROR"}]}`), 0o600))
	c, err := Shared(path)
	must(t, err)
	_, err = Wrap(f.eng, c).GetInfo()
	wantRV(t, err, ck.CKR_GENERAL_ERROR)
	must(t, os.WriteFile(path, []byte(`{"rules": [`), 0o600))
	if _, err := Shared(path); err == nil {
		t.Fatal("a broken plan file was accepted")
	}
	if _, err := Shared(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing plan file was accepted")
	}
}

// The decorator is invisible without a plan, and under -race many
// goroutines through rules, latency and events are safe.
func TestConcurrent(t *testing.T) {
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, `{"seed": 3, "key_sync_lag_ms": 5, "rules": [{"function": "C_GenerateRandom", "probability": 0.2, "rv": "CKR_DEVICE_MEMORY"},
		{"latency": {"dist": "uniform", "min_ms": 0, "max_ms": 0.2}, "probability": 0.5},
		{"function": "C_Sign", "mechanism": "CKM_ECDSA", "probability": 0.3, "rv": "CKR_DEVICE_ERROR"}],
		"events": [{"event": "remove_token", "slot": 1, "after_calls": 50, "for_ms": 5}]}`))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			s, err := f.be.OpenSession(0, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 100 {
				f.be.GenerateRandom(s, 4)
				f.be.GetSlotInfo(1)
				f.be.WaitForSlotEvent(ck.CKF_DONT_BLOCK)
				if i%10 == g {
					f.be.SignInit(s, ck.Mechanism{Type: ck.CKM_ECDSA}, f.ecPriv)
					f.be.Sign(s, f.digest, 128)
				}
			}
		})
	}
	wg.Wait()
	if f.inj.Calls() == 0 {
		t.Fatal("no calls counted")
	}
}

// A Backend made after a removal (a module's next C_Initialize on the same
// plan) is not told of it as an event, but sees the slot empty.
func TestLateBackend(t *testing.T) {
	f := newFixture(t)
	f.inj.SetPlan(mustPlan(t, `{"events": [{"event": "remove_token", "slot": 0, "after_calls": 0}]}`))
	_, err := f.be.WaitForSlotEvent(ck.CKF_DONT_BLOCK)
	must(t, err)
	late := Wrap(f.eng, f.inj)
	_, err = late.WaitForSlotEvent(ck.CKF_DONT_BLOCK)
	wantRV(t, err, ck.CKR_NO_EVENT)
	info, err := late.GetSlotInfo(0)
	must(t, err)
	if info.Flags&ck.CKF_TOKEN_PRESENT != 0 {
		t.Fatal("the late Backend sees the token")
	}
}
