#!/usr/bin/env node
// What prebuildify runs in place of node-gyp (scripts/prebuild.mjs passes it as `nodeGyp`), as
// `<this> rebuild --target=… --devdir=… --arch=… --release`, in prebuildify's folder: a relocatable build of the
// addon with cmake-js (CMakeLists.txt, MULTILORA_RELOCATABLE=ON), written where prebuildify takes it from
// (<cwd>/build/Release). The target Node version does not matter: the addon uses Node-API only.
import path from 'node:path';
import { buildNative } from './build-native.mjs';
import { ROOT } from './sdk-config.mjs';

const [command, ...flags] = process.argv.slice(2);
if (command !== 'rebuild' || flags.includes('--debug')) {
  console.error(
    `multilora: scripts/prebuild-backend.mjs makes release prebuilds only (got: ${process.argv.slice(2).join(' ')})`,
  );
  process.exit(1);
}
try {
  buildNative(
    ['--CDMULTILORA_RELOCATABLE=ON', `--CDMULTILORA_OUTPUT_DIR=${path.join(process.cwd(), 'build', 'Release')}`],
    { outDir: path.join(ROOT, 'build', 'prebuild', 'cmake') },
  );
} catch (err) {
  console.error(`multilora: ${err.message}`);
  process.exit(1);
}
