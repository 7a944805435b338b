// Package gateway is the crypto gateway's benchmark: a load generator
// that speaks Vault Transit's HTTP API (github.com/valyala/fasthttp's
// client) to any server that serves it, gohsm's gateway or OpenBao/Vault,
// so both are measured by the same client, in the same run, on the same
// machine.
//
// Method. Each cell is one operation (encrypt 64 B, ECDSA P-256 sign of
// 32 B) at one batch size (1 or 100 items per request) against one
// server:
//
//   - peak: a closed loop of Conns workers, each with one request in
//     flight on its own keep-alive connection, for Duration after Warmup;
//     requests/s, items/s, and latency percentiles of every request;
//   - server CPU: utime+stime of the server process (/proc/PID/stat)
//     read before and after the timed window, per request and per 1,000
//     items. The load generator shares the machine's cores; its own CPU
//     is reported beside (/proc/self/stat);
//   - half peak: an open loop at half the peak's requests/s, requests
//     sent on a fixed schedule over the same connections, latency timed
//     from each request's scheduled start (so a stalled server is charged
//     for the requests it delayed: no coordinated omission); its p99.
//
// Servers: gohsm once per audit fsync policy (gohsm: always, the default;
// gohsm-sync-none: written, not fsynced, the durability of Vault's file
// audit device), and OpenBao without an audit device (openbao, the issue's
// reference) and with a file audit device declared in its configuration
// (openbao-audit), so that the report can compare like with like beside
// the reference; and http-floor (floor.go), fasthttp alone answering a
// fixed Transit-shaped body, which is no Transit server: what HTTP costs
// on this machine, which the report sets the CPU targets against.
//
// Signing has a floor of its own: both servers sign with crypto/ecdsa, so
// when the run signs, SignCost times that call on one core (thread CPU
// clock, before the first cell and after the last), and the report sets
// the sign targets against it: the CPU budget beyond HTTP and the
// signature, and the most requests or items per second the machine's
// cores could sign with nothing else running.
//
// Targets are interleaved cell by cell (A, B, A, B, ...) so that drift on
// a shared machine hits both alike, and the page cache is written back
// (sync) before each cell, so that no cell pays for the writeback of the
// audit logs an earlier one wrote. Every response is checked: status 200
// and one ciphertext or signature per item; the first response of each
// cell is decoded fully. A cell with any failed request says so.
//
// Concurrency: a run is sequential, cell by cell; inside a cell the
// workers share one fasthttp.HostClient (safe for concurrent use), and
// each worker owns its request and response objects.
package gateway
