package mech

import (
	"sort"

	"github.com/gohsm/gohsm/hsm/ck"
)

// Registry maps mechanism and key type codes to their implementations for
// one SM vendor profile. It is immutable once built.
type Registry struct {
	mechs   map[ck.MechanismType]*Mechanism
	keys    map[ck.KeyType]*KeyKind
	list    []ck.MechanismType
	Profile *ck.Profile
}

// New builds the registry. This is the one explicit list of every family:
// adding a mechanism means one file plus one line here.
func New(p *ck.Profile) *Registry {
	r := &Registry{mechs: map[ck.MechanismType]*Mechanism{}, keys: map[ck.KeyType]*KeyKind{}, Profile: p}
	families := [][]Mechanism{
		sm2Mechanisms(p),
		sm3Mechanisms(p),
		sm4Mechanisms(p),
		rsaMechanisms(),
		ecMechanisms(),
		aesMechanisms(),
		des3Mechanisms(),
		digestMechanisms(),
		hmacMechanisms(),
		genericMechanisms(),
		keyWrapMechanisms(),
		ecdhMechanisms(),
		hkdfMechanisms(),
		pbkdf2Mechanisms(),
		montgomeryMechanisms(),
		ncipherMechanisms(),
		sha3Mechanisms(),
		eddsaMechanisms(),
		cmacMechanisms(),
		mldsaMechanisms(),
		slhdsaMechanisms(),
		hashMLDSAMechanisms(),
		hashSLHDSAMechanisms(),
		mlkemMechanisms(),
		chacha20Mechanisms(),
		// families are added here
	}
	kinds := [][]KeyKind{
		sm2KeyKinds(p),
		sm4KeyKinds(p),
		rsaKeyKinds(),
		ecKeyKinds(),
		aesKeyKinds(),
		des3KeyKinds(),
		genericKeyKinds(),
		edKeyKinds(),
		mldsaKeyKinds(),
		slhdsaKeyKinds(),
		montgomeryKeyKinds(),
		hkdfKeyKinds(),
		mlkemKeyKinds(),
		chacha20KeyKinds(),
		// key kinds are added here
	}
	for _, fam := range families {
		for i := range fam {
			m := fam[i]
			// Message-based signing (3.0 §5.15, §5.17) runs every
			// mechanism that signs or verifies in one part
			// (hsm/msgsign.go), so its info says so.
			if m.Sign != nil && m.Info.Flags&ck.CKF_SIGN != 0 {
				m.Info.Flags |= ck.CKF_MESSAGE_SIGN
			}
			if m.Verify != nil && m.Info.Flags&ck.CKF_VERIFY != 0 {
				m.Info.Flags |= ck.CKF_MESSAGE_VERIFY
			}
			r.mechs[m.Type] = &m
			r.list = append(r.list, m.Type)
		}
	}
	codecs := pkcs8Codecs()
	for _, ks := range kinds {
		for i := range ks {
			k := ks[i]
			if c, ok := codecs[k.Type]; ok && k.Encode == nil {
				k.Encode, k.Decode = c.encode, c.decode
			}
			if k.pct != nil {
				k.PCT = k.pct(r)
			}
			r.keys[k.Type] = &k
		}
	}
	sort.Slice(r.list, func(i, j int) bool { return r.list[i] < r.list[j] })
	return r
}

// Mechanism returns the implementation of t.
func (r *Registry) Mechanism(t ck.MechanismType) (*Mechanism, bool) {
	m, ok := r.mechs[t]
	return m, ok
}

// KeyKind returns the handling of key type t.
func (r *Registry) KeyKind(t ck.KeyType) (*KeyKind, bool) {
	k, ok := r.keys[t]
	return k, ok
}

// List returns every mechanism code in ascending order; callers must not
// modify it.
func (r *Registry) List() []ck.MechanismType { return r.list }
