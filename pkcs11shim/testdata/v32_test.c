/*
 * PKCS#11 3.2 through the real engine, driven by abi_test.go: find the 3.2
 * table with C_GetInterface, agree on a key with ML-KEM-768
 * (C_EncapsulateKey / C_DecapsulateKey), then encrypt and decrypt with the
 * 3.0 message API, the token generating the IVs. Usage: v32_test module.so
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "pkcs11.h"

#define CKR_OK 0x0UL
#define CKR_ENCRYPTED_DATA_INVALID 0x40UL
#define CKR_OPERATION_NOT_INITIALIZED 0x91UL
#define CKR_BUFFER_TOO_SMALL 0x150UL
#define CKF_RW_SESSION 0x2UL
#define CKF_SERIAL_SESSION 0x4UL
#define CKF_TOKEN_INITIALIZED 0x400UL
#define CKU_SO 0x0UL
#define CKU_USER 0x1UL
#define CKA_CLASS 0x0UL
#define CKA_VALUE 0x11UL
#define CKA_KEY_TYPE 0x100UL
#define CKA_SENSITIVE 0x103UL
#define CKA_ENCRYPT 0x104UL
#define CKA_DECRYPT 0x105UL
#define CKA_VALUE_LEN 0x161UL
#define CKA_PARAMETER_SET 0x61DUL
#define CKO_SECRET_KEY 0x4UL
#define CKK_AES 0x1FUL
#define CKM_ML_KEM_KEY_PAIR_GEN 0xFUL
#define CKM_ML_KEM 0x17UL
#define CKM_AES_GCM 0x1087UL
#define CKP_ML_KEM_768 0x2UL
#define CKG_GENERATE_COUNTER 0x2UL
#define CKF_END_OF_MESSAGE 0x1UL

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

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		printf("FAIL dlopen: %s\n", dlerror());
		return 1;
	}
	CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	CK_VERSION v32 = {3, 2};
	CK_INTERFACE_PTR it = NULL;
	if (gi == NULL || gi((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &it, 0) != CKR_OK) {
		printf("FAIL C_GetInterface 3.2\n");
		return 1;
	}
	CK_FUNCTION_LIST_3_2 *f = it->pFunctionList;
	CHECK(f->version.major == 3 && f->version.minor == 2, "version %d.%d", f->version.major, f->version.minor);
	RV(f->C_Initialize(NULL), CKR_OK);

	CK_SLOT_ID slot = 0;
	CK_ULONG n = 1;
	RV(f->C_GetSlotList(0, &slot, &n), CKR_OK);
	CK_TOKEN_INFO ti;
	RV(f->C_GetTokenInfo(slot, &ti), CKR_OK);
	CK_UTF8CHAR label[32];
	memset(label, ' ', sizeof(label));
	memcpy(label, "v32", 3);
	if (!(ti.flags & CKF_TOKEN_INITIALIZED))
		RV(f->C_InitToken(slot, (CK_UTF8CHAR_PTR) "so-pin-1", 8, label), CKR_OK);
	CK_SESSION_HANDLE s = 0;
	RV(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
	RV(f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR) "so-pin-1", 8), CKR_OK);
	RV(f->C_InitPIN(s, (CK_UTF8CHAR_PTR) "user-pin", 8), CKR_OK);
	RV(f->C_Logout(s), CKR_OK);
	RV(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "user-pin", 8), CKR_OK);

	/* ML-KEM-768 pair, then both sides of the KEM. */
	CK_ULONG set = CKP_ML_KEM_768;
	CK_ATTRIBUTE pubT[] = {{CKA_PARAMETER_SET, &set, sizeof(set)}};
	CK_MECHANISM gen = {CKM_ML_KEM_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE pub = 0, priv = 0;
	RV(f->C_GenerateKeyPair(s, &gen, pubT, 1, NULL, 0, &pub, &priv), CKR_OK);

	CK_ULONG cls = CKO_SECRET_KEY, kt = CKK_AES, len32 = 32;
	CK_BBOOL no = 0, yes = 1;
	CK_ATTRIBUTE keyT[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}, {CKA_VALUE_LEN, &len32, sizeof(len32)},
		{CKA_SENSITIVE, &no, sizeof(no)}, {CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1},
	};
	CK_MECHANISM kem = {CKM_ML_KEM, NULL, 0};
	CK_BYTE ct[2048];
	CK_ULONG ctLen = 0;
	CK_OBJECT_HANDLE k1 = 0, k2 = 0;
	RV(f->C_EncapsulateKey(s, &kem, pub, keyT, 6, NULL, &ctLen, &k1), CKR_OK);
	CHECK(ctLen == 1088 && k1 == 0, "size query: %lu bytes, handle %lu", ctLen, k1);
	ctLen = 1000;
	RV(f->C_EncapsulateKey(s, &kem, pub, keyT, 6, ct, &ctLen, &k1), CKR_BUFFER_TOO_SMALL);
	CHECK(ctLen == 1088 && k1 == 0, "too small: %lu bytes, handle %lu", ctLen, k1);
	ctLen = sizeof(ct);
	RV(f->C_EncapsulateKey(s, &kem, pub, keyT, 6, ct, &ctLen, &k1), CKR_OK);
	CHECK(ctLen == 1088 && k1 != 0, "encapsulate: %lu bytes, handle %lu", ctLen, k1);
	RV(f->C_DecapsulateKey(s, &kem, priv, keyT, 6, ct, ctLen, &k2), CKR_OK);
	CK_BYTE v1[32], v2[32];
	CK_ATTRIBUTE g1 = {CKA_VALUE, v1, sizeof(v1)}, g2 = {CKA_VALUE, v2, sizeof(v2)};
	RV(f->C_GetAttributeValue(s, k1, &g1, 1), CKR_OK);
	RV(f->C_GetAttributeValue(s, k2, &g2, 1), CKR_OK);
	CHECK(g1.ulValueLen == 32 && g2.ulValueLen == 32 && memcmp(v1, v2, 32) == 0, "the two sides disagree");

	/* Message API: encrypt with one side's key, IVs from the token. */
	CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
	RV(f->C_MessageEncryptInit(s, &gcm, k1), CKR_OK);
	RV(f->C_MessageDecryptInit(s, &gcm, k2), CKR_OK);
	CK_BYTE iv[2][12], tag[2][16], out[2][64];
	CK_ULONG outLen[2];
	const char *msg[2] = {"first message", "second message!"};
	for (int i = 0; i < 2; i++) {
		memset(iv[i], 0x11, 12); /* the first 4 bytes are the caller's fixed field */
		memset(tag[i], 0, 16);
		CK_GCM_MESSAGE_PARAMS p = {iv[i], 12, 32, CKG_GENERATE_COUNTER, tag[i], 128};
		outLen[i] = sizeof(out[i]);
		RV(f->C_EncryptMessage(s, &p, sizeof(p), (CK_BYTE_PTR) "aad", 3, (CK_BYTE_PTR)msg[i], strlen(msg[i]), out[i], &outLen[i]), CKR_OK);
		CHECK(outLen[i] == strlen(msg[i]), "ciphertext length %lu", outLen[i]);
	}
	CHECK(memcmp(iv[0], iv[1], 12) != 0, "IV repeated");
	CHECK(memcmp(iv[0], "\x11\x11\x11\x11", 4) == 0 && iv[0][11] == 0 && iv[1][11] == 1, "counter IVs %02x..%02x, %02x",
	      iv[0][0], iv[0][11], iv[1][11]);
	CHECK(memcmp(tag[0], "\0\0\0\0\0\0\0\0", 8) != 0, "tag not returned");
	for (int i = 0; i < 2; i++) {
		CK_GCM_MESSAGE_PARAMS p = {iv[i], 12, 0, 0, tag[i], 128};
		CK_BYTE pt[64];
		CK_ULONG ptLen = sizeof(pt);
		RV(f->C_DecryptMessage(s, &p, sizeof(p), (CK_BYTE_PTR) "aad", 3, out[i], outLen[i], pt, &ptLen), CKR_OK);
		CHECK(ptLen == strlen(msg[i]) && memcmp(pt, msg[i], ptLen) == 0, "message %d differs", i);
	}
	tag[1][0] ^= 1;
	CK_GCM_MESSAGE_PARAMS bad = {iv[1], 12, 0, 0, tag[1], 128};
	CK_BYTE pt[64];
	CK_ULONG ptLen = sizeof(pt);
	RV(f->C_DecryptMessage(s, &bad, sizeof(bad), (CK_BYTE_PTR) "aad", 3, out[1], outLen[1], pt, &ptLen), CKR_ENCRYPTED_DATA_INVALID);

	/* Multi-part, then the NULL-mechanism init that ends the process. */
	CK_BYTE miv[12] = {0}, mtag[16];
	CK_GCM_MESSAGE_PARAMS mp = {miv, 12, 0, CKG_GENERATE_COUNTER, mtag, 128};
	RV(f->C_EncryptMessageBegin(s, &mp, sizeof(mp), NULL, 0), CKR_OK);
	CHECK(miv[11] == 2, "Begin returned IV %02x", miv[11]);
	CK_BYTE part[32];
	CK_ULONG partLen = sizeof(part);
	RV(f->C_EncryptMessageNext(s, &mp, sizeof(mp), (CK_BYTE_PTR) "abc", 3, part, &partLen, 0), CKR_OK);
	CHECK(partLen == 0, "intermediate part output %lu", partLen);
	partLen = 2;
	RV(f->C_EncryptMessageNext(s, &mp, sizeof(mp), (CK_BYTE_PTR) "def", 3, part, &partLen, CKF_END_OF_MESSAGE), CKR_BUFFER_TOO_SMALL);
	CHECK(partLen == 6, "last part needs %lu", partLen);
	partLen = sizeof(part);
	RV(f->C_EncryptMessageNext(s, &mp, sizeof(mp), (CK_BYTE_PTR) "def", 3, part, &partLen, CKF_END_OF_MESSAGE), CKR_OK);
	CK_GCM_MESSAGE_PARAMS dp = {miv, 12, 0, 0, mtag, 128};
	ptLen = sizeof(pt);
	RV(f->C_DecryptMessage(s, &dp, sizeof(dp), NULL, 0, part, partLen, pt, &ptLen), CKR_OK);
	CHECK(ptLen == 6 && memcmp(pt, "abcdef", 6) == 0, "multi-part round trip");
	RV(f->C_MessageEncryptInit(s, NULL, 0), CKR_OK);
	ptLen = sizeof(pt);
	RV(f->C_EncryptMessage(s, &mp, sizeof(mp), NULL, 0, (CK_BYTE_PTR) "x", 1, pt, &ptLen), CKR_OPERATION_NOT_INITIALIZED);
	RV(f->C_MessageDecryptFinal(s), CKR_OK);

	RV(f->C_Finalize(NULL), CKR_OK);
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
