#!/usr/bin/env bash
# Measures libgohsm.so from a C host (bench/chost/csrc/chost.c: no Go runtime in
# the host process), one session per thread, and the raw Go libraries on the
# same machine in the same run, for the ops the post-quantum issue targets.
#   scripts/bench-chost.sh [seconds per point, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
mkdir -p build
gcc -O2 -Wall -Ibench -o build/chost bench/chost/csrc/chost.c bench/kem.c -ldl -lpthread
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
export GOHSM_DIR=$store
M=$PWD/build/libgohsm.so
pkcs11-tool --module "$M" --slot-index 0 --init-token --label chost --so-pin 87654321 >/dev/null
pkcs11-tool --module "$M" --token-label chost --login --login-type so --so-pin 87654321 --init-pin --pin 24681357 >/dev/null
echo "== libgohsm.so from a C host (ops/s)"
for op in ed25519 mldsa65 ecdsa-p256 mlkem768; do
	build/chost "$M" 24681357 "$op" "$secs" 2
done
echo "== raw Go libraries (ns/op; ops/s = 1e9/ns)"
go test -run XXX -bench 'Raw' -cpu 1,2 -benchtime "${secs}s" ./bench/chost | grep '^Benchmark'
