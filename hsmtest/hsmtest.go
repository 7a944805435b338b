// Package hsmtest gives `go test` a gohsm token: an initialised token with
// known PINs and, if asked, a few keys, cleaned up with t.Cleanup.
//
// Two kinds:
//
//   - New: the engine in the test's own process (hsm.New), on memory storage
//     (or, with OnDisk, a token store in t.TempDir()). No cgo, no files,
//     about a millisecond. Tests call the PKCS#11 functions through
//     tok.Backend (an hsm.Backend), or use tok.Signer as a crypto.Signer.
//
//   - Module: a fixture (what `gohsm fixture up` makes) for libgohsm.so: a
//     token store in t.TempDir(), a configuration with a cheap PIN KDF, and
//     the environment (GOHSM_CONF, GOHSM_DIR, ...) set with t.Setenv, so a
//     PKCS#11 binding loaded in the test (crypto11, miekg/pkcs11) or a child
//     process (pkcs11-tool) finds the token. It returns the module path, the
//     slot, the label and the PINs.
//
// A fault plan (Faults, FaultPlan: firmware-sim/faults, the injector the
// module uses) makes either kind fail on purpose: the Nth call of a
// function, a share of calls, latency, token removal.
//
// Tokens are for tests only: the PINs are fixed ("1234" and "12345678"
// unless PINs says otherwise) and cheap to derive keys from.
//
// Keys(kinds...) makes keys with fixed labels and ids: "ec" (ec-p256, id 01,
// an ECDSA P-256 pair), "rsa" (rsa-2048, 02), "aes" (aes-256, 03), "ed25519"
// (ed25519, 04). Private and secret keys are private, sensitive and not
// extractable.
package hsmtest

import (
	"crypto"
	"fmt"
	"testing"

	"github.com/gohsm/gohsm/firmware-sim/faults"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsmtest/fixture"
	"github.com/gohsm/gohsm/tokens"
)

// Defaults, as `gohsm fixture up` has them.
const (
	DefaultLabel   = fixture.DefaultLabel
	DefaultUserPIN = fixture.DefaultUserPIN
	DefaultSOPIN   = fixture.DefaultSOPIN
)

// Key is a generated key: its kind, label, id, handles and public key.
type Key = fixture.Key

// Fault plans as Go values (see fixture.FaultPlan for the JSON they make).
type (
	FaultPlan  = fixture.FaultPlan
	FaultRule  = fixture.FaultRule
	FaultEvent = fixture.FaultEvent
	RV         = fixture.RV
)

// Option configures New and Module.
type Option func(*options)

type options struct {
	label          string
	userPIN, soPIN string
	keys           []string
	kdf            int
	onDisk         bool
	policy         hsm.Policy
	faults         *FaultPlan
	module         string
	setenv         bool
}

func collect(opts []Option) *options {
	o := &options{label: DefaultLabel, userPIN: DefaultUserPIN, soPIN: DefaultSOPIN, setenv: true}
	for _, f := range opts {
		f(o)
	}
	return o
}

// Label sets the token label.
func Label(l string) Option { return func(o *options) { o.label = l } }

// PINs sets the user and SO PINs ("random" for random ones).
func PINs(user, so string) Option { return func(o *options) { o.userPIN, o.soPIN = user, so } }

// Keys makes keys of these kinds: ec, rsa, aes, ed25519 or all.
func Keys(kinds ...string) Option { return func(o *options) { o.keys = append(o.keys, kinds...) } }

// KDFIterations sets the PBKDF2 cost of the PINs (default: 10 in process,
// 1,000 for Module).
func KDFIterations(n int) Option { return func(o *options) { o.kdf = n } }

// OnDisk puts an in-process token in a real token store (SQLite, in
// t.TempDir()) instead of memory, for tests of persistence (Restart).
func OnDisk() Option { return func(o *options) { o.onDisk = true } }

// Policy sets the engine's security profile (in process).
func Policy(p hsm.Policy) Option { return func(o *options) { o.policy = p } }

// Faults runs a fault plan: in front of the in-process engine (New; the
// plan applies once the token and its keys are made), or in libgohsm.so
// (Module: written to a file that GOHSM_FAULTS and the configuration name).
func Faults(p *FaultPlan) Option { return func(o *options) { o.faults = p } }

// ModulePath names libgohsm.so for Module (default: $GOHSM_MODULE, else one
// built from source once per test binary).
func ModulePath(p string) Option { return func(o *options) { o.module = p } }

// NoSetenv stops Module from setting the environment (t.Setenv, which a
// parallel test may not call); the caller passes fx.Env on instead.
func NoSetenv() Option { return func(o *options) { o.setenv = false } }

// Token is an initialised token on an in-process engine.
type Token struct {
	// Backend is the engine: every PKCS#11 function, as Go methods.
	Backend hsm.Backend
	Slot    ck.SlotID
	Label   string
	UserPIN string
	SOPIN   string
	// Keys are the generated keys by kind ("ec", "rsa", "aes", "ed25519").
	Keys map[string]*Key
	// Faults is the fault injector in front of the engine (Faults,
	// SetFaults), nil without one: Faults.Calls() counts the calls it saw.
	Faults *faults.Injector

	cfg    hsm.Config
	engine *hsm.Module
}

// New returns an initialised token on an in-process engine; the engine is
// finalised when the test ends.
func New(t testing.TB, opts ...Option) *Token {
	t.Helper()
	o := collect(opts)
	kinds, err := fixture.ParseKeyKinds(o.keys)
	if err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	if o.userPIN, err = fixture.ResolvePIN(o.userPIN, DefaultUserPIN); err != nil {
		t.Fatalf("hsmtest: user PIN: %v", err)
	}
	if o.soPIN, err = fixture.ResolvePIN(o.soPIN, DefaultSOPIN); err != nil {
		t.Fatalf("hsmtest: SO PIN: %v", err)
	}
	var st hsm.Storage = hsm.NewMemoryStorage()
	if o.onDisk {
		d, err := tokens.Open(t.TempDir())
		if err != nil {
			t.Fatalf("hsmtest: token store: %v", err)
		}
		t.Cleanup(func() { d.Close() })
		st = d
	}
	cfg := hsm.DefaultConfig(st)
	cfg.KDFIterations = 10 // tests only: a login costs microseconds
	if o.kdf > 0 {
		cfg.KDFIterations = o.kdf
	}
	cfg.Policy = o.policy
	tok := &Token{Label: o.label, UserPIN: o.userPIN, SOPIN: o.soPIN, Keys: map[string]*Key{}, cfg: cfg}
	tok.start(t)
	if tok.Slot, err = fixture.InitToken(tok.Backend, o.label, o.soPIN, o.userPIN); err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	if len(kinds) > 0 {
		s := tok.Login(t)
		keys, err := fixture.GenerateKeys(tok.Backend, s, kinds)
		if err != nil {
			t.Fatalf("hsmtest: %v", err)
		}
		for i := range keys {
			tok.Keys[keys[i].Kind] = &keys[i]
		}
		if err := tok.Backend.CloseSession(s); err != nil {
			t.Fatalf("hsmtest: %v", err)
		}
	}
	if o.faults != nil {
		// The plan applies from here: making the token and its keys
		// counted no calls.
		tok.SetFaults(t, o.faults)
	}
	return tok
}

// SetFaults runs a fault plan on the token from now on (firmware-sim/faults,
// the injector libgohsm.so uses): calls through tok.Backend are counted and
// failed or delayed as the plan says; nil stops injecting. The first call
// puts the injector in front of the engine, so take tok.Backend after it.
func (tok *Token) SetFaults(t testing.TB, p *FaultPlan) {
	t.Helper()
	if p == nil {
		p = &FaultPlan{}
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatalf("hsmtest: fault plan: %v", err)
	}
	plan, err := faults.Parse(b)
	if err != nil {
		t.Fatalf("hsmtest: fault plan: %v", err)
	}
	if tok.Faults == nil {
		tok.Faults = faults.New(plan)
		tok.Backend = faults.Wrap(tok.engine, tok.Faults)
		return
	}
	tok.Faults.SetPlan(plan)
}

func (tok *Token) start(t testing.TB) {
	t.Helper()
	m, err := hsm.New(tok.cfg)
	if err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	if err := m.Initialize(); err != nil {
		t.Fatalf("hsmtest: initialize: %v", err)
	}
	t.Cleanup(func() { m.Finalize() })
	tok.engine, tok.Backend = m, m
	if tok.Faults != nil {
		tok.Backend = faults.Wrap(m, tok.Faults)
	}
}

// Restart finalises the engine and starts a new one on the same storage,
// as a process restart would: sessions and login state are gone, token
// objects stay (with the same handles). A fault plan stays, with its counts.
func (tok *Token) Restart(t testing.TB) {
	t.Helper()
	if err := tok.engine.Finalize(); err != nil {
		t.Fatalf("hsmtest: finalize: %v", err)
	}
	tok.start(t)
}

// Session opens an R/W session, not logged in.
func (tok *Token) Session(t testing.TB) ck.SessionHandle {
	t.Helper()
	s, err := tok.Backend.OpenSession(tok.Slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	if err != nil {
		t.Fatalf("hsmtest: open session: %v", err)
	}
	return s
}

// Login opens an R/W session and logs the user in (login state is the
// application's: every session of the token is then logged in).
func (tok *Token) Login(t testing.TB) ck.SessionHandle {
	t.Helper()
	return tok.login(t, ck.CKU_USER, tok.UserPIN)
}

// LoginSO opens an R/W session and logs the security officer in.
func (tok *Token) LoginSO(t testing.TB) ck.SessionHandle {
	t.Helper()
	return tok.login(t, ck.CKU_SO, tok.SOPIN)
}

func (tok *Token) login(t testing.TB, user ck.UserType, pin string) ck.SessionHandle {
	t.Helper()
	s := tok.Session(t)
	if err := tok.Backend.Login(s, user, []byte(pin)); err != nil && hsm.ToRV(err) != ck.CKR_USER_ALREADY_LOGGED_IN {
		t.Fatalf("hsmtest: login: %v", err)
	}
	return s
}

// Key returns the generated key of a kind, failing the test if there is
// none.
func (tok *Token) Key(t testing.TB, kind string) *Key {
	t.Helper()
	k, ok := tok.Keys[kind]
	if !ok {
		t.Fatalf("hsmtest: no %q key: ask for it with hsmtest.Keys(%q)", kind, kind)
	}
	return k
}

// Signer is a crypto.Signer over the token's key of a kind (ec, rsa,
// ed25519): each Sign opens a session, signs on the token and closes it, so
// a Signer may be used from several goroutines. The user must be logged in
// (Login), as with any private key.
func (tok *Token) Signer(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	k := tok.Key(t, kind)
	if k.Public == nil {
		t.Fatalf("hsmtest: the %s key is not a key pair", kind)
	}
	return &signer{tok: tok, key: k}
}

func (tok *Token) String() string { return fmt.Sprintf("token %q in slot %d", tok.Label, tok.Slot) }

// Helpers for fault plans (fixture's, re-exported).

// Fixed is a constant latency for FaultRule.Latency.
func Fixed(ms float64) *fixture.FaultLatency { return fixture.Fixed(ms) }

// Uniform is a latency uniform in [minMS, maxMS].
func Uniform(minMS, maxMS float64) *fixture.FaultLatency { return fixture.Uniform(minMS, maxMS) }

// Normal is a normal latency, cut at 0.
func Normal(meanMS, stddevMS float64) *fixture.FaultLatency { return fixture.Normal(meanMS, stddevMS) }

// Lognormal is a log-normal latency given by its median and 99th percentile.
func Lognormal(medianMS, p99MS float64) *fixture.FaultLatency {
	return fixture.Lognormal(medianMS, p99MS)
}

// RemoveToken pulls the token labelled label after afterCalls calls, for
// forMS milliseconds (negative: until the plan changes).
func RemoveToken(label string, afterCalls uint64, forMS float64) FaultEvent {
	return fixture.RemoveToken(label, afterCalls, forMS)
}

// RVNumber is a return code given by number.
func RVNumber(n uint64) RV { return fixture.RVNumber(n) }
