#!/bin/bash
# The steps of the gohsm GitHub Action (action.yml), as one script that
# tests/fixture/workflow.sh runs too:
#
#   gohsm-fixture.sh build   go build gohsm and libgohsm.so from this repository
#                            into $GOHSM_BIN_DIR (default $RUNNER_TEMP/gohsm-bin);
#                            bin-dir to $GITHUB_OUTPUT, the directory to $GITHUB_PATH
#   gohsm-fixture.sh up      gohsm fixture up --format github with the INPUT_*
#                            variables; its lines to $GITHUB_ENV, the outputs
#                            (module, token-label, user-pin, so-pin, uri, slot,
#                            conf, dir) to $GITHUB_OUTPUT
#
# Needs GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and RUNNER_TEMP (the runner
# sets them), Go 1.26+ and a C compiler (cgo, for libgohsm.so).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BIN=${GOHSM_BIN_DIR:-${RUNNER_TEMP:?}/gohsm-bin}

case "${1:-}" in
build)
	command -v go >/dev/null || { echo "::error::gohsm needs Go 1.26 or later (setup-go: true)"; exit 1; }
	command -v "${CC:-gcc}" >/dev/null || { echo "::error::libgohsm.so needs a C compiler (cgo): apt-get install gcc"; exit 1; }
	mkdir -p "$BIN"
	(
		cd "$ROOT"
		export CGO_ENABLED=1
		go build -trimpath -o "$BIN/gohsm" ./cmd/gohsm
		go build -trimpath -buildmode=c-shared -o "$BIN/libgohsm.so" ./pkcs11shim
	)
	rm -f "$BIN/libgohsm.h"
	echo "gohsm: built $BIN/gohsm and $BIN/libgohsm.so ($("$BIN/gohsm" version))"
	echo "bin-dir=$BIN" >>"$GITHUB_OUTPUT"
	echo "$BIN" >>"$GITHUB_PATH"
	;;
up)
	args=(fixture up --format github --module "$BIN/libgohsm.so"
		--dir "${INPUT_DIR:-$RUNNER_TEMP/gohsm-fixture}"
		--label "${INPUT_LABEL:-gohsm-test}" --keys "${INPUT_KEYS:-ec}"
		--user-pin "${INPUT_USER_PIN:-1234}" --so-pin "${INPUT_SO_PIN:-12345678}")
	[ -n "${INPUT_FAULTS:-}" ] && args+=(--faults "$INPUT_FAULTS")
	envfile=$(mktemp "$RUNNER_TEMP/gohsm-env.XXXXXX")
	"$BIN/gohsm" "${args[@]}" >"$envfile"
	cat "$envfile" >>"$GITHUB_ENV"
	# The step outputs, from the same lines.
	while IFS= read -r line; do
		k=${line%%=*} v=${line#*=}
		case $k in
		GOHSM_MODULE) echo "module=$v" ;;
		GOHSM_TOKEN_LABEL) echo "token-label=$v" ;;
		GOHSM_USER_PIN) echo "user-pin=$v" ;;
		GOHSM_SO_PIN) echo "so-pin=$v" ;;
		GOHSM_TOKEN_URI) echo "uri=$v" ;;
		GOHSM_SLOT) echo "slot=$v" ;;
		GOHSM_CONF) echo "conf=$v" ;;
		GOHSM_FIXTURE_DIR) echo "dir=$v" ;;
		esac
	done <"$envfile" >>"$GITHUB_OUTPUT"
	echo "gohsm: a test token is ready (for tests only: its PINs are printed below); environment for the next steps:"
	sed 's/^/  /' "$envfile"
	rm -f "$envfile"
	;;
*)
	echo "usage: $0 build|up" >&2
	exit 2
	;;
esac
