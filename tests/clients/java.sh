#!/bin/bash
# Java SunPKCS11: tests/clients/java/P11Test.java, compiled into a temp folder.
. "$(dirname "$0")/lib.sh"
new_store java
D=$STORE
init_token java-tok || exit 0
step "javac P11Test.java" javac -d "$D/classes" "$HERE/java/P11Test.java" || exit 0
check "slot id of java-tok known ($SLOT_ID)" test -n "$SLOT_ID"
STEP_TIMEOUT=120 run_checks "java P11Test ran to its end" "java: " \
	java -cp "$D/classes" P11Test "$MODULE" "$SLOT_ID" "$PIN"
exit 0
