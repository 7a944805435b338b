#!/bin/bash
# Remote mode end to end through libgohsm.so and pkcs11-tool: who gets in,
# and what each client certificate sees. Two tokens on one appliance, two
# client certificates (gohsm pki client) mapped one to each: pkcs11-tool -L
# through each shows its token and nothing else, and the other's token is
# out of reach. A certificate from another CA, and one from the right CA
# whose CN the appliance does not name, are refused in the TLS handshake:
# C_Initialize answers CKR_DEVICE_ERROR within the module's timeout, nothing
# crashes, and the appliance goes on serving the others.
#
#   tests/remote/identities.sh <absolute path of libgohsm.so>   (gohsm next to it, or GOHSM_BIN)
REMOTE=1
. "$(dirname "$0")/../clients/lib.sh"
BIN=${GOHSM_BIN:-$(dirname "$MODULE")/gohsm}
TIMEOUT=2 # the refused clients' module timeout, seconds

# The store and an appliance whose admin (dev-client) makes the two tokens.
new_store identities
init_token part-a || exit 0
init_token part-b || exit 0
step "gohsm pki client: app-a, app-b, stranger" bash -c '
	for n in app-a app-b stranger; do "$1" pki client "$2" $n || exit 1; done' _ "$BIN" "$WORK/pki" || exit 0
step "gohsm pki init: another CA" "$BIN" pki init "$STORE/other-pki" || exit 0

# A second appliance on the same store, with the partitions.
start_appliance "$STORE/tokens" parts "client.app-a = part-a" "client.app-b = part-b" || {
	_record "appliance with partitions app-a -> part-a, app-b -> part-b" 1 "$STORE/appliance-parts/serve.log"
	exit 0
}
PARTS=$APPLIANCE_CONF
SERVE_LOG=$STORE/appliance-parts/serve.log
# conf_for NAME CA CERT KEY: a module configuration for this appliance.
conf_for() {
	sed -n '/^address = /p' "$PARTS" >"$STORE/$1.conf"
	printf 'mode = remote\nca = %s\ncert = %s\nkey = %s\ntimeout = %ss\n' "$2" "$3" "$4" "$TIMEOUT" >>"$STORE/$1.conf"
	echo "$STORE/$1.conf"
}
A=$(conf_for app-a "$WORK/pki/ca.pem" "$WORK/pki/app-a.pem" "$WORK/pki/app-a.key")
B=$(conf_for app-b "$WORK/pki/ca.pem" "$WORK/pki/app-b.pem" "$WORK/pki/app-b.key")
OTHER=$(conf_for other-ca "$WORK/pki/ca.pem" "$STORE/other-pki/client.pem" "$STORE/other-pki/client.key")
STRANGER=$(conf_for stranger "$WORK/pki/ca.pem" "$WORK/pki/stranger.pem" "$WORK/pki/stranger.key")
export A B PARTS

# sees CONF LABEL...: pkcs11-tool -L through CONF lists exactly these tokens
# and no other slot (no free slot: not an administrator).
sees() {
	local conf=$1 out labels slots
	shift
	out=$(GOHSM_CONF=$conf p11 -L 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	labels=$(sed -n 's/^ *token label *: *//p' <<<"$out" | sort | tr '\n' ' ')
	slots=$(grep -c '^Slot ' <<<"$out")
	[ "$labels" = "$(printf '%s\n' "$@" | sort | tr '\n' ' ')" ] && [ "$slots" -eq $# ] ||
		{ echo "want exactly the tokens: $*; saw: $labels($slots slots)"; return 1; }
}
export -f sees
step "app-a: pkcs11-tool -L shows part-a only" sees "$A" part-a
step "app-b: pkcs11-tool -L shows part-b only" sees "$B" part-b
step "dev-client (every token, admin): both tokens and the free slot" bash -c '
	out=$(GOHSM_CONF=$PARTS p11 -L) || exit 1; echo "$out"
	grep -q "token label *: *part-a$" <<<"$out" && grep -q "token label *: *part-b$" <<<"$out" &&
		grep -q "token state: *uninitialized" <<<"$out"'

# The other partition is out of reach: not by label, not by its slot id.
SLOT_B=$(GOHSM_CONF=$PARTS slot_id_of part-b)
export SLOT_B
step "app-a: part-b by label is not there" bash -c '
	! GOHSM_CONF=$A p11 --token-label part-b --login --pin "$PIN" -O'
step "app-a: part-b's slot id is CKR_SLOT_ID_INVALID (PyKCS11 C_GetTokenInfo, C_OpenSession)" env GOHSM_CONF="$A" \
	"$SYS_PY" -c '
import sys, PyKCS11
lib = PyKCS11.PyKCS11Lib(); lib.load(sys.argv[1]); slot = int(sys.argv[2])
for name, call in (("C_GetTokenInfo", lambda: lib.getTokenInfo(slot)), ("C_OpenSession", lambda: lib.openSession(slot))):
    try:
        call(); sys.exit(name + " on part-b succeeded through app-a")
    except PyKCS11.PyKCS11Error as e:
        print(name, e); assert e.value == PyKCS11.CKR_SLOT_ID_INVALID, e
' "$MODULE" "${SLOT_B:?}"
step "app-a: logs in on part-a and makes and lists a key" bash -c '
	GOHSM_CONF=$A p11 --token-label part-a --login --pin "$PIN" --keygen --key-type AES:32 --label a-key --id 0a &&
	GOHSM_CONF=$A p11 --token-label part-a --login --pin "$PIN" -O | grep -q "label: *a-key"'
step "app-b: does not see app-a's key on part-b" bash -c '
	! GOHSM_CONF=$B p11 --token-label part-b --login --pin "$PIN" -O | grep -q "a-key"'

# refused CONF: C_Initialize fails with CKR_DEVICE_ERROR, within the timeout
# (plus start-up), with exit status 1 (no crash, no hang).
refused() {
	local start end out rc
	start=$(date +%s%N)
	out=$(GOHSM_CONF=$1 timeout -k 2 30 pkcs11-tool --module "$MODULE" -L 2>&1)
	rc=$?
	end=$(date +%s%N)
	echo "$out"
	echo "exit $rc after $(((end - start) / 1000000)) ms (timeout ${TIMEOUT}s)"
	[ $rc -eq 1 ] && grep -q "C_Initialize.*CKR_DEVICE_ERROR" <<<"$out" &&
		[ $(((end - start) / 1000000)) -le $((TIMEOUT * 1000 + 1500)) ]
}
export -f refused
export TIMEOUT MODULE
step "a client certificate from another CA: C_Initialize CKR_DEVICE_ERROR within the timeout" refused "$OTHER"
grep -h '^exit' "$LAST_LOG" | sed 's/^/    /'
step "a certificate from the CA with a CN the appliance does not name: refused the same way" refused "$STRANGER"
grep -h '^exit' "$LAST_LOG" | sed 's/^/    /'
step "the appliance logged both refusals and goes on serving app-a" bash -c '
	grep -m1 "TLS handshake: .*unknown authority" "$1" && grep -m1 "certificate \"CN=stranger\" not authorised" "$1" &&
		sees "$A" part-a' _ "$SERVE_LOG"
exit 0
