#!/bin/bash
# OpenSSL 3.0 + libp11's pkcs11 engine: sign by RFC 7512 URI, certificates and CSRs.
. "$(dirname "$0")/lib.sh"
new_store openssl
D=$STORE
init_token ossl-tok || exit 0
L=(--token-label "$TOKEN_LABEL" --login --pin "$PIN")
step "keygen RSA-2048 (pkcs11-tool)" p11 "${L[@]}" --keypairgen --key-type rsa:2048 --label rsakey --id 11
step "keygen EC P-256 (pkcs11-tool)" p11 "${L[@]}" --keypairgen --key-type EC:prime256v1 --label eckey --id 12
for k in rsakey eckey; do
	p11 --token-label "$TOKEN_LABEL" --read-object --type pubkey --label $k -o "$D/$k.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$D/$k.der" -out "$D/$k.pub.pem" 2>/dev/null
done

ENGINE=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
cat >"$D/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = $MODULE
init = 0
[req]
distinguished_name = dn
prompt = no
[dn]
CN = gohsm real-client test
CNF
export OPENSSL_CONF=$D/openssl.cnf

head -c 4096 /dev/urandom >"$D/data"
for k in rsakey eckey; do
	uri="pkcs11:token=$TOKEN_LABEL;object=$k;type=private;pin-value=$PIN"
	step "openssl dgst -sha256 -sign by URI ($k)" openssl dgst -engine pkcs11 -keyform engine -sha256 \
		-sign "$uri" -out "$D/$k.sig" "$D/data"
	step "plain openssl verifies signature ($k)" env -u OPENSSL_CONF openssl dgst -sha256 \
		-verify "$D/$k.pub.pem" -signature "$D/$k.sig" "$D/data"
	step "openssl pkeyutl -sign by URI ($k)" bash -c '
		openssl dgst -sha256 -binary "$2" >"$2.h" &&
		openssl pkeyutl -engine pkcs11 -keyform engine -inkey "$1" -sign -pkeyopt digest:sha256 -in "$2.h" -out "$2.$3.psig" &&
		env -u OPENSSL_CONF openssl pkeyutl -verify -pubin -inkey "$4" -pkeyopt digest:sha256 -in "$2.h" -sigfile "$2.$3.psig"' \
		_ "$uri" "$D/data" $k "$D/$k.pub.pem"
	step "openssl req -x509 self-signed cert ($k)" openssl req -engine pkcs11 -keyform engine -key "$uri" \
		-new -x509 -sha256 -days 2 -subj "/CN=gohsm $k" -out "$D/$k.crt"
	step "self-signed cert verifies, holds the token key ($k)" bash -c '
		export -n OPENSSL_CONF
		openssl verify -CAfile "$1" "$1" &&
		openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | cmp - "$2"' _ "$D/$k.crt" "$D/$k.der"
	step "openssl req CSR by URI ($k)" openssl req -engine pkcs11 -keyform engine -key "$uri" \
		-new -sha256 -subj "/CN=gohsm csr $k" -out "$D/$k.csr"
	step "CSR self-signature verifies ($k)" env -u OPENSSL_CONF openssl req -in "$D/$k.csr" -verify -noout
done
# Hand a DER certificate to the NSS script (it imports it onto its own token).
mkdir -p "$WORK/shared"
openssl x509 -in "$D/rsakey.crt" -outform DER -out "$WORK/shared/cert.der" 2>/dev/null
exit 0
