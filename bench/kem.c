// kem.c: see kem.h.
#include <dlfcn.h>
#include <stddef.h>
#include "kem.h"

typedef struct { /* CK_MECHANISM */
	bk_ulong mechanism;
	void *pParameter;
	bk_ulong ulParameterLen;
} bk_mech;

typedef struct { /* CK_INTERFACE */
	char *pInterfaceName;
	void *pFunctionList;
	bk_ulong flags;
} bk_interface;

typedef bk_ulong (*fn_get_interface)(const char *, bk_version *, bk_interface **, bk_ulong);
typedef bk_ulong (*fn_encapsulate)(bk_ulong, bk_mech *, bk_ulong, bk_attr *, bk_ulong, unsigned char *, bk_ulong *, bk_ulong *);
typedef bk_ulong (*fn_decapsulate)(bk_ulong, bk_mech *, bk_ulong, bk_attr *, bk_ulong, unsigned char *, bk_ulong, bk_ulong *);

#define CKR_GENERAL_ERROR 0x5UL
#define CKR_FUNCTION_NOT_SUPPORTED 0x54UL

void *bk_open(const char *path, char **err) {
	/* The module is already loaded by miekg/pkcs11: this returns the same
	 * instance, so its sessions and objects are shared. */
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) *err = dlerror();
	return h;
}

void bk_close(void *h) { dlclose(h); }

bk_ulong bk_get_interface32(void *h, bk_flist32 **out) {
	fn_get_interface g = (fn_get_interface)dlsym(h, "C_GetInterface");
	bk_version v = {3, 2};
	bk_interface *iface = NULL;
	bk_ulong rv;
	if (!g) return CKR_FUNCTION_NOT_SUPPORTED;
	rv = g("PKCS 11", &v, &iface, 0);
	if (rv != 0) return rv;
	if (!iface || !iface->pFunctionList) return CKR_GENERAL_ERROR;
	*out = (bk_flist32 *)iface->pFunctionList;
	return 0;
}

bk_ulong bk_encapsulate(bk_flist32 *f, bk_ulong sess, bk_ulong mech, bk_ulong pub, bk_attr *tmpl, bk_ulong n,
	unsigned char *ct, bk_ulong *ctLen, bk_ulong *key) {
	bk_mech m = {mech, NULL, 0};
	fn_encapsulate e = (fn_encapsulate)f->fn[BK_FN_ENCAPSULATE_KEY];
	if (!e) return CKR_FUNCTION_NOT_SUPPORTED;
	return e(sess, &m, pub, tmpl, n, ct, ctLen, key);
}

bk_ulong bk_decapsulate(bk_flist32 *f, bk_ulong sess, bk_ulong mech, bk_ulong priv, bk_attr *tmpl, bk_ulong n,
	unsigned char *ct, bk_ulong ctLen, bk_ulong *key) {
	bk_mech m = {mech, NULL, 0};
	fn_decapsulate d = (fn_decapsulate)f->fn[BK_FN_DECAPSULATE_KEY];
	if (!d) return CKR_FUNCTION_NOT_SUPPORTED;
	return d(sess, &m, priv, tmpl, n, ct, ctLen, key);
}
