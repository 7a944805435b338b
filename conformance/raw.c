// raw.c: direct C calls into a dlopened PKCS#11 module (see raw.h).
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include "raw.h"

typedef ckul (*fn_getlist)(cflist **);
typedef ckul (*fn_voidp)(void *);
typedef ckul (*fn_info)(cinfo *);
typedef ckul (*fn_slotlist)(unsigned char, ckul *, ckul *);
typedef ckul (*fn_slotinfo)(ckul, cslotinfo *);
typedef ckul (*fn_tokeninfo)(ckul, ctokeninfo *);
typedef ckul (*fn_mechlist)(ckul, ckul *, ckul *);
typedef ckul (*fn_inout)(ckul, unsigned char *, ckul, unsigned char *, ckul *);
typedef ckul (*fn_final)(ckul, unsigned char *, ckul *);
typedef ckul (*fn_getattr)(ckul, ckul, cattr *, ckul);
typedef ckul (*fn_sessinfo)(ckul, void *);
typedef ckul (*fn_iflist)(cinterface *, ckul *);
typedef ckul (*fn_iface)(const char *, ckver *, cinterface **, ckul);

void *raw_open(const char *path, char **err) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) *err = dlerror();
	return h;
}

ckul raw_get_function_list(void *h, cflist **out, int nullArg) {
	fn_getlist g = (fn_getlist)dlsym(h, "C_GetFunctionList");
	if (!g) return 0x5; /* CKR_GENERAL_ERROR */
	return nullArg ? g(NULL) : g(out);
}

typedef struct {
	void *create, *destroy, *lock, *unlock;
	ckul flags;
	void *reserved;
} cinitargs;

#define CKF_LIBRARY_CANT_CREATE_OS_THREADS 1UL
#define CKF_OS_LOCKING_OK 2UL

static ckul mx_create(void **m) {
	pthread_mutex_t *p = malloc(sizeof *p);
	if (!p) return 0x2; /* CKR_HOST_MEMORY */
	pthread_mutex_init(p, NULL);
	*m = p;
	return 0;
}
static ckul mx_destroy(void *m) { pthread_mutex_destroy(m); free(m); return 0; }
static ckul mx_lock(void *m) { pthread_mutex_lock(m); return 0; }
static ckul mx_unlock(void *m) { pthread_mutex_unlock(m); return 0; }

/* variant: 0 NULL args; 1 OS locking; 2 pReserved set; 3 only two mutex
 * functions; 4 all four mutex functions, no OS locking flag;
 * 5 OS locking plus CKF_LIBRARY_CANT_CREATE_OS_THREADS. */
ckul raw_initialize(cflist *f, int variant) {
	static int reserved;
	cinitargs a = {0};
	switch (variant) {
	case 0: return ((fn_voidp)f->fn[0])(NULL);
	case 1: a.flags = CKF_OS_LOCKING_OK; break;
	case 2: a.flags = CKF_OS_LOCKING_OK; a.reserved = &reserved; break;
	case 3: a.create = (void *)mx_create; a.lock = (void *)mx_lock; break;
	case 4: a.create = (void *)mx_create; a.destroy = (void *)mx_destroy;
		a.lock = (void *)mx_lock; a.unlock = (void *)mx_unlock; break;
	case 5: a.flags = CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS; break;
	}
	return ((fn_voidp)f->fn[0])(&a);
}

ckul raw_finalize(cflist *f, int reservedNonNull) {
	static int reserved;
	return ((fn_voidp)f->fn[1])(reservedNonNull ? &reserved : NULL);
}

ckul raw_get_info(cflist *f, cinfo *info) { return ((fn_info)f->fn[2])(info); }

ckul raw_get_slot_list(cflist *f, unsigned char present, ckul *list, ckul *count) {
	return ((fn_slotlist)f->fn[4])(present, list, count);
}

ckul raw_get_slot_info(cflist *f, ckul slot, cslotinfo *info) {
	return ((fn_slotinfo)f->fn[5])(slot, info);
}

ckul raw_get_token_info(cflist *f, ckul slot, ctokeninfo *info) {
	return ((fn_tokeninfo)f->fn[6])(slot, info);
}

ckul raw_get_mechanism_list(cflist *f, ckul slot, ckul *list, ckul *count) {
	return ((fn_mechlist)f->fn[7])(slot, list, count);
}

ckul raw_inout(cflist *f, int idx, ckul sess, unsigned char *in, ckul inLen, unsigned char *out, ckul *outLen) {
	return ((fn_inout)f->fn[idx])(sess, in, inLen, out, outLen);
}

ckul raw_final(cflist *f, int idx, ckul sess, unsigned char *out, ckul *outLen) {
	return ((fn_final)f->fn[idx])(sess, out, outLen);
}

ckul raw_attr_len(cflist *f, ckul sess, ckul obj, ckul type, ckul *len) {
	cattr a = {type, NULL, 0};
	ckul rv = ((fn_getattr)f->fn[24])(sess, obj, &a, 1);
	*len = a.ulValueLen;
	return rv;
}

ckul raw_get_session_info_null(cflist *f, ckul sess) {
	return ((fn_sessinfo)f->fn[15])(sess, NULL);
}

int raw_has_interface(void *h) {
	return dlsym(h, "C_GetInterface") != NULL && dlsym(h, "C_GetInterfaceList") != NULL;
}

ckul raw_get_interface_list(void *h, cinterface *list, ckul *count) {
	fn_iflist g = (fn_iflist)dlsym(h, "C_GetInterfaceList");
	if (!g) return 0x5;
	return g(list, count);
}

ckul raw_get_interface(void *h, const char *name, ckver *ver, cinterface **out) {
	fn_iface g = (fn_iface)dlsym(h, "C_GetInterface");
	if (!g) return 0x5;
	return g(name, ver, out, 0);
}

/* 3.0 and 3.2 function-list indexes: C_GetInterfaceList is 68, so the
 * message functions start at 72 and C_EncapsulateKey is 68 + 24 = 92. */
enum {
	IX_MESSAGE_ENCRYPT_INIT = 72, IX_ENCRYPT_MESSAGE = 73, IX_MESSAGE_ENCRYPT_FINAL = 76,
	IX_MESSAGE_DECRYPT_INIT = 77, IX_DECRYPT_MESSAGE = 78, IX_MESSAGE_DECRYPT_FINAL = 81,
	IX_ENCAPSULATE_KEY = 92, IX_DECAPSULATE_KEY = 93,
};

typedef ckul (*fn_msginit)(ckul, cmech *, ckul);
typedef ckul (*fn_msg)(ckul, void *, ckul, unsigned char *, ckul, unsigned char *, ckul, unsigned char *, ckul *);
typedef ckul (*fn_msgfinal)(ckul);
typedef ckul (*fn_encap)(ckul, cmech *, ckul, cattr *, ckul, unsigned char *, ckul *, ckul *);
typedef ckul (*fn_decap)(ckul, cmech *, ckul, cattr *, ckul, unsigned char *, ckul, ckul *);

cflist3 *raw_interface_table(void *h, const char *name, ckver *ver) {
	cinterface *out = NULL;
	if (raw_get_interface(h, name, ver, &out) != 0 || out == NULL) return NULL;
	return (cflist3 *)out->flist;
}

ckul raw_message_init(cflist3 *f, int decrypt, ckul sess, cmech *m, ckul key) {
	return ((fn_msginit)f->fn[decrypt ? IX_MESSAGE_DECRYPT_INIT : IX_MESSAGE_ENCRYPT_INIT])(sess, m, key);
}

ckul raw_message(cflist3 *f, int decrypt, ckul sess, void *param, ckul paramLen,
	unsigned char *aad, ckul aadLen, unsigned char *in, ckul inLen, unsigned char *out, ckul *outLen) {
	return ((fn_msg)f->fn[decrypt ? IX_DECRYPT_MESSAGE : IX_ENCRYPT_MESSAGE])(sess, param, paramLen, aad, aadLen, in, inLen, out, outLen);
}

ckul raw_message_final(cflist3 *f, int decrypt, ckul sess) {
	return ((fn_msgfinal)f->fn[decrypt ? IX_MESSAGE_DECRYPT_FINAL : IX_MESSAGE_ENCRYPT_FINAL])(sess);
}

ckul raw_encapsulate(cflist3 *f, ckul sess, cmech *m, ckul pub, cattr *tmpl, ckul n,
	unsigned char *ct, ckul *ctLen, ckul *key) {
	return ((fn_encap)f->fn[IX_ENCAPSULATE_KEY])(sess, m, pub, tmpl, n, ct, ctLen, key);
}

ckul raw_decapsulate(cflist3 *f, ckul sess, cmech *m, ckul priv, cattr *tmpl, ckul n,
	unsigned char *ct, ckul ctLen, ckul *key) {
	return ((fn_decap)f->fn[IX_DECAPSULATE_KEY])(sess, m, priv, tmpl, n, ct, ctLen, key);
}

/* Calls through any function table (raw.h). Indexes are pkcs11f.h order. */
enum { IX_GET_MECHANISM_INFO = 8, IX_LOGIN = 18, IX_ENCRYPT_INIT = 29, IX_WRAP_KEY = 60 };

typedef ckul (*fn_mechinfo)(ckul, ckul, cmechinfo *);
typedef ckul (*fn_login)(ckul, ckul, unsigned char *, ckul);
typedef ckul (*fn_cryptinit)(ckul, cmech *, ckul);
typedef ckul (*fn_wrap)(ckul, cmech *, ckul, ckul, unsigned char *, ckul *);

ckul raw_mech_info(void *f, ckul slot, ckul mech, cmechinfo *info) {
	return ((fn_mechinfo)((cflist *)f)->fn[IX_GET_MECHANISM_INFO])(slot, mech, info);
}

ckul raw_login(void *f, ckul sess, ckul user, unsigned char *pin, ckul pinLen) {
	return ((fn_login)((cflist *)f)->fn[IX_LOGIN])(sess, user, pin, pinLen);
}

ckul raw_encrypt_init(void *f, ckul sess, cmech *m, ckul key) {
	return ((fn_cryptinit)((cflist *)f)->fn[IX_ENCRYPT_INIT])(sess, m, key);
}

ckul raw_table_inout(void *f, int idx, ckul sess, unsigned char *in, ckul inLen, unsigned char *out, ckul *outLen) {
	return raw_inout((cflist *)f, idx, sess, in, inLen, out, outLen);
}

ckul raw_wrap_key(void *f, ckul sess, cmech *m, ckul wrapping, ckul key, unsigned char *out, ckul *outLen) {
	return ((fn_wrap)((cflist *)f)->fn[IX_WRAP_KEY])(sess, m, wrapping, key, out, outLen);
}
