package hsm

import (
	"errors"

	"github.com/gohsm/gohsm/hsm/ck"
)

// ToRV recovers the PKCS#11 code from an engine error. Anything that is not
// an RV (a storage failure, a bug) becomes CKR_GENERAL_ERROR rather than a
// wrong success; boundaries call this and nothing else does.
func ToRV(err error) ck.RV {
	if err == nil {
		return ck.CKR_OK
	}
	var rv ck.RV
	if errors.As(err, &rv) {
		return rv
	}
	return ck.CKR_GENERAL_ERROR
}
