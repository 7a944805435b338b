#!/bin/bash
# NSS: add the module to a fresh NSS database with modutil, list it, and have
# certutil list a certificate stored on the token.
. "$(dirname "$0")/lib.sh"
new_store nss
D=$STORE
init_token nss-tok || exit 0
L=(--token-label "$TOKEN_LABEL" --login --pin "$PIN")

# The certificate made by the OpenSSL step (or a fresh one when run alone),
# with a key pair on this token so that NSS sees a user certificate.
step "keygen RSA-2048 (pkcs11-tool)" p11 "${L[@]}" --keypairgen --key-type rsa:2048 --label nsskey --id 41
if [ -s "$WORK/shared/cert.der" ]; then
	cp "$WORK/shared/cert.der" "$D/cert.der"
else
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/k.pem" -subj "/CN=gohsm nss" -days 2 \
		-outform DER -out "$D/cert.der" 2>/dev/null
fi
step "pkcs11-tool --write-object cert (DER) onto the token" p11 "${L[@]}" --write-object "$D/cert.der" \
	--type cert --label nsscert --id 41

mkdir -p "$D/db"
printf '%s\n' "$PIN" >"$D/pinfile"
step "certutil -N (empty password DB)" certutil -N -d "sql:$D/db" --empty-password
step "modutil -add the module" modutil -force -dbdir "sql:$D/db" -add gohsmtest -libfile "$MODULE"
step "modutil -list shows module and token" bash -c '
	modutil -list -dbdir "sql:$1/db" </dev/null | tee /dev/stderr >"$1/modlist.txt"
	grep -q "gohsmtest" "$1/modlist.txt" && grep -q "token: $TOKEN_LABEL" "$1/modlist.txt"' _ "$D"
step "certutil -L -h <token> lists the certificate" bash -c '
	certutil -L -d "sql:$1/db" -h "$TOKEN_LABEL" -f "$1/pinfile" | tee /dev/stderr | grep -q "$TOKEN_LABEL:nsscert"' _ "$D"
step "certutil -L -n shows the same certificate" bash -c '
	certutil -L -d "sql:$1/db" -h "$TOKEN_LABEL" -f "$1/pinfile" -n "$TOKEN_LABEL:nsscert" -r >"$1/back.der" &&
	cmp "$1/back.der" "$1/cert.der"' _ "$D"
step "certutil -K -h <token> lists the private key" bash -c '
	certutil -K -d "sql:$1/db" -h "$TOKEN_LABEL" -f "$1/pinfile" | tee /dev/stderr | grep -qi "rsa"' _ "$D"
exit 0
