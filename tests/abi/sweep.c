/*
 * sweep: call every PKCS#11 entry point of a module with bad arguments (NULL
 * pointers, short buffers, garbage session/object handles, invalid templates),
 * before C_Initialize, after it and after C_Finalize, and check each CK_RV
 * against what the specification allows.
 *
 *   sweep <module.so> <user PIN> [<SO PIN>]
 *
 * The module needs one initialised token with a user PIN (the first such slot
 * is used); an uninitialised slot, if there is one, gets the C_InitToken
 * argument checks (which never succeed). Objects made here are session objects.
 *
 * Expectations follow the OASIS PKCS#11 Base Specification v2.40 (section
 * numbers below are of that document, "§"), and v3.0 for C_GetInterface*,
 * not what any one module does. Where the spec allows several codes, the case
 * accepts all of them; "gotcha" refers to §5.1.8, which asks applications to
 * treat CKR_ATTRIBUTE_VALUE_INVALID / CKR_TEMPLATE_INCOMPLETE /
 * CKR_TEMPLATE_INCONSISTENT (and DATA_INVALID / DATA_LEN_RANGE etc.) alike.
 * §5.1.7: errors of §5.1.2 (CKR_SESSION_HANDLE_INVALID) take precedence over
 * those of §5.1.6 (CKR_ARGUMENTS_BAD, ...), so a garbage session handle with
 * NULL pointers must give CKR_SESSION_HANDLE_INVALID.
 *
 * Functions the spec lets a module leave out (C_WaitForSlotEvent, operation
 * state, dual-function, sign/verify-recover, the 3.0 message API) may answer
 * CKR_FUNCTION_NOT_SUPPORTED; everything else must be implemented.
 *
 * Output: one "MISMATCH" line per case that got a code outside its set, then
 * "sweep: N cases, M mismatches". Exit 0 if none, 1 if some, 2 on a set-up
 * problem; a crash prints the case it happened in and dies by the signal.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "rvnames.h"

/* PKCS#11 3.0 additions, absent from the 2.40 header (v3.0 §3.6, §5.4.4-5). */
typedef struct {
	CK_CHAR *pInterfaceName;
	void *pFunctionList;
	CK_FLAGS flags;
} IFACE;
typedef CK_RV (*GetInterfaceList_fn)(IFACE *, CK_ULONG *);
typedef CK_RV (*GetInterface_fn)(CK_UTF8CHAR *, CK_VERSION *, IFACE **, CK_FLAGS);
typedef CK_RV (*Sess_fn)(CK_SESSION_HANDLE);
typedef CK_RV (*Init_fn)(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE);
typedef struct {
	CK_FUNCTION_LIST base; /* same layout as the first 69 fields of 3.0's */
	GetInterfaceList_fn C_GetInterfaceList;
	GetInterface_fn C_GetInterface;
	CK_RV (*C_LoginUser)(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR *, CK_ULONG, CK_UTF8CHAR *, CK_ULONG);
	CK_RV (*C_SessionCancel)(CK_SESSION_HANDLE, CK_FLAGS);
	Init_fn C_MessageEncryptInit;
	CK_RV (*C_EncryptMessage)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG, CK_BYTE *, CK_ULONG,
				  CK_BYTE *, CK_ULONG *);
	CK_RV (*C_EncryptMessageBegin)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG);
	CK_RV (*C_EncryptMessageNext)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG, CK_BYTE *,
				      CK_ULONG *, CK_FLAGS);
	Sess_fn C_MessageEncryptFinal;
	Init_fn C_MessageDecryptInit;
	CK_RV (*C_DecryptMessage)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG, CK_BYTE *, CK_ULONG,
				  CK_BYTE *, CK_ULONG *);
	CK_RV (*C_DecryptMessageBegin)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG);
	CK_RV (*C_DecryptMessageNext)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG, CK_BYTE *,
				      CK_ULONG *, CK_FLAGS);
	Sess_fn C_MessageDecryptFinal;
	Init_fn C_MessageSignInit;
	CK_RV (*C_SignMessage)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG, CK_BYTE *, CK_ULONG *);
	CK_RV (*C_SignMessageBegin)(CK_SESSION_HANDLE, void *, CK_ULONG);
	CK_RV (*C_SignMessageNext)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG, CK_BYTE *, CK_ULONG *);
	Sess_fn C_MessageSignFinal;
	Init_fn C_MessageVerifyInit;
	CK_RV (*C_VerifyMessage)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG, CK_BYTE *, CK_ULONG);
	CK_RV (*C_VerifyMessageBegin)(CK_SESSION_HANDLE, void *, CK_ULONG);
	CK_RV (*C_VerifyMessageNext)(CK_SESSION_HANDLE, void *, CK_ULONG, CK_BYTE *, CK_ULONG, CK_BYTE *, CK_ULONG);
	Sess_fn C_MessageVerifyFinal;
} FL30;

#define BAD_SESSION ((CK_SESSION_HANDLE)0xdeadbeefUL)
#define BAD_OBJECT ((CK_OBJECT_HANDLE)0xbadbadUL)
#define BAD_MECH ((CK_MECHANISM_TYPE)0x7ffffffeUL) /* below CKM_VENDOR_DEFINED, unassigned */
#define BAD_ATTR ((CK_ATTRIBUTE_TYPE)0x7ffffff0UL) /* below CKA_VENDOR_DEFINED, unassigned */

static CK_FUNCTION_LIST *f;
static FL30 *f3;
static GetInterfaceList_fn getIfaceList;
static GetInterface_fn getIface;
static const char *volatile current = "loading";
static int ncases, nmismatch;

static const char *rvname(CK_RV rv)
{
	static char buf[32];
#define RV(x) if (rv == (x)) return #x;
	RVNAMES
#undef RV
	snprintf(buf, sizeof buf, "0x%lx", (unsigned long)rv);
	return buf;
}

static void on_signal(int sig)
{
	const char *c = (const char *)current;
	char msg[512];
	int n = snprintf(msg, sizeof msg, "\nsweep: CRASH: signal %d (%s) during case: %s\n", sig, strsignal(sig), c);
	if (write(2, msg, n) < 0) { /* nothing more to do */ }
	signal(sig, SIG_DFL);
	raise(sig);
}

static void mismatch(const char *fmt, ...)
{
	va_list ap;
	nmismatch++;
	printf("MISMATCH ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int expect_rv(const char *name, CK_RV got, const CK_RV *want, size_t n)
{
	char set[512] = "";
	ncases++;
	for (size_t i = 0; i < n; i++)
		if (got == want[i])
			return 1;
	for (size_t i = 0; i < n; i++) {
		strncat(set, rvname(want[i]), sizeof set - strlen(set) - 1);
		if (i + 1 < n)
			strncat(set, ", ", sizeof set - strlen(set) - 1);
	}
	mismatch("%s: got %s, want {%s}", name, rvname(got), set);
	return 0;
}

/*
 * skipped: cases named in SWEEP_SKIP ("|"-separated exact names) are not run.
 * abi.sh uses it to go on past a case that crashed the module (the crash is
 * still reported as a failure).
 */
static int skipped(const char *name)
{
	const char *list = getenv("SWEEP_SKIP");
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, '|');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && !strncmp(p, name, n)) {
			printf("SKIPPED %s (crashed the module in an earlier run)\n", name);
			return 1;
		}
		p = e ? e + 1 : NULL;
	}
	return 0;
}

/* EXPECT(name, call, codes...): run call (alarm: a hang names its case) and check its CK_RV. */
/*
 * C_XxxInit with a NULL pMechanism: PKCS#11 2.40 makes it CKR_ARGUMENTS_BAD;
 * 3.0 (§5.6 "C_SessionCancel", and each C_XxxInit) lets it terminate the
 * active operation of that kind, returning CKR_OK. A module answers as the
 * interface the caller chose: through a 2.x function list (what
 * C_GetFunctionList returns) only CKR_ARGUMENTS_BAD is right, and the
 * active operation goes on; through a 3.x table either, and t_crypto
 * checks that CKR_OK really ended the operation.
 */
#define NULL_INIT_RVS CKR_ARGUMENTS_BAD, CKR_OK
#define NULL_INIT_RVS_F CKR_ARGUMENTS_BAD, (f->version.major < 3 ? CKR_ARGUMENTS_BAD : CKR_OK)
/*
 * CK_MECHANISM_INFO flags no 2.x header defines: the 3.0 message flags,
 * CKF_FIND_OBJECTS, CKF_EC_CURVENAME; and the 3.2 KEM flags, which a 3.0
 * table must not report either.
 */
#define FLAGS_NEW_IN_3_0 0x0400007EUL
#define FLAGS_NEW_IN_3_2 0x30000000UL
#define EXPECT(name, call, ...)                                                          \
	({                                                                               \
		const CK_RV w_[] = {__VA_ARGS__};                                        \
		int ok_ = 0;                                                             \
		current = (name);                                                        \
		if (!skipped(current)) {                                                 \
			alarm(20);                                                       \
			CK_RV r_ = (call);                                               \
			alarm(0);                                                        \
			ok_ = expect_rv(current, r_, w_, sizeof w_ / sizeof w_[0]);      \
		}                                                                        \
		ok_;                                                                     \
	})
/* CHECK(name, cond, fmt...): a non-CK_RV assertion. */
#define CHECK(name, cond, ...)                                                           \
	do {                                                                             \
		ncases++;                                                                \
		if (!(cond)) {                                                           \
			char m_[256];                                                    \
			snprintf(m_, sizeof m_, __VA_ARGS__);                            \
			mismatch("%s: %s", (name), m_);                                  \
		}                                                                        \
	} while (0)

static char name_buf[256];
static const char *nm(const char *phase, const char *what)
{
	snprintf(name_buf, sizeof name_buf, "%s: %s", phase, what);
	return name_buf;
}

/* State set up after C_Initialize. */
static CK_SLOT_ID slot, freeslot, badslot;
static int have_freeslot;
static CK_SESSION_HANDLE srw, sro;
static CK_OBJECT_HANDLE dobj, aes, aes2, ecpub, ecpriv;
static const char *pin, *sopin;
static CK_BYTE data[64] = "abc";
static CK_BYTE buf[4096];
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS c_data = CKO_DATA, c_secret = CKO_SECRET_KEY;
static CK_KEY_TYPE k_aes = CKK_AES, k_ec = CKK_EC;
static CK_ULONG len32 = 32;
static void end_ops(void);
static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/*
 * sweep_all calls all 66 entry points other than C_Initialize and
 * C_GetFunctionList once. pre: Cryptoki is not initialised, so every call
 * must give CKR_CRYPTOKI_NOT_INITIALIZED (§5.1.6: any function but
 * C_Initialize / C_GetFunctionList). nulls: pointer arguments are NULL
 * (then, pre-init, CKR_ARGUMENTS_BAD is as applicable as NOT_INITIALIZED).
 * !pre: garbage session/slot/object handles after C_Initialize.
 */
static void sweep_all(const char *phase, int pre, int nulls)
{
	CK_INFO info;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_SESSION_INFO ssi;
	CK_MECHANISM_INFO mi;
	CK_MECHANISM_TYPE mechs[256];
	CK_SLOT_ID slots[64];
	CK_OBJECT_HANDLE objs[8], h = 0, h2 = 0;
	CK_SESSION_HANDLE sh = 0;
	CK_ULONG n = 64, len = sizeof buf;
	CK_MECHANISM mech = {CKM_SHA256, NULL, 0};
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c_data, sizeof c_data}};
	CK_UTF8CHAR label[32];
	CK_SLOT_ID ev;
	memset(label, ' ', sizeof label);
#define P(x) (nulls ? NULL : (x))
	/* In the nulls pass before init either code applies (§5.1.6 gives no order). */
#define E(what, call, ...)                                                                          \
	do {                                                                                        \
		n = 64;                                                                             \
		len = sizeof buf;                                                                   \
		if (pre && nulls)                                                                   \
			EXPECT(nm(phase, what), call, CKR_CRYPTOKI_NOT_INITIALIZED, CKR_ARGUMENTS_BAD); \
		else if (pre)                                                                       \
			EXPECT(nm(phase, what), call, CKR_CRYPTOKI_NOT_INITIALIZED);                \
		else                                                                                \
			EXPECT(nm(phase, what), call, __VA_ARGS__);                                 \
	} while (0)
	/* Optional functions: a module without them may say CKR_FUNCTION_NOT_SUPPORTED in any state. */
#define EO(what, call, ...)                                                                         \
	do {                                                                                        \
		n = 64;                                                                             \
		len = sizeof buf;                                                                   \
		if (pre && nulls)                                                                   \
			EXPECT(nm(phase, what), call, CKR_CRYPTOKI_NOT_INITIALIZED, CKR_ARGUMENTS_BAD, NS); \
		else if (pre)                                                                       \
			EXPECT(nm(phase, what), call, CKR_CRYPTOKI_NOT_INITIALIZED, NS);            \
		else                                                                                \
			EXPECT(nm(phase, what), call, __VA_ARGS__);                                 \
	} while (0)
#define SHI CKR_SESSION_HANDLE_INVALID
#define NS CKR_FUNCTION_NOT_SUPPORTED
	/* General purpose, slot and token (§5.4, §5.5). Post-init these get a garbage slot id. */
	if (pre)
		EO("C_Finalize(NULL)", f->C_Finalize(NULL), CKR_OK);
	if (!nulls || pre)
		E("C_GetInfo", f->C_GetInfo(P(&info)), CKR_OK);
	if (pre)
		E("C_GetSlotList", f->C_GetSlotList(CK_FALSE, P(slots), P(&n)), CKR_OK);
	E("C_GetSlotInfo", f->C_GetSlotInfo(badslot, P(&si)), CKR_SLOT_ID_INVALID, nulls ? CKR_ARGUMENTS_BAD : CKR_SLOT_ID_INVALID);
	E("C_GetTokenInfo", f->C_GetTokenInfo(badslot, P(&ti)), CKR_SLOT_ID_INVALID, nulls ? CKR_ARGUMENTS_BAD : CKR_SLOT_ID_INVALID);
	E("C_GetMechanismList", f->C_GetMechanismList(badslot, P(mechs), P(&n)), CKR_SLOT_ID_INVALID,
	  nulls ? CKR_ARGUMENTS_BAD : CKR_SLOT_ID_INVALID);
	E("C_GetMechanismInfo", f->C_GetMechanismInfo(badslot, CKM_SHA256, P(&mi)), CKR_SLOT_ID_INVALID,
	  nulls ? CKR_ARGUMENTS_BAD : CKR_SLOT_ID_INVALID);
	E("C_InitToken", f->C_InitToken(badslot, P((CK_UTF8CHAR *)"12345678"), 8, P(label)), CKR_SLOT_ID_INVALID,
	  nulls ? CKR_ARGUMENTS_BAD : CKR_SLOT_ID_INVALID);
	/* Session functions: garbage handle => CKR_SESSION_HANDLE_INVALID (§5.1.2, §5.1.7). */
	E("C_InitPIN", f->C_InitPIN(BAD_SESSION, P((CK_UTF8CHAR *)"1234"), 4), SHI);
	E("C_SetPIN", f->C_SetPIN(BAD_SESSION, P((CK_UTF8CHAR *)"1234"), 4, P((CK_UTF8CHAR *)"5678"), 4), SHI);
	E("C_OpenSession", f->C_OpenSession(badslot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, P(&sh)),
	  CKR_SLOT_ID_INVALID, nulls ? CKR_ARGUMENTS_BAD : CKR_SLOT_ID_INVALID);
	E("C_CloseSession", f->C_CloseSession(BAD_SESSION), SHI);
	E("C_CloseAllSessions", f->C_CloseAllSessions(badslot), CKR_SLOT_ID_INVALID);
	E("C_GetSessionInfo", f->C_GetSessionInfo(BAD_SESSION, P(&ssi)), SHI);
	EO("C_GetOperationState", f->C_GetOperationState(BAD_SESSION, P(buf), P(&len)), SHI, NS);
	EO("C_SetOperationState", f->C_SetOperationState(BAD_SESSION, P(buf), 16, 0, 0), SHI, NS);
	E("C_Login", f->C_Login(BAD_SESSION, CKU_USER, P((CK_UTF8CHAR *)"1234"), 4), SHI);
	E("C_Logout", f->C_Logout(BAD_SESSION), SHI);
	/* Object management (§5.7). */
	E("C_CreateObject", f->C_CreateObject(BAD_SESSION, P(t), 1, P(&h)), SHI);
	E("C_CopyObject", f->C_CopyObject(BAD_SESSION, BAD_OBJECT, P(t), 1, P(&h)), SHI);
	E("C_DestroyObject", f->C_DestroyObject(BAD_SESSION, BAD_OBJECT), SHI);
	E("C_GetObjectSize", f->C_GetObjectSize(BAD_SESSION, BAD_OBJECT, P(&len)), SHI);
	E("C_GetAttributeValue", f->C_GetAttributeValue(BAD_SESSION, BAD_OBJECT, P(t), 1), SHI);
	E("C_SetAttributeValue", f->C_SetAttributeValue(BAD_SESSION, BAD_OBJECT, P(t), 1), SHI);
	E("C_FindObjectsInit", f->C_FindObjectsInit(BAD_SESSION, P(t), 1), SHI);
	E("C_FindObjects", f->C_FindObjects(BAD_SESSION, P(objs), 8, P(&n)), SHI);
	E("C_FindObjectsFinal", f->C_FindObjectsFinal(BAD_SESSION), SHI);
	/* Cryptographic functions (§5.8-§5.15). */
	E("C_EncryptInit", f->C_EncryptInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI);
	E("C_Encrypt", f->C_Encrypt(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI);
	E("C_EncryptUpdate", f->C_EncryptUpdate(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI);
	E("C_EncryptFinal", f->C_EncryptFinal(BAD_SESSION, P(buf), P(&len)), SHI);
	E("C_DecryptInit", f->C_DecryptInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI);
	E("C_Decrypt", f->C_Decrypt(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI);
	E("C_DecryptUpdate", f->C_DecryptUpdate(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI);
	E("C_DecryptFinal", f->C_DecryptFinal(BAD_SESSION, P(buf), P(&len)), SHI);
	E("C_DigestInit", f->C_DigestInit(BAD_SESSION, P(&mech)), SHI);
	E("C_Digest", f->C_Digest(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI);
	E("C_DigestUpdate", f->C_DigestUpdate(BAD_SESSION, P(data), 16), SHI);
	E("C_DigestKey", f->C_DigestKey(BAD_SESSION, BAD_OBJECT), SHI);
	E("C_DigestFinal", f->C_DigestFinal(BAD_SESSION, P(buf), P(&len)), SHI);
	E("C_SignInit", f->C_SignInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI);
	E("C_Sign", f->C_Sign(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI);
	E("C_SignUpdate", f->C_SignUpdate(BAD_SESSION, P(data), 16), SHI);
	E("C_SignFinal", f->C_SignFinal(BAD_SESSION, P(buf), P(&len)), SHI);
	EO("C_SignRecoverInit", f->C_SignRecoverInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI, NS);
	EO("C_SignRecover", f->C_SignRecover(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI, NS);
	E("C_VerifyInit", f->C_VerifyInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI);
	E("C_Verify", f->C_Verify(BAD_SESSION, P(data), 16, P(buf), 64), SHI);
	E("C_VerifyUpdate", f->C_VerifyUpdate(BAD_SESSION, P(data), 16), SHI);
	E("C_VerifyFinal", f->C_VerifyFinal(BAD_SESSION, P(buf), 64), SHI);
	EO("C_VerifyRecoverInit", f->C_VerifyRecoverInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI, NS);
	EO("C_VerifyRecover", f->C_VerifyRecover(BAD_SESSION, P(buf), 64, P(data), P(&len)), SHI, NS);
	EO("C_DigestEncryptUpdate", f->C_DigestEncryptUpdate(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI, NS);
	EO("C_DecryptDigestUpdate", f->C_DecryptDigestUpdate(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI, NS);
	EO("C_SignEncryptUpdate", f->C_SignEncryptUpdate(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI, NS);
	EO("C_DecryptVerifyUpdate", f->C_DecryptVerifyUpdate(BAD_SESSION, P(data), 16, P(buf), P(&len)), SHI, NS);
	E("C_GenerateKey", f->C_GenerateKey(BAD_SESSION, P(&mech), P(t), 1, P(&h)), SHI);
	E("C_GenerateKeyPair", f->C_GenerateKeyPair(BAD_SESSION, P(&mech), P(t), 1, P(t), 1, P(&h), P(&h2)), SHI);
	E("C_WrapKey", f->C_WrapKey(BAD_SESSION, P(&mech), BAD_OBJECT, BAD_OBJECT, P(buf), P(&len)), SHI);
	E("C_UnwrapKey", f->C_UnwrapKey(BAD_SESSION, P(&mech), BAD_OBJECT, P(buf), 40, P(t), 1, P(&h)), SHI);
	E("C_DeriveKey", f->C_DeriveKey(BAD_SESSION, P(&mech), BAD_OBJECT, P(t), 1, P(&h)), SHI);
	E("C_SeedRandom", f->C_SeedRandom(BAD_SESSION, P(data), 16), SHI);
	E("C_GenerateRandom", f->C_GenerateRandom(BAD_SESSION, P(buf), 16), SHI);
	/* §5.16: legacy; "should" return CKR_FUNCTION_NOT_PARALLEL (a handle check first is fine too). */
	E("C_GetFunctionStatus", f->C_GetFunctionStatus(BAD_SESSION), CKR_FUNCTION_NOT_PARALLEL, SHI);
	E("C_CancelFunction", f->C_CancelFunction(BAD_SESSION), CKR_FUNCTION_NOT_PARALLEL, SHI);
	/* §5.5.4: never block here (CKF_DONT_BLOCK); no event => CKR_NO_EVENT. */
	if (!nulls || pre)
		E("C_WaitForSlotEvent(DONT_BLOCK)", f->C_WaitForSlotEvent(CKF_DONT_BLOCK, P(&ev), NULL), CKR_NO_EVENT,
		  NS);

	/* The 3.0 entry points (v3.0 §5.6.x, §5.19-§5.22) behave the same way. */
	if (f3) {
		EO("C_LoginUser", f3->C_LoginUser(BAD_SESSION, CKU_USER, P((CK_UTF8CHAR *)"1234"), 4,
						  P((CK_UTF8CHAR *)"u"), 1), SHI, NS);
		EO("C_SessionCancel", f3->C_SessionCancel(BAD_SESSION, CKF_ENCRYPT), SHI, NS);
		EO("C_MessageEncryptInit", f3->C_MessageEncryptInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI, NS);
		EO("C_EncryptMessage", f3->C_EncryptMessage(BAD_SESSION, P(buf), 12, P(data), 4, P(data), 16, P(buf),
							   P(&len)), SHI, NS);
		EO("C_EncryptMessageBegin", f3->C_EncryptMessageBegin(BAD_SESSION, P(buf), 12, P(data), 4), SHI, NS);
		EO("C_EncryptMessageNext", f3->C_EncryptMessageNext(BAD_SESSION, P(buf), 12, P(data), 16, P(buf),
								   P(&len), 0), SHI, NS);
		EO("C_MessageEncryptFinal", f3->C_MessageEncryptFinal(BAD_SESSION), SHI, NS);
		EO("C_MessageDecryptInit", f3->C_MessageDecryptInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI, NS);
		EO("C_DecryptMessage", f3->C_DecryptMessage(BAD_SESSION, P(buf), 12, P(data), 4, P(data), 16, P(buf),
							   P(&len)), SHI, NS);
		EO("C_DecryptMessageBegin", f3->C_DecryptMessageBegin(BAD_SESSION, P(buf), 12, P(data), 4), SHI, NS);
		EO("C_DecryptMessageNext", f3->C_DecryptMessageNext(BAD_SESSION, P(buf), 12, P(data), 16, P(buf),
								   P(&len), 0), SHI, NS);
		EO("C_MessageDecryptFinal", f3->C_MessageDecryptFinal(BAD_SESSION), SHI, NS);
		EO("C_MessageSignInit", f3->C_MessageSignInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI, NS);
		EO("C_SignMessage", f3->C_SignMessage(BAD_SESSION, P(buf), 0, P(data), 16, P(buf), P(&len)), SHI, NS);
		EO("C_SignMessageBegin", f3->C_SignMessageBegin(BAD_SESSION, P(buf), 0), SHI, NS);
		EO("C_SignMessageNext", f3->C_SignMessageNext(BAD_SESSION, P(buf), 0, P(data), 16, P(buf), P(&len)),
		  SHI, NS);
		EO("C_MessageSignFinal", f3->C_MessageSignFinal(BAD_SESSION), SHI, NS);
		EO("C_MessageVerifyInit", f3->C_MessageVerifyInit(BAD_SESSION, P(&mech), BAD_OBJECT), SHI, NS);
		EO("C_VerifyMessage", f3->C_VerifyMessage(BAD_SESSION, P(buf), 0, P(data), 16, P(buf), 64), SHI, NS);
		EO("C_VerifyMessageBegin", f3->C_VerifyMessageBegin(BAD_SESSION, P(buf), 0), SHI, NS);
		EO("C_VerifyMessageNext", f3->C_VerifyMessageNext(BAD_SESSION, P(buf), 0, P(data), 16, P(buf), 64),
		  SHI, NS);
		EO("C_MessageVerifyFinal", f3->C_MessageVerifyFinal(BAD_SESSION), SHI, NS);
	}
#undef E
#undef EO
#undef P
}

/* find_slots picks the first token with a user PIN, a free (uninitialised) slot, and an unused slot id. */
static int find_slots(void)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	int found = 0;
	if (!EXPECT("setup: C_GetSlotList(FALSE)", f->C_GetSlotList(CK_FALSE, slots, &n), CKR_OK))
		return 0;
	badslot = 0x7eadbeefUL;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (slots[i] == badslot)
			badslot++;
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!found && (ti.flags & CKF_TOKEN_INITIALIZED) && (ti.flags & CKF_USER_PIN_INITIALIZED)) {
			slot = slots[i];
			found = 1;
		} else if (!have_freeslot && !(ti.flags & CKF_TOKEN_INITIALIZED)) {
			freeslot = slots[i];
			have_freeslot = 1;
		}
	}
	if (!found)
		fprintf(stderr, "sweep: no initialised token with a user PIN among %lu slots\n", (unsigned long)n);
	return found;
}

static void t_general(void)
{
	CK_INFO info;
	/* §5.4.3 */
	EXPECT("C_GetInfo(NULL)", f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
	if (EXPECT("C_GetInfo", f->C_GetInfo(&info), CKR_OK))
		CHECK("C_GetInfo cryptokiVersion", info.cryptokiVersion.major >= 2, "cryptokiVersion %d.%d",
		      info.cryptokiVersion.major, info.cryptokiVersion.minor);
	/* §5.4.1: a second C_Initialize */
	EXPECT("C_Initialize again", f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	/* §5.4.2: pReserved must be NULL_PTR; the library stays initialised. */
	EXPECT("C_Finalize(non-NULL pReserved)", f->C_Finalize((void *)buf), CKR_ARGUMENTS_BAD);
	EXPECT("C_GetInfo after refused C_Finalize", f->C_GetInfo(&info), CKR_OK);
	/* §5.4.4 */
	CK_FUNCTION_LIST *fl = NULL;
	EXPECT("C_GetFunctionList(NULL) after init", f->C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
	EXPECT("C_GetFunctionList after init", f->C_GetFunctionList(&fl), CKR_OK);
}

static void t_slots(void)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 0, full = 0;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_MECHANISM_INFO mi;
	CK_MECHANISM_TYPE mechs[512];
	CK_UTF8CHAR label[32];
	memset(label, ' ', sizeof label);

	/* §5.5.1 + §5.2 (variable-length output conventions) */
	EXPECT("C_GetSlotList(NULL, NULL)", f->C_GetSlotList(CK_FALSE, NULL, NULL), CKR_ARGUMENTS_BAD);
	EXPECT("C_GetSlotList size query", f->C_GetSlotList(CK_FALSE, NULL, &full), CKR_OK);
	n = 0;
	if (full > 0) {
		EXPECT("C_GetSlotList short buffer", f->C_GetSlotList(CK_FALSE, slots, &n), CKR_BUFFER_TOO_SMALL);
		CHECK("C_GetSlotList short buffer sets count", n == full, "count %lu, want %lu", n, full);
	}
	n = 64;
	EXPECT("C_GetSlotList(TRUE)", f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	/* §5.5.2, §5.5.3 */
	EXPECT("C_GetSlotInfo(slot, NULL)", f->C_GetSlotInfo(slot, NULL), CKR_ARGUMENTS_BAD);
	EXPECT("C_GetSlotInfo(slot)", f->C_GetSlotInfo(slot, &si), CKR_OK);
	EXPECT("C_GetTokenInfo(slot, NULL)", f->C_GetTokenInfo(slot, NULL), CKR_ARGUMENTS_BAD);
	/* §5.5.5 */
	EXPECT("C_GetMechanismList(slot, NULL, NULL)", f->C_GetMechanismList(slot, NULL, NULL), CKR_ARGUMENTS_BAD);
	full = 0;
	if (EXPECT("C_GetMechanismList size query", f->C_GetMechanismList(slot, NULL, &full), CKR_OK) && full > 1) {
		n = 1;
		EXPECT("C_GetMechanismList short buffer", f->C_GetMechanismList(slot, mechs, &n),
		       CKR_BUFFER_TOO_SMALL);
		CHECK("C_GetMechanismList short buffer sets count", n == full, "count %lu, want %lu", n, full);
	}
	/* §5.5.6 */
	EXPECT("C_GetMechanismInfo(unknown mechanism)", f->C_GetMechanismInfo(slot, BAD_MECH, &mi),
	       CKR_MECHANISM_INVALID);
	EXPECT("C_GetMechanismInfo(SHA256, NULL)", f->C_GetMechanismInfo(slot, CKM_SHA256, NULL), CKR_ARGUMENTS_BAD);
	/* Each function table reports the mechanism flags its version defines, and no later ones. */
	n = sizeof mechs / sizeof mechs[0];
	if (f->C_GetMechanismList(slot, mechs, &n) == CKR_OK) {
		int f30 = f3 && f3->base.version.major == 3 && f3->base.version.minor == 0;
		CK_ULONG bad2 = 0, bad3 = 0;
		CK_MECHANISM_TYPE eg2 = 0, eg3 = 0;
		for (CK_ULONG i = 0; i < n; i++) {
			if (f->version.major < 3 && f->C_GetMechanismInfo(slot, mechs[i], &mi) == CKR_OK &&
			    (mi.flags & (FLAGS_NEW_IN_3_0 | FLAGS_NEW_IN_3_2)) && bad2++ == 0)
				eg2 = mechs[i];
			if (f30 && f3->base.C_GetMechanismInfo(slot, mechs[i], &mi) == CKR_OK &&
			    (mi.flags & FLAGS_NEW_IN_3_2) && bad3++ == 0)
				eg3 = mechs[i];
		}
		CHECK("2.x function list: C_GetMechanismInfo reports no 3.x flag", bad2 == 0,
		      "%lu mechanisms with 3.x flags, the first 0x%lx", bad2, eg2);
		CHECK("3.0 function table: C_GetMechanismInfo reports no 3.2 flag", bad3 == 0,
		      "%lu mechanisms with 3.2 flags, the first 0x%lx", bad3, eg3);
	}
	/* §5.5.7: on the free slot, with a NULL PIN or label (nothing may be initialised) */
	if (have_freeslot) {
		EXPECT("C_InitToken(free slot, NULL PIN)", f->C_InitToken(freeslot, NULL, 8, label), CKR_ARGUMENTS_BAD);
		EXPECT("C_InitToken(free slot, NULL PIN, len 0)", f->C_InitToken(freeslot, NULL, 0, label),
		       CKR_ARGUMENTS_BAD);
		EXPECT("C_InitToken(free slot, NULL label)",
		       f->C_InitToken(freeslot, (CK_UTF8CHAR *)"12345678", 8, NULL), CKR_ARGUMENTS_BAD);
		if (f->C_GetTokenInfo(freeslot, &ti) == CKR_OK)
			CHECK("free slot still uninitialised after refused C_InitToken",
			      !(ti.flags & CKF_TOKEN_INITIALIZED), "token flags 0x%lx", ti.flags);
	}
}

static void t_sessions(void)
{
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO ssi;
	CK_TOKEN_INFO ti;
	CK_ULONG len;
	CK_UTF8CHAR label[32];
	memset(label, ' ', sizeof label);

	/* §5.6.1: CKF_SERIAL_SESSION must be set */
	EXPECT("C_OpenSession without CKF_SERIAL_SESSION", f->C_OpenSession(slot, 0, NULL, NULL, &h),
	       CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	EXPECT("C_OpenSession(NULL phSession)", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, NULL),
	       CKR_ARGUMENTS_BAD);
	if (!EXPECT("C_OpenSession R/O", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &sro), CKR_OK) ||
	    !EXPECT("C_OpenSession R/W",
		    f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &srw), CKR_OK)) {
		fprintf(stderr, "sweep: cannot open sessions; stopping\n");
		exit(2);
	}
	/* §5.6.4 */
	EXPECT("C_GetSessionInfo(NULL)", f->C_GetSessionInfo(sro, NULL), CKR_ARGUMENTS_BAD);
	if (EXPECT("C_GetSessionInfo(R/O)", f->C_GetSessionInfo(sro, &ssi), CKR_OK))
		CHECK("R/O session state before login", ssi.state == CKS_RO_PUBLIC_SESSION && ssi.slotID == slot,
		      "state %lu slot %lu", ssi.state, ssi.slotID);
	/* §5.5.7: C_InitToken with sessions open fails (wrong SO PIN: nothing is lost if it does not). */
	EXPECT("C_InitToken with sessions open", f->C_InitToken(slot, (CK_UTF8CHAR *)"wrong-so", 8, label),
	       CKR_SESSION_EXISTS);
	/* §5.6.7 */
	EXPECT("C_Logout when not logged in", f->C_Logout(srw), CKR_USER_NOT_LOGGED_IN);
	EXPECT("C_Login(bad user type)", f->C_Login(srw, 7, (CK_UTF8CHAR *)pin, strlen(pin)), CKR_USER_TYPE_INVALID);
	/*
	 * Without a protected authentication path a NULL PIN is a bad argument
	 * whatever its length (NULL_PTR means "use the PIN pad"), and not a
	 * login attempt: the retry counter must not move.
	 */
	if (f->C_GetTokenInfo(slot, &ti) == CKR_OK && !(ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
		int low_before = (ti.flags & CKF_USER_PIN_COUNT_LOW) != 0;
		EXPECT("C_Login(NULL PIN, len 4)", f->C_Login(srw, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
		EXPECT("C_Login(NULL PIN, len 0)", f->C_Login(srw, CKU_USER, NULL, 0), CKR_ARGUMENTS_BAD);
		EXPECT("C_SetPIN(NULL old PIN, len 0), not logged in",
		       f->C_SetPIN(srw, NULL, 0, (CK_UTF8CHAR *)pin, strlen(pin)), CKR_ARGUMENTS_BAD);
		if (f3)
			EXPECT("C_LoginUser(NULL PIN, len 0)", f3->C_LoginUser(srw, CKU_USER, NULL, 0, (CK_UTF8CHAR *)"u", 1),
			       CKR_ARGUMENTS_BAD, CKR_FUNCTION_NOT_SUPPORTED);
		if (low_before)
			printf("note: CKF_USER_PIN_COUNT_LOW already set; NULL-PIN lockout case skipped\n");
		else if (f->C_GetTokenInfo(slot, &ti) == CKR_OK)
			CHECK("NULL PIN not counted as a failed login", !(ti.flags & CKF_USER_PIN_COUNT_LOW),
			      "token flags 0x%lx: CKF_USER_PIN_COUNT_LOW set by a NULL PIN", ti.flags);
	}
	EXPECT("C_Login(wrong PIN)", f->C_Login(srw, CKU_USER, (CK_UTF8CHAR *)"wrong-pin", 9), CKR_PIN_INCORRECT);
	if (sopin) {
		CK_RV rv = f->C_Login(srw, CKU_SO, (CK_UTF8CHAR *)sopin, strlen(sopin));
		static const CK_RV w[] = {CKR_SESSION_READ_ONLY_EXISTS};
		current = "C_Login(SO) with a R/O session open";
		expect_rv(current, rv, w, 1);
		if (rv == CKR_OK)
			f->C_Logout(srw);
	}
	if (!EXPECT("C_Login(user)", f->C_Login(srw, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)), CKR_OK)) {
		fprintf(stderr, "sweep: cannot log in; stopping\n");
		exit(2);
	}
	EXPECT("C_Login(user) again", f->C_Login(sro, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)),
	       CKR_USER_ALREADY_LOGGED_IN);
	if (EXPECT("C_GetSessionInfo after login", f->C_GetSessionInfo(sro, &ssi), CKR_OK))
		CHECK("R/O session state after login", ssi.state == CKS_RO_USER_FUNCTIONS, "state %lu", ssi.state);
	/* §5.5.8: C_InitPIN only in the R/W SO Functions state (same PIN: harmless if wrongly accepted). */
	EXPECT("C_InitPIN in a user session", f->C_InitPIN(srw, (CK_UTF8CHAR *)pin, strlen(pin)),
	       CKR_USER_NOT_LOGGED_IN);
	/* §5.5.9 */
	EXPECT("C_SetPIN(NULL old PIN)", f->C_SetPIN(srw, NULL, 4, (CK_UTF8CHAR *)pin, strlen(pin)),
	       CKR_ARGUMENTS_BAD);
	EXPECT("C_SetPIN(NULL new PIN, len 0)", f->C_SetPIN(srw, (CK_UTF8CHAR *)pin, strlen(pin), NULL, 0),
	       CKR_ARGUMENTS_BAD);
	EXPECT("C_SetPIN in a R/O session", f->C_SetPIN(sro, (CK_UTF8CHAR *)pin, strlen(pin), (CK_UTF8CHAR *)pin,
							 strlen(pin)), CKR_SESSION_READ_ONLY);
	/* §5.6.5, §5.6.6 (optional functions) */
	EXPECT("C_GetOperationState(NULL len)", f->C_GetOperationState(srw, NULL, NULL), CKR_ARGUMENTS_BAD,
	       CKR_FUNCTION_NOT_SUPPORTED);
	len = sizeof buf;
	EXPECT("C_GetOperationState with no operation", f->C_GetOperationState(srw, buf, &len),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_STATE_UNSAVEABLE, CKR_FUNCTION_NOT_SUPPORTED, CKR_OK);
	EXPECT("C_SetOperationState(NULL state)", f->C_SetOperationState(srw, NULL, 10, 0, 0), CKR_ARGUMENTS_BAD,
	       CKR_FUNCTION_NOT_SUPPORTED);
	memset(buf, 0xa5, 64);
	EXPECT("C_SetOperationState(garbage state)", f->C_SetOperationState(srw, buf, 64, 0, 0),
	       CKR_SAVED_STATE_INVALID, CKR_FUNCTION_NOT_SUPPORTED);
	/* §5.16 */
	EXPECT("C_GetFunctionStatus", f->C_GetFunctionStatus(srw), CKR_FUNCTION_NOT_PARALLEL);
	EXPECT("C_CancelFunction", f->C_CancelFunction(srw), CKR_FUNCTION_NOT_PARALLEL);
	/* §5.5.4 */
	CK_SLOT_ID ev;
	EXPECT("C_WaitForSlotEvent(NULL pSlot)", f->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL),
	       CKR_ARGUMENTS_BAD, CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_WaitForSlotEvent(non-NULL pReserved)", f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, buf),
	       CKR_ARGUMENTS_BAD, CKR_FUNCTION_NOT_SUPPORTED);
}

static void t_objects(void)
{
	CK_OBJECT_HANDLE h = 0, objs[8];
	CK_ULONG n, len;
	CK_ULONG four = 4;
	CK_BYTE val[] = "hello";
	CK_BYTE lab[] = "sweep-data";
	CK_OBJECT_CLASS badclass = 0x7ffffff0UL;
	CK_ATTRIBUTE good[] = {
		{CKA_CLASS, &c_data, sizeof c_data},
		{CKA_TOKEN, &no, sizeof no},
		{CKA_LABEL, lab, sizeof lab - 1},
		{CKA_VALUE, val, 5},
	};
	CK_ATTRIBUTE null_value[] = {{CKA_CLASS, &c_data, sizeof c_data}, {CKA_LABEL, NULL, 5}};
	CK_ATTRIBUTE unknown[] = {{CKA_CLASS, &c_data, sizeof c_data}, {BAD_ATTR, val, 5}};
	CK_ATTRIBUTE bool_len[] = {{CKA_CLASS, &c_data, sizeof c_data}, {CKA_TOKEN, &four, sizeof four}};
	CK_ATTRIBUTE class_len[] = {{CKA_CLASS, &four, 4}, {CKA_TOKEN, &no, sizeof no}};
	CK_ATTRIBUTE class_bad[] = {{CKA_CLASS, &badclass, sizeof badclass}, {CKA_TOKEN, &no, sizeof no}};
	CK_ATTRIBUTE on_token[] = {{CKA_CLASS, &c_data, sizeof c_data}, {CKA_TOKEN, &yes, sizeof yes}};

	/* §5.7.1 and the template rules of §4.1.1 */
	EXPECT("C_CreateObject(NULL template, count 3)", f->C_CreateObject(srw, NULL, 3, &h), CKR_ARGUMENTS_BAD);
	EXPECT("C_CreateObject(NULL phObject)", f->C_CreateObject(srw, good, 4, NULL), CKR_ARGUMENTS_BAD);
	EXPECT("C_CreateObject(attribute NULL pValue, len 5)", f->C_CreateObject(srw, null_value, 2, &h),
	       CKR_ARGUMENTS_BAD, CKR_ATTRIBUTE_VALUE_INVALID);
	/* §4.1.1 rule 1: an attribute the object cannot have => CKR_ATTRIBUTE_TYPE_INVALID */
	EXPECT("C_CreateObject(unknown attribute type)", f->C_CreateObject(srw, unknown, 2, &h),
	       CKR_ATTRIBUTE_TYPE_INVALID);
	/* §4.1.1 rule 2 + gotcha: a CK_BBOOL of 4 bytes is an invalid value */
	EXPECT("C_CreateObject(CK_BBOOL of length 4)", f->C_CreateObject(srw, bool_len, 2, &h),
	       CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT);
	EXPECT("C_CreateObject(CKA_CLASS of length 4)", f->C_CreateObject(srw, class_len, 2, &h),
	       CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT, CKR_TEMPLATE_INCOMPLETE);
	EXPECT("C_CreateObject(unknown CKA_CLASS value)", f->C_CreateObject(srw, class_bad, 2, &h),
	       CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT);
	/* §5.7.1: token objects cannot be made in a R/O session */
	EXPECT("C_CreateObject(token object, R/O session)", f->C_CreateObject(sro, on_token, 2, &h),
	       CKR_SESSION_READ_ONLY);
	if (!EXPECT("C_CreateObject(session data object)", f->C_CreateObject(srw, good, 4, &dobj), CKR_OK))
		dobj = BAD_OBJECT;

	/* §5.7.4 */
	EXPECT("C_GetObjectSize(NULL)", f->C_GetObjectSize(srw, dobj, NULL), CKR_ARGUMENTS_BAD);
	EXPECT("C_GetObjectSize(garbage object)", f->C_GetObjectSize(srw, BAD_OBJECT, &len),
	       CKR_OBJECT_HANDLE_INVALID);
	EXPECT("C_GetObjectSize(CK_INVALID_HANDLE)", f->C_GetObjectSize(srw, CK_INVALID_HANDLE, &len),
	       CKR_OBJECT_HANDLE_INVALID);

	/* §5.7.5 */
	CK_ATTRIBUTE g1[] = {{CKA_VALUE, NULL, 0}};
	EXPECT("C_GetAttributeValue(NULL template, count 1)", f->C_GetAttributeValue(srw, dobj, NULL, 1),
	       CKR_ARGUMENTS_BAD);
	EXPECT("C_GetAttributeValue(garbage object)", f->C_GetAttributeValue(srw, BAD_OBJECT, g1, 1),
	       CKR_OBJECT_HANDLE_INVALID);
	if (EXPECT("C_GetAttributeValue(NULL pValue: length query)", f->C_GetAttributeValue(srw, dobj, g1, 1),
		   CKR_OK))
		CHECK("C_GetAttributeValue length query", g1[0].ulValueLen == 5, "ulValueLen %lu, want 5",
		      g1[0].ulValueLen);
	CK_BYTE small[2];
	CK_ATTRIBUTE g2[] = {{CKA_VALUE, small, sizeof small}};
	EXPECT("C_GetAttributeValue(short buffer)", f->C_GetAttributeValue(srw, dobj, g2, 1), CKR_BUFFER_TOO_SMALL);
	CHECK("C_GetAttributeValue short buffer ulValueLen", g2[0].ulValueLen == CK_UNAVAILABLE_INFORMATION,
	      "ulValueLen %lu, want CK_UNAVAILABLE_INFORMATION (§5.7.5 case 5)", g2[0].ulValueLen);
	CK_BYTE vb[16] = {0};
	CK_ATTRIBUTE g3[] = {{BAD_ATTR, vb, sizeof vb}, {CKA_VALUE, vb, sizeof vb}};
	EXPECT("C_GetAttributeValue(unknown type + CKA_VALUE)", f->C_GetAttributeValue(srw, dobj, g3, 2),
	       CKR_ATTRIBUTE_TYPE_INVALID);
	CHECK("C_GetAttributeValue unknown type ulValueLen", g3[0].ulValueLen == CK_UNAVAILABLE_INFORMATION,
	      "ulValueLen %lu, want CK_UNAVAILABLE_INFORMATION (§5.7.5 case 2)", g3[0].ulValueLen);
	CHECK("C_GetAttributeValue processes every attribute", g3[1].ulValueLen == 5 && !memcmp(vb, "hello", 5),
	      "CKA_VALUE not returned next to an invalid attribute (§5.7.5: every attribute is processed)");

	/* §5.7.6, §4.1.3 */
	CK_ATTRIBUTE s_class[] = {{CKA_CLASS, &c_secret, sizeof c_secret}};
	CK_ATTRIBUTE s_null[] = {{CKA_LABEL, NULL, 5}};
	CK_ATTRIBUTE s_unknown[] = {{BAD_ATTR, val, 5}};
	CK_ATTRIBUTE s_bool[] = {{CKA_PRIVATE, &four, sizeof four}};
	CK_ATTRIBUTE s_label[] = {{CKA_LABEL, lab, 3}};
	EXPECT("C_SetAttributeValue(garbage object)", f->C_SetAttributeValue(srw, BAD_OBJECT, s_label, 1),
	       CKR_OBJECT_HANDLE_INVALID);
	EXPECT("C_SetAttributeValue(NULL template, count 1)", f->C_SetAttributeValue(srw, dobj, NULL, 1),
	       CKR_ARGUMENTS_BAD);
	EXPECT("C_SetAttributeValue(CKA_CLASS)", f->C_SetAttributeValue(srw, dobj, s_class, 1),
	       CKR_ATTRIBUTE_READ_ONLY);
	EXPECT("C_SetAttributeValue(NULL pValue, len 5)", f->C_SetAttributeValue(srw, dobj, s_null, 1),
	       CKR_ARGUMENTS_BAD, CKR_ATTRIBUTE_VALUE_INVALID);
	EXPECT("C_SetAttributeValue(unknown type)", f->C_SetAttributeValue(srw, dobj, s_unknown, 1),
	       CKR_ATTRIBUTE_TYPE_INVALID);
	EXPECT("C_SetAttributeValue(CK_BBOOL of length 4)", f->C_SetAttributeValue(srw, dobj, s_bool, 1),
	       CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT, CKR_ATTRIBUTE_READ_ONLY);

	/* §5.7.2, §5.7.3 */
	EXPECT("C_CopyObject(garbage object)", f->C_CopyObject(srw, BAD_OBJECT, NULL, 0, &h),
	       CKR_OBJECT_HANDLE_INVALID);
	EXPECT("C_CopyObject(NULL phNewObject)", f->C_CopyObject(srw, dobj, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
	EXPECT("C_DestroyObject(garbage object)", f->C_DestroyObject(srw, BAD_OBJECT), CKR_OBJECT_HANDLE_INVALID);
	EXPECT("C_DestroyObject(CK_INVALID_HANDLE)", f->C_DestroyObject(srw, CK_INVALID_HANDLE),
	       CKR_OBJECT_HANDLE_INVALID);

	/* §5.7.7-§5.7.9 */
	CK_ATTRIBUTE fl[] = {{CKA_LABEL, lab, sizeof lab - 1}};
	EXPECT("C_FindObjects before Init", f->C_FindObjects(srw, objs, 8, &n), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_FindObjectsFinal before Init", f->C_FindObjectsFinal(srw), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_FindObjectsInit(NULL template, count 2)", f->C_FindObjectsInit(srw, NULL, 2), CKR_ARGUMENTS_BAD);
	end_ops();
	if (EXPECT("C_FindObjectsInit(label)", f->C_FindObjectsInit(srw, fl, 1), CKR_OK)) {
		EXPECT("C_FindObjectsInit while active", f->C_FindObjectsInit(srw, fl, 1), CKR_OPERATION_ACTIVE);
		EXPECT("C_FindObjects(NULL phObject)", f->C_FindObjects(srw, NULL, 8, &n), CKR_ARGUMENTS_BAD);
		EXPECT("C_FindObjects(NULL pulObjectCount)", f->C_FindObjects(srw, objs, 8, NULL), CKR_ARGUMENTS_BAD);
		n = 0;
		if (EXPECT("C_FindObjects", f->C_FindObjects(srw, objs, 8, &n), CKR_OK))
			CHECK("C_FindObjects finds the data object", n == 1 && objs[0] == dobj, "found %lu objects", n);
		EXPECT("C_FindObjectsFinal", f->C_FindObjectsFinal(srw), CKR_OK);
	}
}

static void make_keys(void)
{
	CK_MECHANISM kg = {CKM_AES_KEY_GEN, NULL, 0};
	CK_MECHANISM kpg = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE at[] = {
		{CKA_CLASS, &c_secret, sizeof c_secret}, {CKA_KEY_TYPE, &k_aes, sizeof k_aes},
		{CKA_TOKEN, &no, sizeof no},             {CKA_VALUE_LEN, &len32, sizeof len32},
		{CKA_ENCRYPT, &yes, sizeof yes},         {CKA_DECRYPT, &yes, sizeof yes},
		{CKA_WRAP, &yes, sizeof yes},            {CKA_UNWRAP, &yes, sizeof yes},
		{CKA_EXTRACTABLE, &yes, sizeof yes},     {CKA_SENSITIVE, &no, sizeof no},
	};
	CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &no, sizeof no}, {CKA_VERIFY, &yes, sizeof yes},
			      {CKA_EC_PARAMS, p256, sizeof p256}};
	CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &no, sizeof no}, {CKA_SIGN, &yes, sizeof yes},
			       {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_DERIVE, &yes, sizeof yes}};
	if (!EXPECT("setup: C_GenerateKey AES-256", f->C_GenerateKey(srw, &kg, at, 10, &aes), CKR_OK))
		aes = BAD_OBJECT;
	if (!EXPECT("setup: C_GenerateKey AES-256 (second)", f->C_GenerateKey(srw, &kg, at, 10, &aes2), CKR_OK))
		aes2 = BAD_OBJECT;
	if (!EXPECT("setup: C_GenerateKeyPair EC P-256",
		    f->C_GenerateKeyPair(srw, &kpg, pub, 3, priv, 4, &ecpub, &ecpriv), CKR_OK))
		ecpub = ecpriv = BAD_OBJECT;
}

/*
 * end_ops ends whatever operation a wrongly accepted *Init left active, so
 * that one module bug does not cascade into the following cases: a
 * single-part call with a big enough buffer always terminates (§5.8.2 ff).
 */
static void end_ops(void)
{
	CK_BYTE out[512];
	CK_ULONG len;
	CK_OBJECT_HANDLE o[4];
	len = sizeof out, f->C_Encrypt(srw, data, 32, out, &len);
	len = sizeof out, f->C_Decrypt(srw, data, 32, out, &len);
	len = sizeof out, f->C_Digest(srw, data, 32, out, &len);
	len = sizeof out, f->C_Sign(srw, data, 32, out, &len);
	f->C_Verify(srw, data, 32, out, 64);
	len = sizeof out, f->C_SignRecover(srw, data, 32, out, &len);
	len = sizeof out, f->C_VerifyRecover(srw, data, 64, out, &len);
	f->C_FindObjects(srw, o, 4, &len);
	f->C_FindObjectsFinal(srw);
}

static void t_crypto(void)
{
	CK_ULONG len, len2;
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
	CK_MECHANISM gcm_null = {CKM_AES_GCM, NULL, 0};
	CK_BYTE iv3[3] = {1, 2, 3};
	CK_MECHANISM cbc_short_iv = {CKM_AES_CBC, iv3, sizeof iv3};
	CK_MECHANISM bad = {BAD_MECH, NULL, 0};
	CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
	CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
	CK_BYTE ct[64], pt[64], sig[128], md[64];
	static const CK_BYTE abc_sha256[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

	/* Encryption, §5.8 */
	EXPECT("C_EncryptInit(NULL mechanism)", f->C_EncryptInit(srw, NULL, aes), NULL_INIT_RVS_F);
	EXPECT("C_EncryptInit(garbage key)", f->C_EncryptInit(srw, &ecb, BAD_OBJECT), CKR_KEY_HANDLE_INVALID);
	EXPECT("C_EncryptInit(unknown mechanism)", f->C_EncryptInit(srw, &bad, aes), CKR_MECHANISM_INVALID);
	EXPECT("C_EncryptInit(AES-GCM, NULL parameter)", f->C_EncryptInit(srw, &gcm_null, aes),
	       CKR_MECHANISM_PARAM_INVALID);
	EXPECT("C_EncryptInit(AES-CBC, 3-byte IV)", f->C_EncryptInit(srw, &cbc_short_iv, aes),
	       CKR_MECHANISM_PARAM_INVALID);
	EXPECT("C_EncryptInit(CKM_ECDSA, AES key)", f->C_EncryptInit(srw, &ecdsa, aes), CKR_MECHANISM_INVALID,
	       CKR_KEY_TYPE_INCONSISTENT);
	end_ops();
	len = sizeof ct;
	EXPECT("C_Encrypt before Init", f->C_Encrypt(srw, data, 32, ct, &len), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_EncryptUpdate before Init", f->C_EncryptUpdate(srw, data, 32, ct, &len),
	       CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_EncryptFinal before Init", f->C_EncryptFinal(srw, ct, &len), CKR_OPERATION_NOT_INITIALIZED);
	if (EXPECT("C_EncryptInit(AES-ECB)", f->C_EncryptInit(srw, &ecb, aes), CKR_OK)) {
		EXPECT("C_EncryptInit while active", f->C_EncryptInit(srw, &ecb, aes), CKR_OPERATION_ACTIVE);
		len = 0;
		if (EXPECT("C_Encrypt size query (NULL out)", f->C_Encrypt(srw, data, 32, NULL, &len), CKR_OK))
			CHECK("C_Encrypt size query", len == 32, "length %lu, want 32", len);
		len = 16;
		EXPECT("C_Encrypt short buffer", f->C_Encrypt(srw, data, 32, ct, &len), CKR_BUFFER_TOO_SMALL);
		CHECK("C_Encrypt short buffer sets length", len == 32, "length %lu, want 32 (§5.2)", len);
		len = sizeof ct;
		/* §5.2: CKR_BUFFER_TOO_SMALL leaves the operation active */
		EXPECT("C_Encrypt after BUFFER_TOO_SMALL", f->C_Encrypt(srw, data, 32, ct, &len), CKR_OK);
		/* §5.8.2: a successful C_Encrypt ends the operation */
		EXPECT("C_Encrypt after it finished", f->C_Encrypt(srw, data, 32, ct, &len),
		       CKR_OPERATION_NOT_INITIALIZED);
	}
	if (EXPECT("C_EncryptInit(AES-ECB) #2", f->C_EncryptInit(srw, &ecb, aes), CKR_OK)) {
		len = sizeof ct;
		EXPECT("C_Encrypt(AES-ECB, 15 bytes)", f->C_Encrypt(srw, data, 15, ct, &len), CKR_DATA_LEN_RANGE,
		       CKR_DATA_INVALID);
		/* §5.8.2: C_Encrypt always terminates the operation unless BUFFER_TOO_SMALL or a size query */
		EXPECT("C_Encrypt after a failed C_Encrypt", f->C_Encrypt(srw, data, 32, ct, &len),
		       CKR_OPERATION_NOT_INITIALIZED);
	}
	if (EXPECT("C_EncryptInit(AES-ECB) #3", f->C_EncryptInit(srw, &ecb, aes), CKR_OK)) {
		len = sizeof ct;
		EXPECT("C_Encrypt(NULL pData, len 32)", f->C_Encrypt(srw, NULL, 32, ct, &len), CKR_ARGUMENTS_BAD);
		EXPECT("C_Encrypt(NULL pulEncryptedDataLen)", f->C_Encrypt(srw, data, 32, ct, NULL),
		       CKR_ARGUMENTS_BAD, CKR_OPERATION_NOT_INITIALIZED);
		f->C_EncryptFinal(srw, ct, &len); /* end it either way */
	}
	/* Decryption, §5.9 */
	len = sizeof ct;
	if (f->C_EncryptInit(srw, &ecb, aes) == CKR_OK && f->C_Encrypt(srw, data, 32, ct, &len) == CKR_OK) {
		EXPECT("C_Decrypt before Init", f->C_Decrypt(srw, ct, 32, pt, &len2), CKR_OPERATION_NOT_INITIALIZED);
		EXPECT("C_DecryptInit(garbage key)", f->C_DecryptInit(srw, &ecb, BAD_OBJECT), CKR_KEY_HANDLE_INVALID);
		if (EXPECT("C_DecryptInit(AES-ECB)", f->C_DecryptInit(srw, &ecb, aes), CKR_OK)) {
			len2 = sizeof pt;
			EXPECT("C_Decrypt(AES-ECB, 15 bytes)", f->C_Decrypt(srw, ct, 15, pt, &len2),
			       CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_ENCRYPTED_DATA_INVALID);
		}
		if (EXPECT("C_DecryptInit(AES-ECB) #2", f->C_DecryptInit(srw, &ecb, aes), CKR_OK)) {
			len2 = 4;
			EXPECT("C_Decrypt short buffer", f->C_Decrypt(srw, ct, 32, pt, &len2), CKR_BUFFER_TOO_SMALL);
			len2 = sizeof pt;
			if (EXPECT("C_Decrypt after BUFFER_TOO_SMALL", f->C_Decrypt(srw, ct, 32, pt, &len2), CKR_OK))
				CHECK("AES-ECB round trip", len2 == 32 && !memcmp(pt, data, 32), "plaintext differs");
		}
	}
	EXPECT("C_DecryptInit(NULL mechanism)", f->C_DecryptInit(srw, NULL, aes), NULL_INIT_RVS_F);
	EXPECT("C_DecryptUpdate before Init", f->C_DecryptUpdate(srw, ct, 16, pt, &len2),
	       CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_DecryptFinal before Init", f->C_DecryptFinal(srw, pt, &len2), CKR_OPERATION_NOT_INITIALIZED);

	/* Digest, §5.10 */
	EXPECT("C_DigestInit(NULL mechanism)", f->C_DigestInit(srw, NULL), NULL_INIT_RVS_F);
	/*
	 * With a digest active: through the 2.x list a NULL mechanism is a bad
	 * argument (or, §5.1.6 orders neither, an operation already active),
	 * and the digest goes on; through a 3.x table CKR_OK must end it.
	 */
	if (EXPECT("C_DigestInit(SHA-256) before a NULL-mechanism C_DigestInit", f->C_DigestInit(srw, &sha), CKR_OK)) {
		CK_ULONG l = sizeof md;
		if (f->version.major < 3) {
			EXPECT("C_DigestInit(NULL mechanism) while digesting (2.x list)", f->C_DigestInit(srw, NULL),
			       CKR_ARGUMENTS_BAD, CKR_OPERATION_ACTIVE);
			EXPECT("C_Digest after a 2.x C_DigestInit(NULL): not cancelled", f->C_Digest(srw, data, 3, md, &l),
			       CKR_OK);
		} else if (f->C_DigestInit(srw, NULL) == CKR_OK) {
			EXPECT("C_Digest after C_DigestInit(NULL) cancelled it", f->C_Digest(srw, data, 3, md, &l),
			       CKR_OPERATION_NOT_INITIALIZED);
		}
	}
	end_ops();
	CK_RV r3 = CKR_GENERAL_ERROR;
	if (f3 && EXPECT("C_DigestInit(SHA-256) before a 3.x NULL-mechanism C_DigestInit", f->C_DigestInit(srw, &sha),
			 CKR_OK) &&
	    EXPECT("3.x table: C_DigestInit(NULL mechanism) while digesting", (r3 = f3->base.C_DigestInit(srw, NULL)),
		   NULL_INIT_RVS) &&
	    r3 == CKR_OK) {
		CK_ULONG l = sizeof md;
		EXPECT("C_Digest after a 3.x C_DigestInit(NULL) cancelled it", f->C_Digest(srw, data, 3, md, &l),
		       CKR_OPERATION_NOT_INITIALIZED);
	}
	end_ops();
	EXPECT("C_DigestInit(unknown mechanism)", f->C_DigestInit(srw, &bad), CKR_MECHANISM_INVALID);
	end_ops();
	len = sizeof md;
	EXPECT("C_Digest before Init", f->C_Digest(srw, data, 3, md, &len), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_DigestUpdate before Init", f->C_DigestUpdate(srw, data, 3), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_DigestKey before Init", f->C_DigestKey(srw, aes), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_DigestFinal before Init", f->C_DigestFinal(srw, md, &len), CKR_OPERATION_NOT_INITIALIZED);
	if (EXPECT("C_DigestInit(SHA256)", f->C_DigestInit(srw, &sha), CKR_OK)) {
		EXPECT("C_DigestInit while active", f->C_DigestInit(srw, &sha), CKR_OPERATION_ACTIVE);
		len = 0;
		if (EXPECT("C_Digest size query", f->C_Digest(srw, data, 3, NULL, &len), CKR_OK))
			CHECK("C_Digest size query", len == 32, "length %lu, want 32", len);
		len = 8;
		EXPECT("C_Digest short buffer", f->C_Digest(srw, data, 3, md, &len), CKR_BUFFER_TOO_SMALL);
		CHECK("C_Digest short buffer sets length", len == 32, "length %lu, want 32", len);
		len = sizeof md;
		if (EXPECT("C_Digest", f->C_Digest(srw, data, 3, md, &len), CKR_OK))
			CHECK("C_Digest SHA-256(\"abc\")", len == 32 && !memcmp(md, abc_sha256, 32), "wrong digest");
		EXPECT("C_Digest after it finished", f->C_Digest(srw, data, 3, md, &len),
		       CKR_OPERATION_NOT_INITIALIZED);
	}
	if (EXPECT("C_DigestInit(SHA256) #2", f->C_DigestInit(srw, &sha), CKR_OK)) {
		EXPECT("C_DigestUpdate(NULL, 5)", f->C_DigestUpdate(srw, NULL, 5), CKR_ARGUMENTS_BAD);
		f->C_DigestFinal(srw, md, &len);
	}
	if (EXPECT("C_DigestInit(SHA256) #3", f->C_DigestInit(srw, &sha), CKR_OK)) {
		EXPECT("C_DigestKey(garbage key)", f->C_DigestKey(srw, BAD_OBJECT), CKR_KEY_HANDLE_INVALID);
		len = sizeof md;
		f->C_DigestFinal(srw, md, &len);
		if (EXPECT("C_DigestInit(SHA256) #4", f->C_DigestInit(srw, &sha), CKR_OK)) {
			EXPECT("C_DigestFinal(NULL pulDigestLen)", f->C_DigestFinal(srw, md, NULL), CKR_ARGUMENTS_BAD);
			len = sizeof md;
			f->C_DigestFinal(srw, md, &len);
		}
	}

	/* Sign / verify, §5.11, §5.12 */
	CK_BYTE hash[32];
	memcpy(hash, abc_sha256, 32);
	EXPECT("C_SignInit(NULL mechanism)", f->C_SignInit(srw, NULL, ecpriv), NULL_INIT_RVS_F);
	EXPECT("C_SignInit(garbage key)", f->C_SignInit(srw, &ecdsa, BAD_OBJECT), CKR_KEY_HANDLE_INVALID);
	EXPECT("C_SignInit(CKM_ECDSA, AES key)", f->C_SignInit(srw, &ecdsa, aes), CKR_KEY_TYPE_INCONSISTENT,
	       CKR_KEY_FUNCTION_NOT_PERMITTED);
	end_ops();
	EXPECT("C_SignInit(CKM_ECDSA, public key)", f->C_SignInit(srw, &ecdsa, ecpub), CKR_KEY_TYPE_INCONSISTENT,
	       CKR_KEY_FUNCTION_NOT_PERMITTED);
	end_ops();
	len = sizeof sig;
	EXPECT("C_Sign before Init", f->C_Sign(srw, hash, 32, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_SignUpdate before Init", f->C_SignUpdate(srw, hash, 32), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_SignFinal before Init", f->C_SignFinal(srw, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	CK_ULONG siglen = 0;
	if (EXPECT("C_SignInit(CKM_ECDSA, private key)", f->C_SignInit(srw, &ecdsa, ecpriv), CKR_OK)) {
		EXPECT("C_SignInit while active", f->C_SignInit(srw, &ecdsa, ecpriv), CKR_OPERATION_ACTIVE);
		len = 0;
		if (EXPECT("C_Sign size query", f->C_Sign(srw, hash, 32, NULL, &len), CKR_OK))
			CHECK("C_Sign size query", len == 64, "length %lu, want 64", len);
		len = 10;
		EXPECT("C_Sign short buffer", f->C_Sign(srw, hash, 32, sig, &len), CKR_BUFFER_TOO_SMALL);
		CHECK("C_Sign short buffer sets length", len == 64, "length %lu, want 64", len);
		len = sizeof sig;
		if (EXPECT("C_Sign after BUFFER_TOO_SMALL", f->C_Sign(srw, hash, 32, sig, &len), CKR_OK))
			siglen = len;
		EXPECT("C_Sign after it finished", f->C_Sign(srw, hash, 32, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
	}
	EXPECT("C_Verify before Init", f->C_Verify(srw, hash, 32, sig, 64), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_VerifyUpdate before Init", f->C_VerifyUpdate(srw, hash, 32), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_VerifyFinal before Init", f->C_VerifyFinal(srw, sig, 64), CKR_OPERATION_NOT_INITIALIZED);
	EXPECT("C_VerifyInit(garbage key)", f->C_VerifyInit(srw, &ecdsa, BAD_OBJECT), CKR_KEY_HANDLE_INVALID);
	EXPECT("C_VerifyInit(NULL mechanism)", f->C_VerifyInit(srw, NULL, ecpub), NULL_INIT_RVS_F);
	end_ops();
	if (siglen == 64) {
		if (EXPECT("C_VerifyInit", f->C_VerifyInit(srw, &ecdsa, ecpub), CKR_OK))
			EXPECT("C_Verify(63-byte signature)", f->C_Verify(srw, hash, 32, sig, 63),
			       CKR_SIGNATURE_LEN_RANGE, CKR_SIGNATURE_INVALID);
		if (EXPECT("C_VerifyInit #2", f->C_VerifyInit(srw, &ecdsa, ecpub), CKR_OK))
			EXPECT("C_Verify(good signature)", f->C_Verify(srw, hash, 32, sig, 64), CKR_OK);
		sig[40] ^= 1;
		if (EXPECT("C_VerifyInit #3", f->C_VerifyInit(srw, &ecdsa, ecpub), CKR_OK))
			EXPECT("C_Verify(tampered signature)", f->C_Verify(srw, hash, 32, sig, 64),
			       CKR_SIGNATURE_INVALID);
		if (EXPECT("C_VerifyInit #4", f->C_VerifyInit(srw, &ecdsa, ecpub), CKR_OK))
			EXPECT("C_Verify(NULL signature, len 64)", f->C_Verify(srw, hash, 32, NULL, 64),
			       CKR_ARGUMENTS_BAD);
		/* §5.12.2: C_Verify always terminates the operation (it has no output to size) */
		EXPECT("C_Verify after a failed C_Verify", f->C_Verify(srw, hash, 32, sig, 64),
		       CKR_OPERATION_NOT_INITIALIZED);
		end_ops();
	}
	/* Recover variants: ECDSA has no message recovery (§5.11.6, §5.12.6; optional functions). */
	EXPECT("C_SignRecoverInit(NULL mechanism)", f->C_SignRecoverInit(srw, NULL, ecpriv), NULL_INIT_RVS_F,
	       CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_VerifyRecoverInit(NULL mechanism)", f->C_VerifyRecoverInit(srw, NULL, ecpub), NULL_INIT_RVS_F,
	       CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_SignRecoverInit(CKM_ECDSA)", f->C_SignRecoverInit(srw, &ecdsa, ecpriv), CKR_MECHANISM_INVALID,
	       CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_FUNCTION_NOT_SUPPORTED);
	end_ops();
	len = sizeof sig;
	EXPECT("C_SignRecover before Init", f->C_SignRecover(srw, hash, 32, sig, &len), CKR_OPERATION_NOT_INITIALIZED,
	       CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_VerifyRecoverInit(CKM_ECDSA)", f->C_VerifyRecoverInit(srw, &ecdsa, ecpub), CKR_MECHANISM_INVALID,
	       CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_FUNCTION_NOT_SUPPORTED);
	end_ops();
	EXPECT("C_VerifyRecover before Init", f->C_VerifyRecover(srw, sig, 64, pt, &len),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
	/* Dual-function, §5.13: the underlying operations are not active. */
	len = sizeof ct;
	EXPECT("C_DigestEncryptUpdate, nothing active", f->C_DigestEncryptUpdate(srw, data, 16, ct, &len),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_DecryptDigestUpdate, nothing active", f->C_DecryptDigestUpdate(srw, data, 16, ct, &len),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_SignEncryptUpdate, nothing active", f->C_SignEncryptUpdate(srw, data, 16, ct, &len),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_DecryptVerifyUpdate, nothing active", f->C_DecryptVerifyUpdate(srw, data, 16, ct, &len),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
}

static void t_keys(void)
{
	CK_OBJECT_HANDLE h = 0, h2 = 0;
	CK_ULONG len, seven = 7;
	CK_MECHANISM kg = {CKM_AES_KEY_GEN, NULL, 0};
	CK_MECHANISM kpg = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_MECHANISM bad = {BAD_MECH, NULL, 0};
	CK_MECHANISM wrap = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_MECHANISM ecdh = {CKM_ECDH1_DERIVE, NULL, 0};
	CK_BYTE garbage_params[] = {0x06, 0x03, 0x2a, 0x03, 0x04};
	CK_ATTRIBUTE at[] = {{CKA_TOKEN, &no, sizeof no}, {CKA_VALUE_LEN, &len32, sizeof len32}};
	CK_ATTRIBUTE at_len7[] = {{CKA_TOKEN, &no, sizeof no}, {CKA_VALUE_LEN, &seven, sizeof seven}};
	CK_ATTRIBUTE at_nolen[] = {{CKA_TOKEN, &no, sizeof no}};
	CK_ATTRIBUTE at_null[] = {{CKA_TOKEN, &no, sizeof no}, {CKA_VALUE_LEN, NULL, sizeof(CK_ULONG)}};
	CK_ATTRIBUTE at_unknown[] = {{CKA_VALUE_LEN, &len32, sizeof len32}, {BAD_ATTR, &yes, 1}};
	CK_ATTRIBUTE at_bool[] = {{CKA_VALUE_LEN, &len32, sizeof len32}, {CKA_TOKEN, &seven, sizeof seven}};
	CK_ATTRIBUTE pub_noparams[] = {{CKA_TOKEN, &no, sizeof no}};
	CK_ATTRIBUTE pub_badparams[] = {{CKA_TOKEN, &no, sizeof no}, {CKA_EC_PARAMS, garbage_params,
								       sizeof garbage_params}};
	CK_ATTRIBUTE pub_ok[] = {{CKA_TOKEN, &no, sizeof no}, {CKA_EC_PARAMS, p256, sizeof p256}};
	CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &no, sizeof no}};
	CK_ATTRIBUTE unw[] = {{CKA_CLASS, &c_secret, sizeof c_secret}, {CKA_KEY_TYPE, &k_aes, sizeof k_aes},
			      {CKA_TOKEN, &no, sizeof no}};
	(void)k_ec;

	/* §5.14.1 */
	EXPECT("C_GenerateKey(NULL mechanism)", f->C_GenerateKey(srw, NULL, at, 2, &h), CKR_ARGUMENTS_BAD);
	EXPECT("C_GenerateKey(NULL phKey)", f->C_GenerateKey(srw, &kg, at, 2, NULL), CKR_ARGUMENTS_BAD);
	EXPECT("C_GenerateKey(NULL template, count 2)", f->C_GenerateKey(srw, &kg, NULL, 2, &h), CKR_ARGUMENTS_BAD);
	EXPECT("C_GenerateKey(unknown mechanism)", f->C_GenerateKey(srw, &bad, at, 2, &h), CKR_MECHANISM_INVALID);
	EXPECT("C_GenerateKey(AES, CKA_VALUE_LEN 7)", f->C_GenerateKey(srw, &kg, at_len7, 2, &h),
	       CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT, CKR_KEY_SIZE_RANGE);
	EXPECT("C_GenerateKey(AES, no CKA_VALUE_LEN)", f->C_GenerateKey(srw, &kg, at_nolen, 1, &h),
	       CKR_TEMPLATE_INCOMPLETE);
	EXPECT("C_GenerateKey(attribute NULL pValue)", f->C_GenerateKey(srw, &kg, at_null, 2, &h),
	       CKR_ARGUMENTS_BAD, CKR_ATTRIBUTE_VALUE_INVALID);
	EXPECT("C_GenerateKey(unknown attribute type)", f->C_GenerateKey(srw, &kg, at_unknown, 2, &h),
	       CKR_ATTRIBUTE_TYPE_INVALID);
	EXPECT("C_GenerateKey(CK_BBOOL of length 8)", f->C_GenerateKey(srw, &kg, at_bool, 2, &h),
	       CKR_ATTRIBUTE_VALUE_INVALID, CKR_TEMPLATE_INCONSISTENT);
	/* §5.14.2 */
	EXPECT("C_GenerateKeyPair(NULL phPublicKey)",
	       f->C_GenerateKeyPair(srw, &kpg, pub_ok, 2, priv, 1, NULL, &h2), CKR_ARGUMENTS_BAD);
	EXPECT("C_GenerateKeyPair(NULL mechanism)", f->C_GenerateKeyPair(srw, NULL, pub_ok, 2, priv, 1, &h, &h2),
	       CKR_ARGUMENTS_BAD);
	EXPECT("C_GenerateKeyPair(EC, no CKA_EC_PARAMS)",
	       f->C_GenerateKeyPair(srw, &kpg, pub_noparams, 1, priv, 1, &h, &h2), CKR_TEMPLATE_INCOMPLETE);
	EXPECT("C_GenerateKeyPair(EC, unknown curve OID)",
	       f->C_GenerateKeyPair(srw, &kpg, pub_badparams, 2, priv, 1, &h, &h2), CKR_ATTRIBUTE_VALUE_INVALID,
	       CKR_CURVE_NOT_SUPPORTED, CKR_DOMAIN_PARAMS_INVALID, CKR_TEMPLATE_INCONSISTENT);
	/* §5.14.3-5: handle checks need a mechanism the token has (else CKR_MECHANISM_INVALID applies too). */
	CK_MECHANISM_INFO mi;
	int has_wrap = f->C_GetMechanismInfo(slot, CKM_AES_KEY_WRAP, &mi) == CKR_OK;
	int has_ecdh = f->C_GetMechanismInfo(slot, CKM_ECDH1_DERIVE, &mi) == CKR_OK;
	if (!has_wrap)
		printf("note: no CKM_AES_KEY_WRAP on the token; C_WrapKey/C_UnwrapKey handle cases skipped\n");
	if (!has_ecdh)
		printf("note: no CKM_ECDH1_DERIVE on the token; C_DeriveKey handle cases skipped\n");
	len = sizeof buf;
	EXPECT("C_WrapKey(NULL mechanism)", f->C_WrapKey(srw, NULL, aes, aes2, buf, &len), CKR_ARGUMENTS_BAD);
	if (has_wrap) {
		EXPECT("C_WrapKey(garbage wrapping key)", f->C_WrapKey(srw, &wrap, BAD_OBJECT, aes2, buf, &len),
		       CKR_WRAPPING_KEY_HANDLE_INVALID);
		EXPECT("C_WrapKey(garbage key)", f->C_WrapKey(srw, &wrap, aes, BAD_OBJECT, buf, &len),
		       CKR_KEY_HANDLE_INVALID);
		EXPECT("C_WrapKey(NULL pulWrappedKeyLen)", f->C_WrapKey(srw, &wrap, aes, aes2, buf, NULL), CKR_ARGUMENTS_BAD);
		len = 0;
		CK_ULONG wlen = 0;
		if (EXPECT("C_WrapKey size query", f->C_WrapKey(srw, &wrap, aes, aes2, NULL, &len), CKR_OK)) {
			CHECK("C_WrapKey size query", len == 40, "length %lu, want 40 (RFC 3394 of 32 bytes)", len);
			len = 8;
			EXPECT("C_WrapKey short buffer", f->C_WrapKey(srw, &wrap, aes, aes2, buf, &len), CKR_BUFFER_TOO_SMALL);
			CHECK("C_WrapKey short buffer sets length", len == 40, "length %lu, want 40", len);
			len = sizeof buf;
			if (EXPECT("C_WrapKey", f->C_WrapKey(srw, &wrap, aes, aes2, buf, &len), CKR_OK))
				wlen = len;
	}
	/* §5.14.4 */
	EXPECT("C_UnwrapKey(garbage unwrapping key)",
	       f->C_UnwrapKey(srw, &wrap, BAD_OBJECT, buf, 40, unw, 3, &h), CKR_UNWRAPPING_KEY_HANDLE_INVALID);
	EXPECT("C_UnwrapKey(NULL phKey)", f->C_UnwrapKey(srw, &wrap, aes, buf, 40, unw, 3, NULL), CKR_ARGUMENTS_BAD);
	EXPECT("C_UnwrapKey(NULL wrapped key, len 40)", f->C_UnwrapKey(srw, &wrap, aes, NULL, 40, unw, 3, &h),
	       CKR_ARGUMENTS_BAD);
	EXPECT("C_UnwrapKey(7-byte wrapped key)", f->C_UnwrapKey(srw, &wrap, aes, buf, 7, unw, 3, &h),
	       CKR_WRAPPED_KEY_LEN_RANGE, CKR_WRAPPED_KEY_INVALID);
	if (wlen == 40) {
		if (EXPECT("C_UnwrapKey", f->C_UnwrapKey(srw, &wrap, aes, buf, 40, unw, 3, &h), CKR_OK))
			f->C_DestroyObject(srw, h);
		buf[5] ^= 1;
		EXPECT("C_UnwrapKey(tampered)", f->C_UnwrapKey(srw, &wrap, aes, buf, 40, unw, 3, &h),
		       CKR_WRAPPED_KEY_INVALID, CKR_ENCRYPTED_DATA_INVALID);
	}
	}
	/* §5.14.5 */
	EXPECT("C_DeriveKey(NULL mechanism)", f->C_DeriveKey(srw, NULL, ecpriv, unw, 3, &h), CKR_ARGUMENTS_BAD);
	if (has_ecdh) {
		EXPECT("C_DeriveKey(garbage base key)", f->C_DeriveKey(srw, &ecdh, BAD_OBJECT, unw, 3, &h),
		       CKR_KEY_HANDLE_INVALID, CKR_MECHANISM_PARAM_INVALID);
		EXPECT("C_DeriveKey(ECDH1, NULL parameter)", f->C_DeriveKey(srw, &ecdh, ecpriv, unw, 3, &h),
		       CKR_MECHANISM_PARAM_INVALID);
	}
	/* §5.15 */
	EXPECT("C_GenerateRandom(NULL, 16)", f->C_GenerateRandom(srw, NULL, 16), CKR_ARGUMENTS_BAD);
	EXPECT("C_GenerateRandom(len 0)", f->C_GenerateRandom(srw, buf, 0), CKR_OK);
	EXPECT("C_SeedRandom(NULL, 16)", f->C_SeedRandom(srw, NULL, 16), CKR_ARGUMENTS_BAD,
	       CKR_RANDOM_SEED_NOT_SUPPORTED);
}

/* 3.0 message API on a real session: nothing initialised (v3.0 §5.13ff). */
static void t_v3_session(void)
{
	CK_ULONG len = sizeof buf;
	CK_MECHANISM gcm_null = {CKM_AES_GCM, NULL, 0};
	if (!f3)
		return;
	EXPECT("C_MessageEncryptInit(NULL mechanism)", f3->C_MessageEncryptInit(srw, NULL, aes), NULL_INIT_RVS,
	       CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_MessageEncryptInit(garbage key)", f3->C_MessageEncryptInit(srw, &gcm_null, BAD_OBJECT),
	       CKR_KEY_HANDLE_INVALID, CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_EncryptMessage before Init", f3->C_EncryptMessage(srw, buf, 12, data, 4, data, 16, buf, &len),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_MessageEncryptFinal before Init", f3->C_MessageEncryptFinal(srw), CKR_OPERATION_NOT_INITIALIZED,
	       CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_DecryptMessage before Init", f3->C_DecryptMessage(srw, buf, 12, data, 4, data, 16, buf, &len),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_MessageDecryptFinal before Init", f3->C_MessageDecryptFinal(srw), CKR_OPERATION_NOT_INITIALIZED,
	       CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_SignMessage before Init", f3->C_SignMessage(srw, NULL, 0, data, 16, buf, &len),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_MessageSignFinal before Init", f3->C_MessageSignFinal(srw), CKR_OPERATION_NOT_INITIALIZED,
	       CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_VerifyMessage before Init", f3->C_VerifyMessage(srw, NULL, 0, data, 16, buf, 64),
	       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
	EXPECT("C_MessageVerifyFinal before Init", f3->C_MessageVerifyFinal(srw), CKR_OPERATION_NOT_INITIALIZED,
	       CKR_FUNCTION_NOT_SUPPORTED);
	{
		CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
		EXPECT("C_MessageSignInit(NULL mechanism)", f3->C_MessageSignInit(srw, NULL, 0), NULL_INIT_RVS,
		       CKR_FUNCTION_NOT_SUPPORTED);
		EXPECT("C_MessageSignInit(garbage key)", f3->C_MessageSignInit(srw, &ecdsa, BAD_OBJECT),
		       CKR_KEY_HANDLE_INVALID, CKR_FUNCTION_NOT_SUPPORTED);
		EXPECT("C_MessageVerifyInit(garbage key)", f3->C_MessageVerifyInit(srw, &ecdsa, BAD_OBJECT),
		       CKR_KEY_HANDLE_INVALID, CKR_FUNCTION_NOT_SUPPORTED);
		EXPECT("C_SignMessageBegin before Init", f3->C_SignMessageBegin(srw, NULL, 0),
		       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
		EXPECT("C_SignMessageNext before Init", f3->C_SignMessageNext(srw, NULL, 0, data, 16, buf, &len),
		       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
		EXPECT("C_SignMessage(NULL pulSignatureLen)", f3->C_SignMessage(srw, NULL, 0, data, 16, buf, NULL),
		       CKR_ARGUMENTS_BAD, CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
		EXPECT("C_VerifyMessageBegin before Init", f3->C_VerifyMessageBegin(srw, NULL, 0),
		       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
		EXPECT("C_VerifyMessageNext before Init", f3->C_VerifyMessageNext(srw, NULL, 0, data, 16, NULL, 0),
		       CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
		EXPECT("C_VerifyMessage(NULL data, length)", f3->C_VerifyMessage(srw, NULL, 0, NULL, 16, buf, 64),
		       CKR_ARGUMENTS_BAD, CKR_OPERATION_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED);
	}
	EXPECT("C_LoginUser(bad user type)", f3->C_LoginUser(srw, 7, (CK_UTF8CHAR *)pin, strlen(pin),
							       (CK_UTF8CHAR *)"u", 1), CKR_USER_TYPE_INVALID,
	       CKR_USER_ALREADY_LOGGED_IN, CKR_FUNCTION_NOT_SUPPORTED);
}

/* Interfaces (v3.0 §5.4.4 C_GetInterfaceList, §5.4.5 C_GetInterface); callable before C_Initialize. */
static void t_interfaces(void)
{
	CK_ULONG n = 0, n2 = 0;
	IFACE list[16], *pi = NULL;
	CK_VERSION v99 = {9, 9};
	if (!getIfaceList || !getIface) {
		printf("note: module has no C_GetInterfaceList/C_GetInterface (PKCS#11 2.x only)\n");
		return;
	}
	EXPECT("C_GetInterfaceList(NULL, NULL)", getIfaceList(NULL, NULL), CKR_ARGUMENTS_BAD);
	if (!EXPECT("C_GetInterfaceList size query", getIfaceList(NULL, &n), CKR_OK) || n == 0 || n > 16) {
		CHECK("C_GetInterfaceList count", n >= 1 && n <= 16, "count %lu", n);
		return;
	}
	n2 = 0;
	EXPECT("C_GetInterfaceList short buffer", getIfaceList(list, &n2), CKR_BUFFER_TOO_SMALL);
	CHECK("C_GetInterfaceList short buffer sets count", n2 == n, "count %lu, want %lu", n2, n);
	n2 = 16;
	if (EXPECT("C_GetInterfaceList", getIfaceList(list, &n2), CKR_OK)) {
		int found = 0;
		for (CK_ULONG i = 0; i < n2; i++)
			if (list[i].pInterfaceName && !strcmp((char *)list[i].pInterfaceName, "PKCS 11"))
				found = 1;
		CHECK("C_GetInterfaceList has \"PKCS 11\"", found, "no interface named \"PKCS 11\"");
	}
	EXPECT("C_GetInterface(NULL ppInterface)", getIface(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
	EXPECT("C_GetInterface(unknown name)", getIface((CK_UTF8CHAR *)"No Such Interface", NULL, &pi, 0),
	       CKR_ARGUMENTS_BAD, CKR_FUNCTION_FAILED);
	EXPECT("C_GetInterface(\"PKCS 11\", version 9.9)", getIface((CK_UTF8CHAR *)"PKCS 11", &v99, &pi, 0),
	       CKR_ARGUMENTS_BAD, CKR_FUNCTION_FAILED);
	pi = NULL;
	if (EXPECT("C_GetInterface(default)", getIface(NULL, NULL, &pi, 0), CKR_OK))
		CHECK("C_GetInterface(default) result", pi && pi->pFunctionList, "NULL interface or function list");
	pi = NULL;
	if (EXPECT("C_GetInterface(\"PKCS 11\")", getIface((CK_UTF8CHAR *)"PKCS 11", NULL, &pi, 0), CKR_OK) && pi &&
	    pi->pFunctionList) {
		CK_VERSION *v = (CK_VERSION *)pi->pFunctionList;
		if (v->major >= 3) {
			FL30 *l = (FL30 *)pi->pFunctionList;
			void **p = (void **)&l->base.C_Initialize;
			int nulls = 0;
			for (size_t i = 0; i < (sizeof *l - offsetof(FL30, base.C_Initialize)) / sizeof(void *); i++)
				if (!p[i])
					nulls++;
			CHECK("3.0 function list has no NULL entry", nulls == 0, "%d NULL entry points", nulls);
			if (nulls == 0)
				f3 = l;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s <module.so> <user PIN> [<SO PIN>]\n", argv[0]);
		return 2;
	}
	pin = argv[2];
	sopin = argc > 3 ? argv[3] : NULL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Before dlopen: a Go runtime in the module chains to handlers that exist when it starts. */
	signal(SIGSEGV, on_signal);
	signal(SIGBUS, on_signal);
	signal(SIGILL, on_signal);
	signal(SIGFPE, on_signal);
	signal(SIGABRT, on_signal);
	signal(SIGALRM, on_signal);

	current = "dlopen";
	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "sweep: dlopen: %s\n", dlerror());
		return 2;
	}
	CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	getIfaceList = (GetInterfaceList_fn)dlsym(lib, "C_GetInterfaceList");
	getIface = (GetInterface_fn)dlsym(lib, "C_GetInterface");
	if (!gfl) {
		fprintf(stderr, "sweep: no C_GetFunctionList symbol\n");
		return 2;
	}
	/* §5.4.4 */
	EXPECT("C_GetFunctionList(NULL)", gfl(NULL), CKR_ARGUMENTS_BAD);
	if (!EXPECT("C_GetFunctionList", gfl(&f), CKR_OK) || !f) {
		fprintf(stderr, "sweep: no function list\n");
		return 2;
	}
	{
		void **p = (void **)&f->C_Initialize;
		int nulls = 0;
		for (size_t i = 0; i < (sizeof *f - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void *); i++)
			if (!p[i]) {
				nulls++;
				mismatch("function list entry %zu is NULL", i);
			}
		if (nulls) {
			printf("sweep: %d cases, %d mismatches (stopped: NULL entry points)\n", ncases, nmismatch);
			return 1;
		}
		printf("function list version %d.%d\n", f->version.major, f->version.minor);
	}
	t_interfaces();

	/* Before C_Initialize (§5.1.6 CKR_CRYPTOKI_NOT_INITIALIZED). */
	badslot = 0x7eadbeefUL;
	sweep_all("before C_Initialize", 1, 0);
	sweep_all("before C_Initialize, NULL pointers", 1, 1);
	/* §5.4.1: pReserved must be NULL; the mutex functions all or none. A refused C_Initialize initialises nothing. */
	CK_C_INITIALIZE_ARGS args;
	CK_INFO info;
	memset(&args, 0, sizeof args);
	args.pReserved = buf;
	if (!EXPECT("C_Initialize(pReserved non-NULL)", f->C_Initialize(&args), CKR_ARGUMENTS_BAD) &&
	    f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED)
		f->C_Finalize(NULL);
	memset(&args, 0, sizeof args);
	args.CreateMutex = (CK_CREATEMUTEX)(void *)on_signal; /* never called: the others are NULL */
	if (!EXPECT("C_Initialize(some mutex functions NULL)", f->C_Initialize(&args), CKR_ARGUMENTS_BAD) &&
	    f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED)
		f->C_Finalize(NULL);
	EXPECT("C_GetInfo after refused C_Initialize", f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);

	memset(&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	if (!EXPECT("C_Initialize(CKF_OS_LOCKING_OK)", f->C_Initialize(&args), CKR_OK)) {
		fprintf(stderr, "sweep: C_Initialize failed; stopping\n");
		return 2;
	}
	if (!find_slots())
		return 2;
	t_general();
	sweep_all("garbage handles", 0, 0);
	sweep_all("garbage handles, NULL pointers", 0, 1);
	t_slots();
	t_sessions();
	t_objects();
	make_keys();
	t_crypto();
	t_keys();
	t_v3_session();

	/* §5.6.2: closing a session destroys its session objects and invalidates its handle. */
	EXPECT("C_CloseSession(R/O)", f->C_CloseSession(sro), CKR_OK);
	EXPECT("C_CloseSession(R/O) again", f->C_CloseSession(sro), CKR_SESSION_HANDLE_INVALID);
	CK_SESSION_INFO ssi;
	EXPECT("C_GetSessionInfo(closed session)", f->C_GetSessionInfo(sro, &ssi), CKR_SESSION_HANDLE_INVALID);
	EXPECT("C_CloseSession(R/W)", f->C_CloseSession(srw), CKR_OK);
	CK_SESSION_HANDLE s2;
	if (EXPECT("C_OpenSession after closing all", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2),
		   CKR_OK)) {
		CK_ATTRIBUTE g[] = {{CKA_CLASS, NULL, 0}};
		if (EXPECT("C_GetSessionInfo: login ends with the last session",
			   f->C_GetSessionInfo(s2, &ssi), CKR_OK))
			CHECK("session state after all sessions closed", ssi.state == CKS_RO_PUBLIC_SESSION,
			      "state %lu, want CKS_RO_PUBLIC_SESSION (§5.6.7: logout when the last session closes)",
			      ssi.state);
		EXPECT("session object gone with its session", f->C_GetAttributeValue(s2, dobj, g, 1),
		       CKR_OBJECT_HANDLE_INVALID);
	}
	EXPECT("C_CloseAllSessions", f->C_CloseAllSessions(slot), CKR_OK);

	/* §5.4.2 and after: C_Finalize, then everything is NOT_INITIALIZED again. */
	if (!EXPECT("C_Finalize", f->C_Finalize(NULL), CKR_OK))
		return 1;
	sweep_all("after C_Finalize", 1, 0);
	/* §5.4.1: the library can be initialised again in the same process. */
	CK_TOKEN_INFO ti;
	if (EXPECT("C_Initialize after C_Finalize", f->C_Initialize(NULL), CKR_OK)) {
		if (EXPECT("C_GetTokenInfo after re-init", f->C_GetTokenInfo(slot, &ti), CKR_OK))
			CHECK("token still initialised after re-init", ti.flags & CKF_TOKEN_INITIALIZED,
			      "flags 0x%lx", ti.flags);
		if (EXPECT("C_OpenSession after re-init",
			   f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2), CKR_OK)) {
			EXPECT("C_Login after re-init", f->C_Login(s2, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)),
			       CKR_OK);
			EXPECT("C_Finalize with a session open", f->C_Finalize(NULL), CKR_OK);
		}
	}
	current = "done";
	printf("sweep: %d cases, %d mismatches\n", ncases, nmismatch);
	return nmismatch ? 1 : 0;
}
