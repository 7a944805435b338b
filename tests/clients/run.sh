#!/bin/bash
# Real-client tests: drive a PKCS#11 module with the clients people actually
# use (OpenSC pkcs11-tool, GnuTLS p11tool, OpenSSL's pkcs11 engine, Java
# SunPKCS11, PyKCS11, OpenSSH, NSS) plus the C ABI sweep, each against a fresh
# token in an isolated store.
#
#   tests/clients/run.sh <absolute module path>        (libgohsm.so or libsofthsm2.so)
#   CLIENTS="openssl ssh" tests/clients/run.sh ...      (a subset)
#   KEEP=1 ...                                          (keep the scratch folder; kept anyway on failure)
#   REMOTE=1 ...                                        (libgohsm.so in remote mode: each store behind a
#                                                        gohsm serve of its own; see lib.sh, new_store)
#   REMOTE=1 CLUSTER=1 ...                              (each store a cluster of three gohsm serve members,
#                                                        the module pointed at all three: docs/cluster.md)
#   RESULTS_OUT=FILE ...                                (a copy of the PASS/FAIL lines)
#
# Prints PASS/FAIL per step and ends with "N passed, N failed"; exits non-zero
# on any failure. Steps known to fail on SoftHSMv2 only are XFAIL (not counted).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 <absolute module path>" >&2; exit 2; }
MODULE=$(realpath "$1") || exit 2
[ -f "$MODULE" ] || { echo "no module at $MODULE" >&2; echo "0 passed, 1 failed"; exit 1; }
case "$MODULE" in *softhsm*) KIND=softhsm ;; *) KIND=gohsm ;; esac
WORK=$(mktemp -d /tmp/gohsm-clients.XXXXXX)
RESULTS=$WORK/results
: >"$RESULTS"
export MODULE KIND WORK RESULTS

. "$HERE/lib.sh"

CLIENTS=${CLIENTS:-"pkcs11tool eddsa openssl p11tool java pykcs11 wrap wrap_modes ssh nss abi p11kit faults"}
start=$(date +%s)
echo "== real-client tests against $MODULE ($KIND${REMOTE:+, remote mode: each store behind its own gohsm serve}); scratch $WORK"
for c in $CLIENTS; do
	echo "-- $c"
	timeout -k 5 300 bash "$HERE/$c.sh"
	rc=$?
	if [ $rc -ge 124 ]; then
		echo "FAIL $c: script aborted (exit $rc)" | tee -a "$RESULTS"
	fi
done
echo "== done in $(($(date +%s) - start))s"
save_results
# The scratch folder (tokens, logs) stays when something failed or KEEP is set.
if [ -z "${KEEP:-}" ] && ! grep -q "^FAIL " "$RESULTS"; then
	summary=$(summary_line)
	rc=$?
	rm -rf "$WORK"
	echo "$summary"
	exit $rc
fi
echo "logs kept in $WORK"
summary_line
