/*
 * ABI tests for libgohsm.so, driven by abi_test.go. Usage:
 *   abi_test <module.so> fake    conversions, lifecycle and fork, against
 *                                the shimfake build (fake_backend.go)
 *   abi_test <module.so> remote  GOHSM_CONF says mode = remote
 *   abi_test <module.so> real    the real engine: Finalize/Initialize cycles
 * Prints one line per failed check and exits 1 if any failed.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pkcs11.h"

#define CKR_OK 0x0UL
#define CKR_GENERAL_ERROR 0x5UL
#define CKR_ARGUMENTS_BAD 0x7UL
#define CKR_ATTRIBUTE_SENSITIVE 0x11UL
#define CKR_DEVICE_ERROR 0x30UL
#define CKR_FUNCTION_NOT_SUPPORTED 0x54UL
#define CKR_MECHANISM_PARAM_INVALID 0x71UL
#define CKR_PIN_INCORRECT 0xA0UL
#define CKR_BUFFER_TOO_SMALL 0x150UL
#define CKR_CRYPTOKI_NOT_INITIALIZED 0x190UL
#define CKR_CRYPTOKI_ALREADY_INITIALIZED 0x191UL
#define CKF_OS_LOCKING_OK 0x2UL
#define CKF_LIBRARY_CANT_CREATE_OS_THREADS 0x1UL
#define CK_UNAVAILABLE_INFORMATION (~0UL)
#define CKA_CLASS 0x0UL
#define CKA_TOKEN 0x1UL
#define CKA_LABEL 0x3UL
#define CKA_VALUE 0x11UL
#define CKA_WRAP_TEMPLATE 0x40000211UL

static int failures;
static CK_FUNCTION_LIST_PTR f;
static void *lib;

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond)) {                                  \
			failures++;                             \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__);                    \
			printf("\n");                           \
		}                                               \
	} while (0)
#define RV(call, want)                                                           \
	do {                                                                     \
		CK_RV rv_ = (call);                                              \
		CHECK(rv_ == (CK_RV)(want), "%s = 0x%lx, want 0x%lx", #call, rv_, (CK_RV)(want)); \
	} while (0)

static CK_RV mutex_cb(void *p) { return CKR_OK; }

/* echo returns what the fake backend recorded last (via C_GetOperationState). */
static const char *echo(void)
{
	static char buf[1024];
	CK_ULONG n = sizeof(buf) - 1;
	CK_RV rv = f->C_GetOperationState(1, (CK_BYTE_PTR)buf, &n);
	if (rv != CKR_OK)
		return "(no echo)";
	buf[n] = 0;
	return buf;
}

static void mech(CK_MECHANISM_TYPE t, void *p, CK_ULONG n, CK_RV want, const char *wantEcho)
{
	CK_MECHANISM m = {t, p, n};
	CK_RV rv = f->C_EncryptInit(1, &m, 5);
	CHECK(rv == want, "EncryptInit(0x%lx, len %lu) = 0x%lx, want 0x%lx", t, n, rv, want);
	char full[512];
	snprintf(full, sizeof(full), "EncryptInit key=5 %s", wantEcho ? wantEcho : "");
	if (wantEcho != NULL && rv == CKR_OK)
		CHECK(strcmp(echo(), full) == 0, "mechanism 0x%lx: backend got %s, want %s", t, echo(), wantEcho);
}

/* The symbol names of the table entries, in CK_FUNCTION_LIST_3_2 order. */
static const char *entry_names[] = {
#define NAME(name, args) #name,
	GOHSM_FUNCTIONS_2_40(NAME) GOHSM_FUNCTIONS_3_0(NAME) GOHSM_FUNCTIONS_3_2(NAME)
#undef NAME
};

/*
 * same_entries: tables a and b agree on their first size bytes (after the
 * version), except at the given offsets, where they must differ.
 */
static int same_entries(const void *a, const void *b, size_t size, const size_t *differ, int ndiffer)
{
	int ok = 1;
	for (size_t off = offsetof(CK_FUNCTION_LIST, C_Initialize); off < size; off += sizeof(void *)) {
		int want_diff = 0;
		for (int i = 0; i < ndiffer; i++)
			want_diff |= differ[i] == off;
		const char *name = entry_names[(off - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void *)];
		int diff = memcmp((const char *)a + off, (const char *)b + off, sizeof(void *)) != 0;
		if (diff != want_diff) {
			printf("  %s: tables %s\n", name, diff ? "differ" : "share the entry");
			ok = 0;
		}
	}
	return ok;
}

/* exported_entries: every entry of the table is the library's exported function of that name. */
static int exported_entries(const void *t, size_t size)
{
	int ok = 1;
	for (size_t off = offsetof(CK_FUNCTION_LIST, C_Initialize); off < size; off += sizeof(void *)) {
		const char *name = entry_names[(off - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void *)];
		void *p;
		memcpy(&p, (const char *)t + off, sizeof p);
		if (p != dlsym(lib, name)) {
			printf("  %s: not the exported function\n", name);
			ok = 0;
		}
	}
	return ok;
}

static void test_tables(void)
{
	CK_C_GetFunctionList gfl = f->C_GetFunctionList;
	CK_FUNCTION_LIST_PTR l = NULL;
	RV(gfl(&l), CKR_OK);
	CHECK(l == f && l->version.major == 2 && l->version.minor == 40, "2.40 table");
	RV(gfl(NULL), CKR_ARGUMENTS_BAD);
	CK_C_GetInterfaceList gil = (CK_C_GetInterfaceList)dlsym(lib, "C_GetInterfaceList");
	CHECK(gil != NULL, "C_GetInterfaceList exported");
	if (gil == NULL)
		return;
	CK_ULONG n = 0;
	RV(gil(NULL, &n), CKR_OK);
	CHECK(n == 3, "interface count %lu", n);
	CK_INTERFACE ifs[3];
	n = 2;
	RV(gil(ifs, &n), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 3, "count after too small %lu", n);
	RV(gil(ifs, NULL), CKR_ARGUMENTS_BAD);
	n = 3;
	RV(gil(ifs, &n), CKR_OK);
	CK_FUNCTION_LIST_3_0 *l3 = ifs[0].pFunctionList;
	CK_FUNCTION_LIST_3_2 *l32 = ifs[1].pFunctionList;
	CHECK(strcmp((char *)ifs[0].pInterfaceName, "PKCS 11") == 0 && l3->version.major == 3 && l3->version.minor == 0,
	      "default interface is PKCS 11 3.0");
	CHECK(strcmp((char *)ifs[1].pInterfaceName, "PKCS 11") == 0 && l32->version.major == 3 && l32->version.minor == 2,
	      "second interface is PKCS 11 3.2");
	CHECK(ifs[2].pFunctionList == (void *)f, "third interface is the 2.40 table");
	CHECK(ifs[0].flags == 0 && ifs[1].flags == 0 && ifs[2].flags == 0, "no CKF_INTERFACE_FORK_SAFE");
	/*
	 * The 3.0 table starts with the 2.40 functions, the 3.2 one with the
	 * 3.0 ones, and every entry is the exported function, except those
	 * whose meaning depends on the interface (shim.h, GOHSM_VERSIONED_*):
	 * there the older table has an entry of its own.
	 */
	size_t off240[] = {offsetof(CK_FUNCTION_LIST, C_GetMechanismInfo), offsetof(CK_FUNCTION_LIST, C_EncryptInit),
			   offsetof(CK_FUNCTION_LIST, C_DecryptInit), offsetof(CK_FUNCTION_LIST, C_DigestInit),
			   offsetof(CK_FUNCTION_LIST, C_SignInit), offsetof(CK_FUNCTION_LIST, C_SignRecoverInit),
			   offsetof(CK_FUNCTION_LIST, C_VerifyInit), offsetof(CK_FUNCTION_LIST, C_VerifyRecoverInit)};
	size_t off30[] = {offsetof(CK_FUNCTION_LIST_3_0, C_GetMechanismInfo)};
	CHECK(same_entries(f, l3, sizeof(CK_FUNCTION_LIST), off240, 8), "2.40 table differs from 3.0 where it should not");
	CHECK(same_entries(l3, l32, sizeof(CK_FUNCTION_LIST_3_0), off30, 1), "3.0 table differs from 3.2 where it should not");
	CHECK(exported_entries(l32, sizeof(CK_FUNCTION_LIST_3_2)), "3.2 table is not the exported functions");
	CHECK((void *)f->C_EncryptInit != dlsym(lib, "C_EncryptInit") && (void *)l3->C_EncryptInit == dlsym(lib, "C_EncryptInit"),
	      "2.40 C_EncryptInit is its own, 3.0's the exported one");
	CHECK(l3->C_GetInterfaceList == gil && l3->C_LoginUser != NULL && l3->C_MessageVerifyFinal != NULL, "3.0 entries set");
	CHECK(l32->C_EncapsulateKey == dlsym(lib, "C_EncapsulateKey") && l32->C_DecapsulateKey == dlsym(lib, "C_DecapsulateKey") &&
	      l32->C_UnwrapKeyAuthenticated != NULL, "3.2 entries set");
	RV(l3->C_MessageEncryptInit(1, NULL, 0), CKR_CRYPTOKI_NOT_INITIALIZED);
	RV(l3->C_MessageVerifyFinal(1), CKR_CRYPTOKI_NOT_INITIALIZED);
	RV(l32->C_VerifySignatureInit(1, NULL, 0, NULL, 0), CKR_CRYPTOKI_NOT_INITIALIZED);
	RV(l32->C_GetSessionValidationFlags(1, 1, NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	RV(l32->C_AsyncGetID(1, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED);

	CK_C_GetInterface gi = l3->C_GetInterface;
	CK_INTERFACE_PTR p = NULL;
	RV(gi(NULL, NULL, &p, 0), CKR_OK);
	CHECK(p != NULL && p->pFunctionList == l3, "default interface");
	CK_VERSION v240 = {2, 40};
	RV(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &p, 0), CKR_OK);
	CHECK(p != NULL && p->pFunctionList == (void *)f, "2.40 interface by version");
	CK_VERSION v32 = {3, 2};
	RV(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &p, 0), CKR_OK);
	CHECK(p != NULL && p->pFunctionList == (void *)l32, "3.2 interface by version");
	CK_VERSION v31 = {3, 1};
	RV(gi((CK_UTF8CHAR_PTR) "PKCS 11", &v31, &p, 0), CKR_ARGUMENTS_BAD);
	RV(gi((CK_UTF8CHAR_PTR) "Vendor", NULL, &p, 0), CKR_ARGUMENTS_BAD);
	RV(gi(NULL, NULL, &p, 1 /* CKF_INTERFACE_FORK_SAFE */), CKR_ARGUMENTS_BAD);
	RV(gi(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
}

static void test_lifecycle(void)
{
	CK_INFO info;
	RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	RV(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	RV(f->C_OpenSession(0, 4, NULL, NULL, NULL), CKR_CRYPTOKI_NOT_INITIALIZED);

	CK_C_INITIALIZE_ARGS a = {0};
	a.pReserved = &a;
	RV(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
	a.pReserved = NULL;
	a.CreateMutex = (CK_CREATEMUTEX)mutex_cb;
	RV(f->C_Initialize(&a), CKR_ARGUMENTS_BAD); /* one callback of four */
	a.DestroyMutex = mutex_cb;
	a.LockMutex = mutex_cb;
	a.UnlockMutex = mutex_cb;
	RV(f->C_Initialize(&a), CKR_OK); /* callbacks without CKF_OS_LOCKING_OK: accepted */
	RV(f->C_Finalize(NULL), CKR_OK);
	a.flags = CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS; /* what NSS passes */
	RV(f->C_Initialize(&a), CKR_OK);
	RV(f->C_Finalize(NULL), CKR_OK);
	CK_C_INITIALIZE_ARGS os = {0};
	os.flags = CKF_OS_LOCKING_OK;
	RV(f->C_Initialize(&os), CKR_OK);
	RV(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	RV(f->C_Finalize(&os), CKR_ARGUMENTS_BAD);
	RV(f->C_Finalize(NULL), CKR_OK);
	RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	RV(f->C_Initialize(NULL), CKR_OK);
}

static void test_info(void)
{
	CK_INFO info;
	memset(&info, 0, sizeof(info));
	RV(f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
	RV(f->C_GetInfo(&info), CKR_OK);
	CHECK(memcmp(info.manufacturerID, "fake manufacturer with a name lo", 32) == 0, "manufacturerID truncated to 32");
	CHECK(memcmp(info.libraryDescription, "fake                            ", 32) == 0, "libraryDescription blank padded");
	CHECK(info.libraryVersion.major == 1 && info.libraryVersion.minor == 2, "library version");

	CK_SLOT_ID slots[3];
	CK_ULONG n = 0;
	RV(f->C_GetSlotList(0, NULL, &n), CKR_OK);
	CHECK(n == 3, "slot count %lu", n);
	n = 2;
	RV(f->C_GetSlotList(0, slots, &n), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 3, "slot count after too small %lu", n);
	RV(f->C_GetSlotList(0, slots, &n), CKR_OK);
	CHECK(n == 3 && slots[0] == 1 && slots[1] == 7 && slots[2] == 9, "slot ids");
	RV(f->C_GetSlotList(0, slots, NULL), CKR_ARGUMENTS_BAD);

	CK_TOKEN_INFO ti;
	RV(f->C_GetTokenInfo(1, &ti), CKR_OK);
	CHECK(memcmp(ti.label, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ", 32) == 0, "label cut before a split UTF-8 character");
	CHECK(memcmp(ti.serialNumber, "42              ", 16) == 0, "serial padded");
	CHECK(ti.ulMaxPinLen == 255 && ti.ulMinPinLen == 4, "pin lengths");
}

static CK_FUNCTION_LIST_3_0 *table30(void);
static CK_FUNCTION_LIST_3_2 *table32(void);

static void test_login(void)
{
	RV(f->C_Login(1, 1, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
	CHECK(strcmp(echo(), "Login s=1 u=1 pin=\"1234\"") == 0, "login echo %s", echo());
	RV(f->C_Login(1, 1, (CK_UTF8CHAR_PTR) "12345", 5), CKR_PIN_INCORRECT);
	RV(f->C_Login(1, 1, NULL, 4), CKR_ARGUMENTS_BAD);
	CK_UTF8CHAR label[32];
	memset(label, ' ', 32);
	memcpy(label, "my token", 8);
	RV(f->C_InitToken(3, (CK_UTF8CHAR_PTR) "so", 2, label), CKR_OK);
	CHECK(strcmp(echo(), "InitToken slot=3 so=\"so\" label=\"my token\"") == 0, "init token echo %s", echo());
	RV(f->C_InitToken(3, (CK_UTF8CHAR_PTR) "so", 2, NULL), CKR_ARGUMENTS_BAD);

	/*
	 * A NULL PIN is a bad argument whatever its length, and the backend
	 * never sees it (so it cannot count as a wrong PIN): the echo stays,
	 * and the fake has no InitPIN, SetPIN or LoginUser, so reaching the
	 * backend would give CKR_GENERAL_ERROR. An empty PIN that is not NULL
	 * goes to the backend.
	 */
	RV(f->C_Login(1, 1, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
	RV(f->C_Login(1, 1, NULL, 0), CKR_ARGUMENTS_BAD);
	RV(f->C_Login(1, 0, NULL, 8), CKR_ARGUMENTS_BAD);
	RV(f->C_InitToken(3, NULL, 0, label), CKR_ARGUMENTS_BAD);
	RV(f->C_InitToken(3, NULL, 2, label), CKR_ARGUMENTS_BAD);
	RV(f->C_InitPIN(1, NULL, 0), CKR_ARGUMENTS_BAD);
	RV(f->C_InitPIN(1, NULL, 4), CKR_ARGUMENTS_BAD);
	RV(f->C_SetPIN(1, NULL, 0, (CK_UTF8CHAR_PTR) "5678", 4), CKR_ARGUMENTS_BAD);
	RV(f->C_SetPIN(1, (CK_UTF8CHAR_PTR) "1234", 4, NULL, 0), CKR_ARGUMENTS_BAD);
	RV(f->C_SetPIN(1, (CK_UTF8CHAR_PTR) "1234", 4, NULL, 4), CKR_ARGUMENTS_BAD);
	CK_FUNCTION_LIST_3_0 *l3 = table30();
	if (l3 != NULL) {
		RV(l3->C_LoginUser(1, 1, NULL, 0, (CK_UTF8CHAR_PTR) "u", 1), CKR_ARGUMENTS_BAD);
		RV(l3->C_LoginUser(1, 1, NULL, 4, (CK_UTF8CHAR_PTR) "u", 1), CKR_ARGUMENTS_BAD);
	}
	CHECK(strcmp(echo(), "Login s=1 u=1 pin=\"1234\"") == 0, "a NULL PIN reached the backend: %s", echo());
	RV(f->C_Login(1, 1, (CK_UTF8CHAR_PTR) "", 0), CKR_PIN_INCORRECT);
	CHECK(strcmp(echo(), "Login s=1 u=1 pin=\"\"") == 0, "empty PIN echo %s", echo());
}

static void test_mechanisms(void)
{
	CK_BYTE iv[3] = {1, 2, 3}, aad[2] = {0xaa, 0xbb};
	CK_GCM_PARAMS gcm = {iv, 3, 24, aad, 2, 128};
	mech(0x1087, &gcm, sizeof(gcm), CKR_OK, "0x1087 *ck.GCMParams &{IV:[1 2 3] IVBits:24 AAD:[170 187] TagBits:128}");
	struct { CK_BYTE_PTR pIv; CK_ULONG ulIvLen; CK_BYTE_PTR pAAD; CK_ULONG ulAADLen; CK_ULONG ulTagBits; } gcm240 = {iv, 3, NULL, 0, 96};
	mech(0x1087, &gcm240, sizeof(gcm240), CKR_OK, "0x1087 *ck.GCMParams &{IV:[1 2 3] IVBits:24 AAD:[] TagBits:96}");
	mech(0x1087, &gcm, sizeof(gcm) - 1, CKR_MECHANISM_PARAM_INVALID, NULL);
	mech(0x1087, NULL, sizeof(gcm), CKR_MECHANISM_PARAM_INVALID, NULL);
	CK_GCM_PARAMS gcmNullIV = {NULL, 12, 96, NULL, 0, 128};
	mech(0x1087, &gcmNullIV, sizeof(gcmNullIV), CKR_MECHANISM_PARAM_INVALID, NULL);
	mech(0x1087, NULL, 0, CKR_OK, "0x1087 nil");

	CK_CCM_PARAMS ccm = {16, iv, 3, aad, 2, 8};
	mech(0x1088, &ccm, sizeof(ccm), CKR_OK, "0x1088 *ck.CCMParams &{DataLen:16 Nonce:[1 2 3] AAD:[170 187] MACLen:8}");
	CK_AES_CTR_PARAMS ctr = {32, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};
	mech(0x1086, &ctr, sizeof(ctr), CKR_OK,
	     "0x1086 *ck.CTRParams &{CounterBits:32 CB:[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]}");
	CK_RSA_PKCS_OAEP_PARAMS oaep = {0x250, 2, 1, aad, 2};
	mech(0x9, &oaep, sizeof(oaep), CKR_OK,
	     "0x9 *ck.RSAOAEPParams &{HashAlg:CKM_SHA256 MGF:2 Source:1 SourceData:[170 187]}");
	CK_RSA_PKCS_PSS_PARAMS pss = {0x250, 2, 32};
	mech(0xd, &pss, sizeof(pss), CKR_OK, "0xd *ck.RSAPSSParams &{HashAlg:CKM_SHA256 MGF:2 SaltLen:32}");
	mech(0xd, &pss, sizeof(pss) + 8, CKR_MECHANISM_PARAM_INVALID, NULL);
	CK_ECDH1_DERIVE_PARAMS ecdh = {1, 0, NULL, 3, iv};
	mech(0x1050, &ecdh, sizeof(ecdh), CKR_OK,
	     "0x1050 *ck.ECDH1DeriveParams &{KDF:1 SharedData:[] PublicData:[1 2 3]}");
	CK_EDDSA_PARAMS ed = {1, 2, aad};
	mech(0x1057, &ed, sizeof(ed), CKR_OK, "0x1057 *ck.EDDSAParams &{PHFlag:true ContextData:[170 187]}");
	CK_MAC_GENERAL_PARAMS macLen = 16;
	mech(0x252, &macLen, sizeof(macLen), CKR_OK, "0x252 mac 16");
	mech(0x252, &macLen, 4, CKR_MECHANISM_PARAM_INVALID, NULL);
	mech(0x1082, iv, 3, CKR_OK, "0x1082 bytes 010203");
}

/* cancels is how many times the fake's SessionCancel ran (its GetSessionInfo reports it). */
static CK_ULONG cancels(void)
{
	CK_SESSION_INFO si;
	if (f->C_GetSessionInfo(1, &si) != CKR_OK)
		return (CK_ULONG)-1;
	return si.ulDeviceError;
}

/* null_inits calls the seven C_XxxInit of table t with a NULL mechanism; want is every answer. */
static void null_inits(const char *which, CK_FUNCTION_LIST_PTR t, CK_RV want)
{
	struct {
		const char *name;
		CK_RV rv;
	} c[] = {
		{"C_EncryptInit", t->C_EncryptInit(1, NULL, 5)},
		{"C_DecryptInit", t->C_DecryptInit(1, NULL, 5)},
		{"C_DigestInit", t->C_DigestInit(1, NULL)},
		{"C_SignInit", t->C_SignInit(1, NULL, 5)},
		{"C_SignRecoverInit", t->C_SignRecoverInit(1, NULL, 5)},
		{"C_VerifyInit", t->C_VerifyInit(1, NULL, 5)},
		{"C_VerifyRecoverInit", t->C_VerifyRecoverInit(1, NULL, 5)},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		CHECK(c[i].rv == want, "%s %s(NULL mechanism) = 0x%lx, want 0x%lx", which, c[i].name, c[i].rv, want);
}

#define CKF_ENCRYPT 0x100UL
#define CKF_DECRYPT 0x200UL
#define CKF_EC_NAMEDCURVE 0x800000UL
#define CKF_EXTENSION 0x80000000UL
#define CKF_MESSAGE_ENCRYPT 0x2UL
#define CKF_MESSAGE_DECRYPT 0x4UL
#define CKF_MESSAGE_SIGN 0x8UL
#define CKF_MESSAGE_VERIFY 0x10UL
#define CKF_MULTI_MESSAGE 0x20UL
#define CKF_FIND_OBJECTS 0x40UL
#define CKF_EC_CURVENAME 0x4000000UL
#define CKF_ENCAPSULATE 0x10000000UL
#define CKF_DECAPSULATE 0x20000000UL

/*
 * The module answers as the interface the caller chose: through the 2.40
 * table (C_GetFunctionList) a NULL mechanism is CKR_ARGUMENTS_BAD and
 * cancels nothing, through 3.0 and 3.2 it cancels the operation; each
 * table reports only the mechanism flags its version defines (the fake
 * reports flags of every version and 0x80, which none defines).
 */
static void test_interfaces_fake(void)
{
	CK_FUNCTION_LIST_3_0 *l3 = table30();
	CK_FUNCTION_LIST_3_2 *l32 = table32();
	CHECK(l3 != NULL && l32 != NULL, "3.0 and 3.2 tables");
	if (l3 == NULL || l32 == NULL)
		return;
	CK_ULONG before = cancels();
	null_inits("2.40", f, CKR_ARGUMENTS_BAD);
	CHECK(cancels() == before, "2.40: a NULL mechanism cancelled (%lu cancels)", cancels() - before);
	null_inits("3.0", (CK_FUNCTION_LIST_PTR)l3, CKR_OK);
	CHECK(cancels() == before + 7, "3.0: %lu cancels, want 7", cancels() - before);
	null_inits("3.2", (CK_FUNCTION_LIST_PTR)l32, CKR_OK);
	CHECK(cancels() == before + 14, "3.2: %lu cancels, want 7", cancels() - before - 7);
	/* The exported symbol is the 3.2 behaviour. */
	CK_C_EncryptInit ei = (CK_C_EncryptInit)dlsym(lib, "C_EncryptInit");
	RV(ei(1, NULL, 5), CKR_OK);

	const CK_FLAGS v240 = CKF_ENCRYPT | CKF_DECRYPT | CKF_EC_NAMEDCURVE | CKF_EXTENSION;
	const CK_FLAGS v30 = v240 | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY |
			     CKF_MULTI_MESSAGE | CKF_FIND_OBJECTS | CKF_EC_CURVENAME;
	const CK_FLAGS v32 = v30 | CKF_ENCAPSULATE | CKF_DECAPSULATE;
	CK_MECHANISM_INFO mi;
	memset(&mi, 0, sizeof(mi));
	RV(f->C_GetMechanismInfo(1, 0x1087, &mi), CKR_OK);
	CHECK(mi.flags == v240 && mi.ulMinKeySize == 16 && mi.ulMaxKeySize == 32, "2.40 flags 0x%lx, want 0x%lx", mi.flags, v240);
	RV(l3->C_GetMechanismInfo(1, 0x1087, &mi), CKR_OK);
	CHECK(mi.flags == v30, "3.0 flags 0x%lx, want 0x%lx", mi.flags, v30);
	RV(l32->C_GetMechanismInfo(1, 0x1087, &mi), CKR_OK);
	CHECK(mi.flags == v32, "3.2 flags 0x%lx, want 0x%lx", mi.flags, v32);
	CK_C_GetMechanismInfo gmi = (CK_C_GetMechanismInfo)dlsym(lib, "C_GetMechanismInfo");
	RV(gmi(1, 0x1087, &mi), CKR_OK);
	CHECK(mi.flags == v32, "exported C_GetMechanismInfo flags 0x%lx, want 0x%lx", mi.flags, v32);
	RV(f->C_GetMechanismInfo(1, 0x1087, NULL), CKR_ARGUMENTS_BAD);
	RV(l3->C_GetMechanismInfo(1, 0x1087, NULL), CKR_ARGUMENTS_BAD);
}

static int all_zero(const CK_BYTE *b, int n)
{
	for (int i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static int all_bytes(const CK_BYTE *b, int n, int base);

#define CKM_AES_CBC_PAD 0x1085UL
#define CKM_AES_CCM 0x1088UL
#define CKR_KEY_NOT_WRAPPABLE 0x69UL

/*
 * C_WrapKey with a nonce-based mechanism: the token makes the IV and the
 * caller reads it in its pIv buffer after a wrap that returned the wrapped
 * key, and only then. The fake writes 0xB0+i into the IV on every call
 * (size queries and failures too); key 13 fails after writing it, key 14
 * changes its length.
 */
static void test_wrap_iv(void)
{
	CK_BYTE iv[12] = {0}, out[32];
	CK_GCM_PARAMS gcm = {iv, sizeof(iv), 96, NULL, 0, 128};
	CK_MECHANISM m = {0x1087, &gcm, sizeof(gcm)};
	CK_ULONG n = 0;
	RV(f->C_WrapKey(1, &m, 4, 6, NULL, &n), CKR_OK);
	CHECK(n == 8 && all_zero(iv, 12), "size query: n %lu, IV written back", n);
	CHECK(strcmp(echo(), "WrapKey wrapping=4 key=6 0x1087 *ck.GCMParams &{IV:[0 0 0 0 0 0 0 0 0 0 0 0] IVBits:96 AAD:[] TagBits:128}") == 0,
	      "wrap echo %s", echo());
	n = 4;
	RV(f->C_WrapKey(1, &m, 4, 6, out, &n), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 8 && all_zero(iv, 12), "too small: n %lu, IV written back", n);
	n = sizeof(out);
	RV(f->C_WrapKey(1, &m, 4, 13, out, &n), CKR_KEY_NOT_WRAPPABLE);
	CHECK(all_zero(iv, 12), "failed wrap wrote the IV back");
	n = sizeof(out);
	RV(f->C_WrapKey(1, &m, 4, 6, out, &n), CKR_OK);
	CHECK(n == 8 && memcmp(out, "wrapped!", 8) == 0, "wrapped key");
	CHECK(all_bytes(iv, 12, 0xB0), "generated IV not written back");
	CHECK(gcm.pIv == iv && gcm.ulIvLen == 12 && gcm.ulIvBits == 96 && gcm.ulTagBits == 128, "parameter struct itself changed");
	memset(iv, 0, sizeof(iv));
	n = sizeof(out);
	RV(f->C_WrapKey(1, &m, 4, 14, out, &n), CKR_GENERAL_ERROR); /* the backend changed the IV's length */
	CHECK(all_zero(iv, 12), "resized IV written back");

	/* The 2.40 errata layout of CK_GCM_PARAMS (no ulIvBits). */
	CK_BYTE iv2[12] = {0};
	struct { CK_BYTE_PTR pIv; CK_ULONG ulIvLen; CK_BYTE_PTR pAAD; CK_ULONG ulAADLen; CK_ULONG ulTagBits; } gcm240 = {iv2, 12, NULL, 0, 128};
	CK_MECHANISM m240 = {0x1087, &gcm240, sizeof(gcm240)};
	n = 0;
	RV(f->C_WrapKey(1, &m240, 4, 6, NULL, &n), CKR_OK);
	CHECK(all_zero(iv2, 12), "2.40 layout: size query wrote the IV back");
	n = sizeof(out);
	RV(f->C_WrapKey(1, &m240, 4, 6, out, &n), CKR_OK);
	CHECK(all_bytes(iv2, 12, 0xB0), "2.40 layout: IV not written back");

	/*
	 * Read-only IVs: only the bytes that differ are written, so an IV
	 * equal to the token's is never written, and a failed call or a size
	 * query writes nothing (a write would fault: CKR_GENERAL_ERROR).
	 */
	static const CK_BYTE ro_same[12] = {0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xBB};
	static const CK_BYTE ro_zero[12] = {0};
	gcm.pIv = (CK_BYTE_PTR)ro_same;
	n = sizeof(out);
	RV(f->C_WrapKey(1, &m, 4, 6, out, &n), CKR_OK);
	gcm.pIv = (CK_BYTE_PTR)ro_zero;
	n = 0;
	RV(f->C_WrapKey(1, &m, 4, 6, NULL, &n), CKR_OK);
	n = sizeof(out);
	RV(f->C_WrapKey(1, &m, 4, 13, out, &n), CKR_KEY_NOT_WRAPPABLE);

	/* CCM and ChaCha20-Poly1305 nonces come back the same way. */
	CK_BYTE nonce[12] = {0};
	CK_CCM_PARAMS ccm = {40, nonce, 7, NULL, 0, 8};
	CK_MECHANISM mc = {CKM_AES_CCM, &ccm, sizeof(ccm)};
	n = sizeof(out);
	RV(f->C_WrapKey(1, &mc, 4, 6, out, &n), CKR_OK);
	CHECK(all_bytes(nonce, 7, 0xB0) && nonce[7] == 0, "CCM nonce not written back");
	memset(nonce, 0, sizeof(nonce));
	CK_SALSA20_CHACHA20_POLY1305_PARAMS cp = {nonce, 12, NULL, 0};
	CK_MECHANISM mp = {0x4021 /* CKM_CHACHA20_POLY1305 */, &cp, sizeof(cp)};
	n = sizeof(out);
	RV(f->C_WrapKey(1, &mp, 4, 6, out, &n), CKR_OK);
	CHECK(all_bytes(nonce, 12, 0xB0), "ChaCha20-Poly1305 nonce not written back");

	/* A byte-string parameter (a CBC IV) is input only, whatever the backend does to its copy. */
	CK_BYTE cbc[16] = {0};
	CK_MECHANISM mb = {CKM_AES_CBC_PAD, cbc, sizeof(cbc)};
	n = sizeof(out);
	RV(f->C_WrapKey(1, &mb, 4, 6, out, &n), CKR_OK);
	CHECK(all_zero(cbc, 16), "CBC IV written back");
}

static void test_output(void)
{
	CK_BYTE in[5] = {1, 2, 3, 4, 5}, out[8];
	CK_ULONG n = 0;
	RV(f->C_Encrypt(1, in, 5, NULL, &n), CKR_OK);
	CHECK(n == 5, "size query %lu", n);
	n = 4;
	memset(out, 0xee, sizeof(out));
	RV(f->C_Encrypt(1, in, 5, out, &n), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 5 && out[0] == 0xee, "too small: n=%lu, buffer untouched", n);
	n = sizeof(out);
	RV(f->C_Encrypt(1, in, 5, out, &n), CKR_OK);
	CHECK(n == 5 && out[0] == 5 && out[4] == 1 && out[5] == 0xee, "output copied, n=%lu", n);
	n = CK_UNAVAILABLE_INFORMATION; /* a huge size must not read as a size query */
	RV(f->C_Encrypt(1, in, 5, out, &n), CKR_OK);
	CHECK(n == 5, "huge buffer size: n=%lu", n);
	RV(f->C_Encrypt(1, in, 5, out, NULL), CKR_ARGUMENTS_BAD);
	RV(f->C_Encrypt(1, NULL, 5, out, &n), CKR_ARGUMENTS_BAD);
}

static void test_attributes(void)
{
	CK_BYTE label[4], value[32];
	CK_ATTRIBUTE t[4] = {
		{CKA_CLASS, NULL, 0}, {CKA_LABEL, label, sizeof(label)}, {CKA_VALUE, value, sizeof(value)}, {0x9999, NULL, 0}};
	RV(f->C_GetAttributeValue(1, 2, t, 4), CKR_ATTRIBUTE_SENSITIVE);
	CHECK(t[0].ulValueLen == 8, "class length %lu", t[0].ulValueLen);
	CHECK(t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION, "label too small -> unavailable");
	CHECK(t[2].ulValueLen == CK_UNAVAILABLE_INFORMATION, "sensitive -> unavailable");
	CHECK(t[3].ulValueLen == CK_UNAVAILABLE_INFORMATION, "invalid type -> unavailable");
	CK_BYTE cls[8], lbl[32];
	CK_ATTRIBUTE ok[2] = {{CKA_CLASS, cls, sizeof(cls)}, {CKA_LABEL, lbl, sizeof(lbl)}};
	RV(f->C_GetAttributeValue(1, 2, ok, 2), CKR_OK);
	CHECK(ok[0].ulValueLen == 8 && cls[0] == 3, "class value");
	CHECK(ok[1].ulValueLen == 10 && memcmp(lbl, "fake label", 10) == 0, "label value");
	RV(f->C_GetAttributeValue(1, 2, NULL, 2), CKR_ARGUMENTS_BAD);

	/* A template-valued attribute, answered the three-call way. */
	CK_ATTRIBUTE w = {CKA_WRAP_TEMPLATE, NULL, 0};
	RV(f->C_GetAttributeValue(1, 2, &w, 1), CKR_OK);
	CHECK(w.ulValueLen == 2 * sizeof(CK_ATTRIBUTE), "wrap template length %lu", w.ulValueLen);
	CK_ATTRIBUTE inner[2] = {{0, NULL, 0}, {0, NULL, 0}};
	w.pValue = inner;
	w.ulValueLen = sizeof(inner);
	RV(f->C_GetAttributeValue(1, 2, &w, 1), CKR_OK);
	CHECK(inner[0].type == CKA_LABEL && inner[0].ulValueLen == 2 && inner[1].type == CKA_TOKEN && inner[1].ulValueLen == 1,
	      "inner lengths");
	CK_BYTE v0[1], v1[1];
	inner[0].pValue = v0;
	inner[0].ulValueLen = 1;
	inner[1].pValue = v1;
	inner[1].ulValueLen = 1;
	RV(f->C_GetAttributeValue(1, 2, &w, 1), CKR_BUFFER_TOO_SMALL);
	CHECK(inner[0].ulValueLen == CK_UNAVAILABLE_INFORMATION && inner[1].ulValueLen == 1 && v1[0] == 1, "inner too small");

	/* Templates in: nested template flattened, NULL value with length refused. */
	CK_BBOOL yes = 1;
	CK_ATTRIBUTE nested[1] = {{CKA_TOKEN, &yes, 1}};
	CK_ATTRIBUTE create[2] = {{CKA_LABEL, "ab", 2}, {CKA_WRAP_TEMPLATE, nested, sizeof(nested)}};
	CK_OBJECT_HANDLE h = 0;
	RV(f->C_CreateObject(1, create, 2, &h), CKR_OK);
	CHECK(h == 2, "handle %lu", h);
	CHECK(strcmp(echo(), "CreateObject 0x3=6162;0x40000211=0100000000000000010000000000000001;") == 0, "create echo %s", echo());
	create[0].pValue = NULL;
	RV(f->C_CreateObject(1, create, 2, &h), CKR_ARGUMENTS_BAD);
	RV(f->C_CreateObject(1, NULL, 2, &h), CKR_ARGUMENTS_BAD);
	RV(f->C_CreateObject(1, nested, 1, NULL), CKR_ARGUMENTS_BAD);
}

/* The 3.0 table, found through C_GetInterface. */
static CK_FUNCTION_LIST_3_0 *table30(void)
{
	CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	CK_VERSION v30 = {3, 0};
	CK_INTERFACE_PTR p = NULL;
	if (gi == NULL || gi((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &p, 0) != CKR_OK || p == NULL)
		return NULL;
	return p->pFunctionList;
}

/* The 3.2 table, found through C_GetInterface. */
static CK_FUNCTION_LIST_3_2 *table32(void)
{
	CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	CK_VERSION v32 = {3, 2};
	CK_INTERFACE_PTR p = NULL;
	if (gi == NULL || gi((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &p, 0) != CKR_OK || p == NULL)
		return NULL;
	return p->pFunctionList;
}

#define CKM_AES_GCM 0x1087UL
#define CKM_CHACHA20_POLY1305 0x4021UL
#define CKG_NO_GENERATE 0x0UL
#define CKG_GENERATE 0x1UL
#define CKG_GENERATE_COUNTER 0x2UL
#define CKF_END_OF_MESSAGE 0x1UL

static int all_bytes(const CK_BYTE *b, int n, int base)
{
	for (int i = 0; i < n; i++)
		if (b[i] != (CK_BYTE)(base + i))
			return 0;
	return 1;
}

/*
 * Message parameters go in by their size and, for an encryption, the IV
 * the token generated and the tag come back into the caller's buffers;
 * KEM calls follow the output convention.
 */
static void test_v32_fake(void)
{
	CK_FUNCTION_LIST_3_2 *l = table32();
	CHECK(l != NULL, "3.2 table");
	if (l == NULL)
		return;
	CK_BYTE iv[12] = {0}, tag[16] = {0};
	CK_GCM_MESSAGE_PARAMS gp = {iv, sizeof(iv), 0, CKG_GENERATE, tag, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
	RV(l->C_MessageEncryptInit(1, &m, 5), CKR_OK);
	CHECK(strstr(echo(), "MessageEncryptInit key=5 0x1087 *ck.GCMMessageParams") != NULL, "init echo %s", echo());
	CK_BYTE out[16];
	CK_ULONG n = 0;
	RV(l->C_EncryptMessage(1, &gp, sizeof(gp), (CK_BYTE_PTR) "ad", 2, (CK_BYTE_PTR) "abc", 3, NULL, &n), CKR_OK);
	CHECK(n == 3 && iv[0] == 0 && iv[11] == 0 && tag[0] == 0, "size query wrote back: n %lu iv %x tag %x", n, iv[0], tag[0]);
	n = 2;
	RV(l->C_EncryptMessage(1, &gp, sizeof(gp), (CK_BYTE_PTR) "ad", 2, (CK_BYTE_PTR) "abc", 3, out, &n), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 3 && iv[0] == 0 && tag[0] == 0, "too small wrote back");
	n = sizeof(out);
	RV(l->C_EncryptMessage(1, &gp, sizeof(gp), (CK_BYTE_PTR) "ad", 2, (CK_BYTE_PTR) "abc", 3, out, &n), CKR_OK);
	CHECK(n == 3 && memcmp(out, "cba", 3) == 0, "ciphertext");
	CHECK(strstr(echo(), "IVGenerator:1 Tag:[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0] TagBits:128} aad=6164 in=616263") != NULL,
	      "encrypt echo %s", echo());
	CHECK(all_bytes(iv, 12, 0xA0), "generated IV not written back");
	CHECK(all_bytes(tag, 16, 0xC0), "tag not written back");
	CHECK(gp.pIv == iv && gp.ulIvLen == 12 && gp.pTag == tag && gp.ulTagBits == 128, "parameter struct itself changed");
	/* Decryption reads the tag and writes nothing back. */
	memset(iv, 0, sizeof(iv));
	memset(tag, 0x55, sizeof(tag));
	n = sizeof(out);
	RV(l->C_DecryptMessage(1, &gp, sizeof(gp), NULL, 0, (CK_BYTE_PTR) "xyz", 3, out, &n), CKR_OK);
	CHECK(iv[0] == 0 && tag[0] == 0x55, "decrypt wrote into the parameter");
	CHECK(strstr(echo(), "Tag:[85 85 85") != NULL, "decrypt tag echo %s", echo());
	/* ChaCha20-Poly1305 message parameters: 16-byte tag. */
	CK_BYTE nonce[12] = {1, 2, 3};
	memset(tag, 0, sizeof(tag));
	CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS cp = {nonce, sizeof(nonce), tag};
	n = sizeof(out);
	RV(l->C_EncryptMessage(1, &cp, sizeof(cp), NULL, 0, (CK_BYTE_PTR) "abc", 3, out, &n), CKR_OK);
	CHECK(strstr(echo(), "*ck.ChaCha20Poly1305MsgParams &{Nonce:[1 2 3 0") != NULL, "chacha echo %s", echo());
	CHECK(all_bytes(tag, 16, 0xC0) && nonce[0] == 1, "chacha tag not written back");
	/* Other sizes travel as bytes; a NULL parameter with a length is bad. */
	CK_BYTE raw[5] = {9, 9, 9, 9, 9};
	n = sizeof(out);
	RV(l->C_EncryptMessage(1, raw, sizeof(raw), NULL, 0, (CK_BYTE_PTR) "a", 1, out, &n), CKR_OK);
	CHECK(strstr(echo(), "[]uint8 [9 9 9 9 9]") != NULL, "raw echo %s", echo());
	RV(l->C_EncryptMessage(1, NULL, 48, NULL, 0, (CK_BYTE_PTR) "a", 1, out, &n), CKR_MECHANISM_PARAM_INVALID);
	gp.pTag = NULL;
	RV(l->C_EncryptMessage(1, &gp, sizeof(gp), NULL, 0, (CK_BYTE_PTR) "a", 1, out, &n), CKR_MECHANISM_PARAM_INVALID);
	RV(l->C_EncryptMessage(1, NULL, 0, NULL, 0, (CK_BYTE_PTR) "a", 1, out, NULL), CKR_ARGUMENTS_BAD);

	/* Message-based signing: the per-message parameter is decoded as the
	 * parameter of the mechanism the process began with. */
	CK_BYTE ctx[3] = {'c', 't', 'x'};
	CK_SIGN_ADDITIONAL_CONTEXT sac = {2 /* CKH_DETERMINISTIC_REQUIRED */, ctx, sizeof(ctx)};
	CK_MECHANISM mldsa = {0x1dUL /* CKM_ML_DSA */, NULL, 0};
	RV(l->C_MessageSignInit(1, &mldsa, 6), CKR_OK);
	CHECK(strstr(echo(), "MessageSignInit key=6 0x1d nil") != NULL, "sign init echo %s", echo());
	n = 0;
	RV(l->C_SignMessage(1, &sac, sizeof(sac), (CK_BYTE_PTR) "ab", 2, NULL, &n), CKR_OK);
	CHECK(n == 6, "size query %lu", n);
	CHECK(strstr(echo(), "*ck.SignAdditionalContext &{Hedge:2 Context:[99 116 120]} data=6162") != NULL, "sign echo %s", echo());
	n = 5;
	RV(l->C_SignMessage(1, NULL, 0, (CK_BYTE_PTR) "ab", 2, out, &n), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 6 && strstr(echo(), "SignMessage <nil> <nil>") != NULL, "too small %lu %s", n, echo());
	n = sizeof(out);
	RV(l->C_SignMessage(1, NULL, 0, (CK_BYTE_PTR) "ab", 2, out, &n), CKR_OK);
	CHECK(n == 6 && memcmp(out, "sig:ab", 6) == 0, "signature");
	RV(l->C_SignMessage(1, &sac, sizeof(sac) - 1, (CK_BYTE_PTR) "ab", 2, out, &n), CKR_MECHANISM_PARAM_INVALID);
	RV(l->C_SignMessage(1, NULL, 0, (CK_BYTE_PTR) "ab", 2, out, NULL), CKR_ARGUMENTS_BAD);
	RV(l->C_SignMessageNext(1, NULL, 0, (CK_BYTE_PTR) "p", 1, out, NULL), CKR_OK);
	CHECK(strstr(echo(), "last=false in=70") != NULL, "intermediate part echo %s", echo());
	n = sizeof(out);
	RV(l->C_SignMessageNext(1, NULL, 0, (CK_BYTE_PTR) "q", 1, out, &n), CKR_OK);
	CHECK(n == 5 && strstr(echo(), "last=true in=71") != NULL, "last part echo %s", echo());
	RV(l->C_VerifyMessageNext(1, NULL, 0, (CK_BYTE_PTR) "p", 1, NULL, 7), CKR_OK);
	CHECK(strstr(echo(), "last=false in=70 sig=") != NULL, "verify intermediate echo %s", echo());
	RV(l->C_VerifyMessageNext(1, NULL, 0, (CK_BYTE_PTR) "p", 1, (CK_BYTE_PTR) "s", 1), CKR_OK);
	CHECK(strstr(echo(), "last=true in=70 sig=73") != NULL, "verify last echo %s", echo());
	RV(l->C_MessageSignInit(1, NULL, 0), CKR_OK);
	CHECK(strcmp(echo(), "MessageSignFinal") == 0, "NULL mechanism ends the process: %s", echo());
	/* 3.2: signature first; validation flags. */
	RV(l->C_VerifySignatureInit(1, &mldsa, 4, (CK_BYTE_PTR) "sg", 2), CKR_OK);
	CHECK(strstr(echo(), "VerifySignatureInit key=4 0x1d nil sig=7367") != NULL, "verify signature init echo %s", echo());
	RV(l->C_VerifySignatureInit(1, &mldsa, 4, NULL, 2), CKR_ARGUMENTS_BAD);
	RV(l->C_VerifySignatureInit(1, &mldsa, 4, NULL, 0), CKR_ARGUMENTS_BAD);
	CK_FLAGS vf = 0;
	RV(l->C_GetSessionValidationFlags(1, 1, &vf), CKR_OK);
	CHECK(vf == 0x101, "validation flags 0x%lx", vf);
	RV(l->C_GetSessionValidationFlags(1, 1, NULL), CKR_ARGUMENTS_BAD);

	/* KEM. */
	CK_MECHANISM kem = {0x17UL /* CKM_ML_KEM */, NULL, 0};
	CK_OBJECT_HANDLE h = 0;
	CK_BYTE ct[32];
	n = 0;
	RV(l->C_EncapsulateKey(1, &kem, 9, NULL, 0, NULL, &n, NULL), CKR_OK);
	CHECK(n == 10, "ciphertext length %lu", n);
	CHECK(strcmp(echo(), "EncapsulateKey pub=9 0x17 nil attrs=0") == 0, "encapsulate echo %s", echo());
	n = 4;
	RV(l->C_EncapsulateKey(1, &kem, 9, NULL, 0, ct, &n, &h), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 10 && h == 0, "too small: n %lu h %lu", n, h);
	n = 0; /* a buffer of length 0 is too small, not a size query */
	RV(l->C_EncapsulateKey(1, &kem, 9, NULL, 0, ct, &n, &h), CKR_BUFFER_TOO_SMALL);
	CHECK(n == 10 && h == 0, "zero-length buffer: n %lu h %lu", n, h);
	n = sizeof(ct);
	RV(l->C_EncapsulateKey(1, &kem, 9, NULL, 0, ct, &n, &h), CKR_OK);
	CHECK(n == 10 && memcmp(ct, "ciphertext", 10) == 0 && h == 77, "encapsulate: n %lu h %lu", n, h);
	RV(l->C_EncapsulateKey(1, &kem, 9, NULL, 0, ct, NULL, &h), CKR_ARGUMENTS_BAD);
	RV(l->C_EncapsulateKey(1, &kem, 9, NULL, 0, ct, &n, NULL), CKR_ARGUMENTS_BAD);
	RV(l->C_DecapsulateKey(1, &kem, 8, NULL, 0, ct, 10, &h), CKR_OK);
	CHECK(h == 78 && strcmp(echo(), "DecapsulateKey priv=8 0x17 nil attrs=0 ct=\"ciphertext\"") == 0, "decapsulate echo %s", echo());
	RV(l->C_DecapsulateKey(1, &kem, 8, NULL, 0, ct, 10, NULL), CKR_ARGUMENTS_BAD);
	RV(l->C_DecapsulateKey(1, NULL, 8, NULL, 0, ct, 10, &h), CKR_ARGUMENTS_BAD);
}

static void test_panic(void)
{
	/* The fake backend does not define DigestKey: the nil interface panics. */
	RV(f->C_DigestKey(1, 2), CKR_GENERAL_ERROR);
	CK_INFO info;
	RV(f->C_GetInfo(&info), CKR_OK);
}

static void test_fork(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(10); /* a hang kills the child with SIGALRM */
		CK_INFO info;
		int bad = 0;
		if (f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED)
			bad |= 1;
		if (f->C_Initialize(NULL) != CKR_GENERAL_ERROR)
			bad |= 2;
		if (f->C_Finalize(NULL) != CKR_CRYPTOKI_NOT_INITIALIZED)
			bad |= 4;
		CK_FUNCTION_LIST_PTR l = NULL;
		if (f->C_GetFunctionList(&l) != CKR_OK || l != f)
			bad |= 8;
		_exit(bad);
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
	CHECK(WIFEXITED(status), "child did not exit normally (signal %d)", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child results, bitmask %d", WEXITSTATUS(status));
	CK_INFO info;
	RV(f->C_GetInfo(&info), CKR_OK); /* the parent is unaffected */
}

static void test_real(void)
{
	for (int i = 0; i < 3; i++) {
		RV(f->C_Initialize(NULL), CKR_OK);
		CK_ULONG n = 0;
		RV(f->C_GetSlotList(0, NULL, &n), CKR_OK);
		CHECK(n >= 1, "real engine has a slot");
		CK_SLOT_ID slot = 0;
		n = 1;
		RV(f->C_GetSlotList(0, &slot, &n), CKR_OK);
		CK_TOKEN_INFO ti;
		RV(f->C_GetTokenInfo(slot, &ti), CKR_OK);
		CK_SESSION_INFO si;
		RV(f->C_GetSessionInfo(12345, &si), 0xB3UL /* CKR_SESSION_HANDLE_INVALID */);
		RV(f->C_Finalize(NULL), CKR_OK);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: abi_test module.so fake|remote|real\n");
		return 2;
	}
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		printf("FAIL dlopen: %s\n", dlerror());
		return 1;
	}
	CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (gfl == NULL || gfl(&f) != CKR_OK) {
		printf("FAIL C_GetFunctionList\n");
		return 1;
	}
	if (strcmp(argv[2], "fake") == 0) {
		test_tables();
		test_lifecycle();
		test_info();
		test_login();
		test_mechanisms();
		test_interfaces_fake();
		test_wrap_iv();
		test_output();
		test_attributes();
		test_v32_fake();
		test_panic();
		test_fork();
		RV(f->C_Finalize(NULL), CKR_OK);
	} else if (strcmp(argv[2], "remote") == 0) {
		RV(f->C_Initialize(NULL), CKR_DEVICE_ERROR);
		CK_INFO info;
		RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	} else if (strcmp(argv[2], "real") == 0) {
		test_real();
		RV(f->C_Initialize(NULL), CKR_OK);
		test_fork();
		RV(f->C_Finalize(NULL), CKR_OK);
	}
	/* The module stays loaded: dlclose must be harmless (NODELETE). */
	dlclose(lib);
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
