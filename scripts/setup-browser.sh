#!/usr/bin/env bash
# Installs Debian's Chromium for test/browser.spec.js (playwright-core drives /usr/bin/chromium; it never downloads a
# browser of its own). Idempotent: does nothing when /usr/bin/chromium exists. Part of scripts/setup-test-deps.sh.
set -u
[ -x /usr/bin/chromium ] && exit 0
. "$(dirname "$0")/apt-install.sh"
apt_install setup-browser chromium test/browser.spec.js
