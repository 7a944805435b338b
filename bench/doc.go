// Package bench measures PKCS#11 modules side by side through the C ABI
// (github.com/miekg/pkcs11), next to the same operations on the raw Go
// libraries, so that a report shows both how modules compare and what the
// PKCS#11 layer itself costs.
//
// Modules are driven only through their C functions: the harness never
// imports the engine, so it measures exactly what an application sees, and it
// works for any module (ours, SoftHSMv2, a vendor's).
//
// Method, in short: one session per worker; every (target, op) pair is
// checked once for a correct result before it is timed; modules are
// measured interleaved (A, B, raw, A, B, raw, ... for each op, thread count
// and repeat) so that drift on a shared machine hits all of them alike;
// ops/s is the median over repeats, latency percentiles pool every repeat.
package bench
