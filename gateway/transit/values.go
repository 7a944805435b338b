package transit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Vault's field parser is lenient: a CLI sends every value as a string
// ("true", "3", "1h"), hvac and vault/api send JSON numbers and booleans.
// Int, Bool and Duration take both, so every existing client decodes.

// Int is an integer field that also accepts a decimal string.
type Int int

func (i *Int) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*i = 0
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*i = 0
			return nil
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		// A float such as 3.0 (JavaScript clients): whole values only.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("not an integer: %.40q", s)
		}
		n = int64(f)
	}
	if n > 1<<40 || n < -(1<<40) {
		return fmt.Errorf("integer %d out of range", n)
	}
	*i = Int(n)
	return nil
}

// Bool is a boolean field that also accepts "true"/"false"/"1"/"0".
type Bool bool

func (v *Bool) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch string(b) {
	case "true":
		*v = true
		return nil
	case "false", "null":
		*v = false
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("not a boolean: %.40s", b)
	}
	if s == "" {
		*v = false
		return nil
	}
	p, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("not a boolean: %.40q", s)
	}
	*v = Bool(p)
	return nil
}

// Duration is a period field: seconds as a number or decimal string, or a
// Go/Vault duration string ("1h", "24h30m", "90s", "7d").
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*d = 0
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := parseDuration(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > 1<<33 {
			return 0, fmt.Errorf("duration %d s out of range", n)
		}
		return time.Duration(n) * time.Second, nil
	}
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 64)
		if err != nil || n < 0 || n > 1<<20 {
			return 0, fmt.Errorf("not a duration: %.40q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("not a duration: %.40q", s)
	}
	return v, nil
}

// MarshalJSON writes a version entry as Vault does: Unix seconds for a
// symmetric key, the object for an asymmetric one.
func (k KeyEntry) MarshalJSON() ([]byte, error) {
	if k.Public != nil {
		return json.Marshal(k.Public)
	}
	return strconv.AppendInt(nil, k.Created, 10), nil
}

// UnmarshalJSON reads either form (clients of this package, tests).
func (k *KeyEntry) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		k.Public = new(KeyVersion)
		return json.Unmarshal(b, k.Public)
	}
	return json.Unmarshal(b, &k.Created)
}
