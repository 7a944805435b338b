# Shared helpers for the real-client scripts; sourced, never run.
#
# run.sh exports MODULE (absolute path), KIND (softhsm|gohsm), WORK (a scratch
# folder for this run) and RESULTS (one "PASS|FAIL|XFAIL|XPASS name" per line).
# A client script may also be run alone: `tests/clients/ssh.sh <module>`.

set -u

if [ -z "${MODULE:-}" ]; then
	MODULE=$(realpath "${1:?usage: $0 <absolute module path>}")
	case "$MODULE" in *softhsm*) KIND=softhsm ;; *) KIND=gohsm ;; esac
	WORK=$(mktemp -d /tmp/gohsm-clients.XXXXXX)
	RESULTS=$WORK/results
	export MODULE KIND WORK RESULTS
	_STANDALONE=1
fi

if [ -n "${REMOTE:-}" ] && [ "$KIND" != gohsm ]; then
	echo "REMOTE=1 is libgohsm.so's remote mode; $MODULE has none" >&2
	exit 2
fi

# at_exit CMD: run CMD when the script ends (e.g. stop a daemon it started).
_AT_EXIT=()
at_exit() { _AT_EXIT+=("$1"); }
_on_exit() {
	local c
	for c in "${_AT_EXIT[@]}"; do eval "$c"; done
	[ -n "${_STANDALONE:-}" ] || return 0
	save_results
	# As run.sh: the scratch folder stays when something failed or KEEP is set.
	if [ -z "${KEEP:-}" ] && ! grep -q "^FAIL " "$RESULTS"; then
		local summary rc
		summary=$(summary_line)
		rc=$?
		rm -rf "$WORK"
		echo "$summary"
		exit $rc
	fi
	echo "logs in $WORK"
	summary_line
	exit $?
}

# save_results: with RESULTS_OUT set, a copy of the run's PASS/FAIL lines
# there (tests/remote/run.sh compares a remote run's with a local run's).
save_results() {
	[ -n "${RESULTS_OUT:-}" ] || return 0
	mkdir -p "$(dirname "$RESULTS_OUT")" && cp "$RESULTS" "$RESULTS_OUT"
}
trap _on_exit EXIT

# PINs are test constants, long enough for any sane minimum length.
SO_PIN=${SO_PIN:-87654321}
PIN=${PIN:-24681357}
STEP_TIMEOUT=${STEP_TIMEOUT:-90}
export SO_PIN PIN
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SYS_PY=/usr/bin/python3

summary_line() {
	local p f x
	p=$(grep -cE '^(PASS|XPASS) ' "$RESULTS" 2>/dev/null)
	f=$(grep -cE '^FAIL ' "$RESULTS" 2>/dev/null)
	x=$(grep -cE '^XFAIL ' "$RESULTS" 2>/dev/null)
	[ "${x:-0}" -gt 0 ] && echo "($x expected failures on $KIND, not counted)"
	echo "${p:-0} passed, ${f:-0} failed"
	[ "${f:-0}" -eq 0 ]
}

# new_store NAME: a fresh, empty token store for the module under test; every
# later command in the calling script uses it.
new_store() {
	STORE=$WORK/$1
	rm -rf "$STORE"
	mkdir -p "$STORE/tokens" "$STORE/logs"
	LOGS=$STORE/logs
	if [ "$KIND" = softhsm ]; then
		printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
			"$STORE/tokens" >"$STORE/softhsm2.conf"
		export SOFTHSM2_CONF=$STORE/softhsm2.conf
	elif [ -n "${REMOTE:-}" ]; then
		start_appliance "$STORE/tokens" main || { echo "FAIL $TAG: appliance on $STORE" | tee -a "$RESULTS"; exit 1; }
		export GOHSM_CONF=$APPLIANCE_CONF
		unset GOHSM_DIR
	else
		export GOHSM_DIR=$STORE/tokens
		unset GOHSM_CONF
	fi
}

# --- remote mode (REMOTE=1, libgohsm.so only) ---------------------------------
# Each fresh store is a fresh appliance: `gohsm serve --config` (the gohsm
# binary next to the module, or $GOHSM_BIN) on a free loopback port over the
# store, one client identity that sees every token and is admin (as dev
# mode's), and the module in mode = remote pointed at it. One development PKI
# per run ($WORK/pki). Appliances stop when the script ends.

# start_appliance DIR NAME [SERVE-CONF-LINE...]: an appliance on the store DIR;
# its files (serve.conf, remote.conf, audit.log, serve.log) in
# $STORE/appliance-NAME. Sets APPLIANCE_CONF (the module's remote.conf) and
# APPLIANCE_PID.
start_appliance() {
	if [ -n "${CLUSTER:-}" ]; then
		start_cluster_appliance "$@"
		return
	fi
	local dir=$1 name=$2 a addr pid i
	shift 2
	local bin=${GOHSM_BIN:-$(dirname "$MODULE")/gohsm}
	a=$STORE/appliance-$name
	mkdir -p "$a" "$dir"
	[ -x "$bin" ] || { echo "remote mode: no gohsm binary at $bin (make build, or set GOHSM_BIN)" >&2; return 1; }
	if [ ! -f "$WORK/pki/client.key" ]; then
		"$bin" pki init "$WORK/pki" >"$WORK/pki-init.log" 2>&1 || { cat "$WORK/pki-init.log" >&2; return 1; }
	fi
	{
		printf 'listen = 127.0.0.1:0\ndir = %s\naudit_log = %s\n' "$dir" "$a/audit.log"
		printf 'tls_cert = %s\ntls_key = %s\nclient_ca = %s\n' "$WORK/pki/server.pem" "$WORK/pki/server.key" "$WORK/pki/ca.pem"
		printf 'client.dev-client = *\nadmin.dev-client = true\nshutdown_timeout = 10s\n'
		printf '%s\n' "$@"
	} >"$a/serve.conf"
	"$bin" serve --config "$a/serve.conf" >"$a/serve.log" 2>&1 &
	pid=$!
	at_exit "stop_appliance $pid"
	# Should this script be killed before at_exit runs, the appliance follows.
	( while kill -0 $$ 2>/dev/null; do sleep 2; done; kill "$pid" 2>/dev/null ) >/dev/null 2>&1 </dev/null &
	for i in $(seq 300); do
		addr=$(sed -n 's/.*listening on \([^ ]*\) (.*/\1/p' "$a/serve.log")
		[ -n "$addr" ] && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$addr" ] || { echo "remote mode: gohsm serve did not start:" >&2; cat "$a/serve.log" >&2; return 1; }
	printf 'mode = remote\naddress = %s\nca = %s\ncert = %s\nkey = %s\n' \
		"$addr" "$WORK/pki/ca.pem" "$WORK/pki/client.pem" "$WORK/pki/client.key" >"$a/remote.conf"
	APPLIANCE_CONF=$a/remote.conf APPLIANCE_PID=$pid
}

# --- cluster mode (REMOTE=1 CLUSTER=1: docs/cluster.md) ----------------------
# The first start_appliance on a store makes a cluster of three members
# (gohsm serve --config with raft = ..., one raft data directory each, a
# cluster CA of the run's own in $WORK/cluster-pki) and the module's
# remote.conf lists all three appliances. A later start_appliance on the
# same store (policy_conf) adds a member with its extra configuration lines,
# and its remote.conf names that member only.
declare -A CLUSTER_JOIN
start_cluster_appliance() {
	local dir=$1 name=$2 a addrs="" join i n bin pid addr raddr cn
	shift 2
	bin=${GOHSM_BIN:-$(dirname "$MODULE")/gohsm}
	[ -x "$bin" ] || { echo "cluster mode: no gohsm binary at $bin" >&2; return 1; }
	if [ ! -f "$WORK/pki/client.key" ]; then
		"$bin" pki init "$WORK/pki" >"$WORK/pki-init.log" 2>&1 || { cat "$WORK/pki-init.log" >&2; return 1; }
	fi
	if [ ! -f "$WORK/cluster-pki/ca.key" ]; then
		"$bin" pki init "$WORK/cluster-pki" >"$WORK/cluster-pki-init.log" 2>&1 || { cat "$WORK/cluster-pki-init.log" >&2; return 1; }
	fi
	join=${CLUSTER_JOIN[$dir]:-}
	n=3
	[ -n "$join" ] && n=1
	for i in $(seq $n); do
		a=$STORE/appliance-$name-m$i
		mkdir -p "$a"
		cn=$(basename "$STORE")-$name-m$i
		"$bin" pki client "$WORK/cluster-pki" "$cn" >"$a/pki.log" 2>&1 || { cat "$a/pki.log" >&2; return 1; }
		{
			printf 'listen = 127.0.0.1:0\ndir = %s\naudit_log = %s\n' "$a/store" "$a/audit.log"
			printf 'tls_cert = %s\ntls_key = %s\nclient_ca = %s\n' "$WORK/pki/server.pem" "$WORK/pki/server.key" "$WORK/pki/ca.pem"
			printf 'client.dev-client = *\nadmin.dev-client = true\nshutdown_timeout = 10s\n'
			printf 'raft = 127.0.0.1:0\nnode_id = %s-m%d\ncluster_ca = %s\n' "$name" "$i" "$WORK/cluster-pki/ca.pem"
			printf 'member_cert = %s\nmember_key = %s\n' "$WORK/cluster-pki/$cn.pem" "$WORK/cluster-pki/$cn.key"
			[ -n "$join" ] && printf 'raft_join = %s\n' "$join"
			printf '%s\n' "$@"
		} >"$a/serve.conf"
		"$bin" serve --config "$a/serve.conf" >"$a/serve.log" 2>&1 &
		pid=$!
		at_exit "stop_appliance $pid"
		( while kill -0 $$ 2>/dev/null; do sleep 2; done; kill "$pid" 2>/dev/null ) >/dev/null 2>&1 </dev/null &
		addr="" raddr=""
		for _ in $(seq 600); do
			raddr=$(sed -n 's/.*cluster: member [^ ]* on \([^ ]*\) (raft.*/\1/p' "$a/serve.log")
			addr=$(sed -n 's/.*listening on \([^ ]*\) (.*/\1/p' "$a/serve.log")
			[ -n "$addr" ] && break
			kill -0 $pid 2>/dev/null || break
			sleep 0.1
		done
		[ -n "$addr" ] || { echo "cluster mode: member $i did not start:" >&2; cat "$a/serve.log" >&2; return 1; }
		[ -z "$join" ] && join=$raddr
		addrs=${addrs:+$addrs,}$addr
	done
	CLUSTER_JOIN[$dir]=$join
	printf 'mode = remote\naddress = %s\nca = %s\ncert = %s\nkey = %s\n' \
		"$addrs" "$WORK/pki/ca.pem" "$WORK/pki/client.pem" "$WORK/pki/client.key" >"$STORE/appliance-$name-m1/remote.conf"
	APPLIANCE_CONF=$STORE/appliance-$name-m1/remote.conf APPLIANCE_PID=$pid
}

# stop_appliance PID: SIGTERM (in-flight calls finish, the store closes), then
# SIGKILL after 15 s.
stop_appliance() {
	local i
	kill -TERM "$1" 2>/dev/null || return 0
	for i in $(seq 150); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
	return 0
}

# policy_conf POLICY: sets POLICY_CONF to a module configuration under which
# the current store is used with the engine's `policy = POLICY`: locally a
# file with that line (GOHSM_DIR still names the store); in remote mode the
# policy is the appliance's, so a second appliance on the same store with it.
policy_conf() {
	if [ -n "${REMOTE:-}" ]; then
		start_appliance "$STORE/tokens" "policy-$1" "policy = $1" || return 1
		POLICY_CONF=$APPLIANCE_CONF
	else
		POLICY_CONF=$STORE/policy-$1.conf
		printf 'policy = %s\n' "$1" >"$POLICY_CONF"
	fi
}

_XFAIL=""
# xfail_softhsm REASON: the next step is known to fail on SoftHSMv2 only.
xfail_softhsm() { [ "$KIND" = softhsm ] && _XFAIL=$1; return 0; }

# step NAME CMD...: run CMD (with a timeout; output kept in a log file), record
# and print PASS/FAIL. Returns CMD's status so callers can skip what depends on it.
step() {
	local name=$1 rc log
	shift
	log=$LOGS/$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' '_').log
	LAST_LOG=$log
	if [ "$(type -t "$1")" = function ]; then
		export -f "$1"
		timeout -k 5 "$STEP_TIMEOUT" bash -c '"$@"' _ "$@" >"$log" 2>&1
	else
		timeout -k 5 "$STEP_TIMEOUT" "$@" >"$log" 2>&1
	fi
	rc=$?
	[ $rc -eq 124 ] && echo "(timed out after ${STEP_TIMEOUT}s)" >>"$log"
	[ $rc -gt 128 ] && [ $rc -ne 124 ] && echo "(killed by signal $((rc - 128)))" >>"$log"
	_record "$name" $rc "$log"
	return $rc
}

# check NAME CONDITION-CMD...: like step but for a quick assertion whose output
# matters only on failure.
check() { step "$@"; }

# Step names carry the client script's name, so that the summary is unambiguous.
TAG=${TAG:-$(basename "$0" .sh)}
_record() {
	local name="$TAG: $1" rc=$2 log=$3
	if [ -n "$_XFAIL" ]; then
		if [ "$rc" -ne 0 ]; then
			echo "XFAIL $name [$KIND: $_XFAIL]" | tee -a "$RESULTS"
		else
			echo "XPASS $name [expected to fail on $KIND: $_XFAIL]" | tee -a "$RESULTS"
		fi
		_XFAIL=""
		return
	fi
	if [ "$rc" -eq 0 ]; then
		echo "PASS $name" | tee -a "$RESULTS"
	else
		echo "FAIL $name (exit $rc; log $log)" | tee -a "$RESULTS"
		tail -n 15 "$log" | sed 's/^/    | /'
	fi
}

p11() { pkcs11-tool --module "$MODULE" "$@"; }
export -f p11

# tamper SRC DST OFFSET: DST is SRC with the byte at OFFSET inverted, so it
# differs whatever the byte was (writing a fixed value left it unchanged
# once in 256 runs).
tamper() {
	cp "$1" "$2"
	local b
	b=$(od -An -tu1 -j "$3" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((255 - b)))" | dd of="$2" bs=1 seek="$3" conv=notrunc 2>/dev/null
	! cmp -s "$1" "$2"
}
export -f tamper

# init_token LABEL: C_InitToken on the first free (uninitialised) slot, then
# C_InitPIN. Sets TOKEN_LABEL and SLOT_ID (decimal, as Java wants it).
init_token() {
	export TOKEN_LABEL=$1
	local free
	free=$(free_slot)
	step "init-token $1" p11 --slot "${free:-none}" --init-token --label "$1" --so-pin "$SO_PIN" || return 1
	step "init-pin $1" p11 --token-label "$1" --login --login-type so --so-pin "$SO_PIN" \
		--init-pin --pin "$PIN" || return 1
	SLOT_ID=$(slot_id_of "$1")
	[ -n "$SLOT_ID" ]
}

# free_slot: the id (0x...) of the first slot whose token is not initialised
# (pkcs11-tool -L: "token state: uninitialized", or flags without "token
# initialized"), not slot index 0: a store, or an appliance, that already
# holds tokens lists them before its free slot.
free_slot() {
	p11 -L 2>/dev/null | awk '
		/^Slot [0-9]+ \(0x[0-9a-fA-F]+\)/ {
			if (s != "" && free) { print s; printed = 1; exit }
			s = $3; gsub(/[():]/, "", s); free = 0; next
		}
		/token state: *uninitialized/ { free = 1 }
		/token flags/ { free = ($0 !~ /token initialized/) }
		END { if (!printed && s != "" && free) print s }'
}

# slot_id_of LABEL: the decimal slot id of the token with that label.
slot_id_of() {
	local hex
	hex=$(p11 -L 2>/dev/null | awk -v l="$1" '
		/^Slot [0-9]+ \(0x[0-9a-fA-F]+\)/ { s = $3; gsub(/[():]/, "", s) }
		/token label/ { sub(/^[^:]*: */, ""); if ($0 == l) { print s; exit } }')
	[ -n "$hex" ] && printf '%d\n' "$hex"
}

uri_key() { # uri_key OBJECT TYPE: RFC 7512 URI with the PIN
	printf 'pkcs11:token=%s;object=%s;type=%s?pin-value=%s' "$TOKEN_LABEL" "$1" "$2" "$PIN"
}

# import_results PREFIX LOG: record the "PASS name" / "FAIL name: why" lines a
# test program printed as steps of their own (XFAIL-able with xfail_match).
import_results() {
	local prefix=$1 log=$2 line verdict name
	while IFS= read -r line; do
		case "$line" in
		"PASS "*) verdict=0 ;;
		"FAIL "*) verdict=1 ;;
		*) continue ;;
		esac
		name=${line#* }
		_XFAIL=""
		if [ "$KIND" = softhsm ] && [ -n "${XFAIL_SOFTHSM_NAMES:-}" ]; then
			local pat reason
			while IFS='|' read -r pat reason; do
				[ -n "$pat" ] && [[ "${name%%:*}" == $pat ]] && _XFAIL=$reason
			done <<<"$XFAIL_SOFTHSM_NAMES"
		fi
		_record "$prefix${name%%:*}" $verdict "$log"
	done <"$log"
}

# run_checks NAME MARKER CMD...: run a test program that prints its own
# "PASS x" / "FAIL x: why" lines; record those, then record NAME as passed if
# the program ran to its end (printed a line starting with MARKER, exit 0 or 1:
# no crash, no hang). A failing check is counted once, under its own name.
run_checks() {
	local name=$1 marker=$2 log rc
	shift 2
	log=$LOGS/$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' '_').log
	LAST_LOG=$log
	timeout -k 5 "$STEP_TIMEOUT" "$@" >"$log" 2>&1
	rc=$?
	import_results "" "$log"
	if [ $rc -le 1 ] && grep -q "^$marker" "$log"; then
		_record "$name" 0 "$log"
	else
		echo "(exit status $rc; no '$marker' line: the program did not run to its end)" >>"$log"
		_record "$name" 1 "$log"
	fi
}
