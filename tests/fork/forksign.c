/*
 * forksign: a program that forks after C_Initialize, as pre-fork servers
 * (nginx, Apache, PHP-FPM), Python multiprocessing and pkcs11-tool
 * --test-fork do, and signs in the parent and in every child.
 *
 *   forksign [-n CHILDREN] [-s SIGNS] [-c finalize|init|none] [-d] MODULE TOKEN PIN KEY
 *
 * MODULE is dlopened (libgohsm.so, libsofthsm2.so, or Debian's
 * p11-kit-client.so with P11_KIT_SERVER_ADDRESS pointing at a p11-kit-server
 * that re-exports one of them). The parent calls C_Initialize (with
 * CKF_OS_LOCKING_OK), logs in on the token labelled TOKEN, finds the EC
 * private and public keys labelled KEY, signs SIGNS (default 10) 32-byte
 * digests with CKM_ECDSA, verifies each with the public key and checks that a
 * signature over other data is refused; then forks CHILDREN children
 * (default 4), which run at the same time and each, after -c:
 *   finalize  C_Finalize, then C_Initialize again, open a session and log in
 *             (the default: what a careful forking program does);
 *   init      the same without C_Finalize (the spec's minimum, §5.4);
 *   none      nothing: use the parent's session and key handles as they are
 *             (wrong by the spec; shows what a careless program gets);
 * then sign and verify as the parent did, and exit 0. The parent signs again
 * while the children run and after they have exited, and exits 0 only if
 * every child did and every check passed.
 *
 * -d (direct): MODULE is libgohsm.so loaded directly. A Go runtime cannot run
 * in a forked child, so the module refuses every call there. Each child then
 * checks that its calls (C_GetSlotList and C_Sign with the inherited
 * session, C_Finalize, C_Initialize, C_GetSlotList again) all return an
 * error, each within CALL_LIMIT_MS (no hang), and exits 0 if so; the parent
 * must be unaffected. (A plain-C module such as SoftHSMv2 works in the child:
 * there -d reports the children as not refused.)
 *
 * Each child runs under alarm(CHILD_DEADLINE_S): a hung child is killed and
 * counted as failed. Prints "PASS name" / "FAIL name: why" lines (see
 * tests/clients/lib.sh, run_checks) and ends with "forksign: done".
 *
 * Build: gcc -std=gnu11 -Wall -Wextra -O1 -I/usr/include/p11-kit-1 -o forksign forksign.c -ldl
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "../abi/rvnames.h"

#define CHILD_DEADLINE_S 10
#define CALL_LIMIT_MS 1000

static CK_FUNCTION_LIST *f;
static const char *token, *pin, *keylabel;
static int nsigns = 10;
static char who[64] = "parent";

static const char *rvname(CK_RV rv)
{
	static char buf[32];
	switch (rv) {
#define RV(x) \
	case x: \
		return #x;
		RVNAMES
#undef RV
	}
	snprintf(buf, sizeof buf, "0x%lx", (unsigned long)rv);
	return buf;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* note: a detail line for the log (never a PASS/FAIL line). */
static void note(const char *fmt, ...)
{
	va_list ap;
	char line[512];
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	printf("  %s: %s\n", who, line);
	fflush(stdout);
}

static CK_RV initialize(void)
{
	CK_C_INITIALIZE_ARGS args;
	memset(&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	return f->C_Initialize(&args);
}

/* find_slot: the slot whose token is labelled `token`. */
static CK_RV find_slot(CK_SLOT_ID *slot)
{
	CK_SLOT_ID ids[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	size_t len = strlen(token);
	CK_RV rv = f->C_GetSlotList(CK_TRUE, ids, &n);
	if (rv != CKR_OK)
		return rv;
	for (i = 0; i < n; i++) {
		if ((rv = f->C_GetTokenInfo(ids[i], &ti)) != CKR_OK) {
			note("slot %lu: C_GetTokenInfo: %s", (unsigned long)ids[i], rvname(rv));
			continue;
		}
		if (len <= sizeof ti.label && memcmp(ti.label, token, len) == 0) {
			size_t j;
			for (j = len; j < sizeof ti.label && ti.label[j] == ' '; j++)
				;
			if (j == sizeof ti.label) {
				*slot = ids[i];
				return CKR_OK;
			}
		}
	}
	note("%lu slots with a token, none labelled '%s'", (unsigned long)n, token);
	for (i = 0; i < n; i++)
		if (f->C_GetTokenInfo(ids[i], &ti) == CKR_OK)
			note("slot %lu: token '%.32s'", (unsigned long)ids[i], ti.label);
	return CKR_TOKEN_NOT_PRESENT;
}

static CK_RV find_key(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *h)
{
	CK_KEY_TYPE kt = CKK_EC;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_KEY_TYPE, &kt, sizeof kt},
		{CKA_LABEL, (void *)keylabel, strlen(keylabel)},
	};
	CK_ULONG n = 0;
	CK_RV rv = f->C_FindObjectsInit(s, t, 3);
	if (rv != CKR_OK)
		return rv;
	rv = f->C_FindObjects(s, h, 1, &n);
	f->C_FindObjectsFinal(s);
	if (rv == CKR_OK && n != 1)
		rv = CKR_KEY_HANDLE_INVALID;
	return rv;
}

struct conn {
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE priv, pub;
};

/* open_and_login: a session on the token, logged in, with both keys found. */
static int open_and_login(struct conn *c, char *why, size_t whylen)
{
	CK_SLOT_ID slot;
	CK_RV rv;
	if ((rv = find_slot(&slot)) != CKR_OK) {
		snprintf(why, whylen, "finding token '%s': %s", token, rvname(rv));
		return -1;
	}
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &c->s);
	if (rv != CKR_OK) {
		snprintf(why, whylen, "C_OpenSession: %s", rvname(rv));
		return -1;
	}
	rv = f->C_Login(c->s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
	/* Login state is per application (§5.6): another session of this
	 * process may already have logged it in. */
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		snprintf(why, whylen, "C_Login: %s", rvname(rv));
		return -1;
	}
	if ((rv = find_key(c->s, CKO_PRIVATE_KEY, &c->priv)) != CKR_OK ||
	    (rv = find_key(c->s, CKO_PUBLIC_KEY, &c->pub)) != CKR_OK) {
		snprintf(why, whylen, "finding EC key pair '%s': %s", keylabel, rvname(rv));
		return -1;
	}
	return 0;
}

/* sign_verify: n ECDSA signatures over distinct 32-byte "digests" (the pid
 * and the count), each verified with the public key, plus one over other
 * data that must not verify. */
static int sign_verify(struct conn *c, int n, char *why, size_t whylen)
{
	CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
	CK_BYTE digest[32], sig[132];
	CK_ULONG siglen;
	CK_RV rv;
	int i;
	for (i = 0; i < n; i++) {
		long pid = getpid();
		memset(digest, 0xA5, sizeof digest);
		memcpy(digest, &pid, sizeof pid);
		memcpy(digest + sizeof pid, &i, sizeof i);
		siglen = sizeof sig;
		if ((rv = f->C_SignInit(c->s, &m, c->priv)) != CKR_OK ||
		    (rv = f->C_Sign(c->s, digest, sizeof digest, sig, &siglen)) != CKR_OK) {
			snprintf(why, whylen, "sign %d: %s", i, rvname(rv));
			return -1;
		}
		if (siglen != 64) {
			snprintf(why, whylen, "sign %d: P-256 signature of %lu bytes", i, (unsigned long)siglen);
			return -1;
		}
		if ((rv = f->C_VerifyInit(c->s, &m, c->pub)) != CKR_OK ||
		    (rv = f->C_Verify(c->s, digest, sizeof digest, sig, siglen)) != CKR_OK) {
			snprintf(why, whylen, "verify %d: %s", i, rvname(rv));
			return -1;
		}
	}
	/* A signature over other data must be refused. */
	digest[0] ^= 1;
	if ((rv = f->C_VerifyInit(c->s, &m, c->pub)) != CKR_OK) {
		snprintf(why, whylen, "C_VerifyInit: %s", rvname(rv));
		return -1;
	}
	rv = f->C_Verify(c->s, digest, sizeof digest, sig, siglen);
	if (rv != CKR_SIGNATURE_INVALID) {
		snprintf(why, whylen, "a signature over other data: %s, want CKR_SIGNATURE_INVALID", rvname(rv));
		return -1;
	}
	return 0;
}

/* child_works: the child re-initialises as -c says, logs in, signs, verifies. */
static int child_works(const char *how, struct conn *inherited)
{
	char why[256] = "";
	struct conn c;
	CK_RV rv;
	double t0 = now_ms();
	if (strcmp(how, "finalize") == 0) {
		rv = f->C_Finalize(NULL);
		note("C_Finalize: %s", rvname(rv));
	}
	if (strcmp(how, "none") != 0) {
		rv = initialize();
		note("C_Initialize: %s", rvname(rv));
		if (rv != CKR_OK)
			return 1;
		if (open_and_login(&c, why, sizeof why) != 0) {
			note("%s", why);
			return 1;
		}
	} else {
		c = *inherited;
	}
	if (sign_verify(&c, nsigns, why, sizeof why) != 0) {
		note("%s", why);
		return 1;
	}
	if (strcmp(how, "none") != 0) {
		f->C_CloseSession(c.s);
		f->C_Finalize(NULL);
	}
	note("%d signatures made and verified in %.1f ms", nsigns, now_ms() - t0);
	return 0;
}

/* child_refused: every call fails, and at once (libgohsm.so direct). */
static int child_refused(struct conn *inherited)
{
	CK_SLOT_ID ids[8];
	CK_ULONG n = 8, siglen = 132;
	CK_BYTE digest[32] = {1}, sig[132];
	CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
	CK_RV rv;
	int bad = 0;
	double t;
#define CALL(name, expr) \
	do { \
		t = now_ms(); \
		rv = (expr); \
		t = now_ms() - t; \
		note("%s: %s in %.3f ms", name, rvname(rv), t); \
		if (rv == CKR_OK || t > CALL_LIMIT_MS) \
			bad = 1; \
	} while (0)
	CALL("C_GetSlotList (no re-initialisation)", f->C_GetSlotList(CK_TRUE, ids, &n));
	CALL("C_SignInit (inherited session)", f->C_SignInit(inherited->s, &m, inherited->priv));
	CALL("C_Sign (inherited session)", f->C_Sign(inherited->s, digest, sizeof digest, sig, &siglen));
	CALL("C_Finalize", f->C_Finalize(NULL));
	CALL("C_Initialize", initialize());
	n = 8;
	CALL("C_GetSlotList (after C_Initialize)", f->C_GetSlotList(CK_TRUE, ids, &n));
#undef CALL
	return bad;
}

static void usage(void)
{
	fprintf(stderr, "usage: forksign [-n CHILDREN] [-s SIGNS] [-c finalize|init|none] [-d] "
			"MODULE TOKEN PIN KEY\n");
	exit(2);
}

static int failed;
static void result(int ok, const char *name, const char *why)
{
	if (ok)
		printf("PASS %s\n", name);
	else
		printf("FAIL %s: %s\n", name, why);
	fflush(stdout);
	if (!ok)
		failed = 1;
}

int main(int argc, char **argv)
{
	int nchildren = 4, direct = 0, opt, i, ok;
	const char *how = "finalize";
	char why[256] = "", name[160];
	CK_RV (*getfl)(CK_FUNCTION_LIST **);
	struct conn c;
	pid_t *pids;
	void *lib;
	CK_RV rv;
	double t0;

	while ((opt = getopt(argc, argv, "n:s:c:d")) != -1) {
		switch (opt) {
		case 'n':
			nchildren = atoi(optarg);
			break;
		case 's':
			nsigns = atoi(optarg);
			break;
		case 'c':
			how = optarg;
			break;
		case 'd':
			direct = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 4 || nchildren < 1 || nsigns < 1 ||
	    (strcmp(how, "finalize") && strcmp(how, "init") && strcmp(how, "none")))
		usage();
	token = argv[optind + 1];
	pin = argv[optind + 2];
	keylabel = argv[optind + 3];

	lib = dlopen(argv[optind], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		printf("FAIL dlopen: %s\n", dlerror());
		return 1;
	}
	getfl = (CK_RV(*)(CK_FUNCTION_LIST **))dlsym(lib, "C_GetFunctionList");
	if (!getfl || getfl(&f) != CKR_OK) {
		printf("FAIL C_GetFunctionList\n");
		return 1;
	}

	/* The parent: initialise, log in, sign and verify. */
	t0 = now_ms();
	rv = initialize();
	ok = rv == CKR_OK && open_and_login(&c, why, sizeof why) == 0 && sign_verify(&c, nsigns, why, sizeof why) == 0;
	if (rv != CKR_OK)
		snprintf(why, sizeof why, "C_Initialize: %s", rvname(rv));
	snprintf(name, sizeof name, "parent signs and verifies before the fork");
	result(ok, name, why);
	if (!ok) {
		printf("forksign: done (gave up)\n");
		return 1;
	}
	note("initialised, logged in, %d signatures in %.1f ms", nsigns, now_ms() - t0);

	pids = calloc(nchildren, sizeof *pids);
	t0 = now_ms();
	for (i = 0; i < nchildren; i++) {
		fflush(stdout);
		pids[i] = fork();
		if (pids[i] < 0) {
			printf("FAIL fork: %s\n", strerror(errno));
			return 1;
		}
		if (pids[i] == 0) {
			snprintf(who, sizeof who, "child %d (pid %ld)", i + 1, (long)getpid());
			alarm(CHILD_DEADLINE_S);
			_exit(direct ? child_refused(&c) : child_works(how, &c));
		}
	}

	/* The parent keeps signing with its own session while the children run. */
	why[0] = 0;
	ok = sign_verify(&c, nsigns, why, sizeof why) == 0;
	result(ok, "parent signs and verifies while the children run", why);

	int children_ok = 0;
	for (i = 0; i < nchildren; i++) {
		int st;
		if (waitpid(pids[i], &st, 0) < 0) {
			note("waitpid: %s", strerror(errno));
			continue;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			children_ok++;
		else if (WIFSIGNALED(st))
			note("child %d: killed by signal %d%s", i + 1, WTERMSIG(st),
			     WTERMSIG(st) == SIGALRM ? " (hung past the deadline)" : "");
		else
			note("child %d: exit status %d", i + 1, WEXITSTATUS(st));
	}
	snprintf(why, sizeof why, "%d of %d children failed (their lines above say why)", nchildren - children_ok,
		 nchildren);
	if (direct)
		snprintf(name, sizeof name, "%d forked children are refused at once (every call an error, no hang)",
			 nchildren);
	else
		snprintf(name, sizeof name, "%d forked children (%s) log in, sign and verify", nchildren,
			 strcmp(how, "finalize") == 0 ? "C_Finalize + C_Initialize"
			 : strcmp(how, "init") == 0  ? "C_Initialize only"
						     : "no re-initialisation");
	result(children_ok == nchildren, name, why);
	note("children done in %.1f ms", now_ms() - t0);

	why[0] = 0;
	ok = sign_verify(&c, nsigns, why, sizeof why) == 0;
	result(ok, "parent signs and verifies after the children", why);

	f->C_CloseSession(c.s);
	rv = f->C_Finalize(NULL);
	result(rv == CKR_OK, "parent C_Finalize", rvname(rv));
	printf("forksign: done\n");
	return failed;
}
