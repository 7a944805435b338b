//go:build !shimfake

package main

import (
	"fmt"

	"github.com/gohsm/gohsm/firmware-sim/client"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/internal/conf"
)

// openRemote builds the appliance client for mode = remote. It is an
// hsm.Backend like the local engine; the shim cannot tell them apart. The
// client connects at Initialize and closes its connection at Finalize;
// there is nothing else to release. A configuration the client cannot use
// (unreadable certificate files) is CKR_DEVICE_ERROR, as an unreachable
// appliance is.
func openRemote(cfg *conf.Config) (hsm.Backend, func(), error) {
	tcfg, err := client.LoadTLS(cfg.CA, cfg.Cert, cfg.Key, cfg.ServerName, cfg.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("mode remote: %w: %w", err, ck.CKR_DEVICE_ERROR)
	}
	cc := client.DefaultConfig()
	cc.Address = cfg.Address
	cc.TLS = tcfg
	if cfg.Timeout > 0 {
		cc.Timeout = cfg.Timeout
	}
	// Connection events (lost, reconnected, a re-login that failed) are
	// what an operator needs to see; they never carry a PIN or data.
	cc.Logf = func(format string, args ...any) { logf(logError, "remote: "+format, args...) }
	c, err := client.New(cc)
	if err != nil {
		return nil, nil, fmt.Errorf("mode remote: %w: %w", err, ck.CKR_DEVICE_ERROR)
	}
	return c, func() {}, nil
}
