package mech

import (
	"crypto/rand"
	"fmt"

	"github.com/cloudflare/circl/sign/slhdsa"
	"github.com/cloudflare/circl/xof"

	"github.com/gohsm/gohsm/hsm/ck"
)

// HashSLH-DSA (FIPS 205 §10.2, Algorithms 23 and 25) with the PKCS#11 3.2
// values; the parameter and data rules are HashML-DSA's (hashmldsa.go):
//
//   - CKM_HASH_SLH_DSA_<hash>: the token hashes, single- and multi-part,
//     through circl's public pre-hash API (slhdsa.PreHash), which streams
//     the message into PH and builds M' itself.
//   - CKM_HASH_SLH_DSA: the caller passes PH(M). circl's PreHash cannot
//     take a digest, so this one builds M' with hashMessagePrime and calls
//     slh_sign_internal / slh_verify_internal (circl_internal.go). Tests
//     check the two paths sign identically.
//
// opt_rand is n bytes from crypto/rand when hedged and PK.seed for
// CKH_DETERMINISTIC_REQUIRED (FIPS 205 Algorithm 23 steps 1-4).

func hashSLHDSAMechanisms() []Mechanism {
	info := ck.MechanismInfo{MinKeySize: 32, MaxKeySize: 64, Flags: ck.CKF_SIGN | ck.CKF_VERIFY}
	mk := func(m ck.MechanismType, generic bool) Mechanism {
		return Mechanism{
			Type: m, Info: info, KeyTypes: []ck.KeyType{ck.CKK_SLH_DSA},
			Sign:   func(k *Key, param any) (Signer, error) { return newHashSLHDSASigner(m, generic, k, param) },
			Verify: func(k *Key, param any) (Verifier, error) { return newHashSLHDSAVerifier(m, generic, k, param) },
		}
	}
	out := []Mechanism{mk(ck.CKM_HASH_SLH_DSA, true)}
	for _, p := range preHashes {
		if p.slh != 0 {
			out = append(out, mk(p.slh, false))
		}
	}
	return out
}

// circlPreHash is circl's PH for p (the SHA-2, SHA-3 and SHAKE functions of
// FIPS 205 §10.2.2).
func circlPreHash(m ck.MechanismType, p *preHash) (*slhdsa.PreHash, error) {
	var ph *slhdsa.PreHash
	var err error
	switch p.shake {
	case 128:
		ph, err = slhdsa.NewPreHashWithXof(xof.SHAKE128)
	case 256:
		ph, err = slhdsa.NewPreHashWithXof(xof.SHAKE256)
	default:
		ph, err = slhdsa.NewPreHashWithHash(p.h)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %s: %v: %w", m, p.name, err, ck.CKR_MECHANISM_INVALID)
	}
	return ph, nil
}

// hashSLHDSAOp is what signer and verifier share: for CKM_HASH_SLH_DSA the
// digest-taking path, for the others a circl PreHash per message.
type hashSLHDSAOp struct {
	key *slhdsaKey
	hashSign
	part *slhdsa.PreHash // multi-part message of a CKM_HASH_SLH_DSA_<hash>
}

func newHashSLHDSAOp(m ck.MechanismType, generic bool, k *Key, param any) (*hashSLHDSAOp, error) {
	sk, err := slhdsaMaterial(k)
	if err != nil {
		return nil, err
	}
	hs, err := newHashSign(m, generic, param)
	if err != nil {
		return nil, err
	}
	if !generic {
		if _, err := circlPreHash(m, hs.ph); err != nil { // fail at init, not at the end
			return nil, err
		}
	}
	return &hashSLHDSAOp{key: sk, hashSign: hs}, nil
}

func (o *hashSLHDSAOp) Update(p []byte) error {
	if o.generic {
		return o.update(p) // CKR_FUNCTION_NOT_SUPPORTED
	}
	if o.part == nil {
		ph, err := circlPreHash(o.mech, o.ph)
		if err != nil {
			return err
		}
		o.part = ph
	}
	_, _ = o.part.Write(p) // hashes never fail to write
	return nil
}

// oneShot returns the circl message for a whole (single-part) input, or,
// for the generic mechanism, M' as raw bytes.
func (o *hashSLHDSAOp) oneShot(data []byte) (msg *slhdsa.Message, mp []byte, err error) {
	if o.generic {
		d, err := o.oneShotDigest(data)
		if err != nil {
			return nil, nil, err
		}
		return nil, o.messagePrime(d), nil
	}
	ph, err := circlPreHash(o.mech, o.ph)
	if err != nil {
		return nil, nil, err
	}
	_, _ = ph.Write(data)
	return o.build(ph)
}

func (o *hashSLHDSAOp) final() (*slhdsa.Message, []byte, error) {
	if o.generic {
		_, err := o.finalDigest() // CKR_FUNCTION_NOT_SUPPORTED
		return nil, nil, err
	}
	ph := o.part
	o.part = nil
	if ph == nil {
		var err error
		if ph, err = circlPreHash(o.mech, o.ph); err != nil {
			return nil, nil, err
		}
	}
	return o.build(ph)
}

func (o *hashSLHDSAOp) build(ph *slhdsa.PreHash) (*slhdsa.Message, []byte, error) {
	msg, err := ph.BuildMessage()
	if err != nil {
		return nil, nil, fmt.Errorf("%v: %v: %w", o.mech, err, ck.CKR_FUNCTION_FAILED)
	}
	return msg, nil, nil
}

type hashSLHDSASigner struct{ *hashSLHDSAOp }

func newHashSLHDSASigner(m ck.MechanismType, generic bool, k *Key, param any) (Signer, error) {
	o, err := newHashSLHDSAOp(m, generic, k, param)
	if err != nil {
		return nil, err
	}
	if o.key.priv == nil {
		return nil, fmt.Errorf("%v: signing needs a private key: %w", m, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	return hashSLHDSASigner{o}, nil
}

func (s hashSLHDSASigner) Len() int { return s.key.set.sigLen }

func (s hashSLHDSASigner) Final() ([]byte, error) {
	msg, mp, err := s.final()
	if err != nil {
		return nil, err
	}
	return s.sign(msg, mp)
}

func (s hashSLHDSASigner) Sign(data []byte) ([]byte, error) {
	msg, mp, err := s.oneShot(data)
	if err != nil {
		return nil, err
	}
	return s.sign(msg, mp)
}

// sign signs a circl pre-hash message, or M' itself when msg is nil.
func (s hashSLHDSASigner) sign(msg *slhdsa.Message, mp []byte) ([]byte, error) {
	var sig []byte
	var err error
	switch {
	case msg != nil && s.randomized:
		sig, err = slhdsa.SignRandomized(s.key.priv, rand.Reader, msg, s.ctx)
	case msg != nil:
		sig, err = slhdsa.SignDeterministic(s.key.priv, msg, s.ctx)
	default:
		var addRand []byte
		if s.randomized {
			addRand = make([]byte, s.key.set.n)
			if _, err = rand.Read(addRand); err != nil {
				return nil, fmt.Errorf("%v: %v: %w", s.mech, err, ck.CKR_FUNCTION_FAILED)
			}
		} else {
			pk, _ := s.key.pub.MarshalBinary()
			addRand = pk[:s.key.set.n] // PK.seed
		}
		sig, err = slhdsaSignInternal(s.key.priv, mp, addRand)
		zero(mp)
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %v: %w", s.mech, err, ck.CKR_FUNCTION_FAILED)
	}
	if len(sig) != s.key.set.sigLen {
		return nil, fmt.Errorf("%v: signature of %d bytes: %w", s.mech, len(sig), ck.CKR_FUNCTION_FAILED)
	}
	return sig, nil
}

type hashSLHDSAVerifier struct{ *hashSLHDSAOp }

func newHashSLHDSAVerifier(m ck.MechanismType, generic bool, k *Key, param any) (Verifier, error) {
	// The hedge variant is ignored on verification (3.2), but a malformed
	// one is still a malformed parameter.
	o, err := newHashSLHDSAOp(m, generic, k, param)
	if err != nil {
		return nil, err
	}
	return hashSLHDSAVerifier{o}, nil
}

func (v hashSLHDSAVerifier) Final(sig []byte) error {
	msg, mp, err := v.final()
	if err != nil {
		return err
	}
	return v.verify(msg, mp, sig)
}

func (v hashSLHDSAVerifier) Verify(data, sig []byte) error {
	msg, mp, err := v.oneShot(data)
	if err != nil {
		return err
	}
	return v.verify(msg, mp, sig)
}

func (v hashSLHDSAVerifier) verify(msg *slhdsa.Message, mp, sig []byte) error {
	if len(sig) != v.key.set.sigLen {
		return fmt.Errorf("%v: signature of %d bytes: %w", v.mech, len(sig), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	var ok bool
	if msg != nil {
		ok = slhdsa.Verify(v.key.pub, msg, sig, v.ctx)
	} else {
		ok = slhdsaVerifyInternal(v.key.pub, mp, sig)
	}
	if !ok {
		return fmt.Errorf("%v: %w", v.mech, ck.CKR_SIGNATURE_INVALID)
	}
	return nil
}
