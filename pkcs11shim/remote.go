//go:build !shimfake

package main

import (
	"fmt"
	"os"
	"runtime"

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
	cc.WaitInKernel = true // the callers are the application's threads
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
	raiseProcs()
	return c, func() {}, nil
}

// remoteProcs is the least GOMAXPROCS of the module's Go runtime in remote
// mode, unless the GOMAXPROCS variable sets it. Remote mode computes little
// here: application threads call in, wait for their answers, and return to
// C holding one of the runtime's Ps until the runtime takes it back, so with
// as many Ps as CPUs the answers of other threads wait for one. On two vCPUs
// (docs/bench-remote.md) 8 took ECDSA signing from 32 threads from about
// 4.7k-6.2k to 6.6k-7.8k signatures/s; it costs no CPU of its own.
const remoteProcs = 8

func raiseProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < remoteProcs {
		runtime.GOMAXPROCS(remoteProcs)
	}
}
