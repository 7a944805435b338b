package main

import (
	"fmt"
	"github.com/gohsm/gohsm/internal/conf"
	"os"
	"sync"
	"sync/atomic"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// instance is one C_Initialize .. C_Finalize lifetime.
type instance struct {
	be hsm.Backend
	// release frees what the factory opened beside the backend (the token
	// directory), after Backend.Finalize.
	release func()
}

var (
	// lifecycle serialises C_Initialize and C_Finalize with each other.
	lifecycle sync.Mutex
	// current is read by every call without a lock, so two sessions never
	// contend on module state; it is nil outside C_Initialize .. C_Finalize.
	current atomic.Pointer[instance]
	// openBackend builds the backend for a configuration. Tests replace it.
	openBackend = openConfigured
)

// backend returns the live backend, or CKR_CRYPTOKI_NOT_INITIALIZED.
func backend() (hsm.Backend, ck.RV) {
	in := current.Load()
	if in == nil {
		return nil, ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	return in.be, ck.CKR_OK
}

// initArgs is CK_C_INITIALIZE_ARGS as seen from Go: which pointers were set.
type initArgs struct {
	createMutex, destroyMutex, lockMutex, unlockMutex bool
	flags                                             ck.Flags
	reserved                                          bool
}

// checkInitArgs applies §5.4 (C_Initialize) to the arguments.
//
// The mutex callbacks must be all set or all NULL. Whether or not
// CKF_OS_LOCKING_OK is set, we accept them and never call them: the engine
// locks with Go's own primitives, which are OS-level. The spec allows a
// library to answer callbacks-without-CKF_OS_LOCKING_OK with CKR_CANT_LOCK;
// we do not, because refusing would only break applications that pass
// callbacks out of habit (the Go runtime already runs its own OS threads,
// so a process in which OS locking did not work could not load us at all).
//
// CKF_LIBRARY_CANT_CREATE_OS_THREADS is accepted although the Go runtime
// creates OS threads whenever it likes (it already has when C_Initialize
// runs): §5.4 says a library that needs threads "should" refuse with
// CKR_NEED_TO_CREATE_THREADS, but NSS sets the flag on every module and, on
// any refusal, retries without arguments and then serialises every call to
// the module as single-threaded. SoftHSMv2 accepts the flag too.
func checkInitArgs(a *initArgs) ck.RV {
	if a == nil {
		return ck.CKR_OK
	}
	if a.reserved {
		return ck.CKR_ARGUMENTS_BAD
	}
	n := 0
	for _, set := range []bool{a.createMutex, a.destroyMutex, a.lockMutex, a.unlockMutex} {
		if set {
			n++
		}
	}
	if n != 0 && n != 4 {
		return ck.CKR_ARGUMENTS_BAD
	}
	return ck.CKR_OK
}

// initialize is C_Initialize after the C arguments are decoded.
func initialize(a *initArgs, env conf.Getenv) ck.RV {
	if rv := checkInitArgs(a); rv != ck.CKR_OK {
		return rv
	}
	lifecycle.Lock()
	defer lifecycle.Unlock()
	if current.Load() != nil {
		return ck.CKR_CRYPTOKI_ALREADY_INITIALIZED
	}
	cfg, err := conf.Load(env)
	if err != nil {
		initFailure("%v", err)
		return ck.CKR_GENERAL_ERROR
	}
	raiseGCFloor(env)
	level, _ := parseLogLevel(cfg.Log) // conf.Parse accepted only known levels
	setupLog(level, cfg.LogFile)
	if cfg.Source != "" {
		logf(logInfo, "C_Initialize: config %s, mode %s, dir %s, profile %s", cfg.Source, cfg.Mode, cfg.Dir, cfg.Profile.Name)
	} else {
		logf(logInfo, "C_Initialize: default config, mode %s, dir %s, profile %s", cfg.Mode, cfg.Dir, cfg.Profile.Name)
	}
	be, release, err := openBackend(cfg)
	if err != nil {
		initFailure("%v", err)
		return failureRV(err)
	}
	if err := be.Initialize(); err != nil {
		release()
		initFailure("initialize: %v", err)
		return hsm.ToRV(err)
	}
	current.Store(&instance{be: be, release: release})
	return ck.CKR_OK
}

// failureRV keeps a PKCS#11 code from the factory and otherwise reports a
// device error: the token store could not be opened.
func failureRV(err error) ck.RV {
	if rv := hsm.ToRV(err); rv != ck.CKR_GENERAL_ERROR {
		return rv
	}
	return ck.CKR_DEVICE_ERROR
}

// finalize is C_Finalize. In-flight calls on other threads keep the backend
// they loaded; the spec leaves C_Finalize concurrent with other calls
// undefined (§5.4), and the engine answers them once finalised.
func finalize() ck.RV {
	lifecycle.Lock()
	defer lifecycle.Unlock()
	in := current.Swap(nil)
	if in == nil {
		return ck.CKR_CRYPTOKI_NOT_INITIALIZED
	}
	err := in.be.Finalize()
	in.release()
	if err != nil {
		logf(logError, "C_Finalize: %v", err)
		if rv := hsm.ToRV(err); rv != ck.CKR_CRYPTOKI_NOT_INITIALIZED {
			return rv
		}
	}
	return ck.CKR_OK
}

// initFailure says why C_Initialize failed. It goes to the log when one is
// configured and to stderr otherwise, because an application only sees a
// code and the user needs the reason; the message holds paths and codes,
// never secrets.
func initFailure(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if logEnabled(logError) {
		logf(logError, "C_Initialize failed: %s", msg)
		return
	}
	fmt.Fprintf(os.Stderr, "gohsm: C_Initialize failed: %s\n", msg)
}
