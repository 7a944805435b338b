package main

/*
#include "shim.h"
*/
import "C"

import "github.com/gohsm/gohsm/hsm/ck"

// The module offers three interfaces (tables.c): 2.40, the table
// C_GetFunctionList returns and so the one pkcs11-tool, libp11, NSS and
// Java's older providers use; 3.0, the default of C_GetInterface; and 3.2.
// Where the versions of PKCS#11 give one call different meanings, a caller
// gets the meaning of the version it chose: an application written against
// 2.40 must not have an operation cancelled by what 2.40 calls a bad
// argument, nor be told of flags its headers have no names for. The
// differences are the rows of ifaces, not conditions in the wrappers; the
// C entry points pass their version (shim.h, GOHSM_VERSIONED_*).

// ifaceVersion is the interface an entry point was reached through, one of
// the GOHSM_IFACE_* values of shim.h.
type ifaceVersion int

const (
	iface240 ifaceVersion = C.GOHSM_IFACE_2_40
	iface30  ifaceVersion = C.GOHSM_IFACE_3_0
	iface32  ifaceVersion = C.GOHSM_IFACE_3_2
)

// ifaceRules is what an interface version says where versions disagree.
type ifaceRules struct {
	name string
	// mechFlags are the CK_MECHANISM_INFO flags the version defines. Others
	// are not reported: a caller could not tell a later version's flag
	// from a vendor's, and would see it as a capability it has no call
	// for (CKF_MESSAGE_ENCRYPT names C_EncryptMessage, absent from 2.40).
	mechFlags ck.Flags
	// nullMechanismCancels: a NULL pMechanism in C_EncryptInit,
	// C_DecryptInit, C_DigestInit, C_SignInit, C_SignRecoverInit,
	// C_VerifyInit or C_VerifyRecoverInit terminates the active operation
	// of that kind (3.0, each C_XxxInit; the effect of C_SessionCancel).
	// 2.40 knows no such use: it is CKR_ARGUMENTS_BAD, and nothing is
	// cancelled.
	nullMechanismCancels bool
}

// The mechanism flags by the version that introduced them.
const (
	// 2.40 base §3.5 (CK_MECHANISM_INFO) and the EC flags of the 2.40
	// current mechanisms (§2.3).
	mechFlags240 = ck.CKF_HW | ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_DIGEST | ck.CKF_SIGN | ck.CKF_SIGN_RECOVER |
		ck.CKF_VERIFY | ck.CKF_VERIFY_RECOVER | ck.CKF_GENERATE | ck.CKF_GENERATE_KEY_PAIR | ck.CKF_WRAP |
		ck.CKF_UNWRAP | ck.CKF_DERIVE | ck.CKF_EXTENSION |
		ck.CKF_EC_F_P | ck.CKF_EC_F_2M | ck.CKF_EC_ECPARAMETERS | ck.CKF_EC_NAMEDCURVE | ck.CKF_EC_UNCOMPRESS | ck.CKF_EC_COMPRESS
	// 3.0: the message-based functions, CKF_FIND_OBJECTS and
	// CKF_EC_CURVENAME (CKF_EC_OID is 2.40's CKF_EC_NAMEDCURVE renamed).
	mechFlags30 = ck.CKF_MESSAGE_ENCRYPT | ck.CKF_MESSAGE_DECRYPT | ck.CKF_MESSAGE_SIGN | ck.CKF_MESSAGE_VERIFY |
		ck.CKF_MULTI_MESSAGE | ck.CKF_FIND_OBJECTS | ck.CKF_EC_CURVENAME
	// 3.2: C_EncapsulateKey / C_DecapsulateKey.
	mechFlags32 = ck.CKF_ENCAPSULATE | ck.CKF_DECAPSULATE
)

// ifaces is indexed by ifaceVersion.
var ifaces = [...]ifaceRules{
	iface240: {name: "2.40", mechFlags: mechFlags240},
	iface30:  {name: "3.0", mechFlags: mechFlags240 | mechFlags30, nullMechanismCancels: true},
	iface32:  {name: "3.2", mechFlags: mechFlags240 | mechFlags30 | mechFlags32, nullMechanismCancels: true},
}

// rulesOf returns the rules of the interface a C entry point passed. Only
// the module's own C code passes a version, so an unknown one is a bug:
// the index panics and the wrapper's leave turns that into
// CKR_GENERAL_ERROR.
func rulesOf(v C.int) *ifaceRules { return &ifaces[v] }
