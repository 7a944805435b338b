#!/bin/bash
# EdDSA through OpenSC pkcs11-tool 0.23: Ed25519 key generation
# (CKM_EC_EDWARDS_KEY_PAIR_GEN; 0.23 spells the curve "EC:edwards25519" and
# rejects "EC:ed25519"/"EC:Ed25519"), signing with CKM_EDDSA, and verification
# outside the token by OpenSSL 3 and python3-cryptography.
. "$(dirname "$0")/lib.sh"
new_store eddsa
D=$STORE
init_token eddsa-tok || exit 0
L=(--token-label "$TOKEN_LABEL" --login --pin "$PIN")

step "pkcs11-tool keygen Ed25519 (EC:edwards25519)" p11 "${L[@]}" --keypairgen --key-type EC:edwards25519 --label ed1 --id 21
p11 "${L[@]}" --list-objects >"$D/objects.txt" 2>&1
check "pkcs11-tool lists an EC_EDWARDS key pair" bash -c '
	grep -q "Private Key Object; EC_EDWARDS" "$1" && grep -q "Public Key Object; EC_EDWARDS" "$1" || { cat "$1"; exit 1; }' _ "$D/objects.txt"

head -c 777 /dev/urandom >"$D/data"
step "pkcs11-tool sign EDDSA" p11 "${L[@]}" --sign -m EDDSA --id 21 -i "$D/data" -o "$D/ed.sig"
check "Ed25519 signature is 64 bytes" bash -c '[ "$(stat -c %s "$1")" -eq 64 ]' _ "$D/ed.sig"
step "pkcs11-tool verify EDDSA (token)" bash -c '
	out=$(pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --verify -m EDDSA --id 21 \
		-i "$1/data" --signature-file "$1/ed.sig" 2>&1); echo "$out"
	grep -q "Signature is valid" <<<"$out"' _ "$D"

# pkcs11-tool 0.23 writes an EdDSA public key as PEM whatever -o says; take
# DER too, in case a later version changes that.
step "pkcs11-tool export Ed25519 public key" bash -c '
	pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --read-object --type pubkey --id 21 -o "$1/ed.pub" &&
	if grep -q "BEGIN PUBLIC KEY" "$1/ed.pub"; then cp "$1/ed.pub" "$1/ed.pem"
	else openssl pkey -pubin -inform DER -in "$1/ed.pub" -out "$1/ed.pem"; fi &&
	openssl pkey -pubin -in "$1/ed.pem" -noout -text | grep -q "ED25519 Public-Key"' _ "$D"
step "openssl verifies the Ed25519 signature" openssl pkeyutl -verify -pubin -inkey "$D/ed.pem" -rawin \
	-in "$D/data" -sigfile "$D/ed.sig"
check "openssl rejects a tampered Ed25519 signature" bash -c '
	tamper "$1/ed.sig" "$1/bad.sig" 40 &&
	! openssl pkeyutl -verify -pubin -inkey "$1/ed.pem" -rawin -in "$1/data" -sigfile "$1/bad.sig"' _ "$D"
# pkcs11-tool 0.23 --verify exits 0 on a bad signature and says so on stdout.
check "pkcs11-tool rejects a tampered Ed25519 signature (token)" bash -c '
	out=$(pkcs11-tool --module "$MODULE" --token-label "$TOKEN_LABEL" --login --pin "$PIN" --verify -m EDDSA --id 21 \
		-i "$1/data" --signature-file "$1/bad.sig" 2>&1); echo "$out"
	grep -q "Invalid signature" <<<"$out" && ! grep -q "Signature is valid" <<<"$out"' _ "$D"
step "python3-cryptography verifies the Ed25519 signature" "$SYS_PY" -c '
import sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
pem, data, sig = (open(p, "rb").read() for p in sys.argv[1:4])
k = load_pem_public_key(pem)
assert isinstance(k, Ed25519PublicKey), type(k)
k.verify(sig, data)
print("verified")' "$D/ed.pem" "$D/data" "$D/ed.sig"
exit 0
