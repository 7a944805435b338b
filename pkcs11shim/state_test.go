package main

import (
	"errors"
	"github.com/gohsm/gohsm/internal/conf"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

func TestCheckInitArgs(t *testing.T) {
	all := initArgs{createMutex: true, destroyMutex: true, lockMutex: true, unlockMutex: true}
	for i, c := range []struct {
		a  *initArgs
		rv ck.RV
	}{
		{nil, ck.CKR_OK},
		{&initArgs{}, ck.CKR_OK},
		{&initArgs{flags: ck.CKF_OS_LOCKING_OK}, ck.CKR_OK},
		{&initArgs{reserved: true}, ck.CKR_ARGUMENTS_BAD},
		{&initArgs{createMutex: true}, ck.CKR_ARGUMENTS_BAD},
		{&initArgs{createMutex: true, destroyMutex: true, lockMutex: true}, ck.CKR_ARGUMENTS_BAD},
		{&all, ck.CKR_OK}, // callbacks without CKF_OS_LOCKING_OK: accepted (see checkInitArgs)
		{&initArgs{flags: ck.CKF_LIBRARY_CANT_CREATE_OS_THREADS | ck.CKF_OS_LOCKING_OK}, ck.CKR_OK},
	} {
		if rv := checkInitArgs(c.a); rv != c.rv {
			t.Errorf("%d: %v, want %v", i, rv, c.rv)
		}
	}
}

// stubBackend counts lifecycle calls; nothing else is used here.
type stubBackend struct {
	hsm.Backend
	inits, finals int
	initErr       error
}

func (s *stubBackend) Initialize() error { s.inits++; return s.initErr }
func (s *stubBackend) Finalize() error   { s.finals++; return nil }

func withBackend(t *testing.T, open func(*conf.Config) (hsm.Backend, func(), error)) {
	t.Helper()
	saved := openBackend
	openBackend = open
	t.Cleanup(func() {
		openBackend = saved
		if current.Load() != nil {
			finalize()
		}
	})
}

func TestLifecycle(t *testing.T) {
	be := &stubBackend{}
	released := 0
	withBackend(t, func(*conf.Config) (hsm.Backend, func(), error) { return be, func() { released++ }, nil })
	env := envOf(map[string]string{"GOHSM_DIR": t.TempDir()})

	if _, rv := backend(); rv != ck.CKR_CRYPTOKI_NOT_INITIALIZED {
		t.Fatalf("before init: %v", rv)
	}
	if rv := finalize(); rv != ck.CKR_CRYPTOKI_NOT_INITIALIZED {
		t.Fatalf("finalize before init: %v", rv)
	}
	for cycle := 1; cycle <= 2; cycle++ {
		if rv := initialize(nil, env); rv != ck.CKR_OK {
			t.Fatalf("init %d: %v", cycle, rv)
		}
		if rv := initialize(nil, env); rv != ck.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			t.Fatalf("second init: %v", rv)
		}
		if got, rv := backend(); rv != ck.CKR_OK || got != be {
			t.Fatalf("backend after init: %v", rv)
		}
		if rv := finalize(); rv != ck.CKR_OK {
			t.Fatalf("finalize: %v", rv)
		}
	}
	if be.inits != 2 || be.finals != 2 || released != 2 {
		t.Fatalf("inits %d finals %d released %d", be.inits, be.finals, released)
	}
}

func TestInitializeFailures(t *testing.T) {
	env := envOf(map[string]string{"GOHSM_DIR": t.TempDir()})
	withBackend(t, func(*conf.Config) (hsm.Backend, func(), error) {
		return nil, nil, errors.New("cannot open store")
	})
	if rv := initialize(nil, env); rv != ck.CKR_DEVICE_ERROR {
		t.Fatalf("store failure: %v, want CKR_DEVICE_ERROR", rv)
	}
	be := &stubBackend{initErr: ck.CKR_TOKEN_NOT_RECOGNIZED}
	released := false
	withBackend(t, func(*conf.Config) (hsm.Backend, func(), error) { return be, func() { released = true }, nil })
	if rv := initialize(nil, env); rv != ck.CKR_TOKEN_NOT_RECOGNIZED || !released {
		t.Fatalf("backend init failure: %v released=%v", rv, released)
	}
	if _, rv := backend(); rv != ck.CKR_CRYPTOKI_NOT_INITIALIZED {
		t.Fatal("a failed C_Initialize must leave the module uninitialised")
	}
	// The real factory answers a remote configuration it cannot use (no
	// certificate files) with a device error.
	if _, _, err := openConfigured(&conf.Config{Mode: conf.ModeRemote}); hsmRV(err) != ck.CKR_DEVICE_ERROR {
		t.Fatalf("remote: %v", err)
	}
}

func hsmRV(err error) ck.RV { return hsm.ToRV(err) }

func envOf(m map[string]string) conf.Getenv { return func(k string) string { return m[k] } }

// TestModuleStateConcurrency drives the shim's shared state the way a
// multi-threaded host does: calls load the backend and log their result
// while another thread cycles C_Initialize / C_Finalize (§5.4 leaves that
// undefined for the application, but it must not corrupt the module) and
// the log is reconfigured. Under go test -race it checks that the state
// every call reads (current, logger, the rules tables) is read safely.
func TestModuleStateConcurrency(t *testing.T) {
	be := &stubBackend{} // its counters need no lock: C_Initialize and C_Finalize are serialised
	withBackend(t, func(*conf.Config) (hsm.Backend, func(), error) { return be, func() {}, nil })
	env := envOf(map[string]string{"GOHSM_DIR": t.TempDir(), "GOGC": "100"})
	logFile := filepath.Join(t.TempDir(), "gohsm.log")
	defer setupLog(logOff, "")

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, rv := backend(); rv != ck.CKR_OK && rv != ck.CKR_CRYPTOKI_NOT_INITIALIZED {
					t.Errorf("backend: %v", rv)
				}
				_ = ifaces[ifaceVersion(i%len(ifaces))].mechFlags
				logCall("C_Test", ck.CKR_ARGUMENTS_BAD)
			}
		}(i)
	}
	for i := 0; i < 200; i++ {
		if rv := initialize(nil, env); rv != ck.CKR_OK {
			t.Fatalf("initialize %d: %v", i, rv)
		}
		setupLog(logLevel(i%2)*logDebug, logFile)
		if rv := finalize(); rv != ck.CKR_OK {
			t.Fatalf("finalize %d: %v", i, rv)
		}
	}
	close(stop)
	wg.Wait()
}
