// Paths of the committed fixtures, and small helpers the specs share.
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { mkdtempSync, readFileSync, writeFileSync, rmSync } = require('node:fs');
const os = require('node:os');

const ROOT = path.resolve(__dirname, '..', '..');
// A port on loopback that nothing listens on (shared with the scripts that start servers).
const { freePort } = require('./redis-server.cjs');
const FIXTURES = path.join(ROOT, 'test', 'fixtures');
// The embedded default model and its LoRAs ship with the package, so they live outside test/ (models/README.md).
const MODELS = path.join(ROOT, 'models');

/** The two tiny model families, each with its LoRA fixtures. */
const families = {
  sd15: {
    model: path.join(FIXTURES, 'models', 'sd15-tiny'),
    lora: (name) => path.join(FIXTURES, 'loras', 'sd15', `${name}.safetensors`),
    guidanceScale: 7.5,
  },
  sdxl: {
    model: path.join(MODELS, 'sdxl-tiny'),
    lora: (name) => path.join(MODELS, 'sdxl-tiny-loras', `${name}.safetensors`),
    guidanceScale: 5,
  },
};

function sdk() {
  const dir = process.env.MULTILORA_SDK_DIR ? path.resolve(process.env.MULTILORA_SDK_DIR) : path.join(ROOT, '.sdk');
  return JSON.parse(readFileSync(path.join(dir, 'sdk.json'), 'utf8'));
}

/**
 * Runs test/helpers/genai_oracle.py in the SDK venv (Python openvino_genai) and returns the raw RGB bytes of
 * each call's image.
 */
function pythonImages(spec) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'multilora-oracle-'));
  try {
    const specFile = path.join(dir, 'spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    const out = path.join(dir, 'out');
    const r = spawnSync(sdk().python, [path.join(__dirname, 'genai_oracle.py'), specFile, out], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the Python oracle failed (${r.status}): ${r.stderr}`);
    return spec.calls.map((_, i) => readFileSync(path.join(out, `${i}.rgb`)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Mean absolute difference of two byte buffers of equal length, on the 0..255 scale. */
function meanAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

/**
 * A fresh temporary folder for the enclosing describe block (or for each test, with `each`), removed afterwards.
 * Returns a function that gives its path.
 */
function useTempDir(prefix, { each = false } = {}) {
  let dir;
  (each ? beforeEach : before)(function () {
    dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  (each ? afterEach : after)(function () {
    rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/**
 * Asserts that `promise` rejects with a MultiloraError of `code` (and, given a pattern, a message matching it): the
 * one check of typed errors the specs share.
 */
async function rejectsWith(promise, code, pattern) {
  const { MultiloraError } = require('../..');
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof MultiloraError, `expected a MultiloraError, got ${err?.stack ?? err}`);
    assert.equal(err.code, code, `${err.code}: ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

/** Polls `check` every 50 ms until it returns something truthy, which it returns; throws after `ms`. */
async function until(what, check, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether this process runs under `npm run sanitize` (gcc's ASan runtime preloaded): much slower, other memory use. */
const underAsan = /libasan/.test(process.env.LD_PRELOAD ?? '');

/**
 * Each plain LoRA layer of a .safetensors file as its whole change up · down ([out, r] · [r, in, kernel...]), named
 * as a LyCORIS "full" difference: [{ name: `<stem>.diff`, shape: [out, in, kernel...], values }].
 */
async function fullDifferences(file) {
  const st = require('../../dist/internal').safetensors;
  const reader = await st.openSafetensors(file);
  try {
    const byName = new Map(reader.header.tensors.map((t) => [t.name, t]));
    const diffs = [];
    for (const [name, downInfo] of byName) {
      if (!name.endsWith('.lora_down.weight')) continue;
      const stem = name.slice(0, -'.lora_down.weight'.length);
      const upInfo = byName.get(`${stem}.lora_up.weight`);
      const down = st.toFloat32Array(await reader.read(downInfo), downInfo.dtype);
      const up = st.toFloat32Array(await reader.read(upInfo), upInfo.dtype);
      const [rank, ...inner] = downInfo.shape;
      const out = upInfo.shape[0];
      const width = down.length / rank;
      const values = new Float32Array(out * width);
      for (let o = 0; o < out; o += 1) {
        for (let r = 0; r < rank; r += 1) {
          for (let k = 0; k < width; k += 1) values[o * width + k] += up[o * rank + r] * down[r * width + k];
        }
      }
      diffs.push({ name: `${stem}.diff`, shape: [out, ...inner], values });
    }
    return diffs;
  } finally {
    await reader.close();
  }
}

module.exports = {
  ROOT,
  fullDifferences,
  FIXTURES,
  MODELS,
  families,
  sdk,
  pythonImages,
  meanAbsDiff,
  useTempDir,
  underAsan,
  freePort,
  until,
  rejectsWith,
};
