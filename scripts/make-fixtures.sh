#!/usr/bin/env bash
# Build the test fixtures under test/fixtures/ and the embedded default model under models/
# (see test/fixtures/README.md and models/README.md).
#
#   bash scripts/make-fixtures.sh                 # the venv (made once, then reused), build, verify
#   bash scripts/make-fixtures.sh --no-verify     # build only
#   bash scripts/make-fixtures.sh --verify-only   # check the fixtures already there
#   bash scripts/make-fixtures.sh --diffusers-out DIR   # other arguments go to make-fixtures.py
#   bash scripts/make-fixtures.sh --bench-model [--out DIR] [--force] [--no-verify]
#       # instead: the benchmark's random-weight SD 1.5 of real size (UNet 860M, 512x512) and its
#       # LoRAs, in .bench-models/sd15-512/ (not committed; reused when complete). Took 11 GB of RAM
#       # and 15 min on 2 cores; other arguments go to scripts/make-bench-model.py.
#   bash scripts/make-fixtures.sh --tutorial-model [--out DIR] [--force] [--weight-format F]
#       # instead: the tutorial's workload, a random-weight SDXL of real size with LCM-LoRA fused by
#       # `multilora convert` and five style LoRAs with their catalogue, in .bench-models/sdxl-tutorial/
#       # (not committed; reused when complete); other arguments go to scripts/make-tutorial-model.py.
#
# The Python is the converter's venv (lib/convert/env.ts, from python/requirements.txt: the project's
# one venv for its tools, apart from the SDK's), made on first use in $XDG_CACHE_HOME/multilora/ (else
# ~/.cache/multilora/) or where MULTILORA_CONVERTER_DIR says, and reused while that file is unchanged.
# It needs `npm install` to have run (dist/). FIXTURE_PYTHON (or MULTILORA_PYTHON) picks the interpreter it
# is made with; 3.11 is preferred (torch 2.13.0 lies on this machine's disk for it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export HF_HUB_DISABLE_TELEMETRY=1
export DO_NOT_TRACK=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { echo "[make-fixtures.sh] $*"; }

if [ ! -f "$ROOT/dist/convert/env.js" ]; then
  echo "make-fixtures.sh: dist/ is missing: run \`npm install\` first" >&2
  exit 1
fi
PYTHON="$(cd "$ROOT" && MULTILORA_PYTHON="${FIXTURE_PYTHON:-${MULTILORA_PYTHON:-}}" node -e '
require("./dist/convert/env")
  .ensureConverter({ onLine: (line) => console.error(`[make-fixtures.sh] ${line}`) })
  .then((env) => console.log(env.python), (err) => { console.error(`make-fixtures.sh: ${err.message}`); process.exit(1); });
')"
"$PYTHON" -c 'import torch, diffusers, transformers, optimum.intel, openvino_genai, safetensors'
log "using $PYTHON"

cd "$ROOT"

for a in "$@"; do
  if [ "$a" = --bench-model ]; then
    ARGS=()
    for b in "$@"; do [ "$b" = --bench-model ] || ARGS+=("$b"); done
    exec "$PYTHON" "$ROOT/scripts/make-bench-model.py" ${ARGS[@]+"${ARGS[@]}"}
  fi
  if [ "$a" = --tutorial-model ]; then
    ARGS=()
    for b in "$@"; do [ "$b" = --tutorial-model ] || ARGS+=("$b"); done
    exec "$PYTHON" "$ROOT/scripts/make-tutorial-model.py" ${ARGS[@]+"${ARGS[@]}"}
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

exec "$PYTHON" "$ROOT/scripts/make-fixtures.py" ${ARGS[@]+"${ARGS[@]}"}
