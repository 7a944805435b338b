package ck

import "sort"

// SM2/SM3/SM4 have no OASIS codes; vendors each picked CKM_VENDOR_DEFINED
// values of their own. A Profile is one vendor's table, keyed by the
// constant's name (CKK_SM2, CKM_SM4_CBC, ...). The engine builds its mechanism
// registry from the selected profile, so an application written against one
// vendor's codes works unchanged. docs/sm-codes.json publishes DefaultProfile.
type Profile struct {
	Name        string
	Description string
	Codes       map[string]ULong
}

// Mechanism returns the code of a CKM_ name in this profile.
func (p *Profile) Mechanism(name string) (MechanismType, bool) {
	v, ok := p.Codes[name]
	return MechanismType(v), ok
}

// KeyType returns the code of a CKK_ name in this profile.
func (p *Profile) KeyType(name string) (KeyType, bool) {
	v, ok := p.Codes[name]
	return KeyType(v), ok
}

// Names lists the profile's constant names in a stable order.
func (p *Profile) Names() []string {
	out := make([]string, 0, len(p.Codes))
	for n := range p.Codes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Profiles returns every known profile; the first is the default.
func Profiles() []*Profile { return profiles }

// ProfileByName finds a profile; "" means the default.
func ProfileByName(name string) (*Profile, bool) {
	if name == "" {
		return DefaultProfile, true
	}
	for _, p := range profiles {
		if p.Name == name {
			return p, true
		}
	}
	return nil, false
}

func vendorMechanismName(m MechanismType) (string, bool) {
	return reverse(DefaultProfile, "CKM_", ULong(m))
}

func vendorKeyTypeName(k KeyType) (string, bool) {
	return reverse(DefaultProfile, "CKK_", ULong(k))
}

func reverse(p *Profile, prefix string, v ULong) (string, bool) {
	if v < ULong(CKM_VENDOR_DEFINED) {
		return "", false
	}
	for n, c := range p.Codes {
		if c == v && len(n) > len(prefix) && n[:len(prefix)] == prefix {
			return n, true
		}
	}
	return "", false
}

// vendorParamKind tells the shim how to decode the SM mechanisms that take a
// structure rather than an IV, in any known profile.
func vendorParamKind(m MechanismType) (ParamKind, bool) {
	for _, p := range profiles {
		if v, ok := p.Codes["CKM_SM4_GCM"]; ok && MechanismType(v) == m {
			return ParamGCM, true
		}
		if v, ok := p.Codes["CKM_SM4_CTR"]; ok && MechanismType(v) == m {
			return ParamCTR, true
		}
		// CK_MAC_GENERAL_PARAMS, as for the standard *_GENERAL mechanisms.
		for _, n := range [...]string{"CKM_SM3_HMAC_GENERAL", "CKM_SM4_MAC_GENERAL"} {
			if v, ok := p.Codes[n]; ok && MechanismType(v) == m {
				return ParamULong, true
			}
		}
	}
	return 0, false
}
