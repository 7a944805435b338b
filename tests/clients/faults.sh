#!/bin/bash
# Fault plans drive real clients (docs/firmware.md, "Faults and latency"):
# with GOHSM_FAULTS naming a plan, pkcs11-tool, a crypto11 program and a
# miekg/pkcs11 program meet exactly the planned CKR at exactly the planned
# call; with a seed two runs fail identically; a token removal invalidates
# sessions and C_WaitForSlotEvent reports it. The module's own log (log =
# debug: every call and its return code) shows which call of the process
# got what. gohsm only: SoftHSMv2 has no fault plans.
. "$(dirname "$0")/lib.sh"
if [ "$KIND" = softhsm ]; then
	echo "    faults: fault plans are gohsm's (GOHSM_FAULTS); nothing to run on SoftHSMv2"
	exit 0
fi
new_store faults
D=$STORE
init_token faults-tok || exit 0
L=(--token-label "$TOKEN_LABEL" --login --pin "$PIN")
step "pkcs11-tool keygen EC P-256" p11 "${L[@]}" --keypairgen --key-type EC:prime256v1 --label ec1 --id 02 || exit 0
step "export the EC public key" bash -c '
	pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --read-object --type pubkey --id 02 -o "$1/ec.der" &&
	openssl pkey -pubin -inform DER -in "$1/ec.der" -out "$1/ec.pem"' _ "$D"
head -c 1000 /dev/urandom >"$D/data"

# plan NAME JSON: the plan file $D/NAME.json.
plan() { printf '%s\n' "$2" >"$D/$1.json"; }
# debug_conf NAME: a configuration that is the current one (remote mode's
# remote.conf, or none) plus the module's debug log in $D/NAME.log.
debug_conf() {
	local c=$D/debug-$1.conf
	{
		[ -n "${GOHSM_CONF:-}" ] && cat "$GOHSM_CONF"
		printf 'log = debug\nlog_file = %s\n' "$D/$1.log"
	} >"$c"
	: >"$D/$1.log"
	echo "$c"
}
# faulty NAME CMD...: CMD under plan NAME, with the module's debug log.
faulty() {
	local name=$1
	shift
	GOHSM_FAULTS=$D/$name.json GOHSM_CONF=$(debug_conf "$name") "$@"
}
# rvs NAME FUNCTION: the return codes of FUNCTION's calls, in order, from
# the module's log of plan NAME's run.
rvs() { grep -o "$2 -> [A-Z_0-9x]*" "$D/$1.log" | awk '{print $3}'; }
export -f plan debug_conf faulty rvs
export D

# 1. The first C_Sign of the process fails with the planned code. pkcs11-tool
# then retries as a multi-part signature: its C_SignInit is accepted, so the
# injected error ended the operation as a real one does, and the signature
# it makes verifies.
plan sign1 '{"rules": [{"function": "C_Sign", "nth": 1, "rv": "CKR_DEVICE_ERROR"}]}'
step "C_Sign nth 1: pkcs11-tool's C_Sign gets CKR_DEVICE_ERROR, its retry signs" bash -c '
	faulty sign1 pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --sign -m ECDSA-SHA256 \
		--signature-format openssl --id 02 -i "$D/data" -o "$D/sign1.sig" || exit 1
	got=$(rvs sign1 C_Sign | tr "\n" " "); echo "C_Sign: $got"
	[ "$got" = "CKR_DEVICE_ERROR " ] || exit 1
	got=$(rvs sign1 C_SignInit | tr "\n" " "); echo "C_SignInit: $got"
	[ "$got" = "CKR_OK CKR_OK " ] || exit 1
	openssl dgst -sha256 -verify "$D/ec.pem" -signature "$D/sign1.sig" "$D/data"'

# 2. The planned code in pkcs11-tool's own words, on the planned call: the
# second C_SignInit (the retry's).
plan sign2 '{"rules": [{"function": "C_Sign", "nth": 1, "rv": "CKR_DEVICE_ERROR"}, {"function": "C_SignInit", "nth": 2, "rv": "CKR_DEVICE_MEMORY"}]}'
step "C_SignInit nth 2: pkcs11-tool reports CKR_DEVICE_MEMORY" bash -c '
	out=$(faulty sign2 pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --sign -m ECDSA-SHA256 \
		--id 02 -i "$D/data" -o "$D/sign2.sig" 2>&1); rc=$?
	echo "$out"; echo "exit $rc"
	[ $rc -ne 0 ] && grep -q "C_SignInit failed: rv = CKR_DEVICE_MEMORY (0x31)" <<<"$out" &&
	[ "$(rvs sign2 C_SignInit | tr "\n" " ")" = "CKR_OK CKR_DEVICE_MEMORY " ]'

# 3. nth counts the function's calls in the process: listing objects makes
# dozens of C_GetAttributeValue calls (the 4th reads the first key's
# CKA_EC_POINT; pkcs11-tool 0.23 is silent about failed size queries, the
# odd calls here); exactly the 4th fails, and pkcs11-tool prints exactly
# one warning with the planned code.
plan attr4 '{"rules": [{"function": "C_GetAttributeValue", "nth": 4, "rv": "CKR_DEVICE_ERROR"}]}'
step "C_GetAttributeValue nth 4: exactly the 4th call fails, pkcs11-tool warns once" bash -c '
	out=$(faulty attr4 pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>&1)
	echo "$out" | grep -i "rv ="
	got=$(rvs attr4 C_GetAttributeValue | awk "{print NR\":\"\$0}" | grep ":CKR_DEVICE_ERROR$" | tr "\n" " ")
	echo "calls answered CKR_DEVICE_ERROR: $got (of $(rvs attr4 C_GetAttributeValue | wc -l) calls; the others are the engine'"'"'s own answers)"
	[ "$got" = "4:CKR_DEVICE_ERROR " ] && [ "$(grep -c "rv = CKR_DEVICE_ERROR (0x30)" <<<"$out")" = 1 ]'

# 4. With a seed, two runs fail identically; another seed fails otherwise.
plan seed7 '{"seed": 7, "rules": [{"function": "C_GetAttributeValue", "probability": 0.3, "rv": "CKR_DEVICE_MEMORY"}]}'
plan seed8 '{"seed": 8, "rules": [{"function": "C_GetAttributeValue", "probability": 0.3, "rv": "CKR_DEVICE_MEMORY"}]}'
step "seed 7 twice: pkcs11-tool -O fails identically; seed 8 differs" bash -c '
	a=$(faulty seed7 pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>&1); ra=$(rvs seed7 C_GetAttributeValue)
	b=$(faulty seed7 pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>&1); rb=$(rvs seed7 C_GetAttributeValue)
	c=$(faulty seed8 pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" -O 2>&1); rc=$(rvs seed8 C_GetAttributeValue)
	n=$(grep -c "CKR_DEVICE_MEMORY" <<<"$ra")
	echo "seed 7: $n of $(wc -l <<<"$ra") C_GetAttributeValue calls failed, twice the same: $([ "$a" = "$b" ] && [ "$ra" = "$rb" ] && echo yes || echo no)"
	echo "seed 8: $(grep -c CKR_DEVICE_MEMORY <<<"$rc") failed"
	[ "$n" -gt 0 ] && [ "$a" = "$b" ] && [ "$ra" = "$rb" ] && [ "$ra" != "$rc" ] && grep -q "rv = CKR_DEVICE_MEMORY" <<<"$a"'

# 5. Token removal as pkcs11-tool sees it: the slot is empty; its hotplug
# test (C_WaitForSlotEvent, blocking) is woken by the removal and by the
# re-insertion.
plan out '{"events": [{"event": "remove_token", "token": "'"$TOKEN_LABEL"'", "after_calls": 0}]}'
step "remove_token: pkcs11-tool -L shows the slot empty" bash -c '
	out=$(faulty out pkcs11-tool --module "$MODULE" -L 2>&1); echo "$out"
	grep -q "(empty)" <<<"$out" && ! grep -q "token label *: *$TOKEN_LABEL\$" <<<"$out"'
plan hotplug '{"events": [{"event": "remove_token", "token": "'"$TOKEN_LABEL"'", "after_ms": 500, "for_ms": 500}]}'
step "remove_token: pkcs11-tool --test-hotplug sees the removal and the re-insertion" bash -c '
	out=$(printf "x\n\n\nx\n" | faulty hotplug pkcs11-tool --module "$MODULE" --test-hotplug 2>&1); echo "$out"
	[ "$(grep -c "event on slot" <<<"$out")" = 2 ] || exit 1
	# After the first event the token is gone; after the second it is back.
	first=$(awk "/event on slot/{n++} n==1" <<<"$out"); second=$(awk "/event on slot/{n++} n==2" <<<"$out")
	grep -q "(empty)" <<<"$first" && ! grep -q "token label *: *$TOKEN_LABEL\$" <<<"$first" &&
	grep -q "token label *: *$TOKEN_LABEL\$" <<<"$second"'

# 6. Go programs (tests/faults, a module of its own): crypto11 and
# miekg/pkcs11 load the module into a Go test process, as
# tests/gosuites does.
FC=$D/faultclient
if step "build tests/faults (crypto11 v1.2.5, miekg/pkcs11 v1.1.2)" bash -c '
	cd "$1/../faults" && GOWORK=off GOFLAGS=-mod=mod go build -o "$2" .' _ "$HERE" "$FC"; then
	# crypto11 signs through miekg/pkcs11: two C_Sign calls per signature
	# (size query, signature). The 3rd C_Sign is signature 2's size query.
	plan c11 '{"rules": [{"function": "C_Sign", "nth": 3, "rv": "CKR_DEVICE_ERROR"}]}'
	GOHSM_FAULTS=$D/c11.json run_checks "crypto11: C_Sign nth 3 fails signature 2, the others verify" DONE \
		"$FC" crypto11 -module "$MODULE" -token "$TOKEN_LABEL" -pin "$PIN" -n 5 -expect 2=CKR_DEVICE_ERROR
	plan c11seed7 '{"seed": 7, "rules": [{"function": "C_Sign", "probability": 0.2, "rv": "CKR_DEVICE_MEMORY"}]}'
	plan c11seed8 '{"seed": 8, "rules": [{"function": "C_Sign", "probability": 0.2, "rv": "CKR_DEVICE_MEMORY"}]}'
	step "crypto11: seed 7 twice fails the same signatures; seed 8 others" bash -c '
		run() { GOHSM_FAULTS=$D/$1.json "$2" crypto11 -module "$MODULE" -token "$TOKEN_LABEL" -pin "$PIN" -n 40 -pattern | grep "^signature"; }
		a=$(run c11seed7 "$1"); b=$(run c11seed7 "$1"); c=$(run c11seed8 "$1")
		echo "seed 7: $(grep -c CKR_DEVICE_MEMORY <<<"$a") of 40 failed; seed 8: $(grep -c CKR_DEVICE_MEMORY <<<"$c")"
		grep CKR <<<"$a" | head -5
		[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ] && grep -q CKR_DEVICE_MEMORY <<<"$a"' _ "$FC"
	plan removal '{"events": [{"event": "remove_token", "token": "'"$TOKEN_LABEL"'", "after_ms": 1500, "for_ms": 700}]}'
	GOHSM_FAULTS=$D/removal.json run_checks "miekg/pkcs11: token removal and re-insertion" DONE \
		"$FC" removal -module "$MODULE" -token "$TOKEN_LABEL" -pin "$PIN" -label ec1
fi
