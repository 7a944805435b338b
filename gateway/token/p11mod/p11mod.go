// Package p11mod is the gateway's external-module token backend: a
// PKCS#11 module (a real HSM's, or SoftHSMv2 in tests) reached through
// github.com/ThalesIgnite/crypto11 and its miekg/pkcs11 binding.
//
// crypto11 owns the module's life: it loads the library, runs
// C_Initialize once per process (reference-counted per library path, so
// other crypto11 users in the process share it), finds the token, and
// logs in on a session it keeps open, which keeps the login for the
// process. crypto11 offers crypto.Signer and cipher.AEAD over keys, but
// not the generic calls the gateway makes (C_Encrypt with caller
// parameters, C_WrapKey, C_UnwrapKey, C_CreateObject of data objects,
// attribute reads), and it keeps its *pkcs11.Ctx unexported. So the
// token also holds a miekg/pkcs11 context of its own on the same library
// path: dlopen hands back the already-loaded module, our C_Initialize is
// answered CKR_CRYPTOKI_ALREADY_INITIALIZED (expected), and our sessions
// share crypto11's login, because PKCS#11 login state belongs to the
// application, not to a session. We never call C_Finalize: crypto11 does,
// when the last context on the library closes.
//
// Concurrency: a Token is safe for concurrent use; a Session is used by
// one goroutine at a time (the token.Session contract). The module must
// be thread-safe (CKF_OS_LOCKING_OK; crypto11 initialises it so). Calls
// that write the token's object store (create, destroy, set attributes,
// generate, unwrap, derive) are serialised per module path: SoftHSMv2's
// file object store fails concurrent writers in one process (measured:
// CKR_GENERAL_ERROR from C_CreateObject while another thread destroys an
// object of the same token, about one write in 150 under kv's two-writer
// test). Object searches take the same lock shared: a C_FindObjects
// that runs while another thread writes the store can miss objects whose
// creation had returned before the search began (measured: two kv
// writers through two contexts each committed the same version, a lost
// update in about one TestOnSoftHSM run in seven, and a create answered
// CKR_TEMPLATE_INCONSISTENT in others; none in 60 runs with searches
// shared-locked). kv's write protocol rests on that ordering. Searches
// stay concurrent with each other, and cryptographic calls and attribute
// reads with everything; writes are rare on the gateway's paths (a new
// key version, a metadata update).
package p11mod

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ThalesIgnite/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/gohsm/gohsm/gateway/token"
	"github.com/gohsm/gohsm/hsm/ck"
)

// Config selects the module and the token.
type Config struct {
	Path  string // the module, e.g. /usr/lib/softhsm/libsofthsm2.so
	Label string // the token's label
	PIN   []byte // the user PIN
}

// Token is an external module's token, logged in.
type Token struct {
	wmu   *sync.RWMutex // the module's object-store lock: writes exclusive, searches shared
	c11   *crypto11.Context
	ctx   *pkcs11.Ctx
	slot  uint
	label string

	mu     sync.Mutex
	keep   pkcs11.SessionHandle // our own session: Ping asks it for the login state
	closed bool
}

var _ token.Token = (*Token)(nil)

// Open loads the module (through crypto11), finds the token labelled
// cfg.Label and logs in.
func Open(cfg Config) (*Token, error) {
	c11, err := crypto11.Configure(&crypto11.Config{
		Path:       cfg.Path,
		TokenLabel: cfg.Label,
		Pin:        string(cfg.PIN),
		// crypto11's own session pool serves only C11 callers; the
		// gateway's sessions are the pool package's.
		MaxSessions: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("module %s, token %q: %w", cfg.Path, cfg.Label, err)
	}
	ctx := pkcs11.New(cfg.Path)
	if ctx == nil {
		c11.Close()
		return nil, fmt.Errorf("module %s: cannot load", cfg.Path)
	}
	if err := ctx.Initialize(); err != nil && rvOf(err) != ck.CKR_CRYPTOKI_ALREADY_INITIALIZED {
		ctx.Destroy()
		c11.Close()
		return nil, fmt.Errorf("module %s: %w", cfg.Path, convErr(err))
	}
	t := &Token{c11: c11, ctx: ctx, label: cfg.Label, wmu: writeLock(cfg.Path)}
	if err := t.findSlot(); err != nil {
		t.release()
		return nil, err
	}
	t.keep, err = ctx.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.release()
		return nil, fmt.Errorf("token %q: open session: %w", cfg.Label, convErr(err))
	}
	if err := t.Ping(); err != nil {
		t.ctx.CloseSession(t.keep)
		t.release()
		return nil, err
	}
	return t, nil
}

func (t *Token) findSlot() error {
	slots, err := t.ctx.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("slot list: %w", convErr(err))
	}
	for _, s := range slots {
		info, err := t.ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if strings.TrimRight(info.Label, " ") == t.label {
			t.slot = s
			return nil
		}
	}
	return fmt.Errorf("no token labelled %q", t.label)
}

func (t *Token) release() {
	t.ctx.Destroy()
	t.c11.Close()
}

// Crypto11 is the crypto11 context, for callers that want its
// crypto.Signer or cipher.AEAD over a key.
func (t *Token) Crypto11() *crypto11.Context { return t.c11 }

func (t *Token) Label() string { return t.label }

func (t *Token) OpenSession() (token.Session, error) {
	h, err := t.ctx.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("token %q: open session: %w", t.label, convErr(err))
	}
	return &session{ctx: t.ctx, h: h, wmu: t.wmu}, nil
}

// Ping asks the kept session for its state: a lost login or a removed
// token fails it with a code token.DeviceFailure recognises.
func (t *Token) Ping() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("token %q closed: %w", t.label, ck.CKR_SESSION_CLOSED)
	}
	info, err := t.ctx.GetSessionInfo(t.keep)
	if err != nil {
		return fmt.Errorf("token %q: %w", t.label, convErr(err))
	}
	if info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS {
		return fmt.Errorf("token %q: session state %d: %w", t.label, info.State, ck.CKR_USER_NOT_LOGGED_IN)
	}
	return nil
}

// Close closes the kept session and releases crypto11's context (which
// logs out and finalises the module if it was the last one). Sessions the
// caller opened should be closed first.
func (t *Token) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	err := convErr(t.ctx.CloseSession(t.keep))
	err = errors.Join(err, t.c11.Close())
	t.ctx.Destroy()
	return err
}

var writeLocks sync.Map // module path -> *sync.RWMutex

func writeLock(path string) *sync.RWMutex {
	l, _ := writeLocks.LoadOrStore(path, new(sync.RWMutex))
	return l.(*sync.RWMutex)
}

// rvOf is the code of a miekg/pkcs11 error.
func rvOf(err error) ck.RV {
	var e pkcs11.Error
	if errors.As(err, &e) {
		return ck.RV(e)
	}
	return ck.CKR_GENERAL_ERROR
}

// convErr makes a miekg/pkcs11 error a ck.RV, so token.RV and
// token.DeviceFailure read it as they read the engine's.
func convErr(err error) error {
	if err == nil {
		return nil
	}
	var e pkcs11.Error
	if errors.As(err, &e) {
		return ck.RV(e)
	}
	return err
}
