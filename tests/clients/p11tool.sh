#!/bin/bash
# GnuTLS p11tool: list tokens, generate an ECDSA key, test-sign with it.
. "$(dirname "$0")/lib.sh"
new_store p11tool
D=$STORE
init_token gnutls-tok || exit 0
export GNUTLS_PIN=$PIN GNUTLS_SO_PIN=$SO_PIN
P=(p11tool --provider "$MODULE")
TOK="pkcs11:token=$TOKEN_LABEL"

step "p11tool --list-tokens shows the token" bash -c '
	p11tool --provider "$MODULE" --list-tokens | tee /dev/stderr | grep -q "^[[:space:]]*Label: $TOKEN_LABEL\$"'
step "p11tool --list-mechanisms" bash -c '
	p11tool --provider "$MODULE" --list-mechanisms "pkcs11:token=$TOKEN_LABEL" | tee /dev/stderr | grep -q CKM_ECDSA'
step "p11tool --generate-privkey ecdsa secp256r1" "${P[@]}" --login --generate-privkey ecdsa --curve secp256r1 \
	--label gkey --outfile "$D/gkey.pub" "$TOK"
step "p11tool --list-privkeys shows the key" bash -c '
	p11tool --provider "$MODULE" --login --list-privkeys "pkcs11:token=$TOKEN_LABEL" | tee /dev/stderr | grep -q "Label: gkey"'
step "p11tool --test-sign (ECDSA)" "${P[@]}" --login --test-sign "$TOK;object=gkey"
step "p11tool --generate-privkey rsa 2048" "${P[@]}" --login --generate-privkey rsa --bits 2048 \
	--label grsa --outfile "$D/grsa.pub" "$TOK"
step "p11tool --test-sign (RSA)" "${P[@]}" --login --test-sign "$TOK;object=grsa"
step "p11tool --export-pubkey matches generated key" bash -c '
	p11tool --provider "$MODULE" --login --export-pubkey "pkcs11:token=$TOKEN_LABEL;object=gkey;type=public" >"$1/exp.pem" &&
	cmp <(openssl pkey -pubin -in "$1/exp.pem" -outform DER) <(openssl pkey -pubin -in "$1/gkey.pub" -outform DER)' _ "$D"
exit 0
