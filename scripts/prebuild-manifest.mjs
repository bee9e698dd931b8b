// What a prebuild is and whether it can be used: shared by `npm run prebuild` (scripts/prebuild.mjs), which writes
// prebuilds/<platform>-<arch>/, `npm pack` (which refuses a stale one) and `npm install` (scripts/install.mjs),
// which uses it instead of building from source.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT, SDK_WHEELS } from './sdk-config.mjs';

/** The prebuild for this machine: prebuilds/linux-x64/, where node-gyp-build looks. */
export const PREBUILD_DIR = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);

/** Written beside the addon: what it was built from, and the libraries it carries. */
export const MANIFEST = 'prebuild.json';

/** The Node-API version the addon is built for (NAPI_VERSION in CMakeLists.txt). */
export const NAPI_VERSION = 8;

/** The files a build of the addon depends on: CMakeLists.txt and everything under native/. */
function sourceFiles() {
  const files = [path.join(ROOT, 'CMakeLists.txt')];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) files.push(p);
    }
  };
  walk(path.join(ROOT, 'native'));
  return files.sort();
}

/** One hash of the native sources and the SDK pins: a prebuild made from other ones is stale. */
export function sourcesHash() {
  const hash = createHash('sha256');
  hash.update(`napi ${NAPI_VERSION}\n${SDK_WHEELS.join('\n')}\n`);
  for (const file of sourceFiles()) {
    hash.update(`${path.relative(ROOT, file)}\n`);
    hash.update(readFileSync(file));
  }
  return hash.digest('hex');
}

/**
 * The prebuild in PREBUILD_DIR if it is complete and was made from the sources that are here:
 * `{ manifest, addon }`, else `{ reason }` (null when there is no prebuild at all).
 */
export function readPrebuild() {
  const file = path.join(PREBUILD_DIR, MANIFEST);
  if (!existsSync(file)) return { reason: null };
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return { reason: `${MANIFEST} cannot be read` };
  }
  if (manifest.sources !== sourcesHash()) {
    return { reason: 'it was made from other native sources or SDK pins than the ones here' };
  }
  const missing = [manifest.addon, ...manifest.libraries].find((f) => !existsSync(path.join(PREBUILD_DIR, f)));
  if (missing) return { reason: `${missing} is missing from it` };
  return { manifest, addon: path.join(PREBUILD_DIR, manifest.addon) };
}

/** Loads the prebuilt addon in a child process: null when it loads, else the loader's first line. */
export function loadError(addon) {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)})`], { encoding: 'utf8' });
  if (r.status === 0) return null;
  const lines = `${r.stderr ?? ''}`.split('\n').map((l) => l.trim());
  return lines.find((l) => /^Error:/.test(l)) ?? lines.find(Boolean) ?? `exit ${r.status ?? r.signal}`;
}
