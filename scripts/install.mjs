#!/usr/bin/env node
// What `npm install` runs. An installed tarball that ships a prebuild (prebuilds/linux-x64/, made by
// `npm run prebuild`) uses it: the addon and the OpenVINO GenAI runtime it carries, with no Python, cmake or
// compiler. Otherwise (a git checkout, MULTILORA_BUILD_FROM_SOURCE=1, or a prebuild that is stale or does not load
// here) it sets up the OpenVINO GenAI SDK and builds the addon with cmake-js. Each failure ends in one line that
// says what to do.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildNative } from './build-native.mjs';
import { PREBUILD_DIR, loadError, readPrebuild } from './prebuild-manifest.mjs';
import { ROOT } from './sdk-config.mjs';
import { setupSdk } from './setup-sdk.mjs';

function fail(message) {
  console.error(`multilora: ${message}`);
  process.exit(1);
}

/** Why the prebuild is not used, or null to use it. */
function whyNotPrebuilt() {
  const where = path.relative(ROOT, PREBUILD_DIR);
  if (process.env.MULTILORA_BUILD_FROM_SOURCE === '1')
    return existsSync(PREBUILD_DIR) ? 'MULTILORA_BUILD_FROM_SOURCE=1' : '';
  // A checkout builds from source, as it always did: a prebuild there is only the input of `npm pack`.
  if (existsSync(path.join(ROOT, '.git')))
    return existsSync(PREBUILD_DIR) ? `a git checkout builds from source (${where}/ is for npm pack)` : '';
  const found = readPrebuild();
  if (!found.addon) return found.reason === null ? '' : `the prebuild in ${where}/ cannot be used: ${found.reason}`;
  const error = loadError(found.addon);
  return error ? `the prebuilt addon does not load on this system (${error})` : null;
}

const why = whyNotPrebuilt();
if (why === null) {
  console.log(
    `multilora: using the prebuilt addon in ${path.relative(ROOT, PREBUILD_DIR)}/ with the OpenVINO GenAI runtime it carries ` +
      '(no Python, cmake or compiler needed; MULTILORA_BUILD_FROM_SOURCE=1 builds from source)',
  );
  process.exit(0);
}
if (why) console.log(`multilora: building from source: ${why}`);

try {
  setupSdk();
} catch (err) {
  fail(err.message);
}
if (spawnSync('cmake', ['--version']).status !== 0) {
  fail(
    'cmake was not found, and no usable prebuilt addon ships for this platform: install cmake 3.19 or newer (e.g. `apt-get install cmake`), then run `npm install` again',
  );
}
try {
  buildNative();
} catch (err) {
  fail(`building the addon failed (${err.message}): see the compiler output above`);
}
