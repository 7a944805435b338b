/*
 * chost: a C host for the module, to measure it without a second Go runtime
 * in the process (bench/ drives modules from Go through miekg/pkcs11, so the
 * host's runtime and the module's share the machine). One session per
 * thread, each signing (or encapsulating) in a loop for SECONDS; prints ops/s
 * per thread count.
 *
 *   chost MODULE PIN OP SECONDS MAXTHREADS
 *   OP: ed25519 | mldsa65 | ecdsa-p256 | mlkem768
 *
 * mlkem768 times C_EncapsulateKey (from the 3.2 function list) to a session
 * AES-256 key plus the C_DestroyObject of that key, as bench/'s
 * mlkem768-encaps op does.
 *
 * The token in the first slot must be initialised with PIN as user PIN.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <p11-kit-1/p11-kit/pkcs11.h>
#include "kem.h"

#define CKM_EC_EDWARDS_KEY_PAIR_GEN_ 0x1055UL
#define CKM_EDDSA_ 0x1057UL
#define CKM_ML_DSA_KEY_PAIR_GEN_ 0x1cUL
#define CKM_ML_DSA_ 0x1dUL
#define CKA_PARAMETER_SET_ 0x61dUL
#define CKP_ML_DSA_65_ 2UL
#define CKM_ML_KEM_KEY_PAIR_GEN_ 0xfUL
#define CKM_ML_KEM_ 0x17UL
#define CKA_ENCAPSULATE_ 0x633UL
#define CKA_DECAPSULATE_ 0x634UL
#define CKP_ML_KEM_768_ 2UL

static CK_FUNCTION_LIST_PTR f;
static CK_OBJECT_HANDLE key;
static CK_SLOT_ID slot;
static CK_MECHANISM sign_mech;
static CK_ULONG msg_len;
static bk_flist32 *f32; /* the 3.2 list, for mlkem768 */
static volatile int stop;
static long counts[64];

static void die(const char *what, CK_RV rv)
{
	fprintf(stderr, "chost: %s: CK_RV 0x%lx\n", what, rv);
	exit(1);
}

static void *worker(void *arg)
{
	long id = (long)arg;
	CK_SESSION_HANDLE s;
	CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK)
		die("C_OpenSession", rv);
	CK_BYTE msg[64] = {1}, sig[8192];
	if (f32) {
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_ULONG len = 32;
		CK_BBOOL no = CK_FALSE;
		bk_attr tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
			{CKA_VALUE_LEN, &len, sizeof len}, {CKA_TOKEN, &no, 1}};
		while (!stop) {
			bk_ulong n = sizeof sig, k;
			if ((rv = bk_encapsulate(f32, s, CKM_ML_KEM_, key, tmpl, 4, sig, &n, &k)) != CKR_OK)
				die("C_EncapsulateKey", rv);
			if ((rv = f->C_DestroyObject(s, k)) != CKR_OK)
				die("C_DestroyObject", rv);
			counts[id]++;
		}
		f->C_CloseSession(s);
		return NULL;
	}
	while (!stop) {
		CK_ULONG n = sizeof sig;
		if ((rv = f->C_SignInit(s, &sign_mech, key)) != CKR_OK)
			die("C_SignInit", rv);
		if ((rv = f->C_Sign(s, msg, msg_len, sig, &n)) != CKR_OK)
			die("C_Sign", rv);
		counts[id]++;
	}
	f->C_CloseSession(s);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: chost MODULE PIN OP SECONDS MAXTHREADS\n");
		return 2;
	}
	const char *op = argv[3];
	int secs = atoi(argv[4]), maxt = atoi(argv[5]);
	if (secs < 1 || maxt < 1 || maxt > 64)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h) {
		fprintf(stderr, "chost: %s\n", dlerror());
		return 1;
	}
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR) = dlsym(h, "C_GetFunctionList");
	CK_RV rv;
	if (!gfl || (rv = gfl(&f)) != CKR_OK || (rv = f->C_Initialize(NULL)) != CKR_OK)
		die("C_Initialize", 0);
	CK_SLOT_ID slots[16];
	CK_ULONG ns = 16;
	if ((rv = f->C_GetSlotList(CK_TRUE, slots, &ns)) != CKR_OK || ns == 0)
		die("C_GetSlotList", rv);
	slot = slots[0];
	CK_SESSION_HANDLE s;
	if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)) != CKR_OK)
		die("C_OpenSession", rv);
	if ((rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[2], strlen(argv[2]))) != CKR_OK)
		die("C_Login", rv);
	CK_BBOOL t = CK_TRUE;
	CK_OBJECT_HANDLE pub;
	CK_MECHANISM gen;
	CK_ATTRIBUTE priv[] = {{CKA_SIGN, &t, 1}};
	if (!strcmp(op, "ed25519")) {
		static CK_BYTE oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
		CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, oid, sizeof oid}};
		gen = (CK_MECHANISM){CKM_EC_EDWARDS_KEY_PAIR_GEN_, NULL, 0};
		sign_mech = (CK_MECHANISM){CKM_EDDSA_, NULL, 0};
		msg_len = 32;
		rv = f->C_GenerateKeyPair(s, &gen, pt, 1, priv, 1, &pub, &key);
	} else if (!strcmp(op, "ecdsa-p256")) {
		static CK_BYTE oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
		CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, oid, sizeof oid}};
		gen = (CK_MECHANISM){CKM_EC_KEY_PAIR_GEN, NULL, 0};
		sign_mech = (CK_MECHANISM){CKM_ECDSA, NULL, 0};
		msg_len = 32;
		rv = f->C_GenerateKeyPair(s, &gen, pt, 1, priv, 1, &pub, &key);
	} else if (!strcmp(op, "mldsa65")) {
		CK_ULONG set = CKP_ML_DSA_65_;
		CK_ATTRIBUTE pt[] = {{CKA_PARAMETER_SET_, &set, sizeof set}};
		gen = (CK_MECHANISM){CKM_ML_DSA_KEY_PAIR_GEN_, NULL, 0};
		sign_mech = (CK_MECHANISM){CKM_ML_DSA_, NULL, 0};
		msg_len = 32;
		rv = f->C_GenerateKeyPair(s, &gen, pt, 1, priv, 1, &pub, &key);
	} else if (!strcmp(op, "mlkem768")) {
		CK_ULONG set = CKP_ML_KEM_768_;
		CK_ATTRIBUTE pt[] = {{CKA_PARAMETER_SET_, &set, sizeof set}, {CKA_ENCAPSULATE_, &t, 1}};
		CK_ATTRIBUTE kt[] = {{CKA_DECAPSULATE_, &t, 1}};
		gen = (CK_MECHANISM){CKM_ML_KEM_KEY_PAIR_GEN_, NULL, 0};
		if ((rv = bk_get_interface32(h, &f32)) != CKR_OK)
			die("C_GetInterface 3.2", rv);
		rv = f->C_GenerateKeyPair(s, &gen, pt, 2, kt, 1, &key, &pub);
	} else {
		fprintf(stderr, "chost: unknown op %s\n", op);
		return 2;
	}
	if (rv != CKR_OK)
		die("C_GenerateKeyPair", rv);
	for (int threads = 1; threads <= maxt; threads *= 2) {
		pthread_t th[64];
		memset(counts, 0, sizeof counts);
		stop = 0;
		for (long i = 0; i < threads; i++)
			pthread_create(&th[i], NULL, worker, (void *)i);
		sleep(secs);
		stop = 1;
		long total = 0;
		for (int i = 0; i < threads; i++) {
			pthread_join(th[i], NULL);
			total += counts[i];
		}
		printf("%s threads=%d ops/s=%ld\n", op, threads, total / secs);
	}
	f->C_Logout(s);
	f->C_Finalize(NULL);
	return 0;
}
