#!/bin/sh
# Build OpenBao's bao from a source tree, for `make bench-gateway OPENBAO=...`.
#
#   scripts/build-openbao.sh SRC OUT
#
# SRC is an OpenBao source tree at a release tag whose go directive this
# machine's Go accepts (v2.6.2 needs go 1.25.8; main needs 1.27), e.g.
# `git -C openbao archive v2.6.2 | tar -x -C SRC`. The cloud KMS seal
# wrappers (alicloudkms, awskms, azurekeyvault, gcpckms, ocikms) are left
# out: their modules are not served by every module proxy, and neither
# `bao server -dev` nor Transit uses a seal plugin. The build is niced: on
# two shared cores it takes 30-60 minutes.
set -eu
src=$1 out=$2
w=$src/helper/kmsplugin/wrapper.go c=$src/vault/core.go
for m in alicloudkms awskms azurekeyvault gcpckms ocikms; do
	sed -i "\|go-kms-wrapping/wrappers/$m/v2\"|d; /^\t$m\.Type: /d" "$w"
done
sed -i '\|go-kms-wrapping/wrappers/awskms/v2"|d; s|wrapper.SetConfig(context.Background(), awskms.WithLogger(c.logger.Named("shamir")))|wrapper.SetConfig(context.Background())|' "$c"
cd "$src"
nice -n 10 env GOFLAGS="-buildvcs=false -mod=mod" go build -trimpath -o "$out" .
"$out" version
