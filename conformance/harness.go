package conformance

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/miekg/pkcs11"
)

// check is one numbered assertion about the module.
type check struct {
	id, spec string
	mech     uint // when non-zero the check is skipped unless the token lists it
	fn       func(t *T)
}

// groupKind says what state a group needs before its checks run.
type groupKind int

const (
	// kindRaw runs before C_Initialize, on an uninitialised library.
	kindRaw groupKind = iota
	// kindSlots needs an initialised library and no token set-up.
	kindSlots
	// kindToken re-initialises the token (SO and user PIN set) and closes
	// all sessions after each check, so checks may log in and out freely.
	kindToken
	// kindKeeper re-initialises the token and keeps one R/W session logged
	// in as the user for the whole group, so session-object fixtures
	// survive; its checks must not log out or close all sessions.
	kindKeeper
)

type group struct {
	name   string
	kind   groupKind
	checks []check
}

type stopCheck struct{}

// T is the state of one running check.
type T struct {
	s        *suite
	c        *check
	result   string
	detail   string
	sessions []pkcs11.SessionHandle
	cleanups []func()
}

// cleanup registers f to run when the check ends, last registered first
// (before its sessions are closed).
func (t *T) cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *T) failf(format string, args ...any) {
	t.result, t.detail = Fail, fmt.Sprintf(format, args...)
	panic(stopCheck{})
}

func (t *T) skipf(format string, args ...any) {
	t.result, t.detail = Skip, fmt.Sprintf(format, args...)
	panic(stopCheck{})
}

// note records a detail on a passing check (e.g. which refusal code).
func (t *T) note(format string, args ...any) { t.detail = fmt.Sprintf(format, args...) }

// rvOf turns a miekg/pkcs11 error into its CK_RV (0 for nil).
func rvOf(err error) uint {
	if err == nil {
		return 0
	}
	var e pkcs11.Error
	if errors.As(err, &e) {
		return uint(e)
	}
	return pkcs11.CKR_GENERAL_ERROR
}

// rvName is the spec name of a CK_RV.
func rvName(rv uint) string {
	if rv == 0 {
		return "CKR_OK"
	}
	if n, ok := extraRV[rv]; ok {
		return n
	}
	s := pkcs11.Error(rv).Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s[i+2:], "CKR_") {
		return s[i+2:]
	}
	return fmt.Sprintf("CKR_0x%X", rv)
}

func rvNames(rvs []uint) string {
	n := make([]string, len(rvs))
	for i, r := range rvs {
		n[i] = rvName(r)
	}
	return strings.Join(n, " or ")
}

// ok stops the check unless err is nil.
func (t *T) ok(err error, what string) {
	if err != nil {
		t.failf("%s: want CKR_OK, got %s", what, rvName(rvOf(err)))
	}
}

// okRV is ok for a raw CK_RV.
func (t *T) okRV(rv uint, what string) {
	if rv != 0 {
		t.failf("%s: want CKR_OK, got %s", what, rvName(rv))
	}
}

// expect stops the check unless err carries one of want.
func (t *T) expect(err error, what string, want ...uint) { t.expectRV(rvOf(err), what, want...) }

func (t *T) expectRV(got uint, what string, want ...uint) {
	for _, w := range want {
		if got == w {
			t.note("%s: %s", what, rvName(got))
			return
		}
	}
	t.failf("%s: want %s, got %s", what, rvNames(want), rvName(got))
}

// refused stops the check if err is nil: any error code is acceptable.
func (t *T) refused(err error, what string) uint {
	rv := rvOf(err)
	if rv == 0 {
		t.failf("%s: want an error, got CKR_OK", what)
	}
	t.note("%s refused with %s", what, rvName(rv))
	return rv
}

// open opens a session that is closed when the check ends.
func (t *T) open(rw bool) pkcs11.SessionHandle {
	flags := uint(pkcs11.CKF_SERIAL_SESSION)
	if rw {
		flags |= pkcs11.CKF_RW_SESSION
	}
	sh, err := t.s.ctx.OpenSession(t.s.slot, flags)
	t.ok(err, "C_OpenSession")
	t.sessions = append(t.sessions, sh)
	return sh
}

func (t *T) loginUser(sh pkcs11.SessionHandle) {
	t.ok(t.s.ctx.Login(sh, pkcs11.CKU_USER, t.s.opts.UserPIN), "C_Login(CKU_USER)")
}

func (t *T) loginSO(sh pkcs11.SessionHandle) {
	t.ok(t.s.ctx.Login(sh, pkcs11.CKU_SO, t.s.opts.SOPIN), "C_Login(CKU_SO)")
}

// suite is one module under test.
type suite struct {
	path   string
	opts   Options
	ctx    *pkcs11.Ctx
	raw    *raw
	slot   uint
	label  string
	mechs  map[uint]bool
	keeper pkcs11.SessionHandle
	fx     map[string]any // fixtures of the current group, by name
}

func newSuite(path string, opts Options) (*suite, error) {
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("conformance: cannot load %s (dlopen or C_GetFunctionList failed)", path)
	}
	r, err := openRaw(path)
	if err != nil {
		ctx.Destroy()
		return nil, fmt.Errorf("conformance: %w", err)
	}
	return &suite{path: path, opts: opts, ctx: ctx, raw: r}, nil
}

func (s *suite) close() {
	s.ctx.Finalize()
	s.ctx.Destroy()
}

func (s *suite) run() []Result {
	var out []Result
	for _, g := range allGroups() {
		start := time.Now()
		setupErr := s.setup(g)
		for i := range g.checks {
			c := &g.checks[i]
			out = append(out, s.runCheck(g, c, setupErr))
		}
		s.teardown(g)
		s.opts.Logf("%-10s %3d checks %v", g.name, len(g.checks), time.Since(start).Round(time.Millisecond))
	}
	return out
}

func (s *suite) setup(g group) error {
	s.fx = map[string]any{}
	switch g.kind {
	case kindRaw:
		return nil
	case kindSlots:
		return s.ensureInit()
	}
	if err := s.ensureInit(); err != nil {
		return err
	}
	if err := s.initToken("conformance-" + g.name); err != nil {
		return err
	}
	if err := s.loadMechs(); err != nil {
		return err
	}
	if g.kind == kindKeeper {
		sh, err := s.ctx.OpenSession(s.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return fmt.Errorf("keeper C_OpenSession: %s", rvName(rvOf(err)))
		}
		if err := s.ctx.Login(sh, pkcs11.CKU_USER, s.opts.UserPIN); err != nil {
			return fmt.Errorf("keeper C_Login(CKU_USER): %s", rvName(rvOf(err)))
		}
		s.keeper = sh
	}
	return nil
}

func (s *suite) teardown(g group) {
	if g.kind == kindKeeper || g.kind == kindToken {
		s.ctx.CloseAllSessions(s.slot)
		s.keeper = 0
	}
}

// ensureInit brings the library to the initialised state whatever the
// previous group left behind.
func (s *suite) ensureInit() error {
	if _, err := s.ctx.GetInfo(); err == nil {
		return nil
	}
	if err := s.ctx.Initialize(); err != nil {
		return fmt.Errorf("C_Initialize: %s", rvName(rvOf(err)))
	}
	return nil
}

// freeSlot is the first slot whose token is present and not initialised.
func (s *suite) freeSlot() (uint, error) {
	slots, err := s.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("C_GetSlotList: %s", rvName(rvOf(err)))
	}
	for _, id := range slots {
		ti, err := s.ctx.GetTokenInfo(id)
		if err == nil && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no slot with an uninitialised token among %v", slots)
}

// slotByLabel finds the slot of the token labelled label: SoftHSMv2 moves a
// token to a new slot id when it is initialised.
func (s *suite) slotByLabel(label string) (uint, error) {
	slots, err := s.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("C_GetSlotList: %s", rvName(rvOf(err)))
	}
	for _, id := range slots {
		ti, err := s.ctx.GetTokenInfo(id)
		if err == nil && strings.TrimRight(ti.Label, " \x00") == label {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no token labelled %q after C_InitToken", label)
}

// initToken (re)initialises the suite's token as label, with the user PIN
// set, and leaves no session open. The first call picks the free slot.
func (s *suite) initToken(label string) error {
	if s.label == "" {
		slot, err := s.freeSlot()
		if err != nil {
			return err
		}
		s.slot = slot
	} else {
		if slot, err := s.slotByLabel(s.label); err == nil {
			s.slot = slot // a check may have caused a renumbering
		}
		s.ctx.CloseAllSessions(s.slot)
	}
	if err := s.ctx.InitToken(s.slot, s.opts.SOPIN, label); err != nil {
		return fmt.Errorf("C_InitToken: %s", rvName(rvOf(err)))
	}
	slot, err := s.slotByLabel(label)
	if err != nil {
		return err
	}
	s.slot, s.label = slot, label
	sh, err := s.ctx.OpenSession(s.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("C_OpenSession: %s", rvName(rvOf(err)))
	}
	defer s.ctx.CloseSession(sh)
	if err := s.ctx.Login(sh, pkcs11.CKU_SO, s.opts.SOPIN); err != nil {
		return fmt.Errorf("C_Login(CKU_SO): %s", rvName(rvOf(err)))
	}
	if err := s.ctx.InitPIN(sh, s.opts.UserPIN); err != nil {
		return fmt.Errorf("C_InitPIN: %s", rvName(rvOf(err)))
	}
	if err := s.ctx.Logout(sh); err != nil {
		return fmt.Errorf("C_Logout: %s", rvName(rvOf(err)))
	}
	return nil
}

func (s *suite) loadMechs() error {
	if s.mechs != nil {
		return nil
	}
	ms, err := s.ctx.GetMechanismList(s.slot)
	if err != nil {
		return fmt.Errorf("C_GetMechanismList: %s", rvName(rvOf(err)))
	}
	s.mechs = map[uint]bool{}
	for _, m := range ms {
		s.mechs[m.Mechanism] = true
	}
	return nil
}

func (s *suite) runCheck(g group, c *check, setupErr error) (res Result) {
	res = Result{ID: c.id, Spec: c.spec}
	if s.opts.Filter != "" && !strings.HasPrefix(c.id, s.opts.Filter) {
		res.Result, res.Detail = Skip, "filtered out"
		return res
	}
	if setupErr != nil {
		res.Result, res.Detail = Fail, "group set-up failed: "+setupErr.Error()
		return res
	}
	if c.mech != 0 && !s.mechs[c.mech] {
		res.Result, res.Detail = Skip, mechName(c.mech)+" not in C_GetMechanismList"
		return res
	}
	t := &T{s: s, c: c, result: Pass}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(stopCheck); !ok {
					t.result, t.detail = Fail, fmt.Sprintf("panic: %v\n%s", p, debug.Stack())
				}
			}
		}()
		c.fn(t)
	}()
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	for _, sh := range t.sessions {
		s.ctx.CloseSession(sh)
	}
	if g.kind == kindToken {
		s.ctx.CloseAllSessions(s.slot)
	}
	res.Result, res.Detail = t.result, t.detail
	return res
}

// extraRV names the 2.40/3.0 codes miekg/pkcs11 v1.1.2 does not know.
var extraRV = map[uint]string{
	0x1B: "CKR_ACTION_PROHIBITED", 0x140: "CKR_CURVE_NOT_SUPPORTED", 0x1B8: "CKR_PIN_TOO_WEAK",
	0x1B9: "CKR_PUBLIC_KEY_INVALID", 0x1A2: "CKR_NEW_PIN_MODE", 0x1A3: "CKR_NEXT_OTP",
	0x1B5: "CKR_EXCEEDED_MAX_ITERATIONS", 0x1B6: "CKR_FIPS_SELF_TEST_FAILED",
	0x1B7: "CKR_LIBRARY_LOAD_FAILED", 0x1BA: "CKR_FUNCTION_REJECTED",
	0x1BB: "CKR_TOKEN_RESOURCE_EXCEEDED", 0x1BC: "CKR_OPERATION_CANCEL_FAILED",
}
