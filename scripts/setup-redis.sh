#!/usr/bin/env bash
# Installs Debian's redis-server for the scale-out tests (test/remote.spec.js and test/serve-remote.spec.js start
# their own servers on loopback; nothing here starts one). Idempotent: does nothing when redis-server is on PATH.
# Part of scripts/setup-test-deps.sh.
set -u
command -v redis-server >/dev/null 2>&1 && exit 0
. "$(dirname "$0")/apt-install.sh"
apt_install setup-redis redis-server 'test/remote.spec.js and test/serve-remote.spec.js'
# Debian's package starts a service on port 6379 where it can: the tests need none.
(service redis-server stop || true) >/dev/null 2>&1
exit 0
