package device

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
)

// KeyFingerprint names the device key of the store directory dir without
// deriving it, so that it can be compared while the device is sealed (an
// appliance cluster's members must all have the same device key:
// firmware-sim/cluster). It is "" for a store without a device, else
// "dk1:" and 16 bytes of HMAC-SHA256 under a key derived from the secret S
// over the device id and the master key's check value. The device key is
// HKDF(master, S, id): two devices have the same fingerprint exactly when
// they have the same S, id and master key (with overwhelming probability),
// that is the same device key. The fingerprint says nothing of S (a PRF
// output) or of the master key beyond its check value, which the state
// file holds anyway. It checks the state's MAC first; a zeroised or
// damaged device has no fingerprint (an error).
func KeyFingerprint(dir string) (string, error) {
	doc, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if doc.Lifecycle == lifeZeroised {
		return "", errors.New("device: zeroised: it has no key")
	}
	s, err := readSecret(dir)
	if err != nil {
		return "", fmt.Errorf("device: %w", err)
	}
	defer clear(s)
	if !doc.checkMAC(s) {
		return "", errors.New("device: the state fails its MAC")
	}
	k := kdf(s, nil, "gohsm device key fingerprint v1", 32)
	defer clear(k)
	h := hmac.New(sha256.New, k)
	h.Write([]byte(doc.DeviceID))
	h.Write([]byte{0})
	h.Write([]byte(doc.MasterCheck))
	return "dk1:" + hex.EncodeToString(h.Sum(nil)[:16]), nil
}
