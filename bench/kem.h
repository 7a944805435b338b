/*
 * kem.h: the few PKCS#11 3.2 calls miekg/pkcs11 does not wrap
 * (C_GetInterface, C_EncapsulateKey, C_DecapsulateKey), reached through a
 * dlopen of the same module path. The types copy only what these calls need
 * from the 3.2 header (pkcs11t.h, pkcs11f.h); bench has no other C.
 */
#ifndef GOHSM_BENCH_KEM_H
#define GOHSM_BENCH_KEM_H

typedef unsigned long bk_ulong; /* CK_ULONG on LP64 */

typedef struct { unsigned char major, minor; } bk_version; /* CK_VERSION */

typedef struct { /* CK_ATTRIBUTE */
	bk_ulong type;
	void *pValue;
	bk_ulong ulValueLen;
} bk_attr;

/* bk_flist32 is CK_FUNCTION_LIST_3_2 seen as its version followed by its
 * 68 (2.40) + 24 (3.0) + 12 (3.2) function pointers, in header order. */
#define BK_FN_COUNT 104
#define BK_FN_ENCAPSULATE_KEY 92
#define BK_FN_DECAPSULATE_KEY 93
typedef struct {
	bk_version version;
	void *fn[BK_FN_COUNT];
} bk_flist32;

void *bk_open(const char *path, char **err);
void bk_close(void *h);
/* bk_get_interface32 asks for the "PKCS 11" interface version 3.2. */
bk_ulong bk_get_interface32(void *h, bk_flist32 **out);
bk_ulong bk_encapsulate(bk_flist32 *f, bk_ulong sess, bk_ulong mech, bk_ulong pub, bk_attr *tmpl, bk_ulong n,
	unsigned char *ct, bk_ulong *ctLen, bk_ulong *key);
bk_ulong bk_decapsulate(bk_flist32 *f, bk_ulong sess, bk_ulong mech, bk_ulong priv, bk_attr *tmpl, bk_ulong n,
	unsigned char *ct, bk_ulong ctLen, bk_ulong *key);

#endif
