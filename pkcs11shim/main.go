// Command pkcs11shim is libgohsm.so, the PKCS#11 C ABI of gohsm, built with
// `go build -buildmode=c-shared ./pkcs11shim`.
//
// The C files hold everything that must work without Go: the function
// tables, C_GetFunctionList / C_GetInterfaceList / C_GetInterface, the 3.0
// message-function stubs and fork detection (tables.c, entry.c). Each C_*
// entry point checks for a fork and then calls its Go wrapper, go<name>
// (exports_*.go). Where PKCS#11 versions give a call different meanings,
// the 2.40 and 3.0 tables hold entries of their own that tell the wrapper
// which interface the caller chose (shim.h, ifaces.go). The wrappers
// convert between C and Go and nothing else: they copy every C buffer into
// Go memory before calling the hsm.Backend, check pointer arguments, and
// turn errors into CK_RV with hsm.ToRV. The shim never sees the engine's
// internals, so a remote client can stand in for the local engine.
//
// The package is `main` only because c-shared requires it; main is empty.
package main

/*
#cgo CFLAGS: -O2 -Wall -Wno-unused-parameter
#include "shim.h"
*/
import "C"

func main() {}
