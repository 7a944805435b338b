#!/bin/bash
# Key wrapping with OpenSSL on the other side, both ways, through PyKCS11.
. "$(dirname "$0")/lib.sh"
new_store wrap
init_token wrap-tok || exit 0
XFAIL_SOFTHSM_NAMES="*RSA-OAEP-SHA256*|SoftHSMv2 2.6.1 has no RSA-OAEP with SHA-256
sensitive key refused under an untrusted RSA key|SoftHSMv2 2.6.1 wraps a sensitive key under any wrapping key"
run_checks "wrap_interop.py ran to its end" "wrap_interop done" \
	"$SYS_PY" "$HERE/python/wrap_interop.py" "$MODULE" "$TOKEN_LABEL" "$SO_PIN" "$PIN" "$STORE"
exit 0
