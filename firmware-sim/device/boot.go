package device

import (
	"fmt"
	"strings"
	"sync"

	"github.com/gohsm/gohsm/firmware-sim/device/selftest"
	"github.com/gohsm/gohsm/hsm"
	"github.com/gohsm/gohsm/hsm/ck"
)

// The module's boot. libgohsm.so runs the power-on self-tests at its first
// C_Initialize in a process, which is the module's power-on: a
// C_Finalize / C_Initialize pair does not repeat them (as a device does not
// repeat its POST without a power cycle), unless the options changed (a
// test naming another GOHSM_FAIL_SELFTEST). A failure sticks for the
// process, as the error state of a device sticks until it is power-cycled.

// BootOptions configure a module's boot.
type BootOptions struct {
	Profile *ck.Profile
	// FailSelftest names a self-test to fail.
	FailSelftest string
	// Dir is the local token store: one with a device (D/device/state) is
	// an appliance's, and the module refuses it (error state) rather than
	// show tokens it cannot open.
	Dir string
	// Logf, if set, is told the boot's outcome and time.
	Logf func(format string, args ...any)
}

type bootKey struct{ profile, fail string }

var (
	bootMu    sync.Mutex
	bootCache = map[bootKey]*selftest.Report{}
)

// ModuleBoot runs (once per process and options) the module's self-tests.
func ModuleBoot(o BootOptions) *selftest.Report {
	p := o.Profile
	if p == nil {
		p = ck.DefaultProfile
	}
	k := bootKey{p.Name, strings.ToLower(strings.TrimSpace(o.FailSelftest))}
	bootMu.Lock()
	defer bootMu.Unlock()
	if r, ok := bootCache[k]; ok {
		return r
	}
	r := selftest.Run(selftest.Options{Profile: p, Fail: o.FailSelftest, Integrity: moduleIntegrity})
	bootCache[k] = r
	return r
}

// moduleSource is a module's state: operational, or the error state with
// its reason, decided at boot.
type moduleSource struct {
	mu     sync.Mutex
	status Status
}

func (m *moduleSource) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

func (m *moduleSource) SOLogin(bool) {}

// NewModuleGuard puts the module's engine be under its boot: at
// Initialize the self-tests run (ModuleBoot), and a failure, or a store
// that belongs to an appliance, is the error state.
func NewModuleGuard(be hsm.Backend, o BootOptions) *Guard {
	src := &moduleSource{status: Status{State: Error, Reason: "not booted", Epoch: 1}}
	g := &Guard{src: src, logf: o.Logf}
	g.cur.Store(&guarded{be: be, epoch: 1, keyed: true})
	g.boot = func() {
		st := Status{State: Operational, Epoch: 1}
		if rep := ModuleBoot(o); !rep.OK() {
			st = Status{State: Error, Reason: rep.Reason(), Epoch: 1}
		} else if o.Dir != "" && HasDevice(o.Dir) {
			st = Status{State: Error, Reason: "appliance store: use remote mode", Epoch: 1}
		}
		src.mu.Lock()
		src.status = st
		src.mu.Unlock()
	}
	return g
}

// Reason is why the guard's device does not serve ("" when operational).
func (g *Guard) Reason() string {
	st := g.src.Status()
	if st.State == Operational {
		return ""
	}
	return fmt.Sprintf("%s: %s", st.State, st.Reason)
}

// moduleIntegrity is the module's firmware integrity test: a module has no
// device, so no installed image to check against; it says so, visibly.
func moduleIntegrity(corrupt func([]byte) []byte) (string, error) {
	if corrupt([]byte{0})[0] != 0 {
		return "", fmt.Errorf("unsigned development firmware, and made to fail")
	}
	return "unsigned development firmware (the module has no installed image to check)", nil
}
