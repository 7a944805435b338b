/*
 * The parts of the ABI that never need Go: the function tables, the 3.0
 * interface discovery functions and fork detection. They work before
 * C_Initialize and in a forked child, as the spec requires of
 * C_GetFunctionList and C_GetInterface(List).
 */
#include <pthread.h>
#include <string.h>

#include "shim.h"

volatile int gohsm_forked = 0;

static void gohsm_atfork_child(void)
{
	gohsm_forked = 1;
}

/*
 * Registered when the library is loaded (before any C_ call), so a fork at
 * any later moment is seen. Go's own os/exec does not go through libc
 * fork(), so it does not trip this.
 */
__attribute__((constructor)) static void gohsm_register_atfork(void)
{
	pthread_atfork(NULL, NULL, gohsm_atfork_child);
}

#define GOHSM_ENTRY(name, args) name,

/*
 * A table of an older interface is the exported functions with the
 * entries of GOHSM_VERSIONED_<version> (shim.h) replaced by that version's
 * own. C lets a later designated initializer override an earlier one
 * (C11 6.7.9p19), so each table says exactly where it differs; the
 * compilers' warning about such overrides is silenced here only.
 */
#define GOHSM_VERSIONED_ENTRY(v, name) .name = gohsm_##v##_##name,

#pragma GCC diagnostic push
#if defined(__clang__)
#pragma GCC diagnostic ignored "-Winitializer-overrides"
#else
#pragma GCC diagnostic ignored "-Woverride-init"
#endif

static CK_FUNCTION_LIST gohsm_functions_2_40 = {
	{2, 40},
	GOHSM_FUNCTIONS_2_40(GOHSM_ENTRY)
	GOHSM_VERSIONED_2_40(GOHSM_VERSIONED_ENTRY)
};

static CK_FUNCTION_LIST_3_0 gohsm_functions_3_0 = {
	{3, 0},
	GOHSM_FUNCTIONS_2_40(GOHSM_ENTRY)
	GOHSM_FUNCTIONS_3_0(GOHSM_ENTRY)
	GOHSM_VERSIONED_3_0(GOHSM_VERSIONED_ENTRY)
};

#pragma GCC diagnostic pop

static CK_FUNCTION_LIST_3_2 gohsm_functions_3_2 = {
	{3, 2},
	GOHSM_FUNCTIONS_2_40(GOHSM_ENTRY)
	GOHSM_FUNCTIONS_3_0(GOHSM_ENTRY)
	GOHSM_FUNCTIONS_3_2(GOHSM_ENTRY)
};

static CK_CHAR gohsm_interface_name[] = "PKCS 11";

/*
 * 3.0 §5.4: the first entry is the default interface. It stays 3.0: a
 * caller that asks for no version gets the table every 3.x application
 * knows, and one that wants 3.2 (C_EncapsulateKey...) asks for {3, 2}.
 * None sets CKF_INTERFACE_FORK_SAFE: the module is not usable in a forked
 * child.
 */
static CK_INTERFACE gohsm_interfaces[] = {
	{gohsm_interface_name, &gohsm_functions_3_0, 0},
	{gohsm_interface_name, &gohsm_functions_3_2, 0},
	{gohsm_interface_name, &gohsm_functions_2_40, 0},
};

#define GOHSM_INTERFACE_COUNT (sizeof(gohsm_interfaces) / sizeof(gohsm_interfaces[0]))

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (ppFunctionList == NULL)
		return GOHSM_CKR_ARGUMENTS_BAD;
	*ppFunctionList = &gohsm_functions_2_40;
	return GOHSM_CKR_OK;
}

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
	if (pulCount == NULL)
		return GOHSM_CKR_ARGUMENTS_BAD;
	if (pInterfacesList == NULL) {
		*pulCount = GOHSM_INTERFACE_COUNT;
		return GOHSM_CKR_OK;
	}
	if (*pulCount < GOHSM_INTERFACE_COUNT) {
		*pulCount = GOHSM_INTERFACE_COUNT;
		return GOHSM_CKR_BUFFER_TOO_SMALL;
	}
	memcpy(pInterfacesList, gohsm_interfaces, sizeof(gohsm_interfaces));
	*pulCount = GOHSM_INTERFACE_COUNT;
	return GOHSM_CKR_OK;
}

/*
 * 3.0 §5.4.3: a NULL name means the default interface, a NULL version any
 * version; flags must all be offered by the interface. No match is
 * CKR_ARGUMENTS_BAD, the only code the spec lists for a bad request.
 */
CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
		     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
	if (ppInterface == NULL)
		return GOHSM_CKR_ARGUMENTS_BAD;
	for (size_t i = 0; i < GOHSM_INTERFACE_COUNT; i++) {
		CK_INTERFACE *it = &gohsm_interfaces[i];
		const CK_VERSION *v = (const CK_VERSION *)it->pFunctionList;
		if (pInterfaceName != NULL &&
		    strcmp((const char *)pInterfaceName, (const char *)it->pInterfaceName) != 0)
			continue;
		if (pVersion != NULL && (pVersion->major != v->major || pVersion->minor != v->minor))
			continue;
		if ((it->flags & flags) != flags)
			continue;
		*ppInterface = it;
		return GOHSM_CKR_OK;
	}
	return GOHSM_CKR_ARGUMENTS_BAD;
}
