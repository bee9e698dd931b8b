#!/usr/bin/env node
// What `npm install` runs: set up the OpenVINO GenAI SDK, then build the addon with cmake-js unless a prebuilt
// binary for this platform ships in prebuilds/. Each failure ends in one line that says what to do.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildNative } from './build-native.mjs';
import { ROOT } from './sdk-config.mjs';
import { setupSdk } from './setup-sdk.mjs';

function fail(message) {
  console.error(`multilora: ${message}`);
  process.exit(1);
}

try {
  setupSdk();
} catch (err) {
  fail(err.message);
}

const prebuilt = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
if (existsSync(prebuilt) && process.env.MULTILORA_BUILD_FROM_SOURCE !== '1') {
  console.log(`multilora: using the prebuilt addon in ${prebuilt}`);
  process.exit(0);
}

if (spawnSync('cmake', ['--version']).status !== 0) {
  fail('cmake was not found, and no prebuilt addon ships for this platform: install cmake 3.19 or newer (e.g. `apt-get install cmake`), then run `npm install` again');
}
try {
  buildNative();
} catch (err) {
  fail(`building the addon failed (${err.message}): see the compiler output above`);
}
