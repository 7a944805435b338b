package hsm

import (
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Config is what a Module is built from. DefaultConfig gives values that
// suit an interactive user; tests lower KDFIterations.
type Config struct {
	// Storage holds the tokens. Required.
	Storage Storage
	// Profile selects the SM vendor codes; nil means ck.DefaultProfile.
	Profile *ck.Profile
	// MaxPINTries is the number of consecutive wrong PINs before a PIN
	// locks (CKF_USER_PIN_LOCKED / CKF_SO_PIN_LOCKED).
	MaxPINTries int
	// KDFIterations is the PBKDF2-SHA256 cost for PIN-derived keys.
	KDFIterations int
	// MinPINLen and MaxPINLen bound PINs (CK_TOKEN_INFO ulMinPinLen/ulMaxPinLen).
	MinPINLen, MaxPINLen int
	// Policy is the security profile (policy.go); the zero value is the
	// default profile.
	Policy Policy
	// DeviceKey, when set (32 bytes), additionally seals every token
	// record's secrets under it (devicekey.go): an appliance's store, whose
	// tokens cannot be used without it. Nil: a store of the module's local
	// mode, unchanged.
	DeviceKey []byte
}

// DefaultKDFIterations costs about 60 ms per login on one core of a 2024
// server; see README "PIN protection" for the measurement.
const DefaultKDFIterations = 210_000

// DefaultConfig returns the defaults for storage st.
func DefaultConfig(st Storage) Config {
	return Config{
		Storage:       st,
		Profile:       ck.DefaultProfile,
		MaxPINTries:   10,
		KDFIterations: DefaultKDFIterations,
		MinPINLen:     4,
		MaxPINLen:     255,
	}
}

// Validate reports a configuration the engine cannot run with.
func (c *Config) Validate() error {
	if c.Storage == nil {
		return fmt.Errorf("hsm config: no storage")
	}
	if c.Profile == nil {
		c.Profile = ck.DefaultProfile
	}
	if c.MaxPINTries <= 0 {
		return fmt.Errorf("hsm config: MaxPINTries %d must be positive", c.MaxPINTries)
	}
	if c.KDFIterations < 1 {
		return fmt.Errorf("hsm config: KDFIterations %d must be positive", c.KDFIterations)
	}
	if c.DeviceKey != nil && len(c.DeviceKey) != deviceKeyLen {
		return fmt.Errorf("hsm config: DeviceKey of %d bytes, want %d", len(c.DeviceKey), deviceKeyLen)
	}
	if c.MinPINLen < 1 || c.MaxPINLen < c.MinPINLen {
		return fmt.Errorf("hsm config: PIN length bounds %d..%d", c.MinPINLen, c.MaxPINLen)
	}
	return nil
}
