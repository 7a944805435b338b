package token

import (
	"errors"
	"fmt"

	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/tokens"
)

// OpenEngine starts the in-process engine on the token store in dir (the
// embedded default backend): one application of its own on the store, as
// a process that loads libgohsm.so is, so several gateways (processes or
// engines) can share the store. configure, if not nil, adjusts the
// engine's configuration (KDF cost, policy, SM profile). The returned
// release finalises the engine and closes the store; pass it to
// FromBackend.
func OpenEngine(dir string, configure func(*hsm.Config)) (hsm.Backend, func() error, error) {
	d, err := tokens.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("token store %s: %w", dir, err)
	}
	cfg := hsm.DefaultConfig(d)
	if configure != nil {
		configure(&cfg)
	}
	m, err := hsm.New(cfg)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	if err := m.Initialize(); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("token store %s: %w", dir, err)
	}
	return m, func() error { return errors.Join(m.Finalize(), d.Close()) }, nil
}

// OpenEngineToken is OpenEngine and FromBackend: the token labelled label
// in dir, logged in with pin, owning its engine.
func OpenEngineToken(dir, label string, pin []byte, configure func(*hsm.Config)) (Token, error) {
	be, release, err := OpenEngine(dir, configure)
	if err != nil {
		return nil, err
	}
	t, err := FromBackend(be, label, pin, release)
	if err != nil {
		release()
		return nil, err
	}
	return t, nil
}
