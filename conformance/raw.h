/* raw.h: the few PKCS#11 C layouts the conformance suite needs to call a
 * module with arguments github.com/miekg/pkcs11 cannot express (NULL
 * pointers, short buffers, C_GetInterface). The layouts follow the OASIS
 * pkcs11t.h on LP64 Linux (CK_ULONG = unsigned long, default packing). */
#ifndef CONFORMANCE_RAW_H
#define CONFORMANCE_RAW_H

typedef unsigned long ckul;

typedef struct { unsigned char major, minor; } ckver;

/* CK_FUNCTION_LIST: a version then 68 function pointers in pkcs11f.h order. */
typedef struct { ckver version; void *fn[68]; } cflist;

typedef struct {
	ckver cryptokiVersion;
	unsigned char manufacturerID[32];
	ckul flags;
	unsigned char libraryDescription[32];
	ckver libraryVersion;
} cinfo;

typedef struct {
	unsigned char slotDescription[64];
	unsigned char manufacturerID[32];
	ckul flags;
	ckver hardwareVersion;
	ckver firmwareVersion;
} cslotinfo;

typedef struct {
	unsigned char label[32];
	unsigned char manufacturerID[32];
	unsigned char model[16];
	unsigned char serialNumber[16];
	ckul flags;
	ckul ulMaxSessionCount, ulSessionCount, ulMaxRwSessionCount, ulRwSessionCount;
	ckul ulMaxPinLen, ulMinPinLen;
	ckul ulTotalPublicMemory, ulFreePublicMemory, ulTotalPrivateMemory, ulFreePrivateMemory;
	ckver hardwareVersion, firmwareVersion;
	unsigned char utcTime[16];
} ctokeninfo;

typedef struct { unsigned char *name; void *flist; ckul flags; } cinterface;

void *raw_open(const char *path, char **err);
ckul raw_get_function_list(void *h, cflist **out, int nullArg);
ckul raw_initialize(cflist *f, int variant);
ckul raw_finalize(cflist *f, int reservedNonNull);
ckul raw_get_info(cflist *f, cinfo *info);
ckul raw_get_slot_list(cflist *f, unsigned char present, ckul *list, ckul *count);
ckul raw_get_slot_info(cflist *f, ckul slot, cslotinfo *info);
ckul raw_get_token_info(cflist *f, ckul slot, ctokeninfo *info);
ckul raw_get_mechanism_list(cflist *f, ckul slot, ckul *list, ckul *count);
ckul raw_inout(cflist *f, int idx, ckul sess, unsigned char *in, ckul inLen, unsigned char *out, ckul *outLen);
ckul raw_final(cflist *f, int idx, ckul sess, unsigned char *out, ckul *outLen);
ckul raw_attr_len(cflist *f, ckul sess, ckul obj, ckul type, ckul *len);
ckul raw_get_session_info_null(cflist *f, ckul sess);
int raw_has_interface(void *h);
ckul raw_get_interface_list(void *h, cinterface *list, ckul *count);
ckul raw_get_interface(void *h, const char *name, ckver *ver, cinterface **out);

/* PKCS#11 3.0 and 3.2 calls (checks_v3*.go). */
typedef struct { ckul type; void *pValue; ckul ulValueLen; } cattr;
typedef struct { ckul mechanism; void *pParameter; ckul ulParameterLen; } cmech;
/* CK_FUNCTION_LIST_3_2: the 68 functions of 2.40, the 24 of 3.0, the 12 of 3.2. */
typedef struct { ckver version; void *fn[68 + 24 + 12]; } cflist3;
cflist3 *raw_interface_table(void *h, const char *name, ckver *ver);
ckul raw_message_init(cflist3 *f, int decrypt, ckul sess, cmech *m, ckul key);
ckul raw_message(cflist3 *f, int decrypt, ckul sess, void *param, ckul paramLen,
	unsigned char *aad, ckul aadLen, unsigned char *in, ckul inLen, unsigned char *out, ckul *outLen);
ckul raw_message_final(cflist3 *f, int decrypt, ckul sess);
ckul raw_encapsulate(cflist3 *f, ckul sess, cmech *m, ckul pub, cattr *tmpl, ckul n,
	unsigned char *ct, ckul *ctLen, ckul *key);
ckul raw_decapsulate(cflist3 *f, ckul sess, cmech *m, ckul priv, cattr *tmpl, ckul n,
	unsigned char *ct, ckul ctLen, ckul *key);

/* Key-protection and interface checks (checks_keyprot.go, checks_mode.go):
 * a call through any function table (the 2.40 list or a 3.x interface's,
 * whose first 68 entries are the same), so NULL arguments and the
 * interface a call comes through can be chosen. */
typedef struct { ckul ulMinKeySize, ulMaxKeySize, flags; } cmechinfo;
ckul raw_mech_info(void *f, ckul slot, ckul mech, cmechinfo *info);
ckul raw_login(void *f, ckul sess, ckul user, unsigned char *pin, ckul pinLen);
ckul raw_encrypt_init(void *f, ckul sess, cmech *m, ckul key);
ckul raw_table_inout(void *f, int idx, ckul sess, unsigned char *in, ckul inLen, unsigned char *out, ckul *outLen);
ckul raw_wrap_key(void *f, ckul sess, cmech *m, ckul wrapping, ckul key, unsigned char *out, ckul *outLen);
#endif
