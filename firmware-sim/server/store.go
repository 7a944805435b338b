package server

import (
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/tokens"
)

// StoreOpener returns a Config.Open for the appliance: each identity gets
// its own engine (hsm.New) over its own handle on the token directory dir
// (tokens.Open). Several engines on one directory are safe: that is the
// store's multi-process design, here within one process. configure, if
// set, adjusts each engine's configuration (profile, policy, PIN tries).
// The backends it returns close their store handle on Close, which the
// server calls after Finalize at shutdown.
func StoreOpener(dir string, configure func(*hsm.Config)) func(identity string) (hsm.Backend, error) {
	return func(identity string) (hsm.Backend, error) {
		d, err := tokens.Open(dir)
		if err != nil {
			return nil, err
		}
		cfg := hsm.DefaultConfig(d)
		if configure != nil {
			configure(&cfg)
		}
		m, err := hsm.New(cfg)
		if err != nil {
			d.Close()
			return nil, err
		}
		return &storeBackend{Module: m, dir: d}, nil
	}
}

// storeBackend is an engine with the store handle it owns.
type storeBackend struct {
	*hsm.Module
	dir *tokens.Dir
}

// Close closes the store handle (after Finalize).
func (b *storeBackend) Close() error { return b.dir.Close() }
