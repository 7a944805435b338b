/*
 * Through the real engine, driven by abi_test.go: what differs between the
 * 2.40 table (C_GetFunctionList) and the 3.0 / 3.2 tables (C_GetInterface),
 * and that a NULL PIN is refused before the engine could count it as a
 * wrong PIN. Usage: iface_test module.so
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "pkcs11.h"

#define CKR_OK 0x0UL
#define CKR_ARGUMENTS_BAD 0x7UL
#define CKR_OPERATION_NOT_INITIALIZED 0x91UL
#define CKR_PIN_INCORRECT 0xA0UL
#define CKR_SESSION_HANDLE_INVALID 0xB3UL
#define CKR_CRYPTOKI_NOT_INITIALIZED 0x190UL
#define CKF_RW_SESSION 0x2UL
#define CKF_SERIAL_SESSION 0x4UL
#define CKF_TOKEN_INITIALIZED 0x400UL
#define CKF_USER_PIN_COUNT_LOW 0x10000UL
#define CKU_SO 0x0UL
#define CKU_USER 0x1UL
#define CKM_SHA256 0x250UL
#define CKM_AES_GCM 0x1087UL
#define CKM_ML_KEM 0x17UL
#define CKF_ENCRYPT 0x100UL
#define CKF_MESSAGE_ENCRYPT 0x2UL
#define CKF_MESSAGE_DECRYPT 0x4UL
#define CKF_ENCAPSULATE 0x10000000UL
#define CKF_DECAPSULATE 0x20000000UL
#define BAD_SESSION 0xdeadbeefUL

static int failures;

#define CHECK(cond, ...)                                            \
	do {                                                        \
		if (!(cond)) {                                      \
			failures++;                                 \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__);                        \
			printf("\n");                               \
		}                                                   \
	} while (0)
#define RV(call, want)                                                                     \
	do {                                                                               \
		CK_RV rv_ = (call);                                                        \
		CHECK(rv_ == (CK_RV)(want), "%s = 0x%lx, want 0x%lx", #call, rv_, (CK_RV)(want)); \
	} while (0)

static CK_FUNCTION_LIST *f;     /* 2.40, from C_GetFunctionList */
static CK_FUNCTION_LIST_3_0 *l3; /* 3.0 */
static CK_FUNCTION_LIST_3_2 *l32; /* 3.2 */
static CK_SLOT_ID slot;

static CK_FLAGS token_flags(void)
{
	CK_TOKEN_INFO ti;
	if (f->C_GetTokenInfo(slot, &ti) != CKR_OK)
		return ~0UL;
	return ti.flags;
}

static CK_FLAGS mech_flags(CK_C_GetMechanismInfo gmi, CK_MECHANISM_TYPE m)
{
	CK_MECHANISM_INFO mi;
	memset(&mi, 0, sizeof(mi));
	CK_RV rv = gmi(slot, m, &mi);
	CHECK(rv == CKR_OK, "C_GetMechanismInfo(0x%lx) = 0x%lx", m, rv);
	return mi.flags;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		printf("FAIL dlopen: %s\n", dlerror());
		return 1;
	}
	CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	CK_VERSION v30 = {3, 0}, v32 = {3, 2};
	CK_INTERFACE_PTR i30 = NULL, i32 = NULL;
	if (gfl == NULL || gfl(&f) != CKR_OK || gi == NULL || gi((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &i30, 0) != CKR_OK ||
	    gi((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &i32, 0) != CKR_OK) {
		printf("FAIL function tables\n");
		return 1;
	}
	l3 = i30->pFunctionList;
	l32 = i32->pFunctionList;

	/* Precedence: not initialised comes before a bad argument. */
	RV(f->C_Login(1, CKU_USER, NULL, 0), CKR_CRYPTOKI_NOT_INITIALIZED);
	RV(f->C_DigestInit(1, NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	RV(f->C_Initialize(NULL), CKR_OK);

	CK_ULONG n = 1;
	RV(f->C_GetSlotList(0, &slot, &n), CKR_OK);
	CK_UTF8CHAR label[32];
	memset(label, ' ', sizeof(label));
	memcpy(label, "iface", 5);
	if (!(token_flags() & CKF_TOKEN_INITIALIZED))
		RV(f->C_InitToken(slot, (CK_UTF8CHAR_PTR) "so-pin-1", 8, label), CKR_OK);
	CK_SESSION_HANDLE s = 0;
	RV(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
	RV(f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR) "so-pin-1", 8), CKR_OK);
	RV(f->C_InitPIN(s, NULL, 0), CKR_ARGUMENTS_BAD);
	RV(f->C_InitPIN(s, (CK_UTF8CHAR_PTR) "user-pin", 8), CKR_OK);
	RV(f->C_Logout(s), CKR_OK);

	/*
	 * A NULL PIN, whatever its length, is a bad argument (a garbage session
	 * comes first) and never reaches the PIN check: the retry counter does
	 * not move. One wrong PIN then shows the counter works.
	 */
	CHECK(!(token_flags() & CKF_USER_PIN_COUNT_LOW), "CKF_USER_PIN_COUNT_LOW set before any failure: 0x%lx", token_flags());
	RV(f->C_Login(BAD_SESSION, CKU_USER, NULL, 0), CKR_SESSION_HANDLE_INVALID);
	RV(f->C_Login(s, CKU_USER, NULL, 0), CKR_ARGUMENTS_BAD);
	RV(f->C_Login(s, CKU_USER, NULL, 8), CKR_ARGUMENTS_BAD);
	RV(f->C_Login(s, CKU_SO, NULL, 0), CKR_ARGUMENTS_BAD);
	RV(l3->C_LoginUser(s, CKU_USER, NULL, 0, (CK_UTF8CHAR_PTR) "u", 1), CKR_ARGUMENTS_BAD);
	RV(f->C_SetPIN(s, NULL, 0, (CK_UTF8CHAR_PTR) "new-pin-1", 9), CKR_ARGUMENTS_BAD);
	RV(f->C_SetPIN(s, (CK_UTF8CHAR_PTR) "wrong-pin", 9, NULL, 0), CKR_ARGUMENTS_BAD);
	CHECK(!(token_flags() & CKF_USER_PIN_COUNT_LOW), "a NULL PIN counted as a failed login: token flags 0x%lx", token_flags());
	RV(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "wrong-pin", 9), CKR_PIN_INCORRECT);
	CHECK(token_flags() & CKF_USER_PIN_COUNT_LOW, "a wrong PIN did not set CKF_USER_PIN_COUNT_LOW: 0x%lx", token_flags());
	RV(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "user-pin", 8), CKR_OK);

	/* Mechanism flags: each table reports only what its version defines. */
	CK_FLAGS g240 = mech_flags(f->C_GetMechanismInfo, CKM_AES_GCM);
	CK_FLAGS g30 = mech_flags(l3->C_GetMechanismInfo, CKM_AES_GCM);
	CHECK((g240 & CKF_ENCRYPT) && !(g240 & (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT)), "2.40 AES-GCM flags 0x%lx", g240);
	CHECK((g30 & (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT)) == (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT),
	      "3.0 AES-GCM flags 0x%lx", g30);
	CK_FLAGS k240 = mech_flags(f->C_GetMechanismInfo, CKM_ML_KEM);
	CK_FLAGS k30 = mech_flags(l3->C_GetMechanismInfo, CKM_ML_KEM);
	CK_FLAGS k32 = mech_flags(l32->C_GetMechanismInfo, CKM_ML_KEM);
	CHECK(!(k240 & (CKF_ENCAPSULATE | CKF_DECAPSULATE)), "2.40 ML-KEM flags 0x%lx", k240);
	CHECK(!(k30 & (CKF_ENCAPSULATE | CKF_DECAPSULATE)), "3.0 ML-KEM flags 0x%lx", k30);
	CHECK((k32 & (CKF_ENCAPSULATE | CKF_DECAPSULATE)) == (CKF_ENCAPSULATE | CKF_DECAPSULATE), "3.2 ML-KEM flags 0x%lx", k32);

	/*
	 * A NULL mechanism: to a 2.40 caller a bad argument that leaves the
	 * active digest running; to a 3.0 caller the end of it.
	 */
	CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
	CK_BYTE md[32];
	CK_ULONG mdLen = sizeof(md);
	RV(f->C_DigestInit(s, &sha), CKR_OK);
	RV(f->C_DigestInit(BAD_SESSION, NULL), CKR_SESSION_HANDLE_INVALID);
	RV(f->C_DigestInit(s, NULL), CKR_ARGUMENTS_BAD);
	RV(f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, md, &mdLen), CKR_OK);
	CHECK(mdLen == 32 && md[0] == 0xba && md[31] == 0xad, "SHA-256(abc)");
	RV(f->C_DigestInit(s, &sha), CKR_OK);
	RV(l3->C_DigestInit(s, NULL), CKR_OK);
	mdLen = sizeof(md);
	RV(f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, md, &mdLen), CKR_OPERATION_NOT_INITIALIZED);
	RV(f->C_DigestInit(s, &sha), CKR_OK);
	RV(l32->C_DigestInit(s, NULL), CKR_OK);
	mdLen = sizeof(md);
	RV(f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, md, &mdLen), CKR_OPERATION_NOT_INITIALIZED);

	RV(f->C_Finalize(NULL), CKR_OK);
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
