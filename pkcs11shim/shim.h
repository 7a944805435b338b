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

#endif
