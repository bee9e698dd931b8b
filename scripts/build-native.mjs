#!/usr/bin/env node
// Builds the addon with cmake-js from CMakeLists.txt into build/Release/multilora.node. Needs the SDK (sdk.json).
// Extra arguments go to cmake-js (e.g. `--debug`, `--CDCMAKE_CXX_FLAGS=-fsanitize=address`).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ROOT, readCompleteSdk, sdkDir } from './sdk-config.mjs';

/** outDir: cmake-js's build folder (the addon itself always lands in build/Release). */
export function buildNative(extraArgs = [], { outDir = path.join(ROOT, 'build', 'cmake') } = {}) {
  const sdk = readCompleteSdk();
  if (!sdk) {
    throw new Error(
      `the OpenVINO GenAI SDK in ${sdkDir()} is missing or incomplete: run \`node scripts/setup-sdk.mjs\``,
    );
  }
  const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
  const args = [
    cmakeJs,
    'compile',
    '--directory',
    ROOT,
    '--out',
    outDir,
    '--parallel',
    String(Math.max(1, os.availableParallelism())),
    `--CDMULTILORA_SDK_JSON=${path.join(sdk.dir, 'sdk.json')}`,
    ...extraArgs,
  ];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0) throw new Error(`cmake-js failed (exit ${r.status ?? r.signal})`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    buildNative(process.argv.slice(2));
  } catch (err) {
    console.error(`multilora: ${err.message}`);
    process.exit(1);
  }
}
