/*
 * Declarations shared by the shim's C files and the preambles of its Go
 * files. Only the return values the C layer produces itself are defined
 * here; every other constant lives in Go (hsm/ck).
 */
#ifndef GOHSM_SHIM_H
#define GOHSM_SHIM_H

#include "pkcs11.h"

#define GOHSM_CKR_OK 0x00000000UL
#define GOHSM_CKR_GENERAL_ERROR 0x00000005UL
#define GOHSM_CKR_ARGUMENTS_BAD 0x00000007UL
#define GOHSM_CKR_FUNCTION_NOT_SUPPORTED 0x00000054UL
#define GOHSM_CKR_BUFFER_TOO_SMALL 0x00000150UL
#define GOHSM_CKR_CRYPTOKI_NOT_INITIALIZED 0x00000190UL

/*
 * Set by the pthread_atfork child handler. A Go runtime does not survive
 * fork() without exec (golang/go#15538): its threads are gone in the child,
 * so the first call into Go can deadlock. Every entry point tests this flag
 * in C and returns before Go is entered.
 */
extern volatile int gohsm_forked;

/*
 * In a forked child the library behaves as not initialised (§5.4: a child
 * must call C_Initialize before using the library), and C_Initialize itself
 * fails at once, because the Go runtime cannot run in the child.
 */
#define GOHSM_CHILD_RV GOHSM_CKR_CRYPTOKI_NOT_INITIALIZED
#define GOHSM_CHILD_INIT_RV GOHSM_CKR_GENERAL_ERROR

/*
 * The interface (function table) a caller reached an entry point through.
 * Where PKCS#11 versions disagree (a NULL pMechanism in C_XxxInit, the
 * CK_MECHANISM_INFO flags a version defines), the module behaves as the
 * version the caller chose; ifaces.go has the rules, as a table indexed by
 * these values.
 */
#define GOHSM_IFACE_2_40 0
#define GOHSM_IFACE_3_0 1
#define GOHSM_IFACE_3_2 2

/*
 * The entry points whose behaviour depends on the interface. The exported
 * C_* functions behave as 3.2 and fill the 3.2 table; the 2.40 and 3.0
 * tables hold gohsm_<version>_<name> instead for the functions listed here
 * (tables.c), thin wrappers that pass their version to the same Go code
 * (entry.c). The 3.0 table shares the 3.2 entries of the other functions,
 * so the rules of 3.0 and 3.2 must agree on them (ifaces_test.go).
 */
#define GOHSM_VERSIONED_2_40(X) \
	X(2_40, C_GetMechanismInfo) \
	X(2_40, C_EncryptInit) \
	X(2_40, C_DecryptInit) \
	X(2_40, C_DigestInit) \
	X(2_40, C_SignInit) \
	X(2_40, C_SignRecoverInit) \
	X(2_40, C_VerifyInit) \
	X(2_40, C_VerifyRecoverInit)
#define GOHSM_VERSIONED_3_0(X) \
	X(3_0, C_GetMechanismInfo)

/* Not exported from the library: callers reach them only through a table. */
#define GOHSM_VERSIONED_DECL(v, name) __attribute__((visibility("hidden"))) __typeof__(name) gohsm_##v##_##name;
GOHSM_VERSIONED_2_40(GOHSM_VERSIONED_DECL)
GOHSM_VERSIONED_3_0(GOHSM_VERSIONED_DECL)

/*
 * The PKCS#11 2.40 errata layout of CK_GCM_PARAMS, without ulIvBits. Some
 * callers (Java SunPKCS11 talking to a 2.40 module) send it; its size tells
 * it apart from the 3.0 layout. The IV comes first in both.
 */
typedef struct {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
	CK_ULONG ulTagBits;
} gohsm_gcm_params_240;

#endif
