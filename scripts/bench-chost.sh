#!/usr/bin/env bash
# Measures libgohsm.so from a C host (bench/chost/csrc/chost.c: no Go runtime in
# the host process), one session per thread, against the raw Go libraries on
# the same machine in the same run, for the ops the post-quantum issue targets
# (goal: module ≥ 0.8x raw). Module and raw runs alternate per op and repeat;
# the table shows the median of the repeats, and the range of the ratios of
# each module run to the raw run next to it in time (on a shared VM a single
# ratio can be off by 10% either way). Prints Markdown.
#   scripts/bench-chost.sh [seconds per point, default 3] [repeats, default 3]
# OPS="mlkem768" (a space-separated subset) limits the ops.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
reps=${2:-3}
mkdir -p build
gcc -O2 -Wall -Ibench -o build/chost bench/chost/csrc/chost.c bench/kem.c -ldl -lpthread
go test -c -o build/chost-raw.test ./bench/chost
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
export GOHSM_DIR=$store
M=$PWD/build/libgohsm.so
pkcs11-tool --module "$M" --slot-index 0 --init-token --label chost --so-pin 87654321 >/dev/null 2>&1
pkcs11-tool --module "$M" --token-label chost --login --login-type so --so-pin 87654321 --init-pin --pin 24681357 >/dev/null 2>&1
declare -A raw=([ed25519]=RawEd25519SignParallel [mldsa65]=RawMLDSA65SignParallel
	[ecdsa-p256]=RawECDSAP256SignParallel [mlkem768]=RawMLKEM768EncapsParallel)
declare -A title=([ed25519]="Ed25519 sign (CKM_EDDSA, 32 B)" [mldsa65]="ML-DSA-65 sign (CKM_ML_DSA, hedged)"
	[ecdsa-p256]="ECDSA P-256 sign (CKM_ECDSA)" [mlkem768]="ML-KEM-768 C_EncapsulateKey + C_DestroyObject")
out=$(mktemp)
ops=${OPS:-ed25519 mldsa65 ecdsa-p256 mlkem768}
for op in $ops; do
	for ((r = 0; r < reps; r++)); do
		build/chost "$M" 24681357 "$op" "$secs" 2 | awk -v op="$op" -v r="$r" '{split($2, t, "="); split($3, v, "="); print op, t[2], "module", v[2], r}' >>"$out"
		build/chost-raw.test -test.run XXX -test.bench "^Benchmark${raw[$op]}\$" -test.cpu 1,2 -test.benchtime "${secs}s" |
			awk -v op="$op" -v r="$r" '/^Benchmark/ {n = split($1, p, "-"); th = (n > 1) ? p[n] : 1; print op, th, "raw", int(1e9 / $3), r}' >>"$out"
	done
done
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
echo "libgohsm.so from a C host vs the raw Go library, ops/s, median of $reps runs of ${secs}s ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| op | threads | module | raw | module / raw | paired runs: min – max |"
echo "|---|---:|---:|---:|---:|---:|"
for op in $ops; do
	for th in 1 2; do
		m=$(awk -v op="$op" -v th="$th" '$1 == op && $2 == th && $3 == "module" {print $4}' "$out" | median)
		r=$(awk -v op="$op" -v th="$th" '$1 == op && $2 == th && $3 == "raw" {print $4}' "$out" | median)
		span=$(awk -v op="$op" -v th="$th" '$1 == op && $2 == th {v[$3, $5] = $4; reps[$5] = 1}
			END {min = 1e9; max = 0; for (k in reps) if (v["raw", k] > 0) {q = v["module", k] / v["raw", k]; if (q < min) min = q; if (q > max) max = q}
			printf "%.2fx – %.2fx", min, max}' "$out")
		echo "| ${title[$op]} | $th | $m | $r | $(awk -v m="$m" -v r="$r" 'BEGIN {printf "%.2fx", m / r}') | $span |"
	done
done
rm -f "$out"
