package device

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Record is a device's record, D/device/state and D/device/secret (S), as
// one appliance cluster member gives it to a new member: with the same
// record and the same custodians' shares every member derives the same
// device key (HKDF(master, S, id)), which the replicated token records
// need (firmware-sim/cluster/device.go). The record alone opens nothing:
// the master key is only in the shares. It travels only over the
// cluster's mutual-TLS channel (gohsm cluster device-copy).
type Record struct {
	State  []byte
	Secret []byte
}

// Wipe clears S from memory.
func (r *Record) Wipe() {
	if r != nil {
		clear(r.Secret)
	}
}

// ExportRecord reads the device record of dir; the state must pass its
// MAC under S. A store without a device, or a zeroised one, has none.
func ExportRecord(dir string) (*Record, error) {
	doc, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("device: this member has no device")
	}
	if err != nil {
		return nil, err
	}
	if doc.Lifecycle == lifeZeroised {
		return nil, errors.New("device: zeroised")
	}
	s, err := readSecret(dir)
	if err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	if !doc.checkMAC(s) {
		clear(s)
		return nil, errors.New("device: the state fails its MAC")
	}
	b, err := os.ReadFile(StatePath(dir))
	if err != nil {
		clear(s)
		return nil, err
	}
	return &Record{State: b, Secret: s}, nil
}

// ImportRecord installs r as the device of dir, which must have none (or
// a zeroised one) and no running appliance. The state must parse and pass
// its MAC under r's S. The appliance then boots sealed, and the same
// custodians' shares unseal it.
func ImportRecord(dir string, r *Record) error {
	if old, err := readState(dir); err == nil && old.Lifecycle != lifeZeroised {
		return fmt.Errorf("%s already has a device (%s): a member gets a copy only into a store without one", dir, old.DeviceID)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if c, err := AdminDial(filepath.Join(dir, AdminSocket)); err == nil {
		c.Close()
		return fmt.Errorf("an appliance is running on %s: stop it first", dir)
	}
	if len(r.Secret) != 32 {
		return fmt.Errorf("device record: secret of %d bytes, want 32", len(r.Secret))
	}
	var doc stateDoc
	dec := json.NewDecoder(bytes.NewReader(r.State))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil || doc.Format != 1 {
		return fmt.Errorf("device record: state does not parse (%v)", err)
	}
	if doc.Lifecycle == lifeZeroised || !doc.checkMAC(r.Secret) {
		return errors.New("device record: the state fails its MAC under the record's secret (or is zeroised)")
	}
	if err := os.MkdirAll(filepath.Join(dir, deviceDir), 0o700); err != nil {
		return err
	}
	if err := writeFileSync(secretPath(dir), r.Secret); err != nil {
		return err
	}
	return writeFileSync(StatePath(dir), r.State)
}
