package bench

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/miekg/pkcs11"
)

// p11Module is one loaded module with an initialised, logged-in token. The
// setup session stays open for the whole run: it holds the login (shared by
// every session of the process, PKCS#11 §5.6) and owns the session objects
// the find op searches.
type p11Module struct {
	name, path string
	ctx        *pkcs11.Ctx
	slot       uint
	setup      pkcs11.SessionHandle
	mechs      map[uint]bool
	sm         map[string]uint // SM names -> codes, only those the module lists
	sessionKey bool
	info       ModuleInfo
	keys       map[string]*p11Keys // by key kind, made on first use
	findReady  int                 // number of find objects created
	kem        *kemFuncs           // the 3.2 function list, found on first use
}

// ModuleInfo is what C_GetInfo and C_GetTokenInfo say about a module.
type ModuleInfo struct {
	Name            string `json:"name"`
	Path            string `json:"path"`
	Manufacturer    string `json:"manufacturer"`
	Library         string `json:"library"`
	LibraryVersion  string `json:"library_version"`
	TokenModel      string `json:"token_model"`
	CryptokiVersion string `json:"cryptoki_version"`
}

// openModule loads the module, initialises a token in its first slot whose
// token is not yet initialised, sets the user PIN and logs in.
func openModule(m Module, cfg *Config, sm map[string]uint) (*p11Module, error) {
	if _, err := os.Stat(m.Path); err != nil {
		return nil, fmt.Errorf("module %s: %w", m.Name, err)
	}
	ctx := pkcs11.New(m.Path)
	if ctx == nil {
		return nil, fmt.Errorf("module %s: cannot load %s (dlopen or C_GetFunctionList failed)", m.Name, m.Path)
	}
	pm := &p11Module{name: m.Name, path: m.Path, ctx: ctx, sessionKey: cfg.SessionKeys, keys: map[string]*p11Keys{}}
	if err := ctx.Initialize(); err != nil {
		ctx.Destroy()
		return nil, fmt.Errorf("module %s: C_Initialize: %w", m.Name, err)
	}
	if err := pm.initToken(cfg); err != nil {
		pm.close()
		return nil, fmt.Errorf("module %s: %w", m.Name, err)
	}
	ml, err := ctx.GetMechanismList(pm.slot)
	if err != nil {
		pm.close()
		return nil, fmt.Errorf("module %s: C_GetMechanismList: %w", m.Name, err)
	}
	pm.mechs = map[uint]bool{}
	for _, x := range ml {
		pm.mechs[x.Mechanism] = true
	}
	pm.sm = map[string]uint{}
	for name, code := range sm {
		// Key types are not mechanisms; keep them when the module lists
		// any SM mechanism at all, checked per op below.
		if strings.HasPrefix(name, "CKK_") || pm.mechs[code] {
			pm.sm[name] = code
		}
	}
	if info, err := ctx.GetInfo(); err == nil {
		pm.info = ModuleInfo{
			Manufacturer:    strings.TrimSpace(info.ManufacturerID),
			Library:         strings.TrimSpace(info.LibraryDescription),
			LibraryVersion:  fmt.Sprintf("%d.%d", info.LibraryVersion.Major, info.LibraryVersion.Minor),
			CryptokiVersion: fmt.Sprintf("%d.%d", info.CryptokiVersion.Major, info.CryptokiVersion.Minor),
		}
	}
	if ti, err := ctx.GetTokenInfo(pm.slot); err == nil {
		pm.info.TokenModel = strings.TrimSpace(ti.Model)
	}
	pm.info.Name, pm.info.Path = m.Name, m.Path
	return pm, nil
}

const tokenLabel = "gohsm-bench"

func (pm *p11Module) initToken(cfg *Config) error {
	ctx := pm.ctx
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("C_GetSlotList: %w", err)
	}
	free := -1
	for i, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err != nil {
			return fmt.Errorf("C_GetTokenInfo(slot %d): %w", s, err)
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			free = i
			break
		}
	}
	if free < 0 {
		return errors.New("no slot with an uninitialised token (is the token directory fresh?)")
	}
	if err := ctx.InitToken(slots[free], cfg.SOPIN, tokenLabel); err != nil {
		return fmt.Errorf("C_InitToken: %w", err)
	}
	// SoftHSMv2 gives an initialised token a new slot ID: find it again by label.
	slots, err = ctx.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("C_GetSlotList: %w", err)
	}
	found := false
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && strings.TrimSpace(ti.Label) == tokenLabel && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			pm.slot, found = s, true
			break
		}
	}
	if !found {
		return errors.New("initialised token not found by its label")
	}
	sh, err := ctx.OpenSession(pm.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("C_OpenSession: %w", err)
	}
	pm.setup = sh
	if err := ctx.Login(sh, pkcs11.CKU_SO, cfg.SOPIN); err != nil {
		return fmt.Errorf("C_Login(SO): %w", err)
	}
	if err := ctx.InitPIN(sh, cfg.UserPIN); err != nil {
		return fmt.Errorf("C_InitPIN: %w", err)
	}
	if err := ctx.Logout(sh); err != nil {
		return fmt.Errorf("C_Logout: %w", err)
	}
	if err := ctx.Login(sh, pkcs11.CKU_USER, cfg.UserPIN); err != nil {
		return fmt.Errorf("C_Login(USER): %w", err)
	}
	return nil
}

// openSession opens a worker's session; the login is already shared.
func (pm *p11Module) openSession() (pkcs11.SessionHandle, error) {
	sh, err := pm.ctx.OpenSession(pm.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, fmt.Errorf("C_OpenSession: %w", err)
	}
	return sh, nil
}

func (pm *p11Module) close() {
	if pm.setup != 0 {
		_ = pm.ctx.Logout(pm.setup)
		_ = pm.ctx.CloseSession(pm.setup)
	}
	_ = pm.ctx.Finalize()
	pm.kem.close()
	pm.ctx.Destroy()
}

// hasMech reports whether the module lists every code.
func (pm *p11Module) hasMech(codes ...uint) bool {
	for _, c := range codes {
		if !pm.mechs[c] {
			return false
		}
	}
	return true
}
