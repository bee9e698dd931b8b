#!/usr/bin/env node
// `npm run example [-- out.png]`: a blend of two LoRA adapters on the embedded default model (a tiny random-weight
// SDXL-like export), written as a PNG: to out.png, or without it to blend.png in a new folder under the system's
// temporary folder, so that the checkout stays as it was; it prints where. Random weights give per-pixel noise
// (coloured speckle, no shapes): this shows the API end to end, not image quality.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ROOT } from './sdk-config.mjs';

const require = createRequire(import.meta.url);
const { Pipeline, defaultModelDir, encodePng } = require(ROOT);

const out = process.argv[2]
  ? path.resolve(process.argv[2])
  : path.join(mkdtempSync(path.join(os.tmpdir(), 'multilora-example-')), 'blend.png');
const loras = path.join(ROOT, 'models', 'sdxl-tiny-loras');

const started = performance.now();
const pipeline = await Pipeline.load(defaultModelDir(), {
  adapters: {
    'style-a': { path: path.join(loras, 'style-a.safetensors') },
    'style-b': { path: path.join(loras, 'style-b.safetensors') },
  },
});
const loaded = performance.now();
const image = await pipeline.generate('a lighthouse on a cliff at sunset', {
  adapters: { 'style-a': 0.6, 'style-b': 0.4 },
  seed: 42,
  width: 128,
  height: 128,
  steps: 8,
});
const done = performance.now();
await pipeline.dispose();
writeFileSync(out, encodePng(image));
console.log(
  `wrote ${out}: ${image.width}x${image.height}, adapters style-a 0.6 + style-b 0.4, seed ${image.seed}; ` +
    `load ${(loaded - started).toFixed(0)} ms, generate ${(done - loaded).toFixed(0)} ms`,
);
