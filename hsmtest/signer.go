package hsmtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/gohsm/gohsm/hsm/ck"
)

// signer is a crypto.Signer over a token key pair (Token.Signer).
type signer struct {
	tok *Token
	key *Key
}

func (s *signer) Public() crypto.PublicKey { return s.key.Public }

// digestInfo are the DER prefixes of PKCS#1 v1.5's DigestInfo (RFC 8017
// §9.2, note 1).
var digestInfo = map[crypto.Hash][]byte{
	crypto.SHA224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var pssHash = map[crypto.Hash]struct {
	mech ck.MechanismType
	mgf  ck.MGF
}{
	crypto.SHA224: {ck.CKM_SHA224, ck.CKG_MGF1_SHA224},
	crypto.SHA256: {ck.CKM_SHA256, ck.CKG_MGF1_SHA256},
	crypto.SHA384: {ck.CKM_SHA384, ck.CKG_MGF1_SHA384},
	crypto.SHA512: {ck.CKM_SHA512, ck.CKG_MGF1_SHA512},
}

// Sign signs digest (or, for Ed25519, the message) on the token. ECDSA
// signatures come back ASN.1-encoded, as crypto/ecdsa makes them.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var (
		mt   ck.Mechanism
		data = digest
	)
	h := opts.HashFunc()
	switch pub := s.key.Public.(type) {
	case *ecdsa.PublicKey:
		mt = ck.Mechanism{Type: ck.CKM_ECDSA}
	case ed25519.PublicKey:
		if h != crypto.Hash(0) {
			return nil, errors.New("hsmtest: Ed25519 signs the message itself (crypto.Hash(0)); Ed25519ph is not offered here")
		}
		if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
			return nil, errors.New("hsmtest: Ed25519ctx is not offered here")
		}
		mt = ck.Mechanism{Type: ck.CKM_EDDSA}
	case *rsa.PublicKey:
		if h.Size() != len(digest) {
			return nil, fmt.Errorf("hsmtest: digest of %d bytes for %v", len(digest), h)
		}
		if po, ok := opts.(*rsa.PSSOptions); ok {
			ph, ok := pssHash[h]
			if !ok {
				return nil, fmt.Errorf("hsmtest: PSS with %v not offered here", h)
			}
			salt := po.SaltLength
			switch salt {
			case rsa.PSSSaltLengthEqualsHash:
				salt = h.Size()
			case rsa.PSSSaltLengthAuto:
				salt = (pub.N.BitLen()-1+7)/8 - 2 - h.Size()
			}
			mt = ck.Mechanism{Type: ck.CKM_RSA_PKCS_PSS, Param: &ck.RSAPSSParams{HashAlg: ph.mech, MGF: ph.mgf, SaltLen: ck.ULong(salt)}}
		} else {
			prefix, ok := digestInfo[h]
			if !ok {
				return nil, fmt.Errorf("hsmtest: PKCS#1 v1.5 with %v not offered here", h)
			}
			mt = ck.Mechanism{Type: ck.CKM_RSA_PKCS}
			data = append(append([]byte{}, prefix...), digest...)
		}
	default:
		return nil, fmt.Errorf("hsmtest: %T keys cannot sign", pub)
	}
	b := s.tok.Backend
	sess, err := b.OpenSession(s.tok.Slot, ck.CKF_SERIAL_SESSION)
	if err != nil {
		return nil, err
	}
	defer b.CloseSession(sess)
	if err := b.SignInit(sess, mt, s.key.Handle); err != nil {
		return nil, err
	}
	sig, _, err := b.Sign(sess, data, 1024)
	if err != nil {
		return nil, err
	}
	if _, ok := s.key.Public.(*ecdsa.PublicKey); ok {
		return asn1ECDSA(sig)
	}
	return sig, nil
}

// asn1ECDSA turns PKCS#11's r||s into the ASN.1 form.
func asn1ECDSA(sig []byte) ([]byte, error) {
	if len(sig)%2 != 0 || len(sig) == 0 {
		return nil, fmt.Errorf("hsmtest: ECDSA signature of %d bytes", len(sig))
	}
	r := new(big.Int).SetBytes(sig[:len(sig)/2])
	s := new(big.Int).SetBytes(sig[len(sig)/2:])
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}
