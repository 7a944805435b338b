/*
 * Prints the sizes and field offsets of the OASIS 2.40 header's structs as
 * #defines, for layout_check.c. Built only by the tests, against the header
 * in the Go module cache (REF_PKCS11 names it); never part of the module.
 */
#include <stddef.h>
#include <stdio.h>

#define CK_PTR *
#define CK_DECLARE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION_POINTER(returnType, name) returnType(*name)
#define CK_CALLBACK_FUNCTION(returnType, name) returnType(*name)
#ifndef NULL_PTR
#define NULL_PTR 0
#endif
#include REF_PKCS11

int main(void)
{
#define S(s) printf("#define REF_SIZE_%s %zu\n", #s, sizeof(s));
#define F(s, f) printf("#define REF_OFF_%s_%s %zu\n", #s, #f, offsetof(s, f));
#include "layout.def"
	return 0;
}
