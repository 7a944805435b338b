#!/bin/bash
# OpenSSH: ssh-keygen -D lists the token's keys; ssh-agent loads the module
# (allow-listed by real path) and signs with token keys; ssh-keygen -Y verifies.
# Only RSA and EC keys on this token: one key type ssh does not know (SM2,
# ML-DSA) makes `ssh-add -s` fail as a whole.
. "$(dirname "$0")/lib.sh"
new_store ssh
D=$STORE
init_token ssh-tok || exit 0
L=(--token-label "$TOKEN_LABEL" --login --pin "$PIN")
step "keygen RSA-2048 (pkcs11-tool)" p11 "${L[@]}" --keypairgen --key-type rsa:2048 --label sshrsa --id 31
step "keygen EC P-256 (pkcs11-tool)" p11 "${L[@]}" --keypairgen --key-type EC:prime256v1 --label sshec --id 32
# The token's public keys in OpenSSH format, from the exported SPKI.
for k in sshrsa sshec; do
	p11 --token-label "$TOKEN_LABEL" --read-object --type pubkey --label $k -o "$D/$k.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$D/$k.der" -out "$D/$k.pem" 2>/dev/null
	ssh-keygen -i -m PKCS8 -f "$D/$k.pem" 2>/dev/null | awk '{print $1, $2, "'$k'"}' >"$D/$k.pub"
done

step "ssh-keygen -D lists the public keys" bash -c '
	ssh-keygen -D "$MODULE" >"$1/keys.txt" || exit 1
	cat "$1/keys.txt"
	grep -q "^ssh-rsa " "$1/keys.txt" && grep -q "^ecdsa-sha2-nistp256 " "$1/keys.txt" || exit 1
	for k in sshrsa sshec; do
		blob=$(cut -d" " -f2 "$1/$k.pub"); [ -n "$blob" ] && grep -qF "$blob" "$1/keys.txt" ||
			{ echo "key $k ($blob) not listed"; exit 1; }
	done' _ "$D"

# An agent of our own, on our own socket; stopped by its pid at the end.
MODDIR=$(dirname "$(realpath "$MODULE")")
eval "$(ssh-agent -s -a "$D/agent.sock" -P "$MODDIR/*")" >/dev/null
at_exit 'kill "$SSH_AGENT_PID" 2>/dev/null'
printf '#!/bin/sh\necho "%s"\n' "$PIN" >"$D/askpass.sh"
chmod 700 "$D/askpass.sh"

step "ssh-add -s <module> (PIN via SSH_ASKPASS)" env SSH_ASKPASS="$D/askpass.sh" SSH_ASKPASS_REQUIRE=force \
	DISPLAY=:0 ssh-add -s "$MODULE" </dev/null
step "ssh-add -L lists both token keys" bash -c '
	ssh-add -L >"$1/agent.txt"; cat "$1/agent.txt"
	for k in sshrsa sshec; do grep -qF "$(cut -d" " -f2 "$1/$k.pub")" "$1/agent.txt" || { echo "no $k"; exit 1; }; done' _ "$D"

head -c 2000 /dev/urandom >"$D/data"
for k in sshrsa sshec; do
	step "ssh-keygen -Y sign via agent ($k)" bash -c '
		cp "$1/$2.pub" "$1/$2.sign.pub"
		ssh-keygen -Y sign -f "$1/$2.sign.pub" -n file "$1/data" </dev/null && test -s "$1/data.sig" &&
		mv "$1/data.sig" "$1/data.$2.sig"' _ "$D" $k
	step "ssh-keygen -Y verify ($k)" bash -c '
		echo "tester@gohsm $(cut -d" " -f1,2 "$1/$2.pub")" >"$1/allowed.$2"
		ssh-keygen -Y verify -f "$1/allowed.$2" -I tester@gohsm -n file -s "$1/data.$2.sig" <"$1/data" &&
		! { printf x | cat "$1/data" - | ssh-keygen -Y verify -f "$1/allowed.$2" -I tester@gohsm -n file -s "$1/data.$2.sig"; }' _ "$D" $k
done
step "ssh-add -e removes the module" ssh-add -e "$MODULE"
exit 0
