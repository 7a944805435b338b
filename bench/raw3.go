package bench

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"

	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// rawKeys3 are the raw target's keys for the PKCS#11 3.x ops, made on first
// use like the others.
type rawKeys3 struct {
	ed        ed25519.PrivateKey
	mldsa     *mldsa65.PrivateKey
	mldsaPub  *mldsa65.PublicKey
	mlkemPub  kem.PublicKey
	mlkemPriv kem.PrivateKey
	rsaBig    rawRSABig
}

func (r *rawTarget) prepare3(op *Op) error {
	if ok, err := r.k3.rsaBig.prepare(op); ok {
		return err
	}
	var err error
	switch op.Name {
	case "ed25519-sign":
		if r.k3.ed == nil {
			_, r.k3.ed, err = ed25519.GenerateKey(rand.Reader)
		}
	case "mldsa65-sign":
		if r.k3.mldsa == nil {
			r.k3.mldsaPub, r.k3.mldsa, err = mldsa65.GenerateKey(rand.Reader)
		}
	case "mlkem768-encaps":
		if r.k3.mlkemPub == nil {
			r.k3.mlkemPub, r.k3.mlkemPriv, err = mlkem768.Scheme().GenerateKeyPair()
		}
	}
	return err
}

// newWorker3 binds the 3.x ops on the Go libraries; ok is false for others.
// The same calls a Go module would make: ed25519.Sign, mldsa65.SignTo
// hedged with an empty context (what CKM_ML_DSA without a parameter is),
// and circl's ML-KEM-768 Encapsulate.
func (r *rawTarget) newWorker3(op *Op) (*worker, bool) {
	k := &r.k3
	if w, ok := k.rsaBig.newWorker(op); ok {
		return w, true
	}
	switch op.Name {
	case "ed25519-sign":
		return simple(func() ([]byte, error) { return ed25519.Sign(k.ed, signDigest[:]), nil },
			func(sig []byte) error { return checkEd25519(k.ed.Public().(ed25519.PublicKey), sig) }), true
	case "mldsa65-sign":
		return simple(func() ([]byte, error) {
			sig := make([]byte, mldsa65.SignatureSize)
			err := mldsa65.SignTo(k.mldsa, signMsg, nil, true, sig)
			return sig, err
		}, func(sig []byte) error { return checkMLDSA65(k.mldsaPub, sig) }), true
	case "mlkem768-encaps":
		s := mlkem768.Scheme()
		var ss []byte
		return simple(func() ([]byte, error) {
			ct, secret, err := s.Encapsulate(k.mlkemPub)
			ss = secret
			return ct, err
		}, func(ct []byte) error {
			got, err := s.Decapsulate(k.mlkemPriv, ct)
			if err != nil {
				return err
			}
			if len(ss) != 32 || subtle.ConstantTimeCompare(got, ss) != 1 {
				return errors.New("ML-KEM-768: decapsulated secret differs")
			}
			return nil
		}), true
	}
	return nil, false
}
