# Sourced by scripts/setup-*.sh: `apt_install NAME PACKAGE SPEC` installs Debian's PACKAGE when the caller found it
# missing, or says in one line what to do instead (the SPEC that needs it fails without it). Always returns 0, so
# that one part's failure does not stop the next: scripts/setup-test-deps.sh checks what is installed at its end.
apt_install() {
  local name="$1" package="$2" spec="$3"
  if [ "$(id -u)" -ne 0 ]; then
    echo "$name: $package is missing and installing it needs root: run 'sudo apt-get install -y $package' ($spec will fail without it)" >&2
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: $package is missing and there is no apt-get here: install it yourself ($spec will fail without it)" >&2
    return 0
  fi
  echo "$name: installing Debian's $package (apt-get)..."
  if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null; then
    echo "$name: $package installed"
  else
    echo "$name: 'apt-get install $package' failed: install it yourself ($spec will fail without it)" >&2
  fi
  return 0
}
