package hsm

import (
	"bytes"
	"fmt"

	"github.com/gohsm/gohsm/hsm/ck"
	"github.com/gohsm/gohsm/hsm/mech"
)

// Verification with the signature given first (PKCS#11 3.2 §5.15
// C_VerifySignatureInit, C_VerifySignature, C_VerifySignatureUpdate,
// C_VerifySignatureFinal). It is a verification operation: it takes the
// session's one verify slot, so C_VerifyInit and C_VerifySignatureInit
// exclude each other (CKR_OPERATION_ACTIVE), C_SessionCancel(CKF_VERIFY)
// ends either, and the key checks are C_VerifyInit's. The C_Verify* calls
// do not continue an operation begun here, nor the C_VerifySignature*
// calls one begun by C_VerifyInit: both answer
// CKR_OPERATION_NOT_INITIALIZED ("MUST have been initialized with ...").

// sigFirst is the verifier of an operation begun by C_VerifySignatureInit.
// As a mech.Verifier it refuses everything, so the C_Verify* paths of
// ops.go and dual.go cannot continue it.
type sigFirst struct {
	inner mech.Verifier
	sig   []byte
	// buffer: the mechanism verifies single-part only, but 3.2 allows
	// multi-part when the signature comes first (tables "ML-DSA
	// Mechanisms vs. Functions" and "SLH-DSA Mechanisms vs. Functions",
	// footnote 1), so the parts are collected and verified at the end.
	buffer bool
	buf    []byte
}

var errNotSigFirst = fmt.Errorf("operation begun by C_VerifySignatureInit: %w", ck.CKR_OPERATION_NOT_INITIALIZED)

func (*sigFirst) Update([]byte) error      { return errNotSigFirst }
func (*sigFirst) Final([]byte) error       { return errNotSigFirst }
func (*sigFirst) Verify(_, _ []byte) error { return errNotSigFirst }

// buffersParts lists the mechanisms whose multi-part verification exists
// only with the signature first.
func buffersParts(mt ck.MechanismType) bool {
	return mt == ck.CKM_ML_DSA || mt == ck.CKM_SLH_DSA
}

// VerifySignatureInit is C_VerifySignatureInit. The signature's length is
// checked when the data has been seen (the spec lets init return
// CKR_SIGNATURE_LEN_RANGE; it need not).
func (m *Module) VerifySignatureInit(h ck.SessionHandle, mt ck.Mechanism, kh ck.ObjectHandle, sig []byte) error {
	return m.initKeyOp(h, opVerify, mt, kh, useVerify, func(g grant) (*operation, error) {
		v, err := g.mm.Verify(g.key, g.param)
		if err != nil {
			return nil, err
		}
		return &operation{verifier: &sigFirst{inner: v, sig: bytes.Clone(sig), buffer: buffersParts(mt.Type)}}, nil
	})
}

// sigFirstActive is active(opVerify) for an operation begun here; any
// other verification is left as it was.
func (m *Module) sigFirstActive(h ck.SessionHandle) (*Session, *operation, *sigFirst, error) {
	s, op, err := m.active(h, opVerify)
	if err != nil {
		return nil, nil, nil, err
	}
	sf, ok := op.verifier.(*sigFirst)
	if !ok {
		s.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("verification begun by C_VerifyInit: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	return s, op, sf, nil
}

// VerifySignature is C_VerifySignature; it ends the operation, except
// after C_VerifySignatureUpdate, which it cannot finish (CKR_OPERATION_ACTIVE
// as C_Verify).
func (m *Module) VerifySignature(h ck.SessionHandle, data []byte) error {
	s, op, sf, err := m.sigFirstActive(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.single(opVerify, op); err != nil {
		return err
	}
	s.ops[opVerify] = nil
	return sf.inner.Verify(data, sf.sig)
}

// VerifySignatureUpdate is C_VerifySignatureUpdate; an error ends the
// operation.
func (m *Module) VerifySignatureUpdate(h ck.SessionHandle, in []byte) error {
	s, op, sf, err := m.sigFirstActive(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.multi(opVerify, op); err != nil {
		return err
	}
	if sf.buffer {
		sf.buf = append(sf.buf, in...)
	} else if err := sf.inner.Update(in); err != nil {
		s.ops[opVerify] = nil
		return err
	}
	return nil
}

// VerifySignatureFinal is C_VerifySignatureFinal; it always ends the
// operation.
func (m *Module) VerifySignatureFinal(h ck.SessionHandle) error {
	s, op, sf, err := m.sigFirstActive(h)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.multi(opVerify, op); err != nil {
		return err
	}
	s.ops[opVerify] = nil
	if sf.buffer {
		return sf.inner.Verify(sf.buf, sf.sig)
	}
	return sf.inner.Final(sf.sig)
}

// GetSessionValidationFlags is C_GetSessionValidationFlags (3.2 §5.6).
// The flags of CKS_LAST_VALIDATION_OK (1, the one type 3.2 defines) are the CKA_VALIDATION_FLAG bits of
// the validations (CKO_VALIDATION objects, §4.15.3.1) whose rules the
// session's last operation met. gohsm claims no third-party validation and
// has no validation objects, so no bit can be set: the answer is 0, for
// that type and (as the spec defines no other and no error for one) for
// any other.
func (m *Module) GetSessionValidationFlags(h ck.SessionHandle, typ ck.ULong) (ck.Flags, error) {
	if _, err := m.session(h); err != nil {
		return 0, err
	}
	return 0, nil
}
