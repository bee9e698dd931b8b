#!/usr/bin/env bash
# Installs Debian's Chromium for test/browser.spec.js (playwright-core drives /usr/bin/chromium; it never downloads a
# browser of its own). Idempotent: does nothing when /usr/bin/chromium exists. Run by `npm test` (pretest) and .ci/run.
set -u
BROWSER=/usr/bin/chromium
if [ -x "$BROWSER" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-browser: $BROWSER is missing and installing it needs root: run 'sudo apt-get install -y chromium' (test/browser.spec.js will fail without it)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: $BROWSER is missing and there is no apt-get here: install Chromium at $BROWSER yourself (test/browser.spec.js will fail without it)" >&2
  exit 0
fi
echo "setup-browser: installing Debian's chromium (apt-get)..."
if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  echo "setup-browser: $("$BROWSER" --version 2>/dev/null || echo chromium) installed"
else
  echo "setup-browser: 'apt-get install chromium' failed: install Chromium at $BROWSER yourself (test/browser.spec.js will fail without it)" >&2
fi
exit 0
