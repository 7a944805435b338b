/*
 * kill9load: load on an appliance from THREADS threads through libgohsm.so in
 * remote mode (the C ABI, as any PKCS#11 application), for TestKill9UnderLoad.
 *
 *   kill9load MODULE TOKEN PIN THREADS
 *
 * MODULE is dlopened (GOHSM_CONF names its remote.conf). The program calls
 * C_Initialize (CKF_OS_LOCKING_OK), opens a session on the token labelled
 * TOKEN, logs in as the user -- the only C_Login it ever calls -- and makes an
 * EC P-256 token key pair. Each thread then opens a session of its own and
 * signs 32-byte digests with CKM_ECDSA (C_SignInit + C_Sign) in a loop, with
 * the same session handle from start to end, until standard input ends.
 *
 * Lines on standard output (times are CLOCK_MONOTONIC nanoseconds, the
 * clock the test reads too):
 *   ready
 *   session T HANDLE
 *   fail T START END RV        a failed call (C_SignInit or C_Sign), up to 200 per thread
 *   back T START END           the first success after a failure
 * and, once standard input ends and the threads have stopped:
 *   summary T CALLS OK FAILED WORST_OK_NS WORST_FAIL_NS
 *   final T HANDLE STATE RV     C_GetSessionInfo on the thread's handle, then one
 *                               more signature with it (RV)
 *   done
 * Exit status 0 unless the set-up failed (2).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define MAX_THREADS 64
#define MAX_FAIL_LINES 200

static CK_FUNCTION_LIST *f;
static CK_OBJECT_HANDLE priv;
static volatile int stop;
static pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;

struct worker {
	int id;
	CK_SESSION_HANDLE s;
	pthread_t th;
	uint64_t calls, ok, failed, worst_ok, worst_fail;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&out);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&out);
}

static void die(const char *what, CK_RV rv)
{
	say("setup failed: %s: rv 0x%lx\n", what, (unsigned long)rv);
	exit(2);
}

static CK_RV sign_once(CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
	CK_BYTE digest[32], sig[72];
	CK_ULONG siglen = sizeof sig;
	CK_RV rv;
	memset(digest, 0x5A, sizeof digest);
	if ((rv = f->C_SignInit(s, &m, priv)) != CKR_OK)
		return rv;
	return f->C_Sign(s, digest, sizeof digest, sig, &siglen);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	int failing = 0;
	while (!stop) {
		uint64_t start = now_ns(), end, d;
		CK_RV rv = sign_once(w->s);
		end = now_ns();
		d = end - start;
		w->calls++;
		if (rv == CKR_OK) {
			w->ok++;
			if (d > w->worst_ok)
				w->worst_ok = d;
			if (failing)
				say("back %d %llu %llu\n", w->id, (unsigned long long)start, (unsigned long long)end);
			failing = 0;
		} else {
			w->failed++;
			if (d > w->worst_fail)
				w->worst_fail = d;
			if (w->failed <= MAX_FAIL_LINES)
				say("fail %d %llu %llu 0x%lx\n", w->id, (unsigned long long)start, (unsigned long long)end,
				    (unsigned long)rv);
			failing = 1;
		}
	}
	return NULL;
}

/* find_slot: the slot whose token is labelled label. */
static CK_SLOT_ID find_slot(const char *label)
{
	CK_SLOT_ID ids[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	size_t len = strlen(label);
	CK_RV rv = f->C_GetSlotList(CK_TRUE, ids, &n);
	if (rv != CKR_OK)
		die("C_GetSlotList", rv);
	for (i = 0; i < n; i++) {
		if (f->C_GetTokenInfo(ids[i], &ti) != CKR_OK || len > sizeof ti.label || memcmp(ti.label, label, len) != 0)
			continue;
		size_t j = len;
		while (j < sizeof ti.label && ti.label[j] == ' ')
			j++;
		if (j == sizeof ti.label)
			return ids[i];
	}
	die("no token with that label", CKR_TOKEN_NOT_PRESENT);
	return 0;
}

int main(int argc, char **argv)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_C_INITIALIZE_ARGS args;
	CK_SESSION_HANDLE setup;
	CK_OBJECT_HANDLE pub;
	CK_SLOT_ID slot;
	CK_RV rv;
	struct worker ws[MAX_THREADS];
	char line[256];
	int n, i;
	void *lib;

	if (argc != 5 || (n = atoi(argv[4])) < 1 || n > MAX_THREADS) {
		fprintf(stderr, "usage: kill9load MODULE TOKEN PIN THREADS\n");
		return 2;
	}
	setvbuf(stdin, NULL, _IOLBF, 0);
	if (!(lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL))) {
		say("setup failed: dlopen: %s\n", dlerror());
		return 2;
	}
	if (!(get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(lib, "C_GetFunctionList")))
		die("dlsym C_GetFunctionList", 0);
	if ((rv = get(&f)) != CKR_OK)
		die("C_GetFunctionList", rv);
	memset(&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = f->C_Initialize(&args)) != CKR_OK)
		die("C_Initialize", rv);
	slot = find_slot(argv[2]);
	if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &setup)) != CKR_OK)
		die("C_OpenSession", rv);
	if ((rv = f->C_Login(setup, CKU_USER, (CK_UTF8CHAR *)argv[3], strlen(argv[3]))) != CKR_OK)
		die("C_Login", rv);
	{
		/* A token key pair: session objects do not survive a restart. */
		static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
		CK_BBOOL yes = CK_TRUE;
		CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
		CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, p256, sizeof p256}, {CKA_TOKEN, &yes, 1}, {CKA_VERIFY, &yes, 1}};
		CK_ATTRIBUTE kt[] = {{CKA_TOKEN, &yes, 1}, {CKA_PRIVATE, &yes, 1}, {CKA_SIGN, &yes, 1}};
		if ((rv = f->C_GenerateKeyPair(setup, &m, pt, 3, kt, 3, &pub, &priv)) != CKR_OK)
			die("C_GenerateKeyPair", rv);
	}
	for (i = 0; i < n; i++) {
		memset(&ws[i], 0, sizeof ws[i]);
		ws[i].id = i;
		if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ws[i].s)) != CKR_OK)
			die("C_OpenSession (thread)", rv);
		if ((rv = sign_once(ws[i].s)) != CKR_OK)
			die("first signature", rv);
	}
	say("ready\n");
	for (i = 0; i < n; i++)
		say("session %d %lu\n", i, (unsigned long)ws[i].s);
	for (i = 0; i < n; i++)
		if (pthread_create(&ws[i].th, NULL, work, &ws[i]) != 0)
			die("pthread_create", 0);
	while (fgets(line, sizeof line, stdin))
		;
	stop = 1;
	for (i = 0; i < n; i++)
		pthread_join(ws[i].th, NULL);
	for (i = 0; i < n; i++)
		say("summary %d %llu %llu %llu %llu %llu\n", i, (unsigned long long)ws[i].calls,
		    (unsigned long long)ws[i].ok, (unsigned long long)ws[i].failed,
		    (unsigned long long)ws[i].worst_ok, (unsigned long long)ws[i].worst_fail);
	for (i = 0; i < n; i++) {
		CK_SESSION_INFO si;
		memset(&si, 0, sizeof si);
		rv = f->C_GetSessionInfo(ws[i].s, &si);
		if (rv == CKR_OK)
			rv = sign_once(ws[i].s);
		say("final %d %lu %lu 0x%lx\n", i, (unsigned long)ws[i].s, (unsigned long)si.state, (unsigned long)rv);
	}
	f->C_Finalize(NULL);
	say("done\n");
	return 0;
}
