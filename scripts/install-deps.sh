#!/usr/bin/env bash
# Installs everything the test suite needs on Debian (run as root): the real servers the
# tests start on loopback (knot, postfix, redis, chromium) and the project in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
# Installs must not start daemons.
[ -x /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
# postfix: no dialog, no /etc/postfix/main.cf
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
    knot knot-dnsutils postfix sasl2-bin libsasl2-modules redis-server postgresql chromium >/dev/null
[ -x .venv/bin/python ] || python3.11 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
# node and npm for the task pane's libraries and JS unit tests; images that ship their own
# Node.js (with npm inside) keep it, since Debian's npm package would conflict with it.
command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 nodejs npm >/dev/null
# The task pane's pinned browser libraries (package-lock.json).
npm ci --no-audit --no-fund >/dev/null
