#!/bin/bash
# Key wrapping the way a pkcs11-tool user does it: an AES-256 key wrapped and
# unwrapped under an AES key encryption key with -m AES-ECB and with -m AES-CBC
# (and --iv), through OpenSC 0.23's --wrap / --unwrap. The unwrapped key must
# be the same key: data encrypted under the original decrypts under the copy
# and the other way round, and (both being readable) the values are equal.
#
# pkcs11-tool 0.23 --wrap: --id names the wrapping key, --application-id the
# secret key to wrap; --unwrap: --id names the unwrapping key, --key-type AES:32
# makes the template (CKA_VALUE_LEN 32, CKA_ENCRYPT/DECRYPT, CKA_TOKEN), and
# --application-id / --application-label name the new key. --iv is used for
# AES-CBC and AES-CBC-PAD only.
. "$(dirname "$0")/lib.sh"
new_store wrap_modes
D=$STORE
init_token wrapm-tok || exit 0
L=(--token-label "$TOKEN_LABEL" --login --pin "$PIN")
IV=0f0e0d0c0b0a09080706050403020100
OTHER_IV=f0e0d0c0b0a090807060504030201000
DATA_IV=000102030405060708090a0b0c0d0e0f

# The key encryption key: wrap/unwrap only, never extractable. The key to
# carry: extractable, not sensitive (pkcs11-tool's default), encrypt/decrypt.
step "pkcs11-tool keygen AES-256 KEK (--usage-wrap)" p11 "${L[@]}" --keygen --key-type AES:32 --label kek --id 10 \
	--usage-wrap
step "pkcs11-tool keygen AES-256 data key (--extractable)" p11 "${L[@]}" --keygen --key-type AES:32 --label dk \
	--id 20 --extractable
head -c 1000 /dev/urandom >"$D/data"
step "pkcs11-tool encrypt under the data key (AES-CBC-PAD)" p11 "${L[@]}" --encrypt -m AES-CBC-PAD --iv $DATA_IV \
	--id 20 -i "$D/data" -o "$D/data.enc"
p11 "${L[@]}" --read-object --type secrkey --id 20 -o "$D/dk.value" >/dev/null 2>&1

# wrap_mode NAME ID MECHANISM [--iv HEX]: wrap the data key with MECHANISM,
# unwrap it as a new key with CKA_ID ID, and check the copy is the key.
# XF_WRAP / XF_UNWRAP: why SoftHSMv2 fails the wrap / the unwrap, if it does.
wrap_mode() {
	local name=$1 id=$2 mech=$3 args
	shift 3
	args="$mech${*:+ $*}"
	xfail_softhsm "$XF_WRAP"
	step "pkcs11-tool --wrap -m $args" p11 "${L[@]}" --wrap -m "$mech" "$@" --id 10 --application-id 20 \
		-o "$D/dk.$name" || return
	check "$mech: wrapped key is 32 bytes and not the key" bash -c '
		[ "$(stat -c %s "$1")" -eq 32 ] || { echo "wrapped key of $(stat -c %s "$1") bytes"; exit 1; }
		! [ -s "$2" ] || ! cmp -s "$1" "$2"' _ "$D/dk.$name" "$D/dk.value"
	xfail_softhsm "$XF_UNWRAP"
	step "pkcs11-tool --unwrap -m $args" p11 "${L[@]}" --unwrap -m "$mech" "$@" --id 10 -i "$D/dk.$name" \
		--key-type AES:32 --application-id "$id" --application-label "dk-$name" --extractable || return
	step "$mech: the unwrapped key decrypts what the data key encrypted" bash -c '
		pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --decrypt -m AES-CBC-PAD \
			--iv "$3" --id "$2" -i "$1/data.enc" -o "$1/data.$2" && cmp "$1/data" "$1/data.$2"' _ "$D" "$id" "$DATA_IV"
	step "$mech: the data key decrypts what the unwrapped key encrypted" bash -c '
		pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --encrypt -m AES-CBC-PAD \
			--iv "$3" --id "$2" -i "$1/data" -o "$1/data.enc.$2" &&
		pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --decrypt -m AES-CBC-PAD \
			--iv "$3" --id 20 -i "$1/data.enc.$2" -o "$1/data.back.$2" && cmp "$1/data" "$1/data.back.$2"' \
		_ "$D" "$id" "$DATA_IV"
	check "$mech: the unwrapped key has the data key's value" bash -c '
		pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --read-object \
			--type secrkey --id "$2" -o "$1/value.$2" && [ -s "$1/dk.value" ] && cmp "$1/dk.value" "$1/value.$2"' _ "$D" "$id"
}

XF_WRAP="SoftHSMv2 2.6.1 does not wrap with CKM_AES_ECB" XF_UNWRAP="" wrap_mode ecb 30 AES-ECB
XF_WRAP="" XF_UNWRAP="SoftHSMv2 2.6.1 wraps with CKM_AES_CBC but does not unwrap with it" wrap_mode cbc 31 AES-CBC --iv $IV
# The IV is part of the key: the first block of a CBC-wrapped key unwrapped
# under another IV is not the key's, so the copy cannot decrypt the data.
if [ -s "$D/dk.cbc" ]; then
	xfail_softhsm "SoftHSMv2 2.6.1 does not unwrap with CKM_AES_CBC"
	check "AES-CBC: unwrapped under another IV, the key differs" bash -c '
		pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --unwrap -m AES-CBC \
			--iv "$2" --id 10 -i "$1/dk.cbc" --key-type AES:32 --application-id 32 --application-label dk-cbc-bad \
			--extractable || exit 1
		! pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --decrypt -m AES-CBC-PAD \
			--iv "$3" --id 32 -i "$1/data.enc" -o "$1/data.32" 2>/dev/null || ! cmp -s "$1/data" "$1/data.32"' \
		_ "$D" "$OTHER_IV" "$DATA_IV"
fi

# gohsm's strict policy (policy = strict in the configuration file) refuses
# unauthenticated wrapping modes and keeps the AES key wraps: what a user of
# pkcs11-tool sees when the administrator turns it on. In remote mode the
# policy is the appliance's: policy_conf starts a second appliance on this
# store with policy = strict, and the module talks to that one.
if [ "$KIND" = gohsm ]; then
	policy_conf strict || POLICY_CONF=$D/no-strict-appliance.conf # then both steps fail
	check "policy strict: pkcs11-tool --wrap -m AES-CBC is refused (CKR_MECHANISM_INVALID)" bash -c '
		out=$(GOHSM_CONF="$1" pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" 			--wrap -m AES-CBC --iv "$2" --id 10 --application-id 20 -o "$3/strict.cbc" 2>&1) && exit 1
		grep -q CKR_MECHANISM_INVALID <<<"$out"' _ "$POLICY_CONF" "$IV" "$D"
	step "policy strict: pkcs11-tool --wrap -m AES-KEY-WRAP still works" env GOHSM_CONF="$POLICY_CONF" \
		pkcs11-tool --module "$MODULE" "${L[@]}" --wrap -m AES-KEY-WRAP --id 10 --application-id 20 -o "$D/strict.kw"
fi
exit 0
