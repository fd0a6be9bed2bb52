#!/bin/sh
# install.sh [PACKAGE...] - installs what a benchmark reference needs from
# Debian's archive when it is missing: by default what smtp-bench needs
# (postfix, dovecot-core, dovecot-lmtpd); pop3-bench asks for dovecot-core
# and dovecot-pop3d. It configures and starts none of them, nor the
# system's own Postfix or Dovecot: the benchmarks run private instances
# with the configs beside this file.
set -eu

[ $# -gt 0 ] || set -- postfix dovecot-core dovecot-lmtpd
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install.sh: root is needed to install:$missing" >&2
	exit 1
fi

# "No configuration": Debian's postfix then writes no /etc/postfix/main.cf.
echo "postfix postfix/main_mailer_type select No configuration" |
	debconf-set-selections
# A policy-rc.d that says no keeps the packages from starting their
# services, for the time of the install (unless one is there already).
policy=/usr/sbin/policy-rc.d
made=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made=1
fi
trap 'if [ -n "$made" ]; then rm -f "$policy"; fi' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	--no-install-recommends $missing
# Nor start them at the next boot: only the services of packages that were
# not there before.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
	for p in $missing; do
		case $p in
		postfix) systemctl disable --now postfix.service ;;
		dovecot-core) systemctl disable --now dovecot.service ;;
		esac >/dev/null 2>&1 || true
	done
fi
