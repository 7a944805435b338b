#!/bin/bash
# Run the test suites of two Go PKCS#11 client libraries against a module:
#   github.com/miekg/pkcs11 v1.1.2 and github.com/ThalesIgnite/crypto11 v1.2.5.
#
#   tests/gosuites/run.sh <absolute module path>      (libgohsm.so or libsofthsm2.so)
#
# Each suite runs in a Go test binary that loads the module into the same
# process: with libgohsm.so that is two Go runtimes in one process (the test
# binary's and the module's), which works on Go 1.26 here but is not promised
# by the Go team (golang/go#18976) -- a passing run is our evidence for it.
# Ends with "N passed, N failed" (one step per suite run plus one per failed Go test;
# a test that kills the test binary counts as failed).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 <absolute module path>" >&2; exit 2; }
TAG=gosuites
. "$HERE/../clients/lib.sh" "$1"
export GOFLAGS=-mod=mod GOWORK=off
STEP_TIMEOUT=${GOSUITE_TIMEOUT:-300}
echo "== Go client suites against $MODULE ($KIND${REMOTE:+, remote mode: each store behind its own gohsm serve}); scratch $WORK"
[ "$KIND" = gohsm ] && echo "   (the module's Go runtime and the test binary's Go runtime share one process)"

# fetch MOD@VER DEST: a writable copy of the module's source from the module cache.
fetch() {
	local dir
	dir=$(cd "$WORK" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] && [ -d "$dir" ] || { echo "go mod download $1 failed"; return 1; }
	cp -r "$dir" "$2" && chmod -R u+w "$2"
}

# gotest NAME DIR [go test args]: run the suite, one step for the run, one per failed test.
gotest() {
	local name=$1 dir=$2 log p f s t
	shift 2
	log=$LOGS/$name.gotest.log
	(cd "$dir" && timeout -k 5 "$STEP_TIMEOUT" go test -count=1 -v "$@" .) >"$log" 2>&1
	local rc=$?
	p=$(grep -c '^--- PASS' "$log"); f=$(grep -c '^--- FAIL' "$log"); s=$(grep -c '^--- SKIP' "$log")
	echo "    $name: $p tests passed, $f failed, $s skipped (go test exit $rc)"
	grep '^--- FAIL' "$log" | while read -r _ _ t _; do
		if [ "$KIND" = gohsm ] && [ -n "${XFAIL_GOHSM[$t]:-}" ]; then
			echo "XFAIL $TAG: $name $t [gohsm: ${XFAIL_GOHSM[$t]}]" | tee -a "$RESULTS"
			continue
		fi
		echo "FAIL $TAG: $name $t" | tee -a "$RESULTS"
		sed -n "/^=== RUN   $t\$/,/^--- FAIL: $t /p" "$log" | grep -vE '^(=== |--- )' | head -n 8 | sed 's/^/    | /'
	done
	# A test that calls log.Fatal/os.Exit (miekg's examples do) kills the test
	# binary: no "--- FAIL" line, and the tests after it never run.
	t=$(grep '^=== RUN ' "$log" | tail -n 1 | awk '{print $3}')
	if [ $rc -ne 0 ] && [ -n "$t" ] && ! grep -qE "^ *--- (PASS|FAIL|SKIP): $t " "$log"; then
		echo "FAIL $TAG: $name $t (the test binary died in it; later tests did not run)" | tee -a "$RESULTS"
		sed -n "/^=== RUN   $t\$/,\$p" "$log" | head -n 6 | sed 's/^/    | /'
	fi
	[ $rc -eq 124 ] && echo "(timed out)" >>"$log"
	_record "$name go test ($p passed, $f failed, $s skipped)" $rc "$log"
}

# Checks that assert SoftHSM's own identity, not PKCS#11 behaviour.
declare -A XFAIL_GOHSM=([TestGetInfo]="asserts ManufacturerID == \"SoftHSM\"")

# --- github.com/miekg/pkcs11: SOFTHSM_LIB / SOFTHSM_PIN, the first slot of C_GetSlotList(true).
# ExampleCtx_Sign logs in with the hard-coded PIN "1234", so that is this token's PIN.
new_store miekg
PIN=1234 init_token miekg-tok
SRC=$WORK/src-miekg-pkcs11
if step "fetch github.com/miekg/pkcs11@v1.1.2" fetch github.com/miekg/pkcs11@v1.1.2 "$SRC"; then
	# Its package init points SOFTHSM2_CONF at softhsm2.conf in the package folder.
	[ "$KIND" = softhsm ] && cp "$SOFTHSM2_CONF" "$SRC/softhsm2.conf"
	skip=()
	if [ "$KIND" = gohsm ]; then
		# TestGetInfo asserts the manufacturer is "SoftHSM"; gohsm does not
		# pretend to be SoftHSM. Every other test runs.
		echo "    miekg-pkcs11: -skip ^TestGetInfo\$ (it checks for SoftHSM's ManufacturerID)"
		skip=(-skip '^TestGetInfo$')
	fi
	SOFTHSM_LIB=$MODULE SOFTHSM_PIN=1234 SOFTHSM_TOKENLABEL=$TOKEN_LABEL gotest miekg-pkcs11 "$SRC" "${skip[@]}"
fi

# --- github.com/ThalesIgnite/crypto11: a JSON "config" in the package folder.
new_store crypto11
init_token crypto11-tok
SRC=$WORK/src-crypto11
if step "fetch github.com/ThalesIgnite/crypto11@v1.2.5" fetch github.com/ThalesIgnite/crypto11@v1.2.5 "$SRC"; then
	printf '{"Path": "%s", "TokenLabel": "%s", "Pin": "%s"}\n' "$MODULE" "$TOKEN_LABEL" "$PIN" >"$SRC/config"
	if [ "$KIND" = gohsm ]; then
		# gohsm has no DSA: FIPS 186-5 withdrew DSA signature generation.
		echo "    crypto11: CRYPTO11_SKIP=DSA (gohsm implements no DSA)"
		export CRYPTO11_SKIP=DSA
	fi
	gotest crypto11 "$SRC"
fi
