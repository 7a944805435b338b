#!/bin/bash
# PyKCS11 through Debian's /usr/bin/python3 (a pyenv python3 on PATH lacks it).
. "$(dirname "$0")/lib.sh"
new_store pykcs11
init_token py-tok || exit 0
XFAIL_SOFTHSM_NAMES="pykcs11 ECDSA-SHA256 sign, CKM_ECDSA verify|SoftHSMv2 2.6.1 has no CKM_ECDSA_SHA256"
run_checks "pykcs11_test.py ran to its end" "pykcs11: " \
	"$SYS_PY" "$HERE/python/pykcs11_test.py" "$MODULE" "$TOKEN_LABEL" "$PIN"
exit 0
