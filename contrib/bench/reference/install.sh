#!/bin/sh
# install.sh - installs what the smtp-bench reference needs (Debian's
# postfix, dovecot-core and dovecot-lmtpd) when it is missing, without
# configuring or starting the system's own Postfix or Dovecot: the
# benchmark runs private instances with the configs beside this file.
set -eu

missing=""
for p in postfix dovecot-core dovecot-lmtpd; do
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
