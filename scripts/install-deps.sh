#!/usr/bin/env bash
# Installs the Debian packages gohsm's build and tests use, only when one is
# missing, so that `make run` and `make test` work on a fresh Debian 12 machine.
#
#   scripts/install-deps.sh run    what `make run` and its printed commands need
#   scripts/install-deps.sh test   everything the tests drive (the default)
set -euo pipefail
pkgs=(gcc opensc libengine-pkcs11-openssl openssl)
if [ "${1:-test}" = test ]; then
  pkgs+=(binutils libp11-kit-dev softhsm2 gnutls-bin python3-pykcs11 python3-cryptography
         libnss3-tools openssh-client p11-kit p11-kit-modules default-jdk-headless
         python3-hvac)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A JDK already on the machine (not from Debian) serves as well.
if command -v javac >/dev/null 2>&1; then
  missing=("${missing[@]/default-jdk-headless}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
