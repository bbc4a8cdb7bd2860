#!/bin/sh
# Install what kiln needs to build and test, from Debian's packages, when any of it is missing.
set -eu
pkgs="build-essential cmake pkg-config libssl-dev libzstd-dev libsqlite3-dev libcmocka-dev libnftables-dev
libmicrohttpd-dev libseccomp-dev libcap-dev libcurl4-openssl-dev libexpat1-dev libjansson-dev clang clang-format python3 python3-pytest python3-boto3 awscli xfsprogs e2fsprogs util-linux bc busybox-static mmdebstrap openssh-client putty-tools iproute2 nftables curl dpkg-dev packer
chromium nodejs"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# The console's browser test drives chromium with playwright-core from npm; a nodejs that brings
# its own npm (NodeSource's) conflicts with Debian's npm package, so that one only when npm is missing.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: run as root (or install:$missing)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
