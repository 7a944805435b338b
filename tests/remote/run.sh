#!/bin/bash
# The test suites through libgohsm.so in remote mode: wherever a suite makes
# a fresh token store, that store gets an appliance of its own (`gohsm serve
# --config` on a free loopback port, the run's development PKI, an audit
# log), and the module reaches it with mode = remote.
#
#   tests/remote/run.sh <absolute path of libgohsm.so>     (gohsm next to it, or GOHSM_BIN)
#
#   1. the real-client suite          REMOTE=1 tests/clients/run.sh
#   2. crypto11's and miekg's suites  REMOTE=1 tests/gosuites/run.sh
#   3. the conformance suite          go test ./conformance -run '^TestConformance$' with
#                                     GOHSM_CONFORMANCE_APPLIANCE (conformance/appliance.go)
#   4. identities and refusals        tests/remote/identities.sh
#
# Each suite's results go to RESULTS_DIR (default: test-results beside the
# module). When a local run of the same suite left its results there after
# the module was built (make test-clients, test-gosuites and test-go write
# them), the remote run must have exactly the same: the same steps passed,
# the same Go tests, the same conformance verdict for every check. Ends with
# a table of the counts; exits non-zero on any failure or difference.
set -u
[ $# -ge 1 ] || { echo "usage: $0 <absolute path of libgohsm.so>" >&2; exit 2; }
MODULE=$(realpath "$1") || exit 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export GOHSM_BIN=${GOHSM_BIN:-$(dirname "$MODULE")/gohsm}
OUT=${RESULTS_DIR:-$(dirname "$MODULE")/test-results}
mkdir -p "$OUT"
[ -x "$GOHSM_BIN" ] || { echo "no gohsm binary at $GOHSM_BIN (make build, or set GOHSM_BIN)" >&2; exit 2; }
start=$(date +%s)
failed=0
declare -A REMOTE_COUNT LOCAL_COUNT VERDICT

# count FILE: "N passed, N failed" of a clients/gosuites results file.
count() {
	[ -f "$1" ] || { echo "-"; return; }
	echo "$(grep -cE '^(PASS|XPASS) ' "$1") passed, $(grep -cE '^FAIL ' "$1") failed"
}

# fresh FILE: the file was written after the module was built.
fresh() { [ -f "$1" ] && [ "$1" -nt "$MODULE" ]; }

# compare_lines SUITE: the local and remote runs' result lines are the same.
compare_lines() {
	local l=$OUT/$1-local.txt r=$OUT/$1-remote.txt
	LOCAL_COUNT[$1]=$(fresh "$l" && count "$l" || echo "-")
	REMOTE_COUNT[$1]=$(count "$r")
	if ! fresh "$l"; then
		VERDICT[$1]="not compared (no local run since the module was built)"
	elif diff <(sed 's/ (exit .*//; s/ \[.*//' "$l" | sort) <(sed 's/ (exit .*//; s/ \[.*//' "$r" | sort) >"$OUT/$1.diff"; then
		VERDICT[$1]="same"
	else
		VERDICT[$1]="DIFFERENT (local <, remote >: $OUT/$1.diff)"
		sed 's/^/    /' "$OUT/$1.diff"
		failed=1
	fi
}

echo "== the suites through libgohsm.so in remote mode ($GOHSM_BIN serve)"
rm -f "$OUT"/*-remote.*
REMOTE=1 RESULTS_OUT=$OUT/clients-remote.txt "$ROOT/tests/clients/run.sh" "$MODULE" || failed=1
compare_lines clients
REMOTE=1 RESULTS_OUT=$OUT/gosuites-remote.txt "$ROOT/tests/gosuites/run.sh" "$MODULE" || failed=1
compare_lines gosuites

echo "== conformance suite through libgohsm.so in remote mode"
log=$OUT/conformance-remote.log
(cd "$ROOT" && GOHSM_CONFORMANCE_MODULE=$MODULE GOHSM_CONFORMANCE_APPLIANCE=$GOHSM_BIN \
	GOHSM_CONFORMANCE_RESULTS=$OUT/conformance-remote.json \
	go test -count=1 -run '^TestConformance$' -v ./conformance) >"$log" 2>&1
rc=$?
grep -E 'remote mode: gohsm serve on|gohsm: [0-9]+ checks|^--- |^(ok|FAIL)' "$log" | sed 's/^ *//; s/^/    /'
[ $rc -eq 0 ] || { grep -E '^\s+conformance_test.go:[0-9]+: .*(want|fail|\[)' "$log" | head -n 20; failed=1; }
conf_counts() {
	/usr/bin/python3 -c '
import json, sys
rs = json.load(open(sys.argv[1]))
n = {k: sum(r["result"] == k for r in rs) for k in ("pass", "fail", "skip")}
print("%d checks: %d pass, %d fail, %d skip" % (len(rs), n["pass"], n["fail"], n["skip"]))' "$1"
}
L=$OUT/conformance-local.json R=$OUT/conformance-remote.json
REMOTE_COUNT[conformance]=$([ -f "$R" ] && conf_counts "$R" || echo "-")
LOCAL_COUNT[conformance]=$(fresh "$L" && conf_counts "$L" || echo "-")
if ! fresh "$L"; then
	VERDICT[conformance]="not compared (no local run since the module was built)"
elif [ -f "$R" ] && /usr/bin/python3 -c '
import json, sys
l = {r["id"]: r["result"] for r in json.load(open(sys.argv[1]))}
r = {r["id"]: r["result"] for r in json.load(open(sys.argv[2]))}
diff = sorted(i for i in l.keys() | r.keys() if l.get(i) != r.get(i))
for i in diff:
    print("    %s: local %s, remote %s" % (i, l.get(i, "-"), r.get(i, "-")))
sys.exit(1 if diff else 0)' "$L" "$R"; then
	VERDICT[conformance]="same"
else
	VERDICT[conformance]="DIFFERENT"
	failed=1
fi

echo "== identities and refusals through libgohsm.so (tests/remote/identities.sh)"
RESULTS_OUT=$OUT/identities-remote.txt "$ROOT/tests/remote/identities.sh" "$MODULE" >"$OUT/identities-remote.log" 2>&1 || failed=1
grep -E '^(PASS|FAIL) |^    exit' "$OUT/identities-remote.log"
REMOTE_COUNT[identities]=$(count "$OUT/identities-remote.txt")
LOCAL_COUNT[identities]="(remote only)"
VERDICT[identities]=""

echo "== remote mode: done in $(($(date +%s) - start))s"
printf '%-12s %-36s %-36s %s\n' suite local remote "remote vs local"
for s in clients gosuites conformance identities; do
	printf '%-12s %-36s %-36s %s\n' "$s" "${LOCAL_COUNT[$s]}" "${REMOTE_COUNT[$s]}" "${VERDICT[$s]}"
done
exit $failed
