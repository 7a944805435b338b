package mech

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Pairwise consistency tests (FIPS 140-3 IG 10.3.A; SP 800-56A r3
// §5.6.2.1.4 for key-agreement pairs). The engine runs a key kind's PCT on
// every key pair it generates, before it commits the pair: a pair whose
// halves do not match (a fault in generation, a bit flipped in memory) is
// never stored. Each key kind states its test with one line (pct) in its
// own file; New binds it to the registry's mechanisms, so the test runs
// the same code a later C_Sign or C_DecapsulateKey runs.

// pctBinder builds a kind's PCT from the registry it belongs to.
type pctBinder func(r *Registry) func(pub, priv *Key) error

// pctMessage is what the signature PCTs sign: 32 bytes, so that it is also
// a valid input of the raw (pre-hashed) mechanisms.
var pctMessage = []byte("gohsm pairwise consistency test.")

// errPCT is what a failed test wraps; the engine answers CKR_DEVICE_ERROR.
var errPCT = errors.New("pairwise consistency test failed")

// signPCT signs pctMessage with the private key and verifies the signature
// with the public key, through mechanism mt.
func signPCT(mt ck.MechanismType, param any) pctBinder {
	return func(r *Registry) func(pub, priv *Key) error {
		m, ok := r.Mechanism(mt)
		if !ok || m.Sign == nil || m.Verify == nil {
			return func(_, _ *Key) error { return fmt.Errorf("%w: mechanism %v not available", errPCT, mt) }
		}
		return func(pub, priv *Key) error {
			s, err := m.Sign(priv, param)
			if err != nil {
				return fmt.Errorf("%w: %v sign: %v", errPCT, mt, err)
			}
			sig, err := s.Sign(pctMessage)
			if err != nil {
				return fmt.Errorf("%w: %v sign: %v", errPCT, mt, err)
			}
			v, err := m.Verify(pub, param)
			if err != nil {
				return fmt.Errorf("%w: %v verify: %v", errPCT, mt, err)
			}
			if err := v.Verify(pctMessage, sig); err != nil {
				return fmt.Errorf("%w: %v: the public key does not verify the private key's signature: %v", errPCT, mt, err)
			}
			return nil
		}
	}
}

// kemPCT encapsulates to the public key and decapsulates with the private
// key: both must give the same shared secret.
func kemPCT(mt ck.MechanismType) pctBinder {
	return func(r *Registry) func(pub, priv *Key) error {
		m, ok := r.Mechanism(mt)
		if !ok || m.Encapsulate == nil || m.Decapsulate == nil || m.CiphertextLen == nil {
			return func(_, _ *Key) error { return fmt.Errorf("%w: mechanism %v not available", errPCT, mt) }
		}
		return func(pub, priv *Key) error {
			n, err := m.CiphertextLen(pub)
			if err != nil {
				return fmt.Errorf("%w: %v: %v", errPCT, mt, err)
			}
			ct := make([]byte, n)
			ss1, err := m.Encapsulate(pub, nil, ct)
			if err != nil {
				return fmt.Errorf("%w: %v encapsulate: %v", errPCT, mt, err)
			}
			defer clear(ss1)
			ss2, err := m.Decapsulate(priv, nil, ct)
			if err != nil {
				return fmt.Errorf("%w: %v decapsulate: %v", errPCT, mt, err)
			}
			defer clear(ss2)
			if subtle.ConstantTimeCompare(ss1, ss2) != 1 {
				return fmt.Errorf("%w: %v: decapsulation gives another shared secret", errPCT, mt)
			}
			return nil
		}
	}
}

// publicPCT is the key-agreement pairs' test (SP 800-56A r3 §5.6.2.1.4,
// owner assurance of pair-wise consistency): the public value recomputed
// from the private key must be the public key's. derived returns the
// public value a parsed key holds (for a private key: the one recomputed
// from its private value when it was parsed).
func publicPCT(derived func(k *Key) ([]byte, bool)) pctBinder {
	return func(*Registry) func(pub, priv *Key) error {
		return func(pub, priv *Key) error {
			a, ok1 := derived(pub)
			b, ok2 := derived(priv)
			if !ok1 || !ok2 || len(a) == 0 || !bytes.Equal(a, b) {
				return fmt.Errorf("%w: the public key is not the private key's", errPCT)
			}
			return nil
		}
	}
}
