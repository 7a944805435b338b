// Package conformance is a PKCS#11 conformance suite that judges any module
// only through its C ABI: it loads the module by path with
// github.com/miekg/pkcs11, plus a small cgo helper (raw.c) for the calls that
// package cannot express (NULL pointers, short buffers, C_GetInterface). It
// never imports the gohsm engine or shim, so our module gets no help the
// reference modules do not get.
//
// Each check has a stable id, the PKCS#11 section it enforces ("base" is the
// PKCS#11 Base Specification v3.0, "curr" the Current Mechanisms
// Specification v3.0) and a result: pass, fail, or skip when the module does
// not list the mechanism the check needs. Run drives one module; WriteJSON
// and WriteMarkdown produce build/conformance/<name>.json and
// docs/conformance.md; cmd/conformance runs a list of modules, each in its own
// process.
package conformance
