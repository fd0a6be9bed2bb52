#!/bin/sh
# Installs what moonpost needs to build, run and test on Debian or Ubuntu.
# Idempotent and quiet: when everything is present it prints nothing and
# installs nothing. Needs root (or sudo) only when something is missing.
set -eu

PACKAGES="
build-essential autoconf automake libtool pkg-config
libev-dev liblua5.4-dev libssl-dev libsqlite3-dev libc-ares-dev
libcrypt-dev zlib1g-dev
libglib2.0-dev python3 openssl curl ca-certificates procps
clang libclang-rt-dev
"

missing=""
for pkg in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $pkg" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps: need root to install:$missing" >&2
	exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
