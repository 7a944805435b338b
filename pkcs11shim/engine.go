//go:build !shimfake

package main

import (
	"fmt"
	"os"

	"github.com/gohsm/gohsm/internal/conf"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/tokens"
)

// openConfigured builds the Backend the configuration asks for. The shim
// sees only hsm.Backend from here on.
func openConfigured(cfg *conf.Config) (hsm.Backend, func(), error) {
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
