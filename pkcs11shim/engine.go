//go:build !shimfake

package main

import (
	"fmt"
	"os"

	"github.com/gohsm/gohsm/internal/conf"

	"github.com/gohsm/gohsm/firmware-sim/device"
	"github.com/gohsm/gohsm/firmware-sim/faults"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/tokens"
)

// openConfigured builds the Backend the configuration asks for. The shim
// sees only hsm.Backend from here on.
func openConfigured(cfg *conf.Config) (hsm.Backend, func(), error) {
	be, release, err := openBase(cfg)
	if err != nil {
		return nil, nil, err
	}

	// Power-on self-tests and the error state (firmware-sim/device,
	// docs/firmware.md): the guard runs the self-tests at C_Initialize (once
	// per process: the module's power-on) and, if one fails (or
	// GOHSM_FAIL_SELFTEST / fail_selftest names one), answers
	// CKR_DEVICE_ERROR to every call but C_GetInfo, C_GetSlotList,
	// C_GetSlotInfo and C_GetTokenInfo, whose manufacturerID says why. It
	// wraps the engine (or the remote client) itself; a fault plan goes
	// around it.
	bo := device.BootOptions{Profile: cfg.Profile, FailSelftest: cfg.FailSelftest,
		Logf: func(format string, args ...any) { logf(logInfo, format, args...) }}
	if cfg.Mode != conf.ModeRemote {
		bo.Dir = cfg.Dir // a store with a device is an appliance's: refused
	}
	be = device.NewModuleGuard(be, bo)

	// Fault injection (firmware-sim/faults, docs/firmware.md): a plan named
	// by GOHSM_FAULTS or `faults =` wraps the backend, local or remote. The
	// process keeps one injector per plan file, so its counts go on across
	// C_Finalize and C_Initialize; a plan that does not parse fails
	// C_Initialize with the reason on stderr or in the log.
	if cfg.Faults != "" {
		inj, err := faults.Shared(cfg.Faults)
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("fault plan %s: %w", cfg.Faults, err)
		}
		logf(logInfo, "C_Initialize: fault plan %s: %d rule(s), %d event(s)", cfg.Faults, len(inj.Plan().Rules), len(inj.Plan().Events))
		be = faults.Wrap(be, inj)
	}
	return be, release, nil
}

// openBase is the local engine on its token directory, or the appliance's
// client.
func openBase(cfg *conf.Config) (hsm.Backend, func(), error) {
	if cfg.Mode == conf.ModeRemote {
		return openRemote(cfg) // the appliance client (remote.go)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("token directory: %w", err)
	}
	dir, err := tokens.Open(cfg.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("token directory %s: %w", cfg.Dir, err)
	}
	hc := hsm.DefaultConfig(dir)
	hc.Profile = cfg.Profile
	if cfg.MaxPINTries > 0 {
		hc.MaxPINTries = cfg.MaxPINTries
	}
	if cfg.KDFIterations > 0 {
		hc.KDFIterations = cfg.KDFIterations
	}
	if hc.Policy, err = hsm.ParsePolicy(cfg.Policy); err != nil {
		dir.Close()
		return nil, nil, err
	}
	m, err := hsm.New(hc)
	if err != nil {
		dir.Close()
		return nil, nil, err
	}
	release := func() {
		if err := dir.Close(); err != nil {
			logf(logError, "C_Finalize: close token directory: %v", err)
		}
	}
	return m, release, nil
}
