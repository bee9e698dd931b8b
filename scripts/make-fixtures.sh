#!/usr/bin/env bash
# Build the test fixtures under test/fixtures/ and the embedded default model under models/
# (see test/fixtures/README.md and models/README.md).
#
#   bash scripts/make-fixtures.sh                 # venv (made once, then reused), build, verify
#   bash scripts/make-fixtures.sh --no-verify     # build only
#   bash scripts/make-fixtures.sh --verify-only   # check the fixtures already there
#   bash scripts/make-fixtures.sh --diffusers-out DIR   # other arguments go to make-fixtures.py
#   bash scripts/make-fixtures.sh --bench-model [--out DIR] [--force] [--no-verify]
#       # instead: the benchmark's random-weight SD 1.5 of real size (UNet 860M, 512x512) and its
#       # LoRAs, in .bench-models/sd15-512/ (not committed; reused when complete). Took 11 GB of RAM
#       # and 15 min on 2 cores; other arguments go to scripts/make-bench-model.py.
#
# The venv lives in .fixture-venv/ (git-ignored) and is used for nothing else. It is reused
# when it was completed with the same scripts/fixtures-requirements.txt; otherwise it is
# (re)made. Needs Python 3.11 (torch 2.13.0 lies on this machine's disk for it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.fixture-venv"
REQ="$ROOT/scripts/fixtures-requirements.txt"
STAMP="$VENV/.multilora-fixtures-stamp"

export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export HF_HUB_DISABLE_TELEMETRY=1
export DO_NOT_TRACK=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { echo "[make-fixtures.sh] $*"; }

find_python() {
  local c
  for c in "${FIXTURE_PYTHON:-}" python3.11 python3; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 &&
      "$c" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  echo "make-fixtures.sh: Python 3.11 is needed (set FIXTURE_PYTHON to its path)" >&2
  return 1
}

stamp_value() {
  # what a complete venv was made from: the requirements file and this script's install steps
  { cat "$REQ"; echo "install-steps-v1"; } | sha256sum | cut -d' ' -f1
}

venv_complete() {
  [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_value)" ] &&
    "$VENV/bin/python" -c 'import torch, diffusers, transformers, optimum.intel, openvino_genai, safetensors' \
      >/dev/null 2>&1
}

if venv_complete; then
  log "reusing $VENV"
else
  PY="$(find_python)"
  if [ -d "$VENV" ]; then
    log "removing the incomplete or outdated venv $VENV"
    rm -rf "$VENV"
  fi
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
  log "installing $REQ"
  "$VENV/bin/python" -m pip install --quiet -r "$REQ"
  # optimum-intel declares torchvision, but PyPI's torchvision does not import beside the
  # torch 2.13.0 CPU build and nothing here uses it; `datasets` breaks with this hub version.
  for pkg in torchvision datasets; do
    if "$VENV/bin/python" -m pip show "$pkg" >/dev/null 2>&1; then
      log "uninstalling $pkg"
      "$VENV/bin/python" -m pip uninstall --quiet -y "$pkg"
    fi
  done
  "$VENV/bin/python" -c 'import torch, diffusers, transformers, optimum.intel, openvino_genai, safetensors'
  stamp_value >"$STAMP"
  log "venv ready"
fi

cd "$ROOT"

for a in "$@"; do
  if [ "$a" = --bench-model ]; then
    ARGS=()
    for b in "$@"; do [ "$b" = --bench-model ] || ARGS+=("$b"); done
    exec "$VENV/bin/python" "$ROOT/scripts/make-bench-model.py" ${ARGS[@]+"${ARGS[@]}"}
  fi
done

ARGS=()
VERIFY=1
for a in "$@"; do
  case "$a" in
    --no-verify) VERIFY=0 ;;
    --verify | --verify-only) VERIFY=0; ARGS+=("$a") ;;
    *) ARGS+=("$a") ;;
  esac
done
[ "$VERIFY" = 1 ] && ARGS+=(--verify)

exec "$VENV/bin/python" "$ROOT/scripts/make-fixtures.py" ${ARGS[@]+"${ARGS[@]}"}
