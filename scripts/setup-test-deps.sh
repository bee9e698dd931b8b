#!/usr/bin/env bash
# Installs what the system tier of the tests needs from Debian, once, before `npm test` (or `npm run test:system`):
# Chromium for test/browser.spec.js (scripts/setup-browser.sh) and redis-server for the scale-out specs
# (scripts/setup-redis.sh). Each part does nothing when its program is there already; installing needs root and
# apt-get. `npm test` installs nothing itself: without these, the specs that need them fail and name this script.
# Exits 1, saying what is still missing, when a part could not install its package (.ci/run runs the tests anyway).
set -u
cd "$(dirname "$0")"
bash setup-browser.sh
bash setup-redis.sh
missing=()
[ -x /usr/bin/chromium ] || missing+=("chromium (/usr/bin/chromium, for test/browser.spec.js)")
command -v redis-server >/dev/null 2>&1 || missing+=("redis-server (for test/remote*.spec.js and test/serve-remote.spec.js)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'setup-test-deps: still missing: %s\n' "${missing[@]}" >&2
  echo 'setup-test-deps: the system tier (npm run test:system, part of npm test) will fail without them' >&2
  exit 1
fi
echo "setup-test-deps: chromium and redis-server are installed"
